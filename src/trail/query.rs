//! `audit query`: finds decisions in a trail by time, decision, vendor,
//! caller, target or policy ([`super::filter`]), joins each with its
//! outcome, and hands the rows to [`super::render`] as a table, JSON lines
//! or CSV.
//!
//! A query reads; it does **not** verify the chain (that is
//! [`super::verify::verify_files`]): run `audit verify` first when the answer
//! must be evidence. A malformed line is skipped and counted, not fatal.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value};

use super::files::{self, FilesError};
use super::filter::{Matcher, QueryFilter, Unjudged};
use super::pseudonym::PseudonymKey;
use super::record::{kind, CompletionRecord, DecisionRecord, OutcomeRecord, Sealed};

/// One decision with its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// When it was decided.
    pub time: String,
    /// The client's request id (`x-request-id`); clients may reuse one.
    pub request_id: String,
    /// The gateway-made id linking the decision to its outcome; `None` in
    /// trails written before it existed (they link by `request_id`).
    pub decision_id: Option<String>,
    /// The vendor profile.
    pub vendor: String,
    /// The principal's id; `-` when the call was refused before the caller
    /// was identified.
    pub caller: String,
    /// Every target as `type::id`.
    pub targets: Vec<String>,
    /// `allow` or `deny`.
    pub decision: String,
    /// `enforce` or `shadow`.
    pub mode: String,
    /// `forwarded` or `refused`.
    pub effect: String,
    /// The policies that determined any target's decision, first seen first.
    pub policies: Vec<String>,
    /// The reasons recorded.
    pub reasons: Vec<String>,
    /// The upstream's (or gateway's 502/504) status from the outcome, or the
    /// status of the refusal.
    pub status: Option<u16>,
    /// The upstream's latency from the outcome.
    pub latency_ms: Option<u64>,
    /// The vendor's own request id from the outcome (Kore.ai's `requestId`).
    pub vendor_request_id: Option<String>,
    /// The vendor accepted the call to carry it out later.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub awaits_completion: bool,
    /// The newest completion state (`completed`, `failed`, `in_progress`,
    /// `unknown`), for a call the vendor carries out later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<String>,
}

impl Row {
    /// Forwarded, accepted by a vendor that erases later, and with no final
    /// completion yet.
    pub fn is_pending(&self) -> bool {
        is_pending(self.awaits_completion, self.completion.as_deref())
    }
}

/// Whether an erasure is pending: accepted by a vendor that carries it out
/// later (`awaits_completion`), and its newest completion state is not final.
pub fn is_pending(awaits_completion: bool, completion: Option<&str>) -> bool {
    awaits_completion && !matches!(completion, Some("completed" | "failed"))
}

/// The rows found, and what the query could not read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOutput {
    /// Matching decisions in trail order.
    pub rows: Vec<Row>,
    /// Lines that are not records (malformed, empty, too long) and were
    /// skipped.
    pub skipped_lines: u64,
    /// Warnings for the reviewer (skipped lines, unsearchable records).
    pub warnings: Vec<String>,
}

/// Lists the decisions in `paths` (files read in the given order, a
/// directory as its `*.jsonl` oldest first) that match `filter`, each joined
/// with its `outcome` (which may come later, in the same or a later file) by
/// [`JoinKey`].
/// Streams the files; only matching rows are kept. Does not verify the
/// chain.
///
/// # Errors
/// A file or directory cannot be read.
pub fn query_files(
    paths: &[PathBuf],
    filter: &QueryFilter,
    pseudonym_key: Option<&PseudonymKey>,
) -> Result<QueryOutput, FilesError> {
    let matcher = Matcher::new(filter, pseudonym_key);
    let mut output = QueryOutput::default();
    let mut awaiting_outcome: HashMap<JoinKey, usize> = HashMap::new();
    // Accepted erasures by decision id and by (vendor, vendor request id).
    let mut awaiting_completion: HashMap<String, usize> = HashMap::new();
    let mut unjudged = Unjudged::default();
    files::for_each_line(paths, |_, line| {
        let Some(bytes) = line else {
            output.skipped_lines += 1;
            return Ok(());
        };
        let Ok(record) = serde_json::from_slice::<Map<String, Value>>(bytes) else {
            output.skipped_lines += 1;
            return Ok(());
        };
        match text(&record, "kind") {
            kind::DECISION => {
                let Ok(decision) = Sealed::<DecisionRecord>::from_map(&record) else {
                    output.skipped_lines += 1;
                    return Ok(());
                };
                if matcher.matches(&decision, &mut unjudged) {
                    let key =
                        JoinKey::of(&decision.record.decision_id, &decision.record.request_id);
                    awaiting_outcome.insert(key, output.rows.len());
                    output.rows.push(row(&decision));
                }
            }
            kind::OUTCOME => {
                let Ok(outcome) = Sealed::<OutcomeRecord>::from_map(&record) else {
                    output.skipped_lines += 1;
                    return Ok(());
                };
                let outcome = outcome.record;
                let key = JoinKey::of(&outcome.decision_id, &outcome.request_id);
                if let Some(index) = awaiting_outcome.remove(&key) {
                    join_outcome(&mut output.rows[index], &outcome);
                    if let Some(id) = outcome.vendor_request_id.as_deref() {
                        if outcome.awaits_completion {
                            awaiting_completion.insert(completion_key(&outcome.vendor, id), index);
                        }
                    }
                }
            }
            kind::COMPLETION => {
                let Ok(completion) = Sealed::<CompletionRecord>::from_map(&record) else {
                    output.skipped_lines += 1;
                    return Ok(());
                };
                let completion = completion.record;
                let key = completion_key(&completion.vendor, &completion.vendor_request_id);
                if let Some(&index) = awaiting_completion.get(&key) {
                    output.rows[index].completion = Some(completion.state);
                }
            }
            _ => {}
        }
        Ok::<(), FilesError>(())
    })?;
    if filter.pending {
        output.rows.retain(Row::is_pending);
    }
    if output.skipped_lines > 0 {
        output.warnings.push(format!(
            "{} line(s) are not records and were skipped; run `audit verify` on the trail",
            output.skipped_lines
        ));
    }
    output.warnings.extend(unjudged.warnings());
    Ok(output)
}

/// What links a decision to its outcome (and later records): the
/// gateway-made `decision_id`, unique per decision; in an older trail
/// without it, the client's `request_id`, which a client may reuse.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JoinKey {
    /// The record's `decision_id`.
    Decision(String),
    /// The record's `request_id` (it has no `decision_id`).
    Request(String),
}

impl JoinKey {
    /// The key of a record with these ids (`decision_id` empty in older
    /// trails).
    pub fn of(decision_id: &str, request_id: &str) -> Self {
        if decision_id.is_empty() {
            Self::Request(request_id.to_owned())
        } else {
            Self::Decision(decision_id.to_owned())
        }
    }
}

/// What links an accepted erasure to its completion records: the vendor
/// and its own request id (a completion written after a restart has no
/// decision id).
pub fn completion_key(vendor: &str, vendor_request_id: &str) -> String {
    format!("{vendor}\0{vendor_request_id}")
}

fn text<'r>(record: &'r Map<String, Value>, field: &str) -> &'r str {
    record.get(field).and_then(Value::as_str).unwrap_or("")
}

fn row(sealed: &Sealed<DecisionRecord>) -> Row {
    let record = &sealed.record;
    let mut policies: Vec<String> = Vec::new();
    for policy in record.targets.iter().flat_map(|t| &t.policies) {
        if !policies.contains(policy) {
            policies.push(policy.clone());
        }
    }
    Row {
        time: sealed.time.clone(),
        request_id: record.request_id.clone(),
        decision_id: Some(record.decision_id.clone()).filter(|id| !id.is_empty()),
        vendor: record.vendor.clone(),
        caller: record
            .principal
            .as_ref()
            .map_or_else(|| "-".to_owned(), |p| p.id.clone()),
        targets: record
            .targets
            .iter()
            .map(|t| format!("{}::{}", t.entity_type, t.id))
            .collect(),
        decision: record.decision.clone(),
        mode: record.mode.clone(),
        effect: record.effect.clone(),
        policies,
        reasons: record.reasons.clone(),
        status: record.status,
        latency_ms: None,
        vendor_request_id: None,
        awaits_completion: false,
        completion: None,
    }
}

fn join_outcome(row: &mut Row, outcome: &OutcomeRecord) {
    row.status = Some(outcome.status);
    row.latency_ms = Some(outcome.latency_ms);
    row.vendor_request_id.clone_from(&outcome.vendor_request_id);
    row.awaits_completion = outcome.awaits_completion;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::filter::{parse_time, DecisionValue};
    use crate::trail::fixtures::write_trail;
    use serde_json::json;
    use std::path::Path;

    fn record(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            panic!("not an object: {value}")
        };
        map
    }

    #[allow(clippy::too_many_arguments)]
    fn decision(
        n: u32,
        vendor: &str,
        caller: Option<&str>,
        targets: &[(&str, &str, &[&str])],
        decision: &str,
        mode: &str,
        refused_status: Option<u16>,
    ) -> Map<String, Value> {
        let targets: Vec<Value> = targets
            .iter()
            .map(|(ty, id, policies)| {
                json!({"type": ty, "id": id, "decision": decision, "policies": policies, "errors": []})
            })
            .collect();
        let mut r = record(json!({
            "kind": "decision",
            "time": format!("2026-11-2{n}T12:00:00.250Z"),
            "replica": "a",
            "request_id": format!("req-{n}"),
            "vendor": vendor,
            "upstream": vendor,
            "action": "Kore::Action::\"eraseUsersData\"",
            "principal": caller.map(|id| json!({"id": id, "roles": [], "source": "token"})),
            "credential": {"kind": "bearer", "fingerprint": "abcdefabcdef"},
            "client": {"ip": "127.0.0.1", "cert": false},
            "targets": targets,
            "decision": decision,
            "mode": mode,
            "effect": if refused_status.is_some() { "refused" } else { "forwarded" },
            "reasons": [format!("reason {n}")],
            "context": {},
            "policy_version": "sha256:00",
        }));
        if let Some(status) = refused_status {
            r.insert("status".into(), status.into());
            r.insert("refusal".into(), "forbidden".into());
        }
        r
    }

    fn outcome(n: u32, status: u16, vendor_request_id: Option<&str>) -> Map<String, Value> {
        let mut r = record(json!({
            "kind": "outcome", "time": format!("2026-11-2{n}T12:00:01.000Z"), "replica": "a",
            "request_id": format!("req-{n}"), "vendor": "kore", "status": status, "latency_ms": 40 + n,
        }));
        if let Some(id) = vendor_request_id {
            r.insert("vendor_request_id".into(), id.into());
        }
        r
    }

    /// Three decisions over two files; the outcome of the second is in the
    /// second file.
    fn trail(dir: &Path) -> Vec<PathBuf> {
        write_trail(
            dir,
            vec![
                decision(
                    1,
                    "kore",
                    Some("privacy-ops"),
                    &[("Kore::User", "u-1", &["allow-privacy-officer"])],
                    "allow",
                    "enforce",
                    None,
                ),
                outcome(1, 200, Some("ds-1")),
                decision(
                    2,
                    "seam",
                    Some("support"),
                    &[
                        (
                            "Seam::User",
                            "alice@example.com",
                            &["allow-privacy-officer"],
                        ),
                        ("Seam::Space", "s-9", &["allow-privacy-officer"]),
                    ],
                    "allow",
                    "shadow",
                    None,
                ),
                decision(
                    3,
                    "kore",
                    None,
                    &[("Kore::User", "u-1", &["deny-anonymous"])],
                    "deny",
                    "enforce",
                    Some(403),
                ),
                outcome(2, 504, None),
            ],
            &[3],
        )
    }

    fn ids(output: &QueryOutput) -> Vec<&str> {
        output.rows.iter().map(|r| r.request_id.as_str()).collect()
    }

    fn query(paths: &[PathBuf], filter: &QueryFilter) -> QueryOutput {
        query_files(paths, filter, None).unwrap()
    }

    #[test]
    fn every_decision_is_listed_in_order_with_its_outcome_from_any_file() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let output = query(&paths, &QueryFilter::default());
        assert_eq!(ids(&output), ["req-1", "req-2", "req-3"]);
        assert!(output.warnings.is_empty());
        let [first, second, third] = &output.rows[..] else {
            panic!("three rows")
        };
        assert_eq!((first.status, first.latency_ms), (Some(200), Some(41)));
        assert_eq!(first.vendor_request_id.as_deref(), Some("ds-1"));
        assert_eq!(first.caller, "privacy-ops");
        assert_eq!(first.targets, ["Kore::User::u-1"]);
        assert_eq!((second.status, second.latency_ms), (Some(504), Some(42)));
        assert_eq!(second.policies, ["allow-privacy-officer"]);
        assert_eq!(second.targets.len(), 2);
        assert_eq!((third.status, third.latency_ms), (Some(403), None));
        assert_eq!(
            (third.caller.as_str(), third.effect.as_str()),
            ("-", "refused")
        );
        assert_eq!(third.reasons, ["reason 3"]);
    }

    #[test]
    fn each_filter_narrows_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let only = |filter: QueryFilter| -> Vec<String> {
            ids(&query(&paths, &filter))
                .into_iter()
                .map(str::to_owned)
                .collect()
        };
        let since = parse_time("2026-11-22").unwrap();
        let until = parse_time("2026-11-23T00:00:00Z").unwrap();
        let some = |text: &str| Some(text.to_owned());
        // One criterion each, and the decisions it leaves.
        type Criterion<'c> = &'c dyn Fn(&mut QueryFilter);
        let each: [(Criterion<'_>, &[&str]); 9] = [
            (&|f| f.since = Some(since), &["req-2", "req-3"]),
            (&|f| f.until = Some(until), &["req-1", "req-2"]),
            (&|f| f.decision = Some(DecisionValue::Deny), &["req-3"]),
            (&|f| f.vendor = some("seam"), &["req-2"]),
            (&|f| f.caller = some("support"), &["req-2"]),
            (&|f| f.target = some("u-1"), &["req-1", "req-3"]),
            (&|f| f.target = some("Seam::Space::s-9"), &["req-2"]),
            (&|f| f.policy = some("deny-anonymous"), &["req-3"]),
            (&|f| f.caller = some("nobody"), &[]),
        ];
        for (criterion, expected) in each {
            let mut filter = QueryFilter::default();
            criterion(&mut filter);
            assert_eq!(only(filter.clone()), expected, "{filter:?}");
        }
        // Combined: all must hold.
        let combined = QueryFilter {
            since: Some(since),
            until: Some(parse_time("2026-11-23T12:00:00.251Z").unwrap()),
            decision: Some("deny".parse().unwrap()),
            vendor: Some("kore".into()),
            target: Some("u-1".into()),
            policy: Some("deny-anonymous".into()),
            ..Default::default()
        };
        assert_eq!(only(combined.clone()), ["req-3"]);
        assert!(only(QueryFilter {
            decision: Some(DecisionValue::Allow),
            ..combined
        })
        .is_empty());
    }

    #[test]
    fn decisions_that_reuse_a_request_id_each_get_their_own_outcome_by_decision_id() {
        let dir = tempfile::tempdir().unwrap();
        let with_id = |mut record: Map<String, Value>, id: &str| {
            record.insert("decision_id".into(), id.into());
            record.insert("request_id".into(), "client-reused".into());
            record
        };
        let allow = |n| {
            decision(
                n,
                "kore",
                Some("ops"),
                &[("Kore::User", "u-1", &["p"])],
                "allow",
                "enforce",
                None,
            )
        };
        // Both calls are in flight before either outcome; the second
        // answers first.
        let paths = write_trail(
            dir.path(),
            vec![
                with_id(allow(1), "0190-first"),
                with_id(allow(2), "0190-second"),
                with_id(outcome(2, 504, None), "0190-second"),
                with_id(outcome(1, 200, Some("ds-1")), "0190-first"),
            ],
            &[],
        );
        let output = query(&paths, &QueryFilter::default());
        type Joined<'r> = (Option<&'r str>, &'r str, Option<u16>, Option<&'r str>);
        let joined: Vec<Joined<'_>> = output
            .rows
            .iter()
            .map(|r| {
                (
                    r.decision_id.as_deref(),
                    r.request_id.as_str(),
                    r.status,
                    r.vendor_request_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            joined,
            [
                (Some("0190-first"), "client-reused", Some(200), Some("ds-1")),
                (Some("0190-second"), "client-reused", Some(504), None),
            ]
        );
        // An older trail without decision ids still links by request id.
        let older = tempfile::tempdir().unwrap();
        let old = query(&trail(older.path()), &QueryFilter::default());
        assert_eq!(old.rows[0].decision_id, None);
        assert_eq!(old.rows[0].status, Some(200));
    }

    #[test]
    fn a_pseudonymized_target_is_found_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("pseudonym.key");
        std::fs::write(&key_path, "k".repeat(32)).unwrap();
        let key = PseudonymKey::load(&key_path).unwrap();
        let mut hidden = decision(
            4,
            "kore",
            Some("ops"),
            &[("Kore::User", &key.pseudonym("u-1"), &["p"])],
            "allow",
            "enforce",
            None,
        );
        hidden.insert("pseudonymized".into(), true.into());
        let trail_dir = dir.path().join("trail");
        std::fs::create_dir(&trail_dir).unwrap();
        let paths = write_trail(&trail_dir, vec![hidden], &[]);
        let filter = QueryFilter {
            target: Some("u-1".into()),
            ..Default::default()
        };
        let found = query_files(&paths, &filter, Some(&key)).unwrap();
        assert_eq!(ids(&found), ["req-4"]);
        let without_key = query(&paths, &filter);
        assert!(without_key.rows.is_empty());
        assert!(
            without_key.warnings[0].contains("pseudonym key"),
            "{:?}",
            without_key.warnings
        );
        let by_pseudonym = QueryFilter {
            target: Some(key.pseudonym("u-1")),
            ..Default::default()
        };
        assert_eq!(ids(&query(&paths, &by_pseudonym)), ["req-4"]);
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut text = std::fs::read_to_string(&paths[0]).unwrap();
        text.insert_str(0, "not json\n\n");
        text.push_str("{\"kind\":\"decis");
        std::fs::write(&paths[0], text).unwrap();
        let output = query(&paths, &QueryFilter::default());
        assert_eq!(output.rows.len(), 3);
        assert_eq!(output.skipped_lines, 3);
        assert!(
            output.warnings[0].contains("3 line(s)"),
            "{:?}",
            output.warnings
        );
    }
}
