//! Loading a policy directory into a [`PolicySnapshot`]: the schema, every
//! `*.cedar` file and `entities.json`, strictly validated, with errors that
//! name the file, line, column and policy.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{EntityUid, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;
use sha2::{Digest, Sha256};

use super::entities::{EntityStore, StoreError};
use super::IdForm;
use super::{PolicySnapshot, ENTITIES_FILE, SCHEMA_FILE};

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
pub(super) fn diagnostic_message(diagnostic: &dyn Diagnostic) -> String {
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
        // The file each policy came from, for diagnostics (borrowed: a file of
        // 10k policies is not copied once per policy).
        let mut sources: BTreeMap<String, &(PathBuf, String)> = BTreeMap::new();
        if policies.is_empty() {
            errors.push(SourceError::new(
                schema_path.parent().unwrap_or(schema_path),
                "no *.cedar policy files: without policies every erasure call would be denied",
            ));
        }
        let mut approvals = HashMap::new();
        for source in policies {
            let (path, text) = source;
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
                if let Some(reason) = policy.annotation("approval") {
                    if policy.effect() != cedar_policy::Effect::Forbid {
                        let mut e = SourceError::new(
                            path,
                            "@approval(\"…\") holds a call for approval when its forbid applies; it is only allowed on a forbid",
                        );
                        e.policy_id = Some(id);
                        errors.push(e);
                        continue;
                    }
                    approvals.insert(id.clone(), reason.to_owned());
                }
                policy_files.insert(id.clone(), path.clone());
                sources.insert(id, source);
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
            // The schema's actions, so that `action in <group>` holds as
            // declared even without an entities file.
            None => EntityStore::actions_only(&schema)
                .map_err(|e| PolicyErrors(vec![SourceError::new(schema_path, e)]))?,
            Some((path, text)) => {
                let refuse = |uid: &EntityUid| {
                    (uid.type_name().to_string() == "Gateway::Caller").then(|| {
                        format!(
                            "Gateway::Caller \"{}\": callers come from [[caller]] in the gateway config, not from entities",
                            uid.id().unescaped()
                        )
                    })
                };
                EntityStore::from_json(text, &schema, refuse).map_err(|e| {
                    PolicyErrors(vec![match e {
                        StoreError::Json(e) => json_error(path, text, &e),
                        StoreError::Entity(message) => SourceError::new(path, message),
                    }])
                })?
            }
        };

        let version = version_of(schema_text, policies, entities_text);
        let mut literals: Vec<EntityUid> = combined
            .policies()
            .flat_map(cedar_policy::Policy::entity_literals)
            .collect();
        literals.sort_unstable();
        literals.dedup();
        let named = literals.iter().cloned().collect();
        // Only a stored entity has attributes or parents to read; a literal
        // naming none (`resource == Seam::Customer::"vip-7"`) is compared, not
        // read, and a fetched entity joins the call's entities anyway.
        literals.retain(|literal| entities.contains(literal));
        let type_names = super::type_names(&schema);
        Ok(Self {
            version,
            schema,
            index: super::index::PolicyIndex::new(&combined),
            enum_types: enum_entity_types(schema_text),
            type_names,
            policies: combined,
            entities,
            literals,
            named,
            callers: moka::sync::Cache::new(CALLER_SIDES),
            approvals,
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
        for (entity_type, id) in self.entities.uids() {
            if let Ok(uid) = super::uid(entity_type, id) {
                check(&uid, &entities_path, None);
            }
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
}

/// Callers whose side of a call's entities a snapshot keeps built.
const CALLER_SIDES: u64 = 1024;

/// The qualified names of the schema's enumerated entity types.
fn enum_entity_types(schema: &str) -> Option<Vec<String>> {
    let (fragment, _) = cedar_policy::SchemaFragment::from_cedarschema_str(schema).ok()?;
    let json = fragment.to_json_value().ok()?;
    let mut names = Vec::new();
    for (namespace, body) in json.as_object()? {
        for (name, entity) in body.get("entityTypes")?.as_object()? {
            if entity.get("enum").is_some() {
                names.push(if namespace.is_empty() {
                    name.clone()
                } else {
                    format!("{namespace}::{name}")
                });
            }
        }
    }
    Some(names)
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
