//! The stored entities (`entities.json`), kept as the JSON text of each
//! entity, by uid.
//!
//! Cedar's own `Entities` costs kilobytes an entity (attribute maps, ancestor
//! sets); a call reads a handful of them. So the store keeps each entity as
//! its text, validated against the schema at load, and each call builds
//! Cedar entities for its slice only (`decide.rs`).

use std::collections::HashMap;

use cedar_policy::{Entities, Entity, EntityUid, Schema};
use serde_json::value::RawValue;

/// Entities validated against the schema at load, in batches of this many:
/// what Cedar holds at once while the file is checked.
const BATCH: usize = 1024;

/// The stored entities, and the schema's action entities.
#[derive(Debug, Clone)]
pub(crate) struct EntityStore {
    /// `type \0 id` → the entity's JSON text.
    by_uid: HashMap<Box<str>, Box<str>>,
    /// The schema's actions (with their groups as parents).
    actions: Entities,
}

/// Why an entity file does not load.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// Not JSON, or not an array of objects with a `uid`.
    Json(serde_json::Error),
    /// Cedar refused an entity (schema, types, attributes); its message.
    Entity(String),
}

impl EntityStore {
    /// The schema's action entities alone (no entities file).
    pub(crate) fn actions_only(schema: &Schema) -> Result<Self, String> {
        Ok(Self {
            by_uid: HashMap::new(),
            actions: actions(schema)?,
        })
    }

    /// Reads and validates an entities file: each entity against the
    /// schema, each uid once. `refuse` may turn an entity away by its uid
    /// (e.g. callers, which come from the config).
    pub(crate) fn from_json(
        text: &str,
        schema: &Schema,
        refuse: impl Fn(&EntityUid) -> Option<String>,
    ) -> Result<Self, StoreError> {
        let raw: Vec<&RawValue> = serde_json::from_str(text).map_err(StoreError::Json)?;
        let mut by_uid = HashMap::with_capacity(raw.len());
        let names = super::type_names(schema);
        let uid_of = |t: &str, id: &str| super::named_uid(&names, t, id).ok();
        for batch in raw.chunks(BATCH) {
            let values = batch
                .iter()
                .map(|entity| serde_json::from_str::<serde_json::Value>(entity.get()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::Json)?;
            // Checked as the entities read literally when they can be (the
            // same check, without the cost of Cedar's JSON parser), else by
            // Cedar's parser, which also reads the implicit forms and says
            // what does not fit.
            let literal: Option<Vec<Entity>> = values
                .iter()
                .map(|v| super::decide::literal_entity(v, uid_of))
                .collect();
            if let Some(literal) = literal {
                let uids: Vec<EntityUid> = literal.iter().map(Entity::uid).collect();
                if Entities::from_entities(literal, Some(schema)).is_ok() {
                    Self::index(batch, uids, &refuse, &mut by_uid)?;
                    continue;
                }
            }
            let mut joined = String::with_capacity(batch.iter().map(|r| r.get().len() + 1).sum());
            joined.push('[');
            for (n, entity) in batch.iter().enumerate() {
                if n > 0 {
                    joined.push(',');
                }
                joined.push_str(entity.get());
            }
            joined.push(']');
            Entities::from_json_str(&joined, Some(schema))
                .map_err(|e| StoreError::Entity(super::load::diagnostic_message(&e)))?;
            let uids = values
                .iter()
                .map(|v| {
                    EntityUid::from_json(v.get("uid").cloned().unwrap_or_default())
                        .map_err(|e| StoreError::Entity(format!("entity uid: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Self::index(batch, uids, &refuse, &mut by_uid)?;
        }
        by_uid.shrink_to_fit();
        Ok(Self {
            by_uid,
            actions: actions(schema).map_err(StoreError::Entity)?,
        })
    }

    /// Adds a checked batch to `by_uid`, each uid once.
    fn index(
        batch: &[&RawValue],
        uids: Vec<EntityUid>,
        refuse: &impl Fn(&EntityUid) -> Option<String>,
        by_uid: &mut HashMap<Box<str>, Box<str>>,
    ) -> Result<(), StoreError> {
        for (entity, uid) in batch.iter().zip(uids) {
            if let Some(refused) = refuse(&uid) {
                return Err(StoreError::Entity(refused));
            }
            if by_uid.insert(key(&uid), entity.get().into()).is_some() {
                return Err(StoreError::Entity(format!("`{uid}` is listed twice")));
            }
        }
        Ok(())
    }

    /// The stored entity's JSON text.
    pub(crate) fn get(&self, uid: &EntityUid) -> Option<&str> {
        self.by_uid.get(key(uid).as_ref()).map(AsRef::as_ref)
    }

    /// Whether `uid` is a stored entity or an action of the schema.
    pub(crate) fn contains(&self, uid: &EntityUid) -> bool {
        self.get(uid).is_some() || self.actions.get(uid).is_some()
    }

    /// The action entity `uid` and the uids of its groups.
    pub(crate) fn action(&self, uid: &EntityUid) -> Option<(&Entity, Vec<EntityUid>)> {
        let action = self.actions.get(uid)?;
        let groups = self
            .actions
            .ancestors(uid)
            .map(|a| a.cloned().collect())
            .unwrap_or_default();
        Some((action, groups))
    }

    /// The uids of the stored entities (`type`, unescaped `id`).
    pub(crate) fn uids(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_uid.keys().filter_map(|k| k.split_once('\0'))
    }

    /// Every stored entity and action as one Cedar `Entities`: what a call
    /// would be decided on without slicing (the tests compare the two).
    #[cfg(test)]
    pub(crate) fn whole(&self, schema: &Schema) -> Entities {
        let all: Vec<serde_json::Value> = self
            .by_uid
            .values()
            .filter_map(|text| serde_json::from_str(text).ok())
            .collect();
        Entities::from_json_value(serde_json::Value::Array(all), Some(schema))
            .expect("stored entities were validated at load")
    }
}

fn actions(schema: &Schema) -> Result<Entities, String> {
    Entities::from_entities([], Some(schema)).map_err(|e| super::load::diagnostic_message(&e))
}

fn key(uid: &EntityUid) -> Box<str> {
    format!("{}\0{}", uid.type_name(), uid.id().unescaped()).into()
}
