//! Fills the trail's [`DecisionRecord`] and [`OutcomeRecord`] from the
//! values the pipeline already has; the trail takes them as plain records
//! and adds `seq`, `prev`, `hash`, `time` and `replica`.
//!
//! Nothing here holds a secret: credentials appear as kind and fingerprint.
//! With a pseudonym key, target ids (and error text quoting them) are
//! replaced by keyed pseudonyms.

use serde_json::{Map, Value};

use crate::authz::Decision;
use crate::config::Mode;
use crate::conn::ConnInfo;
use crate::identity::Caller;
use crate::profile::{Credential, Target};
use crate::trail::pseudonym::PseudonymKey;
use crate::trail::record::{
    BudgetRecord, ClientRecord, CredentialRecord, DecisionRecord, OutcomeRecord, PrincipalRecord,
    TargetRecord,
};

/// What the pipeline knows when it records a decision.
#[derive(Debug, Clone)]
pub struct DecisionFacts<'a> {
    /// The gateway-made id linking this decision to its later records.
    pub decision_id: &'a str,
    /// The client's request id (`x-request-id`, or one the gateway made).
    pub request_id: &'a str,
    /// The vendor profile name.
    pub vendor: &'a str,
    /// The upstream name.
    pub upstream: &'a str,
    /// `Namespace::Action::"id"`.
    pub action: String,
    /// The caller, once identified.
    pub principal: Option<&'a Caller>,
    /// The credential (kind and fingerprint only are recorded).
    pub credential: &'a Credential,
    /// The client connection.
    pub conn: &'a ConnInfo,
    /// The targets named by the call (empty when it was refused before
    /// parsing).
    pub targets: &'a [Target],
    /// Cedar's decision, when it was reached.
    pub decision: Option<&'a Decision>,
    /// The Cedar context, when built.
    pub context: Option<&'a Value>,
    /// Enforce or shadow.
    pub mode: Mode,
    /// The refusal answered, when the call was not forwarded: status, type,
    /// message.
    pub refusal: Option<(u16, &'a str, String)>,
    /// The policy-set version.
    pub policy_version: &'a str,
    /// For a forwarded call: the digest of the rebuilt request the vendor
    /// receives ([`forwarded_sha256`](crate::profile::forwarded_sha256)).
    pub forwarded_sha256: Option<&'a str>,
    /// The caller's budget, once its counts were read.
    pub budget: Option<BudgetRecord>,
    /// Per target, the earlier decision that erased it in this window.
    pub repeats: &'a [Option<String>],
    /// The approval the call waits for (`held`) or went ahead under.
    pub approval_id: Option<&'a str>,
    /// The call's digest and its canonical body's, for a held or approved
    /// call.
    pub call_sha256: Option<&'a str>,
    /// The canonical body's digest, for a held or approved call.
    pub body_sha256: Option<&'a str>,
    /// Held for approval (recorded as decision `held`).
    pub held: bool,
}

/// The `decision` record of a call.
pub fn decision_record(
    facts: &DecisionFacts<'_>,
    pseudonym: Option<&PseudonymKey>,
) -> DecisionRecord {
    let hide = |text: &str| -> String {
        match pseudonym {
            Some(p) => facts.targets.iter().fold(text.to_owned(), |t, target| {
                t.replace(&target.id, &p.pseudonym(&target.id))
            }),
            None => text.to_owned(),
        }
    };
    let id = |raw: &str| pseudonym.map_or_else(|| raw.to_owned(), |p| p.pseudonym(raw));
    let id_form = |i: usize| {
        facts
            .targets
            .get(i)
            .filter(|t| !t.id_form.is_exact())
            .map(|t| t.id_form.as_str().to_owned())
    };
    // Decided targets carry their verdict; targets of a call refused before
    // the decision are recorded as denied, with no policy.
    let targets: Vec<TargetRecord> = match facts.decision {
        Some(decision) => decision
            .targets
            .iter()
            .map(|t| {
                (
                    &t.entity_type,
                    &t.id,
                    t.allowed,
                    &t.policies[..],
                    &t.errors[..],
                )
            })
            .collect::<Vec<_>>(),
        None => facts
            .targets
            .iter()
            .map(|t| (&t.entity_type, &t.id, false, &[][..], &[][..]))
            .collect(),
    }
    .into_iter()
    .enumerate()
    .map(
        |(i, (entity_type, raw_id, allowed, policies, errors))| TargetRecord {
            entity_type: entity_type.clone(),
            id: id(raw_id),
            decision: if allowed { "allow" } else { "deny" }.to_owned(),
            policies: policies.to_vec(),
            errors: errors.iter().map(|e| hide(e)).collect(),
            id_form: id_form(i),
            repeat_of: facts.repeats.get(i).cloned().flatten(),
        },
    )
    .collect();
    let mut reasons: Vec<String> = facts
        .decision
        .map(|d| d.reasons.iter().map(|r| hide(r)).collect())
        .unwrap_or_default();
    if let Some((_, _, message)) = &facts.refusal {
        if facts.decision.is_none() {
            reasons.push(hide(message));
        }
    }
    DecisionRecord {
        decision_id: facts.decision_id.to_owned(),
        request_id: facts.request_id.to_owned(),
        vendor: facts.vendor.to_owned(),
        upstream: facts.upstream.to_owned(),
        action: facts.action.clone(),
        principal: facts.principal.map(|c| PrincipalRecord {
            id: c.id.clone(),
            roles: c.roles.clone(),
            source: c.source.as_str().to_owned(),
        }),
        credential: CredentialRecord {
            kind: facts.credential.kind.as_str().to_owned(),
            fingerprint: facts.credential.fingerprint.clone(),
        },
        client: ClientRecord {
            ip: facts.conn.client_addr.ip().to_string(),
            cert: facts.conn.client_cert.is_some(),
            cert_subject: facts.conn.client_cert.as_ref().map(|c| c.subject.clone()),
            via: facts.conn.via.map(|ip| ip.to_string()),
        },
        targets,
        decision: if facts.held {
            "held"
        } else if facts.decision.is_some_and(|d| d.allowed) {
            "allow"
        } else {
            "deny"
        }
        .to_owned(),
        mode: match facts.mode {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
        .to_owned(),
        effect: if facts.refusal.is_some() {
            "refused"
        } else {
            "forwarded"
        }
        .to_owned(),
        status: facts.refusal.as_ref().map(|(status, _, _)| *status),
        refusal: facts
            .refusal
            .as_ref()
            .map(|(_, error_type, _)| (*error_type).to_owned()),
        reasons,
        context: facts
            .context
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
        policy_version: facts.policy_version.to_owned(),
        forwarded_sha256: facts.forwarded_sha256.map(str::to_owned),
        pseudonymized: pseudonym.is_some(),
        budget: facts.budget.clone(),
        approval_id: facts.approval_id.map(str::to_owned),
        call_sha256: facts.call_sha256.map(str::to_owned),
        body_sha256: facts.body_sha256.map(str::to_owned),
    }
}

/// What the pipeline knows when it records an outcome.
#[derive(Debug, Clone)]
pub struct OutcomeFacts<'a> {
    /// The decision this outcome belongs to.
    pub decision_id: &'a str,
    /// The client's request id.
    pub request_id: &'a str,
    /// The vendor profile name.
    pub vendor: &'a str,
    /// The status the client got.
    pub status: u16,
    /// The vendor's own status when the gateway answered instead (its
    /// answer broke off or was too slow).
    pub upstream_status: Option<u16>,
    /// Time from sending to the whole answer.
    pub latency_ms: u64,
    /// The vendor's id for the call (Kore.ai's `requestId`).
    pub vendor_request_id: Option<String>,
    /// The gateway's error code when the exchange failed.
    pub error: Option<&'a str>,
    /// The vendor accepted the call to carry it out later.
    pub awaits_completion: bool,
}

/// The `outcome` record of a forwarded call.
pub fn outcome_record(facts: &OutcomeFacts<'_>) -> OutcomeRecord {
    OutcomeRecord {
        decision_id: facts.decision_id.to_owned(),
        request_id: facts.request_id.to_owned(),
        vendor: facts.vendor.to_owned(),
        status: facts.status,
        upstream_status: facts.upstream_status,
        latency_ms: facts.latency_ms,
        vendor_request_id: facts.vendor_request_id.clone(),
        error: facts.error.map(str::to_owned),
        awaits_completion: facts.awaits_completion,
    }
}
