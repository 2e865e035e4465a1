//! The trail's record schema: one serde type per record kind, written by the
//! pipeline and read back by `audit query` and `policy replay`. The writer
//! adds `time`, `replica`, `seq`, `prev` and `hash` ([`Sealed`]).
//!
//! Field order is the order on disk (serde_json keeps insertion order in
//! this build), so a record's line reads the same as before the types
//! existed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::writer::Unsealed;

/// The record kinds.
pub mod kind {
    /// A decision about an erasure call, written before anything is forwarded.
    pub const DECISION: &str = "decision";
    /// What the upstream answered to an allowed (or shadow) call.
    pub const OUTCOME: &str = "outcome";
    /// The writer found a torn last line at start and cut it off.
    pub const RECOVERED: &str = "recovered";
    /// A signed statement of the chain's head.
    pub const CHECKPOINT: &str = "checkpoint";
    /// A held call approved or rejected by a second caller.
    pub const APPROVAL: &str = "approval";
    /// What the vendor's status API said of an erasure it carries out later.
    pub const COMPLETION: &str = "completion";
}

/// A `decision` record: what was decided about one erasure call, on disk
/// before anything is forwarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The gateway-made id linking this decision to its later records
    /// (empty in trails written before it existed).
    #[serde(default)]
    pub decision_id: String,
    /// The client's request id.
    pub request_id: String,
    /// The vendor profile name.
    pub vendor: String,
    /// The upstream name.
    pub upstream: String,
    /// `Namespace::Action::"id"`.
    pub action: String,
    /// The caller, once identified.
    pub principal: Option<PrincipalRecord>,
    /// The credential's kind and fingerprint (never the token).
    pub credential: CredentialRecord,
    /// The client connection.
    pub client: ClientRecord,
    /// Every target with its own decision.
    pub targets: Vec<TargetRecord>,
    /// `allow`, `deny`, or `held` (waiting for a second caller's approval).
    pub decision: String,
    /// `enforce` or `shadow`.
    pub mode: String,
    /// `forwarded` or `refused`.
    pub effect: String,
    /// The status answered, for a refused call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The refusal type, for a refused call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Why, one line per kind of denial or refusal.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The Cedar context the call was decided with.
    #[serde(default)]
    pub context: Value,
    /// The policy-set version (full SHA-256).
    pub policy_version: String,
    /// For a forwarded call: the digest of the request the vendor receives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_sha256: Option<String>,
    /// Target ids (and texts quoting them) are keyed pseudonyms.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pseudonymized: bool,
    /// The caller's erasure budget as the call was decided (absent when the
    /// call was refused before its counts were read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetRecord>,
    /// The approval this call waits for (`held`) or went ahead under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// For a held or approved call: the digest of the call as it would be
    /// forwarded (method, path and query, workspace, canonical body), which
    /// the repeated call must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sha256: Option<String>,
    /// For a held or approved call: the digest of its canonical body alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
}

/// An `approval` record: a second caller approved or rejected a held call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The approval.
    pub approval_id: String,
    /// The held call's decision.
    pub decision_id: String,
    /// `approved` or `rejected`.
    pub state: String,
    /// Who approved or rejected it.
    pub approver: PrincipalRecord,
    /// Who made the held call.
    pub requester: String,
    /// The vendor profile name.
    pub vendor: String,
    /// `Namespace::Action::"id"`.
    pub action: String,
    /// The held call's digest.
    pub call_sha256: String,
    /// Unix seconds until which the approval may be used.
    pub expires: u64,
    /// The approver's note, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl From<&ApprovalRecord> for Unsealed {
    fn from(record: &ApprovalRecord) -> Self {
        Unsealed::new(kind::APPROVAL, record)
    }
}

/// A caller's erasure budget through one vendor, as a decision saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRecord {
    /// Targets erased in the current targets window, before this call.
    pub erasures_in_window: u64,
    /// Calls forwarded in the current calls window, before this call.
    pub calls_in_window: u64,
    /// Targets allowed per window (absent: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets_limit: Option<u64>,
    /// The targets window, in seconds.
    pub targets_window_secs: u64,
    /// Calls allowed per window (absent: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_limit: Option<u64>,
    /// The calls window, in seconds.
    pub calls_window_secs: u64,
    /// The limit this call would have broken: `targets` or `calls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceeded: Option<String>,
}

/// The caller of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalRecord {
    /// `Gateway::Caller` id.
    pub id: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// How it was identified (`token`, `jwt`, `anonymous`).
    pub source: String,
}

/// A credential as the trail keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// The credential kind (`api_key`, `jwt`, …).
    pub kind: String,
    /// The first 12 hex digits of the token's SHA-256 (empty without one).
    pub fingerprint: String,
}

/// The client of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// Its IP address.
    pub ip: String,
    /// Whether it presented a verified certificate.
    pub cert: bool,
    /// The certificate's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_subject: Option<String>,
    /// The trusted proxy that named `ip` (`[proxy] trusted_proxies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// One target of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRecord {
    /// Its Cedar entity type.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Its id (or pseudonym).
    pub id: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// The determining policies.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Policy evaluation errors (each a deny).
    #[serde(default)]
    pub errors: Vec<String>,
    /// How the id was normalised, when not compared exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_form: Option<String>,
    /// The earlier decision that erased this target in the same budget
    /// window, when this is a repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_of: Option<String>,
}

/// An `outcome` record: what the upstream (or the gateway, on an upstream
/// failure) answered to a forwarded erasure call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    /// The decision this outcome belongs to (empty in older trails).
    #[serde(default)]
    pub decision_id: String,
    /// The client's request id.
    pub request_id: String,
    /// The vendor profile name.
    pub vendor: String,
    /// The status the client got.
    pub status: u16,
    /// The vendor's own status when the gateway answered instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// Time from sending to the whole answer.
    pub latency_ms: u64,
    /// The vendor's id for the call (Kore.ai's `requestId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_request_id: Option<String>,
    /// The gateway's error code when the exchange failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The vendor accepted the call to carry it out later: `completion`
    /// records say how it went. (Otherwise a success here is the
    /// completion.)
    #[serde(default, skip_serializing_if = "is_false")]
    pub awaits_completion: bool,
}

/// A `completion` record: what the vendor's status API answered about an
/// erasure it accepted earlier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionRecord {
    /// The erasure's decision, when the gateway still knew it (empty after
    /// a restart: the outcome with this `vendor_request_id` links them).
    #[serde(default)]
    pub decision_id: String,
    /// The vendor's id for the erasure (Kore.ai's `requestId`).
    pub vendor_request_id: String,
    /// The vendor profile name.
    pub vendor: String,
    /// The upstream name.
    pub upstream: String,
    /// `status_call` (a client's status call passed through) or `poll`
    /// (the gateway asked, `track_completion`).
    pub source: String,
    /// The request id of the status call.
    pub request_id: String,
    /// The status the vendor answered with (absent when it did not answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `completed`, `failed`, `in_progress`, or `unknown` (the answer could
    /// not be read, or polling gave up).
    pub state: String,
    /// Each target's status.
    #[serde(default)]
    pub targets: Vec<CompletionTarget>,
    /// Why the state is `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Target ids are keyed pseudonyms.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pseudonymized: bool,
}

/// One target in a completion record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionTarget {
    /// Its Cedar entity type.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Its id (or pseudonym), in the form the vendor compares ids in.
    pub id: String,
    /// The vendor's own word for its status.
    pub status: String,
    /// `succeeded`, `failed` or `pending`.
    pub state: String,
}

impl From<&CompletionRecord> for Unsealed {
    fn from(record: &CompletionRecord) -> Self {
        Unsealed::new(kind::COMPLETION, record)
    }
}

/// A record as read back from a trail: the writer's fields around it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Sealed<R> {
    /// The record itself.
    #[serde(flatten)]
    pub record: R,
    /// When the writer sealed it (RFC 3339, UTC, milliseconds).
    #[serde(default)]
    pub time: String,
    /// The replica that wrote it.
    #[serde(default)]
    pub replica: String,
    /// Its sequence number in the chain.
    #[serde(default)]
    pub seq: u64,
}

impl<R: for<'de> Deserialize<'de>> Sealed<R> {
    /// Reads a record of this type from a trail line's object.
    ///
    /// # Errors
    /// The object does not have the record's shape.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, serde_json::Error> {
        serde_json::from_value(Value::Object(map.clone()))
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

impl From<&DecisionRecord> for Unsealed {
    fn from(record: &DecisionRecord) -> Self {
        Unsealed::new(kind::DECISION, record)
    }
}

impl From<&OutcomeRecord> for Unsealed {
    fn from(record: &OutcomeRecord) -> Self {
        Unsealed::new(kind::OUTCOME, record)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::trail::chain::{seal_members, verify_line, GENESIS};

    #[test]
    fn a_decision_record_seals_into_a_line_that_verifies_and_reads_back() {
        let record = DecisionRecord {
            decision_id: "d-1".into(),
            request_id: "r-1".into(),
            vendor: "kore".into(),
            upstream: "kore".into(),
            action: "Kore::Action::\"eraseUsersData\"".into(),
            principal: None,
            credential: CredentialRecord {
                kind: "none".into(),
                fingerprint: String::new(),
            },
            client: ClientRecord {
                ip: "127.0.0.1".into(),
                cert: false,
                cert_subject: None,
                via: None,
            },
            targets: vec![],
            decision: "deny".into(),
            mode: "enforce".into(),
            effect: "refused".into(),
            status: Some(400),
            refusal: Some("invalid_input".into()),
            reasons: vec!["why".into()],
            context: Value::Object(Map::new()),
            policy_version: "sha256:x".into(),
            forwarded_sha256: None,
            pseudonymized: false,
            budget: None,
            approval_id: None,
            call_sha256: None,
            body_sha256: None,
        };
        // Sealed into a line as the writer seals it, and read back.
        let unsealed = Unsealed::from(&record);
        let mut line = Vec::new();
        seal_members(unsealed.members().unwrap(), 7, GENESIS, &[], &mut line);
        let text = std::str::from_utf8(&line).unwrap();
        let (map, head) = verify_line(text, None).unwrap();
        assert_eq!(map["kind"], "decision");
        assert_eq!(head.seq, 7);
        let back = Sealed::<DecisionRecord>::from_map(&map).unwrap();
        assert_eq!(back.record, record);
        assert_eq!(back.seq, 7);
    }
}
