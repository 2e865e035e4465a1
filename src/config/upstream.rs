//! `[[upstream]]` checked: a unique name, a parsed base URL, a route (path
//! prefix and/or host) and the vendor profile resolved by name, all at load.

use std::path::PathBuf;

use super::raw::UpstreamToml;
use super::InvalidValue;
use crate::profile::VendorProfile;
use crate::setting::BaseUrl;

/// One vendor API and how requests reach it, checked.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Name used in metrics, logs and the trail.
    pub name: String,
    /// The vendor profile: the one named; without a name, the profile named
    /// like the upstream, so that an `[[upstream]]` called `seam` is never
    /// left unguarded by an omitted key; none for `profile = "none"`.
    pub profile: Option<VendorProfile>,
    /// Base URL: scheme, authority and base path.
    pub url: BaseUrl,
    /// Path prefix that routes to this upstream; stripped before forwarding.
    pub path_prefix: Option<String>,
    /// Host (`Host`/`:authority`, without port) that routes to this upstream.
    pub host: Option<String>,
    /// Extra PEM trust root for this upstream's TLS certificate.
    pub ca: Option<PathBuf>,
    /// The vendor credential sent in place of the caller's, if any.
    pub credential: Option<CredentialConfig>,
    /// Polling of the vendor's status API after accepted erasures.
    pub track_completion: Option<TrackCompletion>,
}

/// `track_completion`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackCompletion {
    /// Time between polls of one erasure (doubled after each failed poll,
    /// up to 8×).
    pub every: std::time::Duration,
    /// Polling of one erasure stops after this long.
    pub for_at_most: std::time::Duration,
}

/// How long an erasure is polled without `track_completion_for`.
const TRACK_COMPLETION_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `[upstream.credential]` as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialToml {
    /// An environment variable holding the secret.
    #[serde(default)]
    pub env: Option<String>,
    /// A file holding the secret (a trailing newline is dropped).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// `kore_jwt`: the secret is the app's client secret, and the gateway
    /// mints a short-lived JWT for every call from it.
    #[serde(default)]
    pub mint: Option<Mint>,
    /// The app's client id (`appId` of a minted JWT).
    #[serde(default)]
    pub client_id: Option<String>,
    /// How long a minted JWT is valid.
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<std::time::Duration>,
    /// Headers sent with the credential in place of the caller's, e.g.
    /// BotPenguin's `authtype = "Key"`.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

/// What the gateway mints from the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mint {
    /// Kore.ai's JWT: HS256 over `{appId, sub, iat, exp}` with the client
    /// secret.
    KoreJwt,
}

/// Where the vendor secret is read from (at start; never logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// This environment variable.
    Env(String),
    /// This file.
    File(PathBuf),
}

/// `[upstream.credential]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialConfig {
    /// Where the secret is.
    pub secret: SecretSource,
    /// A JWT minted per call from the secret, with this client id and
    /// lifetime; else the secret is sent as it is.
    pub mint: Option<(Mint, String, std::time::Duration)>,
    /// Headers sent with it, names lowercase.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// Headers an upstream credential may not set: they change what the
/// vendor reads after the decision was made (its method, path, body framing,
/// the client, the workspace, the credential itself).
const DECIDED_OR_FRAMING: [&str; 13] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "trailer",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-request-id",
];

fn check_credential(
    raw: CredentialToml,
    profile: Option<&VendorProfile>,
    invalid: impl Fn(&str, String) -> InvalidValue,
) -> Result<CredentialConfig, InvalidValue> {
    let Some(profile) = profile else {
        return Err(invalid(
            "credential",
            "needs a vendor profile, which says where the credential goes".into(),
        ));
    };
    let decided = |name: &str| {
        DECIDED_OR_FRAMING.contains(&name)
            || name.eq_ignore_ascii_case(&profile.credential.header)
            || profile
                .workspace_header
                .as_deref()
                .is_some_and(|w| name.eq_ignore_ascii_case(w))
            || crate::profile::is_method_override_header(name)
            || crate::profile::is_url_rewrite_header(name)
    };
    let secret = match (raw.env, raw.file) {
        (Some(var), None) if !var.is_empty() => SecretSource::Env(var),
        (None, Some(file)) => SecretSource::File(file),
        _ => {
            return Err(invalid(
                "credential",
                "set exactly one of env = \"VAR\" or file = \"path\" (the secret is never written in the config)".into(),
            ))
        }
    };
    let mint = match (raw.mint, raw.client_id) {
        (Some(mint), Some(client_id)) if !client_id.is_empty() => {
            let ttl = raw.ttl.unwrap_or(std::time::Duration::from_secs(60));
            if ttl.as_secs() == 0 || ttl.as_secs() > 3600 {
                return Err(invalid("credential.ttl", "must be from 1s to 1h".into()));
            }
            Some((mint, client_id, ttl))
        }
        (Some(_), _) => {
            return Err(invalid(
                "credential.client_id",
                "mint = \"kore_jwt\" needs the app's client id".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "credential.client_id",
                "is only read with mint = \"kore_jwt\"".into(),
            ))
        }
        (None, None) => None,
    };
    let headers = raw
        .headers
        .into_iter()
        .map(|(name, value)| {
            let header = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                invalid(
                    "credential.headers",
                    format!("`{name}` is not a header name"),
                )
            })?;
            if decided(header.as_str()) {
                return Err(invalid(
                    "credential.headers",
                    format!("`{name}` changes what the vendor reads after the decision; it cannot be set here"),
                ));
            }
            let value = http::HeaderValue::from_str(&value).map_err(|_| {
                invalid(
                    "credential.headers",
                    format!("the value of `{name}` is not a header value"),
                )
            })?;
            Ok((header, value))
        })
        .collect::<Result<_, _>>()?;
    Ok(CredentialConfig {
        secret,
        mint,
        headers,
    })
}

/// Checks the `[[upstream]]` entries in order; `profile_named` finds a
/// vendor profile by name.
///
/// # Errors
/// The first unusable value, by key: none at all, an empty or repeated
/// name, a bad URL, prefix or host, no route, an unknown profile.
pub(super) fn check_upstreams(
    upstreams: Vec<UpstreamToml>,
    profile_named: impl Fn(&str) -> Result<VendorProfile, String>,
) -> Result<Vec<UpstreamConfig>, InvalidValue> {
    if upstreams.is_empty() {
        return Err(InvalidValue::new(
            "upstream",
            "at least one [[upstream]] is needed",
        ));
    }
    let mut checked: Vec<UpstreamConfig> = Vec::with_capacity(upstreams.len());
    for (i, up) in upstreams.into_iter().enumerate() {
        let invalid = |field: &str, message: String| {
            InvalidValue::new(format!("upstream[{i}].{field}"), message)
        };
        if up.name.is_empty() {
            return Err(invalid("name", "must not be empty".into()));
        }
        if checked.iter().any(|u| u.name == up.name) {
            return Err(invalid(
                "name",
                format!("`{}` is used by another upstream", up.name),
            ));
        }
        let url = up
            .url
            .parse::<BaseUrl>()
            .map_err(|e| invalid("url", e.to_string()))?;
        if let Some(prefix) = &up.path_prefix {
            check_prefix(prefix).map_err(|m| invalid("path_prefix", m))?;
        }
        if up.path_prefix.is_none() && up.host.is_none() {
            return Err(invalid(
                "path_prefix",
                "an upstream needs a path_prefix, a host, or both".into(),
            ));
        }
        // Fail closed: an upstream whose erasure calls nobody recognises
        // would forward them undecided, so going without a profile is said,
        // never assumed from a name that matches none.
        let profile = match up.profile.as_deref() {
            Some("none") => None,
            Some(name) => Some(profile_named(name).map_err(|m| invalid("profile", m))?),
            None => Some(profile_named(&up.name).map_err(|_| {
                invalid(
                    "profile",
                    format!(
                        "not set, and `{}` names no vendor profile, so its erasure calls would pass through undecided: set the profile that reads them (`profile = \"seam\"`, \"kore\", \"botpenguin\" or a [[profile]] name), or `profile = \"none\"` for an upstream that takes no erasure calls",
                        up.name
                    ),
                )
            })?),
        };
        if let Some(host) = &up.host {
            if host.is_empty() || host.contains(['/', ':', ' ']) {
                return Err(invalid(
                    "host",
                    "must be a bare host name, without scheme or port".into(),
                ));
            }
        }
        let credential = up
            .credential
            .map(|raw| check_credential(raw, profile.as_ref(), invalid))
            .transpose()?;
        let track_completion = match up.track_completion {
            None if up.track_completion_for.is_some() => {
                return Err(invalid(
                    "track_completion_for",
                    "set track_completion too (how often to poll)".into(),
                ))
            }
            None => None,
            Some(every) => {
                if profile.as_ref().is_none_or(|p| p.completion.is_none()) {
                    return Err(invalid(
                        "track_completion",
                        "the upstream's profile has no [completion] status API to poll".into(),
                    ));
                }
                if credential.is_none() {
                    return Err(invalid(
                        "track_completion",
                        "polling uses the vendor's credential: set [upstream.credential] too"
                            .into(),
                    ));
                }
                if every.is_zero() {
                    return Err(invalid("track_completion", "must be longer than 0s".into()));
                }
                Some(TrackCompletion {
                    every,
                    for_at_most: up.track_completion_for.unwrap_or(TRACK_COMPLETION_FOR),
                })
            }
        };
        checked.push(UpstreamConfig {
            track_completion,
            name: up.name,
            profile,
            url,
            path_prefix: up.path_prefix,
            host: up.host,
            ca: up.ca,
            credential,
        });
    }
    Ok(checked)
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

#[cfg(test)]
mod tests {
    use super::super::tests::parse;

    #[test]
    fn a_vendor_credential_is_read_from_env_or_file_never_written_inline() {
        let upstream = |credential: &str| {
            format!("[[upstream]]\nname = \"seam\"\nurl = \"http://x\"\npath_prefix = \"/s\"\n[upstream.credential]\n{credential}\n")
        };
        let config = parse(&upstream("env = \"SEAM_KEY\"")).unwrap();
        assert!(config.upstream[0].credential.is_some());
        for (credential, key) in [
            ("", "upstream[0].credential"),
            ("env = \"A\"\nfile = \"b\"", "upstream[0].credential"),
            (
                "file = \"s\"\nmint = \"kore_jwt\"",
                "upstream[0].credential.client_id",
            ),
            (
                "file = \"s\"\nclient_id = \"cs\"",
                "upstream[0].credential.client_id",
            ),
            (
                "file = \"s\"\nmint = \"kore_jwt\"\nclient_id = \"cs\"\nttl = \"2h\"",
                "upstream[0].credential.ttl",
            ),
            (
                "file = \"s\"\nheaders = { \"bad name\" = \"x\" }",
                "upstream[0].credential.headers",
            ),
        ] {
            let err = parse(&upstream(credential)).unwrap_err().to_string();
            assert!(err.contains(key), "{credential}: {err}");
        }
        let err = parse(&upstream("value = \"seam_live_key\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
        let none = "[[upstream]]\nname = \"v\"\nprofile = \"none\"\nurl = \"http://x\"\npath_prefix = \"/v\"\n[upstream.credential]\nenv = \"K\"\n";
        assert!(parse(none)
            .unwrap_err()
            .to_string()
            .contains("needs a vendor profile"));
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
    fn the_upstream_url_is_parsed_once_at_load() {
        let config = parse(
            "[[upstream]]\nname = \"a\"\nprofile = \"none\"\nurl = \"https://api.example.com:8443/v7/\"\npath_prefix = \"/a\"\n",
        )
        .unwrap();
        let url = &config.upstream[0].url;
        assert_eq!(url.to_string(), "https://api.example.com:8443/v7");
        assert_eq!(url.host_header(), "api.example.com:8443");
        for (url, message) in [
            ("ftp://x", "must start with http:// or https://"),
            ("http://x/?q=1", "must not carry a query string"),
            // Credentials in the URL would reach the vendor in `Host`; the
            // message never repeats them.
            ("http://ops:hunter2@x", "must not carry user info"),
        ] {
            let text =
                format!("[[upstream]]\nname = \"a\"\nurl = \"{url}\"\npath_prefix = \"/a\"\n");
            let err = parse(&text).unwrap_err().to_string();
            assert_eq!(err, format!("gw.toml: `upstream[0].url`: {message}"));
        }
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
    fn an_upstream_gets_the_profile_it_is_named_like_or_must_say_it_has_none() {
        let guarded =
            parse("[[upstream]]\nname = \"seam\"\nurl = \"http://x\"\npath_prefix = \"/s\"\n")
                .unwrap();
        assert_eq!(guarded.upstream[0].profile.as_ref().unwrap().name, "seam");
        let plain = parse("[[upstream]]\nname = \"seam\"\nurl = \"http://x\"\npath_prefix = \"/s\"\nprofile = \"none\"\n").unwrap();
        assert!(plain.upstream[0].profile.is_none());
        let other =
            parse("[[upstream]]\nname = \"docs\"\nurl = \"http://x\"\npath_prefix = \"/d\"\n")
                .unwrap_err()
                .to_string();
        assert!(other.contains("upstream[0].profile"), "{other}");
        assert!(other.contains("profile = \"none\""), "{other}");
        let plain = parse("[[upstream]]\nname = \"docs\"\nurl = \"http://x\"\npath_prefix = \"/d\"\nprofile = \"none\"\n").unwrap();
        assert!(plain.upstream[0].profile.is_none());
    }
}
