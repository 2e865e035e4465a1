//! The `erasure-gateway` command: parses the command line, sets up logging
//! and hands the command to [`erasure_gateway::cli::run`], which does the
//! work and picks the exit code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use erasure_gateway::cli::{self, Command};

/// jemalloc instead of glibc's malloc (feature `jemalloc`, on by default).
/// On the erasure path glibc's malloc took about a third of the request
/// workers' time, much of it waiting for arena locks: the trail writer
/// frees what the workers allocated. jemalloc cuts the gateway's CPU per
/// erasure call by a quarter for a few MiB more at 1,000 connections; see
/// BENCHMARKS.md.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "erasure-gateway",
    version,
    about = "A reverse proxy that decides vendor data-erasure calls with Cedar policies",
    long_about = "erasure-gateway stands in front of vendor APIs (Seam, Kore.ai, BotPenguin, and \
vendors described in config). It recognises every customer-data erasure call, decides it with \
Cedar policies, records the decision, and forwards only what policy allows. Everything else \
passes through untouched.",
    after_help = "Start with `erasure-gateway demo`; `erasure-gateway help <command>` explains each\n\
command with examples.\n\n\
Exit codes: 0 success, 1 a check failed, 2 usage or configuration error.\n\
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(
                *shell,
                &mut command,
                "erasure-gateway",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            let man = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            return match man.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                // `erasure-gateway man | head`: the reader had enough.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("erasure-gateway: man: {e}");
                    ExitCode::from(1)
                }
            };
        }
        _ => {}
    }
    // The demo prints its own account; the gateway's info logs would bury it.
    let default_level = if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "info"
    };
    // `serve` with `[telemetry] otlp_endpoint` exports spans.
    let otel = match &cli.command {
        Command::Serve { config } => erasure_gateway::telemetry::layer(config.as_deref()),
        _ => None,
    };
    init_logging(cli.log_format, default_level, otel);
    cli::run(cli.command)
}

/// Logs to stderr at `RUST_LOG`'s level, or `default_level` without it.
fn init_logging(
    format: LogFormat,
    default_level: &str,
    otel: Option<erasure_gateway::telemetry::OtelLayer>,
) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only for a person at a terminal: collectors (Kubernetes logs,
    // files, pipes) get plain text.
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let subscriber = tracing_subscriber::registry().with(otel).with(filter);
    match format {
        LogFormat::Text => subscriber.with(fmt).init(),
        LogFormat::Json => subscriber.with(fmt.json().flatten_event(true)).init(),
    }
}
