//! Checked settings that several modules' config sections share, as a leaf
//! below all of them: a base URL checked once at load (`http` or `https`, a
//! host, an optional base path, no query; upstreams and the entity directory
//! join request paths onto its parts, so no config text is parsed per
//! request), the error naming the key of a value that cannot be used, and
//! [`IdForm`]: how a vendor compares target ids (profiles set it, the
//! decision applies it, the trail's readers match ids in it).

use std::fmt;
use std::str::FromStr;

use http::uri::{Authority, InvalidUri, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};
use serde::{Deserialize, Serialize};

/// Folds letter case the way the most permissive server might: through upper
/// case first, so `ſ` (long s) and `K` (Kelvin sign) meet `s` and `k`.
pub(crate) fn fold_case(s: &str) -> String {
    s.to_uppercase().to_lowercase()
}

/// A checked `http(s)` base URL, split into the parts a request URI is
/// built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    scheme: Scheme,
    authority: Authority,
    host_header: HeaderValue,
    /// The path without a trailing `/` (empty for the root).
    base_path: String,
}

impl BaseUrl {
    /// Its path, without a trailing `/` (empty for the root).
    #[must_use]
    pub fn base_path(&self) -> &str {
        &self.base_path
    }
}

/// Why text is not a usable base URL. Each config key words it its own way
/// (the messages are part of the config errors operators see).
#[derive(Debug, thiserror::Error)]
pub enum BaseUrlError {
    /// The text does not parse as a URI.
    #[error("not a URL: {0}")]
    NotAUrl(InvalidUri),
    /// The scheme is missing or is neither `http` nor `https`.
    #[error("must start with http:// or https://")]
    NotHttp,
    /// There is no host.
    #[error("has no host")]
    NoHost,
    /// The URL carries a query string.
    #[error("must not carry a query string")]
    Query,
    /// The URL carries user info (`user:password@`), which would go to the
    /// vendor in `Host` and into logs.
    #[error("must not carry user info")]
    UserInfo,
}

impl FromStr for BaseUrl {
    type Err = BaseUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // `http::Uri` would take "host/path" as a path alone; insist on a scheme.
        let uri: Uri = text.parse().map_err(BaseUrlError::NotAUrl)?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(BaseUrlError::NotHttp),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(BaseUrlError::NoHost);
        }
        if uri.query().is_some() {
            return Err(BaseUrlError::Query);
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(BaseUrlError::UserInfo);
        }
        let parts = uri.into_parts();
        let (Some(scheme), Some(authority)) = (parts.scheme, parts.authority) else {
            return Err(BaseUrlError::NoHost);
        };
        // An authority holds only visible ASCII, which is always a valid
        // header value; the check keeps that assumption out of request time.
        let host_header =
            HeaderValue::from_str(authority.as_str()).map_err(|_| BaseUrlError::NoHost)?;
        let base_path = parts
            .path_and_query
            .map(|pq| pq.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(Self {
            scheme,
            authority,
            host_header,
            base_path,
        })
    }
}

impl BaseUrl {
    /// The authority (`host[:port]`; never user info), as sent in `Host`.
    #[must_use]
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The authority as a `Host` header value.
    #[must_use]
    pub fn host_header(&self) -> &HeaderValue {
        &self.host_header
    }

    /// The URI of `path` (which starts with `/`) under the base path, with
    /// `query` when given.
    ///
    /// # Errors
    /// The path or query holds characters a URI cannot.
    pub fn join(&self, path: &str, query: Option<&str>) -> Result<Uri, http::Error> {
        let mut target = String::with_capacity(
            self.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1),
        );
        target.push_str(&self.base_path);
        target.push_str(path);
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        let path_and_query = PathAndQuery::try_from(target)?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

/// What a config value that should be a token digest must look like. The
/// value itself is never echoed: it may be a token pasted by mistake.
pub(crate) const SHA256_HEX_EXPECTED: &str =
    "must be 64 hex digits (the SHA-256 of the token, not the token)";

/// A value that parsed but cannot be used, named by its dotted key. Each
/// section's conversion (in `config`, `identity` and `directory`) answers
/// one; `Config::parse` adds the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct InvalidValue {
    /// The dotted key, e.g. `caller[2].token_sha256` or `jwt.secret_file`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl InvalidValue {
    /// The error for `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// How a vendor compares a target id, so that the gateway looks up the same
/// person the vendor will erase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdForm {
    /// Opaque ids, compared byte for byte.
    #[default]
    Exact,
    /// An id holding `@` is an e-mail address compared ignoring the letter
    /// case of the whole address; other ids are exact.
    EmailCasefold,
    /// An id holding `@` is an e-mail address whose domain is compared
    /// ignoring letter case (RFC 5321: the local part is the mailbox's own);
    /// other ids are exact.
    EmailDomainCasefold,
}

impl IdForm {
    /// The id in the form the vendor compares it in.
    #[must_use]
    pub fn apply(self, id: &str) -> String {
        match (self, id.rsplit_once('@')) {
            (Self::EmailCasefold, Some(_)) => id.to_lowercase(),
            (Self::EmailDomainCasefold, Some((local, domain))) => {
                format!("{local}@{}", domain.to_lowercase())
            }
            _ => id.to_owned(),
        }
    }

    /// Whether the part of `id` this form folds holds a letter whose case
    /// a vendor may fold to another letter than [`apply`](Self::apply)
    /// does: through upper case `ſ` (long s) meets `s`, `ß` meets `ss` and
    /// `ﬁ` meets `fi`, as Unicode-aware case-insensitive
    /// comparisons (collations, `/iu` expressions) may match them. Such an
    /// id could erase someone other than the person decided on: refused.
    #[must_use]
    pub fn is_ambiguous(self, id: &str) -> bool {
        let folded = match (self, id.rsplit_once('@')) {
            (Self::EmailCasefold, Some(_)) => id,
            (Self::EmailDomainCasefold, Some((_, domain))) => domain,
            _ => return false,
        };
        // ASCII letters fold one way only: no allocation for most ids.
        !folded.is_ascii() && fold_case(folded) != folded.to_lowercase()
    }

    /// Whether ids are compared byte for byte.
    #[must_use]
    pub fn is_exact(&self) -> bool {
        *self == Self::Exact
    }

    /// The snake_case name used in profiles and the trail.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::EmailCasefold => "email_casefold",
            Self::EmailDomainCasefold => "email_domain_casefold",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_puts_the_path_under_the_base_path() {
        let base: BaseUrl = "https://api.example.com/v7/".parse().unwrap();
        assert_eq!(base.to_string(), "https://api.example.com/v7");
        assert_eq!(
            base.join("/customer/1", Some("a=1&a=2")).unwrap(),
            "https://api.example.com/v7/customer/1?a=1&a=2"
        );
        assert_eq!(base.join("/", None).unwrap(), "https://api.example.com/v7/");
        let root: BaseUrl = "http://127.0.0.1:9999".parse().unwrap();
        assert_eq!(root.host_header(), "127.0.0.1:9999");
        assert_eq!(root.join("/x", None).unwrap(), "http://127.0.0.1:9999/x");
        assert!(root.join("/a b", None).is_err());
    }

    #[test]
    fn unusable_urls_say_why() {
        for (text, message) in [
            ("ftp://x", "must start with http:// or https://"),
            ("directory.internal", "must start with http:// or https://"),
            ("http://x/?q=1", "must not carry a query string"),
            ("http:///x", "not a URL"),
            ("", "not a URL"),
        ] {
            let err = text.parse::<BaseUrl>().unwrap_err().to_string();
            assert!(err.starts_with(message), "{text}: {err}");
        }
    }
}
