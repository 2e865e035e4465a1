//! A stand-in vendor: a loopback HTTP server (HTTP/1.1 and h2c, or TLS with
//! ALPN) that records what arrives and answers as its [`Behaviour`] says.
//! `demo`, `examples/stand_in.rs` and the integration tests use it; the
//! serving path never does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Kore.ai's answer to an accepted `eraseUsersData`: the vendor's own
/// request id, which the trail records as the outcome's `vendor_request_id`.
pub const KORE_ERASURE_ACCEPTED: &str = r#"{"requestId":"eud-123","status":"in-progress"}"#;

/// The body of a [`Behaviour::Status`] answer: a vendor failing.
pub const VENDOR_FAILED: &str = r#"{"error":{"type":"internal","message":"vendor failed"}}"#;

/// A request as the stand-in vendor received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The method.
    pub method: Method,
    /// The path and query, as sent on the request line.
    pub path_and_query: String,
    /// The HTTP version it arrived in.
    pub version: Version,
    /// Every header, in arrival order.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// How the stand-in vendor answers. Every request is recorded first.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 with the request body echoed back, `x-vendor: stand-in`, an
    /// `x-request-id` of its own, and (on
    /// HTTP/1.1) hop-by-hop headers a proxy must strip.
    Echo,
    /// Wait this long, then answer as [`Behaviour::Echo`].
    Slow(Duration),
    /// Never answer.
    Hang,
    /// 200 with this JSON body (e.g. [`KORE_ERASURE_ACCEPTED`]).
    Json(&'static str),
    /// This status with [`VENDOR_FAILED`] as the body.
    Status(StatusCode),
    /// A stand-in Kore.ai that erases later: see [`KoreStandIn`].
    Kore(Arc<KoreStandIn>),
    /// After `delay`, 200 with the JSON kept for the request's path, or 404
    /// for any other path: a stand-in entity directory, slow enough that
    /// concurrent lookups meet when `delay` is not zero.
    ByPath {
        /// JSON bodies by request path (without the query).
        answers: Arc<HashMap<String, String>>,
        /// How long each answer takes.
        delay: Duration,
    },
}

/// A stand-in Kore.ai: `DELETE …/eraseUsersData` is accepted with a fresh
/// request id (`eud-1`, `eud-2`, …); the status API
/// (`GET …/eraseUsersData/status/{id}`) answers `IN_PROGRESS` for every user
/// the first `pending_polls` times it is asked about an erasure, then
/// `SUCCESS` for each (`FAILED` for ids starting `fail`); 404 for an unknown
/// id.
#[derive(Debug, Default)]
pub struct KoreStandIn {
    pending_polls: usize,
    erasures: Mutex<HashMap<String, (Vec<String>, usize)>>,
}

impl Behaviour {
    /// A [`KoreStandIn`] answering in progress `pending_polls` times.
    #[must_use]
    pub fn kore(pending_polls: usize) -> Self {
        Self::Kore(Arc::new(KoreStandIn {
            pending_polls,
            erasures: Mutex::default(),
        }))
    }
}

impl KoreStandIn {
    fn answer(&self, method: &Method, path: &str, body: &[u8]) -> Response<Full<Bytes>> {
        let mut erasures = self.erasures.lock().unwrap_or_else(PoisonError::into_inner);
        if method == Method::DELETE && path.ends_with("/eraseUsersData") {
            let users: Vec<String> = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("userIds")?.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|u| {
                    u.as_str()
                        .or_else(|| u.get("channel_user_id")?.as_str())
                        .map(str::to_owned)
                })
                .collect();
            let id = format!("eud-{}", erasures.len() + 1);
            let answer = serde_json::json!({"requestId": id, "status": "in-progress"});
            erasures.insert(id, (users, 0));
            return json(StatusCode::OK, Bytes::from(answer.to_string()));
        }
        let Some(id) = path
            .rsplit_once("/eraseUsersData/status/")
            .map(|(_, id)| id)
        else {
            return json(
                StatusCode::NOT_FOUND,
                Bytes::from_static(VENDOR_FAILED.as_bytes()),
            );
        };
        let Some((users, asked)) = erasures.get_mut(id) else {
            return json(
                StatusCode::NOT_FOUND,
                Bytes::from_static(VENDOR_FAILED.as_bytes()),
            );
        };
        *asked += 1;
        let done = *asked > self.pending_polls;
        let response: Vec<serde_json::Value> = users
            .iter()
            .map(|user| {
                let status = match (done, user.starts_with("fail")) {
                    (false, _) => "IN_PROGRESS",
                    (true, false) => "SUCCESS",
                    (true, true) => "FAILED",
                };
                serde_json::json!({"userId": user, "status": status})
            })
            .collect();
        let answer = serde_json::json!({"requestId": id, "response": response});
        json(StatusCode::OK, Bytes::from(answer.to_string()))
    }
}

/// What a stand-in vendor has received; clones share one record.
#[derive(Debug, Clone)]
pub struct Recorder {
    count: Arc<AtomicUsize>,
    /// `None` when only counting (a load test keeps no copies).
    kept: Option<Arc<Mutex<Vec<Received>>>>,
}

impl Recorder {
    fn new(keep: bool) -> Self {
        Self {
            count: Arc::new(AtomicUsize::new(0)),
            kept: keep.then(Arc::default),
        }
    }

    /// How many requests have arrived.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// The requests that have arrived, oldest first; empty when the
    /// stand-in only counts ([`Builder::count_only`]).
    pub fn received(&self) -> Vec<Received> {
        self.kept.as_ref().map_or_else(Vec::new, |kept| {
            kept.lock().unwrap_or_else(PoisonError::into_inner).clone()
        })
    }

    fn record(&self, received: impl FnOnce() -> Received) {
        if let Some(kept) = &self.kept {
            kept.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(received());
        }
        self.count.fetch_add(1, Ordering::SeqCst);
    }
}

/// How a stand-in vendor is set up before it serves.
pub struct Builder {
    behaviour: Behaviour,
    tls: Option<tokio_rustls::TlsAcceptor>,
    keep: bool,
}

impl Builder {
    /// Serves TLS with this acceptor (its ALPN list picks h2 or HTTP/1.1).
    #[must_use]
    pub fn tls(mut self, acceptor: tokio_rustls::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Counts requests without keeping copies, for load measurements.
    #[must_use]
    pub fn count_only(mut self) -> Self {
        self.keep = false;
        self
    }

    /// Serves on `listener` from a task on the current tokio runtime.
    ///
    /// # Errors
    /// The listener has no local address.
    pub fn serve(self, listener: TcpListener) -> std::io::Result<StandIn> {
        let addr = listener.local_addr()?;
        let recorder = Recorder::new(self.keep);
        let tls = self.tls.is_some();
        let task = tokio::spawn(accept(
            listener,
            Arc::new(self.behaviour),
            self.tls,
            recorder.clone(),
        ));
        Ok(StandIn {
            addr,
            tls,
            recorder,
            task: Some(task),
        })
    }

    /// Serves on a fresh `127.0.0.1:0` listener.
    ///
    /// # Errors
    /// No loopback port can be bound.
    pub async fn bind(self) -> std::io::Result<StandIn> {
        self.serve(TcpListener::bind("127.0.0.1:0").await?)
    }
}

/// A running stand-in vendor; it stops serving (connections included) when
/// dropped.
#[derive(Debug)]
pub struct StandIn {
    addr: SocketAddr,
    tls: bool,
    recorder: Recorder,
    task: Option<JoinHandle<std::io::Error>>,
}

impl StandIn {
    /// A stand-in answering as `behaviour`, to be set up further.
    pub fn builder(behaviour: Behaviour) -> Builder {
        Builder {
            behaviour,
            tls: None,
            keep: true,
        }
    }

    /// A plain-HTTP stand-in answering as `behaviour` on `127.0.0.1:0`.
    ///
    /// # Errors
    /// No loopback port can be bound.
    pub async fn spawn(behaviour: Behaviour) -> std::io::Result<Self> {
        Self::builder(behaviour).bind().await
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL: `http://127.0.0.1:port`, or `https://localhost:port`
    /// with TLS (the name the dev server certificate is for).
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// What it has received.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The requests that have arrived, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.recorder.received()
    }

    /// How many requests have arrived.
    pub fn count(&self) -> usize {
        self.recorder.count()
    }

    /// Serves until accepting fails, and returns why.
    pub async fn until_failure(mut self) -> std::io::Error {
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(std::io::Error::other),
            None => std::io::Error::other("the stand-in is not serving"),
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The accept loop; its connections live in a `JoinSet`, so aborting the
/// loop ends them too (a hanging answer does not outlive its stand-in).
async fn accept(
    listener: TcpListener,
    behaviour: Arc<Behaviour>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    recorder: Recorder,
) -> std::io::Error {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => return error,
                };
                connections.spawn(connection(
                    stream,
                    behaviour.clone(),
                    tls.clone(),
                    recorder.clone(),
                ));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(
    stream: TcpStream,
    behaviour: Arc<Behaviour>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    recorder: Recorder,
) {
    // Latency measured through the stand-in should be the gateway's, not
    // Nagle's.
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let behaviour = behaviour.clone();
        let recorder = recorder.clone();
        async move { Ok::<_, Infallible>(answer(request, &behaviour, &recorder).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    match tls {
        Some(acceptor) => {
            if let Ok(stream) = acceptor.accept(stream).await {
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        }
        None => {
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    }
}

async fn answer(
    request: Request<Incoming>,
    behaviour: &Behaviour,
    recorder: &Recorder,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    // A body cut short is recorded as what arrived of it: nothing.
    let body = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    recorder.record(|| Received {
        method: parts.method.clone(),
        path_and_query,
        version: parts.version,
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    match behaviour {
        Behaviour::Echo => echo(&parts.method, parts.version, body),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(*delay).await;
            echo(&parts.method, parts.version, body)
        }
        Behaviour::Hang => std::future::pending().await,
        Behaviour::Json(text) => json(StatusCode::OK, Bytes::from_static(text.as_bytes())),
        Behaviour::Status(status) => json(*status, Bytes::from_static(VENDOR_FAILED.as_bytes())),
        Behaviour::Kore(kore) => kore.answer(&parts.method, parts.uri.path(), &body),
        Behaviour::ByPath { answers, delay } => {
            tokio::time::sleep(*delay).await;
            match answers.get(parts.uri.path()) {
                Some(text) => json(StatusCode::OK, Bytes::from(text.clone())),
                None => {
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = StatusCode::NOT_FOUND;
                    response
                }
            }
        }
    }
}

fn echo(method: &Method, version: Version, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert("x-vendor", HeaderValue::from_static("stand-in"));
    // A vendor's own request id, which the gateway's answer must replace
    // with the id the client knows the call by.
    headers.insert("x-request-id", HeaderValue::from_static("stand-in-own-id"));
    if let Ok(method) = HeaderValue::from_str(method.as_str()) {
        headers.insert("x-vendor-method", method);
    }
    if version == Version::HTTP_11 {
        headers.insert("connection", HeaderValue::from_static("x-vendor-hop"));
        headers.insert(
            "x-vendor-hop",
            HeaderValue::from_static("must-not-reach-the-client"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    }
    response
}

fn json(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
