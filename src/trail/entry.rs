//! The contents of `decision` and `outcome` records, built from the values
//! the pipeline already has. The writer adds `seq`, `prev`, `hash`, `time`
//! and `replica`.
//!
//! Nothing here holds a secret: credentials appear as kind and fingerprint.
//! With a pseudonym key, target ids (and error text quoting them) are
//! replaced by keyed pseudonyms.

use serde_json::{json, Map, Value};

use super::pseudonym::PseudonymKey;
use super::record::kind;
use crate::authz::Decision;
use crate::config::Mode;
use crate::conn::ConnInfo;
use crate::identity::Caller;
use crate::profile::{Credential, Target};

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
}

/// A `decision` record.
pub fn decision_record(
    facts: &DecisionFacts<'_>,
    pseudonym: Option<&PseudonymKey>,
) -> Map<String, Value> {
    let hide = |text: &str| -> String {
        match pseudonym {
            Some(p) => facts.targets.iter().fold(text.to_owned(), |t, target| {
                t.replace(&target.id, &p.pseudonym(&target.id))
            }),
            None => text.to_owned(),
        }
    };
    let id = |raw: &str| pseudonym.map_or_else(|| raw.to_owned(), |p| p.pseudonym(raw));
    let targets: Vec<Value> = match facts.decision {
        Some(decision) => decision
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut entry = json!({
                    "type": t.entity_type,
                    "id": id(&t.id),
                    "decision": if t.allowed { "allow" } else { "deny" },
                    "policies": t.policies,
                    "errors": t.errors.iter().map(|e| hide(e)).collect::<Vec<_>>(),
                });
                if let (Some(target), Some(obj)) = (facts.targets.get(i), entry.as_object_mut()) {
                    add_id_form(obj, target);
                }
                entry
            })
            .collect(),
        None => facts
            .targets
            .iter()
            .map(|t| {
                let mut entry = json!({"type": t.entity_type, "id": id(&t.id), "decision": "deny", "policies": [], "errors": []});
                if let Some(obj) = entry.as_object_mut() {
                    add_id_form(obj, t);
                }
                entry
            })
            .collect(),
    };
    let allowed = facts.decision.is_some_and(|d| d.allowed);
    let mut reasons: Vec<String> = facts
        .decision
        .map(|d| d.reasons.iter().map(|r| hide(r)).collect())
        .unwrap_or_default();
    if let Some((_, _, message)) = &facts.refusal {
        if facts.decision.is_none() {
            reasons.push(hide(message));
        }
    }
    let mut client = json!({
        "ip": facts.conn.client_addr.ip().to_string(),
        "cert": facts.conn.client_cert.is_some(),
    });
    if let (Some(cert), Some(obj)) = (&facts.conn.client_cert, client.as_object_mut()) {
        obj.insert("cert_subject".into(), cert.subject.clone().into());
    }
    let mut record = Map::new();
    record.insert("kind".into(), kind::DECISION.into());
    record.insert("decision_id".into(), facts.decision_id.into());
    record.insert("request_id".into(), facts.request_id.into());
    record.insert("vendor".into(), facts.vendor.into());
    record.insert("upstream".into(), facts.upstream.into());
    record.insert("action".into(), facts.action.clone().into());
    record.insert(
        "principal".into(),
        facts.principal.map_or(
            Value::Null,
            |c| json!({"id": c.id, "roles": c.roles, "source": c.source}),
        ),
    );
    record.insert(
        "credential".into(),
        json!({"kind": facts.credential.kind.as_str(), "fingerprint": facts.credential.fingerprint}),
    );
    record.insert("client".into(), client);
    record.insert("targets".into(), Value::Array(targets));
    record.insert(
        "decision".into(),
        if allowed { "allow" } else { "deny" }.into(),
    );
    record.insert(
        "mode".into(),
        match facts.mode {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
        .into(),
    );
    record.insert(
        "effect".into(),
        if facts.refusal.is_some() {
            "refused"
        } else {
            "forwarded"
        }
        .into(),
    );
    if let Some((status, error_type, _)) = &facts.refusal {
        record.insert("status".into(), (*status).into());
        record.insert("refusal".into(), (*error_type).into());
    }
    record.insert("reasons".into(), reasons.into());
    record.insert(
        "context".into(),
        facts
            .context
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    record.insert("policy_version".into(), facts.policy_version.into());
    if let Some(digest) = facts.forwarded_sha256 {
        record.insert("forwarded_sha256".into(), digest.into());
    }
    if pseudonym.is_some() {
        record.insert("pseudonymized".into(), true.into());
    }
    record
}

/// How a target's id was normalised, when not compared exactly.
fn add_id_form(entry: &mut Map<String, Value>, target: &Target) {
    if !target.id_form.is_exact() {
        entry.insert("id_form".into(), target.id_form.as_str().into());
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
}

/// An `outcome` record: what the upstream (or the gateway, on an upstream
/// failure) answered to a forwarded erasure call.
pub fn outcome_record(facts: &OutcomeFacts<'_>) -> Map<String, Value> {
    let mut record = Map::new();
    record.insert("kind".into(), kind::OUTCOME.into());
    record.insert("decision_id".into(), facts.decision_id.into());
    record.insert("request_id".into(), facts.request_id.into());
    record.insert("vendor".into(), facts.vendor.into());
    record.insert("status".into(), facts.status.into());
    if let Some(status) = facts.upstream_status {
        record.insert("upstream_status".into(), status.into());
    }
    record.insert("latency_ms".into(), facts.latency_ms.into());
    if let Some(id) = &facts.vendor_request_id {
        record.insert("vendor_request_id".into(), id.clone().into());
    }
    if let Some(error) = facts.error {
        record.insert("error".into(), error.into());
    }
    record
}
