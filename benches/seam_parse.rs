//! Reading a Seam "delete customer data" call: classifying the request and
//! parsing its body strictly into targets, for bodies naming 1, 100 and
//! 10,000 customer keys.
//!
//! `cargo bench --bench seam_parse` (`-- --quick` for a short run)

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use erasure_gateway::profile::{self, Classification, RequestHead};
use http::{HeaderMap, HeaderValue, Method};

fn parse(c: &mut Criterion) {
    // Seam's profile, allowed the most targets a profile may set (the
    // shipped default refuses calls naming over 1,000).
    let mut definition = profile::builtin("seam")
        .expect("the seam profile is built in")
        .definition()
        .clone();
    definition.max_targets = profile::MAX_TARGETS_CEILING;
    let seam = profile::VendorProfile::new(definition).expect("a valid profile");
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer seam_bench_key_0123456789"),
    );
    let method = Method::POST;
    let head = RequestHead {
        method: &method,
        path: "/customers/delete_data",
        query: None,
        headers: &headers,
        has_body: true,
    };
    let Classification::Erasure(call) = profile::classify(&seam, &head) else {
        panic!("the bench request is Seam's erasure call");
    };
    let mut group = c.benchmark_group("seam_parse");
    group.measurement_time(Duration::from_secs(5));
    for keys in [1usize, 100, 10_000] {
        let ids: Vec<String> = (0..keys).map(|i| format!("customer-{i:06}")).collect();
        let body =
            serde_json::to_vec(&serde_json::json!({ "customer_keys": ids })).expect("a JSON body");
        let parsed = profile::parse(&seam, &call, &head, &body).expect("the body parses");
        assert_eq!(parsed.targets.len(), keys);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("keys", keys), &body, |b, body| {
            b.iter(|| match profile::classify(&seam, &head) {
                Classification::Erasure(call) => profile::parse(&seam, &call, &head, body),
                other => panic!("classified as {other:?}"),
            });
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
