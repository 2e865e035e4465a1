//! The erasure call as the vendor receives it, rebuilt from what was
//! decided rather than copied from what arrived: method and path from the
//! profile, the body or query re-serialised from the parsed call, and only
//! the headers the decision read. [`forwarded_sha256`] is the digest the
//! decision record carries, so an auditor can match it to the vendor's view.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::Method;

pub use crate::wire::{forwarded_sha256, Outbound};

use super::parse::{CallParams, ErasureRequest};
use super::vendor::VendorProfile;

/// W3C trace-context headers, carried through when sent once.
static TRACE_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
];

/// Why a decided call could not be rebuilt (a profile fault; refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The parsed method is not a valid HTTP method.
    #[error("the erasure method cannot be sent")]
    Method,
    /// The canonical body could not be serialised.
    #[error("the erasure call's body could not be rebuilt")]
    Body,
}

/// Rebuilds the erasure call from its parsed form and the received headers.
///
/// # Errors
/// The method or body cannot be produced (never for a validated profile).
pub fn outbound(
    profile: &VendorProfile,
    erasure: &ErasureRequest,
    received: &HeaderMap,
) -> Result<Outbound, OutboundError> {
    let method =
        Method::from_bytes(erasure.method.as_bytes()).map_err(|_| OutboundError::Method)?;
    let mut path_and_query = erasure.path.clone();
    let mut headers = HeaderMap::new();
    let body = match &erasure.params {
        CallParams::Body(map) => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Bytes::from(serde_json::to_vec(map).map_err(|_| OutboundError::Body)?)
        }
        CallParams::Query(pairs) => {
            let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            path_and_query.push('?');
            path_and_query.push_str(&query);
            Bytes::new()
        }
        CallParams::None => Bytes::new(),
    };
    let carried = profile.decided_headers().iter().chain(&TRACE_HEADERS);
    for name in carried {
        let mut values = received.get_all(name).iter();
        // Classification refused repeats of the decided headers; a repeated
        // trace header is dropped rather than guessed at.
        if let (Some(value), None) = (values.next(), values.next()) {
            headers.insert(name.clone(), value.clone());
        }
    }
    Ok(Outbound {
        method,
        path_and_query,
        headers,
        body,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::{builtin, classify, parse, Classification, RequestHead};

    fn rebuilt(
        vendor: &str,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Outbound {
        let profile = builtin(vendor).unwrap();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let map = crate::profile::test_support::headers(headers);
        let head = RequestHead {
            method: &method,
            path,
            query,
            headers: &map,
            has_body: !body.is_empty(),
        };
        let Classification::Erasure(call) = classify(&profile, &head) else {
            panic!("not an erasure call");
        };
        let erasure = parse(&profile, &call, &head, body.as_bytes()).unwrap();
        outbound(&profile, &erasure, &map).unwrap()
    }

    #[test]
    fn a_kore_call_is_rebuilt_with_only_what_was_decided() {
        let out = rebuilt(
            "kore",
            "DELETE",
            "/api/public/bot/eraseUsersData",
            None,
            &[
                ("auth", "jwt-here"),
                ("content-type", "application/json; charset=utf-8"),
                ("x-custom-meaning", "1"),
                ("cookie", "session=1"),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
            ],
            r#"{ "userIds" : ["Owner@EXAMPLE.com", {"channel_user_id":"u","channel_id":"c"}],
                 "RemoveDataFromAllBots": false }"#,
        );
        assert_eq!(out.method, Method::DELETE);
        assert_eq!(out.path_and_query, "/api/public/bot/eraseUsersData");
        assert_eq!(
            out.body,
            r#"{"RemoveDataFromAllBots":false,"userIds":["owner@example.com",{"channel_id":"c","channel_user_id":"u"}]}"#
        );
        let names: Vec<&str> = out.headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(out.headers["content-type"], "application/json");
        assert_eq!(out.headers["auth"], "jwt-here");
        assert!(out.headers.contains_key("traceparent"));
    }

    #[test]
    fn a_seam_query_call_is_rebuilt_in_sorted_canonical_form() {
        let out = rebuilt(
            "seam",
            "DELETE",
            "/customers/delete_data",
            Some("user_keys=u%201&customer_keys=b&customer_keys=a&_strict=true"),
            &[("authorization", "Bearer seam_x"), ("seam-workspace", "ws")],
            "",
        );
        assert_eq!(
            out.path_and_query,
            "/customers/delete_data?_strict=true&customer_keys=b&customer_keys=a&user_keys=u+1"
        );
        assert!(out.body.is_empty());
        assert_eq!(out.headers["seam-workspace"], "ws");
        assert!(!out.headers.contains_key("content-type"));
    }

    #[test]
    fn a_botpenguin_call_keeps_authtype_and_an_encoded_path_id() {
        let out = rebuilt(
            "botpenguin",
            "DELETE",
            "/customer/a%40b%20c",
            None,
            &[
                ("authorization", "Bearer t"),
                ("authtype", "Key"),
                ("x-forwarded-host", "evil"),
            ],
            "",
        );
        assert_eq!(out.path_and_query, "/customer/a@b%20c");
        assert_eq!(out.headers.len(), 2);
        assert_eq!(out.headers["authtype"], "Key");
    }

    #[test]
    fn the_digest_covers_method_path_headers_and_body_but_not_framing() {
        let mut headers = HeaderMap::new();
        headers.insert("auth", HeaderValue::from_static("a"));
        let base = forwarded_sha256("DELETE", "/p", &headers, b"{}");
        assert_eq!(base.len(), 64);
        assert_ne!(base, forwarded_sha256("POST", "/p", &headers, b"{}"));
        assert_ne!(base, forwarded_sha256("DELETE", "/q", &headers, b"{}"));
        assert_ne!(base, forwarded_sha256("DELETE", "/p", &headers, b"{ }"));
        let mut more = headers.clone();
        more.insert("x-extra", HeaderValue::from_static("1"));
        assert_ne!(base, forwarded_sha256("DELETE", "/p", &more, b"{}"));
        let mut framed = headers.clone();
        framed.insert("content-length", HeaderValue::from_static("2"));
        framed.insert("host", HeaderValue::from_static("vendor:1"));
        assert_eq!(base, forwarded_sha256("DELETE", "/p", &framed, b"{}"));
    }

    #[test]
    fn a_number_in_the_body_is_forwarded_as_the_value_that_was_read() {
        // Found by fuzz/fuzz_targets/vendor_call.rs: serde_json wrote
        // `30e-205` as `3e-204` and read that back one ulp off, so the
        // rebuilt call was not a fixed point. Its `float_roundtrip` feature
        // makes every read exact.
        let json = [("content-type", "application/json")];
        let path = "/customers/delete_data";
        let body = r#"{"customer_keys":["a"],"_strict":30e-205}"#;
        let first = rebuilt("seam", "POST", path, None, &json, body);
        assert_eq!(first.body, r#"{"_strict":3e-204,"customer_keys":["a"]}"#);
        let canonical = std::str::from_utf8(&first.body).unwrap();
        assert_eq!(rebuilt("seam", "POST", path, None, &json, canonical), first);
    }
}
