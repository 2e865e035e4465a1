//! `serve` runs the gateway until SIGTERM or SIGINT; `healthcheck` asks a
//! running one's admin listener whether it is healthy.

use std::path::Path;

use super::{load_config, runtime, Failure, Ran};
use crate::Listeners;

/// The log target of the gateway's start and stop lines, the one
/// [`crate::run`] logs `listening` under: collectors filter on it.
const LIFECYCLE: &str = "erasure_gateway";

/// `serve`: binds both listeners and serves until a stop signal, then drains.
pub(super) fn serve(config_path: Option<&Path>) -> Ran {
    let config = load_config(config_path)?;
    // The runtime is dropped before `stopped` is logged: its tasks are done.
    runtime()
        .map_err(Failure::usage)?
        .block_on(async {
            let listeners = Listeners::bind(&config).await?;
            crate::run(&config, listeners, shutdown_signal()).await
        })
        .map_err(|e| Failure::usage(crate::error_chain(&e)))?;
    tracing::info!(target: LIFECYCLE, "stopped");
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C).
pub(super) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!(target: LIFECYCLE, "SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!(target: LIFECYCLE, "SIGINT: shutting down"),
                }
            }
            Err(e) => {
                tracing::warn!(
                    target: LIFECYCLE,
                    error = %e,
                    "cannot watch SIGTERM; only SIGINT stops the gateway"
                );
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `healthcheck`: probes `url`, or the configured admin listener's
/// `/healthz` (on loopback when it listens on every address).
pub(super) fn healthcheck(config_path: Option<&Path>, url: Option<http::Uri>) -> Ran {
    let url = match url {
        Some(url) => url,
        None => {
            let mut addr = load_config(config_path)?.admin.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}/healthz")
                .parse()
                .map_err(|e| Failure::usage(format!("healthcheck: {e}")))?
        }
    };
    runtime()
        .and_then(|rt| rt.block_on(crate::admin::probe(&url)))
        .map_err(|e| Failure::check(format!("unhealthy: {e}")))?;
    Ok(())
}
