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
        let profile = match up.profile.as_deref() {
            Some("none") => None,
            Some(name) => Some(profile_named(name).map_err(|m| invalid("profile", m))?),
            None => profile_named(&up.name).ok(),
        };
        if up.path_prefix.is_none() && up.host.is_none() {
            return Err(invalid(
                "path_prefix",
                "an upstream needs a path_prefix, a host, or both".into(),
            ));
        }
        if let Some(host) = &up.host {
            if host.is_empty() || host.contains(['/', ':', ' ']) {
                return Err(invalid(
                    "host",
                    "must be a bare host name, without scheme or port".into(),
                ));
            }
        }
        checked.push(UpstreamConfig {
            name: up.name,
            profile,
            url,
            path_prefix: up.path_prefix,
            host: up.host,
            ca: up.ca,
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
            "[[upstream]]\nname = \"a\"\nurl = \"https://api.example.com:8443/v7/\"\npath_prefix = \"/a\"\n",
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
    fn an_upstream_named_like_a_vendor_gets_its_profile_unless_it_opts_out() {
        let guarded =
            parse("[[upstream]]\nname = \"seam\"\nurl = \"http://x\"\npath_prefix = \"/s\"\n")
                .unwrap();
        assert_eq!(guarded.upstream[0].profile.as_ref().unwrap().name, "seam");
        let plain = parse("[[upstream]]\nname = \"seam\"\nurl = \"http://x\"\npath_prefix = \"/s\"\nprofile = \"none\"\n").unwrap();
        assert!(plain.upstream[0].profile.is_none());
        let other =
            parse("[[upstream]]\nname = \"docs\"\nurl = \"http://x\"\npath_prefix = \"/d\"\n")
                .unwrap();
        assert!(other.upstream[0].profile.is_none());
    }
}
