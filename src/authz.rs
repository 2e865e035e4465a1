//! Cedar: the policy snapshot (schema, policies, entities, version) and the
//! decision for one erasure call, one Cedar request per target.
//!
//! Pure: a loaded snapshot and plain values in, a [`Decision`] out. Any
//! evaluation error in any policy denies the target, unlike Cedar's default
//! of skipping the erroring policy.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityId, EntityTypeName, EntityUid,
    PolicyId, PolicySet, Request, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::profile::IdForm;
pub use crate::profile::Target;

/// The schema file's name inside the policies directory.
pub const SCHEMA_FILE: &str = "schema.cedarschema";
/// The entities file's name inside the policies directory.
pub const ENTITIES_FILE: &str = "entities.json";

/// One problem in a policy file, located like a compiler diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The policy's `@id`, when the problem is in one policy.
    pub policy_id: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The offending source line, when known.
    pub source_line: Option<String>,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(id) = &self.policy_id {
            write!(f, "policy `{id}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let (Some(text), Some(column)) = (&self.source_line, self.column) {
            let pad = " ".repeat(column.saturating_sub(1));
            write!(f, "\n  | {text}\n  | {pad}^")?;
        }
        Ok(())
    }
}

impl SourceError {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            line: None,
            column: None,
            policy_id: None,
            message: message.into(),
            source_line: None,
        }
    }

    /// Locates a Cedar diagnostic in `text` by its first labelled span.
    fn from_diagnostic(path: &Path, text: &str, diagnostic: &dyn Diagnostic) -> Self {
        let mut error = Self::new(path, diagnostic_message(diagnostic));
        let offset = diagnostic
            .labels()
            .and_then(|mut labels| labels.next())
            .map(|label| label.offset());
        if let Some(offset) = offset.filter(|o| *o <= text.len()) {
            let before = &text[..offset];
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            error.line = Some(before.matches('\n').count() + 1);
            error.column = Some(before[line_start..].chars().count() + 1);
            error.source_line = text[line_start..].lines().next().map(str::to_owned);
        }
        error
    }
}

/// The message of a diagnostic, with its help text when it has one.
fn diagnostic_message(diagnostic: &dyn Diagnostic) -> String {
    let mut message = diagnostic.to_string();
    if let Some(help) = diagnostic.help() {
        message.push_str(" (help: ");
        message.push_str(&help.to_string());
        message.push(')');
    }
    message
}

/// Every problem found while loading a policy directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<SourceError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// A validated policy set with its schema and entities: what a request is
/// decided against, named by a version hash of the files it came from.
#[derive(Debug, Clone)]
pub struct PolicySnapshot {
    version: String,
    schema: Schema,
    policies: PolicySet,
    entities: Entities,
    policy_files: BTreeMap<String, PathBuf>,
    entities_path: Option<PathBuf>,
    warnings: Vec<SourceError>,
}

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
    /// Loads and strictly validates `schema.cedarschema`, every `*.cedar`
    /// file and `entities.json` (optional) from `dir`.
    ///
    /// # Errors
    /// Every problem found, each naming its file and, where Cedar locates it,
    /// the line, column and policy id.
    pub fn load(dir: &Path) -> Result<Self, PolicyErrors> {
        let one = |e: SourceError| PolicyErrors(vec![e]);
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| {
                one(SourceError::new(
                    path,
                    format!("cannot read it ({e}); the policy directory is set by [policies] dir"),
                ))
            })
        };
        let schema_path = dir.join(SCHEMA_FILE);
        let schema_text = read(&schema_path)?;
        let mut policy_paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| one(SourceError::new(dir, e.to_string())))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| p.extension().is_some_and(|e| e == "cedar") && p.is_file())
            .collect();
        policy_paths.sort();
        let mut policy_texts = Vec::with_capacity(policy_paths.len());
        for path in &policy_paths {
            policy_texts.push((path.clone(), read(path)?));
        }
        let entities_path = dir.join(ENTITIES_FILE);
        let entities_text = if entities_path.exists() {
            Some(read(&entities_path)?)
        } else {
            None
        };
        Self::from_sources(
            (&schema_path, &schema_text),
            &policy_texts,
            entities_text
                .as_deref()
                .map(|t| (entities_path.as_path(), t)),
        )
    }

    /// Builds a snapshot from file contents; paths only name the sources in
    /// errors.
    ///
    /// # Errors
    /// As [`PolicySnapshot::load`].
    pub fn from_sources(
        schema: (&Path, &str),
        policies: &[(PathBuf, String)],
        entities: Option<(&Path, &str)>,
    ) -> Result<Self, PolicyErrors> {
        let (schema_path, schema_text) = schema;
        let entities_path = entities.map(|(path, _)| path.to_owned());
        let entities_text = entities.map(|(_, text)| text);
        let schema = match Schema::from_cedarschema_str(schema_text) {
            Ok((schema, _warnings)) => schema,
            Err(e) => {
                return Err(PolicyErrors(vec![SourceError::from_diagnostic(
                    schema_path,
                    schema_text,
                    &e,
                )]))
            }
        };

        let mut errors = Vec::new();
        let mut combined = PolicySet::new();
        let mut policy_files: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut sources: BTreeMap<String, (PathBuf, String)> = BTreeMap::new();
        if policies.is_empty() {
            errors.push(SourceError::new(
                schema_path.parent().unwrap_or(schema_path),
                "no *.cedar policy files: without policies every erasure call would be denied",
            ));
        }
        for (path, text) in policies {
            let parsed = match PolicySet::from_str(text) {
                Ok(parsed) => parsed,
                Err(e) => {
                    errors.push(SourceError::from_diagnostic(path, text, &e));
                    continue;
                }
            };
            if parsed.templates().next().is_some() {
                errors.push(SourceError::new(path, "policy templates are not supported"));
            }
            for (n, policy) in parsed.policies().enumerate() {
                let Some(id) = policy.annotation("id").map(str::to_owned) else {
                    let head: String = policy.to_string().chars().take(60).collect();
                    errors.push(SourceError::new(
                        path,
                        format!(
                            "policy #{} (`{}…`) has no @id(\"…\") annotation; every policy needs one",
                            n + 1,
                            head.replace('\n', " ")
                        ),
                    ));
                    continue;
                };
                if let Some(other) = policy_files.get(&id) {
                    let mut e = SourceError::new(
                        path,
                        format!("the @id is also used in {}", other.display()),
                    );
                    e.policy_id = Some(id);
                    errors.push(e);
                    continue;
                }
                if let Err(e) = combined.add(policy.new_id(PolicyId::new(&id))) {
                    let mut error = SourceError::new(path, e.to_string());
                    error.policy_id = Some(id);
                    errors.push(error);
                    continue;
                }
                policy_files.insert(id.clone(), path.clone());
                sources.insert(id, (path.clone(), text.clone()));
            }
        }
        if !errors.is_empty() {
            return Err(PolicyErrors(errors));
        }

        let validation = Validator::new(schema.clone()).validate(&combined, ValidationMode::Strict);
        for e in validation.validation_errors() {
            let id = e.policy_id().to_string();
            let mut error = match sources.get(&id) {
                Some((path, text)) => SourceError::from_diagnostic(path, text, e),
                None => SourceError::new(schema_path, diagnostic_message(e)),
            };
            // Cedar names the policy in its message; the prefix names it already.
            error.message = error.message.replace(&format!("for policy `{id}`, "), "");
            error.policy_id = Some(id);
            errors.push(error);
        }
        if !errors.is_empty() {
            return Err(PolicyErrors(errors));
        }
        // Warnings do not stop a load; `policy validate` shows them (e.g. a
        // policy that can never apply to any action of the schema).
        let warnings: Vec<SourceError> = validation
            .validation_warnings()
            .map(|w| {
                let id = w.policy_id().to_string();
                let mut warning = match sources.get(&id) {
                    Some((path, text)) => SourceError::from_diagnostic(path, text, w),
                    None => SourceError::new(schema_path, diagnostic_message(w)),
                };
                warning.policy_id = Some(id);
                warning
            })
            .collect();

        let entities = match entities {
            None => Entities::empty(),
            Some((path, text)) => {
                let value: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| PolicyErrors(vec![json_error(path, text, &e)]))?;
                if let Some(caller) = value
                    .as_array()
                    .and_then(|all| all.iter().find(|e| e["uid"]["type"] == "Gateway::Caller"))
                {
                    let id = caller["uid"]["id"].as_str().unwrap_or_default();
                    return Err(PolicyErrors(vec![SourceError::new(
                        path,
                        format!(
                            "Gateway::Caller \"{id}\": callers come from [[caller]] in the gateway config, not from entities"
                        ),
                    )]));
                }
                Entities::from_json_value(value, Some(&schema)).map_err(|e| {
                    PolicyErrors(vec![SourceError::new(path, diagnostic_message(&e))])
                })?
            }
        };

        let version = version_of(schema_text, policies, entities_text);
        Ok(Self {
            version,
            schema,
            policies: combined,
            entities,
            policy_files,
            entities_path,
            warnings,
        })
    }

    /// Checks that every id of an entity type a vendor compares in a
    /// normalised form ([`IdForm`]) is written in that form, in the entity
    /// file and in the policies: `Kore::User::"Owner@Example.com"` would never
    /// match the case-folded id of a call, so a protected person would go
    /// unprotected. `forms` pairs qualified entity types with their form.
    ///
    /// # Errors
    /// One error per id not in its form, naming the file (and policy) and
    /// the spelling to use.
    pub fn check_id_forms(&self, forms: &[(String, IdForm)]) -> Result<(), PolicyErrors> {
        let mut errors = Vec::new();
        let mut check = |uid: &EntityUid, path: &Path, policy: Option<&str>| {
            let entity_type = uid.type_name().to_string();
            let id = uid.id().unescaped();
            for (wanted, form) in forms {
                let normal = form.apply(id);
                if *wanted == entity_type && normal != id {
                    let mut error = SourceError::new(
                        path,
                        format!(
                            "`{uid}` is not written the way the vendor compares {entity_type} ids ({}): write `{normal}`",
                            form.as_str()
                        ),
                    );
                    error.policy_id = policy.map(str::to_owned);
                    errors.push(error);
                }
            }
        };
        let entities_path = self
            .entities_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(ENTITIES_FILE));
        for entity in self.entities.iter() {
            check(&entity.uid(), &entities_path, None);
        }
        for policy in self.policies.policies() {
            let id = policy.annotation("id").unwrap_or_default();
            let path = self.policy_files.get(id).cloned().unwrap_or_default();
            for uid in policy.entity_literals() {
                check(&uid, &path, Some(id));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PolicyErrors(errors))
        }
    }

    /// The policy-set version: `sha256:` and the full hex SHA-256 of the
    /// files (the trail records it whole, so no other set can pass for it).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The version cut to `sha256:` and 16 hex digits, for people to read.
    pub fn short_version(&self) -> &str {
        short_version(&self.version)
    }

    /// The `@id`s of all policies, sorted.
    pub fn policy_ids(&self) -> impl Iterator<Item = &str> {
        self.policy_files.keys().map(String::as_str)
    }

    /// Whether the policy files describe this entity.
    pub fn has_entity(&self, entity_type: &str, id: &str) -> bool {
        uid(entity_type, id).is_ok_and(|uid| self.entities.get(&uid).is_some())
    }

    /// Validation warnings: policies that load but look wrong.
    pub fn warnings(&self) -> &[SourceError] {
        &self.warnings
    }

    /// The file each policy came from, by `@id`.
    pub fn policy_file(&self, id: &str) -> Option<&Path> {
        self.policy_files.get(id).map(PathBuf::as_path)
    }

    /// The schema policies are validated against.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

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

fn uid(entity_type: &str, id: &str) -> Result<EntityUid, String> {
    let name = EntityTypeName::from_str(entity_type)
        .map_err(|_| format!("`{entity_type}` is not an entity type name"))?;
    Ok(EntityUid::from_type_name_and_id(name, EntityId::new(id)))
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

fn json_error(path: &Path, text: &str, e: &serde_json::Error) -> SourceError {
    let mut error = SourceError::new(path, format!("not valid JSON: {e}"));
    if e.line() > 0 {
        error.line = Some(e.line());
        error.column = Some(e.column());
        error.source_line = text.lines().nth(e.line() - 1).map(str::to_owned);
    }
    error
}

/// A policy version cut to `sha256:` and 16 hex digits, for display.
pub fn short_version(version: &str) -> &str {
    version.get(..23).unwrap_or(version)
}

fn version_of(schema: &str, policies: &[(PathBuf, String)], entities: Option<&str>) -> String {
    let mut hash = Sha256::new();
    let mut part = |name: &str, text: &str| {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update((text.len() as u64).to_be_bytes());
        hash.update(text.as_bytes());
    };
    part(SCHEMA_FILE, schema);
    for (path, text) in policies {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        part(&name, text);
    }
    part(ENTITIES_FILE, entities.unwrap_or(""));
    format!("sha256:{}", hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shipped() -> PolicySnapshot {
        PolicySnapshot::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
            .unwrap_or_else(|e| panic!("shipped policies load: {e}"))
    }

    fn context(
        vendor: &str,
        count: usize,
        kind: &str,
        extra: &serde_json::Value,
    ) -> serde_json::Value {
        let mut ctx = json!({
            "vendor": vendor,
            "target_count": count,
            "client_ip": "127.0.0.1",
            "client_cert": false,
            "credential": {"kind": kind, "fingerprint": "0123456789ab"},
        });
        if let (Some(ctx), Some(extra)) = (ctx.as_object_mut(), extra.as_object()) {
            ctx.extend(extra.clone());
        }
        ctx
    }

    struct Case {
        name: &'static str,
        caller: &'static str,
        roles: &'static [&'static str],
        namespace: &'static str,
        action: &'static str,
        target: (&'static str, &'static str),
        context: serde_json::Value,
        allowed: bool,
        policies: &'static [&'static str],
    }

    #[test]
    fn shipped_policies_decide_the_seed_rules() {
        let snapshot = shipped();
        let officer: &[&str] = &["privacy-officer"];
        let cases = vec![
            Case {
                name: "privacy officer erases a Seam customer",
                caller: "ops",
                roles: officer,
                namespace: "Seam",
                action: "delete_data",
                target: ("Seam::Customer", "cust-1"),
                context: context("seam", 1, "api_key", &json!({})),
                allowed: true,
                policies: &["privacy-officers-may-erase"],
            },
            Case {
                name: "a caller without the role is not permitted",
                caller: "intern",
                roles: &[],
                namespace: "Seam",
                action: "delete_data",
                target: ("Seam::Customer", "cust-1"),
                context: context("seam", 1, "api_key", &json!({})),
                allowed: false,
                policies: &[],
            },
            Case {
                name: "anonymous is denied even with the role",
                caller: "anonymous",
                roles: officer,
                namespace: "BotPenguin",
                action: "delete_customer",
                target: ("BotPenguin::Customer", "c-1"),
                context: context("botpenguin", 1, "none", &json!({})),
                allowed: false,
                policies: &["deny-anonymous"],
            },
            Case {
                name: "Kore account owner is never erased",
                caller: "ops",
                roles: officer,
                namespace: "Kore",
                action: "eraseUsersData",
                target: ("Kore::User", "owner@example.com"),
                context: context("kore", 1, "jwt", &json!({})),
                allowed: false,
                policies: &["kore-never-erase-account-owners"],
            },
            Case {
                name: "Kore bot co-developer is never erased",
                caller: "ops",
                roles: officer,
                namespace: "Kore",
                action: "eraseUsersData",
                target: ("Kore::User", "u-codev-0001"),
                context: context("kore", 1, "jwt", &json!({})),
                allowed: false,
                policies: &["kore-never-erase-bot-developers"],
            },
            Case {
                name: "Kore ordinary user is erased",
                caller: "ops",
                roles: officer,
                namespace: "Kore",
                action: "eraseUsersData",
                target: ("Kore::User", "u-ordinary-0001"),
                context: context("kore", 1, "jwt", &json!({"remove_from_all_bots": true})),
                allowed: true,
                policies: &["privacy-officers-may-erase"],
            },
            Case {
                name: "Seam personal access token without workspace is denied",
                caller: "ops",
                roles: officer,
                namespace: "Seam",
                action: "delete_data",
                target: ("Seam::User", "u-1"),
                context: context("seam", 1, "personal_access_token", &json!({})),
                allowed: false,
                policies: &["seam-pat-requires-workspace"],
            },
            Case {
                name: "Seam personal access token with workspace is allowed",
                caller: "ops",
                roles: officer,
                namespace: "Seam",
                action: "delete_data",
                target: ("Seam::User", "u-1"),
                context: context(
                    "seam",
                    1,
                    "personal_access_token",
                    &json!({"workspace": "ws_1"}),
                ),
                allowed: true,
                policies: &["privacy-officers-may-erase"],
            },
            Case {
                name: "more than 50 targets need the bulk role",
                caller: "ops",
                roles: officer,
                namespace: "Seam",
                action: "delete_data",
                target: ("Seam::Space", "s-1"),
                context: context("seam", 51, "api_key", &json!({})),
                allowed: false,
                policies: &["bulk-erasure-requires-role"],
            },
            Case {
                name: "the bulk role lifts the limit",
                caller: "ops",
                roles: &["privacy-officer", "bulk-eraser"],
                namespace: "Seam",
                action: "delete_data",
                target: ("Seam::Space", "s-1"),
                context: context("seam", 51, "api_key", &json!({})),
                allowed: true,
                policies: &["privacy-officers-may-erase"],
            },
            Case {
                name: "exactly 50 targets need no bulk role",
                caller: "ops",
                roles: officer,
                namespace: "Seam",
                action: "delete_data",
                target: ("Seam::Space", "s-1"),
                context: context("seam", 50, "api_key", &json!({})),
                allowed: true,
                policies: &["privacy-officers-may-erase"],
            },
        ];
        for case in cases {
            let roles: Vec<String> = case.roles.iter().map(|r| (*r).to_owned()).collect();
            let targets = [Target::exact(case.target.0, case.target.1)];
            let decision = snapshot.decide(&DecisionInput {
                principal: Principal {
                    id: case.caller,
                    roles: &roles,
                },
                namespace: case.namespace,
                action: case.action,
                targets: &targets,
                context: case.context,
                extra_entities: Vec::new(),
            });
            assert_eq!(
                decision.allowed, case.allowed,
                "{}: {decision:?}",
                case.name
            );
            assert_eq!(decision.policies(), case.policies, "{}", case.name);
            assert_eq!(decision.reasons.is_empty(), case.allowed, "{}", case.name);
        }
    }

    fn sources(policies: &str) -> Result<PolicySnapshot, PolicyErrors> {
        let schema = include_str!("../policies/schema.cedarschema");
        PolicySnapshot::from_sources(
            (Path::new("policies/schema.cedarschema"), schema),
            &[(PathBuf::from("policies/p.cedar"), policies.to_owned())],
            None,
        )
    }

    #[test]
    fn ids_not_written_the_way_the_vendor_compares_them_refuse_the_set() {
        let forms = [("Kore::User".to_owned(), IdForm::EmailCasefold)];
        assert!(shipped().check_id_forms(&forms).is_ok());
        let schema = include_str!("../policies/schema.cedarschema");
        let entities = r#"[{"uid":{"type":"Kore::User","id":"Owner@Example.com"},"attrs":{"account_owner":true},"parents":[]}]"#;
        let policy =
            r#"@id("p") forbid (principal, action, resource == Kore::User::"Boss@Example.com");"#;
        let snapshot = PolicySnapshot::from_sources(
            (Path::new("policies/schema.cedarschema"), schema),
            &[(PathBuf::from("policies/p.cedar"), policy.to_owned())],
            Some((Path::new("policies/entities.json"), entities)),
        )
        .unwrap();
        let errors = snapshot.check_id_forms(&forms).unwrap_err().to_string();
        assert!(
            errors.contains("policies/entities.json")
                && errors.contains("write `owner@example.com`"),
            "{errors}"
        );
        assert!(
            errors.contains("policy `p`") && errors.contains("write `boss@example.com`"),
            "{errors}"
        );
        // Exact types are not checked.
        assert!(snapshot.check_id_forms(&[]).is_ok());
    }

    #[test]
    fn one_denied_target_denies_the_whole_call() {
        let snapshot = shipped();
        let roles = vec!["privacy-officer".to_owned()];
        let targets = [
            Target::exact("Kore::User", "u-ordinary-0001"),
            Target::exact("Kore::User", "owner@example.com"),
        ];
        let decision = snapshot.decide(&DecisionInput {
            principal: Principal {
                id: "ops",
                roles: &roles,
            },
            namespace: "Kore",
            action: "eraseUsersData",
            targets: &targets,
            context: context("kore", 2, "jwt", &json!({})),
            extra_entities: Vec::new(),
        });
        assert!(!decision.allowed);
        assert!(decision.targets[0].allowed);
        assert!(!decision.targets[1].allowed);
        assert_eq!(
            decision.reasons,
            ["Kore::User: forbidden by kore-never-erase-account-owners"]
        );
    }

    #[test]
    fn an_erroring_forbid_denies_instead_of_being_skipped() {
        // The multiplication overflows at evaluation time. Cedar would skip
        // the erroring forbid and allow through the permit; the gateway denies.
        let snapshot = sources(
            r#"@id("allow-all") permit (principal, action, resource);
               @id("overflowing-forbid") forbid (principal, action, resource)
               when { context.target_count * 4611686018427387904 > 0 };"#,
        )
        .expect("the set validates strictly");
        let targets = [
            Target::exact("Seam::Customer", "a"),
            Target::exact("Seam::Customer", "b"),
        ];
        let decision = snapshot.decide(&DecisionInput {
            principal: Principal {
                id: "ops",
                roles: &[],
            },
            namespace: "Seam",
            action: "delete_data",
            targets: &targets,
            context: context("seam", 2, "api_key", &json!({})),
            extra_entities: Vec::new(),
        });
        assert!(!decision.allowed, "{decision:?}");
        assert!(decision
            .targets
            .iter()
            .all(|t| !t.allowed && !t.errors.is_empty()));
        assert!(
            decision.targets[0].errors[0].contains("overflowing-forbid"),
            "{decision:?}"
        );
    }

    #[test]
    fn errors_name_file_line_and_policy_id() {
        let err = sources(
            "@id(\"a\")\npermit (principal, action, resource)\nwhen { context.nope == 1 };\n",
        )
        .expect_err("unknown context attribute fails strict validation");
        let text = err.to_string();
        assert!(text.starts_with("policies/p.cedar:3:"), "{text}");
        assert!(text.contains("policy `a`"), "{text}");

        let err = sources("@id(\"a\")\npermit (principal, action, resource) when { 1 + };\n")
            .unwrap_err();
        assert!(err.to_string().starts_with("policies/p.cedar:2:"), "{err}");

        let err = sources("permit (principal, action, resource);\n").unwrap_err();
        assert!(err.to_string().contains("has no @id"), "{err}");

        let err = sources("@id(\"a\") permit (principal, action, resource);\n@id(\"a\") forbid (principal, action, resource);\n").unwrap_err();
        assert!(err.to_string().contains("policy `a`"), "{err}");
    }

    #[test]
    fn callers_in_entities_json_are_refused() {
        let schema = include_str!("../policies/schema.cedarschema");
        let err = PolicySnapshot::from_sources(
            (Path::new("s"), schema),
            &[(
                PathBuf::from("p.cedar"),
                "@id(\"a\") permit (principal, action, resource);".into(),
            )],
            Some((
                Path::new("entities.json"),
                r#"[{"uid":{"type":"Gateway::Caller","id":"x"},"attrs":{},"parents":[]}]"#,
            )),
        )
        .unwrap_err();
        assert!(err.to_string().contains("[[caller]]"), "{err}");
    }

    #[test]
    fn the_version_changes_with_any_file() {
        let a = sources("@id(\"a\") permit (principal, action, resource);").unwrap();
        let b = sources("@id(\"a\") permit (principal, action, resource); ").unwrap();
        assert_ne!(a.version(), b.version());
        assert!(a.version().starts_with("sha256:"));
        assert_eq!(a.version().len(), "sha256:".len() + 64, "the full digest");
        assert_eq!(a.short_version().len(), "sha256:".len() + 16);
        assert!(a.version().starts_with(a.short_version()));
    }
}
