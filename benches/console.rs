//! The reviewers' console on a 1-million-record trail (500k decisions, each
//! with its outcome): how long the index takes to build on open, and each
//! page's answer time (the bound is 100 ms).
//!
//! `cargo bench --bench console` (CONSOLE_BENCH_RECORDS=N for another size)

// criterion_group! generates an undocumented public function.
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use erasure_gateway::console::pages::{route, Page};
use erasure_gateway::console::{Console, ConsoleSettings};
use erasure_gateway::trail::chain::{seal, GENESIS};
use serde_json::{json, Map, Value};

const VENDORS: [&str; 3] = ["seam", "kore", "botpenguin"];

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Writes `records` sealed records (a decision and its outcome in turn)
/// over a month of hours.
fn write_trail(dir: &std::path::Path, records: usize) {
    let file = std::fs::File::create(dir.join("decisions-bench-20261201T000000Z.jsonl")).unwrap();
    let mut out = std::io::BufWriter::new(file);
    let mut prev = GENESIS.to_owned();
    for n in 0..records {
        let i = n / 2;
        let vendor = VENDORS[i % 3];
        let decision = if i % 5 == 0 { "deny" } else { "allow" };
        let time = format!(
            "2026-12-{:02}T{:02}:{:02}:00.000Z",
            1 + (i / 20_000) % 28,
            (i / 1_000) % 24,
            i % 60
        );
        let mut record = if n % 2 == 0 {
            object(json!({
                "kind": "decision", "time": time, "replica": "bench", "decision_id": format!("d-{i}"),
                "request_id": format!("r-{i}"), "vendor": vendor, "upstream": vendor,
                "action": "Kore::Action::\"eraseUsersData\"",
                "principal": {"id": format!("caller-{}", i % 50), "roles": ["privacy-officer"], "source": "token"},
                "credential": {"kind": "bearer", "fingerprint": "0123456789ab"},
                "client": {"ip": "10.0.0.7", "cert": false},
                "targets": [{"type": "Kore::User", "id": format!("user-{i}@example.com"), "decision": decision,
                             "policies": [if decision == "deny" { format!("never-{}", i % 7) } else { "privacy-officers-may-erase".to_owned() }],
                             "errors": [], "id_form": "email_casefold"}],
                "decision": decision, "mode": "enforce",
                "effect": if decision == "deny" { "refused" } else { "forwarded" }, "reasons": [],
                "context": {"vendor": vendor, "target_count": 1, "client_ip": "10.0.0.7"},
                "policy_version": "sha256:0123456789abcdef",
            }))
        } else {
            object(
                json!({"kind": "outcome", "time": time, "replica": "bench", "decision_id": format!("d-{i}"),
                "request_id": format!("r-{i}"), "vendor": vendor, "status": 200, "latency_ms": 12}),
            )
        };
        let line = seal(&mut record, n as u64 + 1, &prev);
        prev = record["hash"].as_str().unwrap_or_default().to_owned();
        out.write_all(&line).unwrap();
    }
    out.flush().unwrap();
}

/// The process's resident memory, from /proc (Linux).
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn pages(c: &mut Criterion) {
    let records: usize = std::env::var("CONSOLE_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let began = Instant::now();
    write_trail(dir.path(), records);
    eprintln!(
        "console bench: wrote {records} records in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    let began = Instant::now();
    let console = Console::open(ConsoleSettings {
        paths: vec![dir.path().to_owned()],
        ..Default::default()
    })
    .unwrap();
    eprintln!(
        "console bench: index built on open in {:.2} s; process RSS {} MiB",
        began.elapsed().as_secs_f64(),
        rss_mib()
    );
    let began = Instant::now();
    console.verify_now();
    eprintln!(
        "console bench: chain verified in {:.2} s",
        began.elapsed().as_secs_f64()
    );
    let middle = format!("d-{}", records / 4);
    let target = format!("user-{}@EXAMPLE.com", records / 4);
    let cases: [(&str, &str, String); 8] = [
        ("overview", "/", String::new()),
        ("decisions_newest", "/decisions", String::new()),
        (
            "decisions_filtered_page_5",
            "/decisions",
            "vendor=kore&decision=deny&page=5".into(),
        ),
        (
            "decisions_sorted_by_caller",
            "/decisions",
            "sort=caller&order=asc".into(),
        ),
        (
            "decisions_since_until",
            "/decisions",
            "since=2026-12-10&until=2026-12-12".into(),
        ),
        (
            "decisions_by_target",
            "/decisions",
            format!("target={target}"),
        ),
        ("decision", &format!("/decision/{middle}"), String::new()),
        ("receipt", "/receipt", format!("target={target}")),
    ];
    let mut group = c.benchmark_group(format!("console_{records}_records"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for (name, path, query) in &cases {
        match route(&console, path, query) {
            Page::Html(_) => {}
            other => panic!("{name}: {other:?}"),
        }
        group.bench_function(*name, |b| b.iter(|| route(&console, path, query)));
    }
    group.bench_function("chart", |b| {
        b.iter(|| route(&console, "/chart/hours.svg", ""))
    });
    group.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
