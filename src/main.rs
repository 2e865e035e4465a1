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

#[derive(Subcommand)]
enum Command {
    /// See the gateway at work: stand-in vendors, sample and refused calls,
    /// a decision table, and a verified trail. Needs no network or setup.
    #[command(
        after_help = "Example:\n  erasure-gateway demo\n  erasure-gateway demo --dir /tmp/eg-demo\n\n\
Starts stand-in Seam, Kore.ai and BotPenguin servers and the real gateway on\n\
loopback ports, writes the config, policies and trail under --dir, sends the\n\
vendors' documented sample calls and calls the default policies refuse, prints\n\
what was decided, and verifies the trail. Exit 0 only if every call was decided\n\
as expected."
    )]
    Demo {
        /// Where to write the demo's config, policies and trail (a previous
        /// demo there is replaced; any other existing content is refused).
        #[arg(long, default_value = "demo-run", value_name = "DIR")]
        dir: PathBuf,
    },
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
    /// Check, test and format the Cedar policies (for security teams).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Decide a described request offline and say why.
    #[command(after_help = "Examples:\n  \
erasure-gateway explain --request owner.toml\n  \
echo '{\"vendor\":\"botpenguin\",\"method\":\"DELETE\",\"path\":\"/customer/c-1\"}' \\\n    | erasure-gateway explain --request -\n\n\
A described request (TOML, or JSON starting with `{`):\n  \
vendor = \"kore\"                      # profile: seam, kore, botpenguin, or a [[profile]]\n  \
method = \"DELETE\"\n  \
path = \"/api/public/bot/eraseUsersData\"   # as the vendor sees it, with ?query if any\n  \
headers = { auth = \"…\" }             # the credential is identified with [[caller]]/[jwt]…\n  \
caller = { id = \"ops\", roles = [\"privacy-officer\"] }   # …unless a caller is given\n  \
json = { userIds = [\"owner@example.com\"] }   # or body = '…' for exact bytes\n  \
entities = [ … ]                     # extra Cedar entities for this request\n\n\
Uses the config's policies, callers, JWT settings, profiles and entity directory.")]
    Explain {
        /// Gateway configuration (policies dir, callers, profiles, directory).
        #[arg(long, short, value_name = "FILE", env = "ERASURE_GATEWAY_CONFIG")]
        config: Option<PathBuf>,
        /// The described request, or `-` for standard input.
        #[arg(long, value_name = "FILE")]
        request: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Read, verify and sign the decision trail (for audit reviewers).
    #[command(subcommand)]
    Audit(AuditCommand),
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
enum AuditCommand {
    /// Prove the trail untouched, or name the first record that breaks it.
    #[command(after_help = "Examples:\n  \
erasure-gateway audit verify audit/decisions-gw1-*.jsonl\n  \
erasure-gateway audit verify audit/ --checkpoint head-2026-11-22.json --public-key audit-signing.pub\n\n\
Files are checked oldest first (a shell glob sorts them so; a directory is\n\
expanded to its *.jsonl files). Checks every record's hash, sequence and link\n\
to the one before, across rotated files. With --checkpoint, also fails when\n\
the trail no longer reaches the signed head (records removed from the end).\n\
Exit 0 and a summary when intact; exit 1 naming file, line and seq when not.")]
    Verify {
        /// Trail files or directories, oldest first.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// A signed checkpoint (from `audit checkpoint`) the trail must reach.
        #[arg(long, value_name = "CP")]
        checkpoint: Option<PathBuf>,
        /// The reviewer's copy of the signing public key (PEM or hex): pins
        /// the checkpoint's key and checks in-chain checkpoint records.
        #[arg(long, value_name = "PEM")]
        public_key: Option<PathBuf>,
        /// Accept a trail whose first file is not the chain's start (older
        /// files archived elsewhere).
        #[arg(long)]
        partial: bool,
    },
    /// List decisions, joined with their outcomes, filtered.
    #[command(after_help = "Examples:\n  \
erasure-gateway audit query audit/ --decision deny --since 2026-11-01\n  \
erasure-gateway audit query audit/ --vendor kore --policy kore-never-erase-account-owners --format csv\n  \
erasure-gateway audit query audit/ --target owner@example.com --pseudonym-key /run/secrets/pseudonym-key\n\n\
Query reads records; it does not verify the chain: run `audit verify` for that.")]
    Query {
        /// Trail files or directories, oldest first.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Only decisions at or after this time (RFC 3339 with `Z` or an
        /// offset such as `+01:00`, or YYYY-MM-DD for midnight UTC).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Only decisions before this time.
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Only allowed or only denied calls.
        #[arg(long, value_enum)]
        decision: Option<DecisionArg>,
        /// Only this vendor profile (seam, kore, botpenguin, …).
        #[arg(long)]
        vendor: Option<String>,
        /// Only this caller id.
        #[arg(long)]
        caller: Option<String>,
        /// Only calls naming this target id (or `Type::id`).
        #[arg(long, value_name = "ID")]
        target: Option<String>,
        /// Only calls decided by this policy id.
        #[arg(long, value_name = "ID")]
        policy: Option<String>,
        /// The key the trail's pseudonyms were made with, to find a target
        /// in a pseudonymized trail.
        #[arg(long, value_name = "FILE")]
        pseudonym_key: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
    },
    /// Print the last records of a trail file, and follow new ones.
    #[command(
        after_help = "Example:\n  erasure-gateway audit tail audit/decisions-gw1-20261122T000000.000Z.jsonl -n 20 --follow"
    )]
    Tail {
        /// The trail file.
        file: PathBuf,
        /// How many records to print first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        /// Keep printing records as they are appended (and across rotation).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Verify the trail, then print its head signed with an Ed25519 key: store
    /// the output elsewhere (a ticket, a WORM bucket) to detect truncation.
    #[command(after_help = "Example:\n  \
erasure-gateway audit checkpoint audit/ --key /run/secrets/audit-signing.pem > head.json\n  \
erasure-gateway audit verify audit/ --checkpoint head.json --public-key audit-signing.pub")]
    Checkpoint {
        /// Trail files or directories, oldest first.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Ed25519 private key, PEM PKCS#8 (`audit keygen`, or `openssl genpkey -algorithm ed25519`).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// Make an Ed25519 signing key for checkpoints (and print its public key).
    #[command(
        after_help = "Example:\n  erasure-gateway audit keygen --out audit-signing.pem\n\n\
Writes the private key (PEM PKCS#8, mode 0600; never overwrites) and the\n\
public key next to it as audit-signing.pub. Give reviewers the .pub file:\n\
`audit verify --public-key` pins it. OpenSSL keys work too:\n\
  openssl genpkey -algorithm ed25519 -out audit-signing.pem"
    )]
    Keygen {
        /// Where to write the private key (mode 0600); the public key goes to FILE.pub.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Parse and strictly validate every policy, the schema and entities.json.
    #[command(
        after_help = "Example:\n  erasure-gateway policy validate --policies policies/\n\n\
Errors are printed as file:line:col with the policy id and the offending line;\n\
warnings flag policies that load but can never apply. Exit 0 valid, 1 not."
    )]
    Validate {
        /// The policy directory.
        #[arg(long, default_value = "policies", value_name = "DIR")]
        policies: PathBuf,
    },
    /// Run the cases in DIR/tests/*.toml through the gateway's decision path.
    #[command(
        after_help = "Example:\n  erasure-gateway policy test --policies policies/\n\n\
A case file holds [[case]] tables: name, request (see `explain --help`) and\n\
expect = { decision = \"allow\" | \"deny\" | \"pass-through\", policies = [ids], reason = \"phrase\" }.\n\
Prints each failing case with expected vs actual, then `N passed, M failed`;\n\
exit 1 on any failure."
    )]
    Test {
        /// The policy directory (cases in its tests/ folder).
        #[arg(long, default_value = "policies", value_name = "DIR")]
        policies: PathBuf,
        /// Configuration with the [[profile]]s custom vendors use.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Re-decide a recorded trail with a candidate policy set; list the flips.
    #[command(after_help = "Example:\n  \
erasure-gateway policy replay --trail audit/ --policies ./candidate-policies\n\n\
Every decision Cedar made (not calls refused before it) is decided again with\n\
the candidate set, from the principal, roles, action, targets and context the\n\
trail recorded. Decisions that would change are listed, grouped by direction\n\
(allow → deny, deny → allow) and by the policies responsible. Entities that\n\
came from the directory at the time are not in the trail; pseudonymized\n\
records are skipped. Exit 0 when nothing flips, 1 when something does.")]
    Replay {
        /// Trail files or directories, oldest first.
        #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
        trail: Vec<PathBuf>,
        /// The candidate policy directory.
        #[arg(long, value_name = "DIR")]
        policies: PathBuf,
    },
    /// Format the *.cedar files with Cedar's own formatter.
    #[command(
        after_help = "Examples:\n  erasure-gateway policy fmt\n  erasure-gateway policy fmt --check   # exit 1 if a file would change"
    )]
    Fmt {
        /// The policy directory.
        #[arg(long, default_value = "policies", value_name = "DIR")]
        policies: PathBuf,
        /// Change nothing; exit 1 when a file is not formatted.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum TextOrJson {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum DecisionArg {
    Allow,
    Deny,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Table,
    Json,
    Csv,
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
    // The demo prints its own account; the gateway's info logs would bury it.
    let default_level = if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "info"
    };
    init_logging(cli.log_format, default_level);
    match cli.command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::Demo { dir } => demo(&dir),
        Command::Audit(command) => audit::run(command),
        Command::Policy(command) => policy::run(command),
        Command::Explain {
            config,
            request,
            format,
        } => policy::explain(config.as_deref(), &request, format),
        Command::Certs(CertsCommand::Dev { out }) => certs_dev(&out),
        Command::Healthcheck { config, url } => healthcheck(config.as_deref(), url),
    }
}

mod policy {
    //! `policy …` and `explain`: the security team's tools.
    use std::path::Path;
    use std::process::ExitCode;

    use erasure_gateway::authz::PolicySnapshot;
    use erasure_gateway::config::Config;
    use erasure_gateway::directory::Directory;
    use erasure_gateway::identity::Identifier;
    use erasure_gateway::offline::cases;
    use erasure_gateway::offline::described::DescribedRequest;
    use erasure_gateway::pipeline::evaluate::Evaluator;

    use super::{load_config, runtime, PolicyCommand, TextOrJson, EXIT_CHECK_FAILED, EXIT_USAGE};

    fn usage(message: impl std::fmt::Display) -> ExitCode {
        eprintln!("erasure-gateway: {message}");
        ExitCode::from(EXIT_USAGE)
    }

    pub(super) fn run(command: PolicyCommand) -> ExitCode {
        match command {
            PolicyCommand::Validate { policies } => validate(&policies),
            PolicyCommand::Test { policies, config } => test(&policies, config.as_deref()),
            PolicyCommand::Fmt { policies, check } => fmt(&policies, check),
            PolicyCommand::Replay { trail, policies } => replay(&trail, &policies),
        }
    }

    fn validate(dir: &Path) -> ExitCode {
        // Ids the built-in vendors compare normalised must be written so.
        let forms: Vec<_> = erasure_gateway::profile::builtins()
            .unwrap_or_default()
            .iter()
            .flat_map(erasure_gateway::profile::VendorProfile::id_forms)
            .collect();
        let loaded = PolicySnapshot::load(dir)
            .and_then(|snapshot| snapshot.check_id_forms(&forms).map(|()| snapshot));
        match loaded {
            Ok(snapshot) => {
                for warning in snapshot.warnings() {
                    println!("warning: {warning}");
                }
                println!(
                    "OK {} policies in {} ({}), {} warning(s)",
                    snapshot.policy_ids().count(),
                    dir.display(),
                    snapshot.short_version(),
                    snapshot.warnings().len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for error in &errors.0 {
                    println!("error: {error}");
                }
                println!("{} error(s)", errors.0.len());
                ExitCode::from(super::EXIT_CHECK_FAILED)
            }
        }
    }

    fn test(dir: &Path, config: Option<&Path>) -> ExitCode {
        let config = match load_config(config) {
            Ok(config) => config,
            Err(code) => return code,
        };
        let snapshot = match PolicySnapshot::load(dir) {
            Ok(snapshot) => snapshot,
            Err(errors) => {
                println!("{errors}");
                return ExitCode::from(EXIT_CHECK_FAILED);
            }
        };
        let cases = match cases::load_cases(dir) {
            Ok(cases) => cases,
            Err(e) => return usage(e),
        };
        let identifier = match Identifier::new(&[], None) {
            Ok(identifier) => identifier,
            Err(e) => return usage(e),
        };
        let evaluator = Evaluator::new(identifier, None);
        let results = match runtime() {
            Ok(rt) => rt.block_on(cases::run(&cases, &snapshot, &evaluator, |name| {
                config.profile_named(name).ok()
            })),
            Err(e) => return usage(format!("{e:#}")),
        };
        let mut failed = 0;
        for result in &results {
            if let Some(why) = &result.failure {
                failed += 1;
                println!("FAIL {}: {}\n    {why}", result.file.display(), result.name);
            }
        }
        println!("{} passed, {failed} failed", results.len() - failed);
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_CHECK_FAILED)
        }
    }

    fn replay(trail: &[std::path::PathBuf], dir: &Path) -> ExitCode {
        let candidate = match PolicySnapshot::load(dir) {
            Ok(snapshot) => snapshot,
            Err(errors) => {
                println!("{errors}");
                return ExitCode::from(EXIT_CHECK_FAILED);
            }
        };
        match erasure_gateway::offline::replay::replay(trail, &candidate) {
            Ok(report) => {
                print!("{}", report.render());
                if report.flips.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(EXIT_CHECK_FAILED)
                }
            }
            Err(e) => usage(e),
        }
    }

    fn fmt(dir: &Path, check: bool) -> ExitCode {
        let files = match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut files: Vec<_> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
                    .collect();
                files.sort();
                files
            }
            Err(e) => return usage(format!("{}: {e}", dir.display())),
        };
        let config = cedar_policy_formatter::Config::default();
        let mut unformatted = 0;
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(e) => return usage(format!("{}: {e}", file.display())),
            };
            let pretty = match cedar_policy_formatter::policies_str_to_pretty(&text, &config) {
                Ok(pretty) => pretty,
                Err(e) => {
                    println!("error: {}: {e}", file.display());
                    return ExitCode::from(EXIT_CHECK_FAILED);
                }
            };
            if pretty == text {
                continue;
            }
            unformatted += 1;
            if check {
                println!("would reformat {}", file.display());
            } else if let Err(e) = std::fs::write(&file, pretty) {
                return usage(format!("{}: {e}", file.display()));
            } else {
                println!("formatted {}", file.display());
            }
        }
        if check && unformatted > 0 {
            ExitCode::from(EXIT_CHECK_FAILED)
        } else {
            ExitCode::SUCCESS
        }
    }

    pub(super) fn explain(config: Option<&Path>, request: &Path, format: TextOrJson) -> ExitCode {
        let config: Config = match load_config(config) {
            Ok(config) => config,
            Err(code) => return code,
        };
        let text = if request == Path::new("-") {
            let mut text = String::new();
            match std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
                Ok(_) => text,
                Err(e) => return usage(format!("stdin: {e}")),
            }
        } else {
            match std::fs::read_to_string(request) {
                Ok(text) => text,
                Err(e) => return usage(format!("{}: {e}", request.display())),
            }
        };
        let described = match DescribedRequest::parse(&text) {
            Ok(described) => described,
            Err(e) => return usage(format!("{}: {e}", request.display())),
        };
        let profile = match config.profile_named(&described.vendor) {
            Ok(profile) => profile,
            Err(e) => return usage(e),
        };
        let snapshot = match PolicySnapshot::load(&config.policies.dir) {
            Ok(snapshot) => snapshot,
            Err(errors) => return usage(errors),
        };
        let identifier = match Identifier::new(&config.caller, config.jwt.as_ref()) {
            Ok(identifier) => identifier,
            Err(e) => return usage(e),
        };
        let explained = runtime().map_err(|e| format!("{e:#}")).and_then(|rt| {
            rt.block_on(async {
                let directory = config
                    .policies
                    .directory()
                    .map(|d| Directory::new(&d))
                    .transpose()
                    .map_err(|e| e.to_string())?;
                let evaluator = Evaluator::new(identifier, directory);
                described
                    .explain(&profile, &evaluator, &snapshot)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        match explained {
            Ok(explanation) => {
                match format {
                    TextOrJson::Text => print!("{}", explanation.render()),
                    TextOrJson::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&explanation).unwrap_or_default()
                    ),
                }
                ExitCode::SUCCESS
            }
            Err(e) => usage(e),
        }
    }
}

mod audit {
    //! `audit …`: thin wrappers over the library's trail readers.
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::SystemTime;

    use erasure_gateway::trail::checkpoint::{self, Checkpoint, SigningKey};
    use erasure_gateway::trail::pseudonym::PseudonymKey;
    use erasure_gateway::trail::query::{self, DecisionValue, QueryFilter};
    use erasure_gateway::trail::verify::{verify_files, VerifyOptions};

    use super::{AuditCommand, DecisionArg, FormatArg, EXIT_CHECK_FAILED, EXIT_USAGE};

    fn usage(message: impl std::fmt::Display) -> ExitCode {
        eprintln!("erasure-gateway: {message}");
        ExitCode::from(EXIT_USAGE)
    }

    /// A usage error for the first path that does not exist: a mistyped
    /// path is not a tampered trail, so verify must not answer exit 1.
    fn missing(paths: &[PathBuf]) -> Option<ExitCode> {
        let absent = paths.iter().find(|p| !p.try_exists().unwrap_or(true))?;
        Some(usage(format!(
            "{}: no such file or directory",
            absent.display()
        )))
    }

    pub(super) fn run(command: AuditCommand) -> ExitCode {
        let paths = match &command {
            AuditCommand::Verify { files, .. }
            | AuditCommand::Query { files, .. }
            | AuditCommand::Checkpoint { files, .. } => files.as_slice(),
            AuditCommand::Tail { file, .. } => std::slice::from_ref(file),
            AuditCommand::Keygen { .. } => &[],
        };
        if let Some(code) = missing(paths) {
            return code;
        }
        match command {
            AuditCommand::Verify {
                files,
                checkpoint,
                public_key,
                partial,
            } => verify(
                &files,
                checkpoint.as_deref(),
                public_key.as_deref(),
                partial,
            ),
            AuditCommand::Query {
                files,
                since,
                until,
                decision,
                vendor,
                caller,
                target,
                policy,
                pseudonym_key,
                format,
            } => {
                let time = |t: Option<String>| t.as_deref().map(query::parse_time).transpose();
                let (since, until) = match (time(since), time(until)) {
                    (Ok(since), Ok(until)) => (since, until),
                    (Err(e), _) | (_, Err(e)) => return usage(e),
                };
                let key = match pseudonym_key.as_deref().map(PseudonymKey::load).transpose() {
                    Ok(key) => key,
                    Err(e) => return usage(e),
                };
                let filter = QueryFilter {
                    since,
                    until,
                    decision: decision.map(|d| match d {
                        DecisionArg::Allow => DecisionValue::Allow,
                        DecisionArg::Deny => DecisionValue::Deny,
                    }),
                    vendor,
                    caller,
                    target,
                    policy,
                };
                match query::query_files(&files, &filter, key.as_ref()) {
                    Ok(output) => {
                        for warning in &output.warnings {
                            eprintln!("warning: {warning}");
                        }
                        let text = match format {
                            FormatArg::Table => query::render_table(&output.rows),
                            FormatArg::Json => query::render_json(&output.rows),
                            FormatArg::Csv => query::render_csv(&output.rows),
                        };
                        print!("{text}");
                        if matches!(format, FormatArg::Table) {
                            eprintln!("{} decisions", output.rows.len());
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => usage(e),
                }
            }
            AuditCommand::Tail {
                file,
                lines,
                follow,
            } => tail(&file, lines, follow),
            AuditCommand::Checkpoint { files, key } => sign(&files, &key),
            AuditCommand::Keygen { out } => keygen(&out),
        }
    }

    fn verify(
        files: &[PathBuf],
        checkpoint: Option<&Path>,
        public_key: Option<&Path>,
        partial: bool,
    ) -> ExitCode {
        let checkpoint = match checkpoint.map(Checkpoint::load).transpose() {
            Ok(cp) => cp,
            Err(e) => return usage(e),
        };
        let public_key = match public_key.map(checkpoint::read_public_key).transpose() {
            Ok(key) => key,
            Err(e) => return usage(e),
        };
        let options = VerifyOptions {
            partial,
            checkpoint,
            public_key,
        };
        match verify_files(files, &options) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(failure) => {
                println!("{failure}");
                ExitCode::from(EXIT_CHECK_FAILED)
            }
        }
    }

    fn tail(file: &Path, lines: usize, follow: bool) -> ExitCode {
        let stop = Arc::new(AtomicBool::new(false));
        if follow {
            let flag = stop.clone();
            std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    let _ = rt.block_on(tokio::signal::ctrl_c());
                }
                flag.store(true, Ordering::Release);
            });
        }
        let out = std::io::stdout().lock();
        match erasure_gateway::trail::tail::tail(file, lines, follow, out, || {
            stop.load(Ordering::Acquire)
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => usage(e),
        }
    }

    fn sign(files: &[PathBuf], key: &Path) -> ExitCode {
        let key = match SigningKey::load(key) {
            Ok(key) => key,
            Err(e) => return usage(e),
        };
        // Sign only a head that verifies: a signature vouches for every record.
        let summary = match verify_files(files, &VerifyOptions::default()) {
            Ok(summary) => summary,
            Err(failure) => {
                println!("{failure}");
                return ExitCode::from(EXIT_CHECK_FAILED);
            }
        };
        let Some(head) = summary.head else {
            return usage("the trail is empty: nothing to sign");
        };
        println!(
            "{}",
            checkpoint::sign(&head, SystemTime::now(), &key).to_json()
        );
        eprintln!("signed seq {} with key {}", head.seq, key.key_id());
        ExitCode::SUCCESS
    }

    fn keygen(out: &Path) -> ExitCode {
        let pem = match checkpoint::generate_pem() {
            Ok(pem) => pem,
            Err(e) => return usage(e),
        };
        if out.exists() {
            return usage(format!("{}: exists; not overwriting a key", out.display()));
        }
        let written = write_private(out, &pem).and_then(|()| {
            let key = SigningKey::load(out).map_err(std::io::Error::other)?;
            let public = out.with_extension("pub");
            std::fs::write(&public, key.public_key_pem())?;
            println!(
                "wrote {} (private, 0600) and {}",
                out.display(),
                public.display()
            );
            println!("key id {}", key.key_id());
            Ok(())
        });
        match written {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => usage(format!("{}: {e}", out.display())),
        }
    }

    fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options.open(path)?.write_all(text.as_bytes())
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
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

fn demo(dir: &Path) -> ExitCode {
    let result = runtime().and_then(|rt| {
        rt.block_on(erasure_gateway::demo::run(dir))
            .map_err(anyhow::Error::from)
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_CHECK_FAILED),
        Err(e) => {
            eprintln!("erasure-gateway: demo: {e:#}");
            ExitCode::from(EXIT_CHECK_FAILED)
        }
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
