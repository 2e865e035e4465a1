//! `audit verify` on arbitrary bytes as a trail file, against a model.
//!
//! The bytes are written to a scratch file and verified with
//! `trail::verify::verify_files` three ways: a full trail, a partial one,
//! and a partial one with a pinned checkpoint key. Nothing may panic, and
//! the verdict must match a model built from `chain::verify_line` alone: a
//! trail verifies exactly when every line ends in `\n`, is non-empty UTF-8
//! and continues the chain (the first at seq 1 after the genesis hash, or,
//! partial, wherever its own `seq` and `prev` say), and every checkpoint
//! record names the record before it (and, with a key, is signed by it). A
//! failure names the first line the model refuses; a success counts the
//! model's records and ends at its head. Seeds are real trails written by
//! `erasure-gateway demo`.

#![no_main]

mod scratch;

use std::collections::BTreeMap;

use erasure_gateway::json;
use erasure_gateway::trail::chain::{verify_line, Head, GENESIS};
use erasure_gateway::trail::checkpoint;
use erasure_gateway::trail::record::kind;
use erasure_gateway::trail::verify::{verify_files, VerifyOptions};
use libfuzzer_sys::fuzz_target;
use scratch::{key, scratch};
use serde_json::Value;

/// What the model expects.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Verifies: records, first seq, head, records by kind.
    Ok(u64, Option<u64>, Option<Head>, BTreeMap<String, u64>),
    /// Fails at this 1-based line.
    FailsAt(u64),
}

/// The head a partial trail's first line names for itself, when it does
/// not start at the genesis hash; `Err` for seq 0 after a real record.
fn partial_start(text: &str) -> Result<Option<Head>, ()> {
    let Ok(Value::Object(record)) = json::from_slice(text.as_bytes()) else {
        return Ok(None);
    };
    let (Some(seq), Some(prev)) = (
        record.get("seq").and_then(Value::as_u64),
        record.get("prev").and_then(Value::as_str),
    ) else {
        return Ok(None);
    };
    if prev == GENESIS {
        return Ok(None);
    }
    seq.checked_sub(1)
        .map(|seq| {
            Some(Head {
                seq,
                hash: prev.to_owned(),
            })
        })
        .ok_or(())
}

fn model(data: &[u8], partial: bool, public_key: Option<&[u8]>) -> Verdict {
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let mut head: Option<Head> = None;
    let mut first_seq = None;
    let mut records = 0;
    let mut kinds = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        let line_no = index as u64 + 1;
        let fail = Verdict::FailsAt(line_no);
        if index == lines.len() - 1 {
            // After the last `\n`: nothing, or an unterminated line.
            if line.is_empty() {
                break;
            }
            return fail;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return fail;
        };
        if text.is_empty() {
            return fail;
        }
        let start = match &head {
            Some(head) => Some(head.clone()),
            None if partial => match partial_start(text) {
                Ok(start) => start,
                Err(()) => return fail,
            },
            None => None,
        };
        if start.as_ref().is_some_and(|h| h.seq == u64::MAX) {
            return fail;
        }
        let Ok((record, next)) = verify_line(text, start.as_ref()) else {
            return fail;
        };
        if head.is_none() && !partial && next.seq != 1 {
            return fail;
        }
        let record_kind = record.get("kind").and_then(Value::as_str);
        if record_kind == Some(kind::CHECKPOINT) {
            let names_previous = record.get("head_seq").and_then(Value::as_u64)
                == next.seq.checked_sub(1)
                && record.get("head_hash").and_then(Value::as_str)
                    == record.get("prev").and_then(Value::as_str);
            if !names_previous {
                return fail;
            }
            if let Some(key) = public_key {
                if checkpoint::verify_record(&record, key).is_err() {
                    return fail;
                }
            }
        }
        if head.is_none() {
            first_seq = Some(next.seq);
        }
        *kinds
            .entry(record_kind.unwrap_or("(none)").to_owned())
            .or_insert(0) += 1;
        records += 1;
        head = Some(next);
    }
    Verdict::Ok(records, first_seq, head, kinds)
}

fuzz_target!(|data: &[u8]| {
    let path = scratch().join("decisions.jsonl");
    std::fs::write(&path, data).expect("scratch file");
    let paths = [path.clone()];
    let public_key = key().public_key().to_vec();
    for (partial, public_key) in [(false, None), (true, None), (true, Some(public_key))] {
        let expected = model(data, partial, public_key.as_deref());
        let options = VerifyOptions {
            partial,
            checkpoint: None,
            public_key,
        };
        let got = match verify_files(&paths, &options) {
            Ok(summary) => {
                let _ = summary.to_string();
                Verdict::Ok(
                    summary.records,
                    summary.first_seq,
                    summary.head,
                    summary.kinds,
                )
            }
            Err(failure) => {
                let _ = failure.to_string();
                assert_eq!(failure.file.as_ref(), Some(&path), "{failure}");
                Verdict::FailsAt(failure.line.unwrap_or(0))
            }
        };
        assert_eq!(got, expected, "partial: {partial}");
    }
});
