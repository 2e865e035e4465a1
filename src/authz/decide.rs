//! Deciding one erasure call against a snapshot: one Cedar request per
//! target, all or nothing, and any evaluation error a deny.

use cedar_policy::{Authorizer, Context, Decision as CedarDecision, Entities, EntityUid, Request};
use serde::Serialize;

use super::{uid, PolicySnapshot, Target};

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

impl PolicySnapshot {
    /// Decides an erasure call: one Cedar request per target; a target is
    /// allowed only on an `Allow` without any evaluation error; the call only
    /// if every target is allowed.
    pub fn decide(&self, input: &DecisionInput<'_>) -> Decision {
        let denied_all = |reason: String| Decision {
            allowed: false,
            targets: input
                .targets
                .iter()
                .map(|t| TargetDecision {
                    entity_type: t.entity_type.clone(),
                    id: t.id.clone(),
                    allowed: false,
                    policies: Vec::new(),
                    errors: vec![reason.clone()],
                })
                .collect(),
            reasons: vec![reason],
            policy_version: self.version.clone(),
        };
        if input.targets.is_empty() {
            return denied_all("the call names no target".into());
        }
        let action = match uid(&format!("{}::Action", input.namespace), input.action) {
            Ok(action) => action,
            Err(e) => return denied_all(format!("action: {e}")),
        };
        let principal = match uid("Gateway::Caller", input.principal.id) {
            Ok(principal) => principal,
            Err(e) => return denied_all(format!("principal: {e}")),
        };
        let context =
            match Context::from_json_value(input.context.clone(), Some((&self.schema, &action))) {
                Ok(context) => context,
                Err(e) => return denied_all(format!("context does not fit the schema: {e}")),
            };
        let entities = match self.request_entities(input) {
            Ok(entities) => entities,
            Err(e) => return denied_all(e),
        };

        let authorizer = Authorizer::new();
        let mut targets = Vec::with_capacity(input.targets.len());
        for target in input.targets {
            targets.push(self.decide_target(
                &authorizer,
                &entities,
                &principal,
                &action,
                &context,
                target,
            ));
        }
        let allowed = targets.iter().all(|t| t.allowed);
        let reasons = if allowed {
            Vec::new()
        } else {
            denial_reasons(&targets)
        };
        Decision {
            allowed,
            targets,
            reasons,
            policy_version: self.version.clone(),
        }
    }

    fn decide_target(
        &self,
        authorizer: &Authorizer,
        entities: &Entities,
        principal: &EntityUid,
        action: &EntityUid,
        context: &Context,
        target: &Target,
    ) -> TargetDecision {
        let mut decision = TargetDecision {
            entity_type: target.entity_type.clone(),
            id: target.id.clone(),
            allowed: false,
            policies: Vec::new(),
            errors: Vec::new(),
        };
        let request = uid(&target.entity_type, &target.id)
            .map_err(|e| format!("resource: {e}"))
            .and_then(|resource| {
                Request::new(
                    principal.clone(),
                    action.clone(),
                    resource,
                    context.clone(),
                    Some(&self.schema),
                )
                .map_err(|e| format!("request does not fit the schema: {e}"))
            });
        let request = match request {
            Ok(request) => request,
            Err(e) => {
                decision.errors.push(e);
                return decision;
            }
        };
        let response = authorizer.is_authorized(&request, &self.policies, entities);
        decision.policies = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        decision.policies.sort_unstable();
        decision.errors = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        // Cedar skips a policy whose evaluation errors; a skipped forbid
        // could let the call through, so any error is a deny.
        decision.allowed =
            response.decision() == CedarDecision::Allow && decision.errors.is_empty();
        decision
    }

    /// The snapshot's entities plus the caller (with its roles as parents)
    /// and whatever was fetched for this call.
    fn request_entities(&self, input: &DecisionInput<'_>) -> Result<Entities, String> {
        let parents: Vec<serde_json::Value> = input
            .principal
            .roles
            .iter()
            .map(|role| serde_json::json!({"type": "Gateway::Role", "id": role}))
            .collect();
        let mut added = vec![serde_json::json!({
            "uid": {"type": "Gateway::Caller", "id": input.principal.id},
            "attrs": {},
            "parents": parents,
        })];
        added.extend(input.extra_entities.iter().cloned());
        self.entities
            .clone()
            .add_entities_from_json_value(serde_json::Value::Array(added), Some(&self.schema))
            .map_err(|e| format!("entity data rejected: {e}"))
    }
}

fn denial_reasons(targets: &[TargetDecision]) -> Vec<String> {
    let mut reasons = Vec::new();
    for t in targets.iter().filter(|t| !t.allowed) {
        let reason = if !t.errors.is_empty() {
            format!("{}: policy evaluation failed", t.entity_type)
        } else if t.policies.is_empty() {
            format!("{}: no policy permits this erasure", t.entity_type)
        } else {
            format!("{}: forbidden by {}", t.entity_type, t.policies.join(", "))
        };
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    reasons
}
