//! Four-eyes approval on the erasure path and for the admin listener: a
//! call that only `@approval` forbids deny is held (403
//! `approval_required`, recorded as `held`); a second caller with the
//! approver role approves or rejects it (recorded as an `approval`
//! record); the requester's identical call then goes ahead, once.

use http::header::HeaderValue;
use http::Response;
use serde_json::{json, Value};

use super::erasure::new_decision_id;
use super::gateway::{Gateway, Route};
use crate::authz::PolicySnapshot;
use crate::budget::{now, Approval, Settled};
use crate::conn::ConnInfo;
use crate::digest::sha256_hex;
use crate::forward::Upstream;
use crate::pipeline::evaluate::{Evaluation, Given};
use crate::profile::{self, ErasureCall, RequestHead, VendorProfile};
use crate::response::{AdminError, Refusal};
use crate::trail::record::{ApprovalRecord, PrincipalRecord};
use crate::wire::Outbound;
use crate::Body;

/// The call at hand, as the erasure path read it.
pub(super) struct Gate<'a> {
    pub(super) route: &'a Route,
    pub(super) profile: &'a VendorProfile,
    pub(super) call: &'a ErasureCall,
    pub(super) head: &'a RequestHead<'a>,
    pub(super) body: &'a [u8],
    pub(super) conn: &'a ConnInfo,
    pub(super) snapshot: &'a PolicySnapshot,
    pub(super) request_id: &'a HeaderValue,
}

/// An approval a call goes ahead under.
#[derive(Debug, Clone)]
pub(super) struct Approved {
    pub(super) id: String,
    pub(super) call_sha256: String,
    pub(super) body_sha256: String,
}

/// The digest a repeated call must match: method, path and query, the
/// workspace it acts in, the upstream it goes to (name and base URL: two
/// upstreams may share a profile, say a sandbox and production account)
/// and the canonical body, as they would be forwarded.
fn call_digest(outbound: &Outbound, context: Option<&Value>, upstream: &Upstream) -> String {
    let workspace = context
        .and_then(|c| c.get("workspace"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut text = format!(
        "{} {}\n{workspace}\n{}\n",
        outbound.method,
        outbound.path_and_query,
        upstream.destination()
    )
    .into_bytes();
    text.extend_from_slice(&outbound.body);
    sha256_hex(text)
}

impl Gateway {
    /// A call denied by the `held` `@approval` forbids alone. Decided again
    /// without them: if it would then still be denied, that denial is the
    /// answer. If a second caller approved this very call, it goes ahead
    /// (the approval is used up); else it is held, and the answer is 403
    /// `approval_required` with the approval id.
    ///
    /// # Errors
    /// The answer to send instead of forwarding.
    pub(super) async fn approval_gate(
        &self,
        gate: &Gate<'_>,
        evaluation: Evaluation,
        held: Vec<String>,
    ) -> Result<(Evaluation, Approved), Response<Body>> {
        let given = Given {
            lifted: held.clone(),
            ..Given::default()
        };
        let lifted = self
            .evaluator
            .evaluate(
                gate.profile,
                gate.call,
                gate.head,
                gate.body,
                gate.conn,
                gate.snapshot,
                given,
            )
            .await;
        if !lifted.decision.as_ref().is_some_and(|d| d.allowed) {
            return Err(self.refuse_at(gate, &lifted).await);
        }
        let (Some(erasure), Some(caller)) = (&lifted.erasure, &lifted.caller) else {
            return Err(self.refuse_at(gate, &evaluation).await);
        };
        let outbound = match profile::outbound(gate.profile, erasure, gate.head.headers) {
            Ok(outbound) => outbound,
            Err(e) => {
                let mut evaluation = evaluation;
                evaluation.refusal = Some(Refusal::Invalid(e.to_string()));
                return Err(self.refuse_at(gate, &evaluation).await);
            }
        };
        let call_sha256 = call_digest(&outbound, lifted.context.as_ref(), &gate.route.upstream);
        let body_sha256 = sha256_hex(&outbound.body);
        let vendor = &gate.profile.name;
        let unavailable = |e: crate::budget::BudgetError, mut evaluation: Evaluation| {
            tracing::warn!(error = %e, "approvals unavailable; call refused");
            evaluation.refusal = Some(Refusal::BudgetUnavailable);
            evaluation
        };
        match self
            .budgets
            .take_approved(&caller.id, vendor, &call_sha256)
            .await
        {
            Ok(Some(approval)) => {
                let approved = Approved {
                    id: approval.id,
                    call_sha256,
                    body_sha256,
                };
                return Ok((lifted, approved));
            }
            Ok(None) => {}
            Err(e) => return Err(self.refuse_at(gate, &unavailable(e, evaluation)).await),
        }
        let decision_id = new_decision_id();
        let reasons = gate.snapshot.approval_policies();
        let created = now().as_secs();
        let approval = Approval {
            id: uuid::Uuid::now_v7().to_string(),
            requester: caller.id.clone(),
            vendor: vendor.clone(),
            upstream: gate.route.upstream.name.clone(),
            action: format!(
                "{}::Action::{:?}",
                gate.profile.namespace, gate.profile.action
            ),
            call_sha256: call_sha256.clone(),
            targets: erasure
                .targets
                .iter()
                .map(|t| format!("{}::{:?}", t.entity_type, t.id))
                .collect(),
            policies: held
                .iter()
                .map(|id| (id.clone(), reasons.get(id).cloned().unwrap_or_default()))
                .collect(),
            held_decision_id: decision_id.clone(),
            created,
            expires: created + self.budgets.approval_ttl().as_secs(),
            state: "pending".into(),
            settled_by: None,
        };
        let approval = match self.budgets.hold(approval).await {
            Ok(approval) => approval,
            Err(e) => return Err(self.refuse_at(gate, &unavailable(e, evaluation)).await),
        };
        let mut evaluation = evaluation;
        evaluation.refusal = Some(Refusal::ApprovalRequired {
            approval_id: approval.id.clone(),
            reasons: approval
                .policies
                .iter()
                .map(|(id, reason)| format!("{id}: {reason}"))
                .collect(),
        });
        Err(self
            .refuse_recorded(
                gate.route,
                gate.profile,
                &evaluation,
                (gate.conn, gate.request_id),
                &decision_id,
                Some((&approval.id, &call_sha256, &body_sha256)),
            )
            .await)
    }

    async fn refuse_at(&self, gate: &Gate<'_>, evaluation: &Evaluation) -> Response<Body> {
        self.refuse(
            gate.route,
            gate.profile,
            evaluation,
            gate.conn,
            gate.request_id,
        )
        .await
    }

    /// `POST /v1/approvals/{id}`: the caller whose credential is in
    /// `authorization` approves (`approve`) or rejects the held call `id`.
    /// The four-eyes rules: a known caller, in the approver role, who is not
    /// the requester; a pending approval. Recorded before it takes effect.
    ///
    /// # Errors
    /// Who may not, what is not there, or what cannot be reached, as the
    /// admin listener answers it.
    pub async fn settle_approval(
        &self,
        id: &str,
        authorization: Option<&str>,
        approve: bool,
        note: Option<String>,
    ) -> Result<Value, AdminError> {
        let approver = self.approver(authorization).await?;
        let unavailable = |e: crate::budget::BudgetError| AdminError::Unavailable(e.to_string());
        let Some(approval) = self.budgets.approval(id).await.map_err(unavailable)? else {
            return Err(AdminError::NotFound);
        };
        if approval.requester == approver.id {
            return Err(AdminError::Forbidden(format!(
                "`{}` made this call and cannot approve or reject it: four eyes means a second caller",
                approver.id
            )));
        }
        // Reserved first (only a pending approval can be), so that of two
        // approvers at once only one answer is recorded, and the one
        // recorded is the one that holds.
        let approval = match self
            .budgets
            .reserve(id, &approver.id)
            .await
            .map_err(unavailable)?
        {
            Settled::Done(approval) => approval,
            Settled::AlreadySettled(approval) => return Err(already(&approval)),
            Settled::NotFound => return Err(AdminError::NotFound),
        };
        let state = if approve { "approved" } else { "rejected" };
        let record = ApprovalRecord {
            approval_id: approval.id.clone(),
            decision_id: approval.held_decision_id.clone(),
            state: state.to_owned(),
            approver: PrincipalRecord {
                id: approver.id.clone(),
                roles: approver.roles.clone(),
                source: approver.source.as_str().to_owned(),
            },
            requester: approval.requester.clone(),
            vendor: approval.vendor.clone(),
            action: approval.action.clone(),
            call_sha256: approval.call_sha256.clone(),
            expires: approval.expires,
            note,
        };
        // On the trail before it takes effect: an approval nobody can see
        // never lets a call through.
        if let Err(e) = self.trail.append(&record).await {
            self.metrics.trail_write_failed();
            if let Err(released) = self.budgets.release(id, &approver.id).await {
                // Stays reserved until it expires: no call goes under it.
                tracing::warn!(approval = id, error = %released, "approval left reserved");
            }
            return Err(AdminError::Unavailable(format!(
                "the approval cannot be recorded, so it is not taken: {e}"
            )));
        }
        match self
            .budgets
            .settle(id, approve, &approver.id)
            .await
            .map_err(unavailable)?
        {
            Settled::Done(approval) => Ok(approval_json(&approval)),
            Settled::AlreadySettled(approval) => Err(already(&approval)),
            Settled::NotFound => Err(AdminError::NotFound),
        }
    }

    /// `GET /v1/approvals`: every approval that has not expired, for the
    /// admin token or a caller in the approver role.
    ///
    /// # Errors
    /// As [`settle_approval`](Self::settle_approval).
    pub async fn list_approvals(
        &self,
        authorization: Option<&str>,
        admin: bool,
    ) -> Result<Value, AdminError> {
        if !admin {
            self.approver(authorization).await?;
        }
        let all = self
            .budgets
            .approvals()
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        Ok(json!({ "approvals": all.iter().map(approval_json).collect::<Vec<_>>() }))
    }

    /// The caller an admin request's `Authorization: Bearer …` names, if it
    /// holds the approver role.
    async fn approver(
        &self,
        authorization: Option<&str>,
    ) -> Result<crate::identity::Caller, AdminError> {
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AdminError::Forbidden(
                    "approvals need the approver's own credential: Authorization: Bearer <token>"
                        .into(),
                )
            })?;
        let is_jwt = token.split('.').count() == 3;
        let caller = self
            .evaluator
            .identify(Some(token), is_jwt, None)
            .await
            .map_err(|e| AdminError::Forbidden(format!("the credential is not valid ({e})")))?;
        let role = self.budgets.approver_role();
        if caller.id == crate::identity::Caller::anonymous().id {
            return Err(AdminError::Forbidden(
                "the credential names no known caller".into(),
            ));
        }
        if !caller.roles.iter().any(|r| r == role) {
            return Err(AdminError::Forbidden(format!(
                "`{}` does not hold the `{role}` role",
                caller.id
            )));
        }
        Ok(caller)
    }
}

fn already(approval: &Approval) -> AdminError {
    if approval.state == "settling" {
        return AdminError::Conflict(format!(
            "approval {} is being settled by {}",
            approval.id,
            approval.settled_by.as_deref().unwrap_or("another approver")
        ));
    }
    AdminError::Conflict(format!(
        "approval {} is {} already{}",
        approval.id,
        approval.state,
        approval
            .settled_by
            .as_deref()
            .map(|by| format!(" (by {by})"))
            .unwrap_or_default()
    ))
}

fn approval_json(approval: &Approval) -> Value {
    let time = |secs: u64| {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        )
        .to_string()
    };
    json!({
        "id": approval.id,
        "state": approval.state,
        "requester": approval.requester,
        "vendor": approval.vendor,
        "upstream": approval.upstream,
        "action": approval.action,
        "targets": approval.targets,
        "policies": approval.policies.iter().map(|(id, reason)| json!({"id": id, "approval": reason})).collect::<Vec<_>>(),
        "held_decision_id": approval.held_decision_id,
        "call_sha256": approval.call_sha256,
        "created": time(approval.created),
        "expires": time(approval.expires),
        "settled_by": approval.settled_by,
    })
}
