//! What goes on the wire to a vendor, as a leaf both the profile that
//! rebuilds an erasure call and the forwarding that sends it share: the
//! rebuilt call, its digest ([`forwarded_sha256`], carried by the decision
//! record), and the header names frameworks read as the real path.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, CONTENT_LENGTH, HOST};
use http::Method;
use sha2::{Digest, Sha256};

/// A rebuilt erasure call, relative to the upstream's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The erasure method.
    pub method: Method,
    /// Canonical path and query, vendor-relative (`/customer/abc`).
    pub path_and_query: String,
    /// The credential, workspace and profile `forward_headers` as received,
    /// trace context, and `content-type` for a body.
    pub headers: HeaderMap,
    /// The canonical JSON body (empty for query and path calls).
    pub body: Bytes,
}

/// The digest of a request as the vendor reads it: SHA-256, lower-case hex,
/// over `METHOD SP path-and-query LF`, then each header but `host` and
/// `content-length` as `name: value LF` (names lower case and sorted, values
/// of one name in order), then `LF` and the body.
#[must_use]
pub fn forwarded_sha256(
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update(b" ");
    hash.update(path_and_query.as_bytes());
    hash.update(b"\n");
    let mut names: Vec<&HeaderName> = headers
        .keys()
        .filter(|n| **n != HOST && **n != CONTENT_LENGTH)
        .collect();
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    for name in names {
        for value in headers.get_all(name) {
            hash.update(name.as_str().as_bytes());
            hash.update(b": ");
            hash.update(value.as_bytes());
            hash.update(b"\n");
        }
    }
    hash.update(b"\n");
    hash.update(body);
    hex::encode(hash.finalize())
}

/// Headers that frameworks in front of an app (IIS URL Rewrite, Symfony,
/// Zend/Laminas, Spring, Envoy, nginx `X-Original-URI` set-ups) read as the
/// real path. They are stripped from every forwarded request; on a profiled
/// upstream, one that names an erasure-like path (or rides on one) refuses
/// the call.
pub const URL_REWRITE_HEADERS: [&str; 8] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-path",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-prefix",
    "x-envoy-original-path",
];

/// A header name as CGI-style servers see it: lower case, `_` read as `-`.
#[must_use]
pub fn fold_header_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Whether `name` is a URL-rewrite header under any spelling a server folds
/// onto one.
#[must_use]
pub fn is_url_rewrite_header(name: &str) -> bool {
    URL_REWRITE_HEADERS.contains(&fold_header_name(name).as_str())
}
