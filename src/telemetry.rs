//! OpenTelemetry traces: with `[telemetry] otlp_endpoint`, every request and
//! the stages of an erasure call (classify, identify, directory, Cedar,
//! trail commit, upstream) are spans, exported by OTLP/HTTP (protobuf) in
//! batches; a client's W3C `traceparent` is continued. Without it, no span
//! is made beyond the debug-level request span, and the stage helpers cost
//! one atomic load.
//!
//! The binary builds the layer from the configuration before it sets up its
//! subscriber ([`layer`]); `serve` starts exporting on its runtime
//! ([`start`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Registry;

use crate::config::{Config, TelemetryConfig};

/// The layer the binary puts into its subscriber.
pub type OtelLayer =
    tracing_opentelemetry::OpenTelemetryLayer<Registry, opentelemetry_sdk::trace::Tracer>;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
static RUNTIME: OnceLock<tokio::runtime::Handle> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The OpenTelemetry layer for `serve` with the configuration at `path`,
/// when its `[telemetry] otlp_endpoint` is set. A configuration that does
/// not load gives none (`serve` reports it); an exporter that cannot be
/// built is reported on stderr and the gateway runs without traces.
pub fn layer(path: Option<&Path>) -> Option<OtelLayer> {
    let config = match path {
        Some(path) => Config::load(path).ok()?,
        None => return None,
    };
    let endpoint = config.telemetry.otlp_endpoint.as_ref()?;
    let built = OnRuntime::new().and_then(|client| {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint.clone())
            .with_http_client(client)
            .build()
            .map_err(|e| TelemetryError(e.to_string()))
    });
    let exporter = match built {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("erasure-gateway: {e}; running without traces");
            return None;
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder_empty()
                .with_service_name(config.telemetry.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("erasure-gateway");
    PROVIDER.set(provider).ok()?;
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Whether spans are exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A stage of an erasure call, as a span when traces are exported.
pub fn stage(name: &'static str) -> Span {
    if enabled() {
        tracing::info_span!("stage", otel.name = name)
    } else {
        Span::none()
    }
}

/// The span of one request: debug level (named by its id only: paths can
/// hold the ids of the people being erased); exported when traces are,
/// continuing the client's `traceparent`.
pub fn request_span(request_id: &str, method: &http::Method, headers: &HeaderMap) -> Span {
    if !enabled() {
        return tracing::debug_span!("request", request_id = %request_id, method = %method);
    }
    let span = tracing::info_span!(
        "request",
        otel.name = "request",
        otel.kind = "server",
        request_id = %request_id,
        method = %method
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
    span
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Exports traces while held; dropping it flushes what is buffered.
#[derive(Debug)]
pub struct Telemetry(bool);

impl Drop for Telemetry {
    fn drop(&mut self) {
        let Some(provider) = PROVIDER.get().filter(|_| self.0) else {
            return;
        };
        ENABLED.store(false, Ordering::Relaxed);
        // The batch thread's last export runs on the runtime this waits
        // on: flush from a thread of its own.
        let provider = provider.clone();
        let flushed = std::thread::spawn(move || provider.shutdown());
        if let Ok(Err(e)) = flushed.join() {
            tracing::warn!(error = %e, "telemetry: the last spans could not be exported");
        }
    }
}

/// Why traces cannot be exported.
#[derive(Debug, thiserror::Error)]
#[error("telemetry: {0}")]
pub struct TelemetryError(String);

/// Starts exporting, on the calling Tokio runtime, the spans of the layer
/// [`layer`] built; without one, a configured endpoint is warned about (the
/// gateway runs in a process that did not build the layer).
pub fn start(config: &TelemetryConfig) -> Telemetry {
    let Some(endpoint) = &config.otlp_endpoint else {
        return Telemetry(false);
    };
    if PROVIDER.get().is_none() {
        tracing::warn!(endpoint = %endpoint, "telemetry: no exporter in this process; no traces");
        return Telemetry(false);
    }
    let _ = RUNTIME.set(tokio::runtime::Handle::current());
    ENABLED.store(true, Ordering::Relaxed);
    tracing::info!(endpoint = %endpoint, "exporting traces by OTLP");
    Telemetry(true)
}

/// The exporter's HTTP client: hyper on the gateway's runtime. The SDK's
/// batch processor exports from its own thread; the request runs on the
/// runtime and the thread waits for it.
#[derive(Debug)]
struct OnRuntime {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl OnRuntime {
    fn new() -> Result<Self, TelemetryError> {
        Ok(Self {
            client: crate::tls::https_client(None, Duration::from_secs(5), true, usize::MAX)
                .map_err(|e| TelemetryError(e.to_string()))?,
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: Request<Bytes>,
    ) -> Result<Response<Bytes>, opentelemetry_http::HttpError> {
        let runtime = RUNTIME
            .get()
            .ok_or("the gateway's runtime has not started")?;
        let client = self.client.clone();
        let sent = runtime.spawn(async move {
            let response = client.request(request.map(Full::new)).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, opentelemetry_http::HttpError>(Response::from_parts(parts, body))
        });
        sent.await?
    }
}
