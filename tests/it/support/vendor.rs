//! Stand-in vendors for the tests: the library's [`StandIn`] on
//! `127.0.0.1:0`, plain or with the dev server certificate.

use std::sync::Arc;

use erasure_gateway::certs::DevCerts;
use erasure_gateway::stand_in::{Behaviour, StandIn};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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

/// The dev certificates, written into a fresh temporary directory.
pub fn cert_dir(certs: &DevCerts, name: &str) -> tempfile::TempDir {
    let dir = super::temp_dir(name);
    certs.write(dir.path()).unwrap();
    dir
}
