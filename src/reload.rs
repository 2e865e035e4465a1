//! Hot reload of the policy set: on a change in the policies directory
//! (debounced), on SIGHUP, and on `POST /v1/reload`. The gateway swaps a new
//! set in only after it parsed and validated completely.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};
use tokio::sync::mpsc;

use crate::authz::PolicyErrors;
use crate::proxy::{Gateway, Reloaded};

/// Keeps the file watcher alive; dropping it stops watching.
pub struct Watcher {
    _debouncer: Option<Debouncer<RecommendedWatcher>>,
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
pub async fn reload(gateway: Arc<Gateway>) -> Result<Reloaded, PolicyErrors> {
    match tokio::task::spawn_blocking(move || gateway.reload()).await {
        Ok(result) => result,
        Err(e) => Err(PolicyErrors(vec![crate::authz::SourceError {
            path: "<reload>".into(),
            line: None,
            column: None,
            policy_id: None,
            message: e.to_string(),
            source_line: None,
        }])),
    }
}

/// Starts reloading on file changes in `dir` (debounced by 500 ms) and on
/// SIGHUP. A watcher that cannot start is logged, not fatal: SIGHUP and
/// `/v1/reload` still work.
pub fn watch(gateway: Arc<Gateway>, dir: &Path) -> Watcher {
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    let file_tx = tx.clone();
    let debouncer = new_debouncer(
        Duration::from_millis(500),
        move |events: DebounceEventResult| {
            if events.is_ok_and(|events| !events.is_empty()) {
                let _ = file_tx.send("file change");
            }
        },
    )
    .and_then(|mut debouncer| {
        debouncer
            .watcher()
            .watch(dir, RecursiveMode::Recursive)
            .map(|()| debouncer)
    });
    let debouncer = match debouncer {
        Ok(debouncer) => Some(debouncer),
        Err(error) => {
            tracing::warn!(%error, dir = %dir.display(), "cannot watch the policies directory; reload with SIGHUP or POST /v1/reload");
            None
        }
    };
    #[cfg(unix)]
    {
        let hup_tx = tx;
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                if hup_tx.send("SIGHUP").is_err() {
                    return;
                }
            }
        });
    }
    tokio::spawn(async move {
        while let Some(trigger) = rx.recv().await {
            // Coalesce a burst of triggers into one reload.
            while rx.try_recv().is_ok() {}
            tracing::info!(trigger, "reloading policies");
            let _ = reload(gateway.clone()).await;
        }
    });
    Watcher {
        _debouncer: debouncer,
    }
}
