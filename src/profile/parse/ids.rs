//! The checks on one target id: usable as sent (non-blank, unpadded, free
//! of control characters), and read from a repeated query key, a JSON array,
//! or the profile's object shape.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{Map, Value};

use super::error::{bad, ParseError, TargetProblem};

/// Characters escaped inside each part of an object id, so that the `/`
/// joining the parts stays unambiguous.
const ID_PART: &AsciiSet = &CONTROLS.add(b'%').add(b'/');

/// Whether an id (or id part) is usable as sent: non-blank, unpadded, free
/// of control characters.
pub(super) fn check_id(id: &str) -> Result<(), TargetProblem> {
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

/// The ids in a repeated query key. A single blank value is the empty array
/// (how `@seamapi/url-search-params-serializer` writes `[]`, and how Seam's
/// parser reads it); any other blank value is an empty id.
pub(super) fn query_ids(field: &str, values: &[String]) -> Result<Vec<String>, ParseError> {
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
pub(super) fn json_ids(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::parse::test_calls::{kore, seam_delete, target, Call};
    use crate::profile::parse::CallParams;
    use serde_json::json;

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
    fn an_email_id_whose_case_folds_to_another_letter_is_refused() {
        // A case-insensitive collation or `/iu` match may take each of
        // these for a plain-ASCII address the gateway never looked up.
        for (body, index) in [
            ("{\"userIds\":[\"\u{17f}am@corp.com\"]}", 0), // ſ: long s
            ("{\"userIds\":[\"u-1\",\"\u{fb01}n@corp.com\"]}", 1), // ﬁ: a ligature
            ("{\"userIds\":[\"stra\u{df}e@corp.com\"]}", 0), // ß
        ] {
            assert_eq!(
                kore(body).err(),
                Some(ParseError::BadElement {
                    field: "userIds".into(),
                    index,
                    problem: TargetProblem::AmbiguousCase,
                }),
                "{body}"
            );
        }
        // Ids that are not addresses are exact, and plain-case letters
        // outside ASCII fold one way only.
        assert!(kore("{\"userIds\":[\"u-\u{17f}\",\"J\u{f6}rg@Corp.com\"]}").is_ok());
        // Only the domain folds where the local part is the mailbox's own.
        let domain = crate::setting::IdForm::EmailDomainCasefold;
        assert!(!domain.is_ambiguous("\u{17f}am@corp.com"));
        assert!(domain.is_ambiguous("sam@corp.\u{17f}e"));
    }
}
