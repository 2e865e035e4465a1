//! The vendor's own credential, sent in place of the caller's so that
//! callers never hold it: a key or token read once at start from an
//! environment variable or a file, or Kore.ai's JWT minted per call from the
//! app's client secret (HS256, `appId` = client id, short expiry). Never
//! logged, never in the trail (its `Debug` hides it, header values are
//! marked sensitive).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue};

use crate::config::{CredentialConfig, Mint, SecretSource};

/// A vendor credential, ready to send.
pub struct VendorCredential {
    secret: String,
    mint: Option<(Mint, String, Duration)>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for VendorCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorCredential")
            .field("secret", &"<hidden>")
            .field("mint", &self.mint.as_ref().map(|(m, id, ttl)| (m, id, ttl)))
            .finish_non_exhaustive()
    }
}

/// Why a vendor credential cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The environment variable is not set or empty.
    #[error("the environment variable `{0}` is not set (it holds the vendor credential)")]
    Env(String),
    /// The file cannot be read or is empty.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The secret or a minted token is not a header value.
    #[error("the vendor credential cannot be sent as a header value")]
    NotAHeader,
    /// A JWT could not be minted.
    #[error("the vendor JWT could not be minted: {0}")]
    Mint(String),
}

impl VendorCredential {
    /// Reads the secret `config` names.
    ///
    /// # Errors
    /// The variable or file is missing or empty, or the secret holds
    /// characters a header cannot.
    pub fn load(config: &CredentialConfig) -> Result<Self, CredentialError> {
        let secret = match &config.secret {
            SecretSource::Env(var) => std::env::var(var)
                .ok()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| CredentialError::Env(var.clone()))?,
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| CredentialError::File {
                    path: path.display().to_string(),
                    message: format!("cannot read the vendor credential ({e})"),
                })?;
                if text.trim().is_empty() {
                    return Err(CredentialError::File {
                        path: path.display().to_string(),
                        message: "the vendor credential file is empty".into(),
                    });
                }
                text
            }
        };
        let secret = secret.trim().to_owned();
        HeaderValue::from_str(&secret).map_err(|_| CredentialError::NotAHeader)?;
        Ok(Self {
            secret,
            mint: config.mint.clone(),
            headers: config.headers.clone(),
        })
    }

    /// The credential header's value: `scheme token` (or the token alone
    /// without a scheme), the token being the secret or a JWT minted now.
    ///
    /// # Errors
    /// A JWT cannot be minted.
    pub fn header_value(&self, scheme: Option<&str>) -> Result<HeaderValue, CredentialError> {
        let token = match &self.mint {
            None => self.secret.clone(),
            Some((Mint::KoreJwt, client_id, ttl)) => kore_jwt(&self.secret, client_id, *ttl)?,
        };
        let text = match scheme {
            Some(scheme) => format!("{scheme} {token}"),
            None => token,
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| CredentialError::NotAHeader)?;
        // Kept out of HTTP/2 header compression tables and debug output.
        value.set_sensitive(true);
        Ok(value)
    }

    /// Headers sent with the credential, in place of the caller's.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }
}

/// Kore.ai's JWT for an app: HS256 with the client secret over `appId` (the
/// client id), a `sub`, and a short `exp`.
fn kore_jwt(secret: &str, client_id: &str, ttl: Duration) -> Result<String, CredentialError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({
        "appId": client_id,
        "sub": "erasure-gateway",
        "iat": now,
        "exp": now + ttl.as_secs(),
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| CredentialError::Mint(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_kore_jwt_verifies_with_the_client_secret_and_expires_soon() {
        let credential = VendorCredential {
            secret: "client-secret-for-tests".into(),
            mint: Some((Mint::KoreJwt, "cs-app-1".into(), Duration::from_secs(60))),
            headers: Vec::new(),
        };
        let value = credential.header_value(None).unwrap();
        assert!(value.is_sensitive());
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        let token = jsonwebtoken::decode::<serde_json::Value>(
            value.to_str().unwrap(),
            &jsonwebtoken::DecodingKey::from_secret(b"client-secret-for-tests"),
            &validation,
        )
        .unwrap();
        assert_eq!(token.claims["appId"], "cs-app-1");
        let exp = token.claims["exp"].as_u64().unwrap();
        let iat = token.claims["iat"].as_u64().unwrap();
        assert_eq!(exp - iat, 60);
        assert!(!format!("{credential:?}").contains("client-secret"));
    }

    #[test]
    fn a_static_secret_goes_behind_the_scheme() {
        let credential = VendorCredential {
            secret: "seam_vendor_key".into(),
            mint: None,
            headers: Vec::new(),
        };
        assert_eq!(
            credential.header_value(Some("Bearer")).unwrap(),
            "Bearer seam_vendor_key"
        );
    }
}
