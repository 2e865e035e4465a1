//! `audit verify` on real, sealed chains with one known edit, and the
//! verdict the edit must produce.
//!
//! The input (read with `arbitrary`) describes up to 16 records (decisions,
//! outcomes, signed in-chain checkpoints, free-form objects with arbitrary
//! keys and strings), how to split them into two files, an optional external
//! checkpoint, and one edit: none, remove, swap, duplicate, forge (change
//! and re-seal), flip one byte, or cut the end. The chain is sealed with
//! `record::seal`, edited, written out and verified with a pinned key, and
//! the result must be the one the edit implies: the kind of failure and the
//! file and line it names, or success with the right count and head.

#![no_main]

mod scratch;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use erasure_gateway::trail::chain::{seal, Head, GENESIS};
use erasure_gateway::trail::checkpoint;
use erasure_gateway::trail::verify::{verify_files, FailureKind, VerifyOptions};
use libfuzzer_sys::fuzz_target;
use scratch::{key, scratch};
use serde_json::{json, Map, Value};

#[derive(Arbitrary, Debug)]
enum Free {
    Str(String),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Null,
    List(Vec<String>),
    Object(Vec<(String, String)>),
}

impl Free {
    fn value(&self) -> Value {
        match self {
            Self::Str(s) => s.as_str().into(),
            Self::Int(n) => (*n).into(),
            Self::UInt(n) => (*n).into(),
            Self::Bool(b) => (*b).into(),
            Self::Null => Value::Null,
            Self::List(items) => items.clone().into(),
            Self::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Spec {
    Decision {
        vendor: String,
        id: String,
        allow: bool,
        shadow: bool,
    },
    Outcome {
        status: u16,
        vendor_request_id: Option<String>,
    },
    Checkpoint {
        millis: u32,
    },
    Free(Vec<(String, Free)>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Edit {
    None,
    Remove(u8),
    Swap(u8, u8),
    Duplicate(u8),
    Forge(u8),
    Flip { line: u8, at: u16, byte: u8 },
    CutEnd(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    records: Vec<Spec>,
    split: u8,
    checkpoint: Option<u8>,
    partial: bool,
    edit: Edit,
}

fn time(millis: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::from(millis) * 1000)
}

/// The record a spec describes, to be sealed after `head`.
fn record(spec: &Spec, head: &Head) -> Map<String, Value> {
    let value = match spec {
        Spec::Decision {
            vendor,
            id,
            allow,
            shadow,
        } => json!({
            "kind": "decision", "time": "2026-12-03T00:00:00.000Z", "vendor": vendor,
            "decision": if *allow { "allow" } else { "deny" },
            "mode": if *shadow { "shadow" } else { "enforce" },
            "targets": [{"type": "Kore::User", "id": id, "decision": "allow", "policies": ["p"], "errors": []}],
        }),
        Spec::Outcome {
            status,
            vendor_request_id,
        } => json!({
            "kind": "outcome", "time": "2026-12-03T00:00:01.000Z", "status": status,
            "vendor_request_id": vendor_request_id,
        }),
        Spec::Checkpoint { millis } => {
            return checkpoint::checkpoint_record(head, time(*millis), key())
        }
        Spec::Free(members) => Value::Object(
            members
                .iter()
                // A free-form `kind: checkpoint` would need a signature.
                .filter(|(k, _)| k != "kind")
                .map(|(k, v)| (k.clone(), v.value()))
                .collect(),
        ),
    };
    value.as_object().cloned().unwrap_or_default()
}

/// What the edited trail must verify to.
#[derive(Debug)]
enum Expect {
    /// Success with this many records and this head.
    Verifies(u64, Option<Head>),
    /// Success, with records equal in value to the originals (a flip that
    /// respelled an escape), or a failure at this line.
    VerifiesIfSameValuesElseFailsAt(usize),
    /// This kind of failure at this index of the edited lines (`None`: not
    /// at a line).
    Fails(FailureKind, Option<usize>),
    /// Some failure.
    AnyFailure,
}

fn parse_lines(text: &[u8]) -> Option<Vec<Value>> {
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).ok())
        .collect()
}

fuzz_target!(|input: Input| {
    if input.records.is_empty() || input.records.len() > 16 {
        return;
    }
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut maps = Vec::new();
    let mut heads = Vec::new();
    let mut head = Head {
        seq: 0,
        hash: GENESIS.to_owned(),
    };
    for spec in &input.records {
        let mut map = record(spec, &head);
        let line = seal(&mut map, head.seq + 1, &head.hash);
        head = Head {
            seq: head.seq + 1,
            hash: map["hash"].as_str().expect("sealed").to_owned(),
        };
        lines.push(line);
        maps.push(map);
        heads.push(head.clone());
    }
    let n = lines.len();
    let last = |lines: &[Vec<u8>]| lines.len().checked_sub(1);
    let checkpoint = input
        .checkpoint
        .map(|k| checkpoint::sign(&heads[usize::from(k) % n], time(1), key()));
    let cp_seq = checkpoint.as_ref().map(|cp| cp.seq);
    let prev_of = |i: usize| {
        if i == 0 {
            GENESIS.to_owned()
        } else {
            heads[i - 1].hash.clone()
        }
    };

    // Apply the edit and work out what it must give.
    let original = lines.concat();
    let untouched = |records: usize, lines: &[Vec<u8>], first: usize| -> Expect {
        match cp_seq {
            Some(seq) if seq as usize > first + records => {
                Expect::Fails(FailureKind::CheckpointNotReached, None)
            }
            Some(seq) if (seq as usize) <= first && records > 0 => {
                Expect::Fails(FailureKind::CheckpointNotReached, Some(0))
            }
            _ => Expect::Verifies(
                records as u64,
                last(lines).map(|_| heads[first + records - 1].clone()),
            ),
        }
    };
    let expect = match input.edit {
        Edit::None => untouched(n, &lines, 0),
        Edit::Remove(i) => {
            let i = usize::from(i) % n;
            lines.remove(i);
            if i == n - 1 {
                untouched(n - 1, &lines, 0)
            } else if i == 0 && !input.partial {
                Expect::Fails(FailureKind::NotAtStart, Some(0))
            } else if i == 0 {
                untouched(n - 1, &lines, 1)
            } else {
                Expect::Fails(FailureKind::Removed, Some(i))
            }
        }
        Edit::Swap(a, b) => {
            let (a, b) = (usize::from(a) % n, usize::from(b) % n);
            let (i, j) = (a.min(b), a.max(b));
            if i == j {
                untouched(n, &lines, 0)
            } else {
                lines.swap(i, j);
                match (i, input.partial) {
                    (0, false) => Expect::Fails(FailureKind::NotAtStart, Some(0)),
                    (0, true) => Expect::AnyFailure,
                    _ => Expect::Fails(FailureKind::Reordered, Some(i)),
                }
            }
        }
        Edit::Duplicate(i) => {
            let i = usize::from(i) % n;
            lines.insert(i + 1, lines[i].clone());
            Expect::Fails(FailureKind::Inserted, Some(i + 1))
        }
        Edit::Forge(i) => {
            let i = usize::from(i) % n;
            let mut map = maps[i].clone();
            map.insert("forged".into(), true.into());
            lines[i] = seal(&mut map, i as u64 + 1, &prev_of(i));
            if cp_seq == Some(i as u64 + 1) {
                Expect::Fails(FailureKind::CheckpointMismatch, Some(i))
            } else if cp_seq.is_some_and(|seq| seq as usize > i + 1) || i < n - 1 {
                Expect::Fails(FailureKind::Inserted, Some(i + 1))
            } else {
                let hash = map["hash"].as_str().expect("sealed").to_owned();
                Expect::Verifies(
                    n as u64,
                    Some(Head {
                        seq: n as u64,
                        hash,
                    }),
                )
            }
        }
        Edit::Flip { line, at, byte } => {
            let l = usize::from(line) % n;
            let at = usize::from(at) % lines[l].len();
            if lines[l][at] == byte {
                untouched(n, &lines, 0)
            } else {
                lines[l][at] = byte;
                Expect::VerifiesIfSameValuesElseFailsAt(l)
            }
        }
        Edit::CutEnd(k) => {
            let l = n - 1;
            let cut = 1 + usize::from(k) % lines[l].len();
            let keep = lines[l].len() - cut;
            lines[l].truncate(keep);
            if keep == 0 {
                lines.pop();
                untouched(n - 1, &lines, 0)
            } else {
                Expect::Fails(
                    if cut == 1 {
                        FailureKind::MissingNewline
                    } else {
                        FailureKind::Truncated
                    },
                    Some(l),
                )
            }
        }
    };

    // Write the edited lines as two files (the first may be empty).
    let split = usize::from(input.split) % (lines.len() + 1);
    let paths = [
        scratch().join("decisions-1.jsonl"),
        scratch().join("decisions-2.jsonl"),
    ];
    std::fs::write(&paths[0], lines[..split].concat()).expect("scratch file");
    std::fs::write(&paths[1], lines[split..].concat()).expect("scratch file");
    let place = |index: usize| {
        if index < split {
            (&paths[0], index as u64 + 1)
        } else {
            (&paths[1], (index - split) as u64 + 1)
        }
    };
    let options = VerifyOptions {
        partial: input.partial,
        checkpoint,
        public_key: Some(key().public_key().to_vec()),
    };
    let got = verify_files(&paths, &options);
    let edited = lines.concat();
    let checkpoints = input
        .records
        .iter()
        .filter(|s| matches!(s, Spec::Checkpoint { .. }))
        .count();
    match (&expect, &got) {
        (Expect::Verifies(records, head), Ok(summary)) => {
            assert_eq!(summary.records, *records);
            assert_eq!(summary.head.as_ref(), head.as_ref());
            if matches!(input.edit, Edit::None) {
                assert_eq!(summary.checkpoints_verified as usize, checkpoints);
            }
            assert_eq!(summary.checkpoint.is_some(), cp_seq.is_some());
        }
        (Expect::VerifiesIfSameValuesElseFailsAt(_), Ok(_)) => {
            assert_eq!(
                parse_lines(&edited),
                parse_lines(&original),
                "an edited record verifies"
            );
        }
        (Expect::VerifiesIfSameValuesElseFailsAt(index), Err(failure)) => {
            let (file, line) = place(*index);
            assert_eq!(
                (failure.file.as_ref(), failure.line),
                (Some(file), Some(line)),
                "{failure}"
            );
        }
        (Expect::Fails(kind, index), Err(failure)) => {
            assert_eq!(failure.kind, *kind, "{failure}");
            if let Some(index) = index {
                let (file, line) = place(*index);
                assert_eq!(
                    (failure.file.as_ref(), failure.line),
                    (Some(file), Some(line)),
                    "{failure}"
                );
            }
        }
        (Expect::AnyFailure, Err(_)) => {}
        (expect, got) => panic!("expected {expect:?}, got {got:?}"),
    }
});
