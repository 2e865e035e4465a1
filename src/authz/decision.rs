//! What a decision takes and gives: the call as Cedar decides it
//! ([`DecisionInput`]), and the verdict per target and for the whole call
//! ([`Decision`]), including whether only `@approval` forbids deny it.

use std::collections::HashMap;

use serde::Serialize;

use super::Target;

/// The caller, as a Cedar principal.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// `Gateway::Caller` id.
    pub id: &'a str,
    /// `Gateway::Role` ids the caller is in.
    pub roles: &'a [String],
}

/// Everything Cedar needs to decide one erasure call.
#[derive(Debug, Clone)]
pub struct DecisionInput<'a> {
    /// Who calls.
    pub principal: Principal<'a>,
    /// The action's namespace, e.g. `Seam`.
    pub namespace: &'a str,
    /// The action id, e.g. `delete_data`.
    pub action: &'a str,
    /// Every target of the call.
    pub targets: &'a [Target],
    /// The Cedar context (a JSON object; entity references as `__entity`).
    pub context: serde_json::Value,
    /// Entities fetched for this call (Cedar entity JSON), e.g. from the
    /// directory.
    pub extra_entities: Vec<serde_json::Value>,
}

/// The decision for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetDecision {
    /// Full entity type.
    pub entity_type: String,
    /// Entity id.
    pub id: String,
    /// Whether this target may be erased.
    pub allowed: bool,
    /// `@id`s of the policies that determined the decision.
    pub policies: Vec<String>,
    /// Evaluation errors; any error denies the target.
    pub errors: Vec<String>,
}

/// The decision for a whole erasure call: allowed only if every target is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the call may be forwarded.
    pub allowed: bool,
    /// One decision per target, in call order.
    pub targets: Vec<TargetDecision>,
    /// Human-readable reasons for a denial (empty when allowed).
    pub reasons: Vec<String>,
    /// The policy-set version the call was decided with.
    pub policy_version: String,
}

impl Decision {
    /// When only `@approval` forbids deny this call, their ids: every
    /// denied target is denied by such forbids alone, without errors. `None`
    /// for an allowed call and for any other denial.
    pub fn held_by<'a>(&'a self, approvals: &HashMap<String, String>) -> Option<Vec<&'a str>> {
        if self.allowed {
            return None;
        }
        let denied = self.targets.iter().filter(|t| !t.allowed);
        let mut held = Vec::new();
        for target in denied {
            if !target.errors.is_empty()
                || target.policies.is_empty()
                || !target.policies.iter().all(|p| approvals.contains_key(p))
            {
                return None;
            }
            held.extend(target.policies.iter().map(String::as_str));
        }
        held.sort_unstable();
        held.dedup();
        Some(held)
    }

    /// The determining policy ids of all targets, deduplicated, sorted.
    pub fn policies(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .targets
            .iter()
            .flat_map(|t| t.policies.iter().map(String::as_str))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}
