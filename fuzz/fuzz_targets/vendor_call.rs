//! Classification and strict parsing of a request by every built-in vendor
//! profile (seam, kore, botpenguin), and the rebuilt call's fixed point.
//!
//! The input is a request written as text, so seeds are easy to write by
//! hand from the vendors' sample requests:
//!
//! ```text
//! DELETE /api/public/bot/eraseUsersData?optional=query
//! content-type: application/json
//! auth: jwt
//!
//! {"userIds":["u-1"]}
//! ```
//!
//! (request line `METHOD SP path[?query]`, header lines `name: value`, an
//! empty line, then the body bytes). Every profile classifies it; nothing may
//! panic. A call classified as the erasure call and parsed must rebuild with
//! `profile::outbound`, and the rebuilt call, classified and parsed again,
//! must give the same targets, context, path and parameters, and rebuild to
//! the same bytes: the canonical form is a fixed point.

#![no_main]

use erasure_gateway::profile::{
    builtins, classify, forwarded_sha256, outbound, parse, Classification, RequestHead,
    VendorProfile,
};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::Method;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Request {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn read(data: &[u8]) -> Option<Request> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(end) => (&data[..end], &data[end + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let request_line = std::str::from_utf8(lines.next()?).ok()?;
    let request_line = request_line.strip_suffix('\r').unwrap_or(request_line);
    let (method, target) = request_line.split_once(' ')?;
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    Some(Request {
        method,
        path: path.to_owned(),
        query,
        headers,
        body: body.to_vec(),
    })
}

fn profiles() -> &'static [VendorProfile] {
    static PROFILES: OnceLock<Vec<VendorProfile>> = OnceLock::new();
    PROFILES.get_or_init(|| builtins().expect("the built-in profiles load"))
}

/// Classifies and parses `request` with `profile`; for a parsed erasure
/// call, checks that its rebuilt form is a fixed point.
fn check(profile: &VendorProfile, request: &Request) {
    let head = RequestHead {
        method: &request.method,
        path: &request.path,
        query: request.query.as_deref(),
        headers: &request.headers,
        has_body: !request.body.is_empty(),
    };
    let call = match classify(profile, &head) {
        Classification::Erasure(call) => call,
        Classification::Refused(ambiguity) => {
            let _ = ambiguity.reason();
            return;
        }
        Classification::NotErasure => return,
    };
    assert_eq!(call.method, request.method);
    let erasure = match parse(profile, &call, &head, &request.body) {
        Ok(erasure) => erasure,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    assert!(!erasure.targets.is_empty(), "parsed with no target");
    let namespace = format!("{}::", profile.namespace);
    for target in &erasure.targets {
        assert!(target.entity_type.starts_with(&namespace), "{target:?}");
    }
    assert_eq!(erasure.method, request.method.as_str());
    let _ = serde_json::to_string(&erasure);

    let rebuilt = outbound(profile, &erasure, &request.headers)
        .unwrap_or_else(|e| panic!("a parsed {} call does not rebuild: {e}", profile.name));
    assert!(
        rebuilt.path_and_query.parse::<PathAndQuery>().is_ok(),
        "rebuilt path is not a valid request target: {:?}",
        rebuilt.path_and_query
    );
    let _ = forwarded_sha256(
        rebuilt.method.as_str(),
        &rebuilt.path_and_query,
        &rebuilt.headers,
        &rebuilt.body,
    );

    let (path, query) = match rebuilt.path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rebuilt.path_and_query.as_str(), None),
    };
    let again = RequestHead {
        method: &rebuilt.method,
        path,
        query,
        headers: &rebuilt.headers,
        has_body: !rebuilt.body.is_empty(),
    };
    let call_again = match classify(profile, &again) {
        Classification::Erasure(call) => call,
        other => panic!(
            "{}: the rebuilt call {} {:?} is classified {other:?}",
            profile.name, rebuilt.method, rebuilt.path_and_query
        ),
    };
    assert_eq!(call_again.source, call.source);
    let erasure_again = parse(profile, &call_again, &again, &rebuilt.body).unwrap_or_else(|e| {
        panic!(
            "{}: the rebuilt call {} {:?} body {:?} does not parse: {e}",
            profile.name,
            rebuilt.method,
            rebuilt.path_and_query,
            String::from_utf8_lossy(&rebuilt.body)
        )
    });
    assert_eq!(erasure_again.targets, erasure.targets, "targets changed");
    assert_eq!(erasure_again.context, erasure.context, "context changed");
    assert_eq!(erasure_again.path, erasure.path, "path changed");
    assert_eq!(erasure_again.params, erasure.params, "parameters changed");
    let rebuilt_again = outbound(profile, &erasure_again, &rebuilt.headers)
        .unwrap_or_else(|e| panic!("the canonical call does not rebuild: {e}"));
    assert_eq!(
        rebuilt_again, rebuilt,
        "the canonical form is not a fixed point"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = read(data) else {
        return;
    };
    for profile in profiles() {
        check(profile, &request);
    }
});
