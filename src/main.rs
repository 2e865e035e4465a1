//! The `erasure-gateway` command: parses the command line, sets up logging,
//! loads config and hands over to the library.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use erasure_gateway::config::Config;
use erasure_gateway::{certs, Listeners};

/// Exit code for a usage or configuration error (clap uses it too).
const EXIT_USAGE: u8 = 2;
/// Exit code for a check that failed.
const EXIT_CHECK_FAILED: u8 = 1;

#[derive(Parser)]
#[command(
    name = "erasure-gateway",
    version,
    about = "A reverse proxy that decides vendor data-erasure calls with Cedar policies",
    long_about = "erasure-gateway stands in front of vendor APIs (Seam, Kore.ai, BotPenguin, and \
vendors described in config). It recognises every customer-data erasure call, decides it with \
Cedar policies, records the decision, and forwards only what policy allows. Everything else \
passes through untouched.",
    after_help = "Exit codes: 0 success, 1 a check failed, 2 usage or configuration error.\n\
Logging: RUST_LOG sets the level (default `info`), e.g. RUST_LOG=erasure_gateway=debug."
)]
struct Cli {
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: proxy and admin listeners.
    #[command(after_help = "Examples:\n  \
erasure-gateway serve\n      \
embedded default: proxy on 127.0.0.1:8080, admin on 127.0.0.1:9090, routes\n      \
/seam, /kore, /botpenguin to the vendors' public APIs\n  \
erasure-gateway serve --config /etc/erasure-gateway/gateway.toml\n\n\
SIGTERM or SIGINT stops accepting, lets in-flight requests finish within\n\
[proxy] shutdown_grace, then exits 0.")]
    Serve {
        /// TOML configuration file; every key is optional.
        #[arg(long, short, value_name = "FILE", env = "ERASURE_GATEWAY_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Make development certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Ask a running gateway's admin /healthz; exit 0 when healthy, 1 if not.
    #[command(after_help = "Examples:\n  \
erasure-gateway healthcheck\n  \
erasure-gateway healthcheck --url http://127.0.0.1:9090/healthz\n\n\
Meant for container HEALTHCHECK instructions: it needs no shell or curl.")]
    Healthcheck {
        /// Read the admin address from this configuration file.
        #[arg(long, short, value_name = "FILE", env = "ERASURE_GATEWAY_CONFIG")]
        config: Option<PathBuf>,
        /// Probe this URL instead.
        #[arg(long, conflicts_with = "config")]
        url: Option<http::Uri>,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a development CA, a server certificate for localhost/127.0.0.1
    /// and a client certificate (never for production).
    #[command(after_help = "Example:\n  \
erasure-gateway certs dev --out certs/dev\n\n\
Then in the config:\n  \
[proxy]\n  \
tls_cert = \"certs/dev/gateway.pem\"\n  \
tls_key = \"certs/dev/gateway-key.pem\"\n  \
client_ca = \"certs/dev/ca.pem\"   # to require client certificates")]
    Dev {
        /// Directory to write into (created if missing).
        #[arg(long, default_value = "certs/dev", value_name = "DIR")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::Certs(CertsCommand::Dev { out }) => certs_dev(&out),
        Command::Healthcheck { config, url } => healthcheck(config.as_deref(), url),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
    let loaded = match path {
        Some(path) => Config::load(path),
        None => Config::parse("", Path::new("<embedded default>")),
    };
    loaded.map_err(|e| {
        eprintln!("erasure-gateway: config error: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn serve(config_path: Option<&Path>) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            let listeners = Listeners::bind(&config).await?;
            erasure_gateway::run(&config, listeners, shutdown_signal()).await?;
            anyhow::Ok(())
        })
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("erasure-gateway: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops the gateway");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn certs_dev(out: &Path) -> ExitCode {
    match certs::DevCerts::generate().and_then(|c| c.write(out)) {
        Ok(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
            println!("development use only: the keys are unencrypted and the CA is throwaway");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("erasure-gateway: certs dev: {e}");
            ExitCode::from(EXIT_CHECK_FAILED)
        }
    }
}

fn healthcheck(config_path: Option<&Path>, url: Option<http::Uri>) -> ExitCode {
    let url = match url {
        Some(url) => url,
        None => {
            let config = match load_config(config_path) {
                Ok(config) => config,
                Err(code) => return code,
            };
            let mut addr = config.admin.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            match format!("http://{addr}/healthz").parse() {
                Ok(url) => url,
                Err(e) => {
                    eprintln!("erasure-gateway: healthcheck: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
    };
    let result = runtime()
        .map_err(|e| format!("{e:#}"))
        .and_then(|rt| rt.block_on(erasure_gateway::admin::probe(&url)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("erasure-gateway: unhealthy: {e}");
            ExitCode::from(EXIT_CHECK_FAILED)
        }
    }
}
