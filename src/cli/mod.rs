//! The `erasure-gateway` commands: [`run`] takes a parsed [`Command`] and
//! answers its exit code. One file per command group does the work; this one
//! dispatches, and is the one place that prints a failure and picks its code.
//! The binary keeps only argument parsing and logging setup.

mod approvals;
mod args;
mod audit;
mod certs;
mod console;
mod demo;
mod policy;
mod serve;

use std::fmt::Display;
use std::path::Path;
use std::process::ExitCode;

pub use args::{
    AdminTarget, ApprovalsCommand, AuditCommand, CertsCommand, Command, DecisionArg, ExportArg,
    FormatArg, PolicyCommand, TextOrJson,
};

use crate::config::Config;

/// Exit code for a usage or configuration error (clap uses it too).
const EXIT_USAGE: u8 = 2;
/// Exit code for a check that failed.
const EXIT_CHECK_FAILED: u8 = 1;

/// Runs one command to its end.
///
/// Output goes to stdout and stderr as each command documents; the exit
/// code is 0 on success, 1 when a check failed and 2 for a usage or
/// configuration error.
#[must_use]
pub fn run(command: Command) -> ExitCode {
    let ran = match command {
        Command::Serve { config } => serve::serve(config.as_deref()),
        Command::Demo { dir } => demo::demo(&dir),
        Command::Audit(command) => audit::run(command),
        Command::Policy(command) => policy::run(command),
        Command::Explain {
            config,
            request,
            format,
        } => policy::explain(config.as_deref(), &request, format),
        Command::Approvals(command) => approvals::run(command),
        Command::Certs(CertsCommand::Dev { out }) => certs::dev(&out),
        Command::Healthcheck { config, url } => serve::healthcheck(config.as_deref(), url),
        // Both need the whole command line's definition, which the binary
        // holds: it answers them before calling here.
        Command::Completions { .. } | Command::Man => Err(Failure::usage(
            "completions and man are answered by the erasure-gateway binary",
        )),
    };
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("erasure-gateway: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Check(message)) => {
            eprintln!("erasure-gateway: {message}");
            ExitCode::from(EXIT_CHECK_FAILED)
        }
        Err(Failure::Reported) => ExitCode::from(EXIT_CHECK_FAILED),
    }
}

/// Why a command did not succeed. [`run`] turns it into the exit code and
/// prints its message, if any, on stderr after `erasure-gateway: `.
#[derive(Debug)]
enum Failure {
    /// A usage or configuration error (exit 2): a missing file, a bad value.
    Usage(String),
    /// A check that failed (exit 1), said in one message.
    Check(String),
    /// A check that failed (exit 1) and printed its own report on stdout.
    Reported,
}

impl Failure {
    fn usage(message: impl Display) -> Self {
        Self::Usage(message.to_string())
    }

    fn check(message: impl Display) -> Self {
        Self::Check(message.to_string())
    }
}

/// What every command answers: success, or why not.
type Ran = Result<(), Failure>;

/// Loads the configuration file, or the embedded default without one.
fn load_config(path: Option<&Path>) -> Result<Config, Failure> {
    match path {
        Some(path) => Config::load(path),
        None => Config::parse("", Path::new("<embedded default>")),
    }
    .map_err(|e| Failure::usage(format!("config error: {e}")))
}

/// The multi-threaded runtime the async commands run on.
///
/// # Errors
/// The runtime cannot start. Each command reports that in its own words and
/// with its own exit code, so this answers only the message.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {}", crate::error_chain(&e)))
}
