//! The `x-request-id` every request carries upstream and back, as
//! tower-http's request-id layers.
//!
//! A client's id is kept when it is one sane token (so callers can correlate
//! their own logs); anything else is replaced by a fresh UUIDv7. The id goes
//! into the request's extensions and onto every answer, whoever made it.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Request;
use tower::util::MapRequest;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestId, PropagateRequestIdLayer, RequestId, SetRequestId,
    SetRequestIdLayer,
};

/// The header name.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const MAX_LEN: usize = 128;

/// `service` with the request-id layers around it: a client id that is not
/// one sane token is dropped, a missing one is made (UUIDv7), and the
/// request's id is put on the answer unless the answer already has one.
pub type WithRequestId<S, B> =
    MapRequest<SetRequestId<PropagateRequestId<S>, MakeUuidV7>, fn(Request<B>) -> Request<B>>;

/// Wraps `service` in the request-id layers (see [`WithRequestId`]).
pub fn around<S, B>(service: S) -> WithRequestId<S, B> {
    ServiceBuilder::new()
        .map_request(drop_unless_sane as fn(Request<B>) -> Request<B>)
        .layer(SetRequestIdLayer::new(X_REQUEST_ID.clone(), MakeUuidV7))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        .service(service)
}

/// The id the request-id layers gave `request`; a fresh one for a request
/// that did not pass through them.
pub fn of<B>(request: &Request<B>) -> HeaderValue {
    request
        .extensions()
        .get::<RequestId>()
        .map_or_else(generate, |id| id.header_value().clone())
}

/// A request id as log text: the id itself, unquoted (ids the gateway
/// keeps are visible ASCII; anything else logs as `-`).
pub fn text(id: &HeaderValue) -> &str {
    id.to_str().unwrap_or("-")
}

/// Makes request ids: UUIDv7, time-ordered, as 32 hex digits.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeUuidV7;

impl MakeRequestId for MakeUuidV7 {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(generate()))
    }
}

/// Removes the client's `x-request-id` unless there is exactly one and it is
/// 1–128 characters of `[A-Za-z0-9._:-]`, so that a new one is made.
fn drop_unless_sane<B>(mut request: Request<B>) -> Request<B> {
    if !has_one_sane(request.headers()) {
        request.headers_mut().remove(&X_REQUEST_ID);
    }
    request
}

fn has_one_sane(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(&X_REQUEST_ID).iter();
    matches!((values.next(), values.next()), (Some(value), None) if is_sane(value.as_bytes()))
}

/// A fresh id.
pub fn generate() -> HeaderValue {
    let id = uuid::Uuid::now_v7().simple().to_string();
    // A simple UUID is 32 hex digits, always a valid header value.
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn is_sane(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= MAX_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    /// The id the layers give a request with these `x-request-id` values,
    /// as seen inside (extension, header) and on the answer.
    fn id_for(values: &[&str]) -> HeaderValue {
        let mut request = Request::new(());
        for v in values {
            request
                .headers_mut()
                .append(&X_REQUEST_ID, HeaderValue::from_str(v).unwrap());
        }
        let service = around(tower::service_fn(|request: Request<()>| async move {
            let inside = of(&request);
            assert_eq!(request.headers().get_all(&X_REQUEST_ID).iter().count(), 1);
            assert_eq!(request.headers()[&X_REQUEST_ID], inside);
            Ok::<_, Infallible>(http::Response::new(inside))
        }));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let response = rt.block_on(service.oneshot(request)).unwrap();
        assert_eq!(&response.headers()[&X_REQUEST_ID], response.body());
        response.into_body()
    }

    #[test]
    fn a_sane_client_id_is_kept() {
        assert_eq!(id_for(&["abc-123_x.y:z"]), "abc-123_x.y:z");
    }

    #[test]
    fn an_unsafe_or_repeated_client_id_is_replaced() {
        for bad in [
            vec!["has space"],
            vec!["a\"b"],
            vec!["x"; 2],
            vec![&"a".repeat(129)],
        ] {
            let bad: Vec<&str> = bad.iter().map(|s| &**s).collect();
            let id = id_for(&bad);
            assert_eq!(id.len(), 32, "{bad:?} -> {id:?}");
            assert!(id.to_str().unwrap().bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn a_missing_id_is_generated_fresh_each_time() {
        assert_ne!(id_for(&[]), id_for(&[]));
    }

    #[test]
    fn an_answer_that_has_an_id_keeps_it() {
        let service = around(tower::service_fn(|_: Request<()>| async {
            let mut response = http::Response::new(());
            response
                .headers_mut()
                .insert(&X_REQUEST_ID, HeaderValue::from_static("own"));
            Ok::<_, Infallible>(response)
        }));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let response = rt.block_on(service.oneshot(Request::new(()))).unwrap();
        assert_eq!(response.headers()[&X_REQUEST_ID], "own");
    }
}
