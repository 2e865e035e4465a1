//! OpenTelemetry end to end: the `serve` binary with `[telemetry]
//! otlp_endpoint` pointing at a local OTLP/HTTP receiver (a stand-in server
//! that records what arrives), its spans decoded from the protobuf export.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

use crate::support::{bearer, call, spawn_vendor, Behaviour, GatewayConfig, Served, StandIn, JSON};

const OFFICER: &str = "otel-officer-token";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// Every span the receiver has been sent.
fn spans(receiver: &StandIn) -> Vec<Span> {
    receiver
        .received()
        .iter()
        .filter(|r| r.path_and_query == "/v1/traces")
        .flat_map(|r| {
            ExportTraceServiceRequest::decode(r.body.clone())
                .unwrap()
                .resource_spans
        })
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

#[tokio::test]
async fn request_and_stage_spans_are_exported_by_otlp_continuing_the_callers_trace() {
    let receiver = spawn_vendor(Behaviour::ByPath {
        answers: Arc::new(HashMap::from([("/v1/traces".to_owned(), String::new())])),
        delay: Duration::ZERO,
    })
    .await;
    let seam = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new()
        .caller("ops", OFFICER, &["privacy-officer"])
        .vendor("seam", &seam)
        .set(
            "telemetry",
            "otlp_endpoint",
            format!("{}/v1/traces", receiver.url()),
        );
    let mut served = Served::start_with_env(
        &config,
        Stdio::null(),
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let (parts, answer) = call(
        "POST",
        &served.url("/seam/customers/delete_data"),
        &[
            ("authorization", &bearer(OFFICER)),
            ("traceparent", &traceparent),
            JSON,
        ],
        r#"{"customer_keys":["c-1"]}"#,
    )
    .await;
    assert_eq!(parts.status, 200, "{answer}");
    let wanted = [
        "request",
        "classify",
        "identify",
        "directory",
        "cedar",
        "trail_commit",
        "upstream",
    ];
    let deadline = Instant::now() + Duration::from_secs(15);
    let spans = loop {
        let spans = spans(&receiver);
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        if wanted.iter().all(|w| names.contains(w)) {
            break spans;
        }
        assert!(Instant::now() < deadline, "spans exported: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let request = spans.iter().find(|s| s.name == "request").unwrap();
    assert_eq!(
        hex::encode(&request.trace_id),
        TRACE_ID,
        "the caller's trace is continued"
    );
    assert_eq!(hex::encode(&request.parent_span_id), PARENT_ID);
    for stage in &wanted[1..] {
        let span = spans.iter().find(|s| s.name == *stage).unwrap();
        assert_eq!(hex::encode(&span.trace_id), TRACE_ID, "{stage}");
        assert_eq!(
            span.parent_span_id, request.span_id,
            "{stage} is a stage of the request"
        );
    }
    // Nothing about the call's targets or credentials is in a span.
    let text = format!("{spans:?}");
    assert!(!text.contains("c-1") && !text.contains(OFFICER), "{text}");
    served.signal("TERM");
    assert_eq!(served.wait_exit(Duration::from_secs(10)), Some(0));
}
