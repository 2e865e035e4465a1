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

use super::chain::{self, Head, GENESIS};
use super::naming::{self, TrailName};
use super::record;

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

/// Clears the health flag when dropped.
struct MarkUnhealthyOnDrop(Arc<AtomicBool>);

impl Drop for MarkUnhealthyOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

struct State {
    config: WriterConfig,
    dir: PathBuf,
    stem: String,
    /// The file being written; stays set after a failure so that the writer
    /// retries the same file.
    current: Option<PathBuf>,
    /// Its open handle; dropped after a failed write.
    file: Option<File>,
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
        create_dir(&dir, config.dir_mode()).map_err(|e| io_error(&dir, &e))?;
        let mut state = Self {
            config,
            dir,
            stem,
            current: None,
            file: None,
            durable_len: 0,
            file_day: 0,
            head: None,
            since_checkpoint: 0,
            signer,
            pending: Vec::new(),
        };
        let files = state.files()?;
        if let Some(newest) = files.last() {
            state.continue_file(newest)?;
            // A crash right after a rotation leaves the newest file empty:
            // the chain's head is in the file before it.
            for older in files.iter().rev().skip(1) {
                if state.head.is_some() {
                    break;
                }
                let mut file = File::open(older).map_err(|e| io_error(older, &e))?;
                let len = file.metadata().map_err(|e| io_error(older, &e))?.len();
                let (head, _) = read_head(&mut file, len, older)?;
                state.head = head;
            }
        }
        Ok(state)
    }

    /// This replica's files, oldest first.
    fn files(&self) -> Result<Vec<PathBuf>, TrailError> {
        let prefix = naming::writer_prefix(&self.stem, &self.config.replica);
        super::files::of_writer(&self.dir, &prefix).map_err(|e| io_error(&self.dir, &e))
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
        let (head, torn) = read_head(&mut file, len, path)?;
        if torn > 0 {
            let keep = len - torn;
            file.set_len(keep)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error(path, &e))?;
            let mut recovered = Map::new();
            recovered.insert("kind".into(), record::kind::RECOVERED.into());
            recovered.insert("dropped_bytes".into(), torn.into());
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
        self.head = head;
        self.durable_len = len - torn;
        self.file_day = TrailName::of(path)
            .and_then(|name| name.start_day())
            .unwrap_or_else(|| day_of(SystemTime::now()));
        self.current = Some(path.to_owned());
        self.file = Some(file);
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
            let line = chain::seal(&mut record, seq, &prev);
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
        let (Some(path), Some(file)) = (self.current.clone(), self.file.as_mut()) else {
            return Err(TrailError::Stopped);
        };
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

    /// Makes sure a file is open for appending: the current one (reopened
    /// after a failure, cut back to its durable length) or a new one.
    fn file_for_write(&mut self, now: SystemTime) -> Result<(), TrailError> {
        if self.file.is_some() {
            return Ok(());
        }
        let Some(path) = self.current.clone() else {
            return self.new_file(now);
        };
        // Recreated with the trail's mode if someone removed it.
        let file = create_options(self.config.file_mode())
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&path, &e))?;
        let len = file.metadata().map_err(|e| io_error(&path, &e))?.len();
        if len < self.durable_len {
            // Someone removed or cut the file: never pad it, start anew (the
            // chain continues; `audit verify` will show what is missing).
            tracing::error!(file = %path.display(), "trail: the current file shrank; starting a new one");
            return self.new_file(now);
        }
        if len > self.durable_len {
            // Cut what a failed write left behind.
            file.set_len(self.durable_len)
                .map_err(|e| io_error(&path, &e))?;
        }
        self.file = Some(file);
        Ok(())
    }

    fn new_file(&mut self, mut now: SystemTime) -> Result<(), TrailError> {
        // Names are unique to the millisecond: two rotations in one, wait.
        let path = loop {
            let path = self
                .dir
                .join(naming::file_name(&self.stem, &self.config.replica, now));
            if !path.exists() {
                break path;
            }
            std::thread::sleep(Duration::from_millis(1));
            now = SystemTime::now();
        };
        let file = create_options(self.config.file_mode())
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&path, &e))?;
        set_mode(&file, self.config.file_mode()).map_err(|e| io_error(&path, &e))?;
        // Make the new directory entry durable too.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.current = Some(path);
        self.file = Some(file);
        self.durable_len = 0;
        self.file_day = day_of(now);
        Ok(())
    }

    fn rotate_if_due(&mut self, now: SystemTime) -> Result<(), TrailError> {
        let Some(path) = &self.current else {
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

    /// Checks whether the trail is writable again after a failure: writes
    /// and syncs one byte past the durable end, then cuts it off again.
    fn probe(&mut self) -> Result<(), TrailError> {
        self.file_for_write(SystemTime::now())?;
        let (Some(path), Some(file)) = (&self.current, self.file.as_mut()) else {
            return Err(TrailError::Stopped);
        };
        let probed = file
            .write_all(b"\n")
            .and_then(|()| file.sync_data())
            .and_then(|()| file.set_len(self.durable_len))
            .and_then(|()| file.sync_data());
        if let Err(e) = probed {
            let _ = file.set_len(self.durable_len);
            self.file = None;
            return Err(io_error(path, &e));
        }
        Ok(())
    }
}

/// The chain head in a trail file (its last complete record), and how many
/// bytes after the last newline belong to a torn, incomplete record.
fn read_head(file: &mut File, len: u64, path: &Path) -> Result<(Option<Head>, u64), TrailError> {
    // Records are far shorter than this; read enough to hold the last one.
    let window = len.min(1 << 20);
    let mut tail = vec![0; usize::try_from(window).unwrap_or(0)];
    file.seek(SeekFrom::Start(len - window))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(|e| io_error(path, &e))?;
    let complete = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let torn = (tail.len() - complete) as u64;
    let lines = &tail[..complete];
    let Some(last) = lines[..lines.len().saturating_sub(1)]
        .rsplit(|b| *b == b'\n')
        .next()
        .filter(|l| !l.is_empty())
    else {
        return Ok((None, torn));
    };
    let unreadable = |message: String| TrailError::Unreadable {
        path: path.to_owned(),
        message,
    };
    let parsed: Map<String, Value> =
        serde_json::from_slice(last).map_err(|e| unreadable(e.to_string()))?;
    let seq = parsed.get("seq").and_then(Value::as_u64);
    let hash = parsed.get("hash").and_then(Value::as_str);
    let (Some(seq), Some(hash)) = (seq, hash) else {
        return Err(unreadable("no seq or hash".into()));
    };
    Ok((
        Some(Head {
            seq,
            hash: hash.to_owned(),
        }),
        torn,
    ))
}

/// Options that create a file with `mode` (before the umask), so a trail
/// file is never readable by others, not even for a moment.
fn create_options(mode: u32) -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options
}

/// Sets a new file's mode exactly: a umask may have taken away the group
/// bit that `group_read` asks for.
fn set_mode(file: &File, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

/// Creates the trail directory (and missing parents) with `mode`; an
/// existing directory keeps the mode its owner gave it.
fn create_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(mode);
        builder.create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        builder.create(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::chain::verify_line;

    fn config(dir: &Path) -> WriterConfig {
        WriterConfig {
            path: dir.join("decisions.jsonl"),
            replica: "t1".into(),
            rotate_bytes: 1 << 20,
            rotate_daily: true,
            stdout: false,
            commit: CommitMode::Group,
            checkpoint_every: 0,
            group_read: false,
        }
    }

    fn record(n: usize) -> Map<String, Value> {
        let mut r = Map::new();
        r.insert("kind".into(), "decision".into());
        r.insert("request_id".into(), format!("r{n}").into());
        r
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut f: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        f.sort();
        f
    }

    /// Verifies the whole chain across files; returns the records.
    fn verify(dir: &Path) -> Vec<Map<String, Value>> {
        let mut head = None;
        let mut records = Vec::new();
        for file in files(dir) {
            for line in std::fs::read_to_string(&file).unwrap().lines() {
                let (record, h) = verify_line(line, head.as_ref())
                    .unwrap_or_else(|e| panic!("{}: {e}: {line}", file.display()));
                head = Some(h);
                records.push(record);
            }
        }
        records
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn concurrent_appends_are_durable_chained_and_continue_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        rt.block_on(async {
            let trail = Trail::start(config(dir.path()), None).unwrap();
            let appends: Vec<_> = (0..200)
                .map(|n| {
                    let trail = trail.clone();
                    tokio::spawn(async move { trail.append(record(n)).await })
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
        rt.block_on(async {
            let trail = Trail::start(config(dir.path()), None).unwrap();
            assert_eq!(trail.append(record(999)).await.unwrap().seq, 201);
        });
        let records = verify(dir.path());
        assert_eq!(records.len(), 201);
        assert_eq!(records[0]["replica"], "t1");
    }

    #[test]
    fn an_empty_newest_file_continues_the_chain_of_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        rt.block_on(async {
            let trail = Trail::start(config(dir.path()), None).unwrap();
            trail.append(record(1)).await.unwrap();
        });
        // A crash right after rotation created the next file.
        std::fs::write(
            dir.path().join("decisions-t1-29990101T000000.000Z.jsonl"),
            "",
        )
        .unwrap();
        rt.block_on(async {
            let trail = Trail::start(config(dir.path()), None).unwrap();
            assert_eq!(trail.append(record(2)).await.unwrap().seq, 2);
        });
        assert_eq!(verify(dir.path()).len(), 2);
    }

    #[test]
    fn a_torn_last_line_is_cut_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        rt.block_on(async {
            let trail = Trail::start(config(dir.path()), None).unwrap();
            for n in 0..3 {
                trail.append(record(n)).await.unwrap();
            }
        });
        let file = files(dir.path()).pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        let torn = br#"{"kind":"decision","seq":4,"pr"#;
        f.write_all(torn).unwrap();
        drop(f);
        rt.block_on(async {
            let trail = Trail::start(config(dir.path()), None).unwrap();
            let head = trail.append(record(4)).await.unwrap();
            assert_eq!(head.seq, 5, "the recovered record took seq 4");
        });
        let records = verify(dir.path());
        assert_eq!(records[3]["kind"], "recovered");
        assert_eq!(records[3]["dropped_bytes"], torn_len());
        assert_eq!(records[4]["request_id"], "r4");
    }

    fn torn_len() -> usize {
        br#"{"kind":"decision","seq":4,"pr"#.len()
    }

    #[test]
    fn file_names_give_the_start_day() {
        let day = TrailName::of(Path::new("a/decisions-gw-20261122T194501.123Z.jsonl"))
            .and_then(|name| name.start_day());
        assert_eq!(
            day,
            Some(day_of(
                humantime::parse_rfc3339("2026-11-22T12:00:00Z").unwrap()
            ))
        );
    }

    #[test]
    fn rotation_by_size_keeps_one_chain_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.rotate_bytes = 4096;
        let rt = rt();
        rt.block_on(async {
            let trail = Trail::start(cfg, None).unwrap();
            for n in 0..100 {
                trail.append(record(n)).await.unwrap();
            }
        });
        let names = files(dir.path());
        assert!(names.len() >= 3, "{names:?}");
        for name in &names {
            let name = name.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with("decisions-t1-") && name.ends_with(".jsonl"),
                "{name}"
            );
        }
        assert_eq!(verify(dir.path()).len(), 100);
    }

    #[cfg(unix)]
    #[test]
    fn trail_files_and_the_directory_the_writer_creates_are_not_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        for (group_read, file_mode, dir_mode) in [(false, 0o600, 0o700), (true, 0o640, 0o750)] {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("audit");
            let mut cfg = config(&dir);
            cfg.rotate_bytes = 1;
            cfg.group_read = group_read;
            let mut state = State::open(cfg, None).unwrap();
            for n in 0..3 {
                state.commit(vec![record(n)]).unwrap();
            }
            // The current file removed under the writer: recreated.
            let current = state.current.clone().unwrap();
            std::fs::remove_file(&current).unwrap();
            state.file = None;
            state.file_for_write(SystemTime::now()).unwrap();
            let names = files(&dir);
            assert!(names.len() >= 3, "rotated: {names:?}");
            for file in &names {
                assert_eq!(mode(file), file_mode, "{}", file.display());
            }
            assert_eq!(mode(&dir), dir_mode);
        }
        // A directory that exists keeps the mode its owner gave it.
        let existing = tempfile::tempdir().unwrap();
        std::fs::set_permissions(existing.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut state = State::open(config(existing.path()), None).unwrap();
        state.commit(vec![record(1)]).unwrap();
        assert_eq!(mode(existing.path()), 0o755);
        assert_eq!(mode(&files(existing.path())[0]), 0o600);
    }

    #[test]
    fn a_new_utc_day_starts_a_new_file_and_the_chain_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(config(dir.path()), None).unwrap();
        state.commit(vec![record(1)]).unwrap();
        // The current file was started yesterday.
        state.file_day -= 1;
        state.commit(vec![record(2)]).unwrap();
        assert_eq!(files(dir.path()).len(), 2);
        assert_eq!(verify(dir.path()).len(), 2);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failing_disk_refuses_appends_then_recovers_without_restart() {
        let dir = tempfile::tempdir().unwrap();
        // The newest trail file is /dev/full: every write fails with ENOSPC.
        let full = dir.path().join("decisions-t1-20260101T000000Z.jsonl");
        std::os::unix::fs::symlink("/dev/full", &full).unwrap();
        let rt = rt();
        rt.block_on(async {
            let trail = Trail::start(config(dir.path()), None).unwrap();
            assert!(trail.append(record(1)).await.is_err());
            assert!(!trail.healthy());
            assert!(trail.append(record(2)).await.is_err(), "still failing");
            // The disk "recovers": the probe finds out without any append.
            std::fs::remove_file(&full).unwrap();
            for _ in 0..50 {
                if trail.healthy() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(trail.healthy());
            assert_eq!(trail.append(record(3)).await.unwrap().seq, 1);
        });
        let records = verify(dir.path());
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["request_id"], "r3");
    }
}
