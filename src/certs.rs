//! Development certificates (`erasure-gateway certs dev`): a CA, a server
//! certificate for localhost, and a client certificate, made with rcgen.
//!
//! Tests use the same generator, so no key is ever committed.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// Certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// rcgen refused the parameters.
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("{path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// A development CA with a server and a client certificate it signed, in PEM.
#[derive(Clone)]
pub struct DevCerts {
    /// The CA certificate: trust it in clients, and use it as `client_ca`.
    pub ca_cert: String,
    /// Server certificate for `localhost`, `127.0.0.1` and `::1`.
    pub server_cert: String,
    /// The server certificate's private key.
    pub server_key: String,
    /// Client certificate (CN `erasure-gateway dev client`).
    pub client_cert: String,
    /// The client certificate's private key.
    pub client_key: String,
}

impl std::fmt::Debug for DevCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevCerts { .. }")
    }
}

impl DevCerts {
    /// Makes a fresh CA and the two certificates it signs.
    ///
    /// # Errors
    /// rcgen failed (it does not, for these fixed parameters).
    pub fn generate() -> Result<Self, CertsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "erasure-gateway dev CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key)?;

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server_params.signed_by(&server_key, &ca, &ca_key)?;

        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(Vec::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "erasure-gateway dev client");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &ca, &ca_key)?;

        Ok(Self {
            ca_cert: ca.pem(),
            server_cert: server.pem(),
            server_key: server_key.serialize_pem(),
            client_cert: client.pem(),
            client_key: client_key.serialize_pem(),
        })
    }

    /// Writes `ca.pem`, `gateway.pem`, `gateway-key.pem`, `client.pem` and
    /// `client-key.pem` into `dir` (created if missing); returns the paths.
    ///
    /// # Errors
    /// The directory or a file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, CertsError> {
        std::fs::create_dir_all(dir).map_err(|error| CertsError::Write {
            path: dir.to_owned(),
            error,
        })?;
        let files = [
            ("ca.pem", &self.ca_cert),
            ("gateway.pem", &self.server_cert),
            ("gateway-key.pem", &self.server_key),
            ("client.pem", &self.client_cert),
            ("client-key.pem", &self.client_key),
        ];
        let mut written = Vec::with_capacity(files.len());
        for (name, pem) in files {
            let path = dir.join(name);
            write_private(&path, pem, name.ends_with("-key.pem"))?;
            written.push(path);
        }
        Ok(written)
    }
}

fn write_private(path: &Path, contents: &str, private: bool) -> Result<(), CertsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(|error| CertsError::Write {
            path: path.to_owned(),
            error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls;

    #[test]
    fn dev_certificates_load_as_a_server_with_client_verification() {
        let dir = std::env::temp_dir().join(format!("eg-certs-{}", std::process::id()));
        let certs = DevCerts::generate().unwrap();
        let paths = certs.write(&dir).unwrap();
        assert_eq!(paths.len(), 5);
        let cert = tls::ServerCert::load(&dir.join("gateway.pem"), &dir.join("gateway-key.pem"))
            .expect("the generated pair fits");
        tls::server_config(std::sync::Arc::new(cert), Some(&dir.join("ca.pem")))
            .expect("generated certificates form a valid server config");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_key_file_given_as_certificate_is_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("eg-certs-bad-{}", std::process::id()));
        let certs = DevCerts::generate().unwrap();
        certs.write(&dir).unwrap();
        let err = tls::ServerCert::load(&dir.join("gateway-key.pem"), &dir.join("gateway-key.pem"))
            .unwrap_err();
        assert!(err.to_string().contains("gateway-key.pem"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
