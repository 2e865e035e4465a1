//! The command line's shape: every subcommand, flag and help text, as clap
//! derives them. The doc comments here are the `--help` text, so they speak
//! to the person at the terminal; what each command does lives beside it in
//! [`super`]'s command-group files.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

/// The gateway's commands.
#[derive(Subcommand)]
pub enum Command {
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
    /// List, approve and reject erasure calls held for a second caller's
    /// approval (four eyes), on a running gateway's admin listener.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Make development certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:\n  \
erasure-gateway completions bash > /etc/bash_completion.d/erasure-gateway\n  \
erasure-gateway completions zsh > \"${fpath[1]}/_erasure-gateway\"\n  \
erasure-gateway completions fish > ~/.config/fish/completions/erasure-gateway.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), for `man`.
    #[command(after_help = "Example:\n  \
erasure-gateway man > /usr/local/share/man/man1/erasure-gateway.1 && man erasure-gateway")]
    Man,
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

/// Where and as whom `approvals …` talks to the gateway.
#[derive(clap::Args, Debug, Clone)]
pub struct AdminTarget {
    /// Read the admin address from this configuration file.
    #[arg(long, short, value_name = "FILE", env = "ERASURE_GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// The admin listener's base URL instead (e.g. http://127.0.0.1:9090).
    #[arg(long, value_name = "URL", conflicts_with = "config")]
    pub admin_url: Option<http::Uri>,
    /// The environment variable holding your own caller credential (the
    /// token your `[[caller]]` entry hashes, or a JWT). Never given on the
    /// command line, where other users could read it.
    #[arg(long, value_name = "VAR", default_value = "ERASURE_GATEWAY_TOKEN")]
    pub token_env: String,
}

/// `approvals …`: four-eyes approval of held erasure calls.
#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// The held calls that have not expired: pending, approved, rejected, used.
    #[command(after_help = "Example:
  ERASURE_GATEWAY_TOKEN=… erasure-gateway approvals list --admin-url http://127.0.0.1:9090

Needs a caller in the approver role ([budgets] approver_role), or the admin token.")]
    List {
        /// The gateway and the credential.
        #[command(flatten)]
        target: AdminTarget,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Approve a held call: its requester's identical call then goes ahead, once.
    #[command(after_help = "Example:
  ERASURE_GATEWAY_TOKEN=… erasure-gateway approvals approve 0193… --note \"ticket PRIV-42\"

Four eyes: you must hold the approver role and must not be the caller who made
the held call. The approval is on the trail before it takes effect.")]
    Approve {
        /// The approval id (in the held call's answer and `approvals list`).
        id: String,
        /// Why, for the trail.
        #[arg(long)]
        note: Option<String>,
        /// The gateway and the credential.
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Reject a held call: it stays refused (asking again opens a new approval).
    Reject {
        /// The approval id.
        id: String,
        /// Why, for the trail.
        #[arg(long)]
        note: Option<String>,
        /// The gateway and the credential.
        #[command(flatten)]
        target: AdminTarget,
    },
}

/// `audit …`: read, verify and sign the decision trail.
#[derive(Subcommand)]
pub enum AuditCommand {
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
        /// Also check a receipt (`audit receipt --format json`) against the
        /// trail: each record unmodified and in the trail, none about the
        /// target left out, its state, time, caller and policies the ones
        /// its records make, the checkpoint covering them (its signature
        /// checked with --public-key).
        #[arg(long, value_name = "RECEIPT")]
        receipt: Option<PathBuf>,
        /// The key the trail's pseudonyms were made with, for a receipt of a
        /// raw target id in a pseudonymized trail.
        #[arg(long, value_name = "FILE", requires = "receipt")]
        pseudonym_key: Option<PathBuf>,
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
        /// Only erasures forwarded to a vendor that carries them out later
        /// (Kore.ai) and not completed yet, oldest first.
        #[arg(long)]
        pending: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
    },
    /// Everything the trail holds about one target: was it erased, when, by
    /// whom, under which policy, with each record's seq and hash.
    #[command(after_help = "Examples:\n  \
erasure-gateway audit receipt audit/ --target owner@example.com\n  \
erasure-gateway audit receipt audit/ --target u-1 --format json > receipt-u-1.json\n  \
erasure-gateway audit verify audit/ --receipt receipt-u-1.json --public-key audit-signing.pub\n\n\
Lists the target's decisions, outcomes, approvals and completions (Kore.ai's\n\
status API), whole, in trail order, and the newest signed checkpoint that\n\
covers them. States: erased, pending, failed, refused, held, forwarded,\n\
not_found (exit 1). The JSON form is the receipt a reviewer hands on.")]
    Receipt {
        /// Trail files or directories, oldest first.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The target id (`u-1`, `owner@example.com`) or `Type::id`.
        #[arg(long, value_name = "ID")]
        target: String,
        /// The key the trail's pseudonyms were made with.
        #[arg(long, value_name = "FILE")]
        pseudonym_key: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Serve the reviewers' console: the trail as read-only web pages
    /// (overview, decisions, one decision, receipts), verified as it grows.
    #[command(after_help = "Examples:\n  \
erasure-gateway audit serve audit/\n  \
erasure-gateway audit serve audit/ --public-key audit-signing.pub --policies policies/\n  \
erasure-gateway audit serve --config gateway.toml\n\n\
Listens on 127.0.0.1:9191 ([console] listen, or --listen). Access needs the\n\
reviewer token whose SHA-256 is [console] token_sha256 (sign in on /login, or\n\
send `Authorization: Bearer`), or a client certificate signed by [console]\n\
client_ca. With neither configured, a one-time token is made at start and its\n\
sign-in link printed here. The console follows the files as the gateway\n\
appends and verifies the whole chain again after a change (at most every\n\
10 s, and never more than a tenth of a core); nothing it does writes to the\n\
trail, the policies or the gateway.")]
    Serve {
        /// Trail files or directories, oldest first (default: the
        /// directory of the config's [audit] path).
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Gateway configuration: its [console] section and [audit] path.
        #[arg(long, short, value_name = "FILE", env = "ERASURE_GATEWAY_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on (overrides [console] listen).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// The reviewer's copy of the signing public key (PEM or hex): the
        /// in-chain checkpoints' signatures are checked with it.
        #[arg(long, value_name = "PEM")]
        public_key: Option<PathBuf>,
        /// Policy directories (the set in force, archived versions) whose
        /// texts the decision pages quote, matched by policy version.
        #[arg(long, value_name = "DIR")]
        policies: Vec<PathBuf>,
        /// Accept a trail whose first file is not the chain's start.
        #[arg(long)]
        partial: bool,
    },
    /// Stream the trail as OCSF or ECS events (or its own JSON Lines) for a SIEM.
    #[command(after_help = "Examples:\n  \
erasure-gateway audit export audit/ --format ocsf > trail.ocsf.jsonl\n  \
erasure-gateway audit export audit/ --format ecs --follow | vector --config ship.toml\n\n\
OCSF: API Activity (class 6003; activity Delete for decisions). ECS 8:\n\
event.type, event.outcome, rule.id, user.id, source.ip. Each event keeps the\n\
record's seq, prev and hash and the original line (OCSF raw_data, ECS\n\
event.original), so the chain can be checked after export.")]
    Export {
        /// Trail files or directories, oldest first.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The schema.
        #[arg(long, value_enum, default_value_t = ExportArg::Jsonl)]
        format: ExportArg,
        /// Then keep exporting records as the writer appends them (and
        /// across rotation), until Ctrl-C.
        #[arg(long, short = 'f')]
        follow: bool,
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

/// `policy …`: check, test, replay and format a policy set.
#[derive(Subcommand)]
pub enum PolicyCommand {
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

/// `explain --format`.
// The variants carry no doc comments: clap would print them as help for
// each value, and the help text is part of the command's interface.
#[allow(missing_docs)]
#[derive(Clone, Copy, ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

/// `audit query --decision`.
#[allow(missing_docs)] // as for `TextOrJson`
#[derive(Clone, Copy, ValueEnum)]
pub enum DecisionArg {
    Allow,
    Deny,
    Held,
}

/// `audit query --format`.
#[allow(missing_docs)] // as for `TextOrJson`
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Table,
    Json,
    Csv,
}

/// `audit export --format`.
#[allow(missing_docs)] // as for `TextOrJson`
#[derive(Clone, Copy, ValueEnum)]
pub enum ExportArg {
    Ocsf,
    Ecs,
    Jsonl,
}

/// `certs …`: certificates for development.
#[derive(Subcommand)]
pub enum CertsCommand {
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
