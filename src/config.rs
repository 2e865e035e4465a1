//! The gateway's configuration: one TOML file in which every key is optional.
//!
//! Unknown keys are errors that name the key (and the line, as the TOML parser
//! reports it); values are checked after parsing so that a bad address, URL or
//! prefix is refused at start, never discovered by the first request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use serde::Deserialize;

use crate::digest::is_sha256_hex;
use crate::directory::DirectoryConfig;
use crate::identity::{CallerEntry, JwtConfig};
use crate::profile::{self, ProfileDefinition, VendorProfile};

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The TOML did not parse or did not match the expected keys and types.
    #[error("{path}: {message}")]
    Parse {
        /// The file (or `<embedded default>`).
        path: PathBuf,
        /// The parser's message, which names the key and the line.
        message: String,
    },
    /// A value parsed but cannot be used.
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key, e.g. `upstream[1].url`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

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

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The proxy listener and its limits.
    pub proxy: ProxyConfig,
    /// The admin listener.
    pub admin: AdminConfig,
    /// Where policies live and how they are applied.
    pub policies: PoliciesConfig,
    /// The decision trail.
    pub audit: AuditConfig,
    /// The vendor APIs the gateway stands in front of.
    pub upstream: Vec<UpstreamConfig>,
    /// Known callers, by the SHA-256 of their credential (or JWT subject).
    pub caller: Vec<CallerEntry>,
    /// JWT verification for callers that present a JWT (Kore.ai's `auth`).
    pub jwt: Option<JwtConfig>,
    /// Vendor profiles beyond the built-in ones, in the built-ins' format,
    /// as written; [`Config::parse`] validates them into `profile`.
    #[serde(rename = "profile")]
    profile_definitions: Vec<ProfileDefinition>,
    /// The `[[profile]]` tables, validated and compiled once at load.
    #[serde(skip)]
    pub profile: Vec<VendorProfile>,
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
            max_body_bytes: 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            h2_max_concurrent_streams: 100,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 64,
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
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token_sha256: None,
        }
    }
}

/// `[policies]`: the Cedar policy set and its entities.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoliciesConfig {
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

impl PoliciesConfig {
    /// The directory client settings, when a directory is configured.
    pub fn directory(&self) -> Option<DirectoryConfig> {
        self.directory_url.as_ref().map(|url| DirectoryConfig {
            url: url.clone(),
            ttl: self.directory_ttl,
            capacity: self.directory_capacity,
            timeout: self.directory_timeout,
            ca: self.directory_ca.clone(),
        })
    }
}

impl Default for PoliciesConfig {
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
pub struct UpstreamConfig {
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            proxy: ProxyConfig::default(),
            admin: AdminConfig::default(),
            policies: PoliciesConfig::default(),
            audit: AuditConfig::default(),
            upstream: default_upstreams(),
            caller: Vec::new(),
            jwt: None,
            profile_definitions: Vec::new(),
            profile: Vec::new(),
        }
    }
}

/// The three seed vendors' public APIs, routed by path prefix.
fn default_upstreams() -> Vec<UpstreamConfig> {
    [
        ("seam", "https://connect.getseam.com", "/seam"),
        ("kore", "https://platform.kore.ai", "/kore"),
        ("botpenguin", "https://api.v7.botpenguin.com", "/botpenguin"),
    ]
    .into_iter()
    .map(|(name, url, prefix)| UpstreamConfig {
        name: name.to_owned(),
        profile: Some(name.to_owned()),
        url: url.to_owned(),
        path_prefix: Some(prefix.to_owned()),
        host: None,
        ca: None,
    })
    .collect()
}

impl Config {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    /// The file cannot be read, does not parse, has an unknown key, or holds a
    /// value that cannot be used; the error names the file and the key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks configuration text; `origin` names it in errors.
    ///
    /// # Errors
    /// As [`Config::load`], without the read.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        // A file that names no `[[upstream]]` keeps the seed vendors (the
        // container-level `serde(default)` takes them from `Config::default`).
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.check(origin)?;
        Ok(config)
    }

    /// Checks every value, and builds `profile` from the `[[profile]]`
    /// definitions (in order, so that errors come as they always did).
    fn check(&mut self, origin: &Path) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: origin.to_owned(),
            key,
            message,
        };
        let proxy = &self.proxy;
        if proxy.tls_cert.is_some() != proxy.tls_key.is_some() {
            return Err(invalid(
                "proxy.tls_cert".into(),
                "tls_cert and tls_key must be set together".into(),
            ));
        }
        if proxy.client_ca.is_some() && proxy.tls_cert.is_none() {
            return Err(invalid(
                "proxy.client_ca".into(),
                "client certificates need TLS: set tls_cert and tls_key".into(),
            ));
        }
        if proxy.max_concurrency == 0 {
            return Err(invalid(
                "proxy.max_concurrency".into(),
                "must be at least 1".into(),
            ));
        }
        if proxy.h2_max_concurrent_streams == 0 {
            return Err(invalid(
                "proxy.h2_max_concurrent_streams".into(),
                "must be at least 1".into(),
            ));
        }
        if proxy.max_body_bytes == 0 {
            return Err(invalid(
                "proxy.max_body_bytes".into(),
                "must be at least 1".into(),
            ));
        }
        if let Some(token) = &self.admin.token_sha256 {
            if !is_sha256_hex(token) {
                return Err(invalid(
                    "admin.token_sha256".into(),
                    "must be 64 hex digits (the SHA-256 of the token, not the token)".into(),
                ));
            }
        }
        for (i, caller) in self.caller.iter().enumerate() {
            if caller.id.is_empty() {
                return Err(invalid(
                    format!("caller[{i}].id"),
                    "must not be empty".into(),
                ));
            }
            if caller
                .token_sha256
                .as_deref()
                .is_some_and(|t| !is_sha256_hex(t))
            {
                return Err(invalid(
                    format!("caller[{i}].token_sha256"),
                    "must be 64 hex digits (the SHA-256 of the token, not the token)".into(),
                ));
            }
        }
        self.profile = Vec::with_capacity(self.profile_definitions.len());
        for (i, definition) in self.profile_definitions.iter().enumerate() {
            let profile = VendorProfile::new(definition.clone())
                .map_err(|e| invalid(format!("profile[{i}]"), e.to_string()))?;
            if profile::BUILTIN_NAMES.contains(&profile.name.as_str())
                || self.profile[..i].iter().any(|p| p.name == profile.name)
            {
                return Err(invalid(
                    format!("profile[{i}].name"),
                    format!("`{}` is already a profile name", profile.name),
                ));
            }
            self.profile.push(profile);
        }
        if self.audit.path.file_stem().is_none() {
            return Err(invalid(
                "audit.path".into(),
                "must name a file, e.g. audit/decisions.jsonl".into(),
            ));
        }
        if self.audit.rotate_bytes < 4096 {
            return Err(invalid(
                "audit.rotate_bytes".into(),
                "must be at least 4096".into(),
            ));
        }
        if self.audit.checkpoint_every > 0 && self.audit.signing_key_file.is_none() {
            return Err(invalid(
                "audit.checkpoint_every".into(),
                "checkpoints are signed: set signing_key_file too".into(),
            ));
        }
        if let Some(jwt) = &self.jwt {
            jwt.check()
                .map_err(|e| invalid("jwt".into(), e.to_string()))?;
        }
        if let Some(directory) = self.policies.directory() {
            directory
                .check()
                .map_err(|e| invalid("policies.directory_url".into(), e.to_string()))?;
        }
        if self.upstream.is_empty() {
            return Err(invalid(
                "upstream".into(),
                "at least one [[upstream]] is needed".into(),
            ));
        }
        for (i, up) in self.upstream.iter().enumerate() {
            let key = |field: &str| format!("upstream[{i}].{field}");
            if up.name.is_empty() {
                return Err(invalid(key("name"), "must not be empty".into()));
            }
            if self.upstream[..i].iter().any(|u| u.name == up.name) {
                return Err(invalid(
                    key("name"),
                    format!("`{}` is used by another upstream", up.name),
                ));
            }
            parse_upstream_url(&up.url).map_err(|m| invalid(key("url"), m))?;
            if let Some(prefix) = &up.path_prefix {
                check_prefix(prefix).map_err(|m| invalid(key("path_prefix"), m))?;
            }
            self.profile_for(up)
                .map_err(|m| invalid(key("profile"), m))?;
            if up.path_prefix.is_none() && up.host.is_none() {
                return Err(invalid(
                    key("path_prefix"),
                    "an upstream needs a path_prefix, a host, or both".into(),
                ));
            }
            if let Some(host) = &up.host {
                if host.is_empty() || host.contains(['/', ':', ' ']) {
                    return Err(invalid(
                        key("host"),
                        "must be a bare host name, without scheme or port".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Config {
    /// The vendor profile an upstream uses: the one it names; without a
    /// name, the profile named like the upstream, so that an `[[upstream]]`
    /// called `seam` is never left unguarded by an omitted key; none for
    /// `profile = "none"`.
    ///
    /// # Errors
    /// The name is neither built in nor a `[[profile]]`.
    pub fn profile_for(&self, upstream: &UpstreamConfig) -> Result<Option<VendorProfile>, String> {
        match upstream.profile.as_deref() {
            Some("none") => Ok(None),
            Some(name) => self.profile_named(name).map(Some),
            None => Ok(self.profile_named(&upstream.name).ok()),
        }
    }

    /// A vendor profile by name: a `[[profile]]`, else a built-in.
    ///
    /// # Errors
    /// No profile has that name (the message lists the known ones).
    pub fn profile_named(&self, name: &str) -> Result<VendorProfile, String> {
        if let Some(profile) = self.profile.iter().find(|p| p.name == name) {
            return Ok(profile.clone());
        }
        if profile::BUILTIN_NAMES.contains(&name) {
            return profile::builtin(name).map_err(|e| e.to_string());
        }
        let mut known: Vec<&str> = profile::BUILTIN_NAMES.to_vec();
        known.extend(self.profile.iter().map(|p| p.name.as_str()));
        Err(format!("no profile `{name}`; known: {}", known.join(", ")))
    }
}

/// A route prefix: starts with `/`, has no trailing `/` (unless it is `/`),
/// and holds only unreserved path characters so that matching it is exact.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') {
        return Err("must start with `/`".into());
    }
    if prefix.len() > 1 && prefix.ends_with('/') {
        return Err("must not end with `/`".into());
    }
    if prefix.contains("//")
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
    {
        return Err("may hold only letters, digits, `/`, `-`, `.`, `_`, `~`".into());
    }
    Ok(())
}

/// Parses an upstream base URL: `http` or `https`, a host, no query.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_upstream_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("must start with http:// or https://".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if uri.query().is_some() {
        return Err("must not carry a query string".into());
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("gw.toml"))
    }

    #[test]
    fn empty_file_gives_the_embedded_default() {
        let config = parse("").expect("empty config is valid");
        assert_eq!(config.proxy.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.admin.listen, "127.0.0.1:9090".parse().unwrap());
        let prefixes: Vec<_> = config
            .upstream
            .iter()
            .map(|u| u.path_prefix.as_deref().unwrap())
            .collect();
        assert_eq!(prefixes, ["/seam", "/kore", "/botpenguin"]);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse("[proxy]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("gw.toml"), "{text}");
        assert!(text.contains("listen_port"), "{text}");
        assert!(text.contains("line 3"), "{text}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = parse("[proxy]\nlisten = \"not an address\"\n").unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        let err = parse("[proxy]\nupstream_timeout = \"soon\"\n").unwrap_err();
        assert!(err.to_string().contains("upstream_timeout"), "{err}");
    }

    #[test]
    fn upstream_checks_name_the_upstream_and_field() {
        let err = parse("[[upstream]]\nname = \"a\"\nurl = \"ftp://x\"\npath_prefix = \"/a\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("upstream[0].url"), "{err}");
        let err = parse("[[upstream]]\nname = \"a\"\nurl = \"http://x\"\npath_prefix = \"a/\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("upstream[0].path_prefix"), "{err}");
        let err = parse("[[upstream]]\nname = \"a\"\nurl = \"http://x\"\n").unwrap_err();
        assert!(err.to_string().contains("a path_prefix, a host"), "{err}");
    }

    #[test]
    fn caller_token_must_be_a_hash_not_a_token() {
        let err =
            parse("[[caller]]\nid = \"ops\"\ntoken_sha256 = \"seam_live_token\"\n").unwrap_err();
        assert!(err.to_string().contains("caller[0].token_sha256"), "{err}");
    }

    #[test]
    fn an_upstream_profile_must_exist() {
        let err = parse("[[upstream]]\nname = \"a\"\nurl = \"http://x\"\npath_prefix = \"/a\"\nprofile = \"zendesk\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("upstream[0].profile"), "{err}");
        assert!(
            err.to_string().contains("known: seam, kore, botpenguin"),
            "{err}"
        );
    }

    #[test]
    fn an_upstream_named_like_a_vendor_gets_its_profile_unless_it_opts_out() {
        let guarded =
            parse("[[upstream]]\nname = \"seam\"\nurl = \"http://x\"\npath_prefix = \"/s\"\n")
                .unwrap();
        assert_eq!(
            guarded
                .profile_for(&guarded.upstream[0])
                .unwrap()
                .unwrap()
                .name,
            "seam"
        );
        let plain = parse("[[upstream]]\nname = \"seam\"\nurl = \"http://x\"\npath_prefix = \"/s\"\nprofile = \"none\"\n").unwrap();
        assert!(plain.profile_for(&plain.upstream[0]).unwrap().is_none());
        let other =
            parse("[[upstream]]\nname = \"docs\"\nurl = \"http://x\"\npath_prefix = \"/d\"\n")
                .unwrap();
        assert!(other.profile_for(&other.upstream[0]).unwrap().is_none());
    }

    #[test]
    fn a_custom_profile_is_read_in_the_builtin_format() {
        let text = r#"
[[upstream]]
name = "acme"
url = "http://acme.internal"
path_prefix = "/acme"
profile = "acme"

[[profile]]
name = "acme"
namespace = "Acme"
action = "forget"
path = "/people/{person_id}"
allowed_fields = []
[[profile.methods]]
method = "DELETE"
params = "none"
[[profile.targets]]
path_param = "person_id"
entity_type = "Person"
[profile.credential]
header = "authorization"
scheme = "Bearer"
[profile.error]
content_type = "application/json"
body = { error = "{message}" }
"#;
        let config = parse(text).unwrap_or_else(|e| panic!("{e}"));
        let profile = config.profile_for(&config.upstream[0]).unwrap().unwrap();
        assert_eq!(profile.namespace, "Acme");
        let err = parse(&text.replace("path = \"/people/{person_id}\"", "path = \"/people\""))
            .unwrap_err();
        assert!(err.to_string().contains("profile[0]"), "{err}");
    }

    #[test]
    fn durations_read_as_human_text() {
        let config = parse("[proxy]\nupstream_timeout = \"250ms\"\n").unwrap();
        assert_eq!(config.proxy.upstream_timeout, Duration::from_millis(250));
    }
}
