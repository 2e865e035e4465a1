//! Starting the gateway: binds the listeners, loads policies, opens the
//! trail, builds the pipeline and serves the proxy and admin listeners
//! until shutdown. The one place that knows every part; no part knows it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::TcpListener;
use tower::util::BoxCloneService;

use crate::config::Config;
use crate::{admin, authz, metrics, pipeline, reload, server, tls, trail};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A TLS file of the proxy listener could not be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The policy set could not be loaded or is invalid.
    #[error(transparent)]
    Policies(#[from] authz::PolicyErrors),
    /// The pipeline cannot be built from the config.
    #[error(transparent)]
    Setup(#[from] pipeline::SetupError),
    /// The decision trail cannot be opened or continued.
    #[error("audit trail: {0}")]
    Trail(#[from] trail::TrailError),
    /// The checkpoint signing key cannot be used.
    #[error(transparent)]
    SigningKey(#[from] trail::checkpoint::CheckpointError),
    /// The console (`[console] enabled`) cannot read the trail or a policy
    /// directory.
    #[error("console: {0}")]
    Console(#[from] crate::console::ConsoleError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// The two bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// Where clients send vendor calls.
    pub proxy: TcpListener,
    /// Health, readiness and metrics.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds both listeners at the configured addresses.
    ///
    /// # Errors
    /// An address is in use or not available.
    pub async fn bind(config: &Config) -> Result<Self, StartError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|error| StartError::Bind { addr, error })
        };
        Ok(Self {
            proxy: bind(config.proxy.listen).await?,
            admin: bind(config.admin.listen).await?,
        })
    }
}

/// Runs the gateway on the given listeners until `shutdown` resolves, then
/// drains in-flight requests (up to `shutdown_grace`) and returns.
///
/// # Errors
/// TLS files or upstreams cannot be set up; nothing is served then.
pub async fn run(
    config: &Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let metrics = Arc::new(metrics::Metrics::new());
    let policies = authz::PolicySnapshot::load(&config.policies.dir)?;
    tracing::info!(
        policy.version = %policies.version(),
        policies = policies.policy_ids().count(),
        dir = %config.policies.dir.display(),
        "policies loaded"
    );
    let observed = metrics.clone();
    let trail = trail::Trail::start_observed(
        trail::WriterConfig {
            path: config.audit.path.clone(),
            replica: config.audit.replica(),
            rotate_bytes: config.audit.rotate_bytes,
            rotate_daily: config.audit.rotate_daily,
            stdout: config.audit.stdout,
            commit: trail::CommitMode::Group,
            checkpoint_every: config.audit.checkpoint_every,
            group_read: config.audit.group_read,
        },
        checkpoint_signer(config)?,
        Some(Box::new(move |batch: &trail::Committed| {
            observed.trail_committed(batch.lines, batch.took);
            if batch.stdout_failed {
                observed.trail_stdout_failed();
            }
        })),
    )?;
    let gateway = Arc::new(pipeline::Gateway::new(
        config,
        policies,
        trail.clone(),
        metrics.clone(),
    )?);
    let _telemetry = crate::telemetry::start(&config.telemetry);
    let (tls, _cert_watcher) = match (&config.proxy.tls_cert, &config.proxy.tls_key) {
        (Some(cert), Some(key)) => {
            let cert = Arc::new(tls::ServerCert::load(cert, key)?);
            let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(
                cert.clone(),
                config.proxy.client_ca.as_deref(),
            )?);
            (Some(acceptor), Some(reload::watch_certificate(cert)))
        }
        _ => (None, None),
    };
    metrics.policy_reloaded(
        "",
        gateway.policies().version(),
        std::time::SystemTime::now(),
    );
    let console = console_on_admin(config)?;
    let admin_state = Arc::new(admin::AdminState {
        metrics,
        ready: true.into(),
        trail: Some(trail),
        gateway: gateway.clone(),
        token_sha256: config.admin.token_sha256.clone(),
        console: console.clone(),
    });
    let _watcher = reload::watch(
        gateway.policy_store().clone(),
        admin_state.metrics.clone(),
        &config.policies.dir,
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let readiness = admin_state.clone();
    tokio::spawn(async move {
        shutdown.await;
        readiness.ready.store(false, Ordering::Release);
        let _ = stop_tx.send(true);
    });

    tracing::info!(
        proxy = %local_addr(&listeners.proxy),
        admin = %local_addr(&listeners.admin),
        tls = tls.is_some(),
        upstreams = config.upstream.len(),
        "listening"
    );
    let settings = server::ServerSettings {
        header_read_timeout: config.proxy.header_read_timeout,
        shutdown_grace: config.proxy.shutdown_grace,
        h2_max_concurrent_streams: config.proxy.h2_max_concurrent_streams,
        h2_max_pending_accept_reset_streams: config.proxy.h2_max_pending_accept_reset_streams,
        h2_max_local_error_reset_streams: config.proxy.h2_max_local_error_reset_streams,
    };
    // Probes and scrapes get a short head timeout of their own.
    let admin_settings = server::ServerSettings {
        header_read_timeout: std::time::Duration::from_secs(5),
        ..settings
    };
    let admin = tokio::spawn(server::serve(
        listeners.admin,
        None,
        BoxCloneService::new(admin::service(admin_state)),
        admin_settings,
        stopped(stop_rx.clone()),
    ));
    server::serve(
        listeners.proxy,
        tls,
        BoxCloneService::new(pipeline::service(gateway)),
        settings,
        stopped(stop_rx),
    )
    .await;
    let _ = admin.await;
    if let Some((console, _)) = console {
        console.stop();
    }
    Ok(())
}

/// The reviewers' console on the admin listener (`[console] enabled`): the
/// gateway's own trail, followed as it is written, the policies in force
/// (and `[console] policies`) quoted on decision pages.
fn console_on_admin(
    config: &Config,
) -> Result<Option<(Arc<crate::console::Console>, crate::console::http::Access)>, StartError> {
    use crate::console::{http::Access, Console, ConsoleSettings};
    if !config.console.enabled {
        return Ok(None);
    }
    let public_key = config
        .console
        .public_key
        .as_deref()
        .map(trail::checkpoint::read_public_key)
        .transpose()?;
    let mut policies = vec![config.policies.dir.clone()];
    policies.extend(config.console.policies.iter().cloned());
    let console = Console::open(ConsoleSettings {
        paths: vec![config.audit.dir()],
        verify: trail::verify::VerifyOptions {
            partial: false,
            checkpoint: None,
            public_key,
        },
        policies,
        base: "/console".to_owned(),
        reverify_after: None,
    })?;
    console.follow();
    let access = Access {
        token_sha256: config.console.token_sha256.clone(),
        certificates: false,
        tls: false,
    };
    Ok(Some((console, access)))
}

/// Signs the writer's in-chain checkpoint records, when a key is configured.
fn checkpoint_signer(
    config: &Config,
) -> Result<Option<trail::writer::CheckpointSigner>, StartError> {
    let Some(path) = &config.audit.signing_key_file else {
        return Ok(None);
    };
    let key = trail::checkpoint::SigningKey::load(path)?;
    tracing::info!(key_id = key.key_id(), "trail: signed checkpoints enabled");
    Ok(Some(Box::new(move |head, time| {
        trail::checkpoint::checkpoint_record(head, time, &key)
    })))
}

fn local_addr(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|e| format!("<{e}>"), |a| a.to_string())
}
