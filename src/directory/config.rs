//! The directory's settings: as written ([`DirectoryToml`], gathered from
//! the `policies.directory_*` keys) and checked once at load
//! ([`DirectoryConfig`]), with the base URL parsed.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::setting::{BaseUrl, BaseUrlError, InvalidValue};

/// The longest `ttl` accepted: entity data older than that is not trusted.
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The directory settings as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryToml {
    /// Base URL, `http://` or `https://`, optionally with a base path.
    pub url: String,
    /// How long an answer (entity or "no such entity") is cached.
    #[serde(default = "default_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// How many answers the cache holds at most.
    #[serde(default = "default_capacity")]
    pub capacity: u64,
    /// How long one lookup may take, from connect to the end of the body.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Extra PEM trust root for the directory's TLS certificate.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

fn default_ttl() -> Duration {
    Duration::from_secs(60)
}

fn default_capacity() -> u64 {
    10_000
}

fn default_timeout() -> Duration {
    Duration::from_secs(2)
}

/// The directory settings, checked: an `http(s)` base URL with a host and
/// no user info, query or fragment; a TTL over 0s and at most a day; a
/// capacity and a timeout over zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryConfig {
    pub(super) url: BaseUrl,
    pub(super) ttl: Duration,
    pub(super) capacity: u64,
    pub(super) timeout: Duration,
    pub(super) ca: Option<PathBuf>,
}

impl DirectoryConfig {
    /// The base URL entity paths are joined onto.
    #[must_use]
    pub fn url(&self) -> &BaseUrl {
        &self.url
    }
}

impl TryFrom<DirectoryToml> for DirectoryConfig {
    type Error = InvalidValue;

    /// Checks the values without touching the network or any file.
    ///
    /// # Errors
    /// The key naming what is wrong: `directory.url` is not an `http(s)` URL
    /// with a host (or carries user info, a query or a fragment),
    /// `directory.ttl` is zero or over a day, `directory.capacity` or
    /// `directory.timeout` is zero.
    fn try_from(raw: DirectoryToml) -> Result<Self, InvalidValue> {
        let url = base_url(&raw.url)?;
        if raw.ttl.is_zero() || raw.ttl > MAX_TTL {
            return Err(InvalidValue::new(
                "directory.ttl",
                "must be more than 0s and at most 24h",
            ));
        }
        if raw.capacity == 0 {
            return Err(InvalidValue::new(
                "directory.capacity",
                "must be at least 1",
            ));
        }
        if raw.timeout.is_zero() {
            return Err(InvalidValue::new(
                "directory.timeout",
                "must be more than 0s",
            ));
        }
        Ok(Self {
            url,
            ttl: raw.ttl,
            capacity: raw.capacity,
            timeout: raw.timeout,
            ca: raw.ca,
        })
    }
}

/// The base URL, checked; the messages never echo the URL, which may hold
/// credentials.
fn base_url(text: &str) -> Result<BaseUrl, InvalidValue> {
    let invalid = |message: &str| InvalidValue::new("directory.url", message);
    let url: BaseUrl = text.parse().map_err(|e| {
        invalid(match e {
            BaseUrlError::NotAUrl(_) => "not a URL",
            BaseUrlError::NotHttp => "must start with http:// or https://",
            BaseUrlError::NoHost => "needs a host",
            BaseUrlError::Query => "must not carry a query or a fragment",
            // Credentials in the URL would be neither sent nor kept out of logs.
            BaseUrlError::UserInfo => "must not carry user info",
        })
    })?;
    if text.contains('#') {
        return Err(invalid("must not carry a query or a fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(value: serde_json::Value) -> DirectoryToml {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn config_defaults_and_errors_name_the_key() {
        let defaults = raw(json!({"url": "https://directory.internal/v1"}));
        assert_eq!(defaults.ttl, Duration::from_secs(60));
        assert_eq!(defaults.capacity, 10_000);
        assert_eq!(defaults.timeout, Duration::from_secs(2));
        assert_eq!(defaults.ca, None);
        let checked = DirectoryConfig::try_from(defaults).unwrap();
        assert_eq!(checked.url().to_string(), "https://directory.internal/v1");

        let unknown =
            serde_json::from_value::<DirectoryToml>(json!({"url": "http://x", "tll": "1s"}))
                .unwrap_err()
                .to_string();
        assert!(unknown.contains("tll"), "{unknown}");

        let cases = [
            (json!({"url": "ftp://x"}), "directory.url"),
            (json!({"url": "directory.internal"}), "directory.url"),
            (json!({"url": "http://user:pw@x"}), "directory.url"),
            (json!({"url": "http://x/?q=1"}), "directory.url"),
            (json!({"url": "http://x/#top"}), "directory.url"),
            (json!({"url": "http://x", "ttl": "0s"}), "directory.ttl"),
            (json!({"url": "http://x", "ttl": "2days"}), "directory.ttl"),
            (
                json!({"url": "http://x", "capacity": 0}),
                "directory.capacity",
            ),
            (
                json!({"url": "http://x", "timeout": "0s"}),
                "directory.timeout",
            ),
        ];
        for (value, key) in cases {
            let err = DirectoryConfig::try_from(raw(value.clone()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{value}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn url_errors_keep_their_wording() {
        for (url, message) in [
            ("ftp://x", "must start with http:// or https://"),
            ("directory.internal", "must start with http:// or https://"),
            ("http://user:pw@x", "must not carry user info"),
            ("http://x/?q=1", "must not carry a query or a fragment"),
            ("http://x/#top", "must not carry a query or a fragment"),
        ] {
            let err = DirectoryConfig::try_from(raw(json!({ "url": url })))
                .unwrap_err()
                .to_string();
            assert_eq!(err, format!("`directory.url`: {message}"), "{url}");
        }
    }
}
