//! The per-request pipeline and the tower stack around it.
//!
//! A request flows one way: request id → load shedding → route → classify
//! (vendor profile) → for an erasure call: parse → identify → entities →
//! Cedar → forward only if allowed; anything else is forwarded untouched.
//! Every answer carries `x-request-id` (tower-http's request-id layers).
//!
//! Here: the tower stack, each layer commented. `gateway.rs`: the tables
//! built from config and the pass-through trip; `erasure.rs`: the erasure
//! path; `evaluate.rs`: parse → identify → entities → Cedar (shared with the
//! offline tools); `record.rs`: the plain records handed to the trail.

mod approval;
mod completion;
mod erasure;
pub mod evaluate;
mod gateway;
mod inject;
pub mod record;

pub use gateway::{Gateway, SetupError};

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::trace::TraceLayer;

use crate::conn::ConnInfo;
use crate::request_id;
use crate::response::GatewayError;
use crate::Body;

/// The gateway as one tower service. Each request must carry its
/// connection's [`ConnInfo`] in its extensions (the server puts it there);
/// one without is refused.
pub fn service(
    gateway: Arc<Gateway>,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send>
       + Clone
       + Send
       + 'static {
    let limit = gateway.limit.clone();
    let pipeline_gateway = gateway.clone();
    let pipeline = ServiceBuilder::new()
        // Answer 503 at once when the bound is reached instead of queueing.
        .load_shed()
        // One bound shared by every connection.
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(limit))
        .service_fn(move |request: Request<Incoming>| {
            let gateway = pipeline_gateway.clone();
            async move {
                let request_id = request_id::of(&request);
                let Some(conn) = request.extensions().get::<Arc<ConnInfo>>().cloned() else {
                    return Ok::<_, Infallible>(
                        GatewayError::BadRequest.into_response(&request_id),
                    );
                };
                // Behind a trusted load balancer, the client it names.
                let conn = conn
                    .behind_proxy(&gateway.trusted_proxies, request.headers())
                    .map_or(conn, Arc::new);
                Ok(gateway.handle(&conn, request, &request_id).await)
            }
        });
    let shed = tower::service_fn(move |request: Request<Incoming>| {
        let pipeline = pipeline.clone();
        let gateway = gateway.clone();
        async move {
            let _in_flight = gateway.metrics.in_flight();
            let request_id = request_id::of(&request);
            match pipeline.oneshot(request).await {
                Ok(response) => Ok(response),
                Err(_overloaded) => {
                    gateway.metrics.request_done(
                        "none",
                        GatewayError::Overloaded.status(),
                        std::time::Duration::ZERO,
                    );
                    Ok(GatewayError::Overloaded.into_response(&request_id))
                }
            }
        }
    });
    ServiceBuilder::new()
        // Every request gets its id first, and every answer carries it.
        .layer_fn(request_id::around)
        // The traced body boxed back into the gateway's one body type.
        .map_response(|response: Response<_>| response.map(BodyExt::boxed))
        // A span per request (debug level), named by its id only: paths and
        // queries can hold the ids of the people being erased.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<Incoming>| {
                    crate::telemetry::request_span(
                        request_id::text(&request_id::of(request)),
                        request.method(),
                        request.headers(),
                    )
                })
                // Failures are logged where they are understood (upstream,
                // trail), with their cause.
                .on_failure(()),
        )
        .service(shed)
}
