//! The gateway: every table a request needs, built once from config, and
//! the trip of a request that is not an erasure call (route, classify,
//! forward streamed). Erasure calls go on to `erasure.rs`.

use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderValue;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use tokio::sync::Semaphore;

use crate::authz::{PolicySnapshot, PolicyStore};
use crate::budget::Budgets;
use crate::config::{Config, Mode, Passthrough, TrackCompletion};
use crate::conn::ConnInfo;
use crate::directory::Directory;
use crate::forward::{self, Upstream, UpstreamBody};
use crate::identity::CallerSource;
use crate::identity::Identifier;
use crate::metrics::Metrics;
use crate::pipeline::completion::Links;
use crate::pipeline::evaluate::{Evaluation, Evaluator};
use crate::pipeline::inject;
use crate::profile::{self, Ambiguity, Classification, CredentialKind, RequestHead, VendorProfile};
use crate::response::{GatewayError, Refusal};
use crate::route::{RouteError, RouteTable};
use crate::trail::pseudonym::PseudonymKey;
use crate::trail::Trail;
use crate::Body;

/// Everything a request needs, built once from config.
#[derive(Debug)]
pub struct Gateway {
    pub(super) routes: RouteTable,
    pub(super) upstreams: Vec<Route>,
    pub(super) passthrough: Passthrough,
    pub(super) mode: Mode,
    pub(super) max_body_bytes: usize,
    pub(super) policies: Arc<PolicyStore>,
    pub(super) evaluator: Evaluator,
    pub(super) budgets: Arc<Budgets>,
    pub(super) profiles: Vec<VendorProfile>,
    pub(super) trail: Trail,
    pub(super) pseudonyms: Option<PseudonymKey>,
    pub(super) limit: Arc<Semaphore>,
    pub(super) trusted_proxies: Vec<ipnet::IpNet>,
    pub(super) access_log: bool,
    pub(super) links: Links,
    pub(super) metrics: Arc<Metrics>,
}

/// Why a [`Gateway`] cannot be built from a config.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// An upstream could not be set up.
    #[error(transparent)]
    Upstream(#[from] forward::UpstreamSetupError),
    /// The policy set spells a normalised-form id another way.
    #[error(transparent)]
    Policies(#[from] crate::authz::PolicyErrors),
    /// A `[jwt]` key file cannot be read or used.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The entity directory cannot be set up.
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    /// The pseudonym key cannot be used.
    #[error(transparent)]
    Pseudonym(#[from] crate::trail::pseudonym::PseudonymError),
    /// The budget store cannot be set up.
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetError),
}

/// An upstream with the vendor profile that recognises its erasure calls.
#[derive(Debug)]
pub(super) struct Route {
    pub(super) upstream: Arc<Upstream>,
    pub(super) profile: Option<VendorProfile>,
    /// Polling of the vendor's status API after accepted erasures.
    pub(super) tracking: Option<TrackCompletion>,
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
    ) -> Result<Self, SetupError> {
        let mut upstreams = Vec::with_capacity(config.upstream.len());
        for up in &config.upstream {
            let profile = up.profile.clone();
            if profile.is_none() {
                tracing::info!(
                    upstream = %up.name,
                    "profile = \"none\": no call to this upstream is treated as an erasure call"
                );
            }
            upstreams.push(Route {
                upstream: Arc::new(Upstream::new(up, &config.proxy)?),
                profile,
                tracking: up.track_completion,
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
            .transpose()?
            .map(|d| d.counted_in(metrics.directory_lookups()));
        let budgets = Arc::new(Budgets::new(config.budgets.clone())?);
        Ok(Self {
            routes: RouteTable::new(&config.upstream),
            upstreams,
            passthrough: config.proxy.passthrough,
            mode: config.policies.mode,
            max_body_bytes: config.proxy.max_body_bytes,
            policies,
            evaluator: Evaluator::new(identifier, directory, Some(budgets.clone())),
            budgets,
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
            trusted_proxies: config.proxy.trusted_proxies.clone(),
            access_log: config.proxy.access_log,
            links: Links::new(),
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
        let started = Instant::now();
        let (response, upstream) = self.dispatch(conn, request, request_id).await;
        self.metrics.request_done(
            upstream.unwrap_or("none"),
            response.status(),
            started.elapsed(),
        );
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
                let response =
                    Box::pin(self.refuse(route, profile, &evaluation, conn, request_id)).await;
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
        let classified = crate::telemetry::stage("classify").in_scope(|| {
            let classified = profile::classify(profile, &head);
            let base = route.upstream.base_path();
            if base.is_empty() || !matches!(classified, Classification::NotErasure) {
                return classified;
            }
            // The vendor reads the base path and this one as one path: if
            // that is an erasure call (or a spelling of one), refuse it.
            let whole = format!("{base}{path}");
            match profile::classify(
                profile,
                &RequestHead {
                    path: &whole,
                    ..head
                },
            ) {
                Classification::NotErasure => classified,
                _ => Classification::Refused(Ambiguity::BasePath(base.to_owned())),
            }
        });
        let response = match classified {
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
                Box::pin(self.refuse(route, profile, &evaluation, conn, request_id)).await
            }
            // The erasure path's state (body, evaluation, records) is large;
            // boxed, it costs only erasure calls, not every pass-through
            // call's future (moved and kept per connection).
            Classification::Erasure(call) => {
                Box::pin(self.erasure(route, profile, &call, request, &path, conn, request_id))
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
        if !self.access_log {
            return self
                .forward_passed(route, request, path, conn, request_id)
                .await;
        }
        let started = Instant::now();
        let method = request.method().clone();
        let response = self
            .forward_passed(route, request, path, conn, request_id)
            .await;
        tracing::info!(
            target: "erasure_gateway::access",
            request_id = %crate::request_id::text(request_id),
            method = %method,
            path = %path,
            upstream = %route.upstream.name,
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            client_ip = %conn.client_addr.ip(),
            "pass-through"
        );
        response
    }

    /// Forwards a pass-through call: with the vendor's credential for a
    /// known caller, and a status call read and recorded.
    async fn forward_passed(
        &self,
        route: &Route,
        request: Request<Incoming>,
        path: &str,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Response<Body> {
        let mut request = request;
        if let (Some(vendor), Some(profile)) = (route.upstream.credential(), &route.profile) {
            // A known caller's call goes with the vendor's credential; any
            // other goes with none: the vendor's key never serves strangers.
            let presented = profile::credential(profile, request.headers());
            let known = self
                .evaluator
                .identify(
                    presented.token(),
                    presented.kind == CredentialKind::Jwt,
                    conn.client_cert.as_ref(),
                )
                .await
                .is_ok_and(|caller| caller.source != CallerSource::Anonymous);
            inject::strip_credential(profile, vendor, request.headers_mut());
            if known {
                if let Err(e) = inject::vendor_credential(profile, vendor, request.headers_mut()) {
                    tracing::error!(upstream = %route.upstream.name, error = %e, "vendor credential");
                    return GatewayError::BadRequest.into_response(request_id);
                }
            }
        }
        let request = request.map(|body| body.map_err(Into::into).boxed());
        let status_call = route
            .profile
            .as_ref()
            .and_then(|p| Some((p, p.status_call(request.method(), path)?)));
        let sent = match status_call {
            Some((profile, vendor_request_id)) => {
                Box::pin(self.status_call(
                    route,
                    profile,
                    request,
                    path,
                    conn,
                    request_id,
                    &vendor_request_id,
                ))
                .await
            }
            None => {
                self.send(&route.upstream, request, path, conn, request_id)
                    .await
            }
        };
        match sent {
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
        self.send_passed(upstream, request, path, conn, request_id)
            .await
            .map(forward::relay_response)
    }

    /// Sends a pass-through call rewritten for `upstream` and waits for the
    /// response head, counting failures and the latency.
    pub(super) async fn send_passed(
        &self,
        upstream: &Upstream,
        request: Request<Body>,
        path: &str,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Result<Response<UpstreamBody>, GatewayError> {
        let outbound = upstream.rewrite(request, path, conn, request_id)?;
        let started = Instant::now();
        let response = upstream
            .send(outbound)
            .await
            .inspect_err(|e| self.metrics.upstream_error(&upstream.name, e.code()))?;
        self.metrics
            .upstream_latency(&upstream.name, started.elapsed());
        Ok(response)
    }
}
