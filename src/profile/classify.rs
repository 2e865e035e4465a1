//! Is this request the vendor's erasure call? Decided from the request head
//! alone (method, raw path, raw query, headers), before any body is read.
//! Anything an upstream could read as the erasure call is either classified
//! exactly as the erasure call or refused; everything else passes.

use std::collections::BTreeMap;

use http::{HeaderMap, Method};

use super::definition::{ParamSource, VendorProfile};
use super::path::{PathIssue, PathPattern};

/// Headers that make some frameworks run a different method than the one on
/// the request line, compared after [`fold_header_name`] (CGI and WSGI
/// servers hand `X_HTTP_METHOD_OVERRIDE` to apps as the same variable).
const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

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
fn fold_header_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Whether `name` is a URL-rewrite header under any spelling a server folds
/// onto one.
#[must_use]
pub fn is_url_rewrite_header(name: &str) -> bool {
    URL_REWRITE_HEADERS.contains(&fold_header_name(name).as_str())
}

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

/// The parts of a request that classification and parsing read.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The request method, exactly as received.
    pub method: &'a Method,
    /// The raw path after the gateway stripped its route prefix, still
    /// percent-encoded, without the query.
    pub path: &'a str,
    /// The raw query string (no `?`), if the request had one.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// Whether the request carries a body (or may: an HTTP/2 stream that
    /// did not end with its headers).
    pub has_body: bool,
}

/// A recognised erasure call, ready for [`parse`](super::parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureCall {
    /// The erasure method used.
    pub method: Method,
    /// Where this call carries its parameters.
    pub source: ParamSource,
    /// Path captures, each percent-decoded once.
    pub path_params: BTreeMap<String, String>,
}

/// Why a request that may be the erasure call is refused. Messages name
/// headers, fields and the kind of problem, never the path or ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ambiguity {
    /// The path names the erasure endpoint only after normalisation.
    #[error("the path spells the erasure path in a non-canonical way: {0}")]
    NonCanonicalPath(PathIssue),
    /// A method-override header on an erasure path.
    #[error("method-override header `{0}` on the erasure path")]
    MethodOverride(String),
    /// A query parameter that frameworks read as `_method`, on an erasure
    /// path.
    #[error("method-override query parameter `{0}` on the erasure path")]
    MethodOverrideQuery(String),
    /// A URL-rewrite header naming an erasure-like path, or on one.
    #[error("URL-rewrite header `{0}` on a call that is or names the erasure path")]
    UrlRewrite(String),
    /// `Connection` names a header the decision reads: a proxy would drop it
    /// after the gateway decided with it.
    #[error("header `connection` names `{0}`, which the erasure decision reads")]
    ConnectionNamesDecidedHeader(String),
    /// A method that passes on the erasure path, sent with a body that could
    /// carry a method override.
    #[error("method `{0}` with a body on the erasure path")]
    BodyOnPassedMethod(String),
    /// A letter-case variant of an erasure method (`delete`).
    #[error("method `{0}` is a letter-case variant of an erasure method")]
    MethodCase(String),
    /// Another method on the erasure path, which the profile refuses.
    #[error("method `{0}` is not allowed on the erasure path")]
    OtherMethod(String),
    /// Erasure parameters in the query string of a call that takes them in
    /// the body (or from the path only).
    #[error(
        "erasure parameter `{0}` in the query string of a call that takes its parameters elsewhere"
    )]
    QueryParamsOnBodyCall(String),
    /// Any query string on a call that takes its parameters elsewhere: the
    /// upstream might merge query and body.
    #[error("a query string on an erasure call that takes its parameters elsewhere")]
    QueryOnBodyCall,
    /// A credential or workspace header sent more than once: the gateway and
    /// the upstream might each read a different one.
    #[error("header `{0}` appears more than once")]
    RepeatedHeader(String),
    /// The profile's path pattern is malformed (it should have been
    /// validated).
    #[error("the vendor profile's path pattern is invalid: {0}")]
    InvalidProfile(String),
}

impl Ambiguity {
    /// A human-readable reason, safe to return to the client.
    #[must_use]
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// The outcome of classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// Not the erasure call: forward untouched.
    NotErasure,
    /// The erasure call, in canonical form.
    Erasure(ErasureCall),
    /// Possibly the erasure call, but ambiguous: refuse.
    Refused(Ambiguity),
}

/// A query key fit for an error message: short, control characters replaced.
fn shown_key(key: &str) -> String {
    key.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn fold(s: &str) -> String {
    s.to_uppercase().to_lowercase()
}

/// The profile field a query key could be read as, ignoring case, percent-
/// encoding (already decoded) and bracket suffixes (`customer_keys[]`,
/// `customer_keys[0]`).
fn erasure_like_field<'p>(profile: &'p VendorProfile, key: &str) -> Option<&'p str> {
    let base = fold(key.split('[').next().unwrap_or(key).trim());
    profile
        .allowed_fields
        .iter()
        .map(String::as_str)
        .chain(profile.targets.iter().filter_map(|t| t.field.as_deref()))
        .chain(profile.context.iter().map(|c| c.field.as_str()))
        .find(|field| fold(field) == base)
}

fn repeated(headers: &HeaderMap, name: &str) -> bool {
    headers.get_all(name).iter().nth(1).is_some()
}

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

fn connection_names_decided(profile: &VendorProfile, headers: &HeaderMap) -> Option<String> {
    let decided = |name: &str| {
        DECIDED_HEADERS.contains(&name)
            || name == profile.credential.header
            || profile.workspace_header.as_deref() == Some(name)
            || profile.forward_headers.iter().any(|h| h == name)
    };
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|token| String::from_utf8_lossy(token).trim().to_ascii_lowercase())
        .find(|token| decided(token))
}

/// Decides whether `head` is `profile`'s erasure call.
///
/// A path is *erasure-like* when any aggressive normalisation of it (repeated
/// percent-decoding, `\` as `/`, collapsed slashes, `;params` dropped, dot
/// segments resolved, trailing slash dropped, case folded) matches the
/// profile's pattern. A URL-rewrite header on an erasure-like path, or naming
/// one, is refused. On an erasure-like path: any method-override header or
/// query parameter (under the spellings frameworks fold onto one) is
/// refused, and so is a `Connection` header naming a header the decision
/// reads; a raw path that is not exactly the
/// canonical spelling is refused; an erasure method becomes
/// [`Classification::Erasure`] (a letter-case variant of one is refused);
/// another method passes (without a body) only when `other_methods = "pass"`
/// and `pass_methods` lists it, and is refused otherwise. A body-form
/// or path-only call with a query string, and an erasure call with a repeated
/// credential or workspace header, are refused. A path that is not
/// erasure-like is [`Classification::NotErasure`].
#[must_use]
pub fn classify(profile: &VendorProfile, head: &RequestHead<'_>) -> Classification {
    let pattern = match PathPattern::parse(&profile.path) {
        Ok(pattern) => pattern,
        Err(reason) => return Classification::Refused(Ambiguity::InvalidProfile(reason)),
    };
    let erasure_like = pattern.is_erasure_like(head.path);
    for (name, value) in head.headers {
        if is_url_rewrite_header(name.as_str())
            && (erasure_like
                || pattern
                    .is_erasure_like(rewrite_target(&String::from_utf8_lossy(value.as_bytes()))))
        {
            return Classification::Refused(Ambiguity::UrlRewrite(name.as_str().to_owned()));
        }
    }
    if !erasure_like {
        return Classification::NotErasure;
    }
    if let Some(name) = head
        .headers
        .keys()
        .find(|name| METHOD_OVERRIDE_HEADERS.contains(&fold_header_name(name.as_str()).as_str()))
    {
        return Classification::Refused(Ambiguity::MethodOverride(name.as_str().to_owned()));
    }
    let query = head.query.unwrap_or_default();
    if let Some((key, _)) =
        form_urlencoded::parse(query.as_bytes()).find(|(key, _)| is_method_override_key(key))
    {
        return Classification::Refused(Ambiguity::MethodOverrideQuery(shown_key(&key)));
    }
    if let Some(name) = connection_names_decided(profile, head.headers) {
        return Classification::Refused(Ambiguity::ConnectionNamesDecidedHeader(name));
    }
    let path_params = match pattern.canonical_captures(head.path) {
        Ok(captures) => captures,
        Err(issue) => return Classification::Refused(Ambiguity::NonCanonicalPath(issue)),
    };
    let Some(rule) = profile.method_rule(head.method) else {
        let method = head.method.as_str();
        if profile
            .methods
            .iter()
            .any(|m| m.method.eq_ignore_ascii_case(method))
        {
            return Classification::Refused(Ambiguity::MethodCase(method.to_owned()));
        }
        return if !profile.passes(head.method) {
            Classification::Refused(Ambiguity::OtherMethod(method.to_owned()))
        } else if head.has_body {
            Classification::Refused(Ambiguity::BodyOnPassedMethod(method.to_owned()))
        } else {
            Classification::NotErasure
        };
    };
    if rule.params != ParamSource::Query && !query.is_empty() {
        let named = form_urlencoded::parse(query.as_bytes())
            .find_map(|(key, _)| erasure_like_field(profile, &key));
        return Classification::Refused(match named {
            Some(field) => Ambiguity::QueryParamsOnBodyCall(field.to_owned()),
            None => Ambiguity::QueryOnBodyCall,
        });
    }
    let watched = std::iter::once(profile.credential.header.as_str())
        .chain(profile.workspace_header.as_deref())
        .chain(profile.forward_headers.iter().map(String::as_str));
    for header in watched {
        if repeated(head.headers, header) {
            return Classification::Refused(Ambiguity::RepeatedHeader(header.to_owned()));
        }
    }
    Classification::Erasure(ErasureCall {
        method: head.method.clone(),
        source: rule.params,
        path_params,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::builtin;
    use http::HeaderValue;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Want {
        Erasure,
        Refused,
        NotErasure,
    }
    use Want::{Erasure as E, NotErasure as N, Refused as R};

    /// (method, raw path, raw query, extra header, expected)
    type Row = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<(&'static str, &'static str)>,
        Want,
    );

    fn run(vendor: &str, rows: &[Row]) {
        let profile = builtin(vendor).unwrap();
        for (method, path, query, header, want) in rows {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let mut headers = HeaderMap::new();
            if let Some((name, value)) = header {
                headers.append(*name, HeaderValue::from_static(value));
            }
            let head = RequestHead {
                method: &method,
                path,
                query: *query,
                headers: &headers,
                has_body: false,
            };
            let got = match classify(&profile, &head) {
                Classification::Erasure(_) => E,
                Classification::Refused(_) => R,
                Classification::NotErasure => N,
            };
            assert_eq!(
                got,
                *want,
                "{vendor}: {method} {path} ?{query:?} {header:?} → {:?}",
                classify(&profile, &head)
            );
        }
    }

    const OVERRIDE: Option<(&str, &str)> = Some(("x-http-method-override", "DELETE"));

    #[test]
    fn seam_erasure_path_spellings_are_classified_or_refused() {
        run(
            "seam",
            &[
                ("POST", "/customers/delete_data", None, None, E),
                ("POST", "/customers/delete_data", Some(""), None, E),
                (
                    "DELETE",
                    "/customers/delete_data",
                    Some("customer_keys=a"),
                    None,
                    E,
                ),
                (
                    "GET",
                    "/customers/delete_data",
                    Some("customer_keys=a&customer_keys=b"),
                    None,
                    E,
                ),
                ("DELETE", "/customers/delete_data", None, None, E),
                // other methods and method spelling
                ("PUT", "/customers/delete_data", None, None, R),
                ("PATCH", "/customers/delete_data", None, None, R),
                ("HEAD", "/customers/delete_data", None, None, R),
                ("OPTIONS", "/customers/delete_data", None, None, R),
                ("post", "/customers/delete_data", None, None, R),
                (
                    "Delete",
                    "/customers/delete_data",
                    Some("customer_keys=a"),
                    None,
                    R,
                ),
                // percent-encoding anywhere
                ("POST", "/customers/%64elete_data", None, None, R),
                ("POST", "/%63ustomers/delete_data", None, None, R),
                ("POST", "/customers%2Fdelete_data", None, None, R),
                ("POST", "/customers%2fdelete_data", None, None, R),
                ("POST", "/customers/delete%5Fdata", None, None, R),
                ("POST", "/customers/delete_data%2F", None, None, R),
                ("POST", "/customers/delete_data%252F", None, None, R),
                ("POST", "/customers%252Fdelete_data", None, None, R),
                ("POST", "/customers/delete_data%3Fx=1", None, None, R),
                ("POST", "/customers/delete_data%23x", None, None, R),
                ("POST", "/customers/delete_data%00", None, None, R),
                ("POST", "/customers/delete_data%20", None, None, R),
                // slashes and dot segments
                ("POST", "//customers/delete_data", None, None, R),
                ("POST", "/customers//delete_data", None, None, R),
                ("POST", "/customers/delete_data/", None, None, R),
                ("POST", "/customers/delete_data//", None, None, R),
                ("POST", "/customers/./delete_data", None, None, R),
                ("POST", "/./customers/delete_data", None, None, R),
                ("POST", "/customers/x/../delete_data", None, None, R),
                ("POST", "/x/../customers/delete_data", None, None, R),
                ("POST", "/../customers/delete_data", None, None, R),
                ("POST", "/customers/%2e/delete_data", None, None, R),
                ("POST", "/customers/x/%2e%2e/delete_data", None, None, R),
                ("POST", "/customers/x/%2E%2E/delete_data", None, None, R),
                ("POST", "/customers/delete_data/.", None, None, R),
                // backslashes, `;` parameters, case
                ("POST", "/customers\\delete_data", None, None, R),
                ("POST", "\\customers\\delete_data", None, None, R),
                ("POST", "/customers%5Cdelete_data", None, None, R),
                ("POST", "/customers/delete_data;jsessionid=1", None, None, R),
                ("POST", "/customers;a=b/delete_data", None, None, R),
                ("POST", "/customers/delete_data%3Bx", None, None, R),
                ("POST", "/Customers/delete_data", None, None, R),
                ("POST", "/CUSTOMERS/DELETE_DATA", None, None, R),
                ("POST", "/customers/Delete_Data", None, None, R),
                ("POST", "/cuſtomers/delete_data", None, None, R),
                ("POST", "customers/delete_data", None, None, R),
                // method overrides, on any method
                ("POST", "/customers/delete_data", None, OVERRIDE, R),
                (
                    "GET",
                    "/customers/delete_data",
                    None,
                    Some(("x-http-method", "POST")),
                    R,
                ),
                (
                    "PUT",
                    "/customers/delete_data",
                    None,
                    Some(("x-method-override", "POST")),
                    R,
                ),
                ("POST", "/Customers/Delete_Data/", None, OVERRIDE, R),
                (
                    "DELETE",
                    "/customers/delete_data",
                    Some("_method=POST"),
                    None,
                    R,
                ),
                (
                    "POST",
                    "/customers/delete_data",
                    Some("_METHOD=DELETE"),
                    None,
                    R,
                ),
                // erasure parameters in the query of the body-form call
                (
                    "POST",
                    "/customers/delete_data",
                    Some("customer_keys=a"),
                    None,
                    R,
                ),
                (
                    "POST",
                    "/customers/delete_data",
                    Some("Customer_Keys=a"),
                    None,
                    R,
                ),
                (
                    "POST",
                    "/customers/delete_data",
                    Some("customer_keys%5B%5D=a"),
                    None,
                    R,
                ),
                (
                    "POST",
                    "/customers/delete_data",
                    Some("user_keys[0]=a"),
                    None,
                    R,
                ),
                (
                    "POST",
                    "/customers/delete_data",
                    Some("unrelated=1"),
                    None,
                    R,
                ),
                // repeated identity headers
                (
                    "POST",
                    "/customers/delete_data",
                    None,
                    Some(("seam-workspace", "ws")),
                    E,
                ),
                // not the erasure call
                ("POST", "/customers/push_data", None, None, N),
                ("POST", "/customers/delete_data_now", None, None, N),
                ("POST", "/customers/delete_data/extra", None, None, N),
                ("POST", "/customers", None, None, N),
                ("GET", "/devices/list", None, OVERRIDE, N),
                (
                    "POST",
                    "/customers/delete",
                    Some("customer_keys=a"),
                    None,
                    N,
                ),
            ],
        );
    }

    #[test]
    fn kore_erasure_path_spellings_are_classified_or_refused() {
        run(
            "kore",
            &[
                ("DELETE", "/api/public/bot/eraseUsersData", None, None, E),
                ("POST", "/api/public/bot/eraseUsersData", None, None, R),
                ("GET", "/api/public/bot/eraseUsersData", None, None, R),
                ("PUT", "/api/public/bot/eraseUsersData", None, None, R),
                ("delete", "/api/public/bot/eraseUsersData", None, None, R),
                ("DELETE", "/api/public/bot/eraseusersdata", None, None, R),
                ("DELETE", "/API/PUBLIC/BOT/ERASEUSERSDATA", None, None, R),
                ("DELETE", "/api/public/bot/%65raseUsersData", None, None, R),
                ("DELETE", "/api/public/bot%2FeraseUsersData", None, None, R),
                ("DELETE", "/api/public/bot/eraseUsersData%2f", None, None, R),
                ("DELETE", "/api/public//bot/eraseUsersData", None, None, R),
                ("DELETE", "/api/public/bot/eraseUsersData/", None, None, R),
                ("DELETE", "/api/public/./bot/eraseUsersData", None, None, R),
                (
                    "DELETE",
                    "/api/private/../public/bot/eraseUsersData",
                    None,
                    None,
                    R,
                ),
                (
                    "DELETE",
                    "/api/private/%2e%2e/public/bot/eraseUsersData",
                    None,
                    None,
                    R,
                ),
                (
                    "DELETE",
                    "/api/public/bot/eraseUsersData;v=1",
                    None,
                    None,
                    R,
                ),
                ("DELETE", "/api\\public\\bot\\eraseUsersData", None, None, R),
                (
                    "DELETE",
                    "/api/public/bot/eraseUsersData",
                    None,
                    OVERRIDE,
                    R,
                ),
                (
                    "POST",
                    "/api/public/bot/eraseUsersData",
                    None,
                    Some(("x-http-method", "DELETE")),
                    R,
                ),
                (
                    "POST",
                    "/api/public/bot/eraseUsersData",
                    None,
                    Some(("x-method-override", "DELETE")),
                    R,
                ),
                (
                    "DELETE",
                    "/api/public/bot/eraseUsersData",
                    Some("userIds=u-1"),
                    None,
                    R,
                ),
                (
                    "DELETE",
                    "/api/public/bot/eraseUsersData",
                    Some("removedatafromallbots=true"),
                    None,
                    R,
                ),
                (
                    "DELETE",
                    "/api/public/bot/eraseUsersData",
                    Some("x=1"),
                    None,
                    R,
                ),
                (
                    "DELETE",
                    "/api/public/bot/eraseUsersData",
                    Some(""),
                    None,
                    E,
                ),
                ("GET", "/api/public/bot/eraseUsersDataStatus", None, None, N),
                ("DELETE", "/api/public/bot/st-1", None, None, N),
                ("GET", "/api/public/bots", None, OVERRIDE, N),
            ],
        );
    }

    #[test]
    fn botpenguin_erasure_path_spellings_are_classified_or_refused() {
        run(
            "botpenguin",
            &[
                ("DELETE", "/customer/abc", None, None, E),
                ("DELETE", "/customer/a%40b.com", None, None, E),
                ("DELETE", "/customer/ABC", None, None, E),
                ("GET", "/customer/abc", None, None, N),
                // Only GET and HEAD pass on the erasure path (a POST body
                // can carry `_method=DELETE`).
                ("PUT", "/customer/abc", None, None, R),
                ("POST", "/customer/abc", None, None, R),
                ("HEAD", "/customer/abc", None, None, N),
                ("GET", "/customer/abc", Some("fields=name"), None, N),
                ("delete", "/customer/abc", None, None, R),
                ("POST", "/customer/abc", None, OVERRIDE, R),
                (
                    "GET",
                    "/customer/abc",
                    None,
                    Some(("x-http-method", "DELETE")),
                    R,
                ),
                ("POST", "/customer/abc", Some("_method=DELETE"), None, R),
                ("DELETE", "/customer/abc/", None, None, R),
                ("DELETE", "/customer//abc", None, None, R),
                ("DELETE", "//customer/abc", None, None, R),
                ("DELETE", "/Customer/abc", None, None, R),
                ("DELETE", "/CUSTOMER/abc", None, None, R),
                ("DELETE", "/%63ustomer/abc", None, None, R),
                ("DELETE", "/customer%2Fabc", None, None, R),
                ("DELETE", "/customer/abc;x=1", None, None, R),
                ("DELETE", "/customer;x=1/abc", None, None, R),
                ("DELETE", "/customer/a%2Fb", None, None, R),
                ("DELETE", "/customer/a%252Fb", None, None, R),
                ("DELETE", "/customer/a%5Cb", None, None, R),
                ("DELETE", "/customer/%2e%2e", None, None, R),
                ("DELETE", "/customer/%2E", None, None, R),
                ("DELETE", "/customer/%20", None, None, R),
                ("DELETE", "/customer/x/../abc", None, None, R),
                ("DELETE", "/customer/./abc", None, None, R),
                ("DELETE", "/customer\\abc", None, None, R),
                (
                    "DELETE",
                    "/customer/abc",
                    Some("customer_id=other"),
                    None,
                    R,
                ),
                ("DELETE", "/customer/abc", Some("x=1"), None, R),
                ("DELETE", "/customer", None, None, N),
                ("DELETE", "/customer/abc/orders", None, None, N),
                ("DELETE", "/customers/abc", None, None, N),
                ("GET", "/bots/abc", None, OVERRIDE, N),
            ],
        );
    }

    /// One character of a fixed segment, spelled in a way some server reads
    /// as that character.
    fn spelling(c: char) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let upper = c.to_ascii_uppercase().to_string();
        prop_oneof![
            6 => Just(c.to_string()),
            1 => Just(upper),
            1 => Just(format!("%{:02X}", u32::from(c))),
            1 => Just(format!("%25{:02x}", u32::from(c))),
        ]
    }

    fn segment(text: &'static str) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        text.chars()
            .map(spelling)
            .collect::<Vec<_>>()
            .prop_map(|parts| parts.concat())
    }

    fn separator() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "/", "/", "/", "/", "//", "/./", "/x/../", "\\", "%2F", "%2f", "%252F", "/%2e/", "/;p/",
        ])
    }

    proptest::proptest! {
        #[test]
        fn every_spelling_of_the_seam_path_is_the_erasure_call_only_when_canonical(
            lead in proptest::sample::select(vec!["/", "/", "/", "//", "/./", "\\", "/../"]),
            first in segment("customers"),
            sep in separator(),
            second in segment("delete_data"),
            tail in proptest::sample::select(vec!["", "", "", "/", ";p=1", "/.", "%2F", "%20"]),
        ) {
            let seam = builtin("seam").unwrap();
            let path = format!("{lead}{first}{sep}{second}{tail}");
            let headers = HeaderMap::new();
            let got = classify(&seam, &head_with(&Method::POST, &path, &headers));
            match got {
                Classification::Erasure(_) => proptest::prop_assert_eq!(path, "/customers/delete_data"),
                Classification::Refused(_) => proptest::prop_assert_ne!(path, "/customers/delete_data"),
                Classification::NotErasure => proptest::prop_assert!(false, "{path} passed as not erasure"),
            }
        }
    }

    fn head_with<'a>(method: &'a Method, path: &'a str, headers: &'a HeaderMap) -> RequestHead<'a> {
        RequestHead {
            method,
            path,
            query: None,
            headers,
            has_body: false,
        }
    }

    fn classify_with(
        vendor: &str,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &[(&str, &str)],
        has_body: bool,
    ) -> Classification {
        let profile = builtin(vendor).unwrap();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
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

    #[test]
    fn connection_naming_a_decided_header_is_refused_on_an_erasure_call() {
        for named in [
            "seam-workspace",
            "authorization",
            "Content-Type",
            "content-length",
            "host",
            "auth",
            "authtype",
        ] {
            let got = classify_with(
                "seam",
                &Method::POST,
                "/customers/delete_data",
                None,
                &[
                    ("seam-workspace", "ws-1"),
                    ("connection", &format!("close, {named}")),
                ],
                true,
            );
            assert_eq!(
                got,
                Classification::Refused(Ambiguity::ConnectionNamesDecidedHeader(
                    named.to_ascii_lowercase()
                )),
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
        let got = classify_with(
            "seam",
            &Method::POST,
            "/customers/delete_data",
            None,
            &[("connection", "close")],
            true,
        );
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

    #[test]
    fn a_repeated_credential_or_workspace_header_is_refused() {
        let seam = builtin("seam").unwrap();
        for name in ["authorization", "seam-workspace"] {
            let mut headers = HeaderMap::new();
            headers.append(name, HeaderValue::from_static("a"));
            headers.append(name, HeaderValue::from_static("b"));
            let got = classify(
                &seam,
                &head_with(&Method::POST, "/customers/delete_data", &headers),
            );
            assert_eq!(
                got,
                Classification::Refused(Ambiguity::RepeatedHeader(name.to_owned()))
            );
        }
    }

    #[test]
    fn an_erasure_call_carries_its_source_and_decoded_captures() {
        let bp = builtin("botpenguin").unwrap();
        let headers = HeaderMap::new();
        let got = classify(
            &bp,
            &head_with(&Method::DELETE, "/customer/a%40b.com", &headers),
        );
        let Classification::Erasure(call) = got else {
            panic!("expected an erasure call, got {got:?}");
        };
        assert_eq!(call.source, ParamSource::None);
        assert_eq!(
            call.path_params.get("customer_id").map(String::as_str),
            Some("a@b.com")
        );
        let seam = builtin("seam").unwrap();
        let got = classify(
            &seam,
            &head_with(&Method::DELETE, "/customers/delete_data", &headers),
        );
        assert!(matches!(
            got,
            Classification::Erasure(ErasureCall {
                source: ParamSource::Query,
                ..
            })
        ));
    }

    #[test]
    fn refusal_reasons_name_the_problem_but_not_the_path() {
        let bp = builtin("botpenguin").unwrap();
        let headers = HeaderMap::new();
        let Classification::Refused(why) = classify(
            &bp,
            &head_with(&Method::DELETE, "/customer/secret-person%2Fx", &headers),
        ) else {
            panic!("expected a refusal");
        };
        let reason = why.reason();
        assert!(!reason.contains("secret-person"), "{reason}");
        assert!(reason.contains("path parameter"), "{reason}");
        let seam = builtin("seam").unwrap();
        let got = classify(
            &seam,
            &RequestHead {
                method: &Method::POST,
                path: "/customers/delete_data",
                query: Some("customer_keys=victim"),
                headers: &headers,
                has_body: false,
            },
        );
        assert_eq!(
            got,
            Classification::Refused(Ambiguity::QueryParamsOnBodyCall("customer_keys".to_owned()))
        );
    }
}
