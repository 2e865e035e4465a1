//! Stand-in vendors for the tests: the library's [`StandIn`] on
//! `127.0.0.1:0`, plain or with the dev server certificate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use erasure_gateway::certs::DevCerts;
use erasure_gateway::stand_in::{Behaviour, StandIn};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Starts a plain-HTTP stand-in vendor (HTTP/1.1 and h2c).
pub async fn spawn_vendor(behaviour: Behaviour) -> StandIn {
    StandIn::spawn(behaviour).await.unwrap()
}

/// Starts a TLS stand-in vendor with the dev server certificate (ALPN
/// offers h2 and http/1.1).
pub async fn spawn_tls_vendor(behaviour: Behaviour, certs: &DevCerts) -> StandIn {
    let chain = CertificateDer::pem_slice_iter(certs.server_cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(certs.server_key.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    StandIn::builder(behaviour)
        .tls(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
        .bind()
        .await
        .unwrap()
}

/// What a [`spawn_partial_vendor`] does after the first bytes of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterPartial {
    /// Closes the connection: the body breaks off.
    HangUp,
    /// Keeps the connection open: the body stays unfinished.
    Wait,
}

/// A vendor speaking raw HTTP/1.1 that answers each request with a head
/// promising 100 bytes and sends 7 of them, then does `after`. Returns its
/// URL and the number of requests it has read.
pub async fn spawn_partial_vendor(after: AfterPartial) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut read = Vec::new();
                while !read.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.extend_from_slice(&buf[..n]),
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
                    .await;
                match after {
                    AfterPartial::HangUp => {
                        let _ = stream.shutdown().await;
                    }
                    // Until the gateway lets go of the connection.
                    AfterPartial::Wait => {
                        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                }
            });
        }
    });
    (url, requests)
}

/// The dev certificates, written into a fresh temporary directory.
pub fn cert_dir(certs: &DevCerts, name: &str) -> tempfile::TempDir {
    let dir = super::temp_dir(name);
    certs.write(dir.path()).unwrap();
    dir
}
