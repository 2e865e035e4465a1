//! `audit verify`: proves a trail untouched, or names the first line that
//! breaks it (file, line, seq) and says how, in words for a reviewer.
//!
//! The files are streamed line by line, each line checked with
//! [`chain::verify_line`], the chain continuing across files. A signed
//! [`Checkpoint`] held outside the trail also proves that nothing was cut
//! off the end; with a pinned public key, the writer's in-chain checkpoint
//! records are checked too.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::chain::{self, Head, GENESIS};
use super::checkpoint::{self, Checkpoint};
use super::diagnose::{self, failure, modified, At, Fields};
use super::files::{self, Line, LineReader};
use super::record::kind;

pub use super::diagnose::{FailureKind, VerifyFailure};

/// What to check beyond the chain itself.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Accept a trail whose first record is not seq 1 (earlier files were
    /// archived). The first record is then trusted as the start.
    pub partial: bool,
    /// A checkpoint the trail must still reach, with its signature checked.
    pub checkpoint: Option<Checkpoint>,
    /// The reviewer's trusted public key (raw 32 bytes): the checkpoint and
    /// every in-chain checkpoint record must be signed by it.
    pub public_key: Option<Vec<u8>>,
}

/// How the external checkpoint was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReached {
    /// The checkpoint's seq, which the trail reaches with the same hash.
    pub seq: u64,
    /// When it was signed.
    pub time: String,
    /// The signing key's id.
    pub key_id: String,
    /// Whether it was checked against a pinned key; if not, the reviewer must
    /// compare `key_id` with the key they trust.
    pub pinned: bool,
}

/// What a verified trail holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifySummary {
    /// Records verified.
    pub records: u64,
    /// Files read.
    pub files: usize,
    /// The first record's seq (1 unless `partial`).
    pub first_seq: Option<u64>,
    /// The first record's `time`.
    pub first_time: Option<String>,
    /// The last record's `time`.
    pub last_time: Option<String>,
    /// Records by `kind`.
    pub kinds: BTreeMap<String, u64>,
    /// Decisions by `decision` value (`allow`, `deny`, `held`).
    pub decisions: BTreeMap<String, u64>,
    /// Decisions in shadow mode that would have denied.
    pub shadow_would_deny: u64,
    /// The last record's seq and hash.
    pub head: Option<Head>,
    /// In-chain checkpoint records whose signature was checked.
    pub checkpoints_verified: u64,
    /// The external checkpoint, when one was given.
    pub checkpoint: Option<CheckpointReached>,
}

impl VerifySummary {
    fn count(&self, kind: &str) -> u64 {
        self.kinds.get(kind).copied().unwrap_or(0)
    }
}

impl fmt::Display for VerifySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        write!(
            f,
            "OK {} in {}",
            plural(self.records, "record"),
            plural(self.files as u64, "file")
        )?;
        if let (Some(first), Some(last)) = (&self.first_time, &self.last_time) {
            write!(f, ", {first} – {last}")?;
        }
        let decisions = self.count(kind::DECISION);
        let allow = self.decisions.get("allow").copied().unwrap_or(0);
        let deny = self.decisions.get("deny").copied().unwrap_or(0);
        write!(
            f,
            ": {} ({allow} allow, {deny} deny",
            plural(decisions, "decision")
        )?;
        let held = self.decisions.get("held").copied().unwrap_or(0);
        if held > 0 {
            write!(f, ", {held} held for approval")?;
        }
        if self.shadow_would_deny > 0 {
            write!(f, ", {} shadow would-deny", self.shadow_would_deny)?;
        }
        write!(f, "), {}", plural(self.count(kind::OUTCOME), "outcome"))?;
        let approvals = self.count(kind::APPROVAL);
        if approvals > 0 {
            write!(f, ", {}", plural(approvals, "approval"))?;
        }
        let recovered = self.count(kind::RECOVERED);
        if recovered > 0 {
            write!(f, ", {recovered} recovered (torn writes cut at start)")?;
        }
        let checkpoints = self.count(kind::CHECKPOINT);
        if checkpoints > 0 {
            if self.checkpoints_verified == checkpoints {
                write!(
                    f,
                    ", {} (signatures checked)",
                    plural(checkpoints, "checkpoint")
                )?;
            } else {
                write!(
                    f,
                    ", {} (signatures not checked: no public key)",
                    plural(checkpoints, "checkpoint")
                )?;
            }
        }
        if let Some(first) = self.first_seq.filter(|seq| *seq != 1) {
            write!(f, "; starts at seq {first} (partial)")?;
        }
        if let Some(head) = &self.head {
            let short = head.hash.get(..12).unwrap_or(&head.hash);
            write!(f, "; head seq {} hash {short}…", head.seq)?;
        }
        if let Some(cp) = &self.checkpoint {
            write!(
                f,
                "; reaches checkpoint seq {} of {} signed by key {}",
                cp.seq, cp.time, cp.key_id
            )?;
            if !cp.pinned {
                f.write_str(" (not pinned: compare the key id with the key you trust)")?;
            }
        }
        Ok(())
    }
}

/// Verifies the trail in `paths`, read in the order given (pass files oldest
/// first; a directory expands to its `*.jsonl` oldest first). Streams every
/// line: memory does not grow with the trail.
///
/// # Errors
/// The first way the trail fails, with its file, line and seq.
pub fn verify_files(
    paths: &[PathBuf],
    options: &VerifyOptions,
) -> Result<VerifySummary, VerifyFailure> {
    let files = files::trail_files(paths).map_err(|e| VerifyFailure {
        kind: FailureKind::Unreadable,
        file: Some(e.path),
        line: None,
        seq: None,
        reason: e.source.to_string(),
    })?;
    if files.is_empty() {
        return Err(failure(
            FailureKind::NoFiles,
            "no trail files given or found",
        ));
    }
    if let Some(cp) = &options.checkpoint {
        cp.verify(options.public_key.as_deref())
            .map_err(|e| failure(FailureKind::BadSignature, &format!("checkpoint: {e}")))?;
    }
    let mut chain = Chain {
        options,
        files: &files,
        head: None,
        summary: VerifySummary {
            files: files.len(),
            ..VerifySummary::default()
        },
        checkpoint_reached: false,
    };
    for (index, path) in files.iter().enumerate() {
        chain.verify_file(index, path)?;
    }
    chain.finish()
}

struct Chain<'a> {
    options: &'a VerifyOptions,
    files: &'a [PathBuf],
    head: Option<Head>,
    summary: VerifySummary,
    checkpoint_reached: bool,
}

impl Chain<'_> {
    fn verify_file(&mut self, index: usize, path: &Path) -> Result<(), VerifyFailure> {
        let unreadable = |e: &dyn fmt::Display, line: Option<u64>| VerifyFailure {
            kind: FailureKind::Unreadable,
            file: Some(path.to_owned()),
            line,
            seq: None,
            reason: e.to_string(),
        };
        let mut reader = LineReader::open(path).map_err(|e| unreadable(&e.source, None))?;
        loop {
            let next = reader
                .next_line()
                .map_err(|e| unreadable(&e, Some(reader.line_no() + 1)))?;
            let at = At {
                index,
                path,
                line: reader.line_no(),
            };
            match next {
                None => return Ok(()),
                Some(Line::TooLong) => {
                    return Err(at.fail(
                        FailureKind::Malformed,
                        None,
                        format!(
                            "a line longer than {} bytes: not a record the gateway writes",
                            files::MAX_LINE_BYTES
                        ),
                    ))
                }
                Some(Line::Complete(bytes)) if bytes.is_empty() => {
                    return Err(at.fail(
                        FailureKind::EmptyLine,
                        None,
                        "an empty line: the writer never writes one, so the file was edited".into(),
                    ))
                }
                Some(Line::Complete(bytes)) => self.verify_record(&at, &bytes, false)?,
                Some(Line::Unterminated(bytes)) => self.verify_record(&at, &bytes, true)?,
            }
        }
    }

    fn verify_record(
        &mut self,
        at: &At<'_>,
        bytes: &[u8],
        last: bool,
    ) -> Result<(), VerifyFailure> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            let kind = if last {
                FailureKind::Truncated
            } else {
                FailureKind::Malformed
            };
            return Err(at.fail(
                kind,
                None,
                "not UTF-8 text: the line was damaged or edited".into(),
            ));
        };
        let (record, head) = self.link(at, text, last)?;
        let seq = Some(head.seq);
        if last {
            return Err(at.fail(
                FailureKind::MissingNewline,
                seq,
                "the file ends without a newline after this record: the last write was cut short or the file was edited".into(),
            ));
        }
        self.check_in_chain_checkpoint(at, &record, &head)?;
        self.check_external_checkpoint(at, &head)?;
        self.count(&record);
        self.head = Some(head);
        Ok(())
    }

    /// Checks that the line continues the chain, and says how it does not.
    fn link(
        &mut self,
        at: &At<'_>,
        text: &str,
        last: bool,
    ) -> Result<(Map<String, Value>, Head), VerifyFailure> {
        let start = match &self.head {
            Some(head) => Some(head.clone()),
            None => self.start_of_chain(at, text, last)?,
        };
        // `verify_line` adds 1 to the head's seq; a forged record at the
        // largest seq must not overflow it.
        if let Some(head) = start.as_ref().filter(|h| h.seq == u64::MAX) {
            return Err(at.fail(
                FailureKind::Inserted,
                Some(head.seq),
                format!("a record follows seq {}, the largest possible: the record before it was forged", head.seq),
            ));
        }
        match chain::verify_line(text, start.as_ref()) {
            Ok(linked) => {
                if self.head.is_none() {
                    self.summary.first_seq = Some(linked.1.seq);
                }
                Ok(linked)
            }
            Err(error) => Err(diagnose::explain(
                self.files,
                at,
                text,
                last,
                &error,
                start.as_ref(),
            )),
        }
    }

    /// The head the first record must follow: none (genesis) for a full
    /// trail; for a partial one, the head its own `seq` and `prev` name.
    fn start_of_chain(
        &self,
        at: &At<'_>,
        text: &str,
        last: bool,
    ) -> Result<Option<Head>, VerifyFailure> {
        let Some(fields) = Fields::read(text) else {
            // Not a record at all: let verify_line name the problem.
            return Ok(None);
        };
        if !fields.self_consistent {
            return Err(modified(at, Some(fields.seq)));
        }
        let at_genesis = fields.seq == 1 && fields.prev == GENESIS;
        if at_genesis || (self.options.partial && fields.prev == GENESIS) {
            return Ok(None);
        }
        if !self.options.partial {
            let prev = fields.prev.get(..12).unwrap_or(&fields.prev);
            return Err(at.fail(
                FailureKind::NotAtStart,
                Some(fields.seq),
                format!(
                    "the trail does not start at the beginning of the chain: its first record is seq {} (prev {prev}…), not seq 1 after the genesis hash; pass --partial if earlier files were archived, or add them (oldest first)",
                    fields.seq
                ),
            ));
        }
        match fields.seq.checked_sub(1) {
            Some(seq) => Ok(Some(Head {
                seq,
                hash: fields.prev,
            })),
            None => {
                let kind = if last {
                    FailureKind::Truncated
                } else {
                    FailureKind::Malformed
                };
                Err(at.fail(kind, Some(0), "seq 0 does not follow any record".into()))
            }
        }
    }

    fn check_in_chain_checkpoint(
        &mut self,
        at: &At<'_>,
        record: &Map<String, Value>,
        head: &Head,
    ) -> Result<(), VerifyFailure> {
        if record.get("kind").and_then(Value::as_str) != Some(kind::CHECKPOINT) {
            return Ok(());
        }
        let seq = Some(head.seq);
        let head_seq = record.get("head_seq").and_then(Value::as_u64);
        let head_hash = record.get("head_hash").and_then(Value::as_str);
        let prev = record.get("prev").and_then(Value::as_str);
        if head_seq != head.seq.checked_sub(1) || head_hash != prev {
            return Err(at.fail(
                FailureKind::BadSignature,
                seq,
                "the checkpoint record does not name the record right before it as the head it signs".into(),
            ));
        }
        if let Some(key) = &self.options.public_key {
            checkpoint::verify_record(record, key).map_err(|e| {
                at.fail(
                    FailureKind::BadSignature,
                    seq,
                    format!("checkpoint record: {e}"),
                )
            })?;
            self.summary.checkpoints_verified += 1;
        }
        Ok(())
    }

    fn check_external_checkpoint(&mut self, at: &At<'_>, head: &Head) -> Result<(), VerifyFailure> {
        let Some(cp) = &self.options.checkpoint else {
            return Ok(());
        };
        if self.head.is_none() && head.seq > cp.seq {
            return Err(at.fail(
                FailureKind::CheckpointNotReached,
                Some(head.seq),
                format!("the trail starts at seq {} but the checkpoint names seq {}: add the earlier files", head.seq, cp.seq),
            ));
        }
        if head.seq == cp.seq {
            if head.hash != cp.hash {
                let short = |h: &str| h.get(..12).unwrap_or(h).to_owned();
                return Err(at.fail(
                    FailureKind::CheckpointMismatch,
                    Some(head.seq),
                    format!(
                        "the record has hash {}… but the checkpoint of {} names {}…: the trail was rewritten up to here",
                        short(&head.hash),
                        cp.time,
                        short(&cp.hash)
                    ),
                ));
            }
            self.checkpoint_reached = true;
        }
        Ok(())
    }

    fn count(&mut self, record: &Map<String, Value>) {
        let summary = &mut self.summary;
        summary.records += 1;
        let time = record
            .get("time")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if summary.first_time.is_none() {
            summary.first_time.clone_from(&time);
        }
        if time.is_some() {
            summary.last_time = time;
        }
        let kind = record
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("(none)");
        *summary.kinds.entry(kind.to_owned()).or_insert(0) += 1;
        if kind == kind::DECISION {
            let decision = record
                .get("decision")
                .and_then(Value::as_str)
                .unwrap_or("(none)");
            *summary.decisions.entry(decision.to_owned()).or_insert(0) += 1;
            if decision == "deny" && record.get("mode").and_then(Value::as_str) == Some("shadow") {
                summary.shadow_would_deny += 1;
            }
        }
    }

    fn finish(mut self) -> Result<VerifySummary, VerifyFailure> {
        if let Some(cp) = &self.options.checkpoint {
            if !self.checkpoint_reached {
                let reason = match &self.head {
                    Some(head) => format!(
                        "the trail ends at seq {} but the checkpoint of {} names seq {}: records were removed from the end",
                        head.seq, cp.time, cp.seq
                    ),
                    None => format!(
                        "the trail holds no records but the checkpoint of {} names seq {}: records were removed",
                        cp.time, cp.seq
                    ),
                };
                let mut failure = failure(FailureKind::CheckpointNotReached, &reason);
                failure.file = self.files.last().cloned();
                failure.seq = self.head.as_ref().map(|h| h.seq);
                return Err(failure);
            }
            self.summary.checkpoint = Some(CheckpointReached {
                seq: cp.seq,
                time: cp.time.clone(),
                key_id: cp.key_id.clone(),
                pinned: self.options.public_key.is_some(),
            });
        }
        self.summary.head = self.head;
        Ok(self.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::chain::seal;
    use crate::trail::checkpoint::tests::test_key;
    use crate::trail::fixtures::{
        fail, lines, rewrite, sample, tamper_trail as trail, write_trail,
    };
    use std::time::{Duration, SystemTime};

    #[test]
    fn an_untouched_trail_verifies_with_the_right_counts() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let summary = verify_files(&paths, &VerifyOptions::default()).unwrap();
        assert_eq!(summary.records, 20);
        assert_eq!(summary.files, 2);
        assert_eq!(summary.kinds["decision"], 10);
        assert_eq!(summary.kinds["outcome"], 10);
        // Odd seqs are decisions; 3, 9, 15 are denials.
        assert_eq!(summary.decisions["deny"], 3);
        assert_eq!(summary.decisions["allow"], 7);
        assert_eq!(summary.head.as_ref().map(|h| h.seq), Some(20));
        assert_eq!(
            summary.first_time.as_deref(),
            Some("2026-11-20T10:00:01.000Z")
        );
        assert_eq!(
            summary.last_time.as_deref(),
            Some("2026-11-20T10:00:20.000Z")
        );
        let shown = summary.to_string();
        assert!(
            shown.starts_with("OK 20 records in 2 files, 2026-11-20T10:00:01.000Z – 2026-11-20T10:00:20.000Z: 10 decisions (7 allow, 3 deny), 10 outcomes; head seq 20 hash "),
            "{shown}"
        );
        // A directory gives the same result.
        let by_dir = verify_files(&[dir.path().to_owned()], &VerifyOptions::default()).unwrap();
        assert_eq!(by_dir, summary);
    }

    #[test]
    fn missing_files_fail() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(fail(&[dir.path().to_owned()]).kind, FailureKind::NoFiles);
        assert_eq!(
            fail(&[dir.path().join("absent.jsonl")]).kind,
            FailureKind::Unreadable
        );
    }

    fn at_time(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_checkpoint_at_the_old_head_catches_records_removed_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let key = test_key(dir.path(), 1);
        let head = verify_files(&paths, &VerifyOptions::default())
            .unwrap()
            .head
            .unwrap();
        let options = VerifyOptions {
            checkpoint: Some(checkpoint::sign(&head, at_time(1_795_000_000), &key)),
            public_key: Some(key.public_key().to_vec()),
            ..VerifyOptions::default()
        };
        let summary = verify_files(&paths, &options).unwrap();
        assert!(
            summary.to_string().contains("reaches checkpoint seq 20"),
            "{summary}"
        );

        // Cut the tail: the chain is still intact, the checkpoint is not reached.
        let second = lines(&paths[1]);
        rewrite(&paths[1], &second[..5]);
        assert!(verify_files(&paths, &VerifyOptions::default()).is_ok());
        let failure = verify_files(&paths, &options).unwrap_err();
        assert_eq!(failure.kind, FailureKind::CheckpointNotReached);
        assert!(
            failure
                .reason
                .contains("the trail ends at seq 17 but the checkpoint")
                && failure
                    .reason
                    .contains("names seq 20: records were removed from the end"),
            "{failure}"
        );
        // The whole last file gone.
        let failure = verify_files(&paths[..1], &options).unwrap_err();
        assert!(failure.reason.contains("ends at seq 12"), "{failure}");
    }

    #[test]
    fn a_checkpoint_that_does_not_match_the_trail_or_its_key_fails() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let key = test_key(dir.path(), 1);
        let other = test_key(dir.path(), 2);
        let forged_head = Head {
            seq: 10,
            hash: "ab".repeat(32),
        };
        let options = VerifyOptions {
            checkpoint: Some(checkpoint::sign(&forged_head, at_time(1), &key)),
            ..VerifyOptions::default()
        };
        let failure = verify_files(&paths, &options).unwrap_err();
        assert_eq!(
            (failure.kind, failure.seq),
            (FailureKind::CheckpointMismatch, Some(10))
        );

        let head = Head {
            seq: 20,
            hash: verify_files(&paths, &VerifyOptions::default())
                .unwrap()
                .head
                .unwrap()
                .hash,
        };
        let mut altered = checkpoint::sign(&head, at_time(1), &key);
        altered.seq = 19;
        let options = VerifyOptions {
            checkpoint: Some(altered),
            ..VerifyOptions::default()
        };
        assert_eq!(fail_with(&paths, &options), FailureKind::BadSignature);
        let options = VerifyOptions {
            checkpoint: Some(checkpoint::sign(&head, at_time(1), &key)),
            public_key: Some(other.public_key().to_vec()),
            ..VerifyOptions::default()
        };
        assert_eq!(fail_with(&paths, &options), FailureKind::BadSignature);
        let unpinned = VerifyOptions {
            public_key: None,
            ..options
        };
        let summary = verify_files(&paths, &unpinned).unwrap();
        assert!(summary.to_string().contains("not pinned"), "{summary}");
    }

    fn fail_with(paths: &[PathBuf], options: &VerifyOptions) -> FailureKind {
        verify_files(paths, options).unwrap_err().kind
    }

    #[test]
    fn in_chain_checkpoint_records_are_checked_with_the_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = test_key(dir.path(), 1);
        let other = test_key(dir.path(), 2);
        // Seal 4 records, then a checkpoint of that head, then 1 more.
        let mut records: Vec<Map<String, Value>> = (1..=4).map(sample).collect();
        let mut prev = GENESIS.to_owned();
        for (i, record) in records.iter_mut().enumerate() {
            seal(record, i as u64 + 1, &prev);
            prev = record["hash"].as_str().unwrap().to_owned();
        }
        let head = Head { seq: 4, hash: prev };
        records.push(checkpoint::checkpoint_record(&head, at_time(2), &key));
        records.push(sample(6));
        let paths = write_trail(dir.path(), records, &[]);

        let summary = verify_files(&paths, &VerifyOptions::default()).unwrap();
        assert_eq!(summary.checkpoints_verified, 0);
        assert!(
            summary
                .to_string()
                .contains("1 checkpoint (signatures not checked"),
            "{summary}"
        );
        let pinned = VerifyOptions {
            public_key: Some(key.public_key().to_vec()),
            ..VerifyOptions::default()
        };
        let summary = verify_files(&paths, &pinned).unwrap();
        assert_eq!(summary.checkpoints_verified, 1);
        let wrong = VerifyOptions {
            public_key: Some(other.public_key().to_vec()),
            ..VerifyOptions::default()
        };
        let failure = verify_files(&paths, &wrong).unwrap_err();
        assert_eq!(
            (failure.kind, failure.seq),
            (FailureKind::BadSignature, Some(5))
        );

        // A checkpoint record that names another head than the one before it.
        let mut records: Vec<Map<String, Value>> = (1..=2).map(sample).collect();
        records.push(checkpoint::checkpoint_record(&head, at_time(2), &key));
        let other_dir = tempfile::tempdir().unwrap();
        let paths = write_trail(other_dir.path(), records, &[]);
        assert_eq!(fail_with(&paths, &pinned), FailureKind::BadSignature);
    }
}
