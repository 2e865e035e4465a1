//! `audit serve`: the reviewers' console on its own listener, until Ctrl-C
//! or SIGTERM.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

use super::serve::shutdown_signal;
use super::{load_config, runtime, AuditCommand, Failure, Ran};
use crate::console::http::{self, Access};
use crate::console::{Console, ConsoleSettings};
use crate::server::{self, ServerSettings};
use crate::tls;
use crate::trail::checkpoint;
use crate::trail::verify::VerifyOptions;

/// `audit serve` (any other command is a usage error).
pub(super) fn serve(command: AuditCommand) -> Ran {
    let AuditCommand::Serve {
        files,
        config,
        listen,
        public_key,
        policies,
        partial,
    } = command
    else {
        return Err(Failure::usage("not audit serve"));
    };
    let config = load_config(config.as_deref())?;
    let settings = config.console;
    let files = if files.is_empty() {
        vec![config.audit.dir()]
    } else {
        files
    };
    super::audit::all_exist(&files)?;
    let public_key = public_key.or(settings.public_key);
    let public_key = public_key
        .as_deref()
        .map(checkpoint::read_public_key)
        .transpose()
        .map_err(Failure::usage)?;
    let policies: Vec<PathBuf> = settings.policies.into_iter().chain(policies).collect();
    let began = Instant::now();
    let console = Console::open(ConsoleSettings {
        paths: files,
        verify: VerifyOptions {
            partial,
            checkpoint: None,
            public_key,
        },
        policies,
        base: String::new(),
        reverify_after: None,
    })
    .map_err(Failure::usage)?;
    let indexed = console.index.read().map_or(0, |i| i.entries.len());
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => {
            let cert = Arc::new(tls::ServerCert::load(cert, key).map_err(Failure::usage)?);
            let config =
                tls::server_config(cert, settings.client_ca.as_deref()).map_err(Failure::usage)?;
            Some(tokio_rustls::TlsAcceptor::from(config))
        }
        _ => None,
    };
    let mut access = Access {
        token_sha256: settings.token_sha256,
        certificates: settings.client_ca.is_some(),
        tls: tls.is_some(),
    };
    let mut made_token = None;
    if access.token_sha256.is_none() && !access.certificates {
        let mut bytes = [0u8; 24];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Failure::usage("cannot draw a random console token"))?;
        let token = hex::encode(bytes);
        access.token_sha256 = Some(crate::digest::sha256_hex(&token));
        made_token = Some(token);
    }
    let listen = listen.unwrap_or(settings.listen);
    runtime()
        .map_err(Failure::usage)?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("console: cannot listen on {listen}: {e}"))?;
            let address = listener
                .local_addr()
                .map_err(|e| format!("console: {e}"))?;
            let scheme = if access.tls { "https" } else { "http" };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "console: {scheme}://{address}/ ({indexed} decisions indexed in {:.1} s; verifying the chain in the background)",
                began.elapsed().as_secs_f64()
            );
            if let Some(token) = &made_token {
                // The operator's own terminal, not a log: this one-time token
                // lives as long as this process.
                let _ = writeln!(
                    out,
                    "sign in (one-time token, no [console] token_sha256 set): {scheme}://{address}/login?token={token}"
                );
            }
            let _ = out.flush();
            drop(out);
            console.follow();
            let service = http::service(console.clone(), access);
            server::serve(
                listener,
                tls,
                service,
                ServerSettings {
                    header_read_timeout: Duration::from_secs(10),
                    shutdown_grace: Duration::from_secs(5),
                    h2_max_concurrent_streams: 64,
                    h2_max_pending_accept_reset_streams: 20,
                    h2_max_local_error_reset_streams: 64,
                },
                shutdown_signal(),
            )
            .await;
            console.stop();
            Ok::<(), String>(())
        })
        .map_err(Failure::usage)
}
