//! The writer's files: at start, continuing the newest one (a torn last
//! record is cut off); then appending durably, rotating by size and UTC day,
//! reopening the current file after a failed write, and creating every file
//! and the directory with the trail's mode. The chain itself is sealed by
//! [`super::writer`]; here are only bytes and files.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::chain::Head;
use super::naming::{self, TrailName};
use super::writer::{TrailError, WriterConfig};

/// One writer's trail files, and the one it appends to.
pub(super) struct TrailFiles {
    dir: PathBuf,
    stem: String,
    replica: String,
    file_mode: u32,
    rotate_bytes: u64,
    rotate_daily: bool,
    /// The file being written; stays set after a failure so that the writer
    /// retries the same file.
    current: Option<PathBuf>,
    /// Its open handle; dropped after a failed write.
    file: Option<File>,
    /// Bytes of the current file known to be durable.
    durable_len: u64,
    file_day: u64,
}

/// What the files held when the writer started.
#[derive(Debug, Default)]
pub(super) struct Continued {
    /// The chain's head: the last record of the newest file that has one.
    pub(super) head: Option<Head>,
    /// A torn last record cut off the newest file: the file's name and the
    /// bytes dropped.
    pub(super) torn: Option<(String, u64)>,
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

impl TrailFiles {
    /// Finds the writer's files (creating the directory), continues the
    /// newest and finds the chain's head.
    ///
    /// # Errors
    /// The directory cannot be created or listed, the newest file cannot be
    /// read or cut, or a last record is unreadable.
    pub(super) fn open(config: &WriterConfig) -> Result<(Self, Continued), TrailError> {
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
        let mut files = Self {
            dir,
            stem,
            replica: config.replica.clone(),
            file_mode: config.file_mode(),
            rotate_bytes: config.rotate_bytes,
            rotate_daily: config.rotate_daily,
            current: None,
            file: None,
            durable_len: 0,
            file_day: 0,
        };
        let mut continued = Continued::default();
        let existing = files.of_writer()?;
        if let Some(newest) = existing.last() {
            continued = files.continue_file(newest)?;
            // A crash right after a rotation leaves the newest file empty:
            // the chain's head is in the file before it.
            for older in existing.iter().rev().skip(1) {
                if continued.head.is_some() {
                    break;
                }
                let mut file = File::open(older).map_err(|e| io_error(older, &e))?;
                let len = file.metadata().map_err(|e| io_error(older, &e))?.len();
                let (head, _) = read_head(&mut file, len, older)?;
                continued.head = head;
            }
        }
        Ok((files, continued))
    }

    /// This replica's files, oldest first.
    fn of_writer(&self) -> Result<Vec<PathBuf>, TrailError> {
        let prefix = naming::writer_prefix(&self.stem, &self.replica);
        super::files::of_writer(&self.dir, &prefix).map_err(|e| io_error(&self.dir, &e))
    }

    /// Reads the newest file's tail, cuts a torn last line, and makes it the
    /// current file; the chain continues from its last record.
    fn continue_file(&mut self, path: &Path) -> Result<Continued, TrailError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error(path, &e))?;
        let len = file.metadata().map_err(|e| io_error(path, &e))?.len();
        let (head, torn) = read_head(&mut file, len, path)?;
        let mut continued = Continued { head, torn: None };
        if torn > 0 {
            let keep = len - torn;
            file.set_len(keep)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error(path, &e))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            continued.torn = Some((name, torn));
            tracing::warn!(file = %path.display(), dropped_bytes = torn, "trail: cut a torn last record");
        }
        self.durable_len = len - torn;
        self.file_day = TrailName::of(path)
            .and_then(|name| name.start_day())
            .unwrap_or_else(|| day_of(SystemTime::now()));
        self.current = Some(path.to_owned());
        self.file = Some(file);
        Ok(continued)
    }

    /// Appends `bytes` (whole lines) to the current file and syncs them; in
    /// `each_line` mode, one write and one sync per line. On failure the
    /// file is cut back to its durable length and reopened next time.
    ///
    /// # Errors
    /// No file can be opened, or the write or sync fails.
    pub(super) fn append(
        &mut self,
        bytes: &[u8],
        now: SystemTime,
        each_line: bool,
    ) -> Result<(), TrailError> {
        self.file_for_write(now)?;
        let durable_len = self.durable_len;
        let (Some(path), Some(file)) = (self.current.clone(), self.file.as_mut()) else {
            return Err(TrailError::Stopped);
        };
        let written = if each_line {
            bytes
                .split_inclusive(|b| *b == b'\n')
                .try_for_each(|line| file.write_all(line).and_then(|()| file.sync_data()))
        } else {
            file.write_all(bytes).and_then(|()| file.sync_data())
        };
        if let Err(e) = written {
            let _ = file.set_len(durable_len);
            // Reopen on the next batch: the handle may be unusable.
            self.file = None;
            return Err(io_error(&path, &e));
        }
        self.durable_len += bytes.len() as u64;
        Ok(())
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
        let file = create_options(self.file_mode)
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
                .join(naming::file_name(&self.stem, &self.replica, now));
            if !path.exists() {
                break path;
            }
            std::thread::sleep(Duration::from_millis(1));
            now = SystemTime::now();
        };
        let file = create_options(self.file_mode)
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&path, &e))?;
        set_mode(&file, self.file_mode).map_err(|e| io_error(&path, &e))?;
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

    pub(super) fn rotate_if_due(&mut self, now: SystemTime) -> Result<(), TrailError> {
        let Some(path) = &self.current else {
            return Ok(());
        };
        let by_size = self.durable_len >= self.rotate_bytes && self.durable_len > 0;
        let by_day = self.rotate_daily && day_of(now) != self.file_day && self.durable_len > 0;
        if by_size || by_day {
            tracing::info!(file = %path.display(), by_size, by_day, "trail: rotating");
            self.new_file(now)?;
        }
        Ok(())
    }

    /// Checks whether the trail is writable again after a failure: writes
    /// and syncs one byte past the durable end, then cuts it off again.
    pub(super) fn probe(&mut self) -> Result<(), TrailError> {
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
    // Enough to hold the last record: the writer refuses any longer than
    // half of this.
    let window = len.min(2 * super::writer::MAX_RECORD_BYTES as u64);
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
    use crate::trail::fixtures::{append_all, dir_files, read_chain, unsealed, writer_config};

    #[test]
    fn an_empty_newest_file_continues_the_chain_of_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        append_all(writer_config(dir.path()), [unsealed(1)]);
        // A crash right after rotation created the next file.
        std::fs::write(
            dir.path().join("decisions-t1-29990101T000000.000Z.jsonl"),
            "",
        )
        .unwrap();
        assert_eq!(append_all(writer_config(dir.path()), [unsealed(2)]), [2]);
        assert_eq!(read_chain(dir.path()).len(), 2);
    }

    #[test]
    fn a_torn_last_line_is_cut_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        append_all(writer_config(dir.path()), (0..3).map(unsealed));
        let file = dir_files(dir.path()).pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        let torn = br#"{"kind":"decision","seq":4,"pr"#;
        f.write_all(torn).unwrap();
        drop(f);
        let seqs = append_all(writer_config(dir.path()), [unsealed(4)]);
        assert_eq!(seqs, [5], "the recovered record took seq 4");
        let records = read_chain(dir.path());
        assert_eq!(records[3]["kind"], "recovered");
        assert_eq!(records[3]["dropped_bytes"], torn.len());
        assert_eq!(records[4]["request_id"], "r4");
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
        let mut cfg = writer_config(dir.path());
        cfg.rotate_bytes = 4096;
        append_all(cfg, (0..100).map(unsealed));
        let names = dir_files(dir.path());
        assert!(names.len() >= 3, "{names:?}");
        for name in &names {
            let name = name.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with("decisions-t1-") && name.ends_with(".jsonl"),
                "{name}"
            );
        }
        assert_eq!(read_chain(dir.path()).len(), 100);
    }

    #[cfg(unix)]
    #[test]
    fn trail_files_and_the_directory_the_writer_creates_are_not_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        for (group_read, file_mode, dir_mode) in [(false, 0o600, 0o700), (true, 0o640, 0o750)] {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("audit");
            let mut cfg = writer_config(&dir);
            cfg.rotate_bytes = 1;
            cfg.group_read = group_read;
            let (mut files, _) = TrailFiles::open(&cfg).unwrap();
            for _ in 0..3 {
                append(&mut files, b"{}\n");
            }
            // The current file removed under the writer: recreated.
            let current = files.current.clone().unwrap();
            std::fs::remove_file(&current).unwrap();
            files.file = None;
            files.file_for_write(SystemTime::now()).unwrap();
            let names = dir_files(&dir);
            assert!(names.len() >= 3, "rotated: {names:?}");
            for file in &names {
                assert_eq!(mode(file), file_mode, "{}", file.display());
            }
            assert_eq!(mode(&dir), dir_mode);
        }
        // A directory that exists keeps the mode its owner gave it.
        let existing = tempfile::tempdir().unwrap();
        std::fs::set_permissions(existing.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (mut files, _) = TrailFiles::open(&writer_config(existing.path())).unwrap();
        append(&mut files, b"{}\n");
        assert_eq!(mode(existing.path()), 0o755);
        assert_eq!(mode(&dir_files(existing.path())[0]), 0o600);
    }

    #[test]
    fn a_new_utc_day_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut files, _) = TrailFiles::open(&writer_config(dir.path())).unwrap();
        append(&mut files, b"1\n");
        // The current file was started yesterday.
        files.file_day -= 1;
        append(&mut files, b"2\n");
        let texts: Vec<String> = dir_files(dir.path())
            .iter()
            .map(|file| std::fs::read_to_string(file).unwrap())
            .collect();
        assert_eq!(texts, ["1\n", "2\n"]);
    }

    /// Appends as the writer does: rotating first if due.
    fn append(files: &mut TrailFiles, line: &[u8]) {
        let now = SystemTime::now();
        files.rotate_if_due(now).unwrap();
        files.append(line, now, false).unwrap();
    }
}
