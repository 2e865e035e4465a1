//! Property tests: mutated and random bodies and queries either parse to
//! exactly the ids an independent reading finds, or are refused.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::test_calls::{seam_delete, target, Call, JSON};
use super::{ErasureRequest, ParseError, Target};
use crate::profile::builtin;
use crate::profile::definition::IdForm;

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
            let usable =
                |s: &str| !s.trim().is_empty() && s.trim() == s && !s.chars().any(char::is_control);
            let id = match item {
                Value::String(s) if usable(s) => {
                    if source.id_form == IdForm::EmailCasefold && s.contains('@') {
                        // A letter that folds to another through upper
                        // case (ſ, ß, ﬁ) makes the address ambiguous.
                        if s.to_uppercase().to_lowercase() != s.to_lowercase() {
                            return None;
                        }
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

/// `body` sent to the body-form erasure call of `vendor` (`seam` or `kore`).
fn parse_body(vendor: &str, body: &[u8]) -> Result<ErasureRequest, ParseError> {
    if vendor == "seam" {
        Call::new("POST", "/customers/delete_data", None, &[JSON]).parse("seam", body)
    } else {
        Call::new("DELETE", "/api/public/bot/eraseUsersData", None, &[JSON]).parse("kore", body)
    }
}

/// Checks that `body` either parses to exactly the oracle's targets or is
/// refused.
fn check(vendor: &str, body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(req) = parse_body(vendor, body) {
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

/// Checks a random field set as any body, and that it is refused when
/// `duplicate` repeats one of its keys.
fn check_field_set(
    vendor: &str,
    map: &Map<String, Value>,
    duplicate: Option<&String>,
) -> Result<(), TestCaseError> {
    let body = serialise(map, duplicate);
    check(vendor, &body)?;
    if duplicate.is_some_and(|k| map.contains_key(k)) {
        prop_assert!(parse_body(vendor, &body).is_err(), "a repeated key parsed");
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

fn body_for(vendor: &'static str) -> impl Strategy<Value = (Map<String, Value>, Option<String>)> {
    let mut names: Vec<String> = builtin(vendor).unwrap().allowed_fields.clone();
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
        check_field_set("seam", &map, dup.as_ref())?;
    }

    #[test]
    fn random_kore_field_sets_parse_exactly_or_are_refused((map, dup) in body_for("kore")) {
        check_field_set("kore", &map, dup.as_ref())?;
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
