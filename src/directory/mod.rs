//! Entity data from an HTTP directory: `GET {url}/{type}/{id}` answers one
//! entity in Cedar's entity JSON format, or 404 when there is none.
//!
//! Answers (including "no such entity") are cached in moka with a TTL and a
//! size bound; concurrent misses for one entity share one fetch. Failures are
//! never cached: the caller refuses the erasure call (503) and the next call
//! asks the directory again.
//!
//! The settings are checked at load (`config`); the HTTP side is in
//! `client`, the cache here.

mod client;
mod config;
#[cfg(test)]
mod test_server;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::LookupLabels;
use serde_json::Value;

use client::EntityClient;
pub use config::{DirectoryConfig, DirectoryToml};

/// A cached answer: the entity's JSON, or `None` for "no such entity".
pub type CachedEntity = Option<Arc<Value>>;

/// Why the directory could not be set up or could not answer. (Unusable
/// settings are refused earlier, at load: see [`DirectoryConfig`].)
///
/// Lookup errors name the entity and say what went wrong; they never carry
/// response body content (only its length) nor any credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
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
        /// The entity's type (never its id).
        entity: String,
        /// Why.
        reason: &'static str,
    },
    /// The directory could not be reached (connect, TLS or protocol error).
    #[error("directory lookup of {entity}: unreachable: {message}")]
    Unreachable {
        /// The entity's type (never its id).
        entity: String,
        /// The client's error.
        message: String,
    },
    /// The directory did not answer in time.
    #[error("directory lookup of {entity}: no answer within {after:?}")]
    Timeout {
        /// The entity's type (never its id).
        entity: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The directory answered with a status other than 200 or 404.
    #[error("directory lookup of {entity}: status {status}")]
    Status {
        /// The entity's type (never its id).
        entity: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The directory answered 200 with a body that is not the entity asked for.
    #[error("directory lookup of {entity}: bad body ({length} bytes): {reason}")]
    BadBody {
        /// The entity's type (never its id).
        entity: String,
        /// The body's length in bytes (the limit, when it was larger).
        length: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The entity directory client and its cache.
pub struct Directory {
    client: EntityClient,
    cache: Cache<(String, String), CachedEntity>,
    lookups: Option<Family<LookupLabels, Counter>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("client", &self.client)
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Builds the pooled client (HTTP/1.1 and h2, rustls with the `ring`
    /// provider, web PKI roots plus `ca`) and an empty cache.
    ///
    /// # Errors
    /// [`DirectoryError::Ca`] naming the file when `ca` cannot be read or
    /// holds no usable certificate.
    pub fn new(config: &DirectoryConfig) -> Result<Self, DirectoryError> {
        let cache = Cache::builder()
            .max_capacity(config.capacity)
            .time_to_live(config.ttl)
            .build();
        Ok(Self {
            client: EntityClient::new(config)?,
            cache,
            lookups: None,
        })
    }

    /// Counts each lookup into `lookups` by result: `hit` (answered from
    /// the cache, or by a fetch another lookup made), `miss` or `error`.
    #[must_use]
    pub fn counted_in(mut self, lookups: Family<LookupLabels, Counter>) -> Self {
        self.lookups = Some(lookups);
        self
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
        let fetched = AtomicBool::new(false);
        let fetch = async {
            fetched.store(true, Ordering::Relaxed);
            self.client.fetch(entity_type, id).await
        };
        let answer = self
            .cache
            .try_get_with(key, fetch)
            .await
            .map_err(Arc::unwrap_or_clone);
        if let Some(lookups) = &self.lookups {
            let result = match (&answer, fetched.load(Ordering::Relaxed)) {
                (Err(_), _) => "error",
                (Ok(_), true) => "miss",
                (Ok(_), false) => "hit",
            };
            lookups.get_or_create(&LookupLabels { result }).inc();
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use serde_json::json;
    use tokio::task::JoinSet;

    use super::test_server::{alice_route, bounded, config, TestServer};
    use super::*;

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
}
