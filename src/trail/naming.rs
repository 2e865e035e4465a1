//! Trail file names, in one place: the writer makes them here, and the
//! readers (directory listings for `audit verify`/`query`/`policy replay`,
//! the writer's restart, `audit tail --follow`) recognise and order them
//! here, so a change of format cannot leave one of them behind.
//!
//! A name is `<stem>-<replica>-<stamp>.jsonl`, the stamp being the file's
//! start in UTC, `YYYYMMDDTHHMMSS.mmmZ` (fixed width: within one writer,
//! name order is time order). Writers before millisecond stamps wrote
//! `YYYYMMDDTHHMMSSZ` and, for a second file within one second, `….N.jsonl`;
//! such names are still recognised and ordered, never made.

use std::cmp::Ordering;
use std::path::Path;
use std::time::SystemTime;

/// The extension of every trail file.
pub const EXTENSION: &str = "jsonl";

/// The start of every file name of one writer: `<stem>-<replica>-`.
pub fn writer_prefix(stem: &str, replica: &str) -> String {
    format!("{stem}-{replica}-")
}

/// The name of the file a writer starts at `start`.
pub fn file_name(stem: &str, replica: &str, start: SystemTime) -> String {
    // `2026-11-22T19:45:01.123Z` → `20261122T194501.123Z`.
    let stamp = humantime::format_rfc3339_millis(start)
        .to_string()
        .replace(['-', ':'], "");
    format!("{}{stamp}.{EXTENSION}", writer_prefix(stem, replica))
}

/// A recognised trail file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrailName<'a> {
    /// `<stem>-<replica>-`: the same for every file of one writer.
    pub prefix: &'a str,
    /// The start time's digits, `YYYYMMDDTHHMMSS`.
    seconds: &'a str,
    /// Its milliseconds (0 in a legacy name).
    millis: u16,
    /// A legacy name's `.N` counter (0 when there is none).
    counter: u64,
}

impl<'a> TrailName<'a> {
    /// Recognises a file name (without directory) the writer made.
    pub fn parse(name: &'a str) -> Option<Self> {
        let stem = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
        let (stem, counter) = match stem.rsplit_once('.') {
            Some((base, n))
                if base.ends_with('Z')
                    && !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (base, n.parse().ok()?)
            }
            _ => (stem, 0),
        };
        let dash = stem.rfind('-')?;
        let (prefix, stamp) = (&stem[..=dash], &stem[dash + 1..]);
        // `<stem>-<replica>-`: both parts present.
        let (stem_part, replica) = prefix[..dash].rsplit_once('-')?;
        if stem_part.is_empty() || replica.is_empty() {
            return None;
        }
        let (seconds, millis) = parse_stamp(stamp)?;
        if millis.is_some() && counter != 0 {
            return None;
        }
        Some(Self {
            prefix,
            seconds,
            millis: millis.unwrap_or(0),
            counter,
        })
    }

    /// Recognises the file name of `path`.
    pub fn of(path: &'a Path) -> Option<Self> {
        Self::parse(path.file_name()?.to_str()?)
    }

    /// The UTC day the file was started, in days since 1970-01-01.
    pub fn start_day(&self) -> Option<u64> {
        let s = self.seconds;
        let text = format!("{}-{}-{}T00:00:00Z", &s[0..4], &s[4..6], &s[6..8]);
        let time = humantime::parse_rfc3339(&text).ok()?;
        time.duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs() / 86_400)
    }
}

/// `YYYYMMDDTHHMMSS.mmmZ` (milliseconds) or the legacy `YYYYMMDDTHHMMSSZ`.
fn parse_stamp(stamp: &str) -> Option<(&str, Option<u16>)> {
    let bytes = stamp.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    let seconds_ok = bytes.len() >= 16 && bytes[8] == b'T' && digits(0..8) && digits(9..15);
    match bytes.len() {
        16 if seconds_ok && bytes[15] == b'Z' => Some((&stamp[..15], None)),
        20 if seconds_ok && bytes[15] == b'.' && digits(16..19) && bytes[19] == b'Z' => {
            Some((&stamp[..15], stamp[16..19].parse().ok()))
        }
        _ => None,
    }
}

/// Whether `path` names a trail file by its extension (what a directory
/// listing includes; [`TrailName`] says whether the writer made it).
pub fn has_trail_extension(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == EXTENSION)
}

/// Orders trail files oldest first: one writer's files by their start time
/// (a legacy `.N` file after the unnumbered one, `.10` after `.2`), writers
/// by their prefix; names the writer did not make by name, as if each were
/// a writer of its own.
pub fn chronological(a: &Path, b: &Path) -> Ordering {
    sort_key(a).cmp(&sort_key(b))
}

fn sort_key(path: &Path) -> (String, String, u16, u64) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match TrailName::parse(&name) {
        Some(n) => (
            n.prefix.to_owned(),
            n.seconds.to_owned(),
            n.millis,
            n.counter,
        ),
        None => (name, String::new(), 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::fixtures::LEGACY_NAMES_OLDEST_FIRST;
    use std::time::Duration;

    #[test]
    fn the_writers_names_are_recognised_with_their_prefix_and_start_day() {
        let start = humantime::parse_rfc3339("2026-11-22T19:45:01.123Z").unwrap();
        let name = file_name("decisions", "gw_1", start);
        assert_eq!(name, "decisions-gw_1-20261122T194501.123Z.jsonl");
        let parsed = TrailName::parse(&name).unwrap();
        assert_eq!(parsed.prefix, writer_prefix("decisions", "gw_1"));
        let day = humantime::parse_rfc3339("2026-11-22T00:00:00Z").unwrap();
        assert_eq!(
            parsed.start_day(),
            Some(
                day.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    / 86_400
            )
        );
        // A stem with dashes; a replica with dots.
        let odd = file_name("my-trail", "gw.eu", start);
        assert_eq!(TrailName::parse(&odd).unwrap().prefix, "my-trail-gw.eu-");
        // Legacy names.
        let legacy = TrailName::parse("decisions-a-20261122T100000Z.12.jsonl").unwrap();
        assert_eq!((legacy.prefix, legacy.counter), ("decisions-a-", 12));
        for other in [
            "decisions.jsonl",
            "notes-a-20261122T100000Z.txt",
            "decisions-a-20261122T100000.12Z.jsonl",
            "decisions-a-20261122T100000.123Z.1.jsonl",
            "decisions-a-2026112XT100000Z.jsonl",
            "-20261122T100000Z.jsonl",
            "a-20261122T100000Z.jsonl",
            "big.jsonl",
        ] {
            assert_eq!(TrailName::parse(other), None, "{other}");
        }
    }

    #[test]
    fn names_order_oldest_first_across_formats_and_counters() {
        let start = humantime::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
        let mut names: Vec<String> = vec![
            file_name("decisions", "a", start + Duration::from_secs(1)),
            file_name("decisions", "a", start + Duration::from_millis(5)),
        ];
        names.extend(
            LEGACY_NAMES_OLDEST_FIRST
                .iter()
                .rev()
                .map(|n| n.to_string()),
        );
        names.sort_by(|a, b| chronological(Path::new(a), Path::new(b)));
        let mut expected = LEGACY_NAMES_OLDEST_FIRST.to_vec();
        expected.extend([
            "decisions-a-20261122T100000.005Z.jsonl",
            "decisions-a-20261122T100001.000Z.jsonl",
        ]);
        assert_eq!(names, expected);
    }
}
