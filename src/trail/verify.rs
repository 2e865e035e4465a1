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

use super::chain::{self, Head, LinkError, GENESIS};
use super::checkpoint::{self, Checkpoint};
use super::files::{self, Line, LineReader};
use super::record::kind;

/// How far ahead a missing record is looked for, to tell a reordering from a
/// removal.
const LOOKAHEAD_LINES: u64 = 100_000;

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
    /// Decisions by `decision` value (`allow`, `deny`).
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
        if self.shadow_would_deny > 0 {
            write!(f, ", {} shadow would-deny", self.shadow_would_deny)?;
        }
        write!(f, "), {}", plural(self.count(kind::OUTCOME), "outcome"))?;
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

fn failure(kind: FailureKind, reason: &str) -> VerifyFailure {
    VerifyFailure {
        kind,
        file: None,
        line: None,
        seq: None,
        reason: reason.to_owned(),
    }
}

struct Chain<'a> {
    options: &'a VerifyOptions,
    files: &'a [PathBuf],
    head: Option<Head>,
    summary: VerifySummary,
    checkpoint_reached: bool,
}

/// Where a line is, for failures.
struct At<'a> {
    index: usize,
    path: &'a Path,
    line: u64,
}

impl At<'_> {
    fn fail(&self, kind: FailureKind, seq: Option<u64>, reason: String) -> VerifyFailure {
        VerifyFailure {
            kind,
            file: Some(self.path.to_owned()),
            line: Some(self.line),
            seq,
            reason,
        }
    }
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
            Err(error) => Err(self.explain(at, text, last, &error, start.as_ref())),
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

    fn explain(
        &self,
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
                        self.misplaced(at, &fields, head)
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
    fn misplaced(&self, at: &At<'_>, fields: &Fields, head: &Head) -> VerifyFailure {
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
            if let Some((file, line)) = find_seq(self.files, at, expected) {
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

fn modified(at: &At<'_>, seq: Option<u64>) -> VerifyFailure {
    at.fail(
        FailureKind::Modified,
        seq,
        "the record's content does not match its hash: it was modified (or forged)".into(),
    )
}

/// The chain fields of a line read leniently, and whether its hash matches
/// its own content (whatever its place in the chain).
struct Fields {
    seq: u64,
    prev: String,
    hash: String,
    self_consistent: bool,
}

impl Fields {
    fn read(text: &str) -> Option<Self> {
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
pub(crate) mod tests {
    use super::*;
    use crate::trail::chain::seal;
    use crate::trail::checkpoint::tests::test_key;
    use serde_json::json;
    use std::time::{Duration, SystemTime};

    /// A record of `kind` with the writer's fields, for seq `n`.
    pub(crate) fn sample(n: u64) -> Map<String, Value> {
        let time = format!("2026-11-{:02}T10:00:{:02}.000Z", 20 + n / 60, n % 60);
        let request_id = format!("r-{}", n.div_ceil(2));
        let value = if n % 2 == 1 {
            json!({
                "kind": "decision", "time": time, "replica": "a",
                "request_id": request_id, "vendor": "kore",
                "action": "Kore::Action::\"eraseUsersData\"",
                "decision": if n % 3 == 0 { "deny" } else { "allow" },
                "mode": "enforce", "effect": "forwarded",
                "targets": [{"type": "Kore::User", "id": format!("u-{n}"), "decision": "allow", "policies": ["p"], "errors": []}],
            })
        } else {
            json!({"kind": "outcome", "time": time, "replica": "a", "request_id": request_id, "vendor": "kore", "status": 200, "latency_ms": 12})
        };
        value.as_object().cloned().unwrap()
    }

    /// Seals `records` into a chain and writes it to files split after the
    /// given record counts; returns the file paths.
    pub(crate) fn write_trail(
        dir: &Path,
        records: Vec<Map<String, Value>>,
        split: &[usize],
    ) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        let mut text = Vec::new();
        let mut prev = GENESIS.to_owned();
        let mut file_no = 0;
        let flush = |text: &mut Vec<u8>, file_no: &mut usize, paths: &mut Vec<PathBuf>| {
            let path = dir.join(format!("decisions-a-2026112{}T000000Z.jsonl", *file_no));
            std::fs::write(&path, &*text).unwrap();
            paths.push(path);
            text.clear();
            *file_no += 1;
        };
        for (i, mut record) in records.into_iter().enumerate() {
            if split.contains(&i) {
                flush(&mut text, &mut file_no, &mut paths);
            }
            let line = seal(&mut record, i as u64 + 1, &prev);
            prev = record["hash"].as_str().unwrap().to_owned();
            text.extend_from_slice(&line);
        }
        flush(&mut text, &mut file_no, &mut paths);
        paths
    }

    /// The 20-record, 2-file trail the tamper tests start from.
    fn trail(dir: &Path) -> Vec<PathBuf> {
        write_trail(dir, (1..=20).map(sample).collect(), &[12])
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn rewrite(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    fn fail(paths: &[PathBuf]) -> VerifyFailure {
        verify_files(paths, &VerifyOptions::default()).unwrap_err()
    }

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
    fn an_edited_field_is_reported_as_modified_with_file_line_and_seq() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut second = lines(&paths[1]);
        second[2] = second[2].replace("\"allow\"", "\"deny\"");
        rewrite(&paths[1], &second);
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
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut first = lines(&paths[0]);
        first[4] = first[4].replace("\"seq\":5", "\"seq\":6");
        rewrite(&paths[0], &first);
        let failure = fail(&paths);
        assert_eq!(
            (failure.kind, failure.line),
            (FailureKind::Modified, Some(5))
        );
    }

    #[test]
    fn a_line_removed_from_the_middle_is_reported_as_removed() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut first = lines(&paths[0]);
        first.remove(6);
        rewrite(&paths[0], &first);
        let failure = fail(&paths);
        assert_eq!(failure.kind, FailureKind::Removed);
        assert_eq!((failure.line, failure.seq), (Some(7), Some(8)));
        assert!(failure.reason.contains("record 7 is missing"), "{failure}");
    }

    #[test]
    fn a_removed_first_line_is_not_the_start_of_the_chain_unless_partial() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut first = lines(&paths[0]);
        first.remove(0);
        rewrite(&paths[0], &first);
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
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut second = lines(&paths[1]);
        second[0] = second[0].replace("\"vendor\":\"kore\"", "\"vendor\":\"seam\"");
        rewrite(&paths[1], &second);
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
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut first = lines(&paths[0]);
        first.swap(3, 4);
        rewrite(&paths[0], &first);
        let failure = fail(&paths);
        assert_eq!(failure.kind, FailureKind::Reordered);
        assert_eq!((failure.line, failure.seq), (Some(4), Some(5)));
        assert!(failure.reason.contains("line 5"), "{failure}");
    }

    #[test]
    fn a_forged_line_with_a_wrong_hash_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut second = lines(&paths[1]);
        let mut forged = sample(21);
        forged.insert("seq".into(), 21.into());
        forged.insert("prev".into(), "0".repeat(64).into());
        forged.insert("hash".into(), "1".repeat(64).into());
        second.push(Value::Object(forged).to_string());
        rewrite(&paths[1], &second);
        let failure = fail(&paths);
        assert_eq!(failure.kind, FailureKind::Modified);
        assert_eq!((failure.line, failure.seq), (Some(9), Some(21)));
    }

    #[test]
    fn a_forged_line_with_a_correct_hash_but_a_seq_gap_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut second = lines(&paths[1]);
        let last: Map<String, Value> = serde_json::from_str(&second[7]).unwrap();
        let mut forged = sample(23);
        let line = seal(&mut forged, 23, last["hash"].as_str().unwrap());
        second.push(String::from_utf8(line).unwrap().trim_end().to_owned());
        rewrite(&paths[1], &second);
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
    fn a_duplicated_line_is_reported_as_inserted() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut first = lines(&paths[0]);
        first.insert(3, first[2].clone());
        rewrite(&paths[0], &first);
        let failure = fail(&paths);
        assert_eq!(
            (failure.kind, failure.line, failure.seq),
            (FailureKind::Inserted, Some(4), Some(3))
        );
    }

    #[test]
    fn a_copy_of_the_first_record_is_inserted_not_a_new_chain() {
        // Found by fuzz/fuzz_targets/trail_chain.rs: the copy has seq 1 and
        // the genesis prev, and was reported as a second chain.
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut first = lines(&paths[0]);
        first.insert(1, first[0].clone());
        rewrite(&paths[0], &first);
        let failure = fail(&paths);
        assert_eq!(
            (failure.kind, failure.line, failure.seq),
            (FailureKind::Inserted, Some(2), Some(1))
        );
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
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut first = lines(&paths[0]);
        // serde_json keeps the last "decision", so the hash still matches,
        // but a reader that keeps the first would see "allow".
        first[2] = first[2].replacen('{', "{\"decision\":\"allow\",", 1);
        rewrite(&paths[0], &first);
        let failure = fail(&paths);
        assert_eq!(
            (failure.kind, failure.line),
            (FailureKind::Malformed, Some(3))
        );
        assert!(failure.reason.contains("`decision`"), "{failure}");
    }

    #[test]
    fn garbage_and_a_second_chain_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let paths = trail(dir.path());
        let mut first = lines(&paths[0]);
        first[1] = "hello".into();
        rewrite(&paths[0], &first);
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
