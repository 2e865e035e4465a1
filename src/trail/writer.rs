//! The trail writer: one thread that owns the file, seals records into the
//! hash chain, and makes them durable with group commit — every record that
//! is queued while a flush runs shares the next `fsync`.
//!
//! A caller's `append` resolves only once its record is on disk, so a
//! decision is durable before the call is forwarded. When the disk fails the
//! writer answers errors, reports unhealthy, and retries by itself.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::record::{self, Head, GENESIS};

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
}

type Reply = tokio::sync::oneshot::Sender<Result<Head, TrailError>>;

struct Entry {
    record: Map<String, Value>,
    reply: Reply,
}

/// A handle to the trail writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Trail {
    queue: mpsc::Sender<Entry>,
    healthy: Arc<AtomicBool>,
}

/// Signs checkpoint records for the writer.
pub type CheckpointSigner = Box<dyn Fn(&Head, SystemTime) -> Map<String, Value> + Send>;

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
        let mut state = State::open(config, signer)?;
        let (queue, inbox) = mpsc::channel::<Entry>();
        let healthy = Arc::new(AtomicBool::new(true));
        let flag = healthy.clone();
        std::thread::Builder::new()
            .name("trail-writer".into())
            .spawn(move || state.run(&inbox, &flag))
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
    pub async fn append(&self, record: Map<String, Value>) -> Result<Head, TrailError> {
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

struct State {
    config: WriterConfig,
    dir: PathBuf,
    stem: String,
    file: Option<(PathBuf, File)>,
    /// Bytes of the current file known to be durable.
    durable_len: u64,
    file_day: u64,
    head: Option<Head>,
    since_checkpoint: u64,
    signer: Option<CheckpointSigner>,
    /// Records to put first in the next batch (the `recovered` record).
    pending: Vec<Map<String, Value>>,
}

fn io_error(path: &Path, e: &std::io::Error) -> TrailError {
    TrailError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn day_of(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

impl State {
    fn open(config: WriterConfig, signer: Option<CheckpointSigner>) -> Result<Self, TrailError> {
        let dir = config
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let stem = config.path.file_stem().map_or_else(
            || "decisions".to_owned(),
            |s| s.to_string_lossy().into_owned(),
        );
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, &e))?;
        let mut state = Self {
            config,
            dir,
            stem,
            file: None,
            durable_len: 0,
            file_day: 0,
            head: None,
            since_checkpoint: 0,
            signer,
            pending: Vec::new(),
        };
        if let Some(newest) = state.newest_file()? {
            state.continue_file(&newest)?;
        }
        Ok(state)
    }

    /// This replica's files, oldest first.
    fn files(&self) -> Result<Vec<PathBuf>, TrailError> {
        let prefix = format!("{}-{}-", self.stem, self.config.replica);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| io_error(&self.dir, &e))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".jsonl"))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    fn newest_file(&self) -> Result<Option<PathBuf>, TrailError> {
        Ok(self.files()?.pop())
    }

    /// Reads the newest file's tail, cuts a torn last line, and continues
    /// the chain from its last record.
    fn continue_file(&mut self, path: &Path) -> Result<(), TrailError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error(path, &e))?;
        let len = file.metadata().map_err(|e| io_error(path, &e))?.len();
        // Records are far shorter than this; read enough to hold the last one.
        let window = len.min(1 << 20);
        let mut tail = vec![0; usize::try_from(window).unwrap_or(0)];
        file.seek(SeekFrom::Start(len - window))
            .and_then(|_| file.read_exact(&mut tail))
            .map_err(|e| io_error(path, &e))?;
        let complete = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let torn = tail.len() - complete;
        if torn > 0 {
            let keep = len - torn as u64;
            file.set_len(keep)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error(path, &e))?;
            let mut recovered = Map::new();
            recovered.insert("kind".into(), record::kind::RECOVERED.into());
            recovered.insert("dropped_bytes".into(), (torn as u64).into());
            recovered.insert(
                "file".into(),
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
                    .into(),
            );
            self.pending.push(recovered);
            tracing::warn!(file = %path.display(), dropped_bytes = torn, "trail: cut a torn last record");
        }
        let lines = &tail[..complete];
        let last = lines[..lines.len().saturating_sub(1)]
            .rsplit(|b| *b == b'\n')
            .next()
            .filter(|l| !l.is_empty());
        if let Some(last) = last {
            let parsed: Map<String, Value> =
                serde_json::from_slice(last).map_err(|e| TrailError::Unreadable {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
            let seq = parsed.get("seq").and_then(Value::as_u64);
            let hash = parsed.get("hash").and_then(Value::as_str);
            let (Some(seq), Some(hash)) = (seq, hash) else {
                return Err(TrailError::Unreadable {
                    path: path.to_owned(),
                    message: "no seq or hash".into(),
                });
            };
            self.head = Some(Head {
                seq,
                hash: hash.to_owned(),
            });
        }
        self.durable_len = len - torn as u64;
        self.file_day = file_start_day(path).unwrap_or_else(|| day_of(SystemTime::now()));
        self.file = Some((path.to_owned(), file));
        Ok(())
    }

    fn run(&mut self, inbox: &mpsc::Receiver<Entry>, healthy: &AtomicBool) {
        loop {
            let first = match inbox.recv_timeout(Duration::from_secs(1)) {
                Ok(entry) => entry,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // Nothing to write: if the disk failed, find out whether
                    // it is back, so /readyz recovers without traffic.
                    if !healthy.load(Ordering::Acquire) && self.probe().is_ok() {
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
            let records: Vec<Map<String, Value>> = batch
                .iter_mut()
                .map(|e| std::mem::take(&mut e.record))
                .collect();
            match self.commit(records) {
                Ok(heads) => {
                    healthy.store(true, Ordering::Release);
                    for (entry, head) in batch.into_iter().zip(heads) {
                        let _ = entry.reply.send(Ok(head));
                    }
                }
                Err(error) => {
                    if healthy.swap(false, Ordering::AcqRel) {
                        tracing::error!(%error, "trail: write failed; erasure calls are refused until it recovers");
                    }
                    for entry in batch {
                        let _ = entry.reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }

    /// Writes and syncs a batch; returns each record's head. On failure the
    /// file is cut back to its last durable length and the chain does not
    /// advance.
    fn commit(&mut self, records: Vec<Map<String, Value>>) -> Result<Vec<Head>, TrailError> {
        let now = SystemTime::now();
        self.rotate_if_due(now)?;
        let time = humantime::format_rfc3339_millis(now).to_string();
        let mut head = self.head.clone();
        let mut since_checkpoint = self.since_checkpoint;
        let mut bytes = Vec::with_capacity(records.len() * 512);
        let mut heads = Vec::with_capacity(records.len());
        let mut seal = |mut record: Map<String, Value>, head: &mut Option<Head>| {
            record.insert("time".into(), time.clone().into());
            record.insert("replica".into(), self.config.replica.clone().into());
            let (seq, prev) = head
                .as_ref()
                .map_or((1, GENESIS.to_owned()), |h| (h.seq + 1, h.hash.clone()));
            let line = record::seal(&mut record, seq, &prev);
            let hash = record
                .get("hash")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            bytes.extend_from_slice(&line);
            let new_head = Head { seq, hash };
            *head = Some(new_head.clone());
            new_head
        };
        let pending = self.pending.clone();
        for record in pending {
            seal(record, &mut head);
        }
        for record in records {
            heads.push(seal(record, &mut head));
            since_checkpoint += 1;
            if self.config.checkpoint_every > 0 && since_checkpoint >= self.config.checkpoint_every
            {
                if let (Some(signer), Some(h)) = (&self.signer, head.as_ref()) {
                    let checkpoint = signer(h, now);
                    seal(checkpoint, &mut head);
                    since_checkpoint = 0;
                }
            }
        }
        let each_record = self.config.commit == CommitMode::EachRecord;
        self.file_for_write(now)?;
        let durable_len = self.durable_len;
        let Some((path, file)) = &mut self.file else {
            return Err(TrailError::Stopped);
        };
        let path = path.clone();
        let written = if each_record {
            // Measurement mode: one write and one sync per line.
            bytes
                .split_inclusive(|b| *b == b'\n')
                .try_for_each(|line| file.write_all(line).and_then(|()| file.sync_data()))
        } else {
            file.write_all(&bytes).and_then(|()| file.sync_data())
        };
        if let Err(e) = written {
            let _ = file.set_len(durable_len);
            // Reopen on the next batch: the handle may be unusable.
            self.file = None;
            return Err(io_error(&path, &e));
        }
        self.durable_len += bytes.len() as u64;
        self.pending.clear();
        self.head = head;
        self.since_checkpoint = since_checkpoint;
        if self.config.stdout {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&bytes).and_then(|()| out.flush());
        }
        Ok(heads)
    }

    fn file_for_write(&mut self, now: SystemTime) -> Result<(), TrailError> {
        if self.file.is_none() {
            let newest = self.newest_file()?;
            match newest {
                Some(path) if self.durable_len > 0 || self.head.is_some() => {
                    let file = OpenOptions::new()
                        .append(true)
                        .open(&path)
                        .map_err(|e| io_error(&path, &e))?;
                    // Cut anything a failed write left behind.
                    file.set_len(self.durable_len)
                        .map_err(|e| io_error(&path, &e))?;
                    self.file = Some((path, file));
                }
                _ => self.new_file(now)?,
            }
        }
        Ok(())
    }

    fn new_file(&mut self, now: SystemTime) -> Result<(), TrailError> {
        let stamp = humantime::format_rfc3339_seconds(now)
            .to_string()
            .replace(['-', ':'], "");
        let mut path = self.dir.join(format!(
            "{}-{}-{stamp}.jsonl",
            self.stem, self.config.replica
        ));
        // Two rotations within one second: keep names unique and ordered.
        let mut n = 1;
        while path.exists() {
            path = self.dir.join(format!(
                "{}-{}-{stamp}.{n}.jsonl",
                self.stem, self.config.replica
            ));
            n += 1;
        }
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&path, &e))?;
        // Make the new directory entry durable too.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.file = Some((path, file));
        self.durable_len = 0;
        self.file_day = day_of(now);
        Ok(())
    }

    fn rotate_if_due(&mut self, now: SystemTime) -> Result<(), TrailError> {
        let Some((path, _)) = &self.file else {
            return Ok(());
        };
        let by_size = self.durable_len >= self.config.rotate_bytes && self.durable_len > 0;
        let by_day =
            self.config.rotate_daily && day_of(now) != self.file_day && self.durable_len > 0;
        if by_size || by_day {
            tracing::info!(file = %path.display(), by_size, by_day, "trail: rotating");
            self.new_file(now)?;
        }
        Ok(())
    }

    /// Checks whether the trail is writable again after a failure.
    fn probe(&mut self) -> Result<(), TrailError> {
        self.file_for_write(SystemTime::now())?;
        match &self.file {
            Some((path, file)) => file.sync_data().map_err(|e| io_error(path, &e)),
            None => Err(TrailError::Stopped),
        }
    }
}

/// The UTC day a file was started, from its name's timestamp.
fn file_start_day(path: &Path) -> Option<u64> {
    let name = path.file_stem()?.to_str()?;
    let stamp = name.rsplit('-').next()?.split('.').next()?;
    // 20261122T194501Z → 2026-11-22T19:45:01Z
    if stamp.len() != 16 {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    humantime::parse_rfc3339(&text).ok().map(day_of)
}
