//! Caller JWTs verified against a JWKS URL (an identity provider's key set):
//! keys by `kid`, fetched on first use, again after `jwks_refresh`, and at
//! once (at most every few seconds) when a token names a key not yet seen,
//! so rotation needs no restart. A failed fetch keeps the keys held; with
//! none held, tokens do not verify (fail closed).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::DecodingKey;

use super::jwt::JwtAlgorithm;
use super::IdentityError;

/// The largest key set read.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A fetch (for an unknown `kid`, or after one failed) waits this long after the last:
/// tokens naming made-up keys cannot hammer the identity provider.
const UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(1);

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// `[jwt] jwks_url` and its settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksConfig {
    /// The key set's URL.
    pub url: http::Uri,
    /// How long fetched keys are used before they are fetched again.
    pub refresh: Duration,
    /// An extra trust root for the identity provider's TLS certificate.
    pub ca: Option<PathBuf>,
}

/// The keys of one JWKS URL, as last fetched.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, DecodingKey>,
    /// The only key, when the set holds exactly one (tokens without `kid`).
    only: Option<DecodingKey>,
    fetched: Option<Instant>,
}

pub(super) struct JwksKeys {
    config: JwksConfig,
    algorithm: JwtAlgorithm,
    client: Client<HttpsConnector<HttpConnector>, Empty<bytes::Bytes>>,
    keys: ArcSwap<KeySet>,
    /// When the last fetch was tried; held while fetching.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksKeys {
    pub(super) fn new(config: &JwksConfig, algorithm: JwtAlgorithm) -> Result<Self, IdentityError> {
        let client =
            crate::tls::https_client(config.ca.as_deref(), FETCH_TIMEOUT, true, usize::MAX)
                .map_err(|e| IdentityError::KeyFile {
                    key: "jwt.jwks_ca",
                    path: config.ca.clone().unwrap_or_default(),
                    message: e.to_string(),
                })?;
        Ok(Self {
            config: config.clone(),
            algorithm,
            client,
            keys: ArcSwap::from_pointee(KeySet::default()),
            last_attempt: tokio::sync::Mutex::new(None),
        })
    }

    /// The key a token's `kid` names (or the only key, for a token without
    /// one), from the keys held now.
    pub(super) fn key(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self.keys.load();
        match kid {
            Some(kid) => keys.by_kid.get(kid).cloned(),
            None => keys.only.clone(),
        }
    }

    /// Fetches the key set if it is stale or does not hold `kid`; after a
    /// fetch was tried, the next waits a few seconds (a made-up `kid` or a
    /// failing provider is not asked again at once). One fetch at a time:
    /// a call whose key is held does not wait for it (the keys held serve),
    /// and calls waiting for a missing key wait for that one fetch, not one
    /// each (a provider that never answers costs each at most one timeout).
    pub(super) async fn ensure(&self, kid: Option<&str>) {
        let needed = || {
            let keys = self.keys.load();
            let stale = keys
                .fetched
                .is_none_or(|t| t.elapsed() >= self.config.refresh);
            stale || self.key(kid).is_none()
        };
        if !needed() {
            return;
        }
        let mut last = if self.key(kid).is_some() {
            match self.last_attempt.try_lock() {
                Ok(last) => last,
                Err(_) => return,
            }
        } else {
            self.last_attempt.lock().await
        };
        // Another call may have fetched (or tried) while this one waited.
        if !needed() || last.is_some_and(|t| t.elapsed() < UNKNOWN_KID_COOLDOWN) {
            return;
        }
        let fetched = self.fetch().await;
        // The cooldown counts from when the attempt ended.
        *last = Some(Instant::now());
        match fetched {
            Ok(set) => {
                tracing::info!(url = %self.config.url, keys = set.by_kid.len(), "JWKS fetched");
                self.keys.store(Arc::new(set));
            }
            Err(e) => {
                tracing::warn!(url = %self.config.url, error = %e, "JWKS fetch failed; keeping the keys held");
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let exchange = async {
            let response = self
                .client
                .get(self.config.url.clone())
                .await
                .map_err(|e| crate::error_chain(&e))?;
            if !response.status().is_success() {
                return Err(format!("status {}", response.status()));
            }
            Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| e.to_string())
        };
        let body = tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .map_err(|_| "no answer in time".to_owned())??;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut by_kid = HashMap::new();
        let mut usable = Vec::new();
        for jwk in &set.keys {
            let fits = matches!(
                (&jwk.algorithm, self.algorithm),
                (AlgorithmParameters::RSA(_), JwtAlgorithm::Rs256)
                    | (AlgorithmParameters::EllipticCurve(_), JwtAlgorithm::Es256)
            );
            let named_alg_fits = jwk
                .common
                .key_algorithm
                .is_none_or(|alg| alg.to_string() == self.algorithm.to_string());
            if !fits || !named_alg_fits {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            if let Some(kid) = &jwk.common.key_id {
                by_kid.insert(kid.clone(), key.clone());
            }
            usable.push(key);
        }
        if usable.is_empty() {
            return Err(format!("no {} key in the set", self.algorithm));
        }
        let only = (usable.len() == 1).then(|| usable.remove(0));
        Ok(KeySet {
            by_kid,
            only,
            fetched: Some(Instant::now()),
        })
    }
}
