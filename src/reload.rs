//! Hot reload of the policy set: on a change in the policies directory
//! (debounced), on SIGHUP, and on `POST /v1/reload`. The gateway swaps a new
//! set in only after it parsed and validated completely.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::event::ModifyKind;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::authz::{PolicyErrors, PolicyStore, Reloaded};
use crate::metrics::Metrics;
use crate::tls::ServerCert;

/// Keeps the file watcher alive; dropping it stops watching.
pub struct Watcher {
    _watcher: Option<RecommendedWatcher>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watcher { .. }")
    }
}

/// Reloads on the calling thread pool without blocking it.
///
/// # Errors
/// The new set is invalid; the one in force stays.
pub async fn reload(store: Arc<PolicyStore>, metrics: &Metrics) -> Result<Reloaded, PolicyErrors> {
    let previous = store.snapshot().version().to_owned();
    let result = match tokio::task::spawn_blocking(move || store.reload()).await {
        Ok(result) => result,
        Err(e) => Err(PolicyErrors(vec![crate::authz::SourceError {
            path: "<reload>".into(),
            line: None,
            column: None,
            policy_id: None,
            message: e.to_string(),
            source_line: None,
        }])),
    };
    let now = std::time::SystemTime::now();
    match &result {
        Ok(reloaded) => {
            metrics.policy_reloaded(&reloaded.previous, &reloaded.version, now);
            if reloaded.previous != reloaded.version {
                tracing::info!(policy.version = %reloaded.version, policy.previous = %reloaded.previous, "policies reloaded");
            }
        }
        Err(errors) => {
            metrics.policy_reload_failed(now);
            tracing::error!(errors = %errors, policy.version = %previous, "policy reload refused; the policies in force stay");
        }
    }
    result
}

/// Starts reloading on content changes in `dir` (debounced by 500 ms) and on
/// SIGHUP. A watcher that cannot start is logged, not fatal: SIGHUP and
/// `/v1/reload` still work.
pub fn watch(store: Arc<PolicyStore>, metrics: Arc<Metrics>, dir: &Path) -> Watcher {
    let (watcher, mut rx) = triggers(&[dir], RecursiveMode::Recursive, |error| {
        tracing::warn!(%error, dir = %dir.display(), "cannot watch the policies directory; reload with SIGHUP or POST /v1/reload");
    });
    tokio::spawn(async move {
        while let Some(trigger) = settled(&mut rx).await {
            tracing::info!(trigger, "reloading policies");
            let _ = reload(store.clone(), &metrics).await;
        }
    });
    Watcher { _watcher: watcher }
}

/// Reloads the proxy's certificate and key when their files change
/// (watching their directories, so that a Kubernetes Secret's swap of its
/// `..data` link counts; debounced by 500 ms) and on SIGHUP. A pair that
/// does not load is logged and the one in use stays.
pub fn watch_certificate(cert: Arc<ServerCert>) -> Watcher {
    let dirs = cert.files().map(|file| {
        file.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    });
    let (watcher, mut rx) = triggers(&dirs, RecursiveMode::NonRecursive, |error| {
        tracing::warn!(%error, "cannot watch the TLS certificate; reload it with SIGHUP");
    });
    tokio::spawn(async move {
        while let Some(trigger) = settled(&mut rx).await {
            let reloaded = cert.clone();
            match tokio::task::spawn_blocking(move || reloaded.reload()).await {
                Ok(Ok(())) => tracing::info!(trigger, "TLS certificate reloaded"),
                Ok(Err(error)) => {
                    tracing::error!(trigger, %error, "TLS certificate reload refused; the certificate in use stays")
                }
                Err(error) => tracing::error!(%error, "TLS certificate reload failed"),
            }
        }
    });
    Watcher { _watcher: watcher }
}

/// Content changes in `dirs` and SIGHUP, as one stream of triggers; a
/// watcher that cannot start is told to `unwatched` (SIGHUP still works).
fn triggers(
    dirs: &[&Path],
    mode: RecursiveMode,
    unwatched: impl FnOnce(notify::Error),
) -> (
    Option<RecommendedWatcher>,
    mpsc::UnboundedReceiver<&'static str>,
) {
    let (tx, rx) = mpsc::unbounded_channel::<&'static str>();
    let file_tx = tx.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        // Only changes count: reading the files to reload them raises
        // access events, which must not trigger the next reload.
        if event.is_ok_and(|e| is_change(&e.kind)) {
            let _ = file_tx.send("file change");
        }
    })
    .and_then(|mut watcher| {
        for dir in dirs {
            watcher.watch(dir, mode)?;
        }
        Ok(watcher)
    });
    let watcher = watcher.map_err(unwatched).ok();
    on_sighup(tx);
    (watcher, rx)
}

/// The next trigger, once its burst settled: an editor's save or a
/// ConfigMap swap is a burst of events; act once, 500 ms after it.
async fn settled(rx: &mut mpsc::UnboundedReceiver<&'static str>) -> Option<&'static str> {
    let trigger = rx.recv().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    while rx.try_recv().is_ok() {}
    Some(trigger)
}

/// Sends `SIGHUP` into `tx` at each hangup signal. Installed before the
/// gateway says it is listening: a SIGHUP that came before a spawned task
/// ran would end the process (its default action).
fn on_sighup(tx: mpsc::UnboundedSender<&'static str>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        if tx.send("SIGHUP").is_err() {
                            return;
                        }
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGHUP")
            }
        }
    }
}

/// Whether an event changes the directory's content (not just reads it or
/// touches metadata).
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Other => false,
    }
}
