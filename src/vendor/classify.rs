//! Is this request the vendor's erasure call? Decided from the request head
//! alone (method, raw path, raw query, headers), before any body is read.
//! Anything an upstream could read as the erasure call is either classified
//! exactly as the erasure call or refused; everything else passes.

use std::collections::BTreeMap;

use http::{HeaderMap, Method};

use super::path::{PathIssue, PathPattern};
use super::profile::{OtherMethods, ParamSource, VendorProfile};

/// Headers that make some frameworks run a different method than the one on
/// the request line.
const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

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
    /// A `_method` query parameter on an erasure path.
    #[error("method-override query parameter `_method` on the erasure path")]
    MethodOverrideQuery,
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

/// Decides whether `head` is `profile`'s erasure call.
///
/// A path is *erasure-like* when any aggressive normalisation of it (repeated
/// percent-decoding, `\` as `/`, collapsed slashes, `;params` dropped, dot
/// segments resolved, trailing slash dropped, case folded) matches the
/// profile's pattern. On an erasure-like path: any method-override header or
/// `_method` query parameter is refused; a raw path that is not exactly the
/// canonical spelling is refused; an erasure method becomes
/// [`Classification::Erasure`] (a letter-case variant of one is refused);
/// another method passes or is refused as `other_methods` says. A body-form
/// or path-only call with a query string, and an erasure call with a repeated
/// credential or workspace header, are refused. A path that is not
/// erasure-like is [`Classification::NotErasure`].
#[must_use]
pub fn classify(profile: &VendorProfile, head: &RequestHead<'_>) -> Classification {
    let pattern = match PathPattern::parse(&profile.path) {
        Ok(pattern) => pattern,
        Err(reason) => return Classification::Refused(Ambiguity::InvalidProfile(reason)),
    };
    if !pattern.is_erasure_like(head.path) {
        return Classification::NotErasure;
    }
    if let Some(header) = METHOD_OVERRIDE_HEADERS
        .iter()
        .find(|h| head.headers.contains_key(**h))
    {
        return Classification::Refused(Ambiguity::MethodOverride((*header).to_owned()));
    }
    let query = head.query.unwrap_or_default();
    if form_urlencoded::parse(query.as_bytes()).any(|(key, _)| fold(key.trim()) == "_method") {
        return Classification::Refused(Ambiguity::MethodOverrideQuery);
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
        return match profile.other_methods {
            OtherMethods::Pass => Classification::NotErasure,
            OtherMethods::Refuse => {
                Classification::Refused(Ambiguity::OtherMethod(method.to_owned()))
            }
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
        .chain(profile.workspace_header.as_deref());
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
    use crate::vendor::builtin;
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
                ("PUT", "/customer/abc", None, None, N),
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
        }
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
            },
        );
        assert_eq!(
            got,
            Classification::Refused(Ambiguity::QueryParamsOnBodyCall("customer_keys".to_owned()))
        );
    }
}
