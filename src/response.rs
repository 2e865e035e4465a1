//! The one place that turns a gateway error into a response: status code,
//! JSON body, and headers. Internal detail goes to the log, never the client.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::request_id::X_REQUEST_ID;
use crate::Body;

/// Something the gateway answers itself instead of forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No upstream is configured for this host and path.
    #[error("no route for this request")]
    NotRouted,
    /// The path holds dot segments that could escape a route prefix.
    #[error("path holds `.` or `..` segments")]
    DotSegment,
    /// `passthrough = "deny"` and this is not an erasure call.
    #[error("only erasure calls are allowed through this gateway")]
    PassthroughDenied,
    /// `max_concurrency` requests are already in flight.
    #[error("the gateway is at capacity; retry later")]
    Overloaded,
    /// The upstream refused or failed the connection.
    #[error("the upstream could not be reached")]
    UpstreamUnreachable,
    /// The upstream did not answer within `upstream_timeout`.
    #[error("the upstream did not answer in time")]
    UpstreamTimeout,
    /// The upstream connection failed after it was made.
    #[error("the upstream connection failed")]
    UpstreamFailed,
    /// The request could not be turned into an upstream request.
    #[error("the request could not be forwarded")]
    BadRequest,
}

impl GatewayError {
    /// The HTTP status for this error.
    pub fn status(self) -> StatusCode {
        match self {
            Self::NotRouted => StatusCode::NOT_FOUND,
            Self::DotSegment | Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::PassthroughDenied => StatusCode::FORBIDDEN,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamUnreachable | Self::UpstreamFailed => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// A stable, machine-readable code for the body.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotRouted => "not_routed",
            Self::DotSegment => "ambiguous_path",
            Self::PassthroughDenied => "passthrough_denied",
            Self::Overloaded => "overloaded",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamFailed => "upstream_failed",
            Self::BadRequest => "bad_request",
        }
    }

    /// The gateway's own JSON error response, carrying the request id.
    pub fn into_response(self, request_id: &HeaderValue) -> Response<Body> {
        let body = serde_json::json!({
            "error": {
                "code": self.code(),
                "message": self.to_string(),
                "request_id": request_id.to_str().unwrap_or_default(),
            }
        });
        json_response(self.status(), &body, request_id)
    }
}

/// A JSON response with `x-request-id`.
pub fn json_response(
    status: StatusCode,
    body: &serde_json::Value,
    request_id: &HeaderValue,
) -> Response<Body> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(&X_REQUEST_ID, request_id.clone());
    response
}

/// A complete in-memory body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_picks_its_status_and_names_no_internals() {
        let id = HeaderValue::from_static("rid-1");
        let cases = [
            (GatewayError::NotRouted, 404),
            (GatewayError::DotSegment, 400),
            (GatewayError::PassthroughDenied, 403),
            (GatewayError::Overloaded, 503),
            (GatewayError::UpstreamUnreachable, 502),
            (GatewayError::UpstreamFailed, 502),
            (GatewayError::UpstreamTimeout, 504),
        ];
        for (err, status) in cases {
            let response = err.into_response(&id);
            assert_eq!(response.status().as_u16(), status, "{err:?}");
            assert_eq!(response.headers()[&X_REQUEST_ID], "rid-1");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        }
    }
}
