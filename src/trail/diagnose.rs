//! Naming how a trail was broken: the first line that does not continue the
//! chain is read again to say whether it was modified, removed, inserted,
//! reordered or truncated, in words for a reviewer. [`super::verify`] walks
//! the chain and asks here when a line does not follow.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::chain::{self, Head, LinkError, GENESIS};
use super::files::{Line, LineReader};

/// How far ahead a missing record is looked for, to tell a reordering from a
/// removal.
const LOOKAHEAD_LINES: u64 = 100_000;

/// How the trail fails verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No trail file was given or found.
    NoFiles,
    /// A file cannot be listed, opened or read.
    Unreadable,
    /// An empty line (the writer never writes one).
    EmptyLine,
    /// The last record is complete but the newline after it is missing.
    MissingNewline,
    /// The last line is an incomplete record.
    Truncated,
    /// A line that is not a record (not JSON, not UTF-8, missing chain fields,
    /// duplicate keys, too long).
    Malformed,
    /// A record's content does not match its hash.
    Modified,
    /// Records are missing from the middle of the chain.
    Removed,
    /// A record was inserted (a forged or duplicated record).
    Inserted,
    /// Records are out of order.
    Reordered,
    /// A second chain starts inside the trail (another replica's files, or a
    /// writer that restarted its chain).
    NewChain,
    /// The first record is not the start of the chain (and not `partial`).
    NotAtStart,
    /// The record at the checkpoint's seq has another hash.
    CheckpointMismatch,
    /// The trail ends before the checkpoint's seq (or starts after it).
    CheckpointNotReached,
    /// A checkpoint's or checkpoint record's signature (or key) is wrong.
    BadSignature,
}

/// Why and where the trail fails verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    /// How it fails.
    pub kind: FailureKind,
    /// The file, when the failure is in one.
    pub file: Option<PathBuf>,
    /// The 1-based line number in `file`.
    pub line: Option<u64>,
    /// The record's seq, when it could be read.
    pub seq: Option<u64>,
    /// What is wrong, phrased for a reviewer.
    pub reason: String,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FAILED")?;
        if let Some(file) = &self.file {
            write!(f, " {}", file.display())?;
        }
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for VerifyFailure {}

pub(super) fn failure(kind: FailureKind, reason: &str) -> VerifyFailure {
    VerifyFailure {
        kind,
        file: None,
        line: None,
        seq: None,
        reason: reason.to_owned(),
    }
}

/// Where a line is, for failures.
pub(super) struct At<'a> {
    /// The file's place in the list verified.
    pub(super) index: usize,
    pub(super) path: &'a Path,
    /// 1-based.
    pub(super) line: u64,
}

impl At<'_> {
    pub(super) fn fail(
        &self,
        kind: FailureKind,
        seq: Option<u64>,
        reason: String,
    ) -> VerifyFailure {
        VerifyFailure {
            kind,
            file: Some(self.path.to_owned()),
            line: Some(self.line),
            seq,
            reason,
        }
    }
}

/// Why the line at `at` does not continue the chain after `head` (none:
/// the first record), from the error [`chain::verify_line`] gave.
pub(super) fn explain(
    files: &[PathBuf],
    at: &At<'_>,
    text: &str,
    last: bool,
    error: &LinkError,
    head: Option<&Head>,
) -> VerifyFailure {
    let fields = Fields::read(text);
    let seq = fields.as_ref().map(|f| f.seq);
    match error {
        LinkError::NotJson(detail) if last => at.fail(
            FailureKind::Truncated,
            None,
            format!("the last line is truncated mid-record (or a torn last write): {detail}"),
        ),
        LinkError::NotJson(detail) => at.fail(
            FailureKind::Malformed,
            None,
            format!("not a JSON record ({detail}): the line was damaged or edited"),
        ),
        LinkError::DuplicateKey(key) => at.fail(
            FailureKind::Malformed,
            seq,
            format!("the key `{key}` appears twice in one object: readers disagree on its value, so the line was edited"),
        ),
        LinkError::Field(field) => at.fail(
            FailureKind::Malformed,
            seq,
            format!("`{field}` is missing or malformed: the record was edited"),
        ),
        LinkError::Sequence { .. } | LinkError::Prev | LinkError::Hash => {
            match (fields, head) {
                (Some(fields), Some(head)) if fields.self_consistent => {
                    misplaced(files, at, &fields, head)
                }
                (Some(fields), None) if fields.self_consistent => at.fail(
                    FailureKind::NotAtStart,
                    Some(fields.seq),
                    "the first record does not start the chain".into(),
                ),
                _ => modified(at, seq),
            }
        }
    }
}

/// A record that is intact in itself but does not follow `head`.
fn misplaced(files: &[PathBuf], at: &At<'_>, fields: &Fields, head: &Head) -> VerifyFailure {
    let found = fields.seq;
    let expected = head.seq.saturating_add(1);
    let seq = Some(found);
    // Before the new-chain case: a copy of seq 1 also has seq 1 and the
    // genesis prev.
    if found == head.seq && fields.hash == head.hash {
        return at.fail(
            FailureKind::Inserted,
            seq,
            "a copy of the record before it: a duplicate was inserted".into(),
        );
    }
    if found == 1 && fields.prev == GENESIS {
        return at.fail(
            FailureKind::NewChain,
            seq,
            format!("a new chain starts here (seq 1 after seq {}): another replica's or trail's files are mixed in, or the writer restarted its chain; verify each replica's files separately", head.seq),
        );
    }
    if found == expected {
        return at.fail(
            FailureKind::Inserted,
            seq,
            format!("the record does not link to seq {} before it (its prev is not that record's hash): a record was replaced or a forged one inserted", head.seq),
        );
    }
    if found > expected {
        if fields.prev == head.hash {
            return at.fail(
                FailureKind::Inserted,
                seq,
                format!("the record follows seq {} directly but claims seq {found}: a forged record was inserted", head.seq),
            );
        }
        if let Some((file, line)) = find_seq(files, at, expected) {
            return at.fail(
                FailureKind::Reordered,
                seq,
                format!(
                    "seq {found} where {expected} was expected, and seq {expected} appears later ({} line {line}): records were reordered",
                    file.display()
                ),
            );
        }
        let missing = if found - expected == 1 {
            format!("record {expected} is missing")
        } else {
            format!("records {expected}–{} are missing", found - 1)
        };
        return at.fail(
            FailureKind::Removed,
            seq,
            format!("seq {found} where {expected} was expected: {missing}, they were removed"),
        );
    }
    at.fail(
        FailureKind::Reordered,
        seq,
        format!("seq {found} after seq {}: records are out of order (reordered), or an old record was copied in", head.seq),
    )
}

pub(super) fn modified(at: &At<'_>, seq: Option<u64>) -> VerifyFailure {
    at.fail(
        FailureKind::Modified,
        seq,
        "the record's content does not match its hash: it was modified (or forged)".into(),
    )
}

/// The chain fields of a line read leniently, and whether its hash matches
/// its own content (whatever its place in the chain).
pub(super) struct Fields {
    pub(super) seq: u64,
    pub(super) prev: String,
    pub(super) hash: String,
    pub(super) self_consistent: bool,
}

impl Fields {
    pub(super) fn read(text: &str) -> Option<Self> {
        let record: Map<String, Value> = serde_json::from_str(text).ok()?;
        let seq = record.get("seq")?.as_u64()?;
        let prev = record.get("prev")?.as_str()?.to_owned();
        let hash = record.get("hash")?.as_str()?.to_owned();
        let self_consistent = chain::chain_hash(&prev, &chain::canonical(&record)) == hash;
        Some(Self {
            seq,
            prev,
            hash,
            self_consistent,
        })
    }
}

/// Looks ahead of `at` (the rest of its file, then later files) for a line
/// with `seq`, to tell a reordering from a removal.
fn find_seq(files: &[PathBuf], at: &At<'_>, seq: u64) -> Option<(PathBuf, u64)> {
    let mut budget = LOOKAHEAD_LINES;
    for (index, path) in files.iter().enumerate().skip(at.index) {
        let mut reader = LineReader::open(path).ok()?;
        while let Ok(Some(line)) = reader.next_line() {
            if index == at.index && reader.line_no() <= at.line {
                continue;
            }
            budget = budget.checked_sub(1)?;
            let (Line::Complete(bytes) | Line::Unterminated(bytes)) = line else {
                continue;
            };
            let found = serde_json::from_slice::<Map<String, Value>>(&bytes)
                .ok()
                .and_then(|r| r.get("seq").and_then(Value::as_u64));
            if found == Some(seq) {
                return Some((path.clone(), reader.line_no()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::chain::seal;
    use crate::trail::fixtures::{
        fail, lines, rewrite, sample, tamper_trail as trail, tampered, write_trail,
    };
    use crate::trail::verify::{verify_files, VerifyOptions};

    #[test]
    fn an_edited_field_is_reported_as_modified_with_file_line_and_seq() {
        let (_dir, paths) = tampered(1, |second| {
            second[2] = second[2].replace("\"allow\"", "\"deny\"");
        });
        let failure = fail(&paths);
        assert_eq!(failure.kind, FailureKind::Modified);
        assert_eq!(failure.file.as_ref(), Some(&paths[1]));
        assert_eq!(failure.line, Some(3));
        assert_eq!(failure.seq, Some(15));
        let shown = failure.to_string();
        assert!(
            shown.contains("line 3 (seq 15)") && shown.contains("modified"),
            "{shown}"
        );
    }

    #[test]
    fn an_edited_seq_is_reported_as_modified() {
        let (_dir, paths) = tampered(0, |first| {
            first[4] = first[4].replace("\"seq\":5", "\"seq\":6");
        });
        let failure = fail(&paths);
        assert_eq!(
            (failure.kind, failure.line),
            (FailureKind::Modified, Some(5))
        );
    }

    #[test]
    fn a_line_removed_from_the_middle_is_reported_as_removed() {
        let (_dir, paths) = tampered(0, |first| {
            first.remove(6);
        });
        let failure = fail(&paths);
        assert_eq!(failure.kind, FailureKind::Removed);
        assert_eq!((failure.line, failure.seq), (Some(7), Some(8)));
        assert!(failure.reason.contains("record 7 is missing"), "{failure}");
    }

    #[test]
    fn a_removed_first_line_is_not_the_start_of_the_chain_unless_partial() {
        let (_dir, paths) = tampered(0, |first| {
            first.remove(0);
        });
        let failure = fail(&paths);
        assert_eq!(failure.kind, FailureKind::NotAtStart);
        assert_eq!((failure.line, failure.seq), (Some(1), Some(2)));
        assert!(failure
            .reason
            .contains("does not start at the beginning of the chain"));
        assert!(failure.reason.contains("--partial"));

        let partial = VerifyOptions {
            partial: true,
            ..VerifyOptions::default()
        };
        let summary = verify_files(&paths, &partial).unwrap();
        assert_eq!((summary.records, summary.first_seq), (19, Some(2)));
        assert!(summary.to_string().contains("starts at seq 2 (partial)"));
        // The second file alone continues the chain of an archived first one.
        let summary = verify_files(&paths[1..], &partial).unwrap();
        assert_eq!(summary.first_seq, Some(13));
        assert_eq!(fail(&paths[1..]).kind, FailureKind::NotAtStart);
    }

    #[test]
    fn a_modified_first_record_of_a_partial_trail_is_still_caught() {
        let (_dir, paths) = tampered(1, |second| {
            second[0] = second[0].replace("\"vendor\":\"kore\"", "\"vendor\":\"seam\"");
        });
        let partial = VerifyOptions {
            partial: true,
            ..VerifyOptions::default()
        };
        let failure = verify_files(&paths[1..], &partial).unwrap_err();
        assert_eq!(
            (failure.kind, failure.line),
            (FailureKind::Modified, Some(1))
        );
    }

    #[test]
    fn swapped_lines_are_reported_as_reordered() {
        let (_dir, paths) = tampered(0, |first| {
            first.swap(3, 4);
        });
        let failure = fail(&paths);
        assert_eq!(failure.kind, FailureKind::Reordered);
        assert_eq!((failure.line, failure.seq), (Some(4), Some(5)));
        assert!(failure.reason.contains("line 5"), "{failure}");
    }

    #[test]
    fn a_forged_line_with_a_wrong_hash_is_caught() {
        let (_dir, paths) = tampered(1, |second| {
            let mut forged = sample(21);
            forged.insert("seq".into(), 21.into());
            forged.insert("prev".into(), "0".repeat(64).into());
            forged.insert("hash".into(), "1".repeat(64).into());
            second.push(Value::Object(forged).to_string());
        });
        let failure = fail(&paths);
        assert_eq!(failure.kind, FailureKind::Modified);
        assert_eq!((failure.line, failure.seq), (Some(9), Some(21)));
    }

    #[test]
    fn a_forged_line_with_a_correct_hash_but_a_seq_gap_is_caught() {
        let (_dir, paths) = tampered(1, |second| {
            let last: Map<String, Value> = serde_json::from_str(&second[7]).unwrap();
            let mut forged = sample(23);
            let line = seal(&mut forged, 23, last["hash"].as_str().unwrap());
            second.push(String::from_utf8(line).unwrap().trim_end().to_owned());
        });
        let failure = fail(&paths);
        assert_eq!(failure.kind, FailureKind::Inserted);
        assert_eq!((failure.line, failure.seq), (Some(9), Some(23)));

        // Linked to some other hash instead: it reads as a removal.
        let mut second = lines(&paths[1]);
        second.pop();
        let line = seal(&mut sample(23), 23, &"7".repeat(64));
        second.push(String::from_utf8(line).unwrap().trim_end().to_owned());
        rewrite(&paths[1], &second);
        assert_eq!(fail(&paths).kind, FailureKind::Removed);
    }

    #[test]
    fn a_duplicated_line_is_inserted_even_a_copy_of_the_first_record() {
        // (the line copied, 0-based; the failure's line and seq). A copy of
        // the first record has seq 1 and the genesis prev: found by
        // fuzz/fuzz_targets/trail_chain.rs, it was reported as a second chain.
        for (copied, line, seq) in [(2, 4, 3), (0, 2, 1)] {
            let (_dir, paths) = tampered(0, |first| {
                first.insert(copied + 1, first[copied].clone());
            });
            let failure = fail(&paths);
            assert_eq!(
                (failure.kind, failure.line, failure.seq),
                (FailureKind::Inserted, Some(line), Some(seq)),
                "a copy of line {}",
                copied + 1
            );
        }
    }

    #[test]
    fn a_truncated_last_line_is_reported_as_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let text = std::fs::read(&paths[1]).unwrap();
        std::fs::write(&paths[1], &text[..text.len() - 40]).unwrap();
        let failure = fail(&paths);
        assert_eq!(
            (failure.kind, failure.line),
            (FailureKind::Truncated, Some(8))
        );
        assert!(failure
            .reason
            .contains("truncated mid-record (or a torn last write)"));
    }

    #[test]
    fn a_missing_final_newline_and_an_empty_line_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let text = std::fs::read(&paths[1]).unwrap();
        std::fs::write(&paths[1], &text[..text.len() - 1]).unwrap();
        let failure = fail(&paths);
        assert_eq!(
            (failure.kind, failure.line, failure.seq),
            (FailureKind::MissingNewline, Some(8), Some(20))
        );

        std::fs::write(&paths[1], &text).unwrap();
        let mut first = lines(&paths[0]);
        first.insert(5, String::new());
        rewrite(&paths[0], &first);
        let failure = fail(&paths);
        assert_eq!(
            (failure.kind, failure.line),
            (FailureKind::EmptyLine, Some(6))
        );
    }

    #[test]
    fn a_duplicate_key_that_hides_a_value_is_caught() {
        let (_dir, paths) = tampered(0, |first| {
            // serde_json keeps the last "decision", so the hash still matches,
            // but a reader that keeps the first would see "allow".
            first[2] = first[2].replacen('{', "{\"decision\":\"allow\",", 1);
        });
        let failure = fail(&paths);
        assert_eq!(
            (failure.kind, failure.line),
            (FailureKind::Malformed, Some(3))
        );
        assert!(failure.reason.contains("`decision`"), "{failure}");
    }

    #[test]
    fn garbage_and_a_second_chain_are_reported() {
        let (_dir, paths) = tampered(0, |first| {
            first[1] = "hello".into();
        });
        assert_eq!(fail(&paths).kind, FailureKind::Malformed);

        let dir = tempfile::tempdir().unwrap();
        let a = trail(dir.path());
        let other = tempfile::tempdir().unwrap();
        let b = write_trail(other.path(), (1..=3).map(sample).collect(), &[]);
        let failure = fail(&[a[0].clone(), a[1].clone(), b[0].clone()]);
        assert_eq!(failure.kind, FailureKind::NewChain);
        assert!(failure.reason.contains("replica"));
    }

    #[test]
    fn a_forged_record_at_the_largest_seq_does_not_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let mut records = [sample(1), sample(2)];
        let mut prev = "5".repeat(64);
        let mut text = Vec::new();
        for (seq, record) in [u64::MAX, 0].into_iter().zip(records.iter_mut()) {
            text.extend(seal(record, seq, &prev));
            prev = record["hash"].as_str().unwrap().to_owned();
        }
        let path = dir.path().join("forged.jsonl");
        std::fs::write(&path, text).unwrap();
        let partial = VerifyOptions {
            partial: true,
            ..VerifyOptions::default()
        };
        let failure = verify_files(&[path], &partial).unwrap_err();
        assert_eq!(
            (failure.kind, failure.line),
            (FailureKind::Inserted, Some(2))
        );
    }
}
