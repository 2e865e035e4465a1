//! `audit tail`: the last lines of a trail file and, with follow, each new
//! complete line as the writer appends it — moving on to the writer's next
//! file when it rotates. Reads from the end; never the whole file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::files;
use super::naming::{self, TrailName};

/// How often a followed file is checked for new lines.
pub const POLL: Duration = Duration::from_millis(200);

const CHUNK: usize = 64 * 1024;

/// A trail file could not be read, or the output not written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct TailError {
    /// The file (or `-` for the output).
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
}

/// Writes the last `n` complete lines of `path` to `out`; with `follow`,
/// then writes each new complete line as it is appended, checking every
/// [`POLL`], until `stop()` returns true. When a newer file of the same
/// writer (same [`TrailName`] prefix, later in [`naming::chronological`]
/// order) appears, the rest of the current file is written and the newer one
/// followed from its start. A torn last line is never written. Control
/// characters other than tab are shown escaped.
///
/// # Errors
/// A file cannot be read, or `out` cannot be written.
pub fn tail(
    path: &Path,
    n: usize,
    follow: bool,
    mut out: impl Write,
    stop: impl Fn() -> bool,
) -> Result<(), TailError> {
    let mut current = path.to_owned();
    let mut file = open(&current)?;
    let end = complete_end(&mut file, &current)?;
    let start = start_of_last_lines(&mut file, &current, end, n)?;
    let mut pos = copy_lines(&mut file, &current, start, &mut out)?;
    flush(&mut out)?;
    if !follow {
        return Ok(());
    }
    while !stop() {
        pos = copy_lines(&mut file, &current, pos, &mut out)?;
        if let Some(next) = next_file(&current) {
            // Lines the writer added before rotating.
            copy_lines(&mut file, &current, pos, &mut out)?;
            file = open(&next)?;
            current = next;
            pos = copy_lines(&mut file, &current, 0, &mut out)?;
        }
        flush(&mut out)?;
        std::thread::sleep(POLL);
    }
    Ok(())
}

fn open(path: &Path) -> Result<File, TailError> {
    File::open(path).map_err(|source| TailError {
        path: path.to_owned(),
        source,
    })
}

fn flush(out: &mut impl Write) -> Result<(), TailError> {
    out.flush().map_err(|source| TailError {
        path: PathBuf::from("-"),
        source,
    })
}

/// The offset just past the file's last newline.
fn complete_end(file: &mut File, path: &Path) -> Result<u64, TailError> {
    let error = |source| TailError {
        path: path.to_owned(),
        source,
    };
    let len = file.metadata().map_err(error)?.len();
    let mut end = len;
    let mut buf = vec![0; CHUNK];
    while end > 0 {
        let size = end.min(CHUNK as u64);
        let chunk = read_at(file, end - size, &mut buf, size).map_err(error)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(end - size + i as u64 + 1);
        }
        end -= size;
    }
    Ok(0)
}

/// The offset where the last `n` lines before `end` (which follows a
/// newline) start.
fn start_of_last_lines(file: &mut File, path: &Path, end: u64, n: usize) -> Result<u64, TailError> {
    if n == 0 || end == 0 {
        return Ok(end);
    }
    let mut buf = vec![0; CHUNK];
    // The newline that ends the last line does not start a line.
    let mut scan_end = end - 1;
    let mut seen = 0;
    while scan_end > 0 {
        let size = scan_end.min(CHUNK as u64);
        let chunk = read_at(file, scan_end - size, &mut buf, size).map_err(|source| TailError {
            path: path.to_owned(),
            source,
        })?;
        for (i, byte) in chunk.iter().enumerate().rev() {
            if *byte == b'\n' {
                seen += 1;
                if seen == n {
                    return Ok(scan_end - size + i as u64 + 1);
                }
            }
        }
        scan_end -= size;
    }
    Ok(0)
}

fn read_at<'b>(file: &mut File, offset: u64, buf: &'b mut [u8], size: u64) -> io::Result<&'b [u8]> {
    let size = usize::try_from(size).unwrap_or(buf.len()).min(buf.len());
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut buf[..size])?;
    Ok(&buf[..size])
}

/// Writes the complete lines from `pos` to the end of the file and returns
/// the offset after the last one. A file cut shorter than `pos` (replaced or
/// truncated) is read again from its start.
fn copy_lines(
    file: &mut File,
    path: &Path,
    pos: u64,
    out: &mut impl Write,
) -> Result<u64, TailError> {
    let error = |source| TailError {
        path: path.to_owned(),
        source,
    };
    let len = file.metadata().map_err(error)?.len();
    let mut pos = if len < pos { 0 } else { pos };
    file.seek(SeekFrom::Start(pos)).map_err(error)?;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0; CHUNK];
    loop {
        let read = file.read(&mut buf).map_err(error)?;
        if read == 0 {
            return Ok(pos);
        }
        pending.extend_from_slice(&buf[..read]);
        if let Some(last) = pending.iter().rposition(|b| *b == b'\n') {
            for line in pending[..=last].split_inclusive(|b| *b == b'\n') {
                out.write_all(shown(line).as_bytes())
                    .map_err(|source| TailError {
                        path: PathBuf::from("-"),
                        source,
                    })?;
            }
            pos += last as u64 + 1;
            pending.drain(..=last);
        }
    }
}

/// The line as text with control characters (but the newline and tab)
/// escaped, so a tampered trail cannot drive the terminal.
fn shown(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The writer's next file after `current`, if one has appeared. A file the
/// writer did not name is followed alone.
fn next_file(current: &Path) -> Option<PathBuf> {
    let prefix = TrailName::of(current)?.prefix;
    let dir = current
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    files::of_writer(dir, prefix)
        .ok()?
        .into_iter()
        .find(|p| naming::chronological(p, current).is_gt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        fn wait_for(&self, wanted: &str) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.text().contains(wanted) {
                assert!(
                    Instant::now() < deadline,
                    "never saw {wanted:?} in {:?}",
                    self.text()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn last(path: &Path, n: usize) -> String {
        let mut out = Vec::new();
        tail(path, n, false, &mut out, || true).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_last_n_complete_lines_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions-a-20261122T100000Z.jsonl");
        let lines: String = (1..=5).map(|i| format!("{{\"seq\":{i}}}\n")).collect();
        std::fs::write(&path, format!("{lines}{{\"seq\":6,\"torn")).unwrap();
        assert_eq!(last(&path, 2), "{\"seq\":4}\n{\"seq\":5}\n");
        assert_eq!(last(&path, 5), lines);
        assert_eq!(last(&path, 50), lines);
        assert_eq!(last(&path, 0), "");
        std::fs::write(&path, "").unwrap();
        assert_eq!(last(&path, 3), "");
        std::fs::write(&path, "x\u{1b}[2Jy\n").unwrap();
        assert_eq!(last(&path, 1), "x\\u{1b}[2Jy\n");
    }

    #[test]
    fn the_last_lines_are_found_across_read_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let line = format!("{}\n", "x".repeat(1000));
        std::fs::write(&path, line.repeat(200)).unwrap();
        assert_eq!(last(&path, 150), line.repeat(150));
    }

    #[test]
    fn follow_picks_up_appended_lines_and_the_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("decisions-a-20261122T100000Z.jsonl");
        std::fs::write(&first, "{\"seq\":1}\n").unwrap();
        // Another replica's file must not be followed.
        std::fs::write(
            dir.path().join("decisions-b-20261122T110000Z.jsonl"),
            "{\"b\":1}\n",
        )
        .unwrap();
        let out = Shared::default();
        let stopped = Arc::new(AtomicBool::new(false));
        let follower = {
            let (out, stopped, first) = (out.clone(), stopped.clone(), first.clone());
            std::thread::spawn(move || {
                tail(&first, 10, true, out, || stopped.load(Ordering::SeqCst))
            })
        };
        out.wait_for("{\"seq\":1}\n");

        let append = |path: &Path, text: &str| {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .unwrap();
            file.write_all(text.as_bytes()).unwrap();
        };
        append(&first, "{\"seq\":2}\n{\"seq\":3,");
        out.wait_for("{\"seq\":2}\n");
        assert!(!out.text().contains("seq\":3"), "a torn line was written");
        append(&first, "\"x\":1}\n");
        out.wait_for("{\"seq\":3,\"x\":1}\n");

        // Rotation within the same second: the `.1` file comes next.
        let second = dir.path().join("decisions-a-20261122T100000Z.1.jsonl");
        append(&second, "{\"seq\":4}\n");
        out.wait_for("{\"seq\":4}\n");
        append(&second, "{\"seq\":5}\n");
        out.wait_for("{\"seq\":5}\n");

        stopped.store(true, Ordering::SeqCst);
        follower.join().unwrap().unwrap();
        assert_eq!(
            out.text(),
            "{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3,\"x\":1}\n{\"seq\":4}\n{\"seq\":5}\n"
        );
    }

    #[test]
    fn tail_follow_moves_on_to_the_files_the_writer_rotates_to() {
        use crate::trail::{CommitMode, Trail, WriterConfig};
        let dir = tempfile::tempdir().unwrap();
        let config = WriterConfig {
            path: dir.path().join("decisions.jsonl"),
            replica: "gw_1".into(),
            // Every batch starts a new file.
            rotate_bytes: 1,
            rotate_daily: true,
            stdout: false,
            commit: CommitMode::Group,
            checkpoint_every: 0,
            group_read: false,
        };
        // Another writer whose stem starts with this writer's prefix: never
        // followed.
        std::fs::write(
            dir.path()
                .join("decisions-gw_1-x-29990101T000000.000Z.jsonl"),
            "{\"other\":1}\n",
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let trail = Trail::start(config, None).unwrap();
        let record = |n: u64| {
            let mut r = serde_json::Map::new();
            r.insert("kind".into(), "decision".into());
            r.insert("request_id".into(), format!("r{n}").into());
            r
        };
        rt.block_on(trail.append(record(1))).unwrap();
        let first = files::of_writer(dir.path(), "decisions-gw_1-").unwrap();
        assert_eq!(first.len(), 1, "{first:?}");

        let out = Shared::default();
        let stopped = Arc::new(AtomicBool::new(false));
        let follower = {
            let (out, stopped, first) = (out.clone(), stopped.clone(), first[0].clone());
            std::thread::spawn(move || {
                tail(&first, 10, true, out, || stopped.load(Ordering::SeqCst))
            })
        };
        out.wait_for("\"seq\":1,");
        for n in 2..=4 {
            rt.block_on(trail.append(record(n))).unwrap();
            out.wait_for(&format!("\"seq\":{n},"));
        }
        stopped.store(true, Ordering::SeqCst);
        follower.join().unwrap().unwrap();

        let written = files::of_writer(dir.path(), "decisions-gw_1-").unwrap();
        assert_eq!(written.len(), 4, "one file per record: {written:?}");
        let seqs: Vec<u64> = out
            .text()
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4], "{}", out.text());
    }
}
