//! Forwarding to an upstream: the pooled client, the request rewrite (URI,
//! Host, hop-by-hop headers, `x-forwarded-*`) and the response clean-up.
//!
//! Bodies stream through untouched in both directions.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

mod credential;

pub use credential::{CredentialError, VendorCredential};

use crate::config::{BaseUrl, ProxyConfig, UpstreamConfig};
use crate::conn::ConnInfo;
use crate::request_id::X_REQUEST_ID;
use crate::response::{full, GatewayError};
use crate::tls::{self, TlsError};
use crate::wire::{forwarded_sha256, is_url_rewrite_header, Outbound};
use crate::Body;

/// An upstream that cannot be set up. (Its URL was parsed and checked when
/// the config was loaded.)
#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    /// Its `ca` file could not be used.
    #[error("upstream `{name}`: {error}")]
    Tls {
        /// The upstream's name.
        name: String,
        /// The TLS error, naming the file.
        error: TlsError,
    },
    /// Its vendor credential cannot be read.
    #[error("upstream `{name}`: credential: {error}")]
    Credential {
        /// The upstream's name.
        name: String,
        /// What is wrong.
        error: CredentialError,
    },
}

/// One upstream with its own connection pool and trust roots.
#[derive(Debug)]
pub struct Upstream {
    /// Name used in logs, metrics and the trail.
    pub name: String,
    url: BaseUrl,
    timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Body>,
    /// Erasure calls go through their own pool that never resends a
    /// request, even one hyper believes never reached the vendor.
    erasure_client: Client<HttpsConnector<HttpConnector>, Body>,
    /// The vendor's credential, sent in place of the caller's.
    credential: Option<VendorCredential>,
    /// One permit per request in flight (both pools), held until its
    /// response body ends: `upstream_max_connections`.
    slots: Arc<Semaphore>,
}

impl Upstream {
    /// Builds the upstream and its pooled client.
    ///
    /// # Errors
    /// The extra CA file cannot be used.
    pub fn new(config: &UpstreamConfig, proxy: &ProxyConfig) -> Result<Self, UpstreamSetupError> {
        let client = |retry_canceled| {
            // The pool races a new connection against one coming back;
            // the spares it ends up with are kept only up to the slots.
            tls::https_client(
                config.ca.as_deref(),
                proxy.connect_timeout,
                retry_canceled,
                proxy.upstream_max_connections,
            )
            .map_err(|error| UpstreamSetupError::Tls {
                name: config.name.clone(),
                error,
            })
        };
        let credential = config
            .credential
            .as_ref()
            .map(VendorCredential::load)
            .transpose()
            .map_err(|error| UpstreamSetupError::Credential {
                name: config.name.clone(),
                error,
            })?;
        Ok(Self {
            credential,
            name: config.name.clone(),
            url: config.url.clone(),
            timeout: proxy.upstream_timeout,
            client: client(true)?,
            erasure_client: client(false)?,
            slots: Arc::new(Semaphore::new(proxy.upstream_max_connections)),
        })
    }

    /// Where its calls go and as whom: its name (which picks the vendor
    /// credential sent in place of the caller's) and its base URL.
    pub fn destination(&self) -> String {
        format!("{} {}", self.name, self.url)
    }

    /// Its URL's path, prepended to every forwarded path (empty for none).
    pub fn base_path(&self) -> &str {
        self.url.base_path()
    }

    /// How long the upstream may take to answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The upstream URI for a routed path and the original query.
    ///
    /// # Errors
    /// The path and query do not form a valid URI.
    pub fn uri(&self, path: &str, query: Option<&str>) -> Result<Uri, GatewayError> {
        self.url
            .join(path, query)
            .map_err(|_| GatewayError::BadRequest)
    }

    /// Sends a request and waits (at most `upstream_timeout`, a wait for a
    /// free connection included) for the response head. The body streams;
    /// the request's connection slot is free once it ends or is dropped.
    ///
    /// # Errors
    /// Every slot stayed busy → busy (503, not sent); connection refused or
    /// failed → unreachable (502); no answer in time → timeout (504); the
    /// exchange failed later → failed (502).
    pub async fn send(
        &self,
        request: Request<Body>,
    ) -> Result<Response<UpstreamBody>, GatewayError> {
        self.send_on(&self.client, request).await
    }

    /// Sends a rebuilt erasure call on the pool that never retries.
    ///
    /// # Errors
    /// As [`Upstream::send`].
    pub async fn send_erasure(
        &self,
        request: Request<Body>,
    ) -> Result<Response<UpstreamBody>, GatewayError> {
        self.send_on(&self.erasure_client, request).await
    }

    async fn send_on(
        &self,
        client: &Client<HttpsConnector<HttpConnector>, Body>,
        request: Request<Body>,
    ) -> Result<Response<UpstreamBody>, GatewayError> {
        let deadline = Instant::now() + self.timeout;
        let slot = self.slot(deadline).await?;
        match tokio::time::timeout_at(deadline, client.request(request)).await {
            Err(_) => Err(GatewayError::UpstreamTimeout),
            Ok(Ok(response)) => Ok(response.map(|body| UpstreamBody { body, _slot: slot })),
            Ok(Err(e)) if e.is_connect() => {
                tracing::warn!(upstream = %self.name, error = %crate::error_chain(&e), "upstream connect failed");
                Err(GatewayError::UpstreamUnreachable)
            }
            Ok(Err(e)) => {
                tracing::warn!(upstream = %self.name, error = %crate::error_chain(&e), "upstream exchange failed");
                Err(GatewayError::UpstreamFailed)
            }
        }
    }

    /// A connection slot, waiting until `deadline` at most.
    async fn slot(&self, deadline: Instant) -> Result<OwnedSemaphorePermit, GatewayError> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        match tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            // Timed out (the semaphore is never closed).
            _ => {
                tracing::warn!(upstream = %self.name, "every upstream connection stayed busy for upstream_timeout; request not sent");
                Err(GatewayError::UpstreamBusy)
            }
        }
    }

    /// The vendor credential this upstream sends in place of the caller's.
    pub fn credential(&self) -> Option<&VendorCredential> {
        self.credential.as_ref()
    }

    /// The upstream request for a rebuilt erasure call, and its
    /// [`forwarded_sha256`]: the outbound headers plus Host,
    /// `x-request-id`, `x-forwarded-for` (the client's address only) and
    /// `x-forwarded-proto`; nothing of the client's request besides.
    ///
    /// # Errors
    /// The path does not form a valid URI.
    pub fn erasure_request(
        &self,
        outbound: Outbound,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Result<(Request<Body>, String), GatewayError> {
        let uri = self.uri(&outbound.path_and_query, None)?;
        let mut headers = outbound.headers;
        headers.insert(header::HOST, self.url.host_header().clone());
        headers.insert(&X_REQUEST_ID, request_id.clone());
        if let Ok(client) = HeaderValue::from_str(&conn.client_addr.ip().to_string()) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), client);
        }
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static(if conn.tls { "https" } else { "http" }),
        );
        if !outbound.body.is_empty() {
            headers.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(outbound.body.len()),
            );
        }
        let path_and_query = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let digest = forwarded_sha256(
            outbound.method.as_str(),
            path_and_query,
            &headers,
            &outbound.body,
        );
        let mut request = Request::new(full(outbound.body));
        *request.method_mut() = outbound.method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Ok((request, digest))
    }

    /// A `GET` of `path` made by the gateway itself (a status poll): Host
    /// and `x-request-id` set, no other header.
    ///
    /// # Errors
    /// The path does not form a valid URI.
    pub fn get(&self, path: &str, request_id: &HeaderValue) -> Result<Request<Body>, GatewayError> {
        let mut request = Request::new(full(bytes::Bytes::new()));
        *request.uri_mut() = self.uri(path, None)?;
        let headers = request.headers_mut();
        headers.insert(header::HOST, self.url.host_header().clone());
        headers.insert(&X_REQUEST_ID, request_id.clone());
        Ok(request)
    }

    /// Turns a client request into the upstream request: new URI, Host set to
    /// the upstream's, hop-by-hop and URL-rewrite headers removed,
    /// `x-forwarded-*` and `x-request-id` set. Method, headers and body are
    /// otherwise unchanged.
    ///
    /// # Errors
    /// The routed path does not form a valid URI.
    pub fn rewrite(
        &self,
        request: Request<Body>,
        path: &str,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Result<Request<Body>, GatewayError> {
        let (mut parts, body) = request.into_parts();
        let original_host = request_host(&parts.uri, &parts.headers).map(str::to_owned);
        parts.uri = self.uri(path, parts.uri.query())?;
        // The upstream connection picks its own protocol by ALPN.
        parts.version = Version::HTTP_11;
        let headers = &mut parts.headers;
        strip_hop_by_hop(headers);
        strip_url_rewrite(headers);
        headers.insert(header::HOST, self.url.host_header().clone());
        append_forwarded_for(headers, conn);
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static(if conn.tls { "https" } else { "http" }),
        );
        if let Some(host) = original_host.and_then(|h| HeaderValue::from_str(&h).ok()) {
            headers.insert(HeaderName::from_static("x-forwarded-host"), host);
        }
        headers.insert(&X_REQUEST_ID, request_id.clone());
        Ok(Request::from_parts(parts, body))
    }
}

/// An upstream response body: it keeps its request's connection slot until
/// it ends or is dropped.
#[derive(Debug)]
pub struct UpstreamBody {
    body: Incoming,
    _slot: OwnedSemaphorePermit,
}

impl hyper::body::Body for UpstreamBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The upstream's response, cleaned of hop-by-hop headers, body streamed.
pub fn relay_response(response: Response<UpstreamBody>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    relay_parts(parts, body.map_err(Into::into).boxed())
}

/// An upstream response head with the given body, cleaned of hop-by-hop
/// headers (a buffered body gets its own framing). The upstream's own
/// `x-request-id` is dropped: the request-id layer puts the gateway's on.
pub fn relay_parts(mut parts: http::response::Parts, body: Body) -> Response<Body> {
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(&X_REQUEST_ID);
    Response::from_parts(parts, body)
}

/// The host a client addressed: the URI authority (HTTP/2) or `Host`.
pub fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    uri.authority()
        .map(Authority::as_str)
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
}

/// Removes the headers that describe one connection, not the message
/// (RFC 9110 §7.6.1): `Connection` and every header it lists, and the fixed set.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

/// Removes every header a framework could read as the real path
/// ([`URL_REWRITE_HEADERS`](URL_REWRITE_HEADERS), under any
/// spelling folded onto one): the gateway classified the request line.
pub fn strip_url_rewrite(headers: &mut HeaderMap) {
    let rewrite: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_url_rewrite_header(name.as_str()))
        .cloned()
        .collect();
    for name in rewrite {
        headers.remove(name);
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, conn: &ConnInfo) {
    let name = HeaderName::from_static("x-forwarded-for");
    let client = conn.client_addr.ip().to_string();
    let joined = headers
        .get_all(&name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .chain(std::iter::once(client.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = HeaderValue::from_str(&joined) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str) -> Upstream {
        let config = UpstreamConfig {
            name: "t".into(),
            profile: None,
            url: url.parse().unwrap(),
            path_prefix: Some("/t".into()),
            host: None,
            ca: None,
            credential: None,
            track_completion: None,
        };
        Upstream::new(&config, &ProxyConfig::default()).unwrap()
    }

    fn conn() -> ConnInfo {
        ConnInfo {
            client_addr: "10.1.2.3:5555".parse().unwrap(),
            tls: true,
            client_cert: None,
            via: None,
        }
    }

    #[test]
    fn uri_joins_base_path_route_path_and_query() {
        let up = upstream("https://api.example.com/v7/");
        assert_eq!(
            up.uri("/customer/1", Some("a=1&a=2")).unwrap(),
            "https://api.example.com/v7/customer/1?a=1&a=2"
        );
        assert_eq!(up.uri("/", None).unwrap(), "https://api.example.com/v7/");
    }

    #[test]
    fn rewrite_strips_hop_by_hop_and_sets_forwarding_headers() {
        let up = upstream("http://127.0.0.1:9999");
        let request = Request::builder()
            .method("POST")
            .uri("/t/x?q=1")
            .header("host", "gw.local:8080")
            .header("connection", "keep-alive, x-secret-hop")
            .header("x-secret-hop", "1")
            .header("keep-alive", "timeout=5")
            .header("te", "trailers")
            .header("trailer", "x-t")
            .header("upgrade", "h2c")
            .header("proxy-authorization", "Basic xyz")
            .header("x-forwarded-for", "192.0.2.1")
            .header("authorization", "Bearer keep-me")
            .body(full("body"))
            .unwrap();
        let id = HeaderValue::from_static("rid");
        let out = up.rewrite(request, "/x", &conn(), &id).unwrap();
        let h = out.headers();
        for gone in [
            "connection",
            "x-secret-hop",
            "keep-alive",
            "te",
            "trailer",
            "upgrade",
            "proxy-authorization",
        ] {
            assert!(!h.contains_key(gone), "{gone} should be stripped");
        }
        assert_eq!(h["host"], "127.0.0.1:9999");
        assert_eq!(h["x-forwarded-for"], "192.0.2.1, 10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "gw.local:8080");
        assert_eq!(h["x-request-id"], "rid");
        assert_eq!(h["authorization"], "Bearer keep-me");
        assert_eq!(out.uri(), "http://127.0.0.1:9999/x?q=1");
        assert_eq!(out.method(), "POST");
    }
}
