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
            let Ok(record) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            if record["kind"] != "decision" {
                continue;
            }
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
fn replay_one(record: &Value, candidate: &PolicySnapshot) -> Option<Option<Flip>> {
    if record["pseudonymized"] == true {
        return None;
    }
    let principal = record["principal"].as_object()?;
    let caller = principal.get("id")?.as_str()?;
    let roles: Vec<String> = principal
        .get("roles")?
        .as_array()?
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    // Only calls that reached Cedar: a refusal before it has no context.
    if record["context"]
        .as_object()
        .is_none_or(serde_json::Map::is_empty)
    {
        return None;
    }
    let (namespace, action) = parse_action(record["action"].as_str()?)?;
    let targets: Vec<Target> = record["targets"]
        .as_array()?
        .iter()
        .filter_map(|t| Some(Target::exact(t["type"].as_str()?, t["id"].as_str()?)))
        .collect();
    if targets.is_empty() {
        return None;
    }
    let decision = candidate.decide(&DecisionInput {
        principal: Principal {
            id: caller,
            roles: &roles,
        },
        namespace: &namespace,
        action: &action,
        targets: &targets,
        context: record["context"].clone(),
        extra_entities: Vec::new(),
    });
    let recorded = record["decision"].as_str()?.to_owned();
    let replayed = if decision.allowed { "allow" } else { "deny" };
    if recorded == replayed {
        return Some(None);
    }
    let policies = if decision.allowed {
        // What stopped it before no longer does.
        let mut ids: Vec<String> = record["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["policies"].as_array().into_iter().flatten())
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    } else {
        decision.policies().into_iter().map(str::to_owned).collect()
    };
    Some(Some(Flip {
        request_id: record["request_id"].as_str().unwrap_or_default().to_owned(),
        time: record["time"].as_str().unwrap_or_default().to_owned(),
        caller: caller.to_owned(),
        targets: targets
            .iter()
            .map(|t| format!("{}::{:?}", t.entity_type, t.id))
            .collect(),
        recorded,
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
