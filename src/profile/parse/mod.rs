//! Strict reading of a classified erasure call into an [`ErasureRequest`]:
//! one Cedar resource per id, vendor flags in the context. Anything the
//! gateway might read differently from the upstream is an error, and errors
//! name fields and indexes, never the ids (they are personal data).
//!
//! The body and query readers are in `params`, the checks on each id in
//! `ids`, and the refusals in `error`.

mod error;
mod ids;
mod params;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_calls;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::classify::{ErasureCall, RequestHead};
use super::vendor::VendorProfile;
pub use crate::authz::Target;
use error::bad;
use ids::check_id;
use params::Params;

pub use error::{ParseError, TargetProblem};

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

fn workspace(
    profile: &VendorProfile,
    head: &RequestHead<'_>,
) -> Result<Option<String>, ParseError> {
    let Some(name) = &profile.decided_headers().workspace else {
        return Ok(None);
    };
    let problem = |problem| ParseError::BadHeader {
        header: name.as_str().to_owned(),
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
    let params = Params::read(call.source, head, body)?;
    params.check_fields(profile)?;
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
                for (index, (id, wire)) in ids.into_iter().enumerate() {
                    if form.is_ambiguous(&id) {
                        return Err(bad(field, index, TargetProblem::AmbiguousCase));
                    }
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
                if form.is_ambiguous(id) {
                    return Err(bad(name, 0, TargetProblem::AmbiguousCase));
                }
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
    if targets.len() > profile.max_targets {
        return Err(ParseError::TooManyTargets {
            count: targets.len(),
            max: profile.max_targets,
        });
    }
    Ok(ErasureRequest {
        vendor: profile.name.clone(),
        namespace: profile.namespace.clone(),
        action: profile.action.clone(),
        targets,
        context,
        method: call.method.as_str().to_owned(),
        path: profile.pattern().render(&path_params),
        params: params.canonical(&wire_ids)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::builtin;
    use crate::profile::definition::ParamSource;
    use crate::profile::parse::test_calls::{kore, seam_delete, seam_post, target, Call, JSON};
    use http::Method;
    use serde_json::json;

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
}
