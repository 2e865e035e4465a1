//! A stand-in entity directory for the directory tests: a real hyper
//! server on 127.0.0.1:0 that records the paths it is asked, and the
//! settings and bodies the tests use with it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use super::{DirectoryConfig, DirectoryToml};
/// Every test is bounded by this.
const TEST_BOUND: Duration = Duration::from_secs(10);

/// What the test server answers for a raw (still encoded) request path.
type Route = dyn Fn(&str) -> (StatusCode, String, Duration) + Send + Sync;

/// A real hyper server on 127.0.0.1:0 that counts the paths it is asked.
pub(super) struct TestServer {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<String>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub(super) async fn start(
        route: impl Fn(&str) -> (StatusCode, String, Duration) + Send + Sync + 'static,
    ) -> Self {
        let route: Arc<Route> = Arc::new(route);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&hits);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let route = Arc::clone(&route);
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let path = request.uri().path().to_owned();
                        seen.lock().unwrap().push(path.clone());
                        let (status, body, delay) = route(&path);
                        async move {
                            tokio::time::sleep(delay).await;
                            let mut response = Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = status;
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                });
            }
        });
        Self { addr, hits, accept }
    }

    pub(super) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(super) fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The checked settings of a directory at `url`, defaults otherwise.
pub(super) fn config(url: &str) -> DirectoryConfig {
    let raw: DirectoryToml = serde_json::from_value(json!({ "url": url })).unwrap();
    DirectoryConfig::try_from(raw).unwrap()
}

pub(super) fn entity_body(entity_type: &str, id: &str) -> String {
    json!({
        "uid": {"type": entity_type, "id": id},
        "attrs": {"account_owner": true},
        "parents": [],
    })
    .to_string()
}

/// Answers `Kore::User::"alice"` and 404 for everything else.
pub(super) fn alice_route(path: &str) -> (StatusCode, String, Duration) {
    if path == "/Kore%3A%3AUser/alice" {
        (
            StatusCode::OK,
            entity_body("Kore::User", "alice"),
            Duration::ZERO,
        )
    } else {
        (StatusCode::NOT_FOUND, "{}".into(), Duration::ZERO)
    }
}

pub(super) async fn bounded<T>(test: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, test).await.unwrap()
}
