//! `policy replay`: re-decide the decisions a trail recorded with a
//! candidate policy set, and list those that would flip.
//!
//! A decision record keeps what replay needs — principal and roles, action,
//! targets, the Cedar context — and never a secret. Entities fetched from a
//! directory at the time are not recorded: replay sees the candidate set's
//! `entities.json` only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::authz::{DecisionInput, PolicySnapshot, Principal, Target};
use crate::trail::files::{trail_files, Line, LineReader};
use crate::trail::record::{kind, DecisionRecord, Sealed};

/// One decision that the candidate set would decide the other way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flip {
    /// The recorded request id.
    pub request_id: String,
    /// When it was decided.
    pub time: String,
    /// The caller.
    pub caller: String,
    /// `Type::"id"` of every target.
    pub targets: Vec<String>,
    /// `allow` or `deny`, as recorded.
    pub recorded: String,
    /// `allow` or `deny`, under the candidate set.
    pub replayed: String,
    /// The policies that decide it now (deny) or decided it before (allow).
    pub policies: Vec<String>,
}

/// What a replay found.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Decisions re-decided.
    pub replayed: usize,
    /// Records skipped: refused before a decision, or pseudonymized.
    pub skipped: usize,
    /// The decisions that flip, in trail order.
    pub flips: Vec<Flip>,
}

impl ReplayReport {
    /// The flips grouped by direction and policy, for reading.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut groups: BTreeMap<(String, String), Vec<&Flip>> = BTreeMap::new();
        for flip in &self.flips {
            let direction = format!("{} → {}", flip.recorded, flip.replayed);
            let policies = if flip.policies.is_empty() {
                "(no policy permits)".to_owned()
            } else {
                flip.policies.join(", ")
            };
            groups.entry((direction, policies)).or_default().push(flip);
        }
        let mut out = String::new();
        for ((direction, policies), flips) in &groups {
            let n = flips.len();
            let noun = if n == 1 { "decision" } else { "decisions" };
            let _ = writeln!(out, "{direction}  {policies}  ({n} {noun})");
            for flip in flips {
                let _ = writeln!(
                    out,
                    "  {}  {}  {}  {}",
                    flip.time,
                    flip.request_id,
                    flip.caller,
                    flip.targets.join(", ")
                );
            }
        }
        let _ = writeln!(
            out,
            "{} decisions replayed, {} would flip, {} records skipped",
            self.replayed,
            self.flips.len(),
            self.skipped
        );
        out
    }
}

/// Replay failed to read the trail.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReplayError(pub String);

/// Re-decides every policy decision in the trail files with `candidate`.
///
/// # Errors
/// A trail file cannot be read.
pub fn replay(paths: &[PathBuf], candidate: &PolicySnapshot) -> Result<ReplayReport, ReplayError> {
    let files = trail_files(paths).map_err(|e| ReplayError(e.to_string()))?;
    let mut report = ReplayReport::default();
    for file in files {
        let mut reader = LineReader::open(&file).map_err(|e| ReplayError(e.to_string()))?;
        while let Some(line) = reader.next_line().map_err(|e| ReplayError(e.to_string()))? {
            let Line::Complete(bytes) = line else {
                continue;
            };
            let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            if map.get("kind").and_then(Value::as_str) != Some(kind::DECISION) {
                continue;
            }
            let Ok(record) = Sealed::<DecisionRecord>::from_map(&map) else {
                report.skipped += 1;
                continue;
            };
            match replay_one(&record, candidate) {
                Some(flip) => {
                    report.replayed += 1;
                    if let Some(flip) = flip {
                        report.flips.push(flip);
                    }
                }
                None => report.skipped += 1,
            }
        }
    }
    Ok(report)
}

/// `None`: not a replayable policy decision; `Some(None)`: same decision.
fn replay_one(sealed: &Sealed<DecisionRecord>, candidate: &PolicySnapshot) -> Option<Option<Flip>> {
    let record = &sealed.record;
    if record.pseudonymized {
        return None;
    }
    let principal = record.principal.as_ref()?;
    // Only calls that reached Cedar: a refusal before it has no context.
    if record
        .context
        .as_object()
        .is_none_or(serde_json::Map::is_empty)
    {
        return None;
    }
    let (namespace, action) = parse_action(&record.action)?;
    let targets: Vec<Target> = record
        .targets
        .iter()
        .map(|t| Target::exact(t.entity_type.as_str(), t.id.as_str()))
        .collect();
    if targets.is_empty() {
        return None;
    }
    let decision = candidate.decide(&DecisionInput {
        principal: Principal {
            id: &principal.id,
            roles: &principal.roles,
        },
        namespace: &namespace,
        action: &action,
        targets: &targets,
        context: record.context.clone(),
        extra_entities: Vec::new(),
    });
    let replayed = if decision.allowed { "allow" } else { "deny" };
    if record.decision == replayed {
        return Some(None);
    }
    let policies = if decision.allowed {
        // What stopped it before no longer does.
        super::policy_union(record.targets.iter().flat_map(|t| &t.policies))
    } else {
        decision.policies().into_iter().map(str::to_owned).collect()
    };
    Some(Some(Flip {
        request_id: record.request_id.clone(),
        time: sealed.time.clone(),
        caller: principal.id.clone(),
        targets: targets
            .iter()
            .map(|t| format!("{}::{:?}", t.entity_type, t.id))
            .collect(),
        recorded: record.decision.clone(),
        replayed: replayed.to_owned(),
        policies,
    }))
}

/// `Kore::Action::"eraseUsersData"` → (`Kore`, `eraseUsersData`).
fn parse_action(text: &str) -> Option<(String, String)> {
    let (namespace, quoted) = text.split_once("::Action::")?;
    let action: String = serde_json::from_str(quoted).ok()?;
    Some((namespace.to_owned(), action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_back_from_their_cedar_form() {
        assert_eq!(
            parse_action(r#"Kore::Action::"eraseUsersData""#),
            Some(("Kore".into(), "eraseUsersData".into()))
        );
        assert_eq!(parse_action("nonsense"), None);
    }
}
