//! The erasure path: buffer (bounded) → evaluate → record durably →
//! forward the call rebuilt from the decision, once → record the outcome.
//! Every refusal is answered in the vendor's shape, and recorded too.

use std::time::Instant;

use http::header::HeaderValue;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tracing::Instrument as _;

use http_body_util::{LengthLimitError, Limited};

use super::approval::Gate;
use super::gateway::{Gateway, Route};
use super::inject;
use crate::budget::{Account, Charge, Limit};
use crate::config::Mode;
use crate::conn::ConnInfo;
use crate::digest::sha256_hex;
use crate::forward::{self};
use crate::pipeline::evaluate::{Evaluation, Given};
use crate::pipeline::record::{decision_record, outcome_record, DecisionFacts, OutcomeFacts};
use crate::profile::{self, ErasureCall, RequestHead, VendorProfile};
use crate::response::{self, full, GatewayError, Refusal};
use crate::trail::record::BudgetRecord;
use crate::trail::{TrailError, Unsealed};
use crate::Body;

impl Gateway {
    /// The erasure path: buffer (bounded) → evaluate (parse, identify,
    /// entities, Cedar) → record durably → forward only if allowed (or
    /// shadow mode) → record the outcome. Every refusal is answered in the
    /// vendor's error shape, and recorded too.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn erasure(
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
        if let Some(took) = evaluation.decide_took {
            self.metrics.cedar_decided(took);
        }
        let Some(decision) = &evaluation.decision else {
            return self
                .refuse(route, profile, &evaluation, conn, request_id)
                .await;
        };
        let shadow = !decision.allowed && self.mode == Mode::Shadow;
        // Denied by `@approval` forbids alone: held for a second caller, or
        // decided without them once one approved this very call.
        let held: Option<Vec<String>> = if decision.allowed || shadow {
            None
        } else {
            decision
                .held_by(snapshot.approval_policies())
                .map(|ids| ids.into_iter().map(str::to_owned).collect())
        };
        if !decision.allowed && !shadow && held.is_none() {
            return self
                .refuse(route, profile, &evaluation, conn, request_id)
                .await;
        }
        let mut approved = None;
        let evaluation = match held {
            None => evaluation,
            Some(held) => {
                let gate = Gate {
                    route,
                    profile,
                    call,
                    head: &head,
                    body: &bytes,
                    conn,
                    snapshot: &snapshot,
                    request_id,
                };
                match self.approval_gate(&gate, evaluation, held).await {
                    Ok((evaluation, approval)) => {
                        approved = Some(approval);
                        evaluation
                    }
                    Err(answer) => return answer,
                }
            }
        };
        let marker = if shadow { "would-deny" } else { "allow" };
        // The vendor receives the call as decided, rebuilt from the parsed
        // request: never the bytes and headers that arrived.
        let rebuilt = evaluation
            .erasure
            .as_ref()
            .ok_or(Refusal::Invalid("the call could not be rebuilt".into()))
            .and_then(|erasure| {
                let mut outbound = profile::outbound(profile, erasure, &parts.headers)
                    .map_err(|e| Refusal::Invalid(e.to_string()))?;
                // Callers never hold the vendor's key: it replaces theirs.
                if let Some(credential) = route.upstream.credential() {
                    inject::vendor_credential(profile, credential, &mut outbound.headers)
                        .map_err(|e| {
                            tracing::error!(upstream = %route.upstream.name, error = %e, "vendor credential");
                            Refusal::Upstream(GatewayError::BadRequest)
                        })?;
                }
                Ok(outbound)
            })
            .and_then(|outbound| {
                route
                    .upstream
                    .erasure_request(outbound, conn, request_id)
                    .map_err(|e| Refusal::Invalid(e.to_string()))
            });
        let mut evaluation = evaluation;
        let (request, forwarded_sha256) = match rebuilt {
            Ok(rebuilt) => rebuilt,
            Err(refusal) => {
                evaluation.refusal = Some(refusal);
                return self
                    .refuse(route, profile, &evaluation, conn, request_id)
                    .await;
            }
        };
        let decision_id = new_decision_id();
        // Budgets hold in shadow mode too: they bound what is sent, whatever
        // policy would say.
        if let Err(refusal) = self.charge(profile, &mut evaluation, &decision_id).await {
            evaluation.refusal = Some(refusal);
            return self
                .refuse(route, profile, &evaluation, conn, request_id)
                .await;
        }
        self.metrics.erasure_decided(&profile.name, marker);
        log_decision(profile, request_id, &evaluation, marker);
        // The decision is durable before a byte goes upstream.
        let facts = DecisionFacts {
            forwarded_sha256: Some(&forwarded_sha256),
            approval_id: approved.as_ref().map(|a| a.id.as_str()),
            call_sha256: approved.as_ref().map(|a| a.call_sha256.as_str()),
            body_sha256: approved.as_ref().map(|a| a.body_sha256.as_str()),
            ..self.facts(route, profile, &evaluation, conn, request_id, &decision_id)
        };
        if let Err(e) = self
            .record((&decision_record(&facts, self.pseudonyms.as_ref())).into())
            .instrument(crate::telemetry::stage("trail_commit"))
            .await
        {
            tracing::error!(request_id = %crate::request_id::text(request_id), error = %e, "trail write failed; call refused");
            return Refusal::TrailUnavailable.into_response(&profile.error, request_id);
        }
        let started = Instant::now();
        let (mut response, outcome) = self
            .exchange(route, profile, request, request_id)
            .instrument(crate::telemetry::stage("upstream"))
            .await;
        let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // A vendor that erases later (it has a status API) answered with
        // its request id: completion records will say how it went.
        let awaits = profile.completion.is_some()
            && (200..300).contains(&outcome.status)
            && outcome.vendor_request_id.is_some();
        let record = outcome_record(&OutcomeFacts {
            awaits_completion: awaits,
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
            tracing::error!(request_id = %crate::request_id::text(request_id), error = %e, "trail: outcome record lost");
        }
        if let (true, Some(vendor_request_id)) = (awaits, &record.vendor_request_id) {
            self.await_completion(route, vendor_request_id, &decision_id);
        }
        response::mark_decided(response.headers_mut(), marker, Some(&decision_id));
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
        let failed = |error: GatewayError, upstream_status: Option<u16>| {
            self.metrics.upstream_error(&upstream.name, error.code());
            failed(error, upstream_status)
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
        let response = forward::relay_parts(parts, full(bytes));
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

    /// Charges an allowed call to its caller's budget (and finds repeats),
    /// keeping what came of it in the evaluation for the record.
    ///
    /// # Errors
    /// The refusal to answer: a budget exceeded, a refused repeat, or the
    /// budget store unreachable.
    async fn charge(
        &self,
        profile: &VendorProfile,
        evaluation: &mut Evaluation,
        decision_id: &str,
    ) -> Result<(), Refusal> {
        let Some(caller) = &evaluation.caller else {
            return Err(Refusal::Invalid("the call has no caller".into()));
        };
        let account = Account {
            caller: &caller.id,
            vendor: &profile.name,
        };
        let targets: Vec<String> = evaluation
            .targets()
            .iter()
            .map(|t| sha256_hex(format!("{}\0{}", t.entity_type, t.id)))
            .collect();
        let charge = match self.budgets.charge(account, &targets, decision_id).await {
            Ok(charge) => charge,
            Err(e) => {
                tracing::warn!(error = %e, "erasure budgets unavailable; call refused");
                return Err(Refusal::BudgetUnavailable);
            }
        };
        let refusal = match &charge {
            Charge::Charged { .. } => None,
            Charge::Repeated { repeats, .. } => {
                let mut earlier: Vec<String> = repeats.iter().flatten().cloned().collect();
                earlier.sort();
                earlier.dedup();
                Some(Refusal::Repeated { earlier })
            }
            Charge::Exceeded {
                before,
                limit,
                allowed,
                retry_after,
            } => {
                let limits = self.budgets.limits(&caller.id);
                let (used, window, what) = match limit {
                    Limit::Targets => (before.targets, limits.targets_window, "targets"),
                    Limit::Calls => (before.calls, limits.calls_window, "erasure calls"),
                };
                let this = match limit {
                    Limit::Targets => format!("this call names {}", targets.len()),
                    Limit::Calls => "this would be one more".to_owned(),
                };
                Some(Refusal::BudgetExceeded {
                    reason: format!(
                        "caller `{}` may send {allowed} {what} per {} to {}; {used} so far, {this}",
                        caller.id,
                        humantime::format_duration(window),
                        profile.name
                    ),
                    retry_after_secs: retry_after.as_secs_f64().ceil().max(1.0) as u64,
                })
            }
        };
        evaluation.charge = Some(charge);
        refusal.map_or(Ok(()), Err)
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
            budget: self.budget_record(evaluation),
            repeats: match &evaluation.charge {
                Some(Charge::Charged { repeats, .. } | Charge::Repeated { repeats, .. }) => repeats,
                _ => &[],
            },
            approval_id: None,
            call_sha256: None,
            body_sha256: None,
            held: false,
        }
    }

    /// The caller's budget as the decision saw it, once its counts were read.
    fn budget_record(&self, evaluation: &Evaluation) -> Option<BudgetRecord> {
        // The store's own reading, when the call was charged: other calls
        // may have counted since the decision read it.
        let counts = match &evaluation.charge {
            Some(
                Charge::Charged { before, .. }
                | Charge::Repeated { before, .. }
                | Charge::Exceeded { before, .. },
            ) => *before,
            None => evaluation.counts?,
        };
        let limits = self.budgets.limits(&evaluation.caller.as_ref()?.id);
        Some(BudgetRecord {
            erasures_in_window: counts.targets,
            calls_in_window: counts.calls,
            targets_limit: limits.targets,
            targets_window_secs: limits.targets_window.as_secs(),
            calls_limit: limits.calls,
            calls_window_secs: limits.calls_window.as_secs(),
            exceeded: match &evaluation.charge {
                Some(Charge::Exceeded { limit, .. }) => Some(limit.as_str().to_owned()),
                _ => None,
            },
        })
    }

    /// Records a refused erasure call and answers it; if the record cannot
    /// be made durable the answer is 503.
    pub(super) async fn refuse(
        &self,
        route: &Route,
        profile: &VendorProfile,
        evaluation: &Evaluation,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Response<Body> {
        let decision_id = new_decision_id();
        self.refuse_recorded(
            route,
            profile,
            evaluation,
            (conn, request_id),
            &decision_id,
            None,
        )
        .await
    }

    /// [`refuse`](Self::refuse) as decision `decision_id`; `held` is the
    /// approval id, call digest and body digest of a call held for approval.
    pub(super) async fn refuse_recorded(
        &self,
        route: &Route,
        profile: &VendorProfile,
        evaluation: &Evaluation,
        (conn, request_id): (&ConnInfo, &HeaderValue),
        decision_id: &str,
        held: Option<(&str, &str, &str)>,
    ) -> Response<Body> {
        let fallback = Refusal::Invalid("the call was refused".into());
        let refusal = evaluation.refusal.as_ref().unwrap_or(&fallback);
        let marker = if held.is_some() { "held" } else { "deny" };
        self.metrics.erasure_decided(&profile.name, marker);
        log_decision(profile, request_id, evaluation, marker);
        let facts = DecisionFacts {
            refusal: Some((
                refusal.status().as_u16(),
                refusal.error_type(),
                refusal.message(),
            )),
            approval_id: held.map(|(id, _, _)| id),
            call_sha256: held.map(|(_, call, _)| call),
            body_sha256: held.map(|(_, _, body)| body),
            held: held.is_some(),
            ..self.facts(route, profile, evaluation, conn, request_id, decision_id)
        };
        match self
            .record((&decision_record(&facts, self.pseudonyms.as_ref())).into())
            .await
        {
            Ok(()) => {
                let mut response = refusal.into_response(&profile.error, request_id);
                response::mark_decided(response.headers_mut(), "deny", Some(decision_id));
                response
            }
            Err(e) => {
                tracing::error!(request_id = %crate::request_id::text(request_id), error = %e, "trail write failed");
                Refusal::TrailUnavailable.into_response(&profile.error, request_id)
            }
        }
    }

    async fn record(&self, record: Unsealed) -> Result<(), TrailError> {
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
pub(super) fn new_decision_id() -> String {
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
        request_id = %crate::request_id::text(request_id),
        erasure.vendor = %profile.name,
        erasure.decision = marker,
        erasure.targets = evaluation.targets().len(),
        erasure.policies = %evaluation
            .decision
            .as_ref()
            .map(|d| d.policies().join(","))
            .unwrap_or_default(),
        erasure.refusal = evaluation.refusal.as_ref().map(Refusal::error_type),
        caller.id = evaluation.caller.as_ref().map(|c| c.id.as_str()),
        credential.kind = evaluation.credential.kind.as_str(),
        policy.version = %evaluation.policy_version,
        "erasure call decided"
    );
}
