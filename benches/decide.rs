//! Deciding one 10-target erasure call in process, as policies and entities
//! grow: the shipped set, and the shipped set plus generated policies and
//! entities in the shape `../shared/bench/gen_scale.py` makes (half
//! `forbid … resource == Seam::Customer::"vip-N"`, half `permit (principal
//! == Gateway::Caller::"team-N", …) when { context.workspace == "ws-N" }`;
//! `Kore::User` entities, every 1000th an account owner).
//!
//! Each case prints its p50 and p99 over 5,000 single calls beside
//! criterion's estimate; a Kore call whose ten targets are stored entities
//! is measured once per entity count.
//!
//! `cargo bench --bench decide` (`-- --quick` for a short run;
//! `DECIDE_ENTITIES=100000` for one entity count)

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use erasure_gateway::authz::{DecisionInput, PolicySnapshot, Principal, Target};
use serde_json::json;

/// `entities` generated `Kore::User` entities, as JSON: every 1000th an
/// account owner.
fn generated_entities(entities: usize) -> Vec<serde_json::Value> {
    (0..entities)
        .map(|i| {
            json!({"uid": {"type": "Kore::User", "id": format!("u-{i:08}")},
                   "attrs": {"account_owner": i % 1000 == 0, "developer_of": []}, "parents": []})
        })
        .collect()
}

/// The shipped policy directory with `policies` generated policies and the
/// generated entities added.
fn snapshot(policies: usize, generated: &[serde_json::Value]) -> PolicySnapshot {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let schema = std::fs::read_to_string(dir.join("schema.cedarschema")).unwrap_or_default();
    let mut sources: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (p, text)
        })
        .collect();
    let mut text = String::new();
    for i in 0..policies {
        if i % 2 == 1 {
            text.push_str(&format!(
                "@id(\"vip-{i}\")\nforbid (principal, action == Seam::Action::\"delete_data\", resource == Seam::Customer::\"vip-{i}\");\n"
            ));
        } else {
            text.push_str(&format!(
                "@id(\"team-{i}\")\npermit (principal == Gateway::Caller::\"team-{i}\", action == Seam::Action::\"delete_data\", resource)\nwhen {{ context has workspace && context.workspace == \"ws-{i}\" }};\n"
            ));
        }
    }
    if policies > 0 {
        sources.push((dir.join("generated.cedar"), text));
    }
    let mut all: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("entities.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    all.extend_from_slice(generated);
    let entities_text = serde_json::Value::Array(all).to_string();
    let snapshot = PolicySnapshot::from_sources(
        (&dir.join("schema.cedarschema"), &schema),
        &sources,
        Some((&dir.join("entities.json"), &entities_text)),
    );
    match snapshot {
        Ok(snapshot) => snapshot,
        Err(e) => panic!("generated policy set does not load: {e}"),
    }
}

/// A call's latency over many single calls, beside criterion's estimate
/// of the mean: the targets are p99s.
fn percentiles(snapshot: &PolicySnapshot, input: &DecisionInput<'_>) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..5_000)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(snapshot.decide(input));
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

/// The context of a 10-target call to `vendor` with a credential of
/// `kind`, and one vendor field.
fn context(vendor: &str, kind: &str, field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut context = json!({
        "vendor": vendor,
        "target_count": 10,
        "erasures_in_window": 0,
        "calls_in_window": 0,
        "client_ip": "10.0.0.7",
        "client_cert": false,
        "credential": {"kind": kind, "fingerprint": "0123456789ab"},
    });
    context[field] = value;
    context
}

fn decide(c: &mut Criterion) {
    let roles = ["privacy-officer".to_owned()];
    let principal = Principal {
        id: "privacy-ops",
        roles: &roles,
    };
    let seam_targets: Vec<Target> = (0..10)
        .map(|i| Target::exact("Seam::Customer", format!("customer-{i}")))
        .collect();
    let seam_context = context("seam", "api_key", "workspace", json!("ws-1"));
    // Ten stored people (none an account owner): each target's entity is
    // read from the store, so the slice is ten entities.
    let kore_targets: Vec<Target> = (1..=10)
        .map(|i| Target::exact("Kore::User", format!("u-{:08}", i * 7)))
        .collect();
    let kore_context = context("kore", "jwt", "remove_from_all_bots", json!(false));
    let mut group = c.benchmark_group("decide_10_targets");
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    let only = std::env::var("DECIDE_ENTITIES").ok();
    for entities in [1_000usize, 100_000, 1_000_000] {
        if only.as_deref().is_some_and(|o| o != entities.to_string()) {
            continue;
        }
        let generated = generated_entities(entities);
        for policies in [10usize, 100, 1_000, 10_000] {
            let snapshot = snapshot(policies, &generated);
            for (vendor, namespace, action, targets, context) in [
                ("seam", "Seam", "delete_data", &seam_targets, &seam_context),
                (
                    "kore",
                    "Kore",
                    "eraseUsersData",
                    &kore_targets,
                    &kore_context,
                ),
            ] {
                // The Kore call is decided on the shipped policies plus the
                // generated Seam ones: measured once per entity count.
                if vendor == "kore" && policies != 10 {
                    continue;
                }
                let input = DecisionInput {
                    principal,
                    namespace,
                    action,
                    targets,
                    context: context.clone(),
                    extra_entities: Vec::new(),
                };
                assert!(
                    snapshot.decide(&input).allowed,
                    "the {vendor} call is allowed"
                );
                let (p50, p99) = percentiles(&snapshot, &input);
                let name = format!("{vendor}/{policies}+{entities}");
                eprintln!("{name}: p50 {p50:.1?} p99 {p99:.1?} over 5000 calls");
                group.bench_with_input(
                    BenchmarkId::new("policies+entities", name),
                    &input,
                    |b, input| b.iter(|| snapshot.decide(input)),
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
