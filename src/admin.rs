//! The admin listener: `GET /healthz`, `/readyz`, `/metrics`, and
//! `POST /v1/reload`, `/v1/authorize` (behind the admin token when set);
//! `GET /v1/approvals` and `POST /v1/approvals/{id}` (four-eyes approval,
//! with the approver's own caller credential).
//!
//! With `[console] enabled`, the reviewers' console is under `/console`
//! (behind its own reviewer token).
//!
//! Kept apart from the proxy listener so that probes and scrapes never
//! compete with proxied traffic and are never routed to a vendor. Served by
//! the same server as the proxy (`server::serve`), without TLS.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::Service;

use crate::authz::PolicySnapshot;
use crate::console::{self, http::Access, Console};
use crate::metrics::Metrics;
use crate::offline::described::DescribedRequest;
use crate::pipeline::Gateway;
use crate::request_id;
use crate::response::{AdminAnswer, AdminError};
use crate::trail::Trail;
use crate::Body;

/// What the admin endpoints report on.
#[derive(Debug)]
pub struct AdminState {
    /// The gateway's metrics.
    pub metrics: Arc<Metrics>,
    /// Set once the proxy listener serves; cleared when shutdown begins.
    pub ready: AtomicBool,
    /// The decision trail, whose health readiness includes.
    pub trail: Option<Trail>,
    /// The gateway: policies in force, reload, authorize.
    pub gateway: Arc<Gateway>,
    /// SHA-256 of the admin token; mutating calls need the token when set.
    pub token_sha256: Option<String>,
    /// The reviewers' console under `/console` (`[console] enabled`), and
    /// who may use it.
    pub console: Option<(Arc<Console>, Access)>,
}

/// The admin endpoints as a service for `server::serve`, with the
/// request-id layers: every answer carries `x-request-id`.
pub fn service(
    state: Arc<AdminState>,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send>
       + Clone
       + Send
       + 'static {
    request_id::around(tower::service_fn(move |request: Request<Incoming>| {
        let state = state.clone();
        async move {
            if let Some((console, access)) = &state.console {
                let path = request.uri().path();
                if path == "/console" || path.starts_with("/console/") {
                    // The set in force now may be a reload the console has
                    // not quoted yet.
                    console.learn_policies(&state.gateway.policies());
                    return Ok(console::http::respond(console.clone(), access, request).await);
                }
            }
            let request_id = request_id::of(&request);
            Ok(handle(&state, request).await.into_response(&request_id))
        }
    }))
}

/// Answers one admin request.
async fn handle(state: &AdminState, request: Request<Incoming>) -> AdminAnswer {
    if request.method() == Method::POST {
        return post(state, request)
            .await
            .unwrap_or_else(AdminAnswer::Error);
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return AdminError::MethodNotAllowed.into();
    }
    match request.uri().path() {
        "/healthz" => AdminAnswer::Ok(json!({"status": "ok"})),
        "/readyz" => readyz(state),
        "/metrics" => state
            .metrics
            .render()
            .map_or(AdminError::Metrics.into(), AdminAnswer::Metrics),
        "/v1/approvals" => {
            // The admin token lists; so does an approver's own credential.
            let admin = state.token_sha256.is_some() && authorized(state, request.headers());
            state
                .gateway
                .list_approvals(bearer_header(request.headers()), admin)
                .await
                .map_or_else(AdminAnswer::Error, AdminAnswer::Ok)
        }
        _ => AdminError::NotFound.into(),
    }
}

fn readyz(state: &AdminState) -> AdminAnswer {
    // One snapshot for both the check and the version reported.
    let policies = state.gateway.policies();
    let checks = Readiness {
        proxy_listening: state.ready.load(Ordering::Acquire),
        policies_loaded: policies_in_force(&policies),
        trail_writable: state.trail.as_ref().is_none_or(Trail::healthy),
    };
    let ready = checks.ready();
    let reloads = state.gateway.policy_store().reload_state();
    let time = |t: std::time::SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    AdminAnswer::Readiness {
        ready,
        body: json!({
            "status": if ready { "ready" } else { "not ready" },
            "checks": {
                "proxy_listening": checks.proxy_listening,
                "policies_loaded": checks.policies_loaded,
                "trail_writable": checks.trail_writable,
            },
            "policy_version": policies.version(),
            "last_reload": reloads.last_success.map(time),
            "last_reload_failure": reloads.last_failure.map(|(t, e)| {
                json!({"time": time(t), "error": e})
            }),
        }),
    }
}

/// What `/readyz` checks; the gateway is ready only when every check holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Readiness {
    /// The proxy listener serves (and shutdown has not begun).
    proxy_listening: bool,
    /// A valid policy set is in force.
    policies_loaded: bool,
    /// The trail's last write (or retry) succeeded.
    trail_writable: bool,
}

impl Readiness {
    fn ready(self) -> bool {
        self.proxy_listening && self.policies_loaded && self.trail_writable
    }
}

/// Whether `snapshot` is a policy set the gateway can decide with: it has
/// a version and at least one policy. (A snapshot is only built from a set
/// that validated, but readiness reads the state instead of assuming it:
/// without policies every erasure call would be refused.)
fn policies_in_force(snapshot: &PolicySnapshot) -> bool {
    !snapshot.version().is_empty() && snapshot.policy_ids().next().is_some()
}

/// `POST /v1/reload` and `POST /v1/authorize`.
async fn post(state: &AdminState, request: Request<Incoming>) -> Result<AdminAnswer, AdminError> {
    let path = request.uri().path().to_owned();
    if let Some(id) = path.strip_prefix("/v1/approvals/") {
        return settle(state, id.to_owned(), request).await;
    }
    if !matches!(path.as_str(), "/v1/reload" | "/v1/authorize") {
        return Err(AdminError::NotFound);
    }
    // Reload changes what is enforced; authorize reveals decisions and
    // entity data. Both need the token when one is configured.
    if !authorized(state, request.headers()) {
        return Err(AdminError::Unauthorized);
    }
    if path == "/v1/reload" {
        return Ok(
            match crate::reload::reload(state.gateway.policy_store().clone(), &state.metrics).await
            {
                Ok(reloaded) => AdminAnswer::Ok(json!({
                    "status": "reloaded",
                    "policy_version": reloaded.version,
                    "previous_version": reloaded.previous,
                })),
                Err(errors) => AdminAnswer::ReloadRefused(json!({
                    "status": "refused",
                    "policy_version": state.gateway.policies().version(),
                    "errors": errors.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })),
            },
        );
    }
    let body = Limited::new(request.into_body(), 1024 * 1024)
        .collect()
        .await
        .map_err(|_| AdminError::BadRequest("the body could not be read (at most 1 MiB)".into()))?
        .to_bytes();
    let described: DescribedRequest = serde_json::from_slice(&body)
        .map_err(|e| AdminError::BadRequest(format!("not a described request: {e}")))?;
    // Decided with the live policies, callers and directory; not forwarded,
    // not recorded.
    let profile = state.gateway.profile(&described.vendor).ok_or_else(|| {
        AdminError::BadRequest(format!("no vendor profile `{}`", described.vendor))
    })?;
    let snapshot = state.gateway.policies();
    let explanation = described
        .explain(profile, state.gateway.evaluator(), &snapshot)
        .await
        .map_err(|e| AdminError::BadRequest(e.to_string()))?;
    Ok(AdminAnswer::Ok(
        serde_json::to_value(&explanation).unwrap_or_default(),
    ))
}

/// The `Authorization` header's value, if it is text.
fn bearer_header(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// What `POST /v1/approvals/{id}` takes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settlement {
    /// `approve` or `reject`.
    decision: String,
    /// Why, for the trail.
    #[serde(default)]
    note: Option<String>,
}

/// `POST /v1/approvals/{id}` with `{"decision": "approve" | "reject"}`, as
/// the caller whose credential is in `Authorization`.
async fn settle(
    state: &AdminState,
    id: String,
    request: Request<Incoming>,
) -> Result<AdminAnswer, AdminError> {
    let authorization = bearer_header(request.headers()).map(str::to_owned);
    let body = Limited::new(request.into_body(), 64 * 1024)
        .collect()
        .await
        .map_err(|_| AdminError::BadRequest("the body could not be read (at most 64 KiB)".into()))?
        .to_bytes();
    let settlement: Settlement = serde_json::from_slice(&body).map_err(|e| {
        AdminError::BadRequest(format!(
            "expected {{\"decision\": \"approve\" | \"reject\", \"note\": \"…\"}}: {e}"
        ))
    })?;
    let approve = match settlement.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(AdminError::BadRequest(format!(
                "decision must be \"approve\" or \"reject\", not {other:?}"
            )))
        }
    };
    state
        .gateway
        .settle_approval(&id, authorization.as_deref(), approve, settlement.note)
        .await
        .map(AdminAnswer::Ok)
}

/// Whether the request carries the admin token (always, when none is set).
fn authorized(state: &AdminState, headers: &http::HeaderMap) -> bool {
    let Some(expected) = &state.token_sha256 else {
        return true;
    };
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| {
            // Comparing digests, not tokens: timing reveals nothing an
            // attacker could steer towards the token.
            crate::digest::sha256_hex(token.trim()).eq_ignore_ascii_case(expected)
        })
}

/// Asks a running gateway's `/healthz` (the container health check).
///
/// # Errors
/// No answer within three seconds, or an answer other than 200.
pub async fn probe(url: &http::Uri) -> Result<(), String> {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    match tokio::time::timeout(Duration::from_secs(3), client.get(url.clone())).await {
        Err(_) => Err(format!("{url}: no answer within 3s")),
        Ok(Err(e)) => Err(format!("{url}: {e}")),
        Ok(Ok(response)) if response.status() == StatusCode::OK => Ok(()),
        Ok(Ok(response)) => Err(format!("{url}: status {}", response.status())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn readyz_is_not_ready_without_a_loaded_policy_set() {
        let all = Readiness {
            proxy_listening: true,
            policies_loaded: true,
            trail_writable: true,
        };
        assert!(all.ready());
        let no_policies = Readiness {
            policies_loaded: false,
            ..all
        };
        assert!(!no_policies.ready());
        assert!(!Readiness {
            trail_writable: false,
            ..all
        }
        .ready());
        assert!(!Readiness {
            proxy_listening: false,
            ..all
        }
        .ready());

        // The shipped set is in force once loaded.
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let snapshot = PolicySnapshot::load(&policies).unwrap();
        assert!(policies_in_force(&snapshot));
    }
}
