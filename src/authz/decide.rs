//! Deciding one erasure call against a snapshot: one Cedar request per
//! target, all or nothing, and any evaluation error a deny.

use std::collections::{HashMap, HashSet};

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityUid, Policy, PolicySet,
    Request,
};
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

        let mut call = Call {
            authorizer: Authorizer::new(),
            entities,
            principal,
            action,
            context,
            by_type: HashMap::new(),
        };
        let mut targets = Vec::with_capacity(input.targets.len());
        for target in input.targets {
            targets.push(self.decide_target(&mut call, target));
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

    fn decide_target(&self, call: &mut Call, target: &Target) -> TargetDecision {
        let mut decision = TargetDecision {
            entity_type: target.entity_type.clone(),
            id: target.id.clone(),
            allowed: false,
            policies: Vec::new(),
            errors: Vec::new(),
        };
        let resource = match uid(&target.entity_type, &target.id) {
            Ok(resource) => resource,
            Err(e) => {
                decision.errors.push(format!("resource: {e}"));
                return decision;
            }
        };
        // What holds for every target of one entity type is worked out once
        // per call: whether the request fits the schema (it depends on the
        // types and the context, and for an enumerated type on the id, which
        // is then checked per target below), and the policies naming no
        // resource.
        let of_type = call
            .by_type
            .entry(target.entity_type.clone())
            .or_insert_with(|| {
                let fits = Request::new(
                    call.principal.clone(),
                    call.action.clone(),
                    resource.clone(),
                    call.context.clone(),
                    Some(&self.schema),
                )
                .map(drop)
                .map_err(|e| format!("request does not fit the schema: {e}"));
                OfType {
                    fits,
                    policies: self
                        .index
                        .for_type(&call.principal, &call.action, &resource),
                }
            });
        if let Err(e) = &of_type.fits {
            decision.errors.push(e.clone());
            return decision;
        }
        // Checked against the schema above for this entity type, unless the
        // check reads the id too (an enumerated type, or a schema whose
        // types could not be told apart): then checked for each target.
        let each = self
            .enum_types
            .as_ref()
            .is_none_or(|types| types.contains(&target.entity_type));
        let request = match Request::new(
            call.principal.clone(),
            call.action.clone(),
            resource.clone(),
            call.context.clone(),
            each.then_some(&self.schema),
        ) {
            Ok(request) => request,
            Err(e) => {
                decision
                    .errors
                    .push(format!("request does not fit the schema: {e}"));
                return decision;
            }
        };
        // The policies whose scope can hold for this target: those naming
        // no resource, and those naming this one. The whole set if the
        // index cannot answer (the same decision, slower).
        let named: Vec<&Policy> = self
            .index
            .for_resource(&call.principal, &call.action, &resource)
            .collect();
        let with_named;
        let policies = match &of_type.policies {
            Some(general) if named.is_empty() => general,
            Some(general) => {
                let all = general
                    .policies()
                    .cloned()
                    .chain(named.into_iter().cloned());
                match PolicySet::from_policies(all) {
                    Ok(set) => {
                        with_named = set;
                        &with_named
                    }
                    Err(_) => &self.policies,
                }
            }
            None => &self.policies,
        };
        let response = call
            .authorizer
            .is_authorized(&request, policies, &call.entities);
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

    /// The entities one call can reach: the caller (with its roles as
    /// parents) and whatever was fetched for the call, on a slice of the
    /// snapshot's entities. The slice holds every stored entity reachable
    /// from the call, its targets, roles, action, context, fetched entities
    /// and the policies' entity literals, through parents and entity-valued
    /// attributes and tags: all that Cedar can read while deciding, since a
    /// policy reaches an entity only through those. Its cost follows the
    /// call, not the size of the store, and nothing of the store is copied
    /// whole.
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

        let mut roots: Vec<EntityUid> = self.literals.clone();
        roots.extend(
            input
                .targets
                .iter()
                .filter_map(|t| uid(&t.entity_type, &t.id).ok()),
        );
        roots.extend(uid(&format!("{}::Action", input.namespace), input.action).ok());
        json_entity_refs(&input.context, &mut roots);
        for entity in &added {
            json_entity_refs(entity, &mut roots);
        }
        let rejected =
            |e: cedar_policy::entities_errors::EntitiesError| format!("entity data rejected: {e}");
        let (actions, mut stored) = self.slice(roots)?;
        stored.extend(added);
        Entities::from_entities(actions, None)
            .map_err(rejected)?
            .add_entities_from_json_value(serde_json::Value::Array(stored), Some(&self.schema))
            .map_err(rejected)
    }

    /// The stored entities reachable from `roots` through parents and
    /// entity-valued attributes and tags (as JSON, checked against the
    /// schema again when the call's entities are built), and the actions
    /// among them with their groups.
    fn slice(
        &self,
        mut queue: Vec<EntityUid>,
    ) -> Result<(Vec<Entity>, Vec<serde_json::Value>), String> {
        let mut seen: HashSet<EntityUid> = HashSet::new();
        let mut actions = Vec::new();
        let mut stored = Vec::new();
        while let Some(next) = queue.pop() {
            if !seen.insert(next.clone()) {
                continue;
            }
            if let Some((action, groups)) = self.entities.action(&next) {
                actions.push(action.clone());
                queue.extend(groups);
                continue;
            }
            let Some(text) = self.entities.get(&next) else {
                continue;
            };
            let entity: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| format!("stored entity {next} unreadable: {e}"))?;
            json_entity_refs(&entity, &mut queue);
            stored.push(entity);
        }
        Ok((actions, stored))
    }
}

/// Entity references in Cedar entity or context JSON: `{"__entity": {…}}`,
/// and any object with string `type` and `id` (a uid, a parent, or an
/// implicit reference). Taking one too many is harmless; missing one is not.
fn json_entity_refs(value: &serde_json::Value, out: &mut Vec<EntityUid>) {
    match value {
        serde_json::Value::Object(map) => {
            if let (Some(serde_json::Value::String(t)), Some(serde_json::Value::String(id))) =
                (map.get("type"), map.get("id"))
            {
                out.extend(uid(t, id).ok());
            }
            for v in map.values() {
                json_entity_refs(v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                json_entity_refs(v, out);
            }
        }
        _ => {}
    }
}

/// One call being decided: what its targets share.
struct Call {
    authorizer: Authorizer,
    entities: Entities,
    principal: EntityUid,
    action: EntityUid,
    context: Context,
    /// Per entity type of a target.
    by_type: HashMap<String, OfType>,
}

/// What holds for every target of one entity type in a call.
struct OfType {
    /// Whether a request for this type fits the schema.
    fits: Result<(), String>,
    /// The policies naming no resource whose scope can hold.
    policies: Option<PolicySet>,
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
