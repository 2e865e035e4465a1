//! `audit receipt`: for one target, every record about it (requested,
//! decided and why, forwarded, vendor acknowledged, completed or failed),
//! whole, with each one's `seq` and `hash`, and the newest signed checkpoint
//! that covers them: evidence a reviewer can hand on. `audit verify
//! --receipt` checks such a receipt against the trail.
//!
//! Like `audit query`, building a receipt reads and does not verify the
//! chain; `verify_receipt` does.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::chain::{canonical, chain_hash};
use super::checkpoint;
use super::files::{self, FilesError};
use super::filter::{Matcher, QueryFilter, Unjudged};
use super::pseudonym::PseudonymKey;
use super::record::{
    kind, ApprovalRecord, CompletionRecord, DecisionRecord, OutcomeRecord, Sealed,
};

/// The receipt format's version.
pub const RECEIPT_VERSION: u32 = 1;

/// Everything the trail holds about one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The format version ([`RECEIPT_VERSION`]).
    pub receipt: u32,
    /// The target asked about, as given.
    pub target: String,
    /// `erased`, `pending` (the vendor accepted it and has not said it is
    /// done), `failed`, `refused`, `held`, `forwarded` (no answer on
    /// record), or `not_found`.
    pub state: String,
    /// When the erasure was done (the vendor's answer or completion), for
    /// `erased`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<String>,
    /// The caller whose call erased it (or the last call's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The policies that decided that call for this target.
    #[serde(default)]
    pub policies: Vec<String>,
    /// The records, whole, in trail order.
    pub records: Vec<Map<String, Value>>,
    /// The newest checkpoint record covering every record above, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Map<String, Value>>,
}

/// What the trail says of one call for the target.
#[derive(Debug, Clone)]
struct Call {
    decision_id: String,
    vendor: String,
    caller: Option<String>,
    policies: Vec<String>,
    /// The recorded ids of the target in this call.
    ids: Vec<String>,
    state: &'static str,
    at: Option<String>,
    vendor_request_id: Option<String>,
}

/// Builds the receipt of `target` from the trail in `paths`.
///
/// # Errors
/// A file or directory cannot be read.
pub fn receipt(
    paths: &[PathBuf],
    target: &str,
    pseudonym_key: Option<&PseudonymKey>,
) -> Result<Receipt, FilesError> {
    let filter = ReceiptBuilder::filter(target);
    let mut builder = ReceiptBuilder::new(&filter, pseudonym_key);
    for_each_record(paths, |record| builder.add(record))?;
    Ok(builder.finish())
}

/// A receipt built from records fed in trail order. Records about other
/// targets are passed over, so any run of the trail that holds every
/// record about the target (the whole trail, or an index's picks plus the
/// checkpoint records after them) makes the same receipt.
pub struct ReceiptBuilder<'f> {
    target: &'f str,
    matcher: Matcher<'f>,
    unjudged: Unjudged,
    records: Vec<Map<String, Value>>,
    calls: Vec<Call>,
    approvals: HashSet<String>,
    checkpoint: Option<Map<String, Value>>,
}

impl<'f> ReceiptBuilder<'f> {
    /// The filter a receipt of `target` matches decisions with.
    pub fn filter(target: &str) -> QueryFilter {
        QueryFilter {
            target: Some(target.to_owned()),
            ..QueryFilter::default()
        }
    }

    /// A builder for the target of `filter` (made by [`Self::filter`]).
    pub fn new(filter: &'f QueryFilter, pseudonym_key: Option<&PseudonymKey>) -> Self {
        Self {
            target: filter.target.as_deref().unwrap_or(""),
            matcher: Matcher::new(filter, pseudonym_key),
            unjudged: Unjudged::default(),
            records: Vec::new(),
            calls: Vec::new(),
            approvals: HashSet::new(),
            checkpoint: None,
        }
    }

    /// Takes the next record in trail order.
    pub fn add(&mut self, record: Map<String, Value>) {
        let calls = &mut self.calls;
        let mut keep = false;
        match text(&record, "kind") {
            kind::DECISION => {
                if let Ok(decision) = Sealed::<DecisionRecord>::from_map(&record) {
                    if self.matcher.matches(&decision, &mut self.unjudged) {
                        keep = true;
                        calls.push(call(&decision, &self.matcher, self.target));
                        self.approvals.extend(decision.record.approval_id);
                    }
                }
            }
            kind::OUTCOME => {
                if let Ok(outcome) = Sealed::<OutcomeRecord>::from_map(&record) {
                    if let Some(call) = calls.iter_mut().find(|c| {
                        !c.decision_id.is_empty() && c.decision_id == outcome.record.decision_id
                    }) {
                        keep = true;
                        join_outcome(call, &outcome);
                    }
                }
            }
            kind::COMPLETION => {
                if let Ok(done) = Sealed::<CompletionRecord>::from_map(&record) {
                    let linked = calls.iter_mut().find(|c| {
                        (!done.record.decision_id.is_empty()
                            && c.decision_id == done.record.decision_id)
                            || (c.vendor == done.record.vendor
                                && c.vendor_request_id.as_deref()
                                    == Some(done.record.vendor_request_id.as_str()))
                    });
                    if let Some(call) = linked {
                        keep = true;
                        join_completion(call, &done);
                    }
                }
            }
            kind::APPROVAL => {
                if let Ok(approval) = Sealed::<ApprovalRecord>::from_map(&record) {
                    // An empty decision id (older trails) links nothing.
                    let decision_id = &approval.record.decision_id;
                    keep = self.approvals.contains(&approval.record.approval_id)
                        || (!decision_id.is_empty()
                            && calls.iter().any(|c| c.decision_id == *decision_id));
                }
            }
            kind::CHECKPOINT if !self.records.is_empty() => {
                self.checkpoint = Some(record.clone());
            }
            _ => {}
        }
        if keep {
            // A checkpoint before this record does not cover it.
            self.checkpoint = None;
            self.records.push(record);
        }
    }

    /// The receipt of what was added.
    pub fn finish(self) -> Receipt {
        let calls = self.calls;
        let erased = calls.iter().find(|c| c.state == "erased");
        let shown = erased.or(calls.last());
        Receipt {
            receipt: RECEIPT_VERSION,
            target: self.target.to_owned(),
            state: shown.map_or("not_found", |c| c.state).to_owned(),
            erased_at: erased.and_then(|c| c.at.clone()),
            by: shown.and_then(|c| c.caller.clone()),
            policies: shown.map(|c| c.policies.clone()).unwrap_or_default(),
            records: self.records,
            checkpoint: self.checkpoint,
        }
    }
}

fn call(decision: &Sealed<DecisionRecord>, matcher: &Matcher<'_>, target: &str) -> Call {
    let record = &decision.record;
    let mine: Vec<_> = record
        .targets
        .iter()
        .filter(|t| matcher.is_target(target, t, record.pseudonymized))
        .collect();
    let mut policies: Vec<String> = Vec::new();
    for policy in mine.iter().flat_map(|t| &t.policies) {
        if !policies.contains(policy) {
            policies.push(policy.clone());
        }
    }
    let allowed = mine.iter().all(|t| t.decision == "allow");
    let state = match (record.decision.as_str(), record.effect.as_str()) {
        ("held", _) => "held",
        (_, "forwarded") if allowed || record.mode == "shadow" => "forwarded",
        _ => "refused",
    };
    Call {
        decision_id: record.decision_id.clone(),
        vendor: record.vendor.clone(),
        caller: record.principal.as_ref().map(|p| p.id.clone()),
        policies,
        ids: mine.iter().map(|t| t.id.clone()).collect(),
        state,
        at: None,
        vendor_request_id: None,
    }
}

fn join_outcome(call: &mut Call, outcome: &Sealed<OutcomeRecord>) {
    let record = &outcome.record;
    call.vendor_request_id.clone_from(&record.vendor_request_id);
    call.at = Some(outcome.time.clone());
    call.state = match (
        (200..300).contains(&record.status),
        record.awaits_completion,
    ) {
        (false, _) => "failed",
        (true, true) => "pending",
        (true, false) => "erased",
    };
}

fn join_completion(call: &mut Call, done: &Sealed<CompletionRecord>) {
    let states: Vec<&str> = done
        .record
        .targets
        .iter()
        .filter(|t| call.ids.contains(&t.id))
        .map(|t| t.state.as_str())
        .collect();
    if states.is_empty() {
        return;
    }
    call.state = if states.iter().all(|s| *s == "succeeded") {
        call.at = Some(done.time.clone());
        "erased"
    } else if states.contains(&"failed") {
        call.at = Some(done.time.clone());
        "failed"
    } else {
        "pending"
    };
}

fn for_each_record(
    paths: &[PathBuf],
    mut each: impl FnMut(Map<String, Value>),
) -> Result<(), FilesError> {
    files::for_each_line(paths, |_, line| {
        if let Some(record) = line.and_then(|l| serde_json::from_slice(l).ok()) {
            each(record);
        }
        Ok::<(), FilesError>(())
    })
}

fn text<'r>(record: &'r Map<String, Value>, field: &str) -> &'r str {
    record.get(field).and_then(Value::as_str).unwrap_or("")
}

fn number(record: &Map<String, Value>, field: &str) -> Option<u64> {
    record.get(field).and_then(Value::as_u64)
}

/// One line per record: what it says, for the table.
pub fn what(record: &Map<String, Value>) -> String {
    let field = |name: &str| text(record, name);
    match field("kind") {
        kind::DECISION => format!(
            "{} {} by {} ({})",
            field("decision"),
            field("effect"),
            record
                .get("principal")
                .and_then(|p| p.get("id"))
                .and_then(Value::as_str)
                .unwrap_or("-"),
            field("vendor"),
        ),
        kind::OUTCOME => format!(
            "vendor answered {}{}",
            number(record, "status").unwrap_or(0),
            record
                .get("vendor_request_id")
                .and_then(Value::as_str)
                .map(|id| format!(", request {id}"))
                .unwrap_or_default()
        ),
        kind::COMPLETION => format!("completion: {} ({})", field("state"), field("source")),
        kind::APPROVAL => format!(
            "{} by {}",
            field("state"),
            record
                .get("approver")
                .and_then(|p| p.get("id"))
                .and_then(Value::as_str)
                .unwrap_or("-")
        ),
        other => other.to_owned(),
    }
}

/// The receipt as a table for a terminal.
pub fn render_table(receipt: &Receipt) -> String {
    let mut out = String::new();
    let _ = write!(out, "{}: {}", receipt.target, receipt.state);
    if let Some(at) = &receipt.erased_at {
        let _ = write!(out, " at {at}");
    }
    if let Some(by) = &receipt.by {
        let _ = write!(out, " by {by}");
    }
    if !receipt.policies.is_empty() {
        let _ = write!(out, " under {}", receipt.policies.join(", "));
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{:>8}  {:<24}  {:<10}  {:<16}  WHAT",
        "SEQ", "TIME", "KIND", "HASH"
    );
    for record in &receipt.records {
        let _ = writeln!(
            out,
            "{:>8}  {:<24}  {:<10}  {:<16}  {}",
            number(record, "seq").unwrap_or(0),
            text(record, "time"),
            text(record, "kind"),
            text(record, "hash").get(..16).unwrap_or(""),
            super::render::escape_controls(&what(record)),
        );
    }
    match &receipt.checkpoint {
        Some(cp) => {
            let _ = writeln!(
                out,
                "covered by the checkpoint at seq {} (head seq {}, key {}, signed {})",
                number(cp, "seq").unwrap_or(0),
                number(cp, "head_seq").unwrap_or(0),
                text(cp, "key_id"),
                text(cp, "time"),
            );
        }
        None if !receipt.records.is_empty() => {
            out.push_str("no signed checkpoint covers these records yet\n");
        }
        None => {}
    }
    out
}

/// How a receipt checked out against the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptCheck {
    /// Records checked (besides the checkpoint).
    pub records: usize,
    /// Whether the checkpoint's signature was checked against a pinned key.
    pub signature_checked: bool,
}

/// Why a receipt does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// A record's content does not match its hash.
    #[error("the receipt's record at seq {seq} does not match its own hash (it was modified)")]
    Modified {
        /// Its seq.
        seq: u64,
    },
    /// A record is not in the trail as it is in the receipt.
    #[error("the receipt's record at seq {seq} is not in the trail (the trail has {found})")]
    NotInTrail {
        /// Its seq.
        seq: u64,
        /// What the trail has at that seq.
        found: String,
    },
    /// The checkpoint does not cover a record.
    #[error("the checkpoint (head seq {head}) does not cover the record at seq {seq}")]
    NotCovered {
        /// The checkpoint's head seq.
        head: u64,
        /// The record's seq.
        seq: u64,
    },
    /// The checkpoint's signature does not hold.
    #[error("the checkpoint's signature: {0}")]
    Signature(String),
    /// The receipt cannot be read.
    #[error("not a receipt: {0}")]
    Unreadable(String),
    /// The receipt says other than what the trail's records about the
    /// target (up to the receipt's last record) make of it.
    #[error("{0}")]
    Differs(String),
}

/// Checks `receipt` against the trail in `paths` (which the caller has
/// verified): every record matches its own hash and is in the trail at its
/// seq with that hash, the checkpoint covers them all (its signature
/// checked when `public_key` is given), and the receipt is the one the
/// trail makes of its target up to its last record: the same records, none
/// left out, and the same state, time, caller and policies
/// (`pseudonym_key` finds a raw target in a pseudonymized trail).
///
/// # Errors
/// The first way the receipt does not hold; a file that cannot be read.
pub fn verify_receipt(
    receipt: &Receipt,
    paths: &[PathBuf],
    public_key: Option<&[u8]>,
    pseudonym_key: Option<&PseudonymKey>,
) -> Result<Result<ReceiptCheck, ReceiptError>, FilesError> {
    let mut wanted: BTreeMap<u64, String> = BTreeMap::new();
    for record in receipt.records.iter().chain(&receipt.checkpoint) {
        let seq = number(record, "seq")
            .ok_or_else(|| ReceiptError::Unreadable("a record without seq".into()));
        let seq = match seq {
            Ok(seq) => seq,
            Err(e) => return Ok(Err(e)),
        };
        let hash = text(record, "hash");
        if chain_hash(text(record, "prev"), &canonical(record)) != hash {
            return Ok(Err(ReceiptError::Modified { seq }));
        }
        wanted.insert(seq, hash.to_owned());
    }
    // One pass: each record's hash where the receipt names its seq, and
    // the receipt the trail makes of the target up to the receipt's end.
    let end = wanted.keys().next_back().copied().unwrap_or(0);
    let filter = ReceiptBuilder::filter(&receipt.target);
    let mut builder = ReceiptBuilder::new(&filter, pseudonym_key);
    let mut found: BTreeMap<u64, String> = BTreeMap::new();
    for_each_record(paths, |record| {
        let seq = number(&record, "seq");
        if let Some(seq) = seq.filter(|s| wanted.contains_key(s)) {
            found.insert(seq, text(&record, "hash").to_owned());
        }
        if seq.is_some_and(|seq| seq <= end) {
            builder.add(record);
        }
    })?;
    for (seq, hash) in &wanted {
        match found.get(seq) {
            Some(there) if there == hash => {}
            other => {
                return Ok(Err(ReceiptError::NotInTrail {
                    seq: *seq,
                    found: other.map_or_else(|| "no record".to_owned(), |h| format!("hash {h}")),
                }))
            }
        }
    }
    if let Err(differs) = same_as_trail(receipt, &builder.finish(), pseudonym_key.is_none()) {
        return Ok(Err(differs));
    }
    let mut signature_checked = false;
    if let Some(cp) = &receipt.checkpoint {
        let head = number(cp, "head_seq").unwrap_or(0);
        if let Some(seq) = receipt
            .records
            .iter()
            .filter_map(|r| number(r, "seq"))
            .find(|seq| *seq > head)
        {
            return Ok(Err(ReceiptError::NotCovered { head, seq }));
        }
        if let Some(key) = public_key {
            if let Err(e) = checkpoint::verify_record(cp, key) {
                return Ok(Err(ReceiptError::Signature(e.to_string())));
            }
            signature_checked = true;
        }
    }
    Ok(Ok(ReceiptCheck {
        records: receipt.records.len(),
        signature_checked,
    }))
}

/// Whether `receipt` is `trail`, the receipt the trail makes of its target
/// from the records up to the receipt's last one (its checkpoint
/// included): records written later, such as a completion, are not held
/// against it. `keyless`: no pseudonym key was given.
fn same_as_trail(receipt: &Receipt, trail: &Receipt, keyless: bool) -> Result<(), ReceiptError> {
    let seqs = |records: &[Map<String, Value>]| -> Vec<u64> {
        records.iter().filter_map(|r| number(r, "seq")).collect()
    };
    let (held, made) = (seqs(&receipt.records), seqs(&trail.records));
    let differs = |what: String| Err(ReceiptError::Differs(what));
    if held != made {
        let left_out: Vec<String> = made
            .iter()
            .filter(|s| !held.contains(s))
            .map(u64::to_string)
            .collect();
        let foreign: Vec<String> = held
            .iter()
            .filter(|s| !made.contains(s))
            .map(u64::to_string)
            .collect();
        let mut what = format!(
            "the receipt's records are not the trail's records about {}",
            receipt.target
        );
        if !left_out.is_empty() {
            what.push_str(&format!("; left out: seq {}", left_out.join(", ")));
        }
        if !foreign.is_empty() {
            what.push_str(&format!("; not about it: seq {}", foreign.join(", ")));
        }
        if made.is_empty() && keyless {
            what.push_str(" (a pseudonymized trail needs --pseudonym-key)");
        }
        return differs(what);
    }
    let fields: [(&str, String, String); 4] = [
        ("state", receipt.state.clone(), trail.state.clone()),
        (
            "erased_at",
            format!("{:?}", receipt.erased_at),
            format!("{:?}", trail.erased_at),
        ),
        ("by", format!("{:?}", receipt.by), format!("{:?}", trail.by)),
        (
            "policies",
            receipt.policies.join(", "),
            trail.policies.join(", "),
        ),
    ];
    for (field, says, made) in fields {
        if says != made {
            return differs(format!(
                "the receipt says {field} {says}; its records say {made}"
            ));
        }
    }
    if receipt.checkpoint != trail.checkpoint {
        return differs("the receipt's checkpoint is not the newest one after its records".into());
    }
    Ok(())
}
