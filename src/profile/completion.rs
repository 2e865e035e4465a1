//! A vendor's status API for erasures it carries out later (Kore.ai's
//! "Delete Customer Data Status API"): which calls are status calls, and
//! what their answers say about each target.

use http::Method;
use serde_json::Value;

use super::definition::{CompletionRule, IdForm};
use super::path::PathPattern;
use super::vendor::VendorProfile;

/// The capture of a status path that holds the vendor's request id.
pub const REQUEST_ID_CAPTURE: &str = "request_id";

/// Where one target stands, as a status answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Its data was erased.
    Succeeded,
    /// It was not, and will not be.
    Failed,
    /// Not yet known.
    Pending,
}

impl TargetState {
    /// The trail's word for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Pending => "pending",
        }
    }
}

/// One target's status in a status answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    /// Its id, in the form the vendor compares ids in.
    pub id: String,
    /// The vendor's own word.
    pub status: String,
    /// What that word means.
    pub state: TargetState,
}

/// A status answer, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusAnswer {
    /// Each target's status, in the vendor's order.
    pub targets: Vec<TargetStatus>,
}

impl StatusAnswer {
    /// `completed` when every target succeeded, `failed` when every target
    /// is terminal and one failed, else `in_progress` (also for an answer
    /// naming no target).
    #[must_use]
    pub fn state(&self) -> &'static str {
        if self.targets.is_empty() || !self.is_terminal() {
            "in_progress"
        } else if self
            .targets
            .iter()
            .all(|t| t.state == TargetState::Succeeded)
        {
            "completed"
        } else {
            "failed"
        }
    }

    /// Whether every target has a final status.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        !self.targets.is_empty() && self.targets.iter().all(|t| t.state != TargetState::Pending)
    }
}

/// Parses and checks `rule.path`: one `{request_id}` capture and nothing
/// else captured.
pub(super) fn compile(rule: &CompletionRule) -> Result<PathPattern, (&'static str, String)> {
    let pattern = PathPattern::parse(&rule.path).map_err(|reason| ("path", reason))?;
    let captures: Vec<&str> = pattern.captures().collect();
    if captures != [REQUEST_ID_CAPTURE] {
        return Err((
            "path",
            format!("must capture exactly one segment, `{{{REQUEST_ID_CAPTURE}}}`"),
        ));
    }
    if !rule.targets_pointer.is_empty() && !rule.targets_pointer.starts_with('/') {
        return Err((
            "targets_pointer",
            "must be a JSON pointer (`/response`)".into(),
        ));
    }
    if rule.target_id.is_empty() || rule.target_status.is_empty() {
        return Err((
            "target_id",
            "target_id and target_status must name members".into(),
        ));
    }
    if rule.succeeded.is_empty() {
        return Err(("succeeded", "must name at least one status".into()));
    }
    Ok(pattern)
}

impl VendorProfile {
    /// The vendor request id a status call asks about, when `method` and the
    /// raw routed `path` are exactly the profile's status call.
    #[must_use]
    pub fn status_call(&self, method: &Method, path: &str) -> Option<String> {
        let pattern = self.completion_pattern()?;
        if method != Method::GET {
            return None;
        }
        pattern
            .canonical_captures(path)
            .ok()?
            .remove(REQUEST_ID_CAPTURE)
            .filter(|id| !id.is_empty())
    }

    /// The status call's path for a vendor request id.
    #[must_use]
    pub fn status_path(&self, vendor_request_id: &str) -> Option<String> {
        let pattern = self.completion_pattern()?;
        let captures = [(REQUEST_ID_CAPTURE.to_owned(), vendor_request_id.to_owned())].into();
        Some(pattern.render(&captures))
    }

    /// Reads a status answer's body; `None` when it does not have the
    /// profile's shape.
    #[must_use]
    pub fn read_status(&self, body: &[u8]) -> Option<StatusAnswer> {
        let rule = self.completion.as_ref()?;
        let value: Value = serde_json::from_slice(body).ok()?;
        let items = value.pointer(&rule.targets_pointer)?.as_array()?;
        let form = self.completion_id_form();
        let is =
            |list: &[String], status: &str| list.iter().any(|s| s.eq_ignore_ascii_case(status));
        let targets = items
            .iter()
            .map(|item| {
                let id = item.get(&rule.target_id)?.as_str()?;
                let status = item.get(&rule.target_status)?.as_str()?;
                let state = if is(&rule.succeeded, status) {
                    TargetState::Succeeded
                } else if is(&rule.failed, status) {
                    TargetState::Failed
                } else {
                    TargetState::Pending
                };
                Some(TargetStatus {
                    id: form.apply(id),
                    status: status.to_owned(),
                    state,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(StatusAnswer { targets })
    }

    /// The completion targets' qualified entity type.
    #[must_use]
    pub fn completion_entity_type(&self) -> Option<String> {
        let rule = self.completion.as_ref()?;
        let name = rule
            .entity_type
            .as_deref()
            .or_else(|| self.targets.first().map(|t| t.entity_type.as_str()))?;
        Some(self.qualified(name))
    }

    fn completion_id_form(&self) -> IdForm {
        let rule = self.completion.as_ref();
        let wanted = rule.and_then(|r| r.entity_type.as_deref());
        self.targets
            .iter()
            .find(|t| wanted.is_none_or(|w| w == t.entity_type))
            .map_or(IdForm::Exact, |t| t.id_form)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kore() -> VendorProfile {
        crate::profile::builtin("kore").unwrap()
    }

    #[test]
    fn the_kore_status_call_is_recognised_by_method_and_exact_path() {
        let kore = kore();
        let path = "/api/public/bot/eraseUsersData/status/eud-1";
        assert_eq!(
            kore.status_call(&Method::GET, path).as_deref(),
            Some("eud-1")
        );
        assert_eq!(kore.status_call(&Method::POST, path), None);
        assert_eq!(
            kore.status_call(&Method::GET, "/api/public/bot/eraseUsersData"),
            None
        );
        assert_eq!(
            kore.status_call(&Method::GET, "/api/public/bot/eraseUsersData/status/"),
            None
        );
        assert_eq!(
            kore.status_path("eud-1").as_deref(),
            Some("/api/public/bot/eraseUsersData/status/eud-1")
        );
        let seam = crate::profile::builtin("seam").unwrap();
        assert_eq!(seam.status_call(&Method::GET, path), None);
    }

    #[test]
    fn a_status_answer_is_read_per_target_in_the_vendors_id_form() {
        let answer = kore()
            .read_status(
                br#"{"response":[{"userId":"Ann@Example.com","status":"SUCCESS"},{"userId":"u-2","status":"IN_PROGRESS"}]}"#,
            )
            .unwrap();
        assert_eq!(answer.targets[0].id, "ann@example.com");
        assert_eq!(answer.targets[0].state, TargetState::Succeeded);
        assert_eq!(answer.targets[1].state, TargetState::Pending);
        assert_eq!(answer.state(), "in_progress");
        let done = kore()
            .read_status(br#"{"response":[{"userId":"u-1","status":"success"},{"userId":"u-2","status":"FAILED"}]}"#)
            .unwrap();
        assert!(done.is_terminal());
        assert_eq!(done.state(), "failed");
        assert_eq!(kore().read_status(br#"{"response":"nope"}"#), None);
        assert_eq!(kore().read_status(b"not json"), None);
    }
}
