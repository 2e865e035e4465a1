//! Cedar: the policy snapshot (schema, policies, entities, version) and the
//! decision for one erasure call, one Cedar request per target.
//!
//! [`load`] reads and validates a policy directory, [`decide`] decides one
//! call against a snapshot, and [`store`] holds the snapshot in force and
//! swaps in a reloaded one. Pure apart from reading files: any evaluation
//! error in any policy denies the target, unlike Cedar's default of skipping
//! the erroring policy.

mod decide;
mod decision;
#[cfg(test)]
mod differential;
mod entities;
mod index;
mod load;
pub mod store;
mod target;
#[cfg(test)]
mod test_approval;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{EntityId, EntityTypeName, EntityUid, PolicySet, Schema};

pub use decision::{Decision, DecisionInput, Principal, TargetDecision};
pub use load::{short_version, PolicyErrors, SourceError};
pub use store::{PolicyStore, ReloadState, Reloaded};
pub use target::{IdForm, Target};

/// The schema file's name inside the policies directory.
pub const SCHEMA_FILE: &str = "schema.cedarschema";
/// The entities file's name inside the policies directory.
pub const ENTITIES_FILE: &str = "entities.json";

/// A validated policy set with its schema and entities: what a request is
/// decided against, named by a version hash of the files it came from.
#[derive(Debug, Clone)]
pub struct PolicySnapshot {
    pub(crate) version: String,
    pub(crate) schema: Schema,
    pub(crate) policies: PolicySet,
    pub(crate) entities: entities::EntityStore,
    /// Every entity a policy names literally (`Kore::User::"x"`), so that a
    /// call's entity slice holds what the policies may read of them.
    pub(crate) literals: Vec<EntityUid>,
    /// Every entity a policy names literally, stored or not.
    pub(crate) named: HashSet<EntityUid>,
    /// The policies by the principal or resource their scope names.
    pub(crate) index: index::PolicyIndex,
    /// The schema's enumerated entity types (`entity Region enum [...]`),
    /// whose ids a request's schema check reads too; `None` when the schema
    /// could not be read for them, and then every request is checked whole.
    pub(crate) enum_types: Option<Vec<String>>,
    /// The schema's entity and action type names, parsed once at load
    /// (`uid` parses any other name each time).
    pub(crate) type_names: HashMap<Box<str>, EntityTypeName>,
    /// The caller's side of a call's entities, by action, caller and roles.
    pub(crate) callers: moka::sync::Cache<String, std::sync::Arc<decide::CallerSide>>,
    /// `@approval("why")` forbids by `@id`: a call that only they deny is
    /// held for a second caller's approval instead of refused.
    pub(crate) approvals: HashMap<String, String>,
    pub(crate) policy_files: BTreeMap<String, PathBuf>,
    pub(crate) entities_path: Option<PathBuf>,
    pub(crate) warnings: Vec<SourceError>,
}

impl PolicySnapshot {
    /// The policy-set version: `sha256:` and the full hex SHA-256 of the
    /// files (the trail records it whole, so no other set can pass for it).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `@approval` forbids: their `@id`s and the reasons they give.
    pub fn approval_policies(&self) -> &HashMap<String, String> {
        &self.approvals
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
        self.uid(entity_type, id)
            .is_ok_and(|uid| self.entities.contains(&uid))
    }

    /// A Cedar entity uid from a type and id, with the type's name parsed at
    /// load when the schema declares it.
    pub(crate) fn uid(&self, entity_type: &str, id: &str) -> Result<EntityUid, String> {
        named_uid(&self.type_names, entity_type, id)
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
}

/// The schema's entity type names and action type names (`Ns::Action`), by
/// their text.
pub(crate) fn type_names(schema: &Schema) -> HashMap<Box<str>, EntityTypeName> {
    schema
        .entity_types()
        .cloned()
        .chain(schema.actions().map(|a| a.type_name().clone()))
        .map(|name| (name.to_string().into_boxed_str(), name))
        .collect()
}

/// A Cedar entity uid from a type and id, with the type's name from `names`
/// when it is there (parsed otherwise).
pub(crate) fn named_uid(
    names: &HashMap<Box<str>, EntityTypeName>,
    entity_type: &str,
    id: &str,
) -> Result<EntityUid, String> {
    match names.get(entity_type) {
        Some(name) => Ok(EntityUid::from_type_name_and_id(
            name.clone(),
            EntityId::new(id),
        )),
        None => uid(entity_type, id),
    }
}

/// A Cedar entity uid from a type and id.
pub(crate) fn uid(entity_type: &str, id: &str) -> Result<EntityUid, String> {
    let name = EntityTypeName::from_str(entity_type)
        .map_err(|_| format!("`{entity_type}` is not an entity type name"))?;
    Ok(EntityUid::from_type_name_and_id(name, EntityId::new(id)))
}
