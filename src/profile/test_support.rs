//! Helpers shared by the profile module's unit tests.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::{builtin, classify, Classification, RequestHead};

/// A header map holding `pairs` in order (a name may repeat).
pub(super) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a test header name"),
            HeaderValue::from_str(value).expect("a test header value"),
        );
    }
    map
}

/// The smallest valid profile: one method, one path target.
pub(super) const MINIMAL_PROFILE: &str = r#"
name = "acme"
namespace = "Acme"
action = "forget"
path = "/people/{person_id}"
allowed_fields = []
[[methods]]
method = "DELETE"
params = "none"
[[targets]]
path_param = "person_id"
entity_type = "Person"
[credential]
header = "authorization"
scheme = "Bearer"
[error]
content_type = "application/json"
body = { error = "{message}" }
"#;

/// The head of a request without query or body.
pub(super) fn head_with<'a>(
    method: &'a Method,
    path: &'a str,
    headers: &'a HeaderMap,
) -> RequestHead<'a> {
    RequestHead {
        method,
        path,
        query: None,
        headers,
        has_body: false,
    }
}

/// Classifies one request with the built-in profile `vendor`.
pub(super) fn classify_with(
    vendor: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    pairs: &[(&str, &str)],
    has_body: bool,
) -> Classification {
    let profile = builtin(vendor).expect("a built-in profile");
    let map = headers(pairs);
    classify(
        &profile,
        &RequestHead {
            method,
            path,
            query,
            headers: &map,
            has_body,
        },
    )
}
