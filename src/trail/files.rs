//! A trail's files: finding them oldest first and reading them one line at a
//! time, so that neither `audit verify` nor `audit query` holds a file (or an
//! oversized line) in memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::naming::{self, TrailName};

/// The longest line read as a record; the writer's records are a few KiB.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// A path could not be listed or opened.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct FilesError {
    /// The file or directory.
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
}

/// Expands `paths` into trail files: a directory becomes its `*.jsonl` files
/// oldest first ([`naming::chronological`]); a file stays where it is given,
/// so pass files oldest first (a shell glob of the writer's names does that).
///
/// # Errors
/// A directory cannot be listed.
pub fn trail_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FilesError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| FilesError {
                path: path.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.is_file() && naming::has_trail_extension(p))
                .collect();
            found.sort_by(|a, b| naming::chronological(a, b));
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// One line of a trail file.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line that ended with `\n` (the newline is not included).
    Complete(Vec<u8>),
    /// The file's last bytes, with no newline after them.
    Unterminated(Vec<u8>),
    /// A line longer than [`MAX_LINE_BYTES`]; it was skipped.
    TooLong,
}

/// Calls `each` with every line of the trail in `paths` (files in the
/// given order, a directory as its `*.jsonl` oldest first) that has content
/// (`None` for an empty or too-long line, which is not a record), stopping
/// at the first error it returns.
///
/// # Errors
/// A file cannot be read, or `each` failed.
pub fn for_each_line<E: From<FilesError>>(
    paths: &[PathBuf],
    mut each: impl FnMut(&Path, Option<&[u8]>) -> Result<(), E>,
) -> Result<(), E> {
    for path in trail_files(paths)? {
        let mut reader = LineReader::open(&path)?;
        loop {
            let line = reader.next_line().map_err(|source| FilesError {
                path: path.clone(),
                source,
            })?;
            match line {
                None => break,
                Some(Line::Complete(bytes) | Line::Unterminated(bytes)) if !bytes.is_empty() => {
                    each(&path, Some(&bytes))?;
                }
                Some(_) => each(&path, None)?,
            }
        }
    }
    Ok(())
}

/// One writer's files in `dir` (names the writer made with this
/// [`naming::writer_prefix`]), oldest first.
///
/// # Errors
/// The directory cannot be read.
pub fn of_writer(dir: &Path, prefix: &str) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| TrailName::of(p).is_some_and(|n| n.prefix == prefix))
        .collect();
    files.sort_by(|a, b| naming::chronological(a, b));
    Ok(files)
}

/// Reads a file line by line, counting lines from 1 and the bytes read.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    line_no: u64,
    position: u64,
}

impl LineReader<BufReader<File>> {
    /// Opens a trail file.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, FilesError> {
        let file = File::open(path).map_err(|source| FilesError {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::new(BufReader::with_capacity(64 * 1024, file)))
    }
}

impl<R: BufRead> LineReader<R> {
    /// Reads from `inner`.
    pub fn new(inner: R) -> Self {
        Self::resume(inner, 0, 0)
    }

    /// Reads from `inner`, which stands `position` bytes into its file,
    /// after line `line_no` (a reader following a growing file).
    pub fn resume(inner: R, line_no: u64, position: u64) -> Self {
        Self {
            inner,
            line_no,
            position,
        }
    }

    /// The number of the line last returned (1-based; 0 before the first).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// The byte offset in the file after the line last returned.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next line, or `None` at the end of the file.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut buf = Vec::new();
        let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX);
        let read = Read::take(&mut self.inner, limit + 1).read_until(b'\n', &mut buf)?;
        if read == 0 {
            return Ok(None);
        }
        self.position += read as u64;
        self.line_no += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            return Ok(Some(Line::Complete(buf)));
        }
        if buf.len() > MAX_LINE_BYTES {
            self.skip_rest_of_line()?;
            return Ok(Some(Line::TooLong));
        }
        Ok(Some(Line::Unterminated(buf)))
    }

    fn skip_rest_of_line(&mut self) -> io::Result<()> {
        loop {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                return Ok(());
            }
            if let Some(at) = available.iter().position(|b| *b == b'\n') {
                self.inner.consume(at + 1);
                self.position += at as u64 + 1;
                return Ok(());
            }
            let len = available.len();
            self.inner.consume(len);
            self.position += len as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::fixtures::LEGACY_NAMES_OLDEST_FIRST;

    #[test]
    fn directories_expand_to_their_jsonl_files_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        for name in LEGACY_NAMES_OLDEST_FIRST.iter().rev().chain(&["notes.txt"]) {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let files = trail_files(&[dir.path().to_owned()]).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, LEGACY_NAMES_OLDEST_FIRST);
        let given = [PathBuf::from("b.jsonl"), PathBuf::from("a.jsonl")];
        assert_eq!(trail_files(&given).unwrap(), given);
    }

    #[test]
    fn one_writers_files_are_found_by_their_parsed_prefix_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "decisions-a-20261122T100001.000Z.jsonl",
            "decisions-a-20261122T100000.500Z.jsonl",
            // Another writer whose stem starts like this one's prefix.
            "decisions-a-b-20261122T100000.000Z.jsonl",
            "decisions-ab-20261122T100000.000Z.jsonl",
            "decisions-a-notes.jsonl",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = of_writer(dir.path(), "decisions-a-")
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "decisions-a-20261122T100000.500Z.jsonl",
                "decisions-a-20261122T100001.000Z.jsonl",
            ]
        );
    }

    #[test]
    fn lines_are_complete_unterminated_or_too_long() {
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let mut text = b"one\n\n".to_vec();
        text.extend_from_slice(&long);
        text.extend_from_slice(b"\nthree\nfour");
        let mut reader = LineReader::new(io::Cursor::new(text));
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::Complete(b"one".to_vec()))
        );
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::Complete(Vec::new()))
        );
        assert_eq!(reader.next_line().unwrap(), Some(Line::TooLong));
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::Complete(b"three".to_vec()))
        );
        assert_eq!(reader.line_no(), 4);
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::Unterminated(b"four".to_vec()))
        );
        assert_eq!(reader.next_line().unwrap(), None);
    }
}
