//! Strict reading of a classified erasure call into an [`ErasureRequest`]:
//! one Cedar resource per id, vendor flags in the context. Anything the
//! gateway might read differently from the upstream is an error, and errors
//! name fields and indexes, never the ids (they are personal data).

use std::collections::BTreeMap;
use std::fmt;

use http::header::CONTENT_TYPE;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::classify::{ErasureCall, RequestHead};
use super::definition::{ContextField, ContextType, IdForm, ParamSource, VendorProfile};
use super::path::PathPattern;
use crate::json::{self, StrictJsonError};

/// Characters escaped inside each part of an object id, so that the `/`
/// joining the parts stays unambiguous.
const ID_PART: &AsciiSet = &CONTROLS.add(b'%').add(b'/');

/// One id to erase, typed as a Cedar entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Fully qualified Cedar entity type (`Seam::Customer`).
    pub entity_type: String,
    /// The entity id as the caller sent it (decoded from the query string or
    /// path; object ids as documented on
    /// [`TargetSource::object_fields`](super::TargetSource::object_fields)),
    /// in the form the vendor compares it in ([`IdForm`]).
    pub id: String,
    /// How the id was normalised before lookup (recorded when not exact).
    #[serde(skip_serializing_if = "IdForm::is_exact")]
    pub id_form: IdForm,
}

impl Target {
    /// A target whose id is compared byte for byte.
    #[must_use]
    pub fn exact(entity_type: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            entity_type: entity_type.into(),
            id: id.into(),
            id_form: IdForm::Exact,
        }
    }
}

/// The call's parameters in canonical form: what the rebuilt outbound
/// request carries, and nothing else.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CallParams {
    /// A JSON object body: target arrays (normalised ids), context fields
    /// and the other allowed fields, keys sorted.
    Body(Map<String, Value>),
    /// Query pairs, keys sorted, repeated keys in the order sent.
    Query(Vec<(String, String)>),
    /// Neither: the path carries the id.
    None,
}

/// A parsed erasure call: what the Cedar stage decides on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErasureRequest {
    /// The profile name (`seam`).
    pub vendor: String,
    /// The Cedar namespace (`Seam`).
    pub namespace: String,
    /// The Cedar action id (`delete_data`).
    pub action: String,
    /// Every id in the call, in profile target order, then request order.
    pub targets: Vec<Target>,
    /// Vendor context from the call (`bots`, `remove_from_all_bots`,
    /// `workspace`); entity sets are Cedar entity references.
    pub context: Map<String, Value>,
    /// The erasure method (`DELETE`).
    pub method: String,
    /// The vendor-relative path in canonical spelling, captures normalised
    /// and percent-encoded (`/customer/abc`).
    pub path: String,
    /// The parameters the forwarded call carries.
    pub params: CallParams,
}

/// What is wrong with one element of an id array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetProblem {
    /// An empty or blank string.
    Empty,
    /// Not a string (and objects are not accepted here).
    NotAString,
    /// Not a string, nor an object with exactly the expected fields, each a
    /// non-empty string.
    BadObject,
    /// A query value with a comma, which an upstream may split into several
    /// ids (Seam's query parser accepts `keys=a,b`).
    Comma,
    /// Not valid UTF-8 once percent-decoded.
    NotUtf8,
    /// Leading or trailing whitespace: the vendor may trim it and erase
    /// someone the gateway did not look up.
    Padded,
    /// A control character.
    ControlCharacter,
}

/// Whether an id (or id part) is usable as sent: non-blank, unpadded, free
/// of control characters.
fn check_id(id: &str) -> Result<(), TargetProblem> {
    if id.trim().is_empty() {
        Err(TargetProblem::Empty)
    } else if id.trim() != id {
        Err(TargetProblem::Padded)
    } else if id.chars().any(char::is_control) {
        Err(TargetProblem::ControlCharacter)
    } else {
        Ok(())
    }
}

impl fmt::Display for TargetProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "is empty",
            Self::NotAString => "is not a string",
            Self::BadObject => {
                "is neither a non-empty string nor an object with exactly the expected fields, each a non-empty string"
            }
            Self::Comma => "contains a comma, which the upstream may read as several ids",
            Self::NotUtf8 => "is not valid UTF-8",
            Self::Padded => "has leading or trailing whitespace",
            Self::ControlCharacter => "contains a control character",
        })
    }
}

/// Why an erasure call was refused while reading it (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body-form call has no body.
    #[error("the body is empty; this call takes a JSON object")]
    EmptyBody,
    /// The body is not JSON (serde_json's description: position and kind).
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    /// An object in the body repeats a key.
    #[error("the body repeats the key `{0}`")]
    DuplicateKey(String),
    /// The body is JSON but not an object.
    #[error("the body must be a JSON object")]
    NotAnObject,
    /// The body is not declared as JSON.
    #[error("the body must be sent with content type `application/json`")]
    ContentType,
    /// A field the profile does not allow.
    #[error("field `{0}` is not accepted on this call")]
    UnknownField(String),
    /// A known field of the wrong type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: String,
        /// What it must be.
        expected: &'static str,
    },
    /// One element of an id array (or a path id) is unusable.
    #[error("field `{field}` element {index} {problem}")]
    BadElement {
        /// The field or path parameter.
        field: String,
        /// The element's index (0 for a path parameter).
        index: usize,
        /// What is wrong with it.
        problem: TargetProblem,
    },
    /// The call names nothing to erase.
    #[error("the call names no target to erase")]
    NoTargets,
    /// A body on a call that takes its parameters in the query string.
    #[error("this call takes its parameters in the query string; the body must be empty")]
    BodyOnQueryCall,
    /// A body on a call that takes its id from the path only.
    #[error("this call takes no body")]
    BodyNotAllowed,
    /// A query string on a call that takes its parameters elsewhere.
    #[error("this call takes no query string")]
    QueryNotAllowed,
    /// A `;` in the query string, which some servers treat as `&`.
    #[error("the query string contains `;`, which some servers read as a separator")]
    QuerySeparator,
    /// A header the call depends on is unusable.
    #[error("header `{header}` {problem}")]
    BadHeader {
        /// The header name.
        header: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The classified call lacks a path capture the profile needs.
    #[error("path parameter `{0}` is missing")]
    MissingPathParam(String),
    /// The profile's path pattern is malformed (it is validated at load).
    #[error("the vendor profile's path pattern is invalid: {0}")]
    InvalidProfile(String),
}

/// A field name from the request, cut short and with control characters
/// replaced, fit for an error message.
fn shown(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
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

enum Params {
    Json(Map<String, Value>),
    Query(BTreeMap<String, Vec<String>>),
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

fn object_id(map: &Map<String, Value>, fields: &[String]) -> Result<String, TargetProblem> {
    if map.len() != fields.len() {
        return Err(TargetProblem::BadObject);
    }
    let parts = fields
        .iter()
        .map(|name| match map.get(name) {
            Some(Value::String(s)) => {
                check_id(s).map_err(|problem| match problem {
                    TargetProblem::Empty => TargetProblem::BadObject,
                    other => other,
                })?;
                Ok(utf8_percent_encode(s, ID_PART).to_string())
            }
            _ => Err(TargetProblem::BadObject),
        })
        .collect::<Result<Vec<String>, TargetProblem>>()?;
    Ok(parts.join("/"))
}

fn bad(field: &str, index: usize, problem: TargetProblem) -> ParseError {
    ParseError::BadElement {
        field: field.to_owned(),
        index,
        problem,
    }
}

/// The ids in a repeated query key. A single blank value is the empty array
/// (how `@seamapi/url-search-params-serializer` writes `[]`, and how Seam's
/// parser reads it); any other blank value is an empty id.
fn query_ids(field: &str, values: &[String]) -> Result<Vec<String>, ParseError> {
    if let [only] = values {
        if only.trim().is_empty() {
            return Ok(Vec::new());
        }
    }
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            if value.contains(char::REPLACEMENT_CHARACTER) {
                return Err(bad(field, index, TargetProblem::NotUtf8));
            }
            check_id(value).map_err(|problem| bad(field, index, problem))?;
            if value.contains(',') {
                Err(bad(field, index, TargetProblem::Comma))
            } else {
                Ok(value.clone())
            }
        })
        .collect()
}

/// The ids in a JSON array: non-empty strings, or (with `object_fields`)
/// objects of exactly those non-empty string fields; each with the element
/// as sent.
fn json_ids(
    field: &str,
    value: &Value,
    object_fields: &[String],
) -> Result<Vec<(String, Value)>, ParseError> {
    let Value::Array(items) = value else {
        return Err(ParseError::WrongType {
            field: field.to_owned(),
            expected: "an array of ids",
        });
    };
    let not_string = if object_fields.is_empty() {
        TargetProblem::NotAString
    } else {
        TargetProblem::BadObject
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(s) => check_id(s)
                .map(|()| (s.clone(), item.clone()))
                .map_err(|problem| bad(field, index, problem)),
            Value::Object(map) if !object_fields.is_empty() => object_id(map, object_fields)
                .map(|id| (id, item.clone()))
                .map_err(|problem| bad(field, index, problem)),
            _ => Err(bad(field, index, not_string)),
        })
        .collect()
}

impl Params {
    fn keys(&self) -> Vec<&str> {
        match self {
            Self::Json(map) => map.keys().map(String::as_str).collect(),
            Self::Query(map) => map.keys().map(String::as_str).collect(),
        }
    }

    /// The ids of a target field, each with its element as sent (a JSON
    /// string or object, or the query value).
    fn ids(
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

    fn context(
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
}

fn workspace(
    profile: &VendorProfile,
    head: &RequestHead<'_>,
) -> Result<Option<String>, ParseError> {
    let Some(name) = profile.workspace_header.as_deref() else {
        return Ok(None);
    };
    let problem = |problem| ParseError::BadHeader {
        header: name.to_owned(),
        problem,
    };
    let mut values = head.headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(problem("appears more than once")),
        (Some(value), None) => {
            let text = value
                .to_str()
                .map_err(|_| problem("is not visible ASCII"))?;
            if text.trim().is_empty() {
                return Err(problem("is empty"));
            }
            Ok(Some(text.to_owned()))
        }
    }
}

/// Reads a classified erasure call strictly.
///
/// Body-form calls need a JSON object body declared `application/json`,
/// with no duplicate key at any depth and no query string. Query-form calls
/// need an empty body; arrays are repeated keys. Path-only calls need
/// neither body nor query. Every top-level field must be in
/// `allowed_fields`; ids must be non-empty strings (or the profile's object
/// shape); context fields must have their declared type; and the call must
/// name at least one target. The `workspace_header`, when present, becomes
/// context `workspace`.
///
/// # Errors
/// A [`ParseError`] naming the field (and element index) at fault.
pub fn parse(
    profile: &VendorProfile,
    call: &ErasureCall,
    head: &RequestHead<'_>,
    body: &[u8],
) -> Result<ErasureRequest, ParseError> {
    let params = match call.source {
        ParamSource::Body => json_params(head, body)?,
        ParamSource::Query => {
            if !body.is_empty() {
                return Err(ParseError::BodyOnQueryCall);
            }
            query_params(head.query)?
        }
        ParamSource::None => {
            if !body.is_empty() {
                return Err(ParseError::BodyNotAllowed);
            }
            if head.query.is_some_and(|q| !q.is_empty()) {
                return Err(ParseError::QueryNotAllowed);
            }
            Params::Query(BTreeMap::new())
        }
    };
    if let Some(unknown) = params
        .keys()
        .into_iter()
        .find(|key| !profile.allowed_fields.iter().any(|f| f == key))
    {
        return Err(ParseError::UnknownField(shown(unknown)));
    }
    if let Params::Json(map) = &params {
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
    let mut targets = Vec::new();
    let mut wire_ids: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut path_params = call.path_params.clone();
    for source in &profile.targets {
        let entity_type = profile.qualified(&source.entity_type);
        let form = source.id_form;
        let target = |id: &str| Target {
            entity_type: entity_type.clone(),
            id: form.apply(id),
            id_form: form,
        };
        match (&source.field, &source.path_param) {
            (Some(field), _) => {
                let ids = params.ids(field, &source.object_fields)?;
                let wires = wire_ids.entry(field.as_str()).or_default();
                for (id, wire) in ids {
                    wires.push(match wire {
                        Value::String(_) => Value::String(form.apply(&id)),
                        other => other,
                    });
                    targets.push(target(&id));
                }
            }
            (None, Some(name)) => {
                let id = call
                    .path_params
                    .get(name)
                    .ok_or_else(|| ParseError::MissingPathParam(name.clone()))?;
                check_id(id).map_err(|problem| bad(name, 0, problem))?;
                let decided = target(id);
                path_params.insert(name.clone(), decided.id.clone());
                targets.push(decided);
            }
            (None, None) => {}
        }
    }
    let mut context = Map::new();
    for spec in &profile.context {
        if let Some(value) = params.context(profile, spec)? {
            context.insert(spec.key.clone(), value);
        }
    }
    if let Some(ws) = workspace(profile, head)? {
        context.insert("workspace".to_owned(), Value::String(ws));
    }
    if targets.is_empty() {
        return Err(ParseError::NoTargets);
    }
    let pattern = PathPattern::parse(&profile.path).map_err(ParseError::InvalidProfile)?;
    Ok(ErasureRequest {
        vendor: profile.name.clone(),
        namespace: profile.namespace.clone(),
        action: profile.action.clone(),
        targets,
        context,
        method: call.method.as_str().to_owned(),
        path: pattern.render(&path_params),
        params: params.canonical(&wire_ids)?,
    })
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

impl Params {
    /// The parameters as the rebuilt call carries them: target fields with
    /// their normalised ids, every other allowed field as sent (a JSON
    /// field without a declared type must be a string, number or boolean:
    /// the gateway forwards nothing it did not read).
    fn canonical(&self, wire_ids: &BTreeMap<&str, Vec<Value>>) -> Result<CallParams, ParseError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::{builtin, classify, Classification};
    use http::{HeaderMap, HeaderValue, Method};
    use proptest::prelude::*;

    struct Call {
        method: Method,
        path: String,
        query: Option<String>,
        headers: HeaderMap,
    }

    impl Call {
        fn new(
            method: &str,
            path: &str,
            query: Option<&str>,
            headers: &[(&'static str, &str)],
        ) -> Self {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(*name, HeaderValue::from_str(value).unwrap());
            }
            Self {
                method: Method::from_bytes(method.as_bytes()).unwrap(),
                path: path.to_owned(),
                query: query.map(str::to_owned),
                headers: map,
            }
        }

        fn head(&self) -> RequestHead<'_> {
            RequestHead {
                method: &self.method,
                path: &self.path,
                query: self.query.as_deref(),
                headers: &self.headers,
                has_body: false,
            }
        }

        /// Classifies (must be an erasure call) and parses.
        fn parse(&self, vendor: &str, body: &[u8]) -> Result<ErasureRequest, ParseError> {
            let profile = builtin(vendor).unwrap();
            let head = self.head();
            match classify(&profile, &head) {
                Classification::Erasure(call) => parse(&profile, &call, &head, body),
                other => panic!(
                    "{} {} is not an erasure call: {other:?}",
                    self.method, self.path
                ),
            }
        }
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    fn seam_post(body: &str) -> Result<ErasureRequest, ParseError> {
        Call::new("POST", "/customers/delete_data", None, &[JSON]).parse("seam", body.as_bytes())
    }

    fn seam_delete(query: &str, body: &str) -> Result<ErasureRequest, ParseError> {
        Call::new("DELETE", "/customers/delete_data", Some(query), &[])
            .parse("seam", body.as_bytes())
    }

    fn kore(body: &str) -> Result<ErasureRequest, ParseError> {
        Call::new("DELETE", "/api/public/bot/eraseUsersData", None, &[JSON])
            .parse("kore", body.as_bytes())
    }

    fn target(entity_type: &str, id: &str) -> Target {
        let id_form = if entity_type == "Kore::User" {
            IdForm::EmailCasefold
        } else {
            IdForm::Exact
        };
        Target {
            entity_type: entity_type.to_owned(),
            id: id.to_owned(),
            id_form,
        }
    }

    #[test]
    fn seam_documented_sample_parses_into_its_targets() {
        // docs.seam.co "delete_data" guide: reservation and user identity keys.
        let call = Call::new(
            "POST",
            "/customers/delete_data",
            None,
            &[
                ("authorization", "Bearer seam_test_key"),
                ("content-type", "application/json"),
            ],
        );
        let req = call
            .parse(
                "seam",
                br#"{"reservation_keys": ["res_456"], "user_identity_keys": ["user_789"]}"#,
            )
            .unwrap();
        assert_eq!(req.vendor, "seam");
        assert_eq!(req.namespace, "Seam");
        assert_eq!(req.action, "delete_data");
        assert_eq!(
            req.targets,
            [
                target("Seam::Reservation", "res_456"),
                target("Seam::UserIdentity", "user_789")
            ]
        );
        assert!(req.context.is_empty());
    }

    #[test]
    fn seam_workspace_header_lands_in_the_context() {
        let call = Call::new(
            "POST",
            "/customers/delete_data",
            None,
            &[JSON, ("seam-workspace", "ws_1")],
        );
        let req = call.parse("seam", br#"{"customer_keys":["c1"]}"#).unwrap();
        assert_eq!(req.context.get("workspace"), Some(&json!("ws_1")));
    }

    #[test]
    fn kore_documented_sample_parses_into_users_and_bot_scope() {
        let call = Call::new(
            "DELETE",
            "/api/public/bot/eraseUsersData",
            None,
            &[JSON, ("auth", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")],
        );
        let body = br#"{
    "userIds": ["u-xxxxxxxx-xxxx-xxx-xxxx-xxxxxxxxxxx"],
    "botIds": ["st-xxxxxxxx-xxxx-xxx-xxxx-xxxxxxxxxxxx"],
    "RemoveDataFromAllBots": true
  }"#;
        let req = call.parse("kore", body).unwrap();
        assert_eq!(req.action, "eraseUsersData");
        assert_eq!(
            req.targets,
            [target("Kore::User", "u-xxxxxxxx-xxxx-xxx-xxxx-xxxxxxxxxxx")]
        );
        assert_eq!(
            Value::Object(req.context),
            json!({
                "bots": [{"__entity": {"type": "Kore::Bot", "id": "st-xxxxxxxx-xxxx-xxx-xxxx-xxxxxxxxxxxx"}}],
                "remove_from_all_bots": true
            })
        );
    }

    #[test]
    fn kore_channel_objects_become_one_joined_id_and_the_flag_defaults_to_false() {
        let req = kore(
            r#"{"userIds":["a@example.com",{"channel_user_id":"u/1","channel_id":"msteams"}]}"#,
        )
        .unwrap();
        assert_eq!(
            req.targets,
            [
                target("Kore::User", "a@example.com"),
                target("Kore::User", "msteams/u%2F1")
            ]
        );
        assert_eq!(req.context.get("remove_from_all_bots"), Some(&json!(false)));
        assert_eq!(req.context.get("bots"), None);
    }

    #[test]
    fn botpenguin_documented_sample_parses_the_path_id() {
        let call = Call::new(
            "DELETE",
            "/customer/cust_123",
            None,
            &[("authorization", "Bearer token"), ("authtype", "Key")],
        );
        let req = call.parse("botpenguin", b"").unwrap();
        assert_eq!(req.action, "delete_customer");
        assert_eq!(req.targets, [target("BotPenguin::Customer", "cust_123")]);
        assert!(req.context.is_empty());
    }

    #[test]
    fn padded_or_control_character_ids_are_refused_everywhere() {
        for body in [
            r#"{"userIds":[" owner@example.com"]}"#,
            r#"{"userIds":["owner@example.com "]}"#,
            r#"{"userIds":["owner@example.com\n"]}"#,
            r#"{"userIds":["u-1\u0000"]}"#,
            r#"{"userIds":[{"channel_id":" c","channel_user_id":"u"}]}"#,
            r#"{"userIds":["u-1"],"botIds":[" st-1"]}"#,
        ] {
            assert!(
                matches!(kore(body), Err(ParseError::BadElement { .. })),
                "{body}"
            );
        }
        assert!(matches!(
            seam_delete("customer_keys=%20c1", ""),
            Err(ParseError::BadElement {
                problem: TargetProblem::Padded,
                ..
            })
        ));
        let call = Call::new("DELETE", "/customer/c1%20", None, &[]);
        assert!(matches!(
            call.parse("botpenguin", b""),
            Err(ParseError::BadElement {
                problem: TargetProblem::Padded,
                ..
            })
        ));
    }

    #[test]
    fn kore_email_ids_are_compared_case_folded_and_forwarded_folded() {
        let req = kore(r#"{"userIds":["Owner@EXAMPLE.COM","u-AbC"]}"#).unwrap();
        assert_eq!(
            req.targets,
            [
                target("Kore::User", "owner@example.com"),
                target("Kore::User", "u-AbC")
            ]
        );
        let CallParams::Body(body) = &req.params else {
            panic!("a body call");
        };
        assert_eq!(body["userIds"], json!(["owner@example.com", "u-AbC"]));
    }

    #[test]
    fn untyped_allowed_fields_must_be_scalars_in_a_body() {
        assert!(matches!(
            seam_post(r#"{"customer_keys":["c1"],"_strict":{"nested":["c2"]}}"#),
            Err(ParseError::WrongType { .. })
        ));
        assert!(seam_post(r#"{"customer_keys":["c1"],"_strict":true}"#).is_ok());
    }

    #[test]
    fn seam_body_form_and_query_form_give_identical_requests() {
        let body =
            seam_post(r#"{"user_keys":["u1"],"customer_keys":["c 1","c&2"],"space_keys":[]}"#)
                .unwrap();
        // As @seamapi/url-search-params-serializer writes it: sorted, repeated
        // keys, URLSearchParams encoding, `key=` for an empty array.
        let query = seam_delete(
            "customer_keys=c+1&customer_keys=c%262&space_keys=&user_keys=u1",
            "",
        )
        .unwrap();
        assert_eq!(body.targets, query.targets);
        assert_eq!(body.context, query.context);
        let get = Call::new(
            "GET",
            "/customers/delete_data",
            Some("user_keys=u1&customer_keys=c%201&customer_keys=c%262"),
            &[],
        )
        .parse("seam", b"")
        .unwrap();
        assert_eq!(body.targets, get.targets);
        assert_eq!(
            get.params,
            CallParams::Query(vec![
                ("customer_keys".into(), "c 1".into()),
                ("customer_keys".into(), "c&2".into()),
                ("user_keys".into(), "u1".into()),
            ])
        );
    }

    fn tag(err: &ParseError) -> &'static str {
        match err {
            ParseError::EmptyBody => "empty_body",
            ParseError::InvalidJson(_) => "invalid_json",
            ParseError::DuplicateKey(_) => "duplicate_key",
            ParseError::NotAnObject => "not_an_object",
            ParseError::ContentType => "content_type",
            ParseError::UnknownField(_) => "unknown_field",
            ParseError::WrongType { .. } => "wrong_type",
            ParseError::BadElement { .. } => "bad_element",
            ParseError::NoTargets => "no_targets",
            ParseError::BodyOnQueryCall => "body_on_query_call",
            ParseError::BodyNotAllowed => "body_not_allowed",
            ParseError::QueryNotAllowed => "query_not_allowed",
            ParseError::QuerySeparator => "query_separator",
            ParseError::BadHeader { .. } => "bad_header",
            ParseError::MissingPathParam(_) => "missing_path_param",
            ParseError::InvalidProfile(_) => "invalid_profile",
        }
    }

    #[test]
    fn every_strict_parse_refusal_cause_is_refused() {
        let rows: Vec<(Result<ErasureRequest, ParseError>, &str)> = vec![
            // Seam, body form
            (seam_post(""), "empty_body"),
            (seam_post("{"), "invalid_json"),
            (seam_post(r#"{"customer_keys":["a"]} x"#), "invalid_json"),
            (seam_post("[]"), "not_an_object"),
            (seam_post(r#""customer_keys""#), "not_an_object"),
            (
                seam_post(r#"{"customer_keys":["a"],"customer_keys":["b"]}"#),
                "duplicate_key",
            ),
            (
                seam_post(r#"{"customer_keys":["a"],"x":{"k":1,"k":2}}"#),
                "duplicate_key",
            ),
            (seam_post(r#"{"customer_keys":"a"}"#), "wrong_type"),
            (seam_post(r#"{"customer_keys":null}"#), "wrong_type"),
            (seam_post(r#"{"customer_keys":{"0":"a"}}"#), "wrong_type"),
            (seam_post(r#"{"customer_keys":[""]}"#), "bad_element"),
            (seam_post(r#"{"customer_keys":["a","  "]}"#), "bad_element"),
            (seam_post(r#"{"customer_keys":[1]}"#), "bad_element"),
            (seam_post(r#"{"customer_keys":[null]}"#), "bad_element"),
            (seam_post(r#"{"customer_keys":[["a"]]}"#), "bad_element"),
            (
                seam_post(r#"{"customer_keys":[{"channel_id":"a","channel_user_id":"b"}]}"#),
                "bad_element",
            ),
            (
                seam_post(r#"{"customer_keys":["a"],"force":true}"#),
                "unknown_field",
            ),
            (
                seam_post(r#"{"customer_keys":["a"],"Customer_Keys":["b"]}"#),
                "unknown_field",
            ),
            (seam_post("{}"), "no_targets"),
            (
                seam_post(r#"{"customer_keys":[],"user_keys":[]}"#),
                "no_targets",
            ),
            (
                Call::new(
                    "POST",
                    "/customers/delete_data",
                    None,
                    &[("content-type", "text/plain")],
                )
                .parse("seam", br#"{"customer_keys":["a"]}"#),
                "content_type",
            ),
            (
                Call::new("POST", "/customers/delete_data", None, &[])
                    .parse("seam", br#"{"customer_keys":["a"]}"#),
                "content_type",
            ),
            (
                Call::new(
                    "POST",
                    "/customers/delete_data",
                    None,
                    &[("content-type", "application/x-www-form-urlencoded")],
                )
                .parse("seam", b"customer_keys=a"),
                "content_type",
            ),
            (
                Call::new(
                    "POST",
                    "/customers/delete_data",
                    None,
                    &[JSON, ("seam-workspace", "")],
                )
                .parse("seam", br#"{"customer_keys":["a"]}"#),
                "bad_header",
            ),
            // Seam, query form
            (
                seam_delete("customer_keys=a", r#"{"customer_keys":["b"]}"#),
                "body_on_query_call",
            ),
            (seam_delete("customer_keys=a", " "), "body_on_query_call"),
            (seam_delete("", ""), "no_targets"),
            (seam_delete("customer_keys=", ""), "no_targets"),
            (seam_delete("customer_keys=a,b", ""), "bad_element"),
            (seam_delete("customer_keys=a%2Cb", ""), "bad_element"),
            (
                seam_delete("customer_keys=a&customer_keys=", ""),
                "bad_element",
            ),
            (
                seam_delete("customer_keys=&customer_keys=", ""),
                "bad_element",
            ),
            (seam_delete("customer_keys=%FF", ""), "bad_element"),
            (seam_delete("customer_keys[]=a", ""), "unknown_field"),
            (seam_delete("customer_keys%5B%5D=a", ""), "unknown_field"),
            (seam_delete("customer_keys[0]=a", ""), "unknown_field"),
            (seam_delete("customer_keys=a&force=1", ""), "unknown_field"),
            (
                seam_delete("customer_keys=a;user_keys=b", ""),
                "query_separator",
            ),
            // Kore.ai
            (
                kore(r#"{"userIds":["u-1"],"userIds":["u-2"]}"#),
                "duplicate_key",
            ),
            (
                kore(r#"{"userIds":[{"channel_id":"c","channel_id":"d","channel_user_id":"u"}]}"#),
                "duplicate_key",
            ),
            (kore(r#"{"userIds":[{"channel_id":"c"}]}"#), "bad_element"),
            (
                kore(r#"{"userIds":[{"channel_id":"c","channel_user_id":"u","x":"y"}]}"#),
                "bad_element",
            ),
            (
                kore(r#"{"userIds":[{"channel_id":"","channel_user_id":"u"}]}"#),
                "bad_element",
            ),
            (
                kore(r#"{"userIds":[{"channel_id":1,"channel_user_id":"u"}]}"#),
                "bad_element",
            ),
            (kore(r#"{"userIds":[""]}"#), "bad_element"),
            (kore(r#"{"userIds":[null]}"#), "bad_element"),
            (kore(r#"{"userIds":"u-1"}"#), "wrong_type"),
            (kore(r#"{"userIds":["u-1"],"botIds":"st-1"}"#), "wrong_type"),
            (kore(r#"{"userIds":["u-1"],"botIds":[""]}"#), "bad_element"),
            (kore(r#"{"userIds":["u-1"],"botIds":[7]}"#), "bad_element"),
            (
                kore(r#"{"userIds":["u-1"],"RemoveDataFromAllBots":"true"}"#),
                "wrong_type",
            ),
            (
                kore(r#"{"userIds":["u-1"],"RemoveDataFromAllBots":null}"#),
                "wrong_type",
            ),
            (
                kore(r#"{"userIds":["u-1"],"removeDataFromAllBots":true}"#),
                "unknown_field",
            ),
            (
                kore(r#"{"botIds":["st-1"],"RemoveDataFromAllBots":true}"#),
                "no_targets",
            ),
            (kore(r#"{"userIds":[]}"#), "no_targets"),
            (kore("null"), "not_an_object"),
            (kore("{\"userIds\":[\"u-1\"]"), "invalid_json"),
            // BotPenguin
            (
                Call::new("DELETE", "/customer/abc", None, &[JSON]).parse("botpenguin", b"{}"),
                "body_not_allowed",
            ),
        ];
        for (i, (got, want)) in rows.iter().enumerate() {
            match got {
                Err(err) => assert_eq!(tag(err), *want, "row {i}: {err}"),
                Ok(req) => panic!("row {i}: expected {want}, parsed {req:?}"),
            }
        }
    }

    #[test]
    fn parse_refuses_a_query_on_a_body_or_path_only_call_even_if_classify_was_skipped() {
        let seam = builtin("seam").unwrap();
        let call = Call::new(
            "POST",
            "/customers/delete_data",
            Some("customer_keys=x"),
            &[JSON],
        );
        let erasure = ErasureCall {
            method: Method::POST,
            source: ParamSource::Body,
            path_params: BTreeMap::new(),
        };
        assert_eq!(
            parse(&seam, &erasure, &call.head(), br#"{"customer_keys":["a"]}"#),
            Err(ParseError::QueryNotAllowed)
        );
        let bp = builtin("botpenguin").unwrap();
        let call = Call::new("DELETE", "/customer/abc", Some("x=1"), &[]);
        let erasure = ErasureCall {
            method: Method::DELETE,
            source: ParamSource::None,
            path_params: BTreeMap::from([("customer_id".to_owned(), "abc".to_owned())]),
        };
        assert_eq!(
            parse(&bp, &erasure, &call.head(), b""),
            Err(ParseError::QueryNotAllowed)
        );
    }

    #[test]
    fn error_messages_name_the_field_and_index_but_never_the_id() {
        let err = seam_post(r#"{"customer_keys":["secret-person-1", 5]}"#).unwrap_err();
        let text = err.to_string();
        assert_eq!(text, "field `customer_keys` element 1 is not a string");
        let err = seam_delete("customer_keys=secret,person", "")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("customer_keys") && err.contains("element 0") && !err.contains("secret"),
            "{err}"
        );
        let err = kore(r#"{"userIds":[{"channel_id":"secret","channel_user_id":""}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("userIds") && !err.contains("secret"), "{err}");
    }

    // ----- property tests -----------------------------------------------

    const SEAM_SAMPLE: &str = r#"{"reservation_keys":["res_456"],"user_identity_keys":["user_789"],"customer_keys":["c1","c2"]}"#;
    const KORE_SAMPLE: &str = r#"{"userIds":["u-1",{"channel_id":"ch","channel_user_id":"cu"}],"botIds":["st-1"],"RemoveDataFromAllBots":false}"#;

    /// An independent reading of the ids a body names, or `None` when some
    /// element of a target field is not a usable id (then parsing must fail).
    fn oracle_targets(vendor: &str, body: &[u8]) -> Option<Vec<Target>> {
        let profile = builtin(vendor).unwrap();
        let value: Value = serde_json::from_slice(body).ok()?;
        let mut out = Vec::new();
        for source in &profile.targets {
            let Some(field) = &source.field else { continue };
            let Some(items) = value.get(field) else {
                continue;
            };
            let entity_type = profile.qualified(&source.entity_type);
            for item in items.as_array()? {
                // Usable: not blank, not padded, no control character.
                let usable = |s: &str| {
                    !s.trim().is_empty() && s.trim() == s && !s.chars().any(char::is_control)
                };
                let id = match item {
                    Value::String(s) if usable(s) => {
                        if source.id_form == IdForm::EmailCasefold && s.contains('@') {
                            s.to_lowercase()
                        } else {
                            s.clone()
                        }
                    }
                    Value::Object(map) if !source.object_fields.is_empty() => {
                        if map.len() != source.object_fields.len() {
                            return None;
                        }
                        let mut parts = Vec::new();
                        for name in &source.object_fields {
                            let part = map.get(name)?.as_str().filter(|s| usable(s))?;
                            parts.push(part.replace('%', "%25").replace('/', "%2F"));
                        }
                        parts.join("/")
                    }
                    _ => return None,
                };
                out.push(Target {
                    entity_type: entity_type.clone(),
                    id,
                    id_form: source.id_form,
                });
            }
        }
        Some(out)
    }

    fn check(vendor: &str, body: &[u8]) -> Result<(), TestCaseError> {
        let result = if vendor == "seam" {
            Call::new("POST", "/customers/delete_data", None, &[JSON]).parse("seam", body)
        } else {
            Call::new("DELETE", "/api/public/bot/eraseUsersData", None, &[JSON]).parse("kore", body)
        };
        if let Ok(req) = result {
            let expected = oracle_targets(vendor, body);
            prop_assert_eq!(
                Some(req.targets),
                expected,
                "body {:?}",
                String::from_utf8_lossy(body)
            );
        }
        Ok(())
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Flip(usize, u8),
        Insert(usize, u8),
        Delete(usize),
    }

    fn edits() -> impl Strategy<Value = Vec<Edit>> {
        let interesting = prop_oneof![
            any::<u8>(),
            Just(b'"'),
            Just(b','),
            Just(b'['),
            Just(b']'),
            Just(b'{'),
            Just(b'}'),
            Just(b':'),
            Just(b'\\'),
            Just(b' '),
        ];
        let edit = prop_oneof![
            (any::<usize>(), interesting.clone()).prop_map(|(i, b)| Edit::Flip(i, b)),
            (any::<usize>(), interesting).prop_map(|(i, b)| Edit::Insert(i, b)),
            any::<usize>().prop_map(Edit::Delete),
        ];
        prop::collection::vec(edit, 1..5)
    }

    fn apply(sample: &str, edits: &[Edit]) -> Vec<u8> {
        let mut bytes = sample.as_bytes().to_vec();
        for edit in edits {
            let len = bytes.len().max(1);
            match *edit {
                Edit::Flip(i, b) => {
                    if let Some(slot) = bytes.get_mut(i % len) {
                        *slot = b;
                    }
                }
                Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                Edit::Delete(i) => {
                    if !bytes.is_empty() {
                        bytes.remove(i % len);
                    }
                }
            }
        }
        bytes
    }

    fn id_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => "[a-z0-9_@./% ,-]{0,6}".prop_map(Value::String),
            1 => any::<i32>().prop_map(|n| json!(n)),
            1 => Just(Value::Null),
            1 => any::<bool>().prop_map(Value::Bool),
            1 => ("[a-z/%]{0,3}", "[a-z/%]{0,3}").prop_map(|(c, u)| json!({"channel_id": c, "channel_user_id": u})),
            1 => "[a-z]{0,3}".prop_map(|c| json!({"channel_id": c})),
            1 => Just(json!(["nested"])),
        ]
    }

    fn field_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            6 => prop::collection::vec(id_value(), 0..4).prop_map(Value::Array),
            1 => "[a-z]{0,4}".prop_map(Value::String),
            1 => any::<bool>().prop_map(Value::Bool),
            1 => Just(Value::Null),
        ]
    }

    fn body_for(
        vendor: &'static str,
    ) -> impl Strategy<Value = (Map<String, Value>, Option<String>)> {
        let mut names: Vec<String> = builtin(vendor).unwrap().allowed_fields;
        names.push("unexpected".to_owned());
        let names = prop::sample::select(names);
        (
            prop::collection::btree_map(names.clone(), field_value(), 0..5),
            prop::option::of(names),
        )
            .prop_map(|(map, dup)| (map.into_iter().collect(), dup))
    }

    /// Serialises an object, optionally writing one key a second time (which
    /// serde_json's own writer never would).
    fn serialise(map: &Map<String, Value>, duplicate: Option<&String>) -> Vec<u8> {
        let mut text = serde_json::to_string(map).unwrap();
        if let Some(key) = duplicate {
            let extra = format!("{}:[\"dup\"]", serde_json::to_string(key).unwrap());
            text = if map.is_empty() {
                format!("{{{extra}}}")
            } else {
                format!("{{{extra},{}", &text[1..])
            };
        }
        text.into_bytes()
    }

    proptest! {
        #[test]
        fn mutated_seam_bodies_parse_exactly_or_are_refused(edits in edits()) {
            check("seam", &apply(SEAM_SAMPLE, &edits))?;
        }

        #[test]
        fn mutated_kore_bodies_parse_exactly_or_are_refused(edits in edits()) {
            check("kore", &apply(KORE_SAMPLE, &edits))?;
        }

        #[test]
        fn random_seam_field_sets_parse_exactly_or_are_refused((map, dup) in body_for("seam")) {
            let body = serialise(&map, dup.as_ref());
            check("seam", &body)?;
            if dup.as_ref().is_some_and(|k| map.contains_key(k)) {
                prop_assert!(seam_post(std::str::from_utf8(&body).unwrap()).is_err());
            }
        }

        #[test]
        fn random_kore_field_sets_parse_exactly_or_are_refused((map, dup) in body_for("kore")) {
            let body = serialise(&map, dup.as_ref());
            check("kore", &body)?;
            if dup.as_ref().is_some_and(|k| map.contains_key(k)) {
                prop_assert!(kore(std::str::from_utf8(&body).unwrap()).is_err());
            }
        }

        #[test]
        fn random_seam_queries_parse_to_exactly_their_repeated_values(
            pairs in prop::collection::vec(
                (prop::sample::select(vec!["customer_keys", "user_keys", "space_keys", "customer_keys[]", "other"]),
                 "[a-z ,%&=+]{0,4}"),
                0..6,
            )
        ) {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            if let Ok(req) = seam_delete(&query, "") {
                let profile = builtin("seam").unwrap();
                let mut expected = Vec::new();
                for source in &profile.targets {
                    let field = source.field.as_deref().unwrap();
                    let values: Vec<&str> =
                        pairs.iter().filter(|(k, _)| *k == field).map(|(_, v)| v.as_str()).collect();
                    if let [only] = values.as_slice() {
                        if only.trim().is_empty() {
                            continue;
                        }
                    }
                    for v in values {
                        prop_assert!(!v.trim().is_empty() && !v.contains(','));
                        expected.push(target(&profile.qualified(&source.entity_type), v));
                    }
                }
                prop_assert!(pairs.iter().all(|(k, _)| profile.allowed_fields.iter().any(|f| f == k)));
                prop_assert_eq!(req.targets, expected);
            }
        }
    }
}
