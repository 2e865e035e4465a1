//! Deciding one 10-target erasure call in process, as policies and entities
//! grow: the shipped set, and the shipped set plus generated policies and
//! entities in the shape `../shared/bench/gen_scale.py` makes (half
//! `forbid … resource == Seam::Customer::"vip-N"`, half `permit (principal
//! == Gateway::Caller::"team-N", …) when { context.workspace == "ws-N" }`;
//! `Kore::User` entities, every 1000th an account owner).
//!
//! `cargo bench --bench decide` (`-- --quick` for a short run)

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use erasure_gateway::authz::{DecisionInput, PolicySnapshot, Principal, Target};
use serde_json::json;

/// The shipped policy directory with `policies` generated policies and
/// `entities` generated entities added.
fn snapshot(policies: usize, entities: usize) -> PolicySnapshot {
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
    let mut generated = String::new();
    for i in 0..policies {
        if i % 2 == 1 {
            generated.push_str(&format!(
                "@id(\"vip-{i}\")\nforbid (principal, action == Seam::Action::\"delete_data\", resource == Seam::Customer::\"vip-{i}\");\n"
            ));
        } else {
            generated.push_str(&format!(
                "@id(\"team-{i}\")\npermit (principal == Gateway::Caller::\"team-{i}\", action == Seam::Action::\"delete_data\", resource)\nwhen {{ context has workspace && context.workspace == \"ws-{i}\" }};\n"
            ));
        }
    }
    if policies > 0 {
        sources.push((dir.join("generated.cedar"), generated));
    }
    let shipped: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("entities.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut all = shipped;
    all.extend((0..entities).map(|i| {
        json!({"uid": {"type": "Kore::User", "id": format!("u-{i:08}")},
               "attrs": {"account_owner": i % 1000 == 0, "developer_of": []}, "parents": []})
    }));
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

fn decide(c: &mut Criterion) {
    let targets: Vec<Target> = (0..10)
        .map(|i| Target::exact("Seam::Customer", format!("customer-{i}")))
        .collect();
    let roles = ["privacy-officer".to_owned()];
    let context = json!({
        "vendor": "seam",
        "target_count": 10,
        "client_ip": "10.0.0.7",
        "client_cert": false,
        "credential": {"kind": "api_key", "fingerprint": "0123456789ab"},
        "workspace": "ws-1",
    });
    let mut group = c.benchmark_group("decide_10_targets");
    group.measurement_time(Duration::from_secs(5));
    for (policies, entities) in [
        (0, 0),
        (0, 100_000),
        (1_000, 0),
        (1_000, 100_000),
        (10_000, 100_000),
    ] {
        let snapshot = snapshot(policies, entities);
        let input = DecisionInput {
            principal: Principal {
                id: "privacy-ops",
                roles: &roles,
            },
            namespace: "Seam",
            action: "delete_data",
            targets: &targets,
            context: context.clone(),
            extra_entities: Vec::new(),
        };
        assert!(snapshot.decide(&input).allowed, "the call is allowed");
        group.bench_with_input(
            BenchmarkId::new("policies+entities", format!("{policies}+{entities}")),
            &input,
            |b, input| b.iter(|| snapshot.decide(input)),
        );
    }
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
