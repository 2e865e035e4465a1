//! The trail writer: one thread that owns the file, seals records into the
//! hash chain, and makes them durable with group commit — every record that
//! is queued while a flush runs shares the next `fsync`.
//!
//! A caller's `append` resolves only once its record is on disk, so a
//! decision is durable before the call is forwarded. When the disk fails the
//! writer answers errors, reports unhealthy, and retries by itself. The
//! files themselves (continuing the newest at start, rotating, reopening)
//! are the private `rotation` module's.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value};

use super::canon::{CanonError, Members};
use super::chain::{self, Head, GENESIS};
use super::record;
use super::rotation::TrailFiles;

/// How records are flushed. `Group` is the only mode the gateway uses;
/// `EachRecord` exists to measure what group commit saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitMode {
    /// One `fsync` for everything queued.
    Group,
    /// One `fsync` per record.
    EachRecord,
}

/// Where and how the trail is written.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// `[audit] path`: its directory holds the files, its stem names them
    /// (`audit/decisions.jsonl` → `audit/decisions-<replica>-<time>.jsonl`).
    pub path: PathBuf,
    /// This gateway's replica id, part of every file name and record.
    pub replica: String,
    /// Start a new file once the current one reaches this size.
    pub rotate_bytes: u64,
    /// Start a new file when the UTC day changes.
    pub rotate_daily: bool,
    /// Also print each durable record on stdout, for log collectors.
    pub stdout: bool,
    /// Batching mode.
    pub commit: CommitMode,
    /// Append a signed checkpoint record every this many records (0: never).
    pub checkpoint_every: u64,
    /// Let the file's group read the trail: files 0640 and a directory the
    /// writer creates 0750, instead of 0600 and 0700.
    pub group_read: bool,
}

impl WriterConfig {
    /// The mode of every trail file the writer creates.
    pub fn file_mode(&self) -> u32 {
        if self.group_read {
            0o640
        } else {
            0o600
        }
    }

    /// The mode of the trail directory, when the writer creates it.
    pub fn dir_mode(&self) -> u32 {
        if self.group_read {
            0o750
        } else {
            0o700
        }
    }
}

/// The trail could not be written or opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TrailError {
    /// An I/O error on a trail file.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        message: String,
    },
    /// The existing trail's last record cannot be read, so the chain cannot
    /// be continued safely.
    #[error("{path}: the last record is unreadable ({message}); run `erasure-gateway audit verify` on the trail")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The writer has stopped.
    #[error("the trail writer has stopped")]
    Stopped,
    /// The record could not be written as JSON (nothing was appended).
    #[error("the record cannot be written: {0}")]
    Record(String),
}

/// The most a record's own members may take (about: see
/// [`Members::approximate_len`]). A longer record is refused with its call:
/// a trail line must stay well within what a restart reads back to find
/// the chain's head (`rotation`'s tail window) and what `audit verify`
/// reads as one line.
pub const MAX_RECORD_BYTES: usize = 2 << 20;

type Reply = tokio::sync::oneshot::Sender<Result<Head, TrailError>>;

struct Entry {
    record: Unsealed,
    reply: Reply,
}

/// A record as the writer takes it: its members already in canonical form
/// (serialized once, by the caller's task), or why it has none.
#[derive(Debug)]
pub struct Unsealed(Result<Members, CanonError>);

impl Unsealed {
    /// A typed record of `kind`: its fields plus `kind`.
    pub fn new(kind: &'static str, record: &impl Serialize) -> Self {
        Self(Members::of(record).and_then(|mut members| {
            members.insert("kind", kind)?;
            Ok(members)
        }))
    }

    /// Its members.
    ///
    /// # Errors
    /// Why the record has none: it does not serialize as a JSON object.
    pub fn members(&self) -> Result<&Members, &CanonError> {
        self.0.as_ref()
    }
}

impl From<Map<String, Value>> for Unsealed {
    fn from(record: Map<String, Value>) -> Self {
        Self(Ok(Members::from(&record)))
    }
}

/// A handle to the trail writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Trail {
    queue: mpsc::Sender<Entry>,
    healthy: Arc<AtomicBool>,
}

/// Signs checkpoint records for the writer.
pub type CheckpointSigner = Box<dyn Fn(&Head, SystemTime) -> Map<String, Value> + Send>;

/// One durable batch, as the writer's observer is told of it.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    /// Lines written (records and checkpoints).
    pub lines: usize,
    /// How long writing and syncing them took.
    pub took: Duration,
    /// `stdout = true` and the live copy on stdout failed (the file holds
    /// the batch all the same).
    pub stdout_failed: bool,
}

/// Told of each durable batch.
pub type CommitObserver = Box<dyn Fn(&Committed) + Send>;

impl Trail {
    /// Opens (or continues) the trail and starts the writer thread.
    ///
    /// # Errors
    /// The directory cannot be created, the newest file cannot be read, or
    /// its last record is unreadable.
    pub fn start(
        config: WriterConfig,
        signer: Option<CheckpointSigner>,
    ) -> Result<Self, TrailError> {
        Self::start_observed(config, signer, None)
    }

    /// [`Trail::start`], telling `observer` of each durable batch.
    ///
    /// # Errors
    /// As [`Trail::start`].
    pub fn start_observed(
        config: WriterConfig,
        signer: Option<CheckpointSigner>,
        observer: Option<CommitObserver>,
    ) -> Result<Self, TrailError> {
        let mut state = State::open(config, signer, observer)?;
        let (queue, inbox) = mpsc::channel::<Entry>();
        let healthy = Arc::new(AtomicBool::new(true));
        let flag = healthy.clone();
        std::thread::Builder::new()
            .name("trail-writer".into())
            .spawn(move || {
                // However the writer ends (even by a panic), readiness says so.
                let _ready_while_running = MarkUnhealthyOnDrop(flag.clone());
                state.run(&inbox, &flag);
            })
            .map_err(|e| TrailError::Io {
                path: PathBuf::from("<trail-writer thread>"),
                message: e.to_string(),
            })?;
        Ok(Self { queue, healthy })
    }

    /// Appends a record (its `seq`, `prev`, `hash`, `time` and `replica` are
    /// set by the writer) and resolves once it is durable on disk.
    ///
    /// # Errors
    /// The record could not be made durable; nothing must be forwarded then.
    pub async fn append(&self, record: impl Into<Unsealed>) -> Result<Head, TrailError> {
        let record = record.into();
        let (reply, durable) = tokio::sync::oneshot::channel();
        self.queue
            .send(Entry { record, reply })
            .map_err(|_| TrailError::Stopped)?;
        durable.await.map_err(|_| TrailError::Stopped)?
    }

    /// Whether the last write (or retry) succeeded.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }
}

/// Clears the health flag when dropped.
struct MarkUnhealthyOnDrop(Arc<AtomicBool>);

impl Drop for MarkUnhealthyOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

struct State {
    config: WriterConfig,
    files: TrailFiles,
    head: Option<Head>,
    since_checkpoint: u64,
    signer: Option<CheckpointSigner>,
    /// Records to put first in the next batch (the `recovered` record).
    pending: Vec<Members>,
    observer: Option<CommitObserver>,
    /// The stdout copy failed last time (logged once per failing stretch).
    stdout_failing: bool,
}

impl State {
    fn open(
        config: WriterConfig,
        signer: Option<CheckpointSigner>,
        observer: Option<CommitObserver>,
    ) -> Result<Self, TrailError> {
        let (files, continued) = TrailFiles::open(&config)?;
        let pending = continued
            .torn
            .map(|(file, dropped_bytes)| {
                let mut recovered = Map::new();
                recovered.insert("kind".into(), record::kind::RECOVERED.into());
                recovered.insert("dropped_bytes".into(), dropped_bytes.into());
                recovered.insert("file".into(), file.into());
                Members::from(&recovered)
            })
            .into_iter()
            .collect();
        Ok(Self {
            config,
            files,
            head: continued.head,
            since_checkpoint: 0,
            signer,
            pending,
            observer,
            stdout_failing: false,
        })
    }

    fn run(&mut self, inbox: &mpsc::Receiver<Entry>, healthy: &AtomicBool) {
        loop {
            let first = match inbox.recv_timeout(Duration::from_secs(1)) {
                Ok(entry) => entry,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // Nothing to write: if the disk failed, find out whether
                    // it is back, so /readyz recovers without traffic.
                    if !healthy.load(Ordering::Acquire) && self.files.probe().is_ok() {
                        healthy.store(true, Ordering::Release);
                        tracing::info!("trail: writable again");
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = vec![first];
            if self.config.commit == CommitMode::Group {
                while let Ok(entry) = inbox.try_recv() {
                    batch.push(entry);
                    if batch.len() >= 4096 {
                        break;
                    }
                }
            }
            let mut records = Vec::with_capacity(batch.len());
            let mut replies = Vec::with_capacity(batch.len());
            for Entry { record, reply } in batch {
                match record.0 {
                    Ok(members) if members.approximate_len() > MAX_RECORD_BYTES => {
                        tracing::error!(bytes = members.approximate_len(), "trail: a record is over the bound of a trail line; its call is refused");
                        let _ = reply.send(Err(TrailError::Record(format!(
                            "the record takes about {} bytes, over the {MAX_RECORD_BYTES} a trail line may hold",
                            members.approximate_len()
                        ))));
                    }
                    Ok(members) => {
                        records.push(members);
                        replies.push(reply);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "trail: a record cannot be written; its call is refused");
                        let _ = reply.send(Err(TrailError::Record(e.to_string())));
                    }
                }
            }
            if records.is_empty() {
                continue;
            }
            match self.commit(&records) {
                Ok(heads) => {
                    healthy.store(true, Ordering::Release);
                    for (reply, head) in replies.into_iter().zip(heads) {
                        let _ = reply.send(Ok(head));
                    }
                }
                Err(error) => {
                    if healthy.swap(false, Ordering::AcqRel) {
                        tracing::error!(%error, "trail: write failed; erasure calls are refused until it recovers");
                    }
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }

    /// Writes and syncs a batch; returns each record's head. On failure the
    /// file is cut back to its last durable length and the chain does not
    /// advance.
    fn commit(&mut self, records: &[Members]) -> Result<Vec<Head>, TrailError> {
        let now = SystemTime::now();
        self.files.rotate_if_due(now)?;
        let time = serde_json::to_vec(&humantime::format_rfc3339_millis(now).to_string())
            .unwrap_or_default();
        let replica = serde_json::to_vec(&self.config.replica).unwrap_or_default();
        let more: [(&str, &[u8]); 2] = [("replica", &replica), ("time", &time)];
        let mut head = self.head.clone();
        let mut since_checkpoint = self.since_checkpoint;
        let mut bytes = Vec::with_capacity(records.len() * 1024);
        let mut heads = Vec::with_capacity(records.len());
        let mut lines = 0;
        let mut seal = |members: &Members, head: &mut Option<Head>| {
            lines += 1;
            let (seq, prev) = head
                .as_ref()
                .map_or((1, GENESIS), |h| (h.seq + 1, h.hash.as_str()));
            let hash = chain::seal_members(members, seq, prev, &more, &mut bytes);
            let new_head = Head { seq, hash };
            *head = Some(new_head.clone());
            new_head
        };
        for record in &self.pending {
            seal(record, &mut head);
        }
        for record in records {
            heads.push(seal(record, &mut head));
            since_checkpoint += 1;
            if self.config.checkpoint_every > 0 && since_checkpoint >= self.config.checkpoint_every
            {
                if let (Some(signer), Some(h)) = (&self.signer, head.as_ref()) {
                    let checkpoint = Members::from(&signer(h, now));
                    seal(&checkpoint, &mut head);
                    since_checkpoint = 0;
                }
            }
        }
        // `EachRecord`, a measurement mode: one write and one sync per line.
        let each_record = self.config.commit == CommitMode::EachRecord;
        let started = std::time::Instant::now();
        self.files.append(&bytes, now, each_record)?;
        let took = started.elapsed();
        self.pending.clear();
        self.head = head;
        self.since_checkpoint = since_checkpoint;
        let mut stdout_failed = false;
        if self.config.stdout {
            let mut out = std::io::stdout().lock();
            match out.write_all(&bytes).and_then(|()| out.flush()) {
                Ok(()) if self.stdout_failing => {
                    tracing::info!("trail: the stdout copy works again");
                    self.stdout_failing = false;
                }
                Ok(()) => {}
                Err(error) => {
                    stdout_failed = true;
                    if !self.stdout_failing {
                        tracing::warn!(%error, "trail: the stdout copy failed; the trail file holds every record (further failures are counted in erasure_gateway_trail_stdout_errors_total)");
                    }
                    self.stdout_failing = true;
                }
            }
        }
        if let Some(observe) = &self.observer {
            observe(&Committed {
                lines,
                took,
                stdout_failed,
            });
        }
        Ok(heads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::fixtures::{append_all, read_chain, runtime, unsealed, writer_config};

    #[test]
    fn concurrent_appends_are_durable_chained_and_continue_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        rt.block_on(async {
            let trail = Trail::start(writer_config(dir.path()), None).unwrap();
            let appends: Vec<_> = (0..200)
                .map(|n| {
                    let trail = trail.clone();
                    tokio::spawn(async move { trail.append(unsealed(n)).await })
                })
                .collect();
            let mut seqs = Vec::new();
            for a in appends {
                seqs.push(a.await.unwrap().unwrap().seq);
            }
            seqs.sort_unstable();
            assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
        });
        // A new writer on the same directory continues the same chain.
        assert_eq!(
            append_all(writer_config(dir.path()), [unsealed(999)]),
            [201]
        );
        let records = read_chain(dir.path());
        assert_eq!(records.len(), 201);
        assert_eq!(records[0]["replica"], "t1");
    }

    #[test]
    fn a_record_over_a_trail_lines_bound_is_refused_and_the_chain_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        rt.block_on(async {
            let trail = Trail::start(writer_config(dir.path()), None).unwrap();
            trail.append(unsealed(1)).await.unwrap();
            let mut huge = unsealed(2);
            huge.insert("targets".into(), "x".repeat(MAX_RECORD_BYTES).into());
            let refused = trail.append(huge).await.unwrap_err();
            assert!(
                matches!(&refused, TrailError::Record(m) if m.contains("a trail line may hold")),
                "{refused}"
            );
            assert!(trail.healthy(), "one record refused is not a failing disk");
            let mut near = unsealed(3);
            near.insert("targets".into(), "x".repeat(MAX_RECORD_BYTES - 1024).into());
            assert_eq!(trail.append(near).await.unwrap().seq, 2);
        });
        // A restart finds the head behind the longest line the writer takes.
        assert_eq!(append_all(writer_config(dir.path()), [unsealed(4)]), [3]);
        let records = read_chain(dir.path());
        assert_eq!(records.len(), 3);
        assert_eq!(records[2]["request_id"], "r4");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failing_disk_refuses_appends_then_recovers_without_restart() {
        let dir = tempfile::tempdir().unwrap();
        // The newest trail file is /dev/full: every write fails with ENOSPC.
        let full = dir.path().join("decisions-t1-20260101T000000Z.jsonl");
        std::os::unix::fs::symlink("/dev/full", &full).unwrap();
        let rt = runtime();
        rt.block_on(async {
            let trail = Trail::start(writer_config(dir.path()), None).unwrap();
            assert!(trail.append(unsealed(1)).await.is_err());
            assert!(!trail.healthy());
            assert!(trail.append(unsealed(2)).await.is_err(), "still failing");
            // The disk "recovers": the probe finds out without any append.
            std::fs::remove_file(&full).unwrap();
            for _ in 0..50 {
                if trail.healthy() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(trail.healthy());
            assert_eq!(trail.append(unsealed(3)).await.unwrap().seq, 1);
        });
        let records = read_chain(dir.path());
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["request_id"], "r3");
    }
}
