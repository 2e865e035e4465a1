//! The directory's HTTP side: one pooled client, the entity URL built from
//! the checked base URL, and the check that a 200 body is the entity asked
//! for. Nothing here is cached; [`Directory`](super::Directory) caches.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::ACCEPT;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde_json::Value;

use super::{CachedEntity, DirectoryConfig, DirectoryError};
use crate::setting::BaseUrl;

/// The largest entity body read from the directory.
const MAX_BODY_BYTES: usize = 1024 * 1024;

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

/// The pooled client of one directory.
pub(super) struct EntityClient {
    base: BaseUrl,
    timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl std::fmt::Debug for EntityClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityClient")
            .field("base", &self.base.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EntityClient {
    /// Builds the pooled client (HTTP/1.1 and h2, rustls with the `ring`
    /// provider, web PKI roots plus `ca`).
    ///
    /// # Errors
    /// [`DirectoryError::Ca`] naming the file when `ca` cannot be read or
    /// holds no usable certificate.
    pub(super) fn new(config: &DirectoryConfig) -> Result<Self, DirectoryError> {
        let client =
            crate::tls::https_client(config.ca.as_deref(), config.timeout, true, usize::MAX)
                .map_err(|e| DirectoryError::Ca {
                    path: e.path,
                    message: e.message,
                })?;
        Ok(Self {
            base: config.url.clone(),
            timeout: config.timeout,
            client,
        })
    }

    fn uri(&self, entity_type: &str, id: &str) -> Result<Uri, DirectoryError> {
        // Errors name the entity by its type only: they are logged, and the
        // id is the person being erased (the trail pseudonymises it; a log
        // line must not undo that).
        let unaddressable = |reason| DirectoryError::Unaddressable {
            entity: entity_type.to_owned(),
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
        let path = format!("/{}/{}", encode_segment(entity_type), encode_segment(id));
        self.base
            .join(&path, None)
            .map_err(|_| unaddressable("does not form a URL"))
    }

    /// One lookup, not cached: the entity's JSON, or `None` on 404.
    ///
    /// # Errors
    /// As [`Directory::entity`](super::Directory::entity).
    pub(super) async fn fetch(
        &self,
        entity_type: &str,
        id: &str,
    ) -> Result<CachedEntity, DirectoryError> {
        let uri = self.uri(entity_type, id)?;
        // By type only, as in `uri`.
        let entity = || entity_type.to_owned();
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::json;

    use super::super::test_server::{bounded, config, entity_body, TestServer};
    use super::*;

    #[tokio::test]
    async fn server_down_fails_quickly() {
        bounded(async {
            let addr = {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                listener.local_addr().unwrap()
            };
            let directory = EntityClient::new(&config(&format!("http://{addr}"))).unwrap();
            let started = Instant::now();
            let err = directory.fetch("Kore::User", "alice").await.unwrap_err();
            assert!(matches!(err, DirectoryError::Unreachable { .. }), "{err}");
            assert!(
                !err.to_string().contains("alice"),
                "the id is never in an error: {err}"
            );
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
            let directory = EntityClient::new(&config).unwrap();
            let started = Instant::now();
            let err = directory.fetch("Kore::User", "alice").await.unwrap_err();
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
            let directory = EntityClient::new(&config(&server.url())).unwrap();
            for (entity_type, id) in [
                ("Kore::User", "alice"),
                ("Kore::Bot", "alice"),
                ("Kore::User", "array"),
                ("Kore::User", "garbage"),
                ("Kore::User", "attrs"),
            ] {
                let err = directory.fetch(entity_type, id).await.unwrap_err();
                assert!(matches!(err, DirectoryError::BadBody { .. }), "{id}: {err}");
                assert!(!err.to_string().contains("secret-looking"), "{err}");
                assert!(!err.to_string().contains("mallory"), "{err}");
            }
            let escaped = directory.fetch("Kore::User", "escaped").await.unwrap();
            assert!(escaped.is_some());
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
            let directory = EntityClient::new(&config(&format!("{}/dir/", server.url()))).unwrap();
            let entity = directory.fetch("Kore::User", id).await.unwrap();
            assert!(entity.is_some(), "{:?}", server.hits());
            for bad in ["", ".", ".."] {
                let err = directory.fetch("Kore::User", bad).await.unwrap_err();
                assert!(matches!(err, DirectoryError::Unaddressable { .. }), "{err}");
            }
            assert_eq!(server.hits().len(), 1);
        })
        .await;
    }

    #[test]
    fn ca_file_is_read_and_errors_name_it() {
        let dir = std::env::temp_dir();
        let missing = dir.join(format!("directory-test-no-ca-{}", std::process::id()));
        let mut with_ca = config("https://directory.internal");
        with_ca.ca = Some(missing.clone());
        let err = EntityClient::new(&with_ca).unwrap_err().to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");

        let cert = rcgen::generate_simple_self_signed(vec!["directory.internal".into()]).unwrap();
        let good = dir.join(format!("directory-test-ca-{}.pem", std::process::id()));
        std::fs::write(&good, cert.cert.pem()).unwrap();
        with_ca.ca = Some(good.clone());
        let built = EntityClient::new(&with_ca);
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
