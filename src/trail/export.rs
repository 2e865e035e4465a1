//! `audit export`: the trail in the schemas SIEMs already read — OCSF
//! (API Activity, class 6003) or Elastic Common Schema — or as the plain
//! JSON Lines it is. Every exported event keeps the record's `seq`, `prev`
//! and `hash`, and the original line itself (OCSF `raw_data`, ECS
//! `event.original`), so the chain can still be checked after export.

use std::io::{self, Write};
use std::path::PathBuf;

use serde_json::{json, Map, Value};

use super::files::{self, FilesError};
use super::record::kind;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Open Cybersecurity Schema Framework 1.1: API Activity (6003).
    Ocsf,
    /// Elastic Common Schema 8.
    Ecs,
    /// The trail's own lines, unchanged.
    Jsonl,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    /// Events written.
    pub events: u64,
    /// The `seq` of the last record written.
    pub last_seq: Option<u64>,
}

/// Writes every record of the trail in `paths` to `out` in `format`, one
/// JSON object per line. Lines that are not records are skipped (`audit
/// verify` names them).
///
/// # Errors
/// A file cannot be read, or `out` cannot be written.
pub fn export_files(
    paths: &[PathBuf],
    format: Format,
    out: &mut impl Write,
) -> Result<Exported, FilesError> {
    let mut written = Exported::default();
    files::for_each_line(paths, |path, line| {
        let Some(line) = line else { return Ok(()) };
        let Some(event) = export_line(format, line) else {
            return Ok(());
        };
        let failed = |source| FilesError {
            path: path.to_owned(),
            source,
        };
        out.write_all(event.as_bytes()).map_err(failed)?;
        out.write_all(b"\n").map_err(failed)?;
        written.events += 1;
        written.last_seq = seq_of(line).or(written.last_seq);
        Ok::<(), FilesError>(())
    })?;
    Ok(written)
}

/// One trail line as one event in `format`; `None` for a line that is not a
/// record.
#[must_use]
pub fn export_line(format: Format, line: &[u8]) -> Option<String> {
    let original = std::str::from_utf8(line).ok()?.trim_end();
    let record: Map<String, Value> = serde_json::from_str(original).ok()?;
    let event = match format {
        Format::Jsonl => return Some(original.to_owned()),
        Format::Ocsf => ocsf(&record, original),
        Format::Ecs => ecs(&record, original),
    };
    Some(event.to_string())
}

fn seq_of(line: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(line).ok().map(|s| s.seq)
}

/// A writer that turns the trail lines written into it into events in
/// `format` (for `--follow`, behind [`super::tail::tail`]), skipping the
/// records up to a `seq` already exported.
pub struct Exporter<W> {
    format: Format,
    out: W,
    partial: Vec<u8>,
    after: Option<u64>,
}

impl<W: Write> Exporter<W> {
    /// Exports into `out` the records after seq `after`.
    pub fn new(format: Format, out: W, after: Option<u64>) -> Self {
        Self {
            format,
            out,
            partial: Vec::new(),
            after,
        }
    }
}

impl<W: Write> Write for Exporter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            if self
                .after
                .is_some_and(|after| seq_of(&line).is_some_and(|seq| seq <= after))
            {
                continue;
            }
            if let Some(event) = export_line(self.format, &line) {
                self.out.write_all(event.as_bytes())?;
                self.out.write_all(b"\n")?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn text<'r>(record: &'r Map<String, Value>, field: &str) -> &'r str {
    record.get(field).and_then(Value::as_str).unwrap_or("")
}

/// The record's time as Unix milliseconds (OCSF `time`).
fn epoch_ms(record: &Map<String, Value>) -> Option<u64> {
    let time = humantime::parse_rfc3339(text(record, "time")).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

/// The chain fields, which every exported event keeps.
fn chain(record: &Map<String, Value>) -> Value {
    json!({
        "kind": record.get("kind"),
        "seq": record.get("seq"),
        "prev": record.get("prev"),
        "hash": record.get("hash"),
        "replica": record.get("replica"),
        "decision_id": record.get("decision_id"),
    })
}

/// The determining policies of every target, first seen first.
fn policies(record: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let targets = record.get("targets").and_then(Value::as_array);
    for policy in targets
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("policies")?.as_array())
        .flatten()
        .filter_map(Value::as_str)
    {
        if !out.iter().any(|p| p == policy) {
            out.push(policy.to_owned());
        }
    }
    out
}

/// Whether the record tells of something that went as asked: an allowed
/// and forwarded call, a 2xx answer, a completed erasure, an approval.
fn succeeded(record: &Map<String, Value>) -> bool {
    match text(record, "kind") {
        kind::DECISION => text(record, "effect") == "forwarded",
        kind::OUTCOME => record
            .get("status")
            .and_then(Value::as_u64)
            .is_some_and(|s| (200..300).contains(&s)),
        kind::COMPLETION => matches!(text(record, "state"), "completed" | "in_progress"),
        kind::APPROVAL => text(record, "state") == "approved",
        _ => true,
    }
}

fn principal(record: &Map<String, Value>) -> Option<&Map<String, Value>> {
    record
        .get("principal")
        .or_else(|| record.get("approver"))
        .and_then(Value::as_object)
}

fn ocsf(record: &Map<String, Value>, original: &str) -> Value {
    let kind = text(record, "kind");
    // API Activity's activities: 4 Delete for an erasure decision, 99 Other
    // for the records that follow it.
    let (activity_id, activity) = if kind == kind::DECISION {
        (4, "Delete")
    } else {
        (99, "Other")
    };
    let ok = succeeded(record);
    let user = principal(record).map(|p| {
        json!({
            "uid": p.get("id"),
            "type": p.get("source"),
            "groups": p.get("roles").and_then(Value::as_array).map(|roles| {
                roles.iter().map(|r| json!({"name": r})).collect::<Vec<_>>()
            }),
        })
    });
    let resources: Vec<Value> = record
        .get("targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            json!({
                "type": t.get("type"),
                "uid": t.get("id"),
                "data": {"decision": t.get("decision"), "state": t.get("state"), "policies": t.get("policies")},
            })
        })
        .collect();
    let policies = policies(record);
    json!({
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": 6003 * 100 + activity_id,
        "type_name": format!("API Activity: {activity}"),
        "time": epoch_ms(record),
        "severity_id": if ok { 1 } else { 3 },
        "status_id": if ok { 1 } else { 2 },
        "status": if ok { "Success" } else { "Failure" },
        "status_code": record.get("status").map(ToString::to_string),
        "message": format!("{kind} {}", text(record, "decision")).trim_end().to_owned(),
        "metadata": {
            "version": "1.1.0",
            "product": {"name": "erasure-gateway", "vendor_name": "erasure-gateway", "version": env!("CARGO_PKG_VERSION")},
            "log_name": "decision_trail",
            "uid": record.get("hash"),
            "correlation_uid": record.get("decision_id"),
            "sequence": record.get("seq"),
        },
        "actor": {"user": user},
        "src_endpoint": {"ip": record.get("client").and_then(|c| c.get("ip"))},
        "api": {
            "operation": record.get("action"),
            "request": {"uid": record.get("request_id")},
            "response": {"code": record.get("status")},
            "service": {"name": record.get("vendor")},
        },
        "resources": resources,
        "policy": {
            "uid": policies.first(),
            "name": policies.join(", "),
            "version": record.get("policy_version"),
            "desc": record.get("reasons"),
        },
        "unmapped": chain(record),
        "raw_data": original,
    })
}

fn ecs(record: &Map<String, Value>, original: &str) -> Value {
    let kind = text(record, "kind");
    let ok = succeeded(record);
    let event_type: Vec<&str> = match kind {
        kind::DECISION => vec!["deletion", if ok { "allowed" } else { "denied" }],
        kind::APPROVAL => vec!["change"],
        _ => vec!["info"],
    };
    let user = principal(record).map(|p| json!({"id": p.get("id"), "roles": p.get("roles")}));
    let policies = policies(record);
    json!({
        "@timestamp": record.get("time"),
        "ecs": {"version": "8.11.0"},
        "event": {
            "kind": "event",
            "category": ["iam"],
            "type": event_type,
            "action": format!("erasure-{kind}"),
            "outcome": if ok { "success" } else { "failure" },
            "id": record.get("hash"),
            "sequence": record.get("seq"),
            "dataset": "erasure_gateway.trail",
            "reason": record.get("reasons").and_then(Value::as_array).map(|r| {
                r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")
            }),
            "original": original,
        },
        "rule": {
            "id": policies.first(),
            "name": policies.join(", "),
            "version": record.get("policy_version"),
        },
        "user": user,
        "source": {"ip": record.get("client").and_then(|c| c.get("ip"))},
        "service": {"name": record.get("vendor")},
        "http": {"response": {"status_code": record.get("status")}},
        "trace": {"id": record.get("request_id")},
        "erasure_gateway": {
            "chain": chain(record),
            "decision": record.get("decision"),
            "effect": record.get("effect"),
            "state": record.get("state"),
            "vendor_request_id": record.get("vendor_request_id"),
            "targets": record.get("targets"),
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DECISION: &str = r#"{"kind":"decision","decision_id":"d-1","request_id":"r-1","vendor":"kore","action":"Kore::Action::\"eraseUsersData\"","principal":{"id":"ops","roles":["privacy-officer"],"source":"token"},"client":{"ip":"10.0.0.7","cert":false},"targets":[{"type":"Kore::User","id":"u-1","decision":"deny","policies":["kore-never-erase-account-owners"]}],"decision":"deny","effect":"refused","status":403,"reasons":["policy"],"policy_version":"sha256:ab","time":"2026-12-03T10:00:00.000Z","seq":7,"prev":"aa","hash":"bb"}"#;

    fn event(format: Format) -> Value {
        serde_json::from_str(&export_line(format, DECISION.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn ocsf_is_an_api_activity_delete_with_actor_source_resources_and_policy() {
        let e = event(Format::Ocsf);
        assert_eq!(e["class_uid"], 6003);
        assert_eq!(e["type_uid"], 600_304);
        assert_eq!(e["time"], 1_796_292_000_000_u64);
        assert_eq!(e["status"], "Failure");
        assert_eq!(e["actor"]["user"]["uid"], "ops");
        assert_eq!(e["actor"]["user"]["groups"][0]["name"], "privacy-officer");
        assert_eq!(e["src_endpoint"]["ip"], "10.0.0.7");
        assert_eq!(e["resources"][0]["uid"], "u-1");
        assert_eq!(e["policy"]["uid"], "kore-never-erase-account-owners");
        assert_eq!(e["unmapped"]["seq"], 7);
        assert_eq!(e["unmapped"]["prev"], "aa");
        assert_eq!(e["unmapped"]["hash"], "bb");
        assert_eq!(e["raw_data"], DECISION);
    }

    #[test]
    fn ecs_names_the_outcome_rule_user_and_source_and_keeps_the_original() {
        let e = event(Format::Ecs);
        assert_eq!(e["event"]["type"], json!(["deletion", "denied"]));
        assert_eq!(e["event"]["outcome"], "failure");
        assert_eq!(e["rule"]["id"], "kore-never-erase-account-owners");
        assert_eq!(e["user"]["id"], "ops");
        assert_eq!(e["source"]["ip"], "10.0.0.7");
        assert_eq!(e["erasure_gateway"]["chain"]["hash"], "bb");
        assert_eq!(e["event"]["original"], DECISION);
    }

    #[test]
    fn the_exporter_converts_whole_lines_only_and_skips_what_is_not_a_record() {
        let mut out = Vec::new();
        let mut exporter = Exporter::new(Format::Jsonl, &mut out, Some(6));
        let (head, rest) = DECISION.split_at(20);
        exporter.write_all(head.as_bytes()).unwrap();
        exporter.write_all(rest.as_bytes()).unwrap();
        exporter.write_all(b"\nnot json\n").unwrap();
        let older = DECISION.replace("\"seq\":7", "\"seq\":6");
        exporter.write_all(format!("{older}\n").as_bytes()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format!("{DECISION}\n"));
    }
}
