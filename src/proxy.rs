//! The per-request pipeline and the tower stack around it.
//!
//! A request flows one way: request id → load shedding → route → classify
//! (vendor profile) → for an erasure call: parse → identify → entities →
//! Cedar → forward only if allowed; anything else is forwarded untouched.
//! Every answer carries `x-request-id`.

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

use arc_swap::ArcSwap;
use http_body_util::{LengthLimitError, Limited};

use crate::authz::{DecisionInput, PolicySnapshot, Principal};
use crate::config::{Config, Mode, Passthrough};
use crate::directory::{Directory, DirectoryError};
use crate::forward::{self, Upstream};
use crate::identity::Identifier;
use crate::metrics::Metrics;
use crate::request_id::{self, X_REQUEST_ID};
use crate::response::{full, GatewayError, Refusal, X_ERASURE_DECISION};
use crate::route::{RouteError, RouteTable};
use crate::server::ConnInfo;
use crate::vendor::{
    self, Classification, Credential, CredentialKind, ErasureCall, ErasureRequest, RequestHead,
    Target, VendorProfile,
};
use crate::{Body, StartError};

/// Everything a request needs, built once from config.
#[derive(Debug)]
pub struct Gateway {
    routes: RouteTable,
    upstreams: Vec<Route>,
    passthrough: Passthrough,
    mode: Mode,
    max_body_bytes: usize,
    policies: ArcSwap<PolicySnapshot>,
    identifier: Identifier,
    directory: Option<Directory>,
    limit: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

/// An upstream with the vendor profile that recognises its erasure calls.
#[derive(Debug)]
struct Route {
    upstream: Upstream,
    profile: Option<VendorProfile>,
}

impl Gateway {
    /// Builds the gateway: routing table, upstream clients, vendor profiles,
    /// caller table, entity directory, and the loaded policy snapshot.
    ///
    /// # Errors
    /// An upstream, the caller table, a JWT key or the directory cannot be
    /// set up.
    pub fn new(
        config: &Config,
        policies: PolicySnapshot,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StartError> {
        let mut upstreams = Vec::with_capacity(config.upstream.len());
        for up in &config.upstream {
            let profile = config
                .profile_for(up)
                .map_err(|message| StartError::Profile {
                    upstream: up.name.clone(),
                    message,
                })?;
            if profile.is_none() {
                tracing::warn!(
                    upstream = %up.name,
                    "upstream has no vendor profile: no call to it is treated as an erasure call"
                );
            }
            upstreams.push(Route {
                upstream: Upstream::new(up, &config.proxy)?,
                profile,
            });
        }
        let identifier = Identifier::new(&config.caller, config.jwt.as_ref())?;
        let directory = config
            .policies
            .directory()
            .map(|d| Directory::new(&d))
            .transpose()?;
        Ok(Self {
            routes: RouteTable::new(&config.upstream),
            upstreams,
            passthrough: config.proxy.passthrough,
            mode: config.policies.mode,
            max_body_bytes: config.proxy.max_body_bytes,
            policies: ArcSwap::from_pointee(policies),
            identifier,
            directory,
            limit: Arc::new(Semaphore::new(config.proxy.max_concurrency)),
            metrics,
        })
    }

    /// The metrics this gateway records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The policy snapshot new requests are decided with.
    pub fn policies(&self) -> Arc<PolicySnapshot> {
        self.policies.load_full()
    }

    /// Handles one request that has its id; never fails: errors become
    /// responses.
    pub async fn handle(
        &self,
        conn: &ConnInfo,
        request: Request<Incoming>,
        request_id: &HeaderValue,
    ) -> Response<Body> {
        let (response, upstream) = self.dispatch(conn, request, request_id).await;
        self.metrics
            .request_done(upstream.unwrap_or("none"), response.status());
        response
    }

    async fn dispatch(
        &self,
        conn: &ConnInfo,
        request: Request<Incoming>,
        request_id: &HeaderValue,
    ) -> (Response<Body>, Option<&str>) {
        let host = forward::request_host(request.uri(), request.headers());
        let routed = match self.routes.resolve(host, request.uri().path()) {
            Ok(routed) => routed,
            Err(RouteError::NotFound) => {
                return (GatewayError::NotRouted.into_response(request_id), None)
            }
            Err(RouteError::DotSegment) => {
                return (GatewayError::DotSegment.into_response(request_id), None)
            }
        };
        let route = &self.upstreams[routed.upstream];
        let name = Some(route.upstream.name.as_str());
        let path = routed.path.to_owned();
        let Some(profile) = &route.profile else {
            return (
                self.pass_through(route, request, &path, conn, request_id)
                    .await,
                name,
            );
        };
        let head = RequestHead {
            method: request.method(),
            path: &path,
            query: request.uri().query(),
            headers: request.headers(),
        };
        let response = match vendor::classify(profile, &head) {
            Classification::NotErasure => {
                self.pass_through(route, request, &path, conn, request_id)
                    .await
            }
            Classification::Refused(ambiguity) => {
                let refusal = Refusal::Ambiguous(ambiguity.reason());
                log_refusal(profile, request_id, &refusal);
                refusal.into_response(&profile.error, request_id)
            }
            Classification::Erasure(call) => {
                self.erasure(route, profile, &call, request, &path, conn, request_id)
                    .await
            }
        };
        (response, name)
    }

    /// Forwards a call that is not an erasure call, body streamed.
    async fn pass_through(
        &self,
        route: &Route,
        request: Request<Incoming>,
        path: &str,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Response<Body> {
        if self.passthrough == Passthrough::Deny {
            return GatewayError::PassthroughDenied.into_response(request_id);
        }
        let request = request.map(|body| body.map_err(Into::into).boxed());
        match self
            .send(&route.upstream, request, path, conn, request_id)
            .await
        {
            Ok(response) => response,
            Err(error) => error.into_response(request_id),
        }
    }

    async fn send(
        &self,
        upstream: &Upstream,
        request: Request<Body>,
        path: &str,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Result<Response<Body>, GatewayError> {
        let outbound = upstream.rewrite(request, path, conn, request_id)?;
        let started = Instant::now();
        let response = upstream.send(outbound).await?;
        self.metrics
            .upstream_latency(&upstream.name, started.elapsed());
        Ok(forward::relay_response(response, request_id))
    }

    /// The erasure path: buffer (bounded) → parse strictly → identify →
    /// fetch entities → decide → forward only if allowed (or shadow mode).
    /// Every failure refuses the call in the vendor's error shape.
    #[allow(clippy::too_many_arguments)]
    async fn erasure(
        &self,
        route: &Route,
        profile: &VendorProfile,
        call: &ErasureCall,
        request: Request<Incoming>,
        path: &str,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Response<Body> {
        let refuse = |refusal: Refusal| {
            log_refusal(profile, request_id, &refusal);
            refusal.into_response(&profile.error, request_id)
        };
        let (parts, body) = request.into_parts();
        // HTTP/1 chunked and HTTP/2 bodies arrive the same way here: read
        // whole, never past the bound, before anything is decided.
        let bytes = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return refuse(Refusal::TooLarge)
            }
            Err(_) => {
                return refuse(Refusal::Invalid(
                    "the request body could not be read".into(),
                ))
            }
        };
        let head = RequestHead {
            method: &parts.method,
            path,
            query: parts.uri.query(),
            headers: &parts.headers,
        };
        let erasure = match vendor::parse(profile, call, &head, &bytes) {
            Ok(erasure) => erasure,
            Err(e) => return refuse(Refusal::Invalid(e.to_string())),
        };
        let credential = vendor::credential(profile, &parts.headers);
        let caller = match self
            .identifier
            .identify(credential.token(), credential.kind == CredentialKind::Jwt)
        {
            Ok(caller) => caller,
            Err(e) => return refuse(Refusal::Unauthenticated(e.to_string())),
        };
        let snapshot = self.policies.load_full();
        let extra_entities = match self.fetch_entities(&snapshot, &erasure).await {
            Ok(entities) => entities,
            Err(e) => {
                tracing::warn!(request_id = ?request_id, error = %e, "entity directory failed");
                return refuse(Refusal::EntitiesUnavailable);
            }
        };
        let context = cedar_context(profile, &erasure, &credential, conn);
        let decision = snapshot.decide(&DecisionInput {
            principal: Principal {
                id: &caller.id,
                roles: &caller.roles,
            },
            namespace: &erasure.namespace,
            action: &erasure.action,
            targets: &erasure.targets,
            context,
            extra_entities,
        });
        let shadow = !decision.allowed && self.mode == Mode::Shadow;
        let marker = match (decision.allowed, shadow) {
            (true, _) => "allow",
            (false, true) => "would-deny",
            (false, false) => "deny",
        };
        tracing::info!(
            target: "erasure_gateway::decision",
            request_id = ?request_id,
            erasure.vendor = %profile.name,
            erasure.action = %erasure.action,
            erasure.decision = marker,
            erasure.targets = erasure.targets.len(),
            erasure.policies = ?decision.policies(),
            erasure.reasons = ?decision.reasons,
            caller.id = %caller.id,
            credential.kind = credential.kind.as_str(),
            credential.fingerprint = %credential.fingerprint,
            policy.version = %decision.policy_version,
            "erasure call decided"
        );
        if !decision.allowed && !shadow {
            let refusal = Refusal::Denied {
                policies: decision.policies().into_iter().map(str::to_owned).collect(),
                reasons: decision.reasons,
            };
            return refusal.into_response(&profile.error, request_id);
        }
        let request = Request::from_parts(parts, full(bytes));
        let mut response = match self
            .send(&route.upstream, request, path, conn, request_id)
            .await
        {
            Ok(response) => response,
            Err(error) => Refusal::Upstream(error).into_response(&profile.error, request_id),
        };
        response
            .headers_mut()
            .insert(&X_ERASURE_DECISION, HeaderValue::from_static(marker));
        response
    }

    /// Entity data for targets the policy files do not describe, from the
    /// directory (cached); none without a directory.
    async fn fetch_entities(
        &self,
        snapshot: &PolicySnapshot,
        erasure: &ErasureRequest,
    ) -> Result<Vec<serde_json::Value>, DirectoryError> {
        let Some(directory) = &self.directory else {
            return Ok(Vec::new());
        };
        let mut wanted: Vec<&Target> = erasure
            .targets
            .iter()
            .filter(|t| !snapshot.has_entity(&t.entity_type, &t.id))
            .collect();
        wanted.sort_by(|a, b| (&a.entity_type, &a.id).cmp(&(&b.entity_type, &b.id)));
        wanted.dedup();
        let lookups = wanted
            .iter()
            .map(|t| directory.entity(&t.entity_type, &t.id));
        let found = futures_util::future::try_join_all(lookups).await?;
        Ok(found
            .into_iter()
            .flatten()
            .map(|entity| entity.as_ref().clone())
            .collect())
    }
}

/// The Cedar context of an erasure call: the vendor's own fields (workspace,
/// bots, …) and what the gateway knows about the connection and credential.
fn cedar_context(
    profile: &VendorProfile,
    erasure: &ErasureRequest,
    credential: &Credential,
    conn: &ConnInfo,
) -> serde_json::Value {
    let mut context = erasure.context.clone();
    context.insert("vendor".into(), profile.name.clone().into());
    context.insert("target_count".into(), erasure.targets.len().into());
    context.insert("client_ip".into(), conn.client_addr.ip().to_string().into());
    context.insert("client_cert".into(), conn.client_cert.is_some().into());
    if let Some(cert) = &conn.client_cert {
        context.insert("client_cert_subject".into(), cert.subject.clone().into());
    }
    context.insert(
        "credential".into(),
        serde_json::json!({
            "kind": credential.kind.as_str(),
            "fingerprint": credential.fingerprint,
        }),
    );
    serde_json::Value::Object(context)
}

fn log_refusal(profile: &VendorProfile, request_id: &HeaderValue, refusal: &Refusal) {
    tracing::info!(
        target: "erasure_gateway::decision",
        request_id = ?request_id,
        erasure.vendor = %profile.name,
        erasure.decision = "deny",
        erasure.refusal = refusal.error_type(),
        erasure.reason = %refusal.message(),
        "erasure call refused"
    );
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
