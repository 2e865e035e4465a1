//! Trails for the trail's unit tests: records like the writer's, sealed
//! into real chains and written as files, the edits a tamperer makes, and
//! a writer's settings and runtime.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::chain::{seal, verify_line, GENESIS};
use super::verify::{verify_files, VerifyFailure, VerifyOptions};
use super::writer::{CommitMode, Trail, WriterConfig};

/// Names of one writer before millisecond stamps, oldest first: a `.N` file
/// after the unnumbered one of its second, `.10` after `.2`.
pub(super) const LEGACY_NAMES_OLDEST_FIRST: [&str; 5] = [
    "decisions-a-20261121T235959Z.jsonl",
    "decisions-a-20261122T100000Z.jsonl",
    "decisions-a-20261122T100000Z.1.jsonl",
    "decisions-a-20261122T100000Z.2.jsonl",
    "decisions-a-20261122T100000Z.10.jsonl",
];

/// A record of `kind` with the writer's fields, for seq `n`.
pub(super) fn sample(n: u64) -> Map<String, Value> {
    let time = format!("2026-11-{:02}T10:00:{:02}.000Z", 20 + n / 60, n % 60);
    let request_id = format!("r-{}", n.div_ceil(2));
    let value = if n % 2 == 1 {
        json!({
            "kind": "decision", "time": time, "replica": "a",
            "request_id": request_id, "vendor": "kore",
            "action": "Kore::Action::\"eraseUsersData\"",
            "decision": if n.is_multiple_of(3) { "deny" } else { "allow" },
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
pub(super) fn write_trail(
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
pub(super) fn tamper_trail(dir: &Path) -> Vec<PathBuf> {
    write_trail(dir, (1..=20).map(sample).collect(), &[12])
}

/// The tamper trail in a new directory (keep it while the paths are used),
/// with the lines of file `file` (0 or 1) edited.
pub(super) fn tampered(
    file: usize,
    edit: impl FnOnce(&mut Vec<String>),
) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = tamper_trail(dir.path());
    let mut text = lines(&paths[file]);
    edit(&mut text);
    rewrite(&paths[file], &text);
    (dir, paths)
}

/// The lines of a trail file, without their newlines.
pub(super) fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Writes `lines` back as the file, each ending in a newline.
pub(super) fn rewrite(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// How `paths` fails to verify with the default options.
pub(super) fn fail(paths: &[PathBuf]) -> VerifyFailure {
    verify_files(paths, &VerifyOptions::default()).unwrap_err()
}

/// The writer's settings for a trail in `dir`, rotating at 1 MiB and daily.
pub(super) fn writer_config(dir: &Path) -> WriterConfig {
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

/// A record as the pipeline hands it to the writer, before sealing.
pub(super) fn unsealed(n: usize) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("kind".into(), "decision".into());
    r.insert("request_id".into(), format!("r{n}").into());
    r
}

/// Every file in `dir`, by name.
pub(super) fn dir_files(dir: &Path) -> Vec<PathBuf> {
    let mut f: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    f.sort();
    f
}

/// Verifies the whole chain across the files in `dir`; returns the records.
pub(super) fn read_chain(dir: &Path) -> Vec<Map<String, Value>> {
    let mut head = None;
    let mut records = Vec::new();
    for file in dir_files(dir) {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let (record, h) = verify_line(line, head.as_ref())
                .unwrap_or_else(|e| panic!("{}: {e}: {line}", file.display()));
            head = Some(h);
            records.push(record);
        }
    }
    records
}

/// A runtime for the writer's async appends.
pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts a writer with `config`, appends `records` one after another and
/// stops it; returns each record's seq.
pub(super) fn append_all(
    config: WriterConfig,
    records: impl IntoIterator<Item = Map<String, Value>>,
) -> Vec<u64> {
    runtime().block_on(async {
        let trail = Trail::start(config, None).unwrap();
        let mut seqs = Vec::new();
        for record in records {
            seqs.push(trail.append(record).await.unwrap().seq);
        }
        seqs
    })
}
