//! Deciding one erasure call against a snapshot: one Cedar request per
//! target, all or nothing, and any evaluation error a deny.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use super::decision::{Decision, DecisionInput, TargetDecision};
use super::index::PolicyIndex;
use super::{uid, PolicySnapshot, Target};
use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityTypeName, EntityUid,
    Policy, PolicySet, Request, RestrictedExpression,
};

impl PolicySnapshot {
    /// Decides an erasure call: one Cedar request per target; a target is
    /// allowed only on an `Allow` without any evaluation error; the call only
    /// if every target is allowed.
    pub fn decide(&self, input: &DecisionInput<'_>) -> Decision {
        self.decide_lifted(input, &[])
    }

    /// [`decide`](Self::decide), with the policies whose `@id` is in
    /// `lifted` left out: how the call is decided once a second caller has
    /// approved what those (`@approval`) forbids held.
    pub fn decide_lifted(&self, input: &DecisionInput<'_>, lifted: &[String]) -> Decision {
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
        let action = match self.uid(&format!("{}::Action", input.namespace), input.action) {
            Ok(action) => action,
            Err(e) => return denied_all(format!("action: {e}")),
        };
        let principal = match self.uid("Gateway::Caller", input.principal.id) {
            Ok(principal) => principal,
            Err(e) => return denied_all(format!("principal: {e}")),
        };
        let caller = match self.caller_side(&principal, input.principal.roles, &action) {
            Ok(caller) => caller,
            Err(e) => return denied_all(e),
        };
        let (entities, referenced) = match self.request_entities(input, &caller) {
            Ok(slice) => slice,
            Err(e) => return denied_all(e),
        };

        // The context as its JSON reads literally, if it can be (cheap);
        // if that does not fit the schema, Cedar's schema-guided parser,
        // which knows the other forms the schema allows (`ipaddr` from a
        // string, an entity from `{"type", "id"}`) and says what does not
        // fit. A literal reading that fits is what that parser makes of the
        // JSON too.
        let literal = literal_context(&input.context);
        let is_literal = literal.is_some();
        let context = match literal {
            Some(context) => context,
            None => match self.schema_context(&input.context, &action) {
                Ok(context) => context,
                Err(e) => return denied_all(e),
            },
        };
        let mut call = Call {
            authorizer: Authorizer::new(),
            caller: &caller,
            entities,
            principal,
            action,
            context,
            by_type: HashMap::new(),
            lifted,
        };
        let referenced = [&referenced, &caller.referenced];
        let mut targets = self.decide_targets(&mut call, input.targets, referenced);
        if is_literal && call.by_type.values().any(|t| t.fits.is_err()) {
            call.context = match self.schema_context(&input.context, &call.action) {
                Ok(context) => context,
                Err(e) => return denied_all(e),
            };
            call.by_type.clear();
            targets = self.decide_targets(&mut call, input.targets, referenced);
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

    /// Decides each target of a call. A target that nothing in the call's
    /// data or the policies names is seen by Cedar only as "an entity of
    /// this type, equal to nothing else": any two such targets of one type
    /// get the same answer, so it is worked out once. Not for enumerated
    /// types (the id is checked against the schema), nor when the answer
    /// holds errors (their messages name the entity).
    fn decide_targets(
        &self,
        call: &mut Call<'_>,
        targets: &[Target],
        referenced: [&HashSet<EntityUid>; 2],
    ) -> Vec<TargetDecision> {
        let mut unnamed: HashMap<&str, TargetDecision> = HashMap::new();
        let mut decided = Vec::with_capacity(targets.len());
        for target in targets {
            let resource = self.uid(&target.entity_type, &target.id);
            let is_unnamed = resource.as_ref().is_ok_and(|resource| {
                !referenced.iter().any(|set| set.contains(resource))
                    && !self.named.contains(resource)
                    && self
                        .enum_types
                        .as_ref()
                        .is_some_and(|types| !types.contains(&target.entity_type))
            });
            if is_unnamed {
                if let Some(same) = unnamed.get(target.entity_type.as_str()) {
                    decided.push(TargetDecision {
                        entity_type: target.entity_type.clone(),
                        id: target.id.clone(),
                        allowed: same.allowed,
                        policies: same.policies.clone(),
                        errors: Vec::new(),
                    });
                    continue;
                }
            }
            let decision = self.decide_target(call, target, resource);
            if is_unnamed && decision.errors.is_empty() {
                unnamed.insert(&target.entity_type, decision.clone());
            }
            decided.push(decision);
        }
        decided
    }

    fn decide_target(
        &self,
        call: &mut Call<'_>,
        target: &Target,
        resource: Result<EntityUid, String>,
    ) -> TargetDecision {
        let mut decision = TargetDecision {
            entity_type: target.entity_type.clone(),
            id: target.id.clone(),
            allowed: false,
            policies: Vec::new(),
            errors: Vec::new(),
        };
        let resource = match resource {
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
                    policies: call.caller.general(
                        &self.index,
                        &call.principal,
                        &call.action,
                        &resource,
                    ),
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
            Some(general) if named.is_empty() => general.as_ref(),
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
        let without_lifted;
        let policies = if call.lifted.is_empty() {
            policies
        } else {
            let kept = policies
                .policies()
                .filter(|p| !call.lifted.iter().any(|id| *id == p.id().to_string()))
                .cloned();
            match PolicySet::from_policies(kept) {
                Ok(set) => {
                    without_lifted = set;
                    &without_lifted
                }
                // Nothing left out: the approved forbids still deny.
                Err(_) => policies,
            }
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

    /// The call's Cedar context as Cedar's schema-guided parser reads it.
    fn schema_context(
        &self,
        json: &serde_json::Value,
        action: &EntityUid,
    ) -> Result<Context, String> {
        Context::from_json_value(json.clone(), Some((&self.schema, action)))
            .map_err(|e| format!("context does not fit the schema: {e}"))
    }

    /// The entities one call can reach: the caller (with its roles as
    /// parents) and whatever was fetched for the call, on a slice of the
    /// snapshot's entities. The slice holds every stored entity reachable
    /// from the call, its targets, roles, action, context, fetched entities
    /// and the policies' entity literals, through parents and entity-valued
    /// attributes and tags: all that Cedar can read while deciding, since a
    /// policy reaches an entity only through those. Its cost follows the
    /// call, not the size of the store, and nothing of the store is copied
    /// whole. The caller's side (caller, roles, action, literals) is the same
    /// for each call of one caller and action, so it is built once and kept
    /// with the snapshot.
    ///
    /// Also returns every uid the call's side of the data names (the
    /// context's and the entities' references, the stored and fetched
    /// entities themselves); the caller's side keeps its own.
    fn request_entities<'s>(
        &self,
        input: &DecisionInput<'_>,
        caller: &'s CallerSide,
    ) -> Result<(Cow<'s, Entities>, HashSet<EntityUid>), String> {
        let mut named = Vec::new();
        json_entity_refs(&input.context, &mut named);
        for entity in &input.extra_entities {
            json_entity_refs(entity, &mut named);
        }
        let mut roots: Vec<EntityUid> = input
            .targets
            .iter()
            .filter_map(|t| self.uid(&t.entity_type, &t.id).ok())
            .collect();
        roots.extend_from_slice(&named);
        let mut seen = HashSet::new();
        let (actions, stored, mut referenced) = self.slice(roots, &caller.seen, &mut seen)?;
        referenced.extend(named);
        if actions.is_empty() && stored.is_empty() && input.extra_entities.is_empty() {
            return Ok((Cow::Borrowed(&caller.entities), referenced));
        }
        // As with the context: the entities as their JSON reads literally,
        // when every one can be read so and the whole fits the schema (then
        // it is what Cedar's schema-guided parser makes of them); else that
        // parser, which also says what does not fit.
        let literal: Option<Vec<Entity>> = stored
            .iter()
            .chain(&input.extra_entities)
            .map(|entity| literal_entity(entity, |t, id| self.uid(t, id).ok()))
            .collect();
        if let Some(literal) = literal {
            let all = actions.iter().cloned().chain(literal);
            if let Ok(entities) = caller
                .entities
                .clone()
                .add_entities(all, Some(&self.schema))
            {
                return Ok((Cow::Owned(entities), referenced));
            }
        }
        let mut entities = actions;
        entities.extend(
            self.parsed(
                stored
                    .into_iter()
                    .chain(input.extra_entities.iter().cloned()),
            )?,
        );
        let entities = caller
            .entities
            .clone()
            .add_entities(entities, Some(&self.schema))
            .map_err(rejected)?;
        Ok((Cow::Owned(entities), referenced))
    }

    /// Entity JSON as Cedar's schema-guided parser reads it.
    fn parsed(
        &self,
        json: impl IntoIterator<Item = serde_json::Value>,
    ) -> Result<Vec<Entity>, String> {
        json.into_iter()
            .map(|entity| Entity::from_json_value(entity, Some(&self.schema)).map_err(rejected))
            .collect()
    }

    /// The caller's side of a call's entities, built once per caller, roles
    /// and action (see [`PolicySnapshot::request_entities`]).
    fn caller_side(
        &self,
        principal: &EntityUid,
        roles: &[String],
        action: &EntityUid,
    ) -> Result<Arc<CallerSide>, String> {
        let mut key = format!("{action}\0{principal}");
        for role in roles {
            key.push('\0');
            key.push_str(role);
        }
        self.callers
            .try_get_with(key, || {
                let roles = roles
                    .iter()
                    .map(|role| self.uid("Gateway::Role", role))
                    .collect::<Result<Vec<EntityUid>, String>>()
                    .map_err(|e| format!("role: {e}"))?;
                let mut roots: Vec<EntityUid> = self.literals.clone();
                roots.extend_from_slice(&roles);
                roots.push(action.clone());
                let mut seen = HashSet::new();
                let (mut entities, stored, mut referenced) =
                    self.slice(roots, &HashSet::new(), &mut seen)?;
                entities.extend(self.parsed(stored)?);
                seen.insert(principal.clone());
                referenced.insert(principal.clone());
                referenced.extend(roles.iter().cloned());
                entities.push(Entity::new_no_attrs(
                    principal.clone(),
                    roles.into_iter().collect(),
                ));
                Ok(Arc::new(CallerSide {
                    entities: Entities::from_entities(entities, Some(&self.schema))
                        .map_err(rejected)?,
                    general: Mutex::default(),
                    seen,
                    referenced,
                }))
            })
            .map_err(|e: Arc<String>| e.as_ref().clone())
    }

    /// The stored entities reachable from `queue` through parents and
    /// entity-valued attributes and tags, leaving out those in `skip` (a
    /// part already built) (as JSON, checked against the schema when the
    /// call's entities are built), the actions among them with their
    /// groups, and the uids the stored ones are or name. Adds what it
    /// visits to `seen`.
    #[allow(clippy::type_complexity)]
    fn slice(
        &self,
        mut queue: Vec<EntityUid>,
        skip: &HashSet<EntityUid>,
        seen: &mut HashSet<EntityUid>,
    ) -> Result<(Vec<Entity>, Vec<serde_json::Value>, HashSet<EntityUid>), String> {
        let mut referenced: HashSet<EntityUid> = HashSet::new();
        let mut actions = Vec::new();
        let mut stored = Vec::new();
        while let Some(next) = queue.pop() {
            if skip.contains(&next) || seen.contains(&next) {
                continue;
            }
            seen.insert(next.clone());
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
            let start = queue.len();
            json_entity_refs(&entity, &mut queue);
            referenced.extend(queue[start..].iter().cloned());
            referenced.insert(next);
            stored.push(entity);
        }
        Ok((actions, stored, referenced))
    }
}

/// The caller's side of a call's entities: the caller, its roles and their
/// ancestors, the action and its groups, the stored entities the policies
/// name, and what they reach.
#[derive(Debug)]
pub(crate) struct CallerSide {
    entities: Entities,
    /// Per resource type, the policies naming no resource whose scope can
    /// hold for this caller and action ([`PolicyIndex::for_type`]): put in
    /// a set at the first call that needs them, not at every call.
    general: Mutex<HashMap<EntityTypeName, Option<Arc<PolicySet>>>>,
    /// The uids visited while slicing (so a call's own slice skips them).
    seen: HashSet<EntityUid>,
    /// The uids these entities are or name.
    referenced: HashSet<EntityUid>,
}

impl CallerSide {
    /// The policies naming no resource whose scope can hold for a resource
    /// of `resource`'s type, from this caller's cache.
    fn general(
        &self,
        index: &PolicyIndex,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
    ) -> Option<Arc<PolicySet>> {
        let cached = self.general.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(set) = cached.get(resource.type_name()) {
            return set.clone();
        }
        drop(cached);
        let set = index.for_type(principal, action, resource).map(Arc::new);
        self.general
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(resource.type_name().clone(), set.clone());
        set
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

/// Why entity data was refused (for `map_err`, which hands it over by value).
#[allow(clippy::needless_pass_by_value)]
fn rejected(e: cedar_policy::entities_errors::EntitiesError) -> String {
    format!("entity data rejected: {e}")
}

/// The context as its JSON reads literally, or `None` where a value has
/// no literal Cedar reading (a float, an `__extn` escape, a malformed
/// `__entity`).
fn literal_context(json: &serde_json::Value) -> Option<Context> {
    let serde_json::Value::Object(map) = json else {
        return None;
    };
    let pairs = map
        .iter()
        .map(|(key, value)| Some((key.clone(), literal(value)?)))
        .collect::<Option<Vec<_>>>()?;
    Context::from_pairs(pairs).ok()
}

/// An entity's JSON (`uid`, `attrs`, `parents`) read literally, or `None`
/// where it has no literal reading (tags, implicit or malformed references,
/// a value [`literal`] cannot read). `uid` makes a uid from a type and id.
pub(super) fn literal_entity(
    json: &serde_json::Value,
    uid: impl Fn(&str, &str) -> Option<EntityUid>,
) -> Option<Entity> {
    let serde_json::Value::Object(map) = json else {
        return None;
    };
    if map
        .keys()
        .any(|k| !matches!(k.as_str(), "uid" | "attrs" | "parents"))
    {
        return None;
    }
    let uid_of = |value: &serde_json::Value| {
        let value = value.get("__entity").unwrap_or(value);
        match (value.get("type"), value.get("id")) {
            (Some(serde_json::Value::String(t)), Some(serde_json::Value::String(id))) => uid(t, id),
            _ => None,
        }
    };
    let this = uid_of(map.get("uid")?)?;
    let attrs = match map.get("attrs") {
        None => HashMap::new(),
        Some(serde_json::Value::Object(attrs)) => attrs
            .iter()
            .map(|(k, v)| Some((k.clone(), literal(v)?)))
            .collect::<Option<HashMap<_, _>>>()?,
        Some(_) => return None,
    };
    let parents = match map.get("parents") {
        None => HashSet::new(),
        Some(serde_json::Value::Array(parents)) => {
            parents.iter().map(uid_of).collect::<Option<HashSet<_>>>()?
        }
        Some(_) => return None,
    };
    Entity::new(this, attrs, parents).ok()
}

fn literal(value: &serde_json::Value) -> Option<RestrictedExpression> {
    use serde_json::Value;
    Some(match value {
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => RestrictedExpression::new_long(n.as_i64()?),
        Value::Array(items) => {
            RestrictedExpression::new_set(items.iter().map(literal).collect::<Option<Vec<_>>>()?)
        }
        Value::Object(map) if map.contains_key("__extn") || map.contains_key("__expr") => {
            return None
        }
        Value::Object(map) if map.contains_key("__entity") => {
            let (Some(Value::Object(entity)), 1) = (map.get("__entity"), map.len()) else {
                return None;
            };
            let (Some(Value::String(t)), Some(Value::String(id)), 2) =
                (entity.get("type"), entity.get("id"), entity.len())
            else {
                return None;
            };
            RestrictedExpression::new_entity_uid(uid(t, id).ok()?)
        }
        Value::Object(map) => RestrictedExpression::new_record(
            map.iter()
                .map(|(k, v)| Some((k.clone(), literal(v)?)))
                .collect::<Option<Vec<_>>>()?,
        )
        .ok()?,
        Value::Null => return None,
    })
}

/// One call being decided: what its targets share.
struct Call<'s> {
    authorizer: Authorizer,
    /// The caller's side of the entities, and its policies by type.
    caller: &'s CallerSide,
    entities: Cow<'s, Entities>,
    principal: EntityUid,
    action: EntityUid,
    context: Context,
    /// Per entity type of a target.
    by_type: HashMap<String, OfType>,
    /// Policies left out (approved `@approval` forbids).
    lifted: &'s [String],
}

/// What holds for every target of one entity type in a call.
struct OfType {
    /// Whether a request for this type fits the schema.
    fits: Result<(), String>,
    /// The policies naming no resource whose scope can hold.
    policies: Option<Arc<PolicySet>>,
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
