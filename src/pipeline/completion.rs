//! Proof of erasure for vendors that erase later (Kore.ai answers an
//! erasure with a request id and carries it out afterwards): a status call
//! passing through the gateway, or the gateway's own polling of the status
//! API (`[[upstream]] track_completion`), writes a `completion` record
//! linked to the erasure's decision. Seam and BotPenguin answer
//! synchronously: their outcome record is the completion.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::HeaderValue;
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};

use super::gateway::{Gateway, Route};
use super::inject;
use crate::config::TrackCompletion;
use crate::conn::ConnInfo;
use crate::forward::{self, Upstream};
use crate::metrics::Metrics;
use crate::profile::{StatusAnswer, VendorProfile};
use crate::request_id;
use crate::response::{full, GatewayError};
use crate::trail::pseudonym::PseudonymKey;
use crate::trail::record::{CompletionRecord, CompletionTarget};
use crate::trail::Trail;
use crate::Body;

/// Erasures this process forwarded, by vendor request id, kept for the
/// status calls that ask about them later.
const LINKS: u64 = 100_000;

/// Failed polls in a row after which polling an erasure stops.
const MAX_FAILED_POLLS: u32 = 5;

/// How a completion record came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A client's status call passed through.
    StatusCall,
    /// The gateway asked (`track_completion`).
    Poll,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::StatusCall => "status_call",
            Self::Poll => "poll",
        }
    }
}

/// The decisions of erasures awaiting completion, by upstream and vendor
/// request id. After a restart it is empty; a completion record then has
/// no `decision_id`, and readers link it by `vendor_request_id`.
#[derive(Debug)]
pub(super) struct Links(moka::sync::Cache<String, String>);

impl Links {
    pub(super) fn new() -> Self {
        Self(moka::sync::Cache::new(LINKS))
    }

    fn key(upstream: &str, vendor_request_id: &str) -> String {
        format!("{upstream}\0{vendor_request_id}")
    }

    fn link(&self, upstream: &str, vendor_request_id: &str, decision_id: &str) {
        self.0.insert(
            Self::key(upstream, vendor_request_id),
            decision_id.to_owned(),
        );
    }

    fn decision(&self, upstream: &str, vendor_request_id: &str) -> String {
        self.0
            .get(&Self::key(upstream, vendor_request_id))
            .unwrap_or_default()
    }
}

/// What one completion record says, before it is written.
struct Seen<'a> {
    upstream: &'a str,
    profile: &'a VendorProfile,
    decision_id: String,
    vendor_request_id: &'a str,
    source: Source,
    request_id: &'a str,
    status: Option<u16>,
    answer: Option<&'a StatusAnswer>,
    error: Option<String>,
}

fn completion_record(seen: &Seen<'_>, pseudonyms: Option<&PseudonymKey>) -> CompletionRecord {
    let entity_type = seen.profile.completion_entity_type().unwrap_or_default();
    let id = |raw: &str| pseudonyms.map_or_else(|| raw.to_owned(), |p| p.pseudonym(raw));
    CompletionRecord {
        decision_id: seen.decision_id.clone(),
        vendor_request_id: seen.vendor_request_id.to_owned(),
        vendor: seen.profile.name.clone(),
        upstream: seen.upstream.to_owned(),
        source: seen.source.as_str().to_owned(),
        request_id: seen.request_id.to_owned(),
        status: seen.status,
        state: seen
            .answer
            .map_or("unknown", StatusAnswer::state)
            .to_owned(),
        targets: seen
            .answer
            .map(|a| {
                a.targets
                    .iter()
                    .map(|t| CompletionTarget {
                        entity_type: entity_type.clone(),
                        id: id(&t.id),
                        status: t.status.clone(),
                        state: t.state.as_str().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        error: seen.error.clone(),
        pseudonymized: pseudonyms.is_some(),
    }
}

async fn write(trail: &Trail, record: &CompletionRecord) {
    if let Err(e) = trail.append(record).await {
        tracing::error!(
            vendor_request_id = %record.vendor_request_id,
            error = %e,
            "trail: completion record lost"
        );
    }
}

impl Gateway {
    /// After an accepted erasure that the vendor carries out later: keeps
    /// its decision for status calls and, with `track_completion`, starts
    /// polling the vendor's status API.
    pub(super) fn await_completion(
        &self,
        route: &Route,
        vendor_request_id: &str,
        decision_id: &str,
    ) {
        self.links
            .link(&route.upstream.name, vendor_request_id, decision_id);
        let (Some(tracking), Some(profile)) = (route.tracking, &route.profile) else {
            return;
        };
        let poll = Poll {
            upstream: route.upstream.clone(),
            profile: profile.clone(),
            trail: self.trail.clone(),
            metrics: self.metrics.clone(),
            pseudonyms: self.pseudonyms.clone(),
            max_body_bytes: self.max_body_bytes,
            tracking,
            vendor_request_id: vendor_request_id.to_owned(),
            decision_id: decision_id.to_owned(),
        };
        tokio::spawn(poll.run());
    }

    /// A status call passing through: forwarded as any pass-through call;
    /// the vendor's answer, read whole (bounded), is recorded as a
    /// completion when it is a success in the profile's shape, and relayed.
    #[allow(clippy::too_many_arguments)] // the pass-through call's own, plus what it asks about
    pub(super) async fn status_call(
        &self,
        route: &Route,
        profile: &VendorProfile,
        request: Request<Body>,
        path: &str,
        conn: &ConnInfo,
        request_id: &HeaderValue,
        vendor_request_id: &str,
    ) -> Result<Response<Body>, GatewayError> {
        let upstream = &route.upstream;
        let response = self
            .send_passed(upstream, request, path, conn, request_id)
            .await?;
        let (parts, body) = response.into_parts();
        let bytes = read_bounded(upstream, body, self.max_body_bytes)
            .await
            .inspect_err(|e| self.metrics.upstream_error(&upstream.name, e.code()))?;
        if parts.status.is_success() {
            if let Some(answer) = profile.read_status(&bytes) {
                let seen = Seen {
                    upstream: &upstream.name,
                    profile,
                    decision_id: self.links.decision(&upstream.name, vendor_request_id),
                    vendor_request_id,
                    source: Source::StatusCall,
                    request_id: request_id::text(request_id),
                    status: Some(parts.status.as_u16()),
                    answer: Some(&answer),
                    error: None,
                };
                write(
                    &self.trail,
                    &completion_record(&seen, self.pseudonyms.as_ref()),
                )
                .await;
            }
        }
        Ok(forward::relay_parts(parts, full(bytes)))
    }
}

async fn read_bounded(
    upstream: &Upstream,
    body: crate::forward::UpstreamBody,
    max: usize,
) -> Result<bytes::Bytes, GatewayError> {
    match tokio::time::timeout(upstream.timeout(), Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(_)) => Err(GatewayError::UpstreamFailed),
        Err(_) => Err(GatewayError::UpstreamTimeout),
    }
}

/// Polling one erasure's status until every target is terminal, polling
/// fails [`MAX_FAILED_POLLS`] times in a row, or `track_completion_for`
/// passes. A record is written when the answer changes and at the end.
struct Poll {
    upstream: Arc<Upstream>,
    profile: VendorProfile,
    trail: Trail,
    metrics: Arc<Metrics>,
    pseudonyms: Option<PseudonymKey>,
    max_body_bytes: usize,
    tracking: TrackCompletion,
    vendor_request_id: String,
    decision_id: String,
}

impl Poll {
    async fn run(self) {
        let started = Instant::now();
        let every = self.tracking.every;
        let mut delay = every;
        let mut failures = 0u32;
        let mut last: Option<Vec<(String, String)>> = None;
        loop {
            tokio::time::sleep(delay).await;
            let request_id = request_id::generate();
            let asked = self.ask(&request_id).await;
            let result = match &asked {
                Ok((_, answer)) if answer.is_terminal() => "final",
                Ok(_) => "in_progress",
                Err(_) => "error",
            };
            self.metrics.completion_polled(&self.upstream.name, result);
            match asked {
                Ok((status, answer)) => {
                    failures = 0;
                    delay = every;
                    let now: Vec<(String, String)> = answer
                        .targets
                        .iter()
                        .map(|t| (t.id.clone(), t.status.clone()))
                        .collect();
                    let terminal = answer.is_terminal();
                    if last.as_ref() != Some(&now) || terminal {
                        self.record(&request_id, Some(status), Some(&answer), None)
                            .await;
                        last = Some(now);
                    }
                    if terminal {
                        return;
                    }
                }
                Err((status, why)) => {
                    failures += 1;
                    tracing::warn!(
                        upstream = %self.upstream.name,
                        vendor_request_id = %self.vendor_request_id,
                        failures,
                        error = %why,
                        "completion poll failed"
                    );
                    if failures >= MAX_FAILED_POLLS {
                        let error = format!(
                            "polling stopped after {failures} failed polls in a row: {why}"
                        );
                        self.record(&request_id, status, None, Some(error)).await;
                        return;
                    }
                    delay = backoff(every, failures);
                }
            }
            if started.elapsed() + delay > self.tracking.for_at_most {
                let error = format!(
                    "no final status within {}: polling stopped",
                    humantime::format_duration(self.tracking.for_at_most)
                );
                self.record(&request_id, None, None, Some(error)).await;
                return;
            }
        }
    }

    /// One status call with the vendor's credential.
    async fn ask(
        &self,
        request_id: &HeaderValue,
    ) -> Result<(u16, StatusAnswer), (Option<u16>, String)> {
        let path = self
            .profile
            .status_path(&self.vendor_request_id)
            .ok_or((None, "the profile has no status API".to_owned()))?;
        let mut request = self
            .upstream
            .get(&path, request_id)
            .map_err(|e| (None, e.to_string()))?;
        if let Some(credential) = self.upstream.credential() {
            inject::vendor_credential(&self.profile, credential, request.headers_mut())
                .map_err(|e| (None, e.to_string()))?;
        }
        let response = self
            .upstream
            .send(request)
            .await
            .map_err(|e| (None, e.to_string()))?;
        let status = response.status();
        let bytes = read_bounded(&self.upstream, response.into_body(), self.max_body_bytes)
            .await
            .map_err(|e| (Some(status.as_u16()), e.to_string()))?;
        if !status.is_success() {
            return Err((
                Some(status.as_u16()),
                format!("the vendor answered {status}"),
            ));
        }
        match self.profile.read_status(&bytes) {
            Some(answer) => Ok((status.as_u16(), answer)),
            None => Err((
                Some(status.as_u16()),
                "the answer does not have the profile's status shape".to_owned(),
            )),
        }
    }

    async fn record(
        &self,
        request_id: &HeaderValue,
        status: Option<u16>,
        answer: Option<&StatusAnswer>,
        error: Option<String>,
    ) {
        let seen = Seen {
            upstream: &self.upstream.name,
            profile: &self.profile,
            decision_id: self.decision_id.clone(),
            vendor_request_id: &self.vendor_request_id,
            source: Source::Poll,
            request_id: request_id::text(request_id),
            status,
            answer,
            error,
        };
        write(
            &self.trail,
            &completion_record(&seen, self.pseudonyms.as_ref()),
        )
        .await;
    }
}

/// How long until the next poll after `failures` failed polls in a row.
fn backoff(every: Duration, failures: u32) -> Duration {
    every.saturating_mul(1 << failures.min(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_polls_back_off_doubling_up_to_eight_times_the_interval() {
        let every = Duration::from_secs(30);
        assert_eq!(backoff(every, 1), Duration::from_secs(60));
        assert_eq!(backoff(every, 2), Duration::from_secs(120));
        assert_eq!(backoff(every, 3), Duration::from_secs(240));
        assert_eq!(backoff(every, 9), Duration::from_secs(240));
    }
}
