//! TLS material: the proxy's server configuration (with optional client
//! certificate verification) and each upstream's client configuration.
//!
//! Everything uses rustls with the `ring` provider. Errors name the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A TLS file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TlsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl TlsError {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file; an empty file is an error.
///
/// # Errors
/// The file is missing, unreadable, not PEM, or holds no certificate.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::new(path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::new(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn read_roots(path: &Path, roots: &mut RootCertStore) -> Result<(), TlsError> {
    for cert in read_certificates(path)? {
        roots
            .add(cert)
            .map_err(|e| TlsError::new(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(())
}

/// The proxy's certificate chain and key, read from their files and
/// swapped whole by [`ServerCert::reload`]: every handshake after a reload
/// presents the new pair; connections already open keep theirs.
#[derive(Debug)]
pub struct ServerCert {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
}

impl ServerCert {
    /// Reads the pair.
    ///
    /// # Errors
    /// A file is missing or malformed, or the key does not fit the
    /// certificate.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: ArcSwap::from_pointee(certified_key(cert, key)?),
        })
    }

    /// Reads the files again and, when they form a usable pair, serves it.
    ///
    /// # Errors
    /// As [`ServerCert::load`]; the pair in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.current
            .store(Arc::new(certified_key(&self.cert, &self.key)?));
        Ok(())
    }

    /// The certificate and key files.
    pub fn files(&self) -> [&Path; 2] {
        [&self.cert, &self.key]
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::new(key, format!("not a PEM private key: {e}")))?;
    CertifiedKey::from_der(chain, key_der, &provider())
        .map_err(|e| TlsError::new(key, format!("does not fit {}: {e}", cert.display())))
}

/// The proxy listener's TLS configuration, offering HTTP/2 and HTTP/1.1 by
/// ALPN, presenting the certificate `cert` serves (which reloads). With
/// `client_ca`, a client must present a certificate it signed.
///
/// # Errors
/// A file is missing or malformed.
pub fn server_config(
    cert: Arc<ServerCert>,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::new(&cert.cert, e.to_string()))?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            read_roots(ca, &mut roots)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::new(ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An upstream's TLS client configuration: the public web PKI roots, plus an
/// extra trust root when the upstream names one (`ca`).
///
/// # Errors
/// The extra root cannot be read.
pub fn client_config(extra_ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = extra_ca {
        read_roots(ca, &mut roots)?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::new(extra_ca.unwrap_or(Path::new("<tls>")), e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// A pooled HTTP/1.1 + HTTP/2 client for `http` and `https` URLs, trusting
/// the public web PKI roots plus `extra_ca`, with a TCP connect timeout,
/// keeping at most `max_idle` idle connections per host.
///
/// # Errors
/// The extra root cannot be read.
pub fn https_client<B>(
    extra_ca: Option<&Path>,
    connect_timeout: Duration,
    retry_canceled: bool,
    max_idle: usize,
) -> Result<Client<HttpsConnector<HttpConnector>, B>, TlsError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    let tls = client_config(extra_ca)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(max_idle)
        .retry_canceled_requests(retry_canceled)
        .build(connector))
}

/// The DNS, e-mail and URI subject alternative names of a certificate.
pub fn certificate_sans(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                Some((*s).to_owned())
            }
            _ => None,
        })
        .collect()
}

/// The subject of a verified client certificate, as an RFC 4514 string:
/// the last RDN first, RDNs joined by `,` and an RDN's attributes by `+`,
/// each value escaped (`CN=batch-eraser,O=Example`), so that no value can
/// pose as more attributes. `None` when an attribute's value is not a
/// string (such a certificate names no caller by subject).
pub fn certificate_subject(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let registry = x509_parser::objects::oid_registry();
    let mut rdns = Vec::new();
    for rdn in parsed.subject().iter_rdn() {
        let mut attributes = Vec::new();
        for attribute in rdn.iter() {
            let kind = attribute.attr_type();
            let name = x509_parser::objects::oid2abbrev(kind, registry)
                .map_or_else(|_| kind.to_id_string(), str::to_owned);
            attributes.push(format!(
                "{name}={}",
                rfc4514_escape(attribute.as_str().ok()?)
            ));
        }
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// An attribute value escaped as RFC 4514 (section 2.4) says.
fn rfc4514_escape(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn subject_of(names: &[(rcgen::DnType, &str)]) -> Option<String> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in names {
            params.distinguished_name.push(kind.clone(), *value);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        certificate_subject(cert.der())
    }

    #[test]
    fn a_subject_is_written_as_rfc_4514_and_no_value_poses_as_more_attributes() {
        use rcgen::DnType::{CommonName, OrganizationName};
        assert_eq!(
            subject_of(&[(OrganizationName, "Example"), (CommonName, "batch-eraser")]).unwrap(),
            "CN=batch-eraser,O=Example"
        );
        // One common name that reads like two attributes stays one.
        let posing = subject_of(&[(CommonName, "batch-eraser,O=Example")]).unwrap();
        assert_eq!(posing, "CN=batch-eraser\\,O=Example");
        let posing = subject_of(&[(CommonName, "batch-eraser, O=Example")]).unwrap();
        assert_ne!(posing, "CN=batch-eraser,O=Example");
        assert_eq!(
            subject_of(&[(CommonName, " #a+b;c<d>e\"\\ ")]).unwrap(),
            "CN=\\ #a\\+b\\;c\\<d\\>e\\\"\\\\\\ "
        );
        assert_eq!(
            subject_of(&[(CommonName, "#x")]).unwrap(),
            "CN=\\#x",
            "a leading # is escaped"
        );
    }
}
