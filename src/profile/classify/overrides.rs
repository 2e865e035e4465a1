//! The ways a request asks a server to read it as another method or path:
//! method-override headers and query keys, URL-rewrite headers, and a
//! `Connection` header that would have a proxy drop a header the decision
//! read. Each is matched under every spelling a server folds onto it.

use http::{HeaderMap, HeaderName};

pub use crate::wire::{fold_header_name, is_url_rewrite_header, URL_REWRITE_HEADERS};

use super::super::path::PathPattern;
use super::super::vendor::VendorProfile;

/// Headers that make some frameworks run a different method than the one on
/// the request line, compared after [`fold_header_name`] (CGI and WSGI
/// servers hand `X_HTTP_METHOD_OVERRIDE` to apps as the same variable).
const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Headers whose value the decision reads or the vendor reads to frame the
/// call; `Connection` may not name them on an erasure-like call.
const DECIDED_HEADERS: [&str; 6] = [
    "authorization",
    "auth",
    "authtype",
    "content-type",
    "content-length",
    "host",
];

/// Whether a query or form key is a method override under the spellings
/// frameworks fold onto one: letter case, and PHP's mangling of variable
/// names (leading spaces dropped; ` `, `.` and an unmatched `[` read as `_`;
/// `_method[…]` is still `_method`).
fn is_method_override_key(key: &str) -> bool {
    let key = key.trim_start();
    let base = match key.find('[') {
        Some(open) if key[open..].contains(']') => &key[..open],
        _ => key,
    };
    let folded: String = base
        .chars()
        .map(|c| match c {
            ' ' | '.' | '[' | '-' => '_',
            c => c,
        })
        .collect::<String>()
        .to_lowercase();
    folded == "_method"
        || METHOD_OVERRIDE_HEADERS
            .iter()
            .any(|h| h.replace('-', "_") == folded)
}

/// The path a URL-rewrite header's value names (an absolute URL's path, or
/// the value itself), without its query.
fn rewrite_target(value: &str) -> &str {
    let value = value.trim();
    let path = match value.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => value,
    };
    path.split(['?', '#']).next().unwrap_or(path)
}

/// The first URL-rewrite header on a call whose path is erasure-like, or
/// whose value names an erasure-like path.
pub(super) fn url_rewrite<'h>(
    pattern: &PathPattern,
    headers: &'h HeaderMap,
    erasure_like: bool,
) -> Option<&'h HeaderName> {
    headers.iter().find_map(|(name, value)| {
        let rewrites = is_url_rewrite_header(name.as_str())
            && (erasure_like
                || pattern
                    .is_erasure_like(rewrite_target(&String::from_utf8_lossy(value.as_bytes()))));
        rewrites.then_some(name)
    })
}

/// Whether `name` is a method-override header under any spelling.
pub fn is_method_override_header(name: &str) -> bool {
    METHOD_OVERRIDE_HEADERS.contains(&fold_header_name(name).as_str())
}

/// The first method-override header.
pub(super) fn method_override_header(headers: &HeaderMap) -> Option<&HeaderName> {
    headers
        .keys()
        .find(|name| METHOD_OVERRIDE_HEADERS.contains(&fold_header_name(name.as_str()).as_str()))
}

/// The first query key that is a method override, decoded.
pub(super) fn method_override_query(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| is_method_override_key(key))
        .map(|(key, _)| key.into_owned())
}

/// The first header that `Connection` names and the decision reads.
pub(super) fn connection_names_decided(
    profile: &VendorProfile,
    headers: &HeaderMap,
) -> Option<String> {
    let decided = |name: &str| {
        DECIDED_HEADERS.contains(&name)
            || profile.decided_headers().iter().any(|h| h.as_str() == name)
    };
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|token| String::from_utf8_lossy(token).trim().to_ascii_lowercase())
        .find(|token| decided(token))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::test_support::classify_with;
    use crate::profile::{Ambiguity, Classification};
    use http::Method;

    #[test]
    fn connection_naming_a_decided_header_is_refused_on_an_erasure_call() {
        let seam_post = |headers: &[(&str, &str)]| {
            classify_with(
                "seam",
                &Method::POST,
                "/customers/delete_data",
                None,
                headers,
                true,
            )
        };
        for named in [
            "seam-workspace",
            "authorization",
            "Content-Type",
            "content-length",
            "host",
            "auth",
            "authtype",
        ] {
            let connection = format!("close, {named}");
            let got = seam_post(&[("seam-workspace", "ws-1"), ("connection", &connection)]);
            let decided = named.to_ascii_lowercase();
            assert_eq!(
                got,
                Classification::Refused(Ambiguity::ConnectionNamesDecidedHeader(decided)),
                "{named}"
            );
        }
        let got = classify_with(
            "botpenguin",
            &Method::DELETE,
            "/customer/c1",
            None,
            &[("connection", "keep-alive, authtype")],
            false,
        );
        assert!(matches!(got, Classification::Refused(_)), "{got:?}");
        let got = seam_post(&[("connection", "close")]);
        assert!(matches!(got, Classification::Erasure(_)), "{got:?}");
    }

    #[test]
    fn url_rewrite_headers_naming_or_riding_an_erasure_path_are_refused() {
        for (name, value, path) in [
            ("x-original-url", "/customers/delete_data", "/devices/list"),
            (
                "x-rewrite-url",
                "/customers/delete_data?x=1",
                "/devices/list",
            ),
            ("x_original_url", "/Customers/Delete_Data", "/devices/list"),
            (
                "x-rewrite-url",
                "https://connect.getseam.com/customers/delete_data",
                "/",
            ),
            ("x-forwarded-prefix", "/x", "/customers/delete_data"),
            ("x-envoy-original-path", "/customers//delete_data", "/x"),
        ] {
            let got = classify_with("seam", &Method::POST, path, None, &[(name, value)], true);
            assert!(
                matches!(got, Classification::Refused(Ambiguity::UrlRewrite(_))),
                "{name}: {value} on {path}: {got:?}"
            );
        }
        // Naming an ordinary path on an ordinary call: passes (and is
        // stripped when forwarded).
        let got = classify_with(
            "seam",
            &Method::GET,
            "/devices/list",
            None,
            &[("x-original-url", "/locks/list")],
            false,
        );
        assert_eq!(got, Classification::NotErasure);
    }

    #[test]
    fn method_overrides_are_refused_under_every_framework_spelling() {
        for key in [
            "_method",
            "_METHOD",
            ".method",
            " _method",
            "[method",
            "_method[]",
            "_method[0]",
            "x-http-method-override",
            "X_HTTP_METHOD_OVERRIDE",
        ] {
            let query = format!("{}=DELETE", key.replace(' ', "%20"));
            let got = classify_with(
                "botpenguin",
                &Method::POST,
                "/customer/c1",
                Some(&query),
                &[],
                false,
            );
            assert!(
                matches!(
                    got,
                    Classification::Refused(Ambiguity::MethodOverrideQuery(_))
                ),
                "{key}: {got:?}"
            );
        }
        for header in [
            "x-http-method-override",
            "x_http_method_override",
            "x-method-override",
            "x-http-method",
        ] {
            let got = classify_with(
                "botpenguin",
                &Method::GET,
                "/customer/c1",
                None,
                &[(header, "DELETE")],
                false,
            );
            assert!(
                matches!(got, Classification::Refused(Ambiguity::MethodOverride(_))),
                "{header}: {got:?}"
            );
        }
        // A body on a passed method could carry `_method`: refused.
        let got = classify_with("botpenguin", &Method::GET, "/customer/c1", None, &[], true);
        assert_eq!(
            got,
            Classification::Refused(Ambiguity::BodyOnPassedMethod("GET".into()))
        );
        // Keys that merely contain the word are not overrides.
        assert!(!is_method_override_key("payment_method"));
        assert!(!is_method_override_key("_methods"));
        // PHP drops leading spaces before it mangles: ` method` is `method`.
        assert!(!is_method_override_key(" method"));
    }
}
