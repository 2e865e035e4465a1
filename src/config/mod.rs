//! The gateway's configuration: one TOML file in which every key is optional.
//!
//! Unknown keys are errors that name the key (and the line, as the TOML parser
//! reports it). The file is read into its raw shape ([`ConfigToml`]) and
//! converted once, with [`TryFrom`], into checked typed values ([`Config`]):
//! a bad address, URL or prefix is refused at start, never discovered by the
//! first request, and nothing parses config text at request time.

mod budgets;
mod raw;
mod upstream;

use std::path::{Path, PathBuf};

pub(crate) use crate::setting::SHA256_HEX_EXPECTED;
pub use crate::setting::{BaseUrl, BaseUrlError, InvalidValue};
pub use budgets::{BackendKind, BudgetsToml, LimitsToml, RepeatToml};
pub use raw::{
    AdminConfig, AuditConfig, ConfigToml, ConsoleConfig, Mode, Passthrough, PoliciesToml,
    ProxyConfig, TelemetryConfig, UpstreamToml,
};
pub use upstream::{
    CredentialConfig, CredentialToml, Mint, SecretSource, TrackCompletion, UpstreamConfig,
};

use crate::budget::BudgetConfig;
use crate::digest::is_sha256_hex;
use crate::directory::DirectoryConfig;
use crate::identity::{CallerTable, JwtConfig};
use crate::profile::{self, VendorProfile};

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

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The proxy listener and its limits.
    pub proxy: ProxyConfig,
    /// The admin listener.
    pub admin: AdminConfig,
    /// Where policies live and how they are applied.
    pub policies: PoliciesConfig,
    /// The decision trail.
    pub audit: AuditConfig,
    /// The vendor APIs the gateway stands in front of (at least one).
    pub upstream: Vec<UpstreamConfig>,
    /// Known callers, by the SHA-256 of their credential (or JWT subject).
    pub caller: CallerTable,
    /// JWT verification for callers that present a JWT (Kore.ai's `auth`).
    pub jwt: Option<JwtConfig>,
    /// Vendor profiles beyond the built-in ones, in the built-ins' format.
    pub profile: Vec<VendorProfile>,
    /// Erasure budgets and repeats.
    pub budgets: BudgetConfig,
    /// OpenTelemetry traces.
    pub telemetry: TelemetryConfig,
    /// The reviewers' console (`audit serve`).
    pub console: ConsoleConfig,
}

/// `[policies]`, checked: the Cedar policy set and its entities.
#[derive(Debug, Clone)]
pub struct PoliciesConfig {
    /// Directory with `*.cedar`, `schema.cedarschema`, `entities.json`, `tests/`.
    pub dir: PathBuf,
    /// Enforce decisions, or only record them.
    pub mode: Mode,
    directory: Option<DirectoryConfig>,
}

impl PoliciesConfig {
    /// The entity directory client settings, when a directory is configured.
    pub fn directory(&self) -> Option<&DirectoryConfig> {
        self.directory.as_ref()
    }
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
        // container-level `serde(default)` takes them from `ConfigToml::default`).
        let raw: ConfigToml = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Self::try_from(raw).map_err(|e| ConfigError::Invalid {
            path: origin.to_owned(),
            key: e.key,
            message: e.message,
        })
    }

    /// A vendor profile by name: a `[[profile]]`, else a built-in.
    ///
    /// # Errors
    /// No profile has that name (the message lists the known ones).
    pub fn profile_named(&self, name: &str) -> Result<VendorProfile, String> {
        profile_named(&self.profile, name)
    }
}

/// A vendor profile by name among `custom` profiles, else the built-ins.
fn profile_named(custom: &[VendorProfile], name: &str) -> Result<VendorProfile, String> {
    if let Some(profile) = custom.iter().find(|p| p.name == name) {
        return Ok(profile.clone());
    }
    if profile::BUILTIN_NAMES.contains(&name) {
        return profile::builtin(name).map_err(|e| e.to_string());
    }
    let mut known: Vec<&str> = profile::BUILTIN_NAMES.to_vec();
    known.extend(custom.iter().map(|p| p.name.as_str()));
    Err(format!("no profile `{name}`; known: {}", known.join(", ")))
}

impl TryFrom<ConfigToml> for Config {
    type Error = InvalidValue;

    /// Checks every section, one after another, and parses the values that are
    /// still text (URLs, profile names, key tables).
    fn try_from(raw: ConfigToml) -> Result<Self, InvalidValue> {
        let ConfigToml {
            proxy,
            admin,
            policies,
            audit,
            upstream,
            caller,
            jwt,
            profile,
            budgets,
            telemetry,
            console,
        } = raw;
        check_proxy(&proxy)?;
        if let Some(endpoint) = &telemetry.otlp_endpoint {
            endpoint
                .parse::<BaseUrl>()
                .map_err(|e| InvalidValue::new("telemetry.otlp_endpoint", e.to_string()))?;
        }
        let mut admin = admin;
        let file = admin.token_sha256_file.take();
        token_from_file("admin", &mut admin.token_sha256, file)?;
        if !admin.listen.ip().is_loopback() && admin.token_sha256.is_none() {
            return Err(InvalidValue::new(
                "admin.listen",
                format!(
                    "{} is reachable from other hosts, and without a token anyone there could reload the policies and ask /v1/authorize what would be decided: set [admin] token_sha256 (or token_sha256_file), or listen on 127.0.0.1",
                    admin.listen
                ),
            ));
        }
        let mut console = console;
        let file = console.token_sha256_file.take();
        token_from_file("console", &mut console.token_sha256, file)?;
        check_tls(
            "console",
            [&console.tls_cert, &console.tls_key, &console.client_ca],
        )?;
        if console.enabled && console.token_sha256.is_none() {
            return Err(InvalidValue::new(
                "console.enabled",
                "the admin listener has no client certificates: set [console] token_sha256 (or token_sha256_file) so that reviewers sign in",
            ));
        }
        let caller = CallerTable::try_from(caller)?;
        // Each `[[profile]]` is validated and compiled once, in order, so
        // that errors name the first bad table as they always did.
        let mut compiled: Vec<VendorProfile> = Vec::with_capacity(profile.len());
        for (i, definition) in profile.into_iter().enumerate() {
            let custom = VendorProfile::new(definition)
                .map_err(|e| InvalidValue::new(format!("profile[{i}]"), e.to_string()))?;
            if profile::BUILTIN_NAMES.contains(&custom.name.as_str())
                || compiled.iter().any(|p| p.name == custom.name)
            {
                return Err(InvalidValue::new(
                    format!("profile[{i}].name"),
                    format!("`{}` is already a profile name", custom.name),
                ));
            }
            compiled.push(custom);
        }
        let profile = compiled;
        check_audit(&audit)?;
        let jwt = jwt
            .map(JwtConfig::try_from)
            .transpose()
            .map_err(|e| InvalidValue::new("jwt", e.to_string()))?;
        let directory = policies
            .directory()
            .map(DirectoryConfig::try_from)
            .transpose()
            .map_err(|e| InvalidValue::new("policies.directory_url", e.to_string()))?;
        let upstream = upstream::check_upstreams(upstream, |name| profile_named(&profile, name))?;
        Ok(Self {
            proxy,
            admin,
            policies: PoliciesConfig {
                dir: policies.dir,
                mode: policies.mode,
                directory,
            },
            audit,
            upstream,
            caller,
            jwt,
            profile,
            budgets: BudgetConfig::try_from(budgets)?,
            telemetry,
            console,
        })
    }
}

/// A listener's `tls_cert`, `tls_key` and `client_ca`: the pair together,
/// and client certificates only with TLS.
fn check_tls(section: &str, [cert, key, ca]: [&Option<PathBuf>; 3]) -> Result<(), InvalidValue> {
    if cert.is_some() != key.is_some() {
        return Err(InvalidValue::new(
            format!("{section}.tls_cert"),
            "tls_cert and tls_key must be set together",
        ));
    }
    if ca.is_some() && cert.is_none() {
        return Err(InvalidValue::new(
            format!("{section}.client_ca"),
            "client certificates need TLS: set tls_cert and tls_key",
        ));
    }
    Ok(())
}

fn check_proxy(proxy: &ProxyConfig) -> Result<(), InvalidValue> {
    check_tls("proxy", [&proxy.tls_cert, &proxy.tls_key, &proxy.client_ca])?;
    for (key, zero) in [
        ("proxy.max_concurrency", proxy.max_concurrency == 0),
        (
            "proxy.upstream_max_connections",
            proxy.upstream_max_connections == 0,
        ),
        (
            "proxy.h2_max_concurrent_streams",
            proxy.h2_max_concurrent_streams == 0,
        ),
        ("proxy.max_body_bytes", proxy.max_body_bytes == 0),
    ] {
        if zero {
            return Err(InvalidValue::new(key, "must be at least 1"));
        }
    }
    Ok(())
}

/// `[admin]`/`[console] token_sha256_file`: the hash read from a mounted
/// Secret; either way it must be a SHA-256 in hex.
fn token_from_file(
    section: &str,
    token: &mut Option<String>,
    file: Option<PathBuf>,
) -> Result<(), InvalidValue> {
    let key = format!("{section}.token_sha256_file");
    if let Some(path) = file {
        if token.is_some() {
            return Err(InvalidValue::new(
                key,
                "set token_sha256 or token_sha256_file, not both",
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            InvalidValue::new(key.clone(), format!("cannot read {}: {e}", path.display()))
        })?;
        let hash = text.trim();
        if !is_sha256_hex(hash) {
            return Err(InvalidValue::new(
                key,
                format!("{}: {SHA256_HEX_EXPECTED}", path.display()),
            ));
        }
        *token = Some(hash.to_ascii_lowercase());
    } else if token.as_deref().is_some_and(|t| !is_sha256_hex(t)) {
        return Err(InvalidValue::new(
            format!("{section}.token_sha256"),
            SHA256_HEX_EXPECTED,
        ));
    }
    Ok(())
}

fn check_audit(audit: &AuditConfig) -> Result<(), InvalidValue> {
    if audit.path.file_stem().is_none() {
        return Err(InvalidValue::new(
            "audit.path",
            "must name a file, e.g. audit/decisions.jsonl",
        ));
    }
    if audit.rotate_bytes < 4096 {
        return Err(InvalidValue::new(
            "audit.rotate_bytes",
            "must be at least 4096",
        ));
    }
    if audit.checkpoint_every > 0 && audit.signing_key_file.is_none() {
        return Err(InvalidValue::new(
            "audit.checkpoint_every",
            "checkpoints are signed: set signing_key_file too",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A config from `text` as if read from `gw.toml`.
    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
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
    fn caller_token_must_be_a_hash_not_a_token() {
        let err =
            parse("[[caller]]\nid = \"ops\"\ntoken_sha256 = \"seam_live_token\"\n").unwrap_err();
        assert!(err.to_string().contains("caller[0].token_sha256"), "{err}");
    }

    #[test]
    fn every_unusable_value_names_its_key() {
        let hash = "a".repeat(64);
        for (text, expected) in [
            (
                "[proxy]\ntls_cert = \"c.pem\"\n".to_owned(),
                "`proxy.tls_cert`: tls_cert and tls_key must be set together",
            ),
            (
                "[proxy]\nclient_ca = \"ca.pem\"\n".to_owned(),
                "`proxy.client_ca`: client certificates need TLS: set tls_cert and tls_key",
            ),
            (
                "[proxy]\nmax_concurrency = 0\n".to_owned(),
                "`proxy.max_concurrency`: must be at least 1",
            ),
            (
                "[proxy]\nupstream_max_connections = 0\n".to_owned(),
                "`proxy.upstream_max_connections`: must be at least 1",
            ),
            (
                "[proxy]\nh2_max_concurrent_streams = 0\n".to_owned(),
                "`proxy.h2_max_concurrent_streams`: must be at least 1",
            ),
            (
                "[proxy]\nmax_body_bytes = 0\n".to_owned(),
                "`proxy.max_body_bytes`: must be at least 1",
            ),
            (
                "[admin]\ntoken_sha256 = \"t0ken\"\n".to_owned(),
                "`admin.token_sha256`: must be 64 hex digits (the SHA-256 of the token, not the token)",
            ),
            (
                format!("[[caller]]\nid = \"\"\ntoken_sha256 = \"{hash}\"\n"),
                "`caller[0].id`: must not be empty",
            ),
            (
                "[audit]\nrotate_bytes = 10\n".to_owned(),
                "`audit.rotate_bytes`: must be at least 4096",
            ),
            (
                "[audit]\ncheckpoint_every = 10\n".to_owned(),
                "`audit.checkpoint_every`: checkpoints are signed: set signing_key_file too",
            ),
            (
                "[jwt]\nalgorithm = \"HS256\"\n".to_owned(),
                "`jwt`: `jwt.secret_file`: HS256 needs secret_file",
            ),
            (
                "[policies]\ndirectory_url = \"http://x\"\ndirectory_ttl = \"0s\"\n".to_owned(),
                "`policies.directory_url`: `directory.ttl`: must be more than 0s and at most 24h",
            ),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            assert_eq!(err, format!("gw.toml: {expected}"), "{text}");
        }
    }

    #[test]
    fn the_console_section_is_checked_by_key() {
        let default = parse("").unwrap().console;
        assert_eq!(default.listen, "127.0.0.1:9191".parse().unwrap());
        assert!(default.token_sha256.is_none());
        for (text, expected) in [
            (
                "[console]\ntoken_sha256 = \"reviewer\"\n",
                "`console.token_sha256`: must be 64 hex digits (the SHA-256 of the token, not the token)",
            ),
            (
                "[console]\ntls_cert = \"c.pem\"\n",
                "`console.tls_cert`: tls_cert and tls_key must be set together",
            ),
            (
                "[console]\nclient_ca = \"ca.pem\"\n",
                "`console.client_ca`: client certificates need TLS: set tls_cert and tls_key",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert_eq!(err, format!("gw.toml: {expected}"), "{text}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("reviewer-token.sha256");
        std::fs::write(&file, format!("{}\n", "CD".repeat(32))).unwrap();
        let text = format!("[console]\ntoken_sha256_file = \"{}\"\n", file.display());
        assert_eq!(
            parse(&text).unwrap().console.token_sha256,
            Some("cd".repeat(32))
        );
        let both = format!("{text}token_sha256 = \"{}\"\n", "ab".repeat(32));
        let err = parse(&both).unwrap_err().to_string();
        assert!(err.contains("console.token_sha256_file"), "{err}");
    }

    #[test]
    fn track_completion_needs_a_status_api_and_the_vendor_credential() {
        let upstream = |profile: &str, extra: &str| {
            format!("[[upstream]]\nname = \"{profile}\"\nurl = \"https://v.example\"\npath_prefix = \"/{profile}\"\n{extra}")
        };
        let credential = "[upstream.credential]\nenv = \"KORE_KEY\"\n";
        for (text, expected) in [
            (
                upstream("seam", &format!("track_completion = \"30s\"\n{credential}")),
                "`upstream[0].track_completion`: the upstream's profile has no [completion] status API to poll",
            ),
            (
                upstream("kore", "track_completion = \"30s\"\n"),
                "`upstream[0].track_completion`: polling uses the vendor's credential: set [upstream.credential] too",
            ),
            (
                upstream("kore", "track_completion_for = \"1h\"\n"),
                "`upstream[0].track_completion_for`: set track_completion too (how often to poll)",
            ),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            assert_eq!(err, format!("gw.toml: {expected}"), "{text}");
        }
        let ok = parse(&upstream(
            "kore",
            &format!("track_completion = \"30s\"\n{credential}"),
        ))
        .unwrap();
        let tracking = ok.upstream[0].track_completion.unwrap();
        assert_eq!(tracking.every, std::time::Duration::from_secs(30));
        assert_eq!(
            tracking.for_at_most,
            std::time::Duration::from_secs(24 * 3600)
        );
    }

    #[test]
    fn an_admin_listener_other_hosts_can_reach_needs_a_token() {
        let err = parse("[admin]\nlisten = \"0.0.0.0:9090\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("admin.listen"), "{err}");
        assert!(err.contains("token_sha256"), "{err}");
        let with_token = format!(
            "[admin]\nlisten = \"0.0.0.0:9090\"\ntoken_sha256 = \"{}\"\n",
            "ab".repeat(32)
        );
        assert!(parse(&with_token).is_ok());
        assert!(parse("[admin]\nlisten = \"[::1]:9090\"\n").is_ok());
    }

    #[test]
    fn the_admin_token_hash_may_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin-token.sha256");
        let hash = "AB".repeat(32);
        std::fs::write(&file, format!("{hash}\n")).unwrap();
        let text = format!("[admin]\ntoken_sha256_file = \"{}\"\n", file.display());
        let config = parse(&text).unwrap();
        assert_eq!(config.admin.token_sha256, Some("ab".repeat(32)));
        std::fs::write(&file, "the-token-itself\n").unwrap();
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("admin.token_sha256_file"), "{err}");
        assert!(err.contains("64 hex digits"), "{err}");
        assert!(!err.contains("the-token-itself"), "{err}");
        let both = format!("{text}token_sha256 = \"{}\"\n", "a".repeat(64));
        assert!(parse(&both).unwrap_err().to_string().contains("not both"));
    }

    #[test]
    fn the_directory_url_is_parsed_once_at_load() {
        let config =
            parse("[policies]\ndirectory_url = \"https://directory.internal/v1/\"\n").unwrap();
        let directory = config.policies.directory().unwrap();
        assert_eq!(directory.url().to_string(), "https://directory.internal/v1");
        assert!(parse("").unwrap().policies.directory().is_none());
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
        let profile = config.upstream[0].profile.as_ref().unwrap();
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
