//! Why an erasure call is refused while it is read: [`ParseError`] and, for
//! one element of an id array, [`TargetProblem`]. Messages name fields and
//! indexes, never the ids (they are personal data).

use std::fmt;

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
    /// A letter whose case a vendor may fold to another letter than the
    /// gateway's form does (`ſ`, `ß`, `ﬁ`): the vendor may match someone the
    /// gateway did not look up.
    AmbiguousCase,
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
            Self::AmbiguousCase => {
                "holds a letter whose case the vendor may fold to another letter (like ſ, ß or ﬁ), so it may match someone else: write the address in plain lower case"
            }
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
    /// The call names more targets than its profile's `max_targets`.
    #[error("the call names {count} targets; at most {max} may be erased in one call")]
    TooManyTargets {
        /// How many it names.
        count: usize,
        /// The profile's `max_targets`.
        max: usize,
    },
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
}

/// The error for element `index` of `field`.
pub(super) fn bad(field: &str, index: usize, problem: TargetProblem) -> ParseError {
    ParseError::BadElement {
        field: field.to_owned(),
        index,
        problem,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::parse::test_calls::{kore, seam_delete, seam_post, Call, JSON};

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
            ParseError::TooManyTargets { .. } => "too_many_targets",
            ParseError::BodyOnQueryCall => "body_on_query_call",
            ParseError::BodyNotAllowed => "body_not_allowed",
            ParseError::QueryNotAllowed => "query_not_allowed",
            ParseError::QuerySeparator => "query_separator",
            ParseError::BadHeader { .. } => "bad_header",
            ParseError::MissingPathParam(_) => "missing_path_param",
        }
    }

    #[test]
    fn a_call_naming_more_targets_than_its_profile_allows_is_refused() {
        let body = |n: usize| {
            let keys: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
            serde_json::json!({ "customer_keys": keys }).to_string()
        };
        assert_eq!(seam_post(&body(1_000)).unwrap().targets.len(), 1_000);
        let err = seam_post(&body(1_001)).unwrap_err();
        assert_eq!(
            err,
            ParseError::TooManyTargets {
                count: 1_001,
                max: 1_000
            }
        );
        assert_eq!(tag(&err), "too_many_targets");
        assert!(err.to_string().contains("at most 1000"), "{err}");
    }

    #[test]
    fn every_strict_parse_refusal_cause_is_refused() {
        let seam_bodies = [
            ("", "empty_body"),
            ("{", "invalid_json"),
            (r#"{"customer_keys":["a"]} x"#, "invalid_json"),
            ("[]", "not_an_object"),
            (r#""customer_keys""#, "not_an_object"),
            (
                r#"{"customer_keys":["a"],"customer_keys":["b"]}"#,
                "duplicate_key",
            ),
            (
                r#"{"customer_keys":["a"],"x":{"k":1,"k":2}}"#,
                "duplicate_key",
            ),
            (r#"{"customer_keys":"a"}"#, "wrong_type"),
            (r#"{"customer_keys":null}"#, "wrong_type"),
            (r#"{"customer_keys":{"0":"a"}}"#, "wrong_type"),
            (r#"{"customer_keys":[""]}"#, "bad_element"),
            (r#"{"customer_keys":["a","  "]}"#, "bad_element"),
            (r#"{"customer_keys":[1]}"#, "bad_element"),
            (r#"{"customer_keys":[null]}"#, "bad_element"),
            (r#"{"customer_keys":[["a"]]}"#, "bad_element"),
            (
                r#"{"customer_keys":[{"channel_id":"a","channel_user_id":"b"}]}"#,
                "bad_element",
            ),
            (r#"{"customer_keys":["a"],"force":true}"#, "unknown_field"),
            (
                r#"{"customer_keys":["a"],"Customer_Keys":["b"]}"#,
                "unknown_field",
            ),
            ("{}", "no_targets"),
            (r#"{"customer_keys":[],"user_keys":[]}"#, "no_targets"),
        ];
        let seam_queries = [
            (
                "customer_keys=a",
                r#"{"customer_keys":["b"]}"#,
                "body_on_query_call",
            ),
            ("customer_keys=a", " ", "body_on_query_call"),
            ("", "", "no_targets"),
            ("customer_keys=", "", "no_targets"),
            ("customer_keys=a,b", "", "bad_element"),
            ("customer_keys=a%2Cb", "", "bad_element"),
            ("customer_keys=a&customer_keys=", "", "bad_element"),
            ("customer_keys=&customer_keys=", "", "bad_element"),
            ("customer_keys=%FF", "", "bad_element"),
            ("customer_keys[]=a", "", "unknown_field"),
            ("customer_keys%5B%5D=a", "", "unknown_field"),
            ("customer_keys[0]=a", "", "unknown_field"),
            ("customer_keys=a&force=1", "", "unknown_field"),
            ("customer_keys=a;user_keys=b", "", "query_separator"),
        ];
        let kore_bodies = [
            (r#"{"userIds":["u-1"],"userIds":["u-2"]}"#, "duplicate_key"),
            (
                r#"{"userIds":[{"channel_id":"c","channel_id":"d","channel_user_id":"u"}]}"#,
                "duplicate_key",
            ),
            (r#"{"userIds":[{"channel_id":"c"}]}"#, "bad_element"),
            (
                r#"{"userIds":[{"channel_id":"c","channel_user_id":"u","x":"y"}]}"#,
                "bad_element",
            ),
            (
                r#"{"userIds":[{"channel_id":"","channel_user_id":"u"}]}"#,
                "bad_element",
            ),
            (
                r#"{"userIds":[{"channel_id":1,"channel_user_id":"u"}]}"#,
                "bad_element",
            ),
            (r#"{"userIds":[""]}"#, "bad_element"),
            (r#"{"userIds":[null]}"#, "bad_element"),
            (r#"{"userIds":"u-1"}"#, "wrong_type"),
            (r#"{"userIds":["u-1"],"botIds":"st-1"}"#, "wrong_type"),
            (r#"{"userIds":["u-1"],"botIds":[""]}"#, "bad_element"),
            (r#"{"userIds":["u-1"],"botIds":[7]}"#, "bad_element"),
            (
                r#"{"userIds":["u-1"],"RemoveDataFromAllBots":"true"}"#,
                "wrong_type",
            ),
            (
                r#"{"userIds":["u-1"],"RemoveDataFromAllBots":null}"#,
                "wrong_type",
            ),
            (
                r#"{"userIds":["u-1"],"removeDataFromAllBots":true}"#,
                "unknown_field",
            ),
            (
                r#"{"botIds":["st-1"],"RemoveDataFromAllBots":true}"#,
                "no_targets",
            ),
            (r#"{"userIds":[]}"#, "no_targets"),
            ("null", "not_an_object"),
            ("{\"userIds\":[\"u-1\"]", "invalid_json"),
        ];
        let seam_with = |headers: &[(&'static str, &str)], body: &[u8]| {
            Call::new("POST", "/customers/delete_data", None, headers).parse("seam", body)
        };
        let one_key = br#"{"customer_keys":["a"]}"#;
        let others = [
            (
                seam_with(&[("content-type", "text/plain")], one_key),
                "content_type",
            ),
            (seam_with(&[], one_key), "content_type"),
            (
                seam_with(
                    &[("content-type", "application/x-www-form-urlencoded")],
                    b"customer_keys=a",
                ),
                "content_type",
            ),
            (
                seam_with(&[JSON, ("seam-workspace", "")], one_key),
                "bad_header",
            ),
            (
                Call::new("DELETE", "/customer/abc", None, &[JSON]).parse("botpenguin", b"{}"),
                "body_not_allowed",
            ),
        ];
        let rows = seam_bodies
            .iter()
            .map(|(body, want)| (format!("seam POST {body}"), seam_post(body), *want))
            .chain(seam_queries.iter().map(|(query, body, want)| {
                (
                    format!("seam DELETE ?{query} {body}"),
                    seam_delete(query, body),
                    *want,
                )
            }))
            .chain(
                kore_bodies
                    .iter()
                    .map(|(body, want)| (format!("kore {body}"), kore(body), *want)),
            )
            .chain(
                others
                    .into_iter()
                    .enumerate()
                    .map(|(i, (got, want))| (format!("other row {i}"), got, want)),
            );
        for (row, got, want) in rows {
            match got {
                Err(err) => assert_eq!(tag(&err), want, "{row}: {err}"),
                Ok(req) => panic!("{row}: expected {want}, parsed {req:?}"),
            }
        }
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
}
