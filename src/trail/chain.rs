//! The decision trail's hash chain: canonical bytes, sealing a record, and
//! checking that a line continues the chain.
//!
//! A record is one JSON object on one line. Its `hash` is
//! `SHA-256(prev ‖ canonical)` in lowercase hex, where `prev` is the previous
//! record's `hash` as 64 ASCII hex digits (64 `0`s before the first record)
//! and `canonical` is the record **without** its `hash` member, serialised
//! with object members sorted by key (bytewise), no insignificant whitespace,
//! and strings escaped as JSON requires (the same bytes as RFC 8785 for what
//! the trail holds: ASCII keys, no floating-point numbers). A line whose
//! objects repeat a key is refused. Outside the gateway:
//!
//! ```sh
//! line=$(sed -n 2p decisions.jsonl)
//! prev=$(jq -r .prev <<<"$line")
//! { printf %s "$prev"; jq -cjS 'del(.hash)' <<<"$line"; } | sha256sum   # = .hash
//! ```

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::canon::Members;
use crate::json::{self, StrictJsonError};

/// `prev` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The canonical bytes of a record: without `hash`, keys sorted, compact.
pub fn canonical(record: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    Members::from(record).write(&[], Some("hash"), &mut out);
    out
}

/// The chain hash of a record whose canonical bytes are `canonical`.
pub fn chain_hash(prev: &str, canonical: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(canonical);
    hex::encode(hasher.finalize())
}

/// Seals a record: sets `seq` and `prev`, computes and sets `hash`, and
/// returns the line to append (with its trailing newline), as
/// [`seal_members`] writes it.
pub fn seal(record: &mut Map<String, Value>, seq: u64, prev: &str) -> Vec<u8> {
    let members = Members::from(&*record);
    let mut line = Vec::new();
    let hash = seal_members(&members, seq, prev, &[], &mut line);
    record.insert("seq".into(), seq.into());
    record.insert("prev".into(), prev.into());
    record.insert("hash".into(), hash.into());
    line
}

/// Seals a record's members as number `seq` after `prev`, with the
/// writer's own members `more` (each value already JSON; they and `seq`
/// and `prev` replace the record's members of the same key; a `hash` of
/// the record's is dropped). Appends the line to `out` — the canonical
/// bytes with `hash` as the last member, and a newline — and returns the
/// hash.
pub fn seal_members(
    members: &Members,
    seq: u64,
    prev: &str,
    more: &[(&str, &[u8])],
    out: &mut Vec<u8>,
) -> String {
    let prev_json = serde_json::to_string(prev).unwrap_or_default();
    let seq_json = seq.to_string();
    let mut envelope: Vec<(&str, &[u8])> = Vec::with_capacity(more.len() + 2);
    envelope.push(("prev", prev_json.as_bytes()));
    envelope.push(("seq", seq_json.as_bytes()));
    envelope.extend_from_slice(more);
    envelope.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let start = out.len();
    members.write(&envelope, Some("hash"), out);
    let hash = chain_hash(prev, &out[start..]);
    // `{…}` → `{…,"hash":"…"}`: the record always has members (seq, prev).
    out.pop();
    out.extend_from_slice(b",\"hash\":\"");
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(b"\"}\n");
    hash
}

/// Why one line does not continue the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a JSON object (or a truncated line).
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// An object repeats a key: the hash covers the value serde_json keeps,
    /// but another reader may show the other one.
    #[error("the key `{0}` appears twice in one object")]
    DuplicateKey(String),
    /// `seq`, `prev` or `hash` is missing or has the wrong type.
    #[error("missing or malformed `{0}`")]
    Field(&'static str),
    /// `seq` is not the previous one plus one.
    #[error(
        "seq {found} where {expected} was expected (a record was removed, inserted or reordered)"
    )]
    Sequence {
        /// The expected sequence number.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// `prev` is not the previous record's hash.
    #[error("prev does not match the previous record's hash (a record was removed, inserted or reordered)")]
    Prev,
    /// The record's content does not match its hash.
    #[error("hash does not match the record's content (the record was modified)")]
    Hash,
}

/// The chain's head after a verified record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Sequence number of the last record.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// Checks that `line` continues the chain after `head` (`None`: the line
/// must start a chain: `prev` = [`GENESIS`], any `seq`) and returns the
/// record and the new head.
///
/// # Errors
/// The first way in which the line breaks the chain.
pub fn verify_line(
    line: &str,
    head: Option<&Head>,
) -> Result<(Map<String, Value>, Head), LinkError> {
    let record = match json::from_slice(line.as_bytes()) {
        Ok(Value::Object(record)) => record,
        Ok(_) => return Err(LinkError::NotJson("not an object".into())),
        Err(StrictJsonError::DuplicateKey(key)) => return Err(LinkError::DuplicateKey(key)),
        Err(StrictJsonError::Syntax(e)) => return Err(LinkError::NotJson(e)),
    };
    let seq = record
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or(LinkError::Field("seq"))?;
    let prev = record
        .get("prev")
        .and_then(Value::as_str)
        .ok_or(LinkError::Field("prev"))?;
    let hash = record
        .get("hash")
        .and_then(Value::as_str)
        .ok_or(LinkError::Field("hash"))?;
    match head {
        Some(head) => {
            let expected = head.seq.checked_add(1).ok_or(LinkError::Sequence {
                expected: u64::MAX,
                found: seq,
            })?;
            if seq != expected {
                return Err(LinkError::Sequence {
                    expected,
                    found: seq,
                });
            }
            if prev != head.hash {
                return Err(LinkError::Prev);
            }
        }
        None if prev != GENESIS => return Err(LinkError::Prev),
        None => {}
    }
    if chain_hash(prev, &canonical(&record)) != hash {
        return Err(LinkError::Hash);
    }
    let head = Head {
        seq,
        hash: hash.to_owned(),
    };
    Ok((record, head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: &Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn sealed_lines_verify_in_order_and_edits_break_them() {
        let mut a =
            record(&json!({"kind": "decision", "request_id": "r1", "z": [1, {"b": 2, "a": "ü"}]}));
        let line_a = seal(&mut a, 1, GENESIS);
        let (_, head) = verify_line(std::str::from_utf8(&line_a).unwrap(), None).unwrap();
        let mut b = record(&json!({"kind": "outcome", "request_id": "r1", "status": 200}));
        let line_b = seal(&mut b, 2, &head.hash);
        let text_b = std::str::from_utf8(&line_b).unwrap();
        assert!(verify_line(text_b, Some(&head)).is_ok());

        let edited = text_b.replace("200", "500");
        assert_eq!(
            verify_line(&edited, Some(&head)).unwrap_err(),
            LinkError::Hash
        );
        assert!(matches!(
            verify_line(
                text_b,
                Some(&Head {
                    seq: 5,
                    hash: head.hash.clone()
                })
            ),
            Err(LinkError::Sequence {
                expected: 6,
                found: 2
            })
        ));
        let other = Head {
            seq: 1,
            hash: GENESIS.replace('0', "1"),
        };
        assert_eq!(
            verify_line(text_b, Some(&other)).unwrap_err(),
            LinkError::Prev
        );
        assert!(matches!(
            verify_line(&text_b[..20], Some(&head)),
            Err(LinkError::NotJson(_))
        ));
    }

    #[test]
    fn the_canonical_form_sorts_keys_and_drops_the_hash() {
        let r = record(&json!({"b": 1, "a": {"d": true, "c": null}, "hash": "x"}));
        assert_eq!(canonical(&r), br#"{"a":{"c":null,"d":true},"b":1}"#);
    }
}
