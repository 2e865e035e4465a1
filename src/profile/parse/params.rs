//! The two readers of an erasure call's parameters: a strict JSON object
//! body, or a query string with arrays as repeated keys; the context fields
//! read from either; and the canonical parameters the rebuilt call carries.

use std::collections::BTreeMap;

use http::header::CONTENT_TYPE;
use serde_json::{json, Map, Value};

use super::super::classify::RequestHead;
use super::super::definition::{ContextField, ContextType, ParamSource};
use super::super::text::shown;
use super::super::vendor::VendorProfile;
use super::error::ParseError;
use super::ids::{json_ids, query_ids};
use super::CallParams;
use crate::json::{self, StrictJsonError};

/// The parameters of one call, as read.
pub(super) enum Params {
    /// A JSON object body.
    Json(Map<String, Value>),
    /// A query string: each key with its values in the order sent.
    Query(BTreeMap<String, Vec<String>>),
}

fn is_json_media_type(value: &str) -> bool {
    let media = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

fn json_params(head: &RequestHead<'_>, body: &[u8]) -> Result<Params, ParseError> {
    if head.query.is_some_and(|q| !q.is_empty()) {
        return Err(ParseError::QueryNotAllowed);
    }
    if body.is_empty() {
        return Err(ParseError::EmptyBody);
    }
    // Only a JSON body is read as JSON: an upstream reading a form body could
    // find different fields in the same bytes.
    let mut types = head.headers.get_all(CONTENT_TYPE).iter();
    let declared_json = match (types.next(), types.next()) {
        (Some(value), None) => value.to_str().is_ok_and(is_json_media_type),
        _ => false,
    };
    if !declared_json {
        return Err(ParseError::ContentType);
    }
    match json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(Params::Json(map)),
        Ok(_) => Err(ParseError::NotAnObject),
        Err(StrictJsonError::DuplicateKey(key)) => Err(ParseError::DuplicateKey(shown(&key))),
        Err(StrictJsonError::Syntax(detail)) => Err(ParseError::InvalidJson(detail)),
    }
}

fn query_params(query: Option<&str>) -> Result<Params, ParseError> {
    let query = query.unwrap_or_default();
    if query.contains(';') {
        return Err(ParseError::QuerySeparator);
    }
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        params
            .entry(key.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    Ok(Params::Query(params))
}

impl Params {
    /// Reads the parameters where `source` says the call carries them,
    /// refusing a body or query string the call does not take.
    pub(super) fn read(
        source: ParamSource,
        head: &RequestHead<'_>,
        body: &[u8],
    ) -> Result<Self, ParseError> {
        match source {
            ParamSource::Body => json_params(head, body),
            ParamSource::Query => {
                if !body.is_empty() {
                    return Err(ParseError::BodyOnQueryCall);
                }
                query_params(head.query)
            }
            ParamSource::None => {
                if !body.is_empty() {
                    return Err(ParseError::BodyNotAllowed);
                }
                if head.query.is_some_and(|q| !q.is_empty()) {
                    return Err(ParseError::QueryNotAllowed);
                }
                Ok(Self::Query(BTreeMap::new()))
            }
        }
    }

    /// Refuses a field the profile does not allow, and (in a body) a field
    /// without a declared type that is not a string, number or boolean.
    pub(super) fn check_fields(&self, profile: &VendorProfile) -> Result<(), ParseError> {
        if let Some(unknown) = self
            .keys()
            .into_iter()
            .find(|key| !profile.allowed_fields.iter().any(|f| f == key))
        {
            return Err(ParseError::UnknownField(shown(unknown)));
        }
        if let Self::Json(map) = self {
            for (key, value) in map {
                let declared = profile
                    .targets
                    .iter()
                    .any(|t| t.field.as_deref() == Some(key.as_str()))
                    || profile.context.iter().any(|c| c.field == *key);
                let scalar = value.is_string() || value.is_number() || value.is_boolean();
                if !declared && !scalar {
                    return Err(ParseError::WrongType {
                        field: shown(key),
                        expected: "a string, number or boolean",
                    });
                }
            }
        }
        Ok(())
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            Self::Json(map) => map.keys().map(String::as_str).collect(),
            Self::Query(map) => map.keys().map(String::as_str).collect(),
        }
    }

    /// The ids of a target field, each with its element as sent (a JSON
    /// string or object, or the query value).
    pub(super) fn ids(
        &self,
        field: &str,
        object_fields: &[String],
    ) -> Result<Vec<(String, Value)>, ParseError> {
        match self {
            Self::Json(map) => map
                .get(field)
                .map_or_else(|| Ok(Vec::new()), |v| json_ids(field, v, object_fields)),
            Self::Query(map) => Ok(map
                .get(field)
                .map_or_else(|| Ok(Vec::new()), |v| query_ids(field, v))?
                .into_iter()
                .map(|id| {
                    let wire = Value::String(id.clone());
                    (id, wire)
                })
                .collect()),
        }
    }

    pub(super) fn context(
        &self,
        profile: &VendorProfile,
        spec: &ContextField,
    ) -> Result<Option<Value>, ParseError> {
        let field = spec.field.as_str();
        let wrong = |expected| ParseError::WrongType {
            field: field.to_owned(),
            expected,
        };
        let entity = |id: &str| {
            let entity_type = spec.entity_type.as_deref().map(|t| profile.qualified(t));
            json!({ "__entity": { "type": entity_type, "id": id } })
        };
        let strings = match (self, spec.kind) {
            (Self::Json(map), kind) => match (map.get(field), kind) {
                (None, _) => None,
                (Some(Value::Bool(b)), ContextType::Bool) => return Ok(Some(Value::Bool(*b))),
                (Some(_), ContextType::Bool) => return Err(wrong("true or false")),
                (Some(Value::String(s)), ContextType::String) => {
                    return Ok(Some(Value::String(s.clone())))
                }
                (Some(_), ContextType::String) => return Err(wrong("a string")),
                (Some(value), ContextType::StringSet | ContextType::EntitySet) => Some(
                    json_ids(field, value, &[])?
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect::<Vec<_>>(),
                ),
            },
            (Self::Query(map), kind) => match (map.get(field).map(Vec::as_slice), kind) {
                (None, _) => None,
                (Some([one]), ContextType::Bool) => match one.as_str() {
                    "true" => return Ok(Some(Value::Bool(true))),
                    "false" => return Ok(Some(Value::Bool(false))),
                    _ => return Err(wrong("true or false")),
                },
                (Some([one]), ContextType::String) => return Ok(Some(Value::String(one.clone()))),
                (Some(_), ContextType::Bool | ContextType::String) => {
                    return Err(wrong("a single value"))
                }
                (Some(values), ContextType::StringSet | ContextType::EntitySet) => {
                    Some(query_ids(field, values)?)
                }
            },
        };
        let Some(strings) = strings.or_else(|| {
            spec.default
                .as_ref()
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
        }) else {
            return Ok(spec.default.clone());
        };
        Ok(Some(match spec.kind {
            ContextType::EntitySet => strings.iter().map(|id| entity(id)).collect(),
            _ => strings.into_iter().map(Value::String).collect(),
        }))
    }

    /// The parameters as the rebuilt call carries them: target fields with
    /// their normalised ids, every other allowed field as sent (a JSON
    /// field without a declared type must be a string, number or boolean:
    /// the gateway forwards nothing it did not read).
    pub(super) fn canonical(
        &self,
        wire_ids: &BTreeMap<&str, Vec<Value>>,
    ) -> Result<CallParams, ParseError> {
        Ok(match self {
            Self::Json(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for key in keys {
                    let value = match wire_ids.get(key.as_str()) {
                        Some(ids) => Value::Array(ids.clone()),
                        None => map[key].clone(),
                    };
                    out.insert(key.clone(), sorted_keys(value));
                }
                CallParams::Body(out)
            }
            Self::Query(map) if map.is_empty() => CallParams::None,
            Self::Query(map) => {
                let mut pairs = Vec::new();
                for (key, values) in map {
                    match wire_ids.get(key.as_str()) {
                        Some(ids) if ids.is_empty() => pairs.push((key.clone(), String::new())),
                        Some(ids) => pairs.extend(
                            ids.iter()
                                .filter_map(Value::as_str)
                                .map(|id| (key.clone(), id.to_owned())),
                        ),
                        None => pairs.extend(values.iter().map(|v| (key.clone(), v.clone()))),
                    }
                }
                CallParams::Query(pairs)
            }
        })
    }
}

/// A JSON value with every object's keys in sorted order (serde_json keeps
/// insertion order in this build), for canonical serialisation.
fn sorted_keys(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(sorted_keys).collect()),
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted_keys(v)))
                    .collect(),
            )
        }
        other => other,
    }
}
