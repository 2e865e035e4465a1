//! Entity data from an HTTP directory: `GET {url}/{type}/{id}` answers one
//! entity in Cedar's entity JSON format, or 404 when there is none.
//!
//! Answers (including "no such entity") are cached in moka with a TTL and a
//! size bound; concurrent misses for one entity share one fetch. Failures are
//! never cached: the caller refuses the erasure call (503) and the next call
//! asks the directory again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::ACCEPT;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use moka::future::Cache;
use serde::Deserialize;
use serde_json::Value;

/// The largest entity body read from the directory.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The longest `ttl` accepted: entity data older than that is not trusted.
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A cached answer: the entity's JSON, or `None` for "no such entity".
pub type CachedEntity = Option<Arc<Value>>;

/// Why the directory could not be set up or could not answer.
///
/// Lookup errors name the entity and say what went wrong; they never carry
/// response body content (only its length) nor any credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    /// A configuration value cannot be used.
    #[error("`{key}`: {message}")]
    Config {
        /// The dotted key, e.g. `directory.url`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The extra trust root (`ca`) cannot be used.
    #[error("`directory.ca`: {path}: {message}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The entity cannot be named in a directory URL.
    #[error("directory lookup of {entity}: {reason}")]
    Unaddressable {
        /// The entity, as `Type::"id"`.
        entity: String,
        /// Why.
        reason: &'static str,
    },
    /// The directory could not be reached (connect, TLS or protocol error).
    #[error("directory lookup of {entity}: unreachable: {message}")]
    Unreachable {
        /// The entity, as `Type::"id"`.
        entity: String,
        /// The client's error.
        message: String,
    },
    /// The directory did not answer in time.
    #[error("directory lookup of {entity}: no answer within {after:?}")]
    Timeout {
        /// The entity, as `Type::"id"`.
        entity: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The directory answered with a status other than 200 or 404.
    #[error("directory lookup of {entity}: status {status}")]
    Status {
        /// The entity, as `Type::"id"`.
        entity: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The directory answered 200 with a body that is not the entity asked for.
    #[error("directory lookup of {entity}: bad body ({length} bytes): {reason}")]
    BadBody {
        /// The entity, as `Type::"id"`.
        entity: String,
        /// The body's length in bytes (the limit, when it was larger).
        length: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// `[directory]`: where entity data comes from and how long it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// Base URL, `http://` or `https://`, optionally with a base path.
    pub url: String,
    /// How long an answer (entity or "no such entity") is cached.
    #[serde(default = "default_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// How many answers the cache holds at most.
    #[serde(default = "default_capacity")]
    pub capacity: u64,
    /// How long one lookup may take, from connect to the end of the body.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Extra PEM trust root for the directory's TLS certificate.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

fn default_ttl() -> Duration {
    Duration::from_secs(60)
}

fn default_capacity() -> u64 {
    10_000
}

fn default_timeout() -> Duration {
    Duration::from_secs(2)
}

fn config_error(key: &str, message: impl Into<String>) -> DirectoryError {
    DirectoryError::Config {
        key: key.to_owned(),
        message: message.into(),
    }
}

impl DirectoryConfig {
    /// Checks the values without touching the network or any file, so a
    /// config loader can refuse a bad `[directory]` table at parse time.
    ///
    /// # Errors
    /// [`DirectoryError::Config`] naming the key: `url` is not an `http(s)`
    /// URL with a host (or carries user info, a query or a fragment), `ttl`
    /// is zero or over a day, `capacity` or `timeout` is zero.
    pub fn check(&self) -> Result<(), DirectoryError> {
        base_url(&self.url)?;
        if self.ttl.is_zero() || self.ttl > MAX_TTL {
            return Err(config_error(
                "directory.ttl",
                "must be more than 0s and at most 24h",
            ));
        }
        if self.capacity == 0 {
            return Err(config_error("directory.capacity", "must be at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(config_error("directory.timeout", "must be more than 0s"));
        }
        Ok(())
    }
}

/// The base URL without a trailing slash, checked.
fn base_url(url: &str) -> Result<String, DirectoryError> {
    let invalid = |message: &str| config_error("directory.url", message);
    // `http::Uri` would take "host/path" as a path alone; insist on a scheme.
    let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid("must start with http:// or https://")),
    }
    let Some(authority) = uri.authority() else {
        return Err(invalid("needs a host"));
    };
    // Credentials in the URL would be neither sent nor kept out of logs.
    if authority.as_str().contains('@') {
        return Err(invalid("must not carry user info"));
    }
    if authority.host().is_empty() {
        return Err(invalid("needs a host"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(invalid("must not carry a query or a fragment"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Everything but RFC 3986 unreserved characters is encoded in a path
/// segment, so `::`, `/`, `@`, `%` and spaces cannot change the path.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

/// Whether a 200 body is the Cedar entity JSON of the requested entity.
fn check_entity(body: &Value, entity_type: &str, id: &str) -> Result<(), &'static str> {
    let Some(object) = body.as_object() else {
        return Err("not a JSON object");
    };
    let Some(uid) = object.get("uid") else {
        return Err("no uid");
    };
    // Cedar accepts the uid in both forms: `{"type","id"}` and the escaped
    // `{"__entity":{"type","id"}}`.
    let uid = uid.get("__entity").unwrap_or(uid);
    let (Some(Value::String(t)), Some(Value::String(i))) = (uid.get("type"), uid.get("id")) else {
        return Err("uid is not {\"type\":…,\"id\":…}");
    };
    if t != entity_type || i != id {
        return Err("uid is not the entity asked for");
    }
    if object.get("attrs").is_some_and(|a| !a.is_object()) {
        return Err("attrs is not an object");
    }
    if object.get("parents").is_some_and(|p| !p.is_array()) {
        return Err("parents is not an array");
    }
    Ok(())
}

/// The entity directory client and its cache.
pub struct Directory {
    base: String,
    timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    cache: Cache<(String, String), CachedEntity>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Builds the pooled client (HTTP/1.1 and h2, rustls with the `ring`
    /// provider, web PKI roots plus `ca`) and an empty cache.
    ///
    /// # Errors
    /// [`DirectoryError::Config`] for a value [`DirectoryConfig::check`]
    /// refuses; [`DirectoryError::Ca`] naming the file when `ca` cannot be
    /// read or holds no usable certificate.
    pub fn new(config: &DirectoryConfig) -> Result<Self, DirectoryError> {
        config.check()?;
        let base = base_url(&config.url)?;
        let client =
            crate::tls::https_client(config.ca.as_deref(), config.timeout, true).map_err(|e| {
                DirectoryError::Ca {
                    path: e.path,
                    message: e.message,
                }
            })?;
        let cache = Cache::builder()
            .max_capacity(config.capacity)
            .time_to_live(config.ttl)
            .build();
        Ok(Self {
            base,
            timeout: config.timeout,
            client,
            cache,
        })
    }

    /// The entity `entity_type::"id"` in Cedar's entity JSON format, or
    /// `None` when the directory has no such entity (404). Answers are
    /// cached for `ttl`; concurrent lookups of one uncached entity share a
    /// single request.
    ///
    /// # Errors
    /// Any failure, none of which is cached: an empty type or id, or an id
    /// of `.`/`..` ([`DirectoryError::Unaddressable`]); a connection error
    /// ([`DirectoryError::Unreachable`]); no complete answer within
    /// `timeout` ([`DirectoryError::Timeout`]); a status other than 200 or
    /// 404 ([`DirectoryError::Status`]); a 200 body that is not a JSON
    /// object naming the requested uid ([`DirectoryError::BadBody`]).
    pub async fn entity(
        &self,
        entity_type: &str,
        id: &str,
    ) -> Result<CachedEntity, DirectoryError> {
        let key = (entity_type.to_owned(), id.to_owned());
        self.cache
            .try_get_with(key, self.fetch(entity_type, id))
            .await
            .map_err(Arc::unwrap_or_clone)
    }

    fn uri(&self, entity_type: &str, id: &str) -> Result<Uri, DirectoryError> {
        let unaddressable = |reason| DirectoryError::Unaddressable {
            entity: entity_name(entity_type, id),
            reason,
        };
        if entity_type.is_empty() || id.is_empty() {
            return Err(unaddressable("empty entity type or id"));
        }
        // Dot segments would be resolved away by URL normalisation and name
        // another resource.
        if matches!(entity_type, "." | "..") || matches!(id, "." | "..") {
            return Err(unaddressable("entity type or id is a dot segment"));
        }
        let uri = format!(
            "{}/{}/{}",
            self.base,
            encode_segment(entity_type),
            encode_segment(id)
        );
        Uri::try_from(uri).map_err(|_| unaddressable("does not form a URL"))
    }

    async fn fetch(&self, entity_type: &str, id: &str) -> Result<CachedEntity, DirectoryError> {
        let uri = self.uri(entity_type, id)?;
        let entity = || entity_name(entity_type, id);
        let request = Request::get(uri)
            .header(ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|_| DirectoryError::Unaddressable {
                entity: entity(),
                reason: "does not form a request",
            })?;
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| DirectoryError::Unreachable {
                        entity: entity(),
                        message: crate::error_chain(&e),
                    })?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                // Read the (small) body so the connection returns to the pool;
                // its content does not matter.
                let _ = Limited::new(response.into_body(), MAX_BODY_BYTES)
                    .collect()
                    .await;
                return Ok(None);
            }
            if status != StatusCode::OK {
                return Err(DirectoryError::Status {
                    entity: entity(),
                    status: status.as_u16(),
                });
            }
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        DirectoryError::BadBody {
                            entity: entity(),
                            length: MAX_BODY_BYTES,
                            reason: "larger than the 1 MiB limit",
                        }
                    } else {
                        DirectoryError::Unreachable {
                            entity: entity(),
                            message: format!("reading the body: {e}"),
                        }
                    }
                })?
                .to_bytes();
            let bad_body = |reason| DirectoryError::BadBody {
                entity: entity(),
                length: body.len(),
                reason,
            };
            let value: Value = serde_json::from_slice(&body).map_err(|_| bad_body("not JSON"))?;
            check_entity(&value, entity_type, id).map_err(bad_body)?;
            Ok(Some(Arc::new(value)))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| DirectoryError::Timeout {
                entity: entity(),
                after: self.timeout,
            })?
    }
}

/// An entity as Cedar writes it: `Type::"id"`.
fn entity_name(entity_type: &str, id: &str) -> String {
    format!("{entity_type}::{id:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Response;
    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use serde_json::json;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::time::Instant;
    use tokio::net::TcpListener;
    use tokio::task::JoinSet;

    /// Every test is bounded by this.
    const TEST_BOUND: Duration = Duration::from_secs(10);

    /// What the test server answers for a raw (still encoded) request path.
    type Route = dyn Fn(&str) -> (StatusCode, String, Duration) + Send + Sync;

    /// A real hyper server on 127.0.0.1:0 that counts the paths it is asked.
    struct TestServer {
        addr: SocketAddr,
        hits: Arc<Mutex<Vec<String>>>,
        accept: tokio::task::JoinHandle<()>,
    }

    impl TestServer {
        async fn start(
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

        fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        fn hits(&self) -> Vec<String> {
            self.hits.lock().unwrap().clone()
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.accept.abort();
        }
    }

    fn config(url: &str) -> DirectoryConfig {
        serde_json::from_value(json!({ "url": url })).unwrap()
    }

    fn entity_body(entity_type: &str, id: &str) -> String {
        json!({
            "uid": {"type": entity_type, "id": id},
            "attrs": {"account_owner": true},
            "parents": [],
        })
        .to_string()
    }

    /// Answers `Kore::User::"alice"` and 404 for everything else.
    fn alice_route(path: &str) -> (StatusCode, String, Duration) {
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

    async fn bounded<T>(test: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(TEST_BOUND, test).await.unwrap()
    }

    #[tokio::test]
    async fn hit_returns_the_entity_and_is_cached() {
        bounded(async {
            let server = TestServer::start(alice_route).await;
            let directory = Directory::new(&config(&server.url())).unwrap();
            let entity = directory
                .entity("Kore::User", "alice")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(entity["attrs"]["account_owner"], json!(true));
            let again = directory
                .entity("Kore::User", "alice")
                .await
                .unwrap()
                .unwrap();
            assert!(Arc::ptr_eq(&entity, &again));
            assert_eq!(server.hits(), ["/Kore%3A%3AUser/alice"]);
        })
        .await;
    }

    #[tokio::test]
    async fn miss_is_none_and_cached() {
        bounded(async {
            let server = TestServer::start(alice_route).await;
            let directory = Directory::new(&config(&server.url())).unwrap();
            assert_eq!(directory.entity("Kore::User", "bob").await.unwrap(), None);
            assert_eq!(directory.entity("Kore::User", "bob").await.unwrap(), None);
            assert_eq!(server.hits().len(), 1);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_fetch() {
        bounded(async {
            let server = TestServer::start(|path| {
                let (status, body, _) = alice_route(path);
                (status, body, Duration::from_millis(200))
            })
            .await;
            let directory = Arc::new(Directory::new(&config(&server.url())).unwrap());
            let mut lookups = JoinSet::new();
            for _ in 0..50 {
                let directory = Arc::clone(&directory);
                lookups.spawn(async move { directory.entity("Kore::User", "alice").await });
            }
            let mut answered = 0;
            while let Some(result) = lookups.join_next().await {
                assert!(result.unwrap().unwrap().is_some());
                answered += 1;
            }
            assert_eq!(answered, 50);
            assert_eq!(server.hits().len(), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn server_down_fails_quickly() {
        bounded(async {
            let addr = {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                listener.local_addr().unwrap()
            };
            let directory = Directory::new(&config(&format!("http://{addr}"))).unwrap();
            let started = Instant::now();
            let err = directory.entity("Kore::User", "alice").await.unwrap_err();
            assert!(matches!(err, DirectoryError::Unreachable { .. }), "{err}");
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{:?}",
                started.elapsed()
            );
        })
        .await;
    }

    #[tokio::test]
    async fn hanging_server_times_out() {
        bounded(async {
            let server = TestServer::start(|_: &str| {
                (StatusCode::OK, String::new(), Duration::from_secs(30))
            })
            .await;
            let mut config = config(&server.url());
            config.timeout = Duration::from_millis(300);
            let directory = Directory::new(&config).unwrap();
            let started = Instant::now();
            let err = directory.entity("Kore::User", "alice").await.unwrap_err();
            assert!(matches!(err, DirectoryError::Timeout { .. }), "{err}");
            let elapsed = started.elapsed();
            assert!(
                elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
                "{elapsed:?}"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn wrong_uid_or_shape_is_refused() {
        bounded(async {
            let server = TestServer::start(|path: &str| {
                let body = match path {
                    "/Kore%3A%3AUser/alice" => entity_body("Kore::User", "mallory"),
                    "/Kore%3A%3ABot/alice" => entity_body("Kore::User", "alice"),
                    "/Kore%3A%3AUser/array" => "[]".into(),
                    "/Kore%3A%3AUser/garbage" => "secret-looking garbage".into(),
                    "/Kore%3A%3AUser/attrs" => json!({
                        "uid": {"type": "Kore::User", "id": "attrs"}, "attrs": [], "parents": []
                    })
                    .to_string(),
                    _ => json!({
                        "uid": {"__entity": {"type": "Kore::User", "id": "escaped"}},
                        "attrs": {}, "parents": []
                    })
                    .to_string(),
                };
                (StatusCode::OK, body, Duration::ZERO)
            })
            .await;
            let directory = Directory::new(&config(&server.url())).unwrap();
            for (entity_type, id) in [
                ("Kore::User", "alice"),
                ("Kore::Bot", "alice"),
                ("Kore::User", "array"),
                ("Kore::User", "garbage"),
                ("Kore::User", "attrs"),
            ] {
                let err = directory.entity(entity_type, id).await.unwrap_err();
                assert!(matches!(err, DirectoryError::BadBody { .. }), "{id}: {err}");
                assert!(!err.to_string().contains("secret-looking"), "{err}");
                assert!(!err.to_string().contains("mallory"), "{err}");
            }
            let escaped = directory.entity("Kore::User", "escaped").await.unwrap();
            assert!(escaped.is_some());
        })
        .await;
    }

    #[tokio::test]
    async fn server_error_is_not_cached() {
        bounded(async {
            let server = TestServer::start(|_: &str| {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "db down".into(),
                    Duration::ZERO,
                )
            })
            .await;
            let directory = Directory::new(&config(&server.url())).unwrap();
            for _ in 0..2 {
                let err = directory.entity("Kore::User", "alice").await.unwrap_err();
                assert!(
                    matches!(err, DirectoryError::Status { status: 500, .. }),
                    "{err}"
                );
                assert!(!err.to_string().contains("db down"), "{err}");
            }
            assert_eq!(server.hits().len(), 2);
        })
        .await;
    }

    #[tokio::test]
    async fn ids_are_encoded_under_the_base_path() {
        bounded(async {
            let id = "a/b@c d%2F..";
            let server = TestServer::start(move |path: &str| {
                if path == "/dir/Kore%3A%3AUser/a%2Fb%40c%20d%252F.." {
                    (
                        StatusCode::OK,
                        entity_body("Kore::User", id),
                        Duration::ZERO,
                    )
                } else {
                    (StatusCode::NOT_FOUND, String::new(), Duration::ZERO)
                }
            })
            .await;
            let directory = Directory::new(&config(&format!("{}/dir/", server.url()))).unwrap();
            let entity = directory.entity("Kore::User", id).await.unwrap();
            assert!(entity.is_some(), "{:?}", server.hits());
            for bad in ["", ".", ".."] {
                let err = directory.entity("Kore::User", bad).await.unwrap_err();
                assert!(matches!(err, DirectoryError::Unaddressable { .. }), "{err}");
            }
            assert_eq!(server.hits().len(), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn answers_expire_after_the_ttl() {
        bounded(async {
            let server = TestServer::start(alice_route).await;
            let mut config = config(&server.url());
            config.ttl = Duration::from_millis(200);
            let directory = Directory::new(&config).unwrap();
            assert!(directory
                .entity("Kore::User", "alice")
                .await
                .unwrap()
                .is_some());
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert!(directory
                .entity("Kore::User", "alice")
                .await
                .unwrap()
                .is_some());
            assert_eq!(server.hits().len(), 2);
        })
        .await;
    }

    #[test]
    fn config_defaults_and_errors_name_the_key() {
        let config = config("https://directory.internal/v1");
        assert_eq!(config.ttl, Duration::from_secs(60));
        assert_eq!(config.capacity, 10_000);
        assert_eq!(config.timeout, Duration::from_secs(2));
        assert_eq!(config.ca, None);
        config.check().unwrap();

        let unknown =
            serde_json::from_value::<DirectoryConfig>(json!({"url": "http://x", "tll": "1s"}))
                .unwrap_err()
                .to_string();
        assert!(unknown.contains("tll"), "{unknown}");

        let cases = [
            (json!({"url": "ftp://x"}), "directory.url"),
            (json!({"url": "directory.internal"}), "directory.url"),
            (json!({"url": "http://user:pw@x"}), "directory.url"),
            (json!({"url": "http://x/?q=1"}), "directory.url"),
            (json!({"url": "http://x", "ttl": "0s"}), "directory.ttl"),
            (json!({"url": "http://x", "ttl": "2days"}), "directory.ttl"),
            (
                json!({"url": "http://x", "capacity": 0}),
                "directory.capacity",
            ),
            (
                json!({"url": "http://x", "timeout": "0s"}),
                "directory.timeout",
            ),
        ];
        for (value, key) in cases {
            let config: DirectoryConfig = serde_json::from_value(value.clone()).unwrap();
            let err = Directory::new(&config).unwrap_err().to_string();
            assert!(err.contains(key), "{value}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn ca_file_is_read_and_errors_name_it() {
        let dir = std::env::temp_dir();
        let missing = dir.join(format!("directory-test-no-ca-{}", std::process::id()));
        let mut with_ca = config("https://directory.internal");
        with_ca.ca = Some(missing.clone());
        let err = Directory::new(&with_ca).unwrap_err().to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");

        let cert = rcgen::generate_simple_self_signed(vec!["directory.internal".into()]).unwrap();
        let good = dir.join(format!("directory-test-ca-{}.pem", std::process::id()));
        std::fs::write(&good, cert.cert.pem()).unwrap();
        with_ca.ca = Some(good.clone());
        let built = Directory::new(&with_ca);
        let _ = std::fs::remove_file(&good);
        built.unwrap();
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("Seam::Customer"), "Seam%3A%3ACustomer");
        assert_eq!(encode_segment("a.b-c_d~e"), "a.b-c_d~e");
        assert_eq!(encode_segment("é/?#"), "%C3%A9%2F%3F%23");
    }
}
