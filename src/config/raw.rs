//! The configuration file's shape, as serde reads it: every key optional,
//! unknown keys refused with their line.
//!
//! Sections whose every value serde already types (`[proxy]`, `[admin]`,
//! `[audit]`) are used as they are by the checked [`Config`](super::Config);
//! the others hold text (URLs, names, key tables) that the conversion in
//! `config/mod.rs` parses and checks once, at load.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::directory::DirectoryToml;
use crate::identity::{CallerEntry, JwtToml};
use crate::profile::ProfileDefinition;

/// What to do with a call that is not an erasure call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Passthrough {
    /// Forward it untouched.
    #[default]
    Allow,
    /// Refuse it.
    Deny,
}

/// Whether decisions are enforced or only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Denied calls are refused.
    #[default]
    Enforce,
    /// Denied calls are recorded and forwarded anyway.
    Shadow,
}

/// The whole configuration file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigToml {
    /// The proxy listener and its limits.
    pub proxy: ProxyConfig,
    /// The admin listener.
    pub admin: AdminConfig,
    /// Where policies live and how they are applied.
    pub policies: PoliciesToml,
    /// The decision trail.
    pub audit: AuditConfig,
    /// The vendor APIs the gateway stands in front of.
    pub upstream: Vec<UpstreamToml>,
    /// Known callers, by the SHA-256 of their credential (or JWT subject).
    pub caller: Vec<CallerEntry>,
    /// JWT verification for callers that present a JWT (Kore.ai's `auth`).
    pub jwt: Option<JwtToml>,
    /// Vendor profiles beyond the built-in ones, in the built-ins' format.
    pub profile: Vec<ProfileDefinition>,
    /// Erasure budgets per caller and vendor, and repeats.
    pub budgets: super::budgets::BudgetsToml,
    /// Traces exported by OpenTelemetry.
    pub telemetry: TelemetryConfig,
    /// The reviewers' console (`audit serve`).
    pub console: ConsoleConfig,
}

/// `[console]`: the reviewers' read-only web console (`audit serve`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Also serve the console on the admin listener under `/console`,
    /// following the gateway's own trail.
    pub enabled: bool,
    /// Address `audit serve` listens on.
    pub listen: SocketAddr,
    /// SHA-256 hex of the reviewer token.
    pub token_sha256: Option<String>,
    /// A file holding `token_sha256` (a mounted Secret), read at start.
    pub token_sha256_file: Option<PathBuf>,
    /// TLS certificate (PEM) for the console.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Reviewers' client certificates are signed by this CA; a verified
    /// certificate is access enough.
    pub client_ca: Option<PathBuf>,
    /// The checkpoint signing public key reviewers trust.
    pub public_key: Option<PathBuf>,
    /// Policy directories (the one in force, archived versions) whose texts
    /// decision pages quote.
    pub policies: Vec<PathBuf>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9191)),
            token_sha256: None,
            token_sha256_file: None,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            public_key: None,
            policies: Vec::new(),
        }
    }
}

/// `[telemetry]`: OpenTelemetry traces.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP (protobuf) traces endpoint, e.g.
    /// `http://otel-collector:4318/v1/traces`; no traces without it.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "erasure-gateway".into(),
        }
    }
}

/// `[proxy]`: the listener clients talk to, and the limits that protect it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain; with `tls_key`, the listener speaks TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
    /// What to do with calls that are not erasure calls.
    pub passthrough: Passthrough,
    /// How long a client may take to send the request head (slowloris guard).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long the upstream may take to answer with a response head.
    #[serde(with = "humantime_serde")]
    pub upstream_timeout: Duration,
    /// How long connecting to an upstream (TCP and TLS) may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Requests handled at once; beyond it the gateway answers 503.
    pub max_concurrency: usize,
    /// Requests in flight to each upstream at once, each on its own HTTP/1
    /// connection (a stream on HTTP/2); more wait for one to finish, within
    /// `upstream_timeout`. Bounds the connections, and their buffers, that
    /// a burst of clients opens to a vendor.
    pub upstream_max_connections: usize,
    /// Largest erasure-call body the gateway buffers and parses.
    pub max_body_bytes: usize,
    /// How long in-flight requests may run after SIGTERM/SIGINT.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// HTTP/2: streams one client connection may have open at once
    /// (advertised in SETTINGS; a stream flood queues at the client).
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2: streams a client may reset before the gateway accepted them,
    /// before the connection is closed with `ENHANCE_YOUR_CALM` (the rapid
    /// reset attack, CVE-2023-44487).
    pub h2_max_pending_accept_reset_streams: usize,
    /// HTTP/2: streams the gateway may reset for protocol errors of a client
    /// before it closes the connection.
    pub h2_max_local_error_reset_streams: usize,
    /// Load balancers and proxies (CIDRs) whose `Forwarded` /
    /// `X-Forwarded-For` names the client; from any other peer those
    /// headers are never read.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Log one line per pass-through call (target
    /// `erasure_gateway::access`: method, path without its query, upstream,
    /// status, duration, client). Erasure calls are in the trail instead.
    pub access_log: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            passthrough: Passthrough::Allow,
            header_read_timeout: Duration::from_secs(10),
            upstream_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_concurrency: 1024,
            upstream_max_connections: 256,
            max_body_bytes: 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            h2_max_concurrent_streams: 100,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 64,
            trusted_proxies: Vec::new(),
            access_log: false,
        }
    }
}

/// `[admin]`: health, readiness, metrics and (later) control endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// SHA-256 hex of the admin token; when set, mutating calls require it.
    pub token_sha256: Option<String>,
    /// A file holding `token_sha256` (a mounted Secret), read at start.
    pub token_sha256_file: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token_sha256: None,
            token_sha256_file: None,
        }
    }
}

/// `[policies]`: the Cedar policy set and its entities.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoliciesToml {
    /// Directory with `*.cedar`, `schema.cedarschema`, `entities.json`, `tests/`.
    pub dir: PathBuf,
    /// Enforce decisions, or only record them.
    pub mode: Mode,
    /// Optional entity directory: `GET {url}/{type}/{id}` → Cedar entity JSON.
    pub directory_url: Option<String>,
    /// How long a directory answer (including "no such entity") is cached.
    #[serde(with = "humantime_serde")]
    pub directory_ttl: Duration,
    /// How many directory answers are cached at most.
    pub directory_capacity: u64,
    /// How long one directory lookup may take before the call is refused (503).
    #[serde(with = "humantime_serde")]
    pub directory_timeout: Duration,
    /// Extra PEM trust root for an https directory.
    pub directory_ca: Option<PathBuf>,
}

impl PoliciesToml {
    /// The directory client settings as written, when a directory is
    /// configured.
    pub fn directory(&self) -> Option<DirectoryToml> {
        self.directory_url.as_ref().map(|url| DirectoryToml {
            url: url.clone(),
            ttl: self.directory_ttl,
            capacity: self.directory_capacity,
            timeout: self.directory_timeout,
            ca: self.directory_ca.clone(),
        })
    }
}

impl Default for PoliciesToml {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("policies"),
            mode: Mode::Enforce,
            directory_url: None,
            directory_ttl: Duration::from_secs(60),
            directory_capacity: 10_000,
            directory_timeout: Duration::from_secs(2),
            directory_ca: None,
        }
    }
}

/// `[audit]`: the decision trail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Names the trail: its directory holds the files, its stem starts their
    /// names (`audit/decisions.jsonl` → `audit/decisions-<replica>-<time>.jsonl`).
    pub path: PathBuf,
    /// This replica's id in file names and records; default: `$HOSTNAME`
    /// (the pod name in Kubernetes), else `gateway`. `-` becomes `_`.
    pub replica: Option<String>,
    /// Start a new file once the current one reaches this many bytes.
    pub rotate_bytes: u64,
    /// Start a new file when the UTC day changes.
    pub rotate_daily: bool,
    /// Also write each durable record to stdout, for log collectors.
    pub stdout: bool,
    /// Key file (at least 32 bytes) for recording target ids as HMAC-SHA-256
    /// pseudonyms instead of in clear.
    pub pseudonym_key_file: Option<PathBuf>,
    /// Ed25519 private key (PEM PKCS#8) for signed checkpoints.
    pub signing_key_file: Option<PathBuf>,
    /// Write a signed checkpoint record every this many records (0: never;
    /// needs `signing_key_file`).
    pub checkpoint_every: u64,
    /// Let the trail files' group read them (a log collector's group):
    /// files 0640 and a trail directory the gateway creates 0750. Default
    /// false: 0600 and 0700, the gateway's user only.
    pub group_read: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("audit/decisions.jsonl"),
            replica: None,
            rotate_bytes: 64 * 1024 * 1024,
            rotate_daily: true,
            stdout: false,
            pseudonym_key_file: None,
            signing_key_file: None,
            checkpoint_every: 0,
            group_read: false,
        }
    }
}

impl AuditConfig {
    /// The directory the trail's files are written in.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), std::path::Path::to_owned)
    }

    /// The replica id: configured, else `$HOSTNAME`, else `gateway`; reduced
    /// to characters that are safe in a file name.
    pub fn replica(&self) -> String {
        let raw = self
            .replica
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        // `-` separates the parts of a trail file name: a pod name's dashes
        // become underscores, so no replica's prefix is another's.
        let safe: String = raw
            .chars()
            .map(|c| if c == '-' { '_' } else { c })
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_'))
            .collect();
        if safe.is_empty() {
            "gateway".to_owned()
        } else {
            safe
        }
    }
}

/// `[[upstream]]`: one vendor API and how requests reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamToml {
    /// Name used in metrics, logs and the trail.
    pub name: String,
    /// Vendor profile: built-in `seam`, `kore`, `botpenguin`, or a
    /// `[[profile]]`. When absent, the profile named like the upstream (if
    /// any); `"none"` declares an upstream without erasure calls.
    #[serde(default)]
    pub profile: Option<String>,
    /// Base URL, `http://` or `https://`, optionally with a base path.
    pub url: String,
    /// Path prefix that routes to this upstream; stripped before forwarding.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Host (`Host`/`:authority`, without port) that routes to this upstream.
    #[serde(default)]
    pub host: Option<String>,
    /// Extra PEM trust root for this upstream's TLS certificate.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The vendor's own credential, which the gateway sends in place of
    /// the caller's: callers never hold it.
    #[serde(default)]
    pub credential: Option<super::upstream::CredentialToml>,
    /// Poll the vendor's status API this often after an accepted erasure
    /// (vendors that erase later: Kore.ai), with the vendor credential.
    #[serde(default, with = "humantime_serde")]
    pub track_completion: Option<std::time::Duration>,
    /// Stop polling an erasure after this long (default 24 h).
    #[serde(default, with = "humantime_serde")]
    pub track_completion_for: Option<std::time::Duration>,
}

impl Default for ConfigToml {
    fn default() -> Self {
        Self {
            proxy: ProxyConfig::default(),
            admin: AdminConfig::default(),
            policies: PoliciesToml::default(),
            audit: AuditConfig::default(),
            upstream: default_upstreams(),
            caller: Vec::new(),
            jwt: None,
            profile: Vec::new(),
            budgets: super::budgets::BudgetsToml::default(),
            telemetry: TelemetryConfig::default(),
            console: ConsoleConfig::default(),
        }
    }
}

/// The three seed vendors' public APIs, routed by path prefix.
fn default_upstreams() -> Vec<UpstreamToml> {
    [
        ("seam", "https://connect.getseam.com", "/seam"),
        ("kore", "https://platform.kore.ai", "/kore"),
        ("botpenguin", "https://api.v7.botpenguin.com", "/botpenguin"),
    ]
    .into_iter()
    .map(|(name, url, prefix)| UpstreamToml {
        name: name.to_owned(),
        profile: Some(name.to_owned()),
        url: url.to_owned(),
        path_prefix: Some(prefix.to_owned()),
        host: None,
        ca: None,
        credential: None,
        track_completion: None,
        track_completion_for: None,
    })
    .collect()
}
