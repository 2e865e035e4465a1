//! The one place that picks a status and an error body: refused erasure
//! calls (in the vendor's shape), the gateway's own errors, and every admin
//! answer. Internal detail goes to the log, never the client. `x-request-id`
//! is put on every answer by the request-id layers, not here.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};

pub mod shape;

use crate::Body;
pub use shape::ErrorShape;

/// The header that tells a client how the gateway decided an erasure call:
/// `allow`, `deny`, or `would-deny` (shadow mode).
pub static X_ERASURE_DECISION: http::header::HeaderName =
    http::header::HeaderName::from_static("x-erasure-decision");

/// The header naming the gateway-made id of a decided erasure call's
/// decision record (the trail's `decision_id`).
pub static X_ERASURE_DECISION_ID: http::header::HeaderName =
    http::header::HeaderName::from_static("x-erasure-decision-id");

/// The header naming the approval a held erasure call waits for.
pub static X_ERASURE_APPROVAL_ID: http::header::HeaderName =
    http::header::HeaderName::from_static("x-erasure-approval-id");

/// Why an erasure call was not forwarded. Answered in the vendor's own error
/// shape so that its SDKs raise their own API error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request could be read as the erasure call by the upstream but not
    /// exactly classified by the gateway (encoded path, override header, …).
    Ambiguous(String),
    /// The erasure call is malformed (strict parsing).
    Invalid(String),
    /// The body is larger than `max_body_bytes`.
    TooLarge,
    /// The credential was presented but failed verification (JWT).
    Unauthenticated(String),
    /// Policy denied at least one target.
    Denied {
        /// Why, one line per kind of denial.
        reasons: Vec<String>,
        /// The determining policy ids.
        policies: Vec<String>,
    },
    /// Entity data could not be fetched (directory down or slow).
    EntitiesUnavailable,
    /// The upstream failed after the call was allowed.
    Upstream(GatewayError),
    /// The decision could not be made durable in the trail.
    TrailUnavailable,
    /// The call would take its caller past an erasure budget.
    BudgetExceeded {
        /// Which budget, its use and its limit.
        reason: String,
        /// Seconds until that budget's window ends (`Retry-After`).
        retry_after_secs: u64,
    },
    /// The budget store cannot be reached, so nothing is counted or sent.
    BudgetUnavailable,
    /// Only `@approval` forbids deny the call: it waits for a second
    /// caller's approval.
    ApprovalRequired {
        /// The approval to ask for (and to repeat the call after).
        approval_id: String,
        /// What the `@approval` forbids say, `policy: reason`.
        reasons: Vec<String>,
    },
    /// `repeat = "refuse"`: these targets were erased in this window already.
    Repeated {
        /// The earlier decisions' ids.
        earlier: Vec<String>,
    },
}

impl Refusal {
    /// The HTTP status for this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Ambiguous(_) | Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Denied { .. } | Self::ApprovalRequired { .. } => StatusCode::FORBIDDEN,
            Self::EntitiesUnavailable | Self::TrailUnavailable | Self::BudgetUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Upstream(e) => e.status(),
            Self::BudgetExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Repeated { .. } => StatusCode::CONFLICT,
        }
    }

    /// A short machine-readable type (Seam's `error.type`).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Ambiguous(_) => "ambiguous_erasure_request",
            Self::Invalid(_) => "invalid_input",
            Self::TooLarge => "payload_too_large",
            Self::Unauthenticated(_) => "unauthorized",
            Self::Denied { .. } => "erasure_denied_by_policy",
            Self::EntitiesUnavailable => "service_unavailable",
            Self::TrailUnavailable => "trail_unavailable",
            Self::Upstream(e) => e.code(),
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::BudgetUnavailable => "budget_unavailable",
            Self::Repeated { .. } => "repeated_erasure",
            Self::ApprovalRequired { .. } => "approval_required",
        }
    }

    /// The message the client sees: a reason and policy ids, no internals.
    pub fn message(&self) -> String {
        match self {
            Self::Ambiguous(reason) => format!(
                "Refused by the erasure gateway: the request could be read as an erasure call but is ambiguous: {reason}"
            ),
            Self::Invalid(reason) => format!("Refused by the erasure gateway: {reason}"),
            Self::TooLarge => "Refused by the erasure gateway: the body is larger than the gateway accepts for an erasure call".into(),
            Self::Unauthenticated(reason) => format!("Refused by the erasure gateway: the credential is not valid ({reason})"),
            Self::Denied { reasons, policies } => {
                let mut message = format!("Erasure denied by policy: {}", reasons.join("; "));
                if !policies.is_empty() {
                    message.push_str(&format!(" [policies: {}]", policies.join(", ")));
                }
                message
            }
            Self::EntitiesUnavailable => "The erasure gateway could not look up the entity data needed to decide; retry later".into(),
            Self::Upstream(e) => e.to_string(),
            Self::TrailUnavailable => "The erasure gateway cannot record decisions right now, so it forwards none; retry later".into(),
            Self::BudgetExceeded { reason, retry_after_secs } => format!(
                "Refused by the erasure gateway: erasure budget exceeded: {reason}; retry in {retry_after_secs} s"
            ),
            Self::ApprovalRequired { approval_id, reasons } => format!(
                "Held by the erasure gateway for a second caller's approval ({}); approval id {approval_id}; once it is approved, send the identical call again",
                reasons.join("; ")
            ),
            Self::BudgetUnavailable => "The erasure gateway cannot reach its erasure budget store, so it forwards no erasure; retry later".into(),
            Self::Repeated { earlier } => format!(
                "Refused by the erasure gateway: these targets were erased already in this window [decisions: {}]",
                earlier.join(", ")
            ),
        }
    }

    /// The refusal in the vendor's error shape, with the request id in the
    /// vendor's own request-id header where its SDKs read one, and
    /// `x-erasure-decision: deny`.
    pub fn into_response(&self, shape: &ErrorShape, request_id: &HeaderValue) -> Response<Body> {
        let status = self.status();
        let id = request_id.to_str().unwrap_or_default();
        let (content_type, body) =
            shape.render(status.as_u16(), self.error_type(), &self.message(), id);
        let mut response = Response::new(full(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(content_type) {
            headers.insert(CONTENT_TYPE, value);
        }
        if let Some(name) = shape
            .request_id_header
            .as_deref()
            .and_then(|n| http::header::HeaderName::from_bytes(n.as_bytes()).ok())
        {
            headers.insert(name, request_id.clone());
        }
        if !matches!(self, Self::Upstream(_)) {
            mark_decided(headers, "deny", None);
        }
        if let Self::BudgetExceeded {
            retry_after_secs, ..
        } = self
        {
            headers.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(*retry_after_secs),
            );
        }
        if let Self::ApprovalRequired { approval_id, .. } = self {
            if let Ok(id) = HeaderValue::from_str(approval_id) {
                headers.insert(&X_ERASURE_APPROVAL_ID, id);
            }
        }
        response
    }
}

/// Marks the answer to a decided erasure call: `x-erasure-decision`
/// (`allow`, `deny`, `would-deny`) and, once recorded, the decision's id.
pub fn mark_decided(headers: &mut HeaderMap, decision: &'static str, decision_id: Option<&str>) {
    headers.insert(&X_ERASURE_DECISION, HeaderValue::from_static(decision));
    if let Some(id) = decision_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        headers.insert(&X_ERASURE_DECISION_ID, id);
    }
}

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
    /// `upstream_max_connections` requests to the upstream were in flight
    /// for all of `upstream_timeout`: the request was not sent.
    #[error("every connection to the upstream stayed busy; the request was not sent")]
    UpstreamBusy,
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
            Self::Overloaded | Self::UpstreamBusy => StatusCode::SERVICE_UNAVAILABLE,
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
            Self::UpstreamBusy => "upstream_busy",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamFailed => "upstream_failed",
            Self::BadRequest => "bad_request",
        }
    }

    /// The gateway's own JSON error response, carrying the request id.
    pub fn into_response(self, request_id: &HeaderValue) -> Response<Body> {
        json_response(
            self.status(),
            &error_body(self.code(), &self.to_string(), request_id),
        )
    }
}

/// A JSON response.
fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The gateway's error body: `{"error": {"code", "message", "request_id"}}`.
fn error_body(code: &str, message: &str, request_id: &HeaderValue) -> serde_json::Value {
    serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "request_id": request_id.to_str().unwrap_or_default(),
        }
    })
}

/// What an admin endpoint answers; the body is built by the endpoint, the
/// status is picked here.
#[derive(Debug)]
pub enum AdminAnswer {
    /// `/healthz`, `/v1/authorize`, a reload that took: 200 with this body.
    Ok(serde_json::Value),
    /// `/readyz`: 200 when ready, else 503.
    Readiness {
        /// Whether every check holds.
        ready: bool,
        /// The checks and versions.
        body: serde_json::Value,
    },
    /// `/metrics`: the OpenMetrics text.
    Metrics(String),
    /// A reload refused because the new set does not validate: 422.
    ReloadRefused(serde_json::Value),
    /// An error.
    Error(AdminError),
}

/// An admin request that cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No such endpoint.
    #[error("no such admin endpoint")]
    NotFound,
    /// A method other than GET, HEAD or POST.
    #[error("use GET")]
    MethodNotAllowed,
    /// A mutating or revealing call without the admin token.
    #[error("this call needs the admin token: Authorization: Bearer <token>")]
    Unauthorized,
    /// The request body is unreadable or not what the endpoint takes.
    #[error("{0}")]
    BadRequest(String),
    /// The metrics registry could not be rendered.
    #[error("metrics could not be rendered")]
    Metrics,
    /// The caller is known but may not do this (four-eyes rules).
    #[error("{0}")]
    Forbidden(String),
    /// The thing exists but is past this step (an approval settled already).
    #[error("{0}")]
    Conflict(String),
    /// The store or the trail cannot be reached.
    #[error("{0}")]
    Unavailable(String),
}

impl AdminError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Metrics => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable, machine-readable code for the body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unauthorized => "unauthorized",
            Self::BadRequest(_) => "bad_request",
            Self::Metrics => "metrics",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(_) => "conflict",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

impl AdminAnswer {
    /// The answer as a response.
    pub fn into_response(self, request_id: &HeaderValue) -> Response<Body> {
        match self {
            Self::Ok(body) => json_response(StatusCode::OK, &body),
            Self::Readiness { ready, body } => {
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                json_response(status, &body)
            }
            Self::Metrics(text) => {
                let mut response = Response::new(full(text));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            Self::ReloadRefused(body) => json_response(StatusCode::UNPROCESSABLE_ENTITY, &body),
            Self::Error(error) => json_response(
                error.status(),
                &error_body(error.code(), &error.to_string(), request_id),
            ),
        }
    }
}

impl From<AdminError> for AdminAnswer {
    fn from(error: AdminError) -> Self {
        Self::Error(error)
    }
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
    use crate::profile::builtin;

    #[test]
    fn refusals_take_each_vendors_shape_status_and_decision_header() {
        let id = HeaderValue::from_static("rid-9");
        let denied = Refusal::Denied {
            reasons: vec!["Kore::User: forbidden by kore-never-erase-account-owners".into()],
            policies: vec!["kore-never-erase-account-owners".into()],
        };
        for (vendor, probe) in [
            ("seam", "/error/message"),
            ("kore", "/errors/0/msg"),
            ("botpenguin", "/message"),
        ] {
            let shape = builtin(vendor).unwrap().error.clone();
            let response = denied.into_response(&shape, &id);
            assert_eq!(response.status(), 403, "{vendor}");
            assert_eq!(response.headers()[&X_ERASURE_DECISION], "deny");
            let body = futures_body(response);
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let message = json
                .pointer(probe)
                .and_then(|m| m.as_str())
                .unwrap_or_default();
            assert!(
                message.contains("kore-never-erase-account-owners"),
                "{vendor}: {json}"
            );
        }
        let seam = builtin("seam").unwrap().error.clone();
        let response = Refusal::TooLarge.into_response(&seam, &id);
        assert_eq!(response.status(), 413);
        assert_eq!(response.headers()["seam-request-id"], "rid-9");
        // The refusal types DESIGN.md fixes.
        let response = Refusal::TrailUnavailable.into_response(&seam, &id);
        assert_eq!(response.status(), 503);
        let json: serde_json::Value = serde_json::from_slice(&futures_body(response)).unwrap();
        assert_eq!(json["error"]["type"], "trail_unavailable", "{json}");
    }

    fn futures_body(response: Response<Body>) -> bytes::Bytes {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(response.into_body().collect())
            .unwrap()
            .to_bytes()
    }

    #[test]
    fn each_error_picks_its_status_and_names_no_internals() {
        let id = HeaderValue::from_static("rid-1");
        let cases = [
            (GatewayError::NotRouted, 404),
            (GatewayError::DotSegment, 400),
            (GatewayError::PassthroughDenied, 403),
            (GatewayError::Overloaded, 503),
            (GatewayError::UpstreamBusy, 503),
            (GatewayError::UpstreamUnreachable, 502),
            (GatewayError::UpstreamFailed, 502),
            (GatewayError::UpstreamTimeout, 504),
        ];
        for (err, status) in cases {
            let response = err.into_response(&id);
            assert_eq!(response.status().as_u16(), status, "{err:?}");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
            let body: serde_json::Value = serde_json::from_slice(&futures_body(response)).unwrap();
            assert_eq!(body["error"]["request_id"], "rid-1", "{err:?}");
            assert_eq!(body["error"]["code"], err.code());
        }
    }

    #[test]
    fn each_admin_answer_picks_its_status() {
        let id = HeaderValue::from_static("rid-2");
        let cases = [
            (AdminAnswer::Ok(serde_json::json!({})), 200),
            (
                AdminAnswer::Readiness {
                    ready: true,
                    body: serde_json::json!({}),
                },
                200,
            ),
            (
                AdminAnswer::Readiness {
                    ready: false,
                    body: serde_json::json!({}),
                },
                503,
            ),
            (AdminAnswer::Metrics(String::new()), 200),
            (AdminAnswer::ReloadRefused(serde_json::json!({})), 422),
            (AdminError::NotFound.into(), 404),
            (AdminError::MethodNotAllowed.into(), 405),
            (AdminError::Unauthorized.into(), 401),
            (AdminError::BadRequest("no".into()).into(), 400),
            (AdminError::Metrics.into(), 500),
        ];
        for (answer, status) in cases {
            let is_error = matches!(answer, AdminAnswer::Error(_));
            let response = answer.into_response(&id);
            assert_eq!(response.status().as_u16(), status);
            if is_error {
                let body: serde_json::Value =
                    serde_json::from_slice(&futures_body(response)).unwrap();
                assert_eq!(body["error"]["request_id"], "rid-2", "{body}");
            }
        }
    }
}
