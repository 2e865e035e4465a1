//! Prometheus metrics for the admin listener's `/metrics`.
//!
//! Requests by upstream and status code and their duration, upstream
//! latency and errors, requests in flight, erasure decisions and Cedar's
//! time to decide, directory lookups, trail commits, policy reloads,
//! completion polls, and the build.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Upstream name, or `none` when the request was not routed.
    pub upstream: String,
    /// The status code answered.
    pub code: u16,
}

/// Labels of a failed upstream exchange.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamErrorLabels {
    /// Upstream name.
    pub upstream: String,
    /// `upstream_unreachable`, `upstream_timeout`, `upstream_failed` or
    /// `upstream_busy`.
    pub kind: &'static str,
}

/// Labels of an entity directory lookup.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabels {
    /// `hit` (answered from the cache), `miss` (fetched) or `error`.
    pub result: &'static str,
}

/// Labels of a completion poll.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PollLabels {
    /// Upstream name.
    pub upstream: String,
    /// `final`, `in_progress` or `error`.
    pub result: &'static str,
}

/// Labels of the build info gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The gateway's version.
    pub version: &'static str,
}

/// Labels of an upstream exchange.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// Upstream name.
    pub upstream: String,
}

/// Labels of an erasure decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// Vendor profile name.
    pub vendor: String,
    /// `allow`, `deny` or `would-deny`.
    pub decision: &'static str,
}

/// Labels of the policy-set version gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    /// The policy-set version.
    pub version: String,
}

/// Labels of reload outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

type HistogramFamily = Family<UpstreamLabels, Histogram, fn() -> Histogram>;

/// The gateway's metrics and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily,
    upstream_latency: HistogramFamily,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    decide_seconds: Histogram,
    directory_lookups: Family<LookupLabels, Counter>,
    completion_polls: Family<PollLabels, Counter>,
    in_flight: Gauge,
    decisions: Family<DecisionLabels, Counter>,
    trail_errors: Counter,
    trail_commit_seconds: Histogram,
    trail_commit_records: Histogram,
    trail_stdout_errors: Counter,
    policy_version: Family<VersionLabels, Gauge>,
    reloads: Family<ReloadLabels, Counter>,
    last_reload_success: Gauge,
    last_reload_failure: Gauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("erasure_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by upstream and status code",
            requests.clone(),
        );
        let request_duration: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its response head, by upstream",
            request_duration.clone(),
        );
        let upstream_errors = Family::<UpstreamErrorLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Upstream exchanges that failed (answered 502/504), by upstream and kind",
            upstream_errors.clone(),
        );
        // 1 µs to ~33 ms.
        let decide_seconds = Histogram::new(exponential_buckets(0.000_001, 2.0, 16));
        registry.register(
            "cedar_decision_seconds",
            "Time Cedar took to decide one erasure call (every target)",
            decide_seconds.clone(),
        );
        let directory_lookups = Family::<LookupLabels, Counter>::default();
        registry.register(
            "directory_lookups",
            "Entity directory lookups, by result (hit, miss, error)",
            directory_lookups.clone(),
        );
        let completion_polls = Family::<PollLabels, Counter>::default();
        registry.register(
            "completion_polls",
            "Polls of a vendor's status API (track_completion), by upstream and result",
            completion_polls.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The gateway's build (value 1)", build);
        let upstream_latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "upstream_latency_seconds",
            "Time from forwarding a request to the upstream's response head",
            upstream_latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Requests being handled now",
            in_flight.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Erasure calls decided or refused, by vendor and decision",
            decisions.clone(),
        );
        let trail_errors = Counter::default();
        registry.register(
            "trail_write_errors",
            "Trail records that could not be made durable",
            trail_errors.clone(),
        );
        // 50 µs to ~1.6 s.
        let trail_commit_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "trail_commit_seconds",
            "Time to write and fsync one group-committed batch of trail records",
            trail_commit_seconds.clone(),
        );
        // 1 to 4096, the largest batch.
        let trail_commit_records = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        registry.register(
            "trail_commit_records",
            "Records (and checkpoints) made durable by one fsync",
            trail_commit_records.clone(),
        );
        let trail_stdout_errors = Counter::default();
        registry.register(
            "trail_stdout_errors",
            "Batches the live stdout copy of the trail could not be written (the trail file has them)",
            trail_stdout_errors.clone(),
        );
        let policy_version = Family::<VersionLabels, Gauge>::default();
        registry.register(
            "policy_version_info",
            "The policy-set version in force (value 1)",
            policy_version.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads, by result",
            reloads.clone(),
        );
        let last_reload_success = Gauge::default();
        registry.register(
            "policy_last_reload_success_timestamp_seconds",
            "When policies were last loaded successfully (Unix time)",
            last_reload_success.clone(),
        );
        let last_reload_failure = Gauge::default();
        registry.register(
            "policy_last_reload_failure_timestamp_seconds",
            "When a policy reload was last refused (Unix time; 0 never)",
            last_reload_failure.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
            upstream_latency,
            upstream_errors,
            decide_seconds,
            directory_lookups,
            completion_polls,
            in_flight,
            decisions,
            trail_errors,
            trail_commit_seconds,
            trail_commit_records,
            trail_stdout_errors,
            policy_version,
            reloads,
            last_reload_success,
            last_reload_failure,
        }
    }

    /// Counts a finished request.
    pub fn request_done(&self, upstream: &str, status: http::StatusCode, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                upstream: upstream.to_owned(),
                code: status.as_u16(),
            })
            .inc();
        self.request_duration
            .get_or_create(&UpstreamLabels {
                upstream: upstream.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a failed upstream exchange.
    pub fn upstream_error(&self, upstream: &str, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&UpstreamErrorLabels {
                upstream: upstream.to_owned(),
                kind,
            })
            .inc();
    }

    /// Records how long Cedar took to decide a call.
    pub fn cedar_decided(&self, took: Duration) {
        self.decide_seconds.observe(took.as_secs_f64());
    }

    /// The directory lookup counters, for the entity directory to count into.
    pub fn directory_lookups(&self) -> Family<LookupLabels, Counter> {
        self.directory_lookups.clone()
    }

    /// Counts a completion poll.
    pub fn completion_polled(&self, upstream: &str, result: &'static str) {
        self.completion_polls
            .get_or_create(&PollLabels {
                upstream: upstream.to_owned(),
                result,
            })
            .inc();
    }

    /// Records how long an upstream took to answer.
    pub fn upstream_latency(&self, upstream: &str, elapsed: Duration) {
        self.upstream_latency
            .get_or_create(&UpstreamLabels {
                upstream: upstream.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts an erasure decision.
    pub fn erasure_decided(&self, vendor: &str, decision: &'static str) {
        self.decisions
            .get_or_create(&DecisionLabels {
                vendor: vendor.to_owned(),
                decision,
            })
            .inc();
    }

    /// Counts a trail record that could not be made durable.
    pub fn trail_write_failed(&self) {
        self.trail_errors.inc();
    }

    /// Records one durable trail batch: its lines and its write + fsync time.
    pub fn trail_committed(&self, lines: usize, took: Duration) {
        self.trail_commit_seconds.observe(took.as_secs_f64());
        // A batch holds at most a few thousand lines: exact as a float.
        #[allow(clippy::cast_precision_loss)]
        self.trail_commit_records.observe(lines as f64);
    }

    /// Counts a batch the live stdout copy of the trail lost.
    pub fn trail_stdout_failed(&self) {
        self.trail_stdout_errors.inc();
    }

    /// Records a successful policy load (at start or a reload).
    pub fn policy_reloaded(&self, previous: &str, version: &str, at: std::time::SystemTime) {
        if previous != version {
            self.policy_version.remove(&VersionLabels {
                version: previous.to_owned(),
            });
        }
        self.policy_version
            .get_or_create(&VersionLabels {
                version: version.to_owned(),
            })
            .set(1);
        self.reloads
            .get_or_create(&ReloadLabels { result: "ok" })
            .inc();
        self.last_reload_success.set(unix_seconds(at));
    }

    /// Records a refused policy reload.
    pub fn policy_reload_failed(&self, at: std::time::SystemTime) {
        self.reloads
            .get_or_create(&ReloadLabels { result: "error" })
            .inc();
        self.last_reload_failure.set(unix_seconds(at));
    }

    /// Marks a request as started; the guard marks it finished when dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// The OpenMetrics text exposition.
    ///
    /// # Errors
    /// Encoding failed (it writes to a `String`, so it does not).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn unix_seconds(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Decrements the in-flight gauge when dropped.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_latency_and_in_flight() {
        let metrics = Metrics::new();
        metrics.request_done("seam", http::StatusCode::OK, Duration::from_millis(4));
        metrics.request_done(
            "seam",
            http::StatusCode::BAD_GATEWAY,
            Duration::from_millis(9),
        );
        metrics.upstream_latency("seam", Duration::from_millis(3));
        metrics.upstream_error("seam", "upstream_timeout");
        metrics.cedar_decided(Duration::from_micros(40));
        let guard = metrics.in_flight();
        let text = metrics.render().unwrap();
        assert!(
            text.contains(r#"erasure_gateway_requests_total{upstream="seam",code="200"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"code="502"} 1"#), "{text}");
        assert!(
            text.contains(r#"erasure_gateway_request_duration_seconds_count{upstream="seam"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"erasure_gateway_upstream_errors_total{upstream="seam",kind="upstream_timeout"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("erasure_gateway_cedar_decision_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "erasure_gateway_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        assert!(
            text.contains("erasure_gateway_upstream_latency_seconds_count{upstream=\"seam\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("erasure_gateway_requests_in_flight 1"),
            "{text}"
        );
        drop(guard);
        assert!(metrics
            .render()
            .unwrap()
            .contains("erasure_gateway_requests_in_flight 0"));
    }
}
