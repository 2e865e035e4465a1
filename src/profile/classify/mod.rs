//! Is this request the vendor's erasure call? Decided from the request head
//! alone (method, raw path, raw query, headers), before any body is read.
//! Anything an upstream could read as the erasure call is either classified
//! exactly as the erasure call or refused; everything else passes. The
//! headers and query keys that ask a server to read a request as another
//! method or path are in `overrides`.

mod overrides;
#[cfg(test)]
mod spellings;

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, Method};

use super::definition::ParamSource;
use super::path::PathIssue;
use super::text::{fold_case, shown};
use super::vendor::VendorProfile;

pub use overrides::{is_method_override_header, is_url_rewrite_header, URL_REWRITE_HEADERS};

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
    /// The path is not an erasure call, but the upstream's base path (its
    /// URL's path, `{0}`) and it together are: the vendor would read one.
    #[error("the upstream's base path `{0}` and this path together form the erasure path; the gateway decides calls by the path after the base URL (set the upstream's url without it)")]
    BasePath(String),
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

/// The profile field a query key could be read as, ignoring case, percent-
/// encoding (already decoded) and bracket suffixes (`customer_keys[]`,
/// `customer_keys[0]`).
fn erasure_like_field<'p>(profile: &'p VendorProfile, key: &str) -> Option<&'p str> {
    profile.field_folded_as(&fold_case(key.split('[').next().unwrap_or(key).trim()))
}

fn repeated(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers.get_all(name).iter().nth(1).is_some()
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
    let pattern = profile.pattern();
    let erasure_like = pattern.is_erasure_like(head.path);
    if let Some(name) = overrides::url_rewrite(pattern, head.headers, erasure_like) {
        return Classification::Refused(Ambiguity::UrlRewrite(name.as_str().to_owned()));
    }
    if !erasure_like {
        return Classification::NotErasure;
    }
    if let Some(name) = overrides::method_override_header(head.headers) {
        return Classification::Refused(Ambiguity::MethodOverride(name.as_str().to_owned()));
    }
    let query = head.query.unwrap_or_default();
    if let Some(key) = overrides::method_override_query(query) {
        return Classification::Refused(Ambiguity::MethodOverrideQuery(shown(&key)));
    }
    if let Some(name) = overrides::connection_names_decided(profile, head.headers) {
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
    for header in profile.decided_headers().iter() {
        if repeated(head.headers, header) {
            return Classification::Refused(Ambiguity::RepeatedHeader(header.as_str().to_owned()));
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
    use crate::profile::test_support::head_with;
    use http::HeaderValue;

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
