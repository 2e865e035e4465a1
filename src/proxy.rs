//! The per-request pipeline: route, then forward (erasure calls will be
//! classified and decided between the two), and the tower stack around it.
//!
//! A request flows one way: request id → load shedding → route → forward →
//! response. Every answer, forwarded or not, carries `x-request-id`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderValue;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{Service, ServiceBuilder, ServiceExt};

use crate::config::{Config, Passthrough};
use crate::forward::{self, Upstream, UpstreamSetupError};
use crate::metrics::Metrics;
use crate::request_id::{self, X_REQUEST_ID};
use crate::response::GatewayError;
use crate::route::{RouteError, RouteTable};
use crate::server::ConnInfo;
use crate::Body;

/// Everything a request needs, built once from config.
#[derive(Debug)]
pub struct Gateway {
    routes: RouteTable,
    upstreams: Vec<Upstream>,
    passthrough: Passthrough,
    limit: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Gateway {
    /// Builds the gateway's routing table and upstream clients.
    ///
    /// # Errors
    /// An upstream's URL or CA file cannot be used.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Result<Self, UpstreamSetupError> {
        let upstreams = config
            .upstream
            .iter()
            .map(|u| Upstream::new(u, &config.proxy))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            routes: RouteTable::new(&config.upstream),
            upstreams,
            passthrough: config.proxy.passthrough,
            limit: Arc::new(Semaphore::new(config.proxy.max_concurrency)),
            metrics,
        })
    }

    /// The metrics this gateway records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Handles one request that has its id; never fails: errors become
    /// responses.
    pub async fn handle(
        &self,
        conn: &ConnInfo,
        request: Request<Incoming>,
        request_id: &HeaderValue,
    ) -> Response<Body> {
        let (response, upstream) = match self.forward(conn, request, request_id).await {
            Ok((response, upstream)) => (response, upstream),
            Err((error, upstream)) => (error.into_response(request_id), upstream),
        };
        self.metrics
            .request_done(upstream.unwrap_or("none"), response.status());
        response
    }

    async fn forward(
        &self,
        conn: &ConnInfo,
        request: Request<Incoming>,
        request_id: &HeaderValue,
    ) -> Result<(Response<Body>, Option<&str>), (GatewayError, Option<&str>)> {
        let host = forward::request_host(request.uri(), request.headers());
        let routed = self
            .routes
            .resolve(host, request.uri().path())
            .map_err(|e| match e {
                RouteError::NotFound => (GatewayError::NotRouted, None),
                RouteError::DotSegment => (GatewayError::DotSegment, None),
            })?;
        let upstream = &self.upstreams[routed.upstream];
        let name = Some(upstream.name.as_str());
        if self.passthrough == Passthrough::Deny {
            return Err((GatewayError::PassthroughDenied, name));
        }
        let path = routed.path.to_owned();
        let request = request.map(|body| body.map_err(Into::into).boxed());
        let outbound = upstream
            .rewrite(request, &path, conn, request_id)
            .map_err(|e| (e, name))?;
        let started = Instant::now();
        let response = upstream.send(outbound).await.map_err(|e| (e, name))?;
        self.metrics
            .upstream_latency(&upstream.name, started.elapsed());
        Ok((forward::relay_response(response, request_id), name))
    }
}

/// The service hyper runs for one connection: assigns the request id, sheds
/// load beyond `max_concurrency`, then runs the pipeline.
pub fn connection_service(
    gateway: Arc<Gateway>,
    conn: Arc<ConnInfo>,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send>
       + Clone
       + Send {
    let limit = gateway.limit.clone();
    let pipeline_gateway = gateway.clone();
    let pipeline = ServiceBuilder::new()
        // Answer 503 at once when the bound is reached instead of queueing.
        .load_shed()
        // One bound shared by every connection.
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(limit))
        .service_fn(
            move |(request, request_id): (Request<Incoming>, HeaderValue)| {
                let gateway = pipeline_gateway.clone();
                let conn = conn.clone();
                async move {
                    let response = gateway.handle(&conn, request, &request_id).await;
                    Ok::<_, Infallible>(response)
                }
            },
        );
    tower::service_fn(move |request: Request<Incoming>| {
        let pipeline = pipeline.clone();
        let gateway = gateway.clone();
        async move {
            let _in_flight = gateway.metrics.in_flight();
            let request_id = request_id::take_or_make(request.headers());
            let mut response = match pipeline.oneshot((request, request_id.clone())).await {
                Ok(response) => response,
                Err(_overloaded) => {
                    gateway
                        .metrics
                        .request_done("none", GatewayError::Overloaded.status());
                    GatewayError::Overloaded.into_response(&request_id)
                }
            };
            response.headers_mut().insert(&X_REQUEST_ID, request_id);
            Ok(response)
        }
    })
}
