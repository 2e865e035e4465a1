//! HTTP clients for the tests and the request helpers built on them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use erasure_gateway::certs::DevCerts;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The `content-type` of a JSON body, as a header pair.
pub const JSON: (&str, &str) = ("content-type", "application/json");

/// A plain HTTP/1.1 client.
pub fn http1_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 client with prior knowledge (h2c).
pub fn h2c_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A TLS client trusting the dev CA, optionally presenting the dev client
/// certificate; ALPN offers h2 and http/1.1.
pub fn tls_client(
    certs: &DevCerts,
    with_client_cert: bool,
) -> Client<HttpsConnector<HttpConnector>, Full<Bytes>> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_client_config(certs, with_client_cert))
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// The rustls side of [`tls_client`].
fn tls_client_config(certs: &DevCerts, with_client_cert: bool) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(certs.ca_cert.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    if with_client_cert {
        let chain = CertificateDer::pem_slice_iter(certs.client_cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(certs.client_key.as_bytes()).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    }
}

/// Whether a TLS listener at `addr` (`127.0.0.1:port`, serving the dev
/// certificate for `localhost`) refuses a client without a certificate: an
/// HTTP/1.1 request over a raw TLS stream gets an error or the end of the
/// stream, and no answer. (Through a pooled client, TLS 1.3's late refusal
/// can read as a request canceled before it was sent, which the pool
/// retries on a new connection, and so on.)
pub async fn refused_without_certificate(certs: &DevCerts, addr: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_client_config(certs, false)));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    // The first bytes of an answer, or none: the handshake, the write or
    // the read failed, or the stream ended.
    let exchange = async {
        let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
            return Vec::new();
        };
        let Ok(mut tls) = connector.connect(name, tcp).await else {
            return Vec::new();
        };
        if tls
            .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .is_err()
        {
            return Vec::new();
        }
        let mut answer = vec![0u8; 1024];
        match tls.read(&mut answer).await {
            Ok(n) => answer.truncate(n),
            Err(_) => answer.clear(),
        }
        answer
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .expect("an answer or a refusal within 20s")
        .is_empty()
}

/// Sends a request and collects the whole response.
pub async fn send<C>(
    client: &Client<C, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(http::response::Parts, Bytes), hyper_util::client::legacy::Error>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let response = tokio::time::timeout(Duration::from_secs(20), client.request(request))
        .await
        .expect("response within 20s")?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("whole body").to_bytes();
    Ok((parts, body))
}

/// `GET url` over HTTP/1.1; the whole answer.
pub async fn get(url: &str) -> (http::response::Parts, Bytes) {
    send(&http1_client(), request("GET", url, ""))
        .await
        .unwrap()
}

/// A request with a body.
pub fn request(method: &str, url: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(body.into()))
        .unwrap()
}

/// Sends `method url` with `headers` (appended in order, so a name may
/// repeat) and `body` over HTTP/1.1; the answer's head, and its body as
/// JSON (`Null` when it is not JSON).
pub async fn call(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl AsRef<[u8]>,
) -> (http::response::Parts, serde_json::Value) {
    let mut req = request(method, url, Bytes::copy_from_slice(body.as_ref()));
    for (name, value) in headers {
        req.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let (parts, body) = send(&http1_client(), req).await.unwrap();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (parts, json)
}

/// An `authorization` value carrying `token`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
