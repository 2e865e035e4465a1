//! What group commit buys: throughput of durable trail appends when many
//! erasure calls wait at once, with one `fsync` per batch (what the gateway
//! does) vs one `fsync` per record.
//!
//! `cargo bench --bench trail_commit`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use erasure_gateway::trail::{CommitMode, Trail, WriterConfig};
use serde_json::{json, Map, Value};

/// A decision record of realistic size (~900 bytes sealed).
fn decision(n: usize) -> Map<String, Value> {
    let value = json!({
        "kind": "decision",
        "request_id": format!("bench-{n:08}"),
        "vendor": "kore",
        "upstream": "kore",
        "action": "Kore::Action::\"eraseUsersData\"",
        "principal": {"id": "privacy-ops", "roles": ["privacy-officer"], "source": "token"},
        "credential": {"kind": "bearer", "fingerprint": "0123456789ab"},
        "client": {"ip": "10.0.0.7", "cert": false},
        "targets": [{"type": "Kore::User", "id": "u-ordinary-0001", "decision": "allow",
                     "policies": ["privacy-officers-may-erase"], "errors": []}],
        "decision": "allow", "mode": "enforce", "effect": "forwarded", "reasons": [],
        "context": {"vendor": "kore", "target_count": 1, "erasures_in_window": 0, "calls_in_window": 0, "client_ip": "10.0.0.7", "client_cert": false,
                    "credential": {"kind": "bearer", "fingerprint": "0123456789ab"}},
        "policy_version": "sha256:0123456789abcdef",
    });
    value.as_object().cloned().unwrap_or_default()
}

fn appends(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let mut group = c.benchmark_group("trail_append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    for concurrent in [1usize, 64] {
        for (name, mode) in [
            ("group_commit", CommitMode::Group),
            ("fsync_each", CommitMode::EachRecord),
        ] {
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap_or_else(|e| panic!("tempdir: {e}"));
            let trail = Trail::start(
                WriterConfig {
                    path: dir.path().join("decisions.jsonl"),
                    replica: "bench".into(),
                    rotate_bytes: 1 << 30,
                    rotate_daily: false,
                    stdout: false,
                    commit: mode,
                    checkpoint_every: 0,
                    group_read: false,
                },
                None,
            )
            .unwrap_or_else(|e| panic!("trail: {e}"));
            group.throughput(Throughput::Elements(concurrent as u64));
            group.bench_with_input(BenchmarkId::new(name, concurrent), &concurrent, |b, &n| {
                b.iter(|| {
                    rt.block_on(async {
                        let waits: Vec<_> = (0..n)
                            .map(|i| {
                                let trail = trail.clone();
                                tokio::spawn(async move { trail.append(decision(i)).await })
                            })
                            .collect();
                        for w in waits {
                            let _ = w.await;
                        }
                    });
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, appends);
criterion_main!(benches);
