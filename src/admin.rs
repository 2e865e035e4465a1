//! The admin listener: `GET /healthz`, `/readyz`, `/metrics`, and
//! `POST /v1/reload`, `/v1/authorize` (behind the admin token when set).
//!
//! Kept apart from the proxy listener so that probes and scrapes never
//! compete with proxied traffic and are never routed to a vendor.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::authz::PolicySnapshot;
use crate::metrics::Metrics;
use crate::offline::described::DescribedRequest;
use crate::pipeline::Gateway;
use crate::request_id;
use crate::response::{full, json_response};
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
}

/// Serves the admin endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let state = state.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Answers one admin request.
pub async fn handle(state: &AdminState, request: Request<Incoming>) -> Response<Body> {
    let request_id = request_id::take_or_make(request.headers());
    if request.method() == Method::POST {
        return post(state, request, &request_id).await;
    }
    let path = request.uri().path();
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": {"code": "method_not_allowed", "message": "use GET"}}),
            &request_id,
        );
    }
    match path {
        "/healthz" => json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ok"}),
            &request_id,
        ),
        "/readyz" => {
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
            let (status, word) = if ready {
                (StatusCode::OK, "ready")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "not ready")
            };
            json_response(
                status,
                &serde_json::json!({
                    "status": word,
                    "checks": {
                        "proxy_listening": checks.proxy_listening,
                        "policies_loaded": checks.policies_loaded,
                        "trail_writable": checks.trail_writable,
                    },
                    "policy_version": policies.version(),
                    "last_reload": reloads.last_success.map(time),
                    "last_reload_failure": reloads.last_failure.map(|(t, e)| {
                        serde_json::json!({"time": time(t), "error": e})
                    }),
                }),
                &request_id,
            )
        }
        "/metrics" => match state.metrics.render() {
            Ok(text) => {
                let mut response = Response::new(full(text));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            Err(_) => json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &serde_json::json!({"error": {"code": "metrics", "message": "metrics could not be rendered"}}),
                &request_id,
            ),
        },
        _ => json_response(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": {"code": "not_found", "message": "no such admin endpoint"}}),
            &request_id,
        ),
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
async fn post(
    state: &AdminState,
    request: Request<Incoming>,
    request_id: &HeaderValue,
) -> Response<Body> {
    let error = |status: StatusCode, code: &str, message: &str| {
        json_response(
            status,
            &serde_json::json!({"error": {"code": code, "message": message}}),
            request_id,
        )
    };
    let path = request.uri().path().to_owned();
    if !matches!(path.as_str(), "/v1/reload" | "/v1/authorize") {
        return error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint");
    }
    // Reload changes what is enforced; authorize reveals decisions and
    // entity data. Both need the token when one is configured.
    if !authorized(state, request.headers()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this call needs the admin token: Authorization: Bearer <token>",
        );
    }
    match path.as_str() {
        "/v1/reload" => {
            match crate::reload::reload(state.gateway.policy_store().clone(), &state.metrics).await
            {
                Ok(reloaded) => json_response(
                    StatusCode::OK,
                    &serde_json::json!({
                        "status": "reloaded",
                        "policy_version": reloaded.version,
                        "previous_version": reloaded.previous,
                    }),
                    request_id,
                ),
                Err(errors) => json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &serde_json::json!({
                        "status": "refused",
                        "policy_version": state.gateway.policies().version(),
                        "errors": errors.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    }),
                    request_id,
                ),
            }
        }
        "/v1/authorize" => {
            let body = match Limited::new(request.into_body(), 1024 * 1024)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                Err(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "the body could not be read (at most 1 MiB)",
                    )
                }
            };
            let described: DescribedRequest = match serde_json::from_slice(&body) {
                Ok(described) => described,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        &format!("not a described request: {e}"),
                    )
                }
            };
            // Decided with the live policies, callers and directory; not
            // forwarded, not recorded.
            let Some(profile) = state.gateway.profile(&described.vendor) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("no vendor profile `{}`", described.vendor),
                );
            };
            let snapshot = state.gateway.policies();
            match described
                .explain(profile, state.gateway.evaluator(), &snapshot)
                .await
            {
                Ok(explanation) => json_response(
                    StatusCode::OK,
                    &serde_json::to_value(&explanation).unwrap_or_default(),
                    request_id,
                ),
                Err(e) => error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint"),
    }
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
