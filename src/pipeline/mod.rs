//! The per-request pipeline and the tower stack around it.
//!
//! A request flows one way: request id → load shedding → route → classify
//! (vendor profile) → for an erasure call: parse → identify → entities →
//! Cedar → forward only if allowed; anything else is forwarded untouched.
//! Every answer carries `x-request-id`.

pub mod evaluate;
pub mod record;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderValue;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{Service, ServiceBuilder, ServiceExt};

use http_body_util::{LengthLimitError, Limited};

use crate::authz::{Decision, PolicySnapshot, PolicyStore};
use crate::config::{Config, Mode, Passthrough};
use crate::conn::ConnInfo;
use crate::directory::Directory;
use crate::forward::{self, Upstream};
use crate::identity::Identifier;
use crate::metrics::Metrics;
use crate::pipeline::evaluate::{Evaluation, Evaluator, Given};
use crate::pipeline::record::{decision_record, outcome_record, DecisionFacts, OutcomeFacts};
use crate::profile::{self, Classification, ErasureCall, RequestHead, VendorProfile};
use crate::request_id::{self, X_REQUEST_ID};
use crate::response::{full, GatewayError, Refusal, X_ERASURE_DECISION, X_ERASURE_DECISION_ID};
use crate::route::{RouteError, RouteTable};
use crate::trail::pseudonym::PseudonymKey;
use crate::trail::{Trail, TrailError};
use crate::{Body, StartError};

/// Everything a request needs, built once from config.
#[derive(Debug)]
pub struct Gateway {
    routes: RouteTable,
    upstreams: Vec<Route>,
    passthrough: Passthrough,
    mode: Mode,
    max_body_bytes: usize,
    policies: Arc<PolicyStore>,
    evaluator: Evaluator,
    profiles: Vec<VendorProfile>,
    trail: Trail,
    pseudonyms: Option<PseudonymKey>,
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
        trail: Trail,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StartError> {
        let mut upstreams = Vec::with_capacity(config.upstream.len());
        for up in &config.upstream {
            let profile = up.profile.clone();
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
        let id_forms: Vec<_> = upstreams
            .iter()
            .filter_map(|r| r.profile.as_ref())
            .flat_map(VendorProfile::id_forms)
            .collect();
        policies.check_id_forms(&id_forms)?;
        let policies = Arc::new(PolicyStore::new(
            config.policies.dir.clone(),
            id_forms,
            policies,
        ));
        let identifier = Identifier::new(&config.caller, config.jwt.as_ref())?;
        let directory = config
            .policies
            .directory()
            .map(Directory::new)
            .transpose()?;
        Ok(Self {
            routes: RouteTable::new(&config.upstream),
            upstreams,
            passthrough: config.proxy.passthrough,
            mode: config.policies.mode,
            max_body_bytes: config.proxy.max_body_bytes,
            policies,
            evaluator: Evaluator::new(identifier, directory),
            profiles: config
                .profile
                .iter()
                .cloned()
                .chain(profile::builtins().unwrap_or_default())
                .collect(),
            trail,
            pseudonyms: config
                .audit
                .pseudonym_key_file
                .as_deref()
                .map(PseudonymKey::load)
                .transpose()?,
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
        self.policies.snapshot()
    }

    /// The store of the policy set in force, which reloads swap.
    pub fn policy_store(&self) -> &Arc<PolicyStore> {
        &self.policies
    }

    /// The profile named `name`: a `[[profile]]` of the config or a
    /// built-in.
    pub fn profile(&self, name: &str) -> Option<&VendorProfile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The caller table and entity directory erasure calls are evaluated
    /// with.
    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
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
            Err(RouteError::DotSegment { upstream }) => {
                let route = upstream.map(|i| &self.upstreams[i]);
                let name = route.map(|r| r.upstream.name.as_str());
                let Some((route, profile)) = route.and_then(|r| Some((r, r.profile.as_ref()?)))
                else {
                    return (GatewayError::DotSegment.into_response(request_id), name);
                };
                // Under a vendor's prefix, a dot segment may climb onto its
                // erasure path once the vendor normalises it: refused and
                // recorded like any ambiguous erasure-like call.
                let evaluation = Evaluation::refused(
                    profile::credential(profile, request.headers()),
                    Refusal::Ambiguous(GatewayError::DotSegment.to_string()),
                    self.policies.snapshot().version(),
                );
                let response = self
                    .refuse(route, profile, &evaluation, conn, request_id)
                    .await;
                return (response, name);
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
            has_body: !request.body().is_end_stream(),
        };
        let response = match profile::classify(profile, &head) {
            Classification::NotErasure => {
                self.pass_through(route, request, &path, conn, request_id)
                    .await
            }
            Classification::Refused(ambiguity) => {
                // Read as a possible erasure call: refused and recorded.
                let evaluation = Evaluation::refused(
                    profile::credential(profile, request.headers()),
                    Refusal::Ambiguous(ambiguity.reason()),
                    self.policies.snapshot().version(),
                );
                self.refuse(route, profile, &evaluation, conn, request_id)
                    .await
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

    /// The erasure path: buffer (bounded) → evaluate (parse, identify,
    /// entities, Cedar) → record durably → forward only if allowed (or
    /// shadow mode) → record the outcome. Every refusal is answered in the
    /// vendor's error shape, and recorded too.
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
        let snapshot = self.policies.snapshot();
        let (parts, body) = request.into_parts();
        // HTTP/1 chunked and HTTP/2 bodies arrive the same way here: read
        // whole, never past the bound, before anything is decided.
        let read = Limited::new(body, self.max_body_bytes).collect().await;
        let bytes = match read {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                let refusal = if e.downcast_ref::<LengthLimitError>().is_some() {
                    Refusal::TooLarge
                } else {
                    Refusal::Invalid("the request body could not be read".into())
                };
                let evaluation = Evaluation::refused(
                    profile::credential(profile, &parts.headers),
                    refusal,
                    snapshot.version(),
                );
                return self
                    .refuse(route, profile, &evaluation, conn, request_id)
                    .await;
            }
        };
        let head = RequestHead {
            method: &parts.method,
            path,
            query: parts.uri.query(),
            headers: &parts.headers,
            has_body: !bytes.is_empty(),
        };
        let evaluation = self
            .evaluator
            .evaluate(
                profile,
                call,
                &head,
                &bytes,
                conn,
                &snapshot,
                Given::default(),
            )
            .await;
        let Some(decision) = &evaluation.decision else {
            return self
                .refuse(route, profile, &evaluation, conn, request_id)
                .await;
        };
        let shadow = !decision.allowed && self.mode == Mode::Shadow;
        if !decision.allowed && !shadow {
            return self
                .refuse(route, profile, &evaluation, conn, request_id)
                .await;
        }
        let marker = if shadow { "would-deny" } else { "allow" };
        // The vendor receives the call as decided, rebuilt from the parsed
        // request: never the bytes and headers that arrived.
        let rebuilt = evaluation
            .erasure
            .as_ref()
            .ok_or(Refusal::Invalid("the call could not be rebuilt".into()))
            .and_then(|erasure| {
                profile::outbound(profile, erasure, &parts.headers)
                    .map_err(|e| Refusal::Invalid(e.to_string()))
            })
            .and_then(|outbound| {
                route
                    .upstream
                    .erasure_request(outbound, conn, request_id)
                    .map_err(|e| Refusal::Invalid(e.to_string()))
            });
        let (request, forwarded_sha256) = match rebuilt {
            Ok(rebuilt) => rebuilt,
            Err(refusal) => {
                let mut evaluation = evaluation;
                evaluation.refusal = Some(refusal);
                return self
                    .refuse(route, profile, &evaluation, conn, request_id)
                    .await;
            }
        };
        self.metrics.erasure_decided(&profile.name, marker);
        log_decision(profile, request_id, &evaluation, marker);
        let decision_id = new_decision_id();
        // The decision is durable before a byte goes upstream.
        let facts = DecisionFacts {
            forwarded_sha256: Some(&forwarded_sha256),
            ..self.facts(route, profile, &evaluation, conn, request_id, &decision_id)
        };
        if let Err(e) = self
            .record((&decision_record(&facts, self.pseudonyms.as_ref())).into())
            .await
        {
            tracing::error!(request_id = ?request_id, error = %e, "trail write failed; call refused");
            return Refusal::TrailUnavailable.into_response(&profile.error, request_id);
        }
        let started = Instant::now();
        let (mut response, outcome) = self.exchange(route, profile, request, request_id).await;
        let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let record = outcome_record(&OutcomeFacts {
            decision_id: &decision_id,
            request_id: facts.request_id,
            vendor: &profile.name,
            status: outcome.status,
            upstream_status: outcome.upstream_status,
            latency_ms: latency,
            vendor_request_id: outcome.vendor_request_id,
            error: outcome.error,
        });
        if let Err(e) = self.record((&record).into()).await {
            // The call has happened; its decision is on record. Say loudly
            // that its outcome is not.
            tracing::error!(request_id = ?request_id, error = %e, "trail: outcome record lost");
        }
        let headers = response.headers_mut();
        headers.insert(&X_ERASURE_DECISION, HeaderValue::from_static(marker));
        if let Ok(id) = HeaderValue::from_str(&decision_id) {
            headers.insert(&X_ERASURE_DECISION_ID, id);
        }
        response
    }

    /// Sends a rebuilt erasure call once and reads the whole answer
    /// (bounded in size and time), so that the outcome record says what the
    /// client got: the vendor's answer, or a failure in the vendor's shape.
    async fn exchange(
        &self,
        route: &Route,
        profile: &VendorProfile,
        request: Request<Body>,
        request_id: &HeaderValue,
    ) -> (Response<Body>, Outcome) {
        let upstream = &route.upstream;
        let started = Instant::now();
        let failed = |error: GatewayError, upstream_status: Option<u16>| {
            (
                Refusal::Upstream(error).into_response(&profile.error, request_id),
                Outcome {
                    status: error.status().as_u16(),
                    upstream_status,
                    vendor_request_id: None,
                    error: Some(error.code()),
                },
            )
        };
        let response = match upstream.send_erasure(request).await {
            Ok(response) => response,
            Err(error) => return failed(error, None),
        };
        let (parts, body) = response.into_parts();
        let status = parts.status.as_u16();
        let read = tokio::time::timeout(
            upstream.timeout(),
            Limited::new(body, self.max_body_bytes).collect(),
        )
        .await;
        let bytes = match read {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(error)) => {
                tracing::warn!(upstream = %upstream.name, error = %error, "upstream answer to an erasure call broke off");
                return failed(GatewayError::UpstreamFailed, Some(status));
            }
            Err(_) => return failed(GatewayError::UpstreamTimeout, Some(status)),
        };
        self.metrics
            .upstream_latency(&upstream.name, started.elapsed());
        let vendor_request_id = vendor_request_id(profile, &parts.headers, &bytes);
        let response = forward::relay_parts(parts, full(bytes), request_id);
        (
            response,
            Outcome {
                status,
                upstream_status: None,
                vendor_request_id,
                error: None,
            },
        )
    }

    /// The trail's view of an evaluation.
    fn facts<'a>(
        &self,
        route: &'a Route,
        profile: &'a VendorProfile,
        evaluation: &'a Evaluation,
        conn: &'a ConnInfo,
        request_id: &'a HeaderValue,
        decision_id: &'a str,
    ) -> DecisionFacts<'a> {
        DecisionFacts {
            decision_id,
            forwarded_sha256: None,
            request_id: request_id.to_str().unwrap_or_default(),
            vendor: &profile.name,
            upstream: &route.upstream.name,
            action: format!("{}::Action::{:?}", profile.namespace, profile.action),
            principal: evaluation.caller.as_ref(),
            credential: &evaluation.credential,
            conn,
            targets: evaluation.targets(),
            decision: evaluation.decision.as_ref(),
            context: evaluation.context.as_ref(),
            mode: self.mode,
            refusal: None,
            policy_version: &evaluation.policy_version,
        }
    }

    /// Records a refused erasure call and answers it; if the record cannot
    /// be made durable the answer is 503.
    async fn refuse(
        &self,
        route: &Route,
        profile: &VendorProfile,
        evaluation: &Evaluation,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Response<Body> {
        let fallback = Refusal::Invalid("the call was refused".into());
        let refusal = evaluation.refusal.as_ref().unwrap_or(&fallback);
        self.metrics.erasure_decided(&profile.name, "deny");
        log_decision(profile, request_id, evaluation, "deny");
        let decision_id = new_decision_id();
        let facts = DecisionFacts {
            refusal: Some((
                refusal.status().as_u16(),
                refusal.error_type(),
                refusal.message(),
            )),
            ..self.facts(route, profile, evaluation, conn, request_id, &decision_id)
        };
        match self
            .record((&decision_record(&facts, self.pseudonyms.as_ref())).into())
            .await
        {
            Ok(()) => {
                let mut response = refusal.into_response(&profile.error, request_id);
                if let Ok(id) = HeaderValue::from_str(&decision_id) {
                    response.headers_mut().insert(&X_ERASURE_DECISION_ID, id);
                }
                response
            }
            Err(e) => {
                tracing::error!(request_id = ?request_id, error = %e, "trail write failed");
                Refusal::TrailUnavailable.into_response(&profile.error, request_id)
            }
        }
    }

    async fn record(
        &self,
        record: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), TrailError> {
        match self.trail.append(record).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.metrics.trail_write_failed();
                Err(e)
            }
        }
    }
}

/// What the upstream exchange of an allowed erasure call came to.
#[derive(Debug)]
struct Outcome {
    /// The status the client got.
    status: u16,
    /// The vendor's status, when the gateway answered instead (its answer
    /// broke off or came too slowly).
    upstream_status: Option<u16>,
    vendor_request_id: Option<String>,
    error: Option<&'static str>,
}

/// A gateway-made id linking a decision to its outcome and later records
/// (UUIDv7: time-ordered, never the client's).
fn new_decision_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The vendor's own id for the call, from a response header or a JSON
/// pointer into its body.
fn vendor_request_id(
    profile: &VendorProfile,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Option<String> {
    let rule = profile.vendor_request_id.as_ref()?;
    if let Some(value) = rule
        .header
        .as_deref()
        .and_then(|h| headers.get(h))
        .and_then(|v| v.to_str().ok())
    {
        return Some(value.to_owned());
    }
    let pointer = rule.json_pointer.as_deref()?;
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .pointer(pointer)?
        .as_str()
        .map(str::to_owned)
}

fn log_decision(
    profile: &VendorProfile,
    request_id: &HeaderValue,
    evaluation: &Evaluation,
    marker: &str,
) {
    tracing::info!(
        target: "erasure_gateway::decision",
        request_id = ?request_id,
        erasure.vendor = %profile.name,
        erasure.decision = marker,
        erasure.targets = evaluation.targets().len(),
        erasure.policies = ?evaluation.decision.as_ref().map(Decision::policies),
        erasure.refusal = evaluation.refusal.as_ref().map(Refusal::error_type),
        caller.id = evaluation.caller.as_ref().map(|c| c.id.as_str()),
        credential.kind = evaluation.credential.kind.as_str(),
        policy.version = %evaluation.policy_version,
        "erasure call decided"
    );
}

/// The gateway as one tower service: assigns the request id, sheds load
/// beyond `max_concurrency`, then runs the pipeline. Each request must carry
/// its connection's [`ConnInfo`] in its extensions (the server puts it
/// there); one without is refused.
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
        .service_fn(
            move |(request, request_id): (Request<Incoming>, HeaderValue)| {
                let gateway = pipeline_gateway.clone();
                async move {
                    let Some(conn) = request.extensions().get::<Arc<ConnInfo>>().cloned() else {
                        return Ok::<_, Infallible>(
                            GatewayError::BadRequest.into_response(&request_id),
                        );
                    };
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
