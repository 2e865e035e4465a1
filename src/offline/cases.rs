//! `policy test`: the cases in `policies/tests/*.toml`, each a described
//! request and the decision it must get, run through the same path as live
//! traffic.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::authz::PolicySnapshot;
use crate::offline::described::{DescribedRequest, Explanation};
use crate::pipeline::evaluate::Evaluator;
use crate::profile::VendorProfile;

/// A file of test cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(rename = "case", default)]
    cases: Vec<Case>,
}

/// One test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows, as a sentence.
    pub name: String,
    /// The request.
    pub request: DescribedRequest,
    /// What must happen.
    pub expect: Expect,
}

/// The expected outcome of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `allow`, `deny` or `pass-through`.
    pub decision: String,
    /// The determining policy ids (all targets together), when given.
    #[serde(default)]
    pub policies: Option<Vec<String>>,
    /// A phrase the reasons (or the refusal) must contain, when given.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The file it came from.
    pub file: PathBuf,
    /// The case's name.
    pub name: String,
    /// `None` when it passed; what differed when it failed.
    pub failure: Option<String>,
}

/// Cases could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CaseError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// Loads every `*.toml` case file in `dir/tests`, sorted by name.
///
/// # Errors
/// A file cannot be read or parsed (naming the file and line).
pub fn load_cases(dir: &Path) -> Result<Vec<(PathBuf, Case)>, CaseError> {
    let tests = dir.join("tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&tests)
        .map_err(|e| CaseError {
            path: tests.clone(),
            message: e.to_string(),
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| CaseError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let file: CaseFile = toml::from_str(&text).map_err(|e| CaseError {
            path: path.clone(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        cases.extend(file.cases.into_iter().map(|c| (path.clone(), c)));
    }
    Ok(cases)
}

/// Runs cases against a snapshot; `profile` finds a vendor profile by name.
pub async fn run(
    cases: &[(PathBuf, Case)],
    snapshot: &PolicySnapshot,
    evaluator: &Evaluator,
    profile: impl Fn(&str) -> Option<VendorProfile>,
) -> Vec<CaseResult> {
    let mut results = Vec::with_capacity(cases.len());
    for (file, case) in cases {
        let failure = match profile(&case.request.vendor) {
            None => Some(format!("no vendor profile `{}`", case.request.vendor)),
            Some(profile) => match case.request.explain(&profile, evaluator, snapshot).await {
                Err(e) => Some(format!("the request cannot be built: {e}")),
                Ok(explanation) => compare(&case.expect, &explanation),
            },
        };
        results.push(CaseResult {
            file: file.clone(),
            name: case.name.clone(),
            failure,
        });
    }
    results
}

fn compare(expect: &Expect, got: &Explanation) -> Option<String> {
    let mut differences = Vec::new();
    if expect.decision != got.decision {
        differences.push(format!(
            "decision: expected {}, got {}",
            expect.decision, got.decision
        ));
    }
    if let Some(policies) = &expect.policies {
        let mut want = policies.clone();
        want.sort_unstable();
        let actual = got.policies();
        if want != actual {
            differences.push(format!(
                "policies: expected [{}], got [{}]",
                want.join(", "),
                actual.join(", ")
            ));
        }
    }
    if let Some(phrase) = &expect.reason {
        let refusal = got
            .refusal
            .as_ref()
            .and_then(|r| r["message"].as_str())
            .unwrap_or_default();
        if !got.reasons.iter().any(|r| r.contains(phrase.as_str()))
            && !refusal.contains(phrase.as_str())
        {
            differences.push(format!(
                "reason: expected one containing {phrase:?}, got {:?}",
                got.reasons
            ));
        }
    }
    if differences.is_empty() {
        None
    } else {
        // Enough to see why; a bulk case has dozens of identical targets.
        let shown = 5;
        let more = got.targets.len().saturating_sub(shown);
        let why = got
            .targets
            .iter()
            .take(shown)
            .map(|t| {
                format!(
                    "{}::{:?} {} by [{}]{}",
                    t.entity_type,
                    t.id,
                    if t.allowed { "allowed" } else { "denied" },
                    t.policies.join(", "),
                    if t.errors.is_empty() {
                        String::new()
                    } else {
                        format!(" errors: {}", t.errors.join("; "))
                    }
                )
            })
            .chain((more > 0).then(|| format!("… and {more} more targets")))
            .chain(got.reasons.iter().map(|r| format!("reason: {r}")))
            .collect::<Vec<_>>()
            .join("\n      ");
        Some(format!("{}\n      {why}", differences.join("\n    ")))
    }
}
