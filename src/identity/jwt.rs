//! JWT credentials: the `[jwt]` table, checked at load into a [`JwtConfig`],
//! and the verifier built from it, which reads its key file once at start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use super::jwks::{JwksConfig, JwksKeys};
use super::{IdentityError, ANONYMOUS};
use crate::setting::InvalidValue;

/// The largest `leeway` accepted: it absorbs clock skew, nothing more.
const MAX_LEEWAY: Duration = Duration::from_secs(3600);

/// The smallest HS256 secret, in bytes (RFC 7518 §3.2: at least the hash size).
const MIN_HS256_SECRET: usize = 32;

/// The JWT signature algorithms the gateway verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256 and a shared secret (`secret_file`).
    #[serde(rename = "HS256")]
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`public_key_file`).
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256 (`public_key_file`).
    #[serde(rename = "ES256")]
    Es256,
}

impl JwtAlgorithm {
    fn as_jsonwebtoken(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        })
    }
}

/// `[jwt]` as written: how JWT credentials are verified.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtToml {
    /// `HS256`, `RS256` or `ES256`; tokens signed otherwise are refused.
    pub algorithm: JwtAlgorithm,
    /// HS256: file holding the shared secret (a trailing newline is trimmed).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// RS256/ES256: PEM file holding the public key.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// RS256/ES256: the identity provider's key set (JWKS) instead of a key
    /// file; keys are chosen by the token's `kid` and follow rotation.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How long fetched JWKS keys are used before they are fetched again.
    #[serde(default = "default_jwks_refresh", with = "humantime_serde")]
    pub jwks_refresh: Duration,
    /// An extra trust root for the JWKS URL's TLS certificate.
    #[serde(default)]
    pub jwks_ca: Option<PathBuf>,
    /// The claim that holds the caller id.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// When set, the `iss` claim must be present and equal it.
    #[serde(default)]
    pub issuer: Option<String>,
    /// When set, the `aud` claim must be present and contain it.
    #[serde(default)]
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (whole seconds count).
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
}

fn default_subject_claim() -> String {
    "sub".to_owned()
}

fn default_leeway() -> Duration {
    Duration::from_secs(30)
}

fn default_jwks_refresh() -> Duration {
    Duration::from_secs(300)
}

/// The key a JWT is verified with, as the algorithm needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyFile {
    /// HS256: the file holding the shared secret.
    Secret(PathBuf),
    /// RS256 or ES256: the PEM file holding the public key.
    PublicKey(PathBuf),
    /// RS256 or ES256: keys fetched from a JWKS URL.
    Jwks(JwksConfig),
}

/// `[jwt]`, checked: one key file that fits the algorithm, non-empty claim
/// names, a leeway of at most an hour. The key file is read later, when the
/// [`Identifier`](super::Identifier) is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    algorithm: JwtAlgorithm,
    key_file: KeyFile,
    subject_claim: String,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Duration,
}

impl TryFrom<JwtToml> for JwtConfig {
    type Error = InvalidValue;

    /// Checks the values without reading any file.
    ///
    /// # Errors
    /// The key naming what is wrong: the key file that does not fit the
    /// algorithm is missing or both are set, `subject_claim`, `issuer` or
    /// `audience` is empty, or `leeway` exceeds one hour.
    fn try_from(raw: JwtToml) -> Result<Self, InvalidValue> {
        if let Some(url) = &raw.jwks_url {
            if raw.secret_file.is_some() || raw.public_key_file.is_some() {
                return Err(InvalidValue::new(
                    "jwt.jwks_url",
                    "takes the place of secret_file and public_key_file: set one of them",
                ));
            }
            if raw.algorithm == JwtAlgorithm::Hs256 {
                return Err(InvalidValue::new(
                    "jwt.jwks_url",
                    "a key set holds public keys: use RS256 or ES256",
                ));
            }
            let parsed: http::Uri = url
                .parse()
                .ok()
                .filter(|u: &http::Uri| {
                    matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
                })
                .ok_or_else(|| {
                    InvalidValue::new("jwt.jwks_url", "must be an http:// or https:// URL")
                })?;
            if parsed.authority().is_some_and(|a| a.as_str().contains('@')) {
                // Never repeated: it may hold a password.
                return Err(InvalidValue::new(
                    "jwt.jwks_url",
                    "must not carry user info (it would be logged with the URL)",
                ));
            }
            let loopback = parsed.host().is_some_and(|host| {
                host == "localhost"
                    || host
                        .trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            });
            if parsed.scheme_str() == Some("http") && !loopback {
                return Err(InvalidValue::new(
                    "jwt.jwks_url",
                    "must be https:// (keys fetched over plain HTTP can be swapped by anyone on the path); http:// only on loopback",
                ));
            }
            if raw.jwks_refresh.as_secs() < 10 {
                return Err(InvalidValue::new(
                    "jwt.jwks_refresh",
                    "must be at least 10s",
                ));
            }
            return finish(
                raw.clone(),
                KeyFile::Jwks(JwksConfig {
                    url: parsed,
                    refresh: raw.jwks_refresh,
                    ca: raw.jwks_ca.clone(),
                }),
            );
        }
        let key_file = match (
            raw.algorithm,
            raw.secret_file.clone(),
            raw.public_key_file.clone(),
        ) {
            (JwtAlgorithm::Hs256, Some(path), None) => KeyFile::Secret(path),
            (JwtAlgorithm::Hs256, _, Some(_)) => {
                return Err(InvalidValue::new(
                    "jwt.public_key_file",
                    "HS256 takes a shared secret: set secret_file instead",
                ))
            }
            (JwtAlgorithm::Hs256, None, None) => {
                return Err(InvalidValue::new(
                    "jwt.secret_file",
                    "HS256 needs secret_file",
                ))
            }
            (_, None, Some(path)) => KeyFile::PublicKey(path),
            (algorithm, Some(_), _) => {
                return Err(InvalidValue::new(
                    "jwt.secret_file",
                    format!("{algorithm} takes a public key: set public_key_file instead"),
                ))
            }
            (algorithm, None, None) => {
                return Err(InvalidValue::new(
                    "jwt.public_key_file",
                    format!("{algorithm} needs public_key_file"),
                ))
            }
        };
        finish(raw, key_file)
    }
}

/// The checks every `[jwt]` shares, once its key source is known.
fn finish(raw: JwtToml, key_file: KeyFile) -> Result<JwtConfig, InvalidValue> {
    {
        if raw.subject_claim.is_empty() {
            return Err(InvalidValue::new("jwt.subject_claim", "must not be empty"));
        }
        if raw.issuer.as_deref() == Some("") {
            return Err(InvalidValue::new("jwt.issuer", "must not be empty"));
        }
        if raw.audience.as_deref() == Some("") {
            return Err(InvalidValue::new("jwt.audience", "must not be empty"));
        }
        if raw.leeway > MAX_LEEWAY {
            return Err(InvalidValue::new(
                "jwt.leeway",
                "must be at most 1h (it absorbs clock skew)",
            ));
        }
        Ok(JwtConfig {
            algorithm: raw.algorithm,
            key_file,
            subject_claim: raw.subject_claim,
            issuer: raw.issuer,
            audience: raw.audience,
            leeway: raw.leeway,
        })
    }
}

/// Where a verifier's key comes from.
enum Key {
    /// One key, read at start.
    Fixed(DecodingKey),
    /// The keys of a JWKS URL, by `kid`.
    Jwks(Box<JwksKeys>),
}

/// A configured JWT verifier.
pub(super) struct JwtVerifier {
    key: Key,
    validation: Validation,
    subject_claim: String,
    algorithm: JwtAlgorithm,
}

impl JwtVerifier {
    /// Reads the key file and fixes the validation rules.
    pub(super) fn new(config: &JwtConfig) -> Result<Self, IdentityError> {
        let key = match &config.key_file {
            KeyFile::Secret(path) => Key::Fixed(read_secret(path)?),
            KeyFile::PublicKey(path) => Key::Fixed(read_public_key(config.algorithm, path)?),
            KeyFile::Jwks(jwks) => Key::Jwks(Box::new(JwksKeys::new(jwks, config.algorithm)?)),
        };
        // Only the configured algorithm: a token naming another one (`none`,
        // or HS256 against an RSA public key) is refused before its claims
        // are read.
        let mut validation = Validation::new(config.algorithm.as_jsonwebtoken());
        validation.leeway = config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // jsonwebtoken accepts a token that lacks `iss`/`aud` even when they
        // are configured; requiring them closes that gap.
        let mut required = vec!["exp"];
        match &config.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Without a configured audience any `aud` is accepted; otherwise
            // jsonwebtoken would refuse every token that carries one.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(Self {
            key,
            validation,
            subject_claim: config.subject_claim.clone(),
            algorithm: config.algorithm,
        })
    }

    /// The algorithm tokens must be signed with.
    pub(super) fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// With a JWKS, makes sure the key `token` names is held (fetching
    /// the set when it is stale or lacks it); nothing to do otherwise.
    pub(super) async fn prepare(&self, token: &str) {
        if let Key::Jwks(keys) = &self.key {
            let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
            keys.ensure(kid.as_deref()).await;
        }
    }

    /// The verified subject of a token.
    pub(super) fn verify(&self, token: &str) -> Result<String, IdentityError> {
        let jwks_key;
        let key = match &self.key {
            Key::Fixed(key) => key,
            Key::Jwks(keys) => {
                let header = jsonwebtoken::decode_header(token)
                    .map_err(|e| IdentityError::InvalidJwt(jwt_reason(e.kind())))?;
                jwks_key = keys
                    .key(header.kid.as_deref())
                    .ok_or(IdentityError::InvalidJwt("unknown signing key"))?;
                &jwks_key
            }
        };
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            key,
            &self.validation,
        )
        .map_err(|e| IdentityError::InvalidJwt(jwt_reason(e.kind())))?;
        match data.claims.get(&self.subject_claim) {
            Some(serde_json::Value::String(subject)) if subject == ANONYMOUS => {
                Err(IdentityError::InvalidJwt("reserved subject"))
            }
            Some(serde_json::Value::String(subject)) if !subject.is_empty() => Ok(subject.clone()),
            _ => Err(IdentityError::InvalidJwt("missing subject")),
        }
    }
}

/// A fixed phrase for a verification failure: never the token or its claims.
fn jwt_reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not yet valid",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "wrong algorithm",
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => "missing expiry",
            "iss" => "missing issuer",
            "aud" => "missing audience",
            _ => "missing claim",
        },
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "malformed token",
        _ => "unverifiable token",
    }
}

fn read_key_file(key: &'static str, path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|e| IdentityError::KeyFile {
        key,
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn read_secret(path: &Path) -> Result<DecodingKey, IdentityError> {
    let mut secret = read_key_file("jwt.secret_file", path)?;
    // Editors and `echo` add a final newline that is not part of the secret.
    if secret.last() == Some(&b'\n') {
        secret.pop();
        if secret.last() == Some(&b'\r') {
            secret.pop();
        }
    }
    if secret.len() < MIN_HS256_SECRET {
        return Err(IdentityError::KeyFile {
            key: "jwt.secret_file",
            path: path.to_owned(),
            message: format!(
                "holds {} bytes; an HS256 secret needs at least {MIN_HS256_SECRET} (RFC 7518 §3.2)",
                secret.len()
            ),
        });
    }
    Ok(DecodingKey::from_secret(&secret))
}

fn read_public_key(algorithm: JwtAlgorithm, path: &Path) -> Result<DecodingKey, IdentityError> {
    let pem = read_key_file("jwt.public_key_file", path)?;
    let key = match algorithm {
        JwtAlgorithm::Rs256 => DecodingKey::from_rsa_pem(&pem),
        JwtAlgorithm::Es256 | JwtAlgorithm::Hs256 => DecodingKey::from_ec_pem(&pem),
    };
    key.map_err(|_| IdentityError::KeyFile {
        key: "jwt.public_key_file",
        path: path.to_owned(),
        message: format!("not a PEM {algorithm} public key"),
    })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::super::fixtures::{
        hs256, identifier, jwt_config, jwt_reason_of, jwt_toml, now, secret_file, sign_hs256,
        TempFile,
    };
    use super::super::{CallerSource, CallerTable, Identifier};
    use super::*;

    #[test]
    fn a_jwks_url_takes_the_place_of_key_files_for_public_key_algorithms_only() {
        let parse = |text: &str| {
            JwtConfig::try_from(toml::from_str::<JwtToml>(text).unwrap()).map_err(|e| e.key)
        };
        assert!(parse("algorithm = \"ES256\"\njwks_url = \"https://idp.example/jwks\"").is_ok());
        for local in [
            "http://127.0.0.1:8000/jwks",
            "http://localhost/jwks",
            "http://[::1]/jwks",
        ] {
            let text = format!("algorithm = \"ES256\"\njwks_url = \"{local}\"");
            assert!(parse(&text).is_ok(), "{local}");
        }
        for (text, key) in [
            ("algorithm = \"HS256\"\njwks_url = \"https://idp/jwks\"", "jwt.jwks_url"),
            (
                "algorithm = \"RS256\"\njwks_url = \"https://idp/jwks\"\npublic_key_file = \"k.pem\"",
                "jwt.jwks_url",
            ),
            ("algorithm = \"RS256\"\njwks_url = \"ftp://idp/jwks\"", "jwt.jwks_url"),
            ("algorithm = \"RS256\"\njwks_url = \"http://idp/jwks\"", "jwt.jwks_url"),
            (
                "algorithm = \"RS256\"\njwks_url = \"https://u:p@idp/jwks\"",
                "jwt.jwks_url",
            ),
            (
                "algorithm = \"RS256\"\njwks_url = \"https://idp/jwks\"\njwks_refresh = \"1s\"",
                "jwt.jwks_refresh",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err(), key, "{text}");
        }
    }

    #[test]
    fn hs256_bad_signature_is_refused() {
        let file = secret_file();
        let identifier = identifier(&hs256(&file));
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": "alice", "exp": now() + 300}),
            &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
        )
        .unwrap();
        assert_eq!(jwt_reason_of(&identifier, &forged), "bad signature");
        let err = identifier
            .identify(Some(&forged), true)
            .unwrap_err()
            .to_string();
        assert!(!err.contains(&forged) && !err.contains("alice"), "{err}");
    }

    #[test]
    fn hs256_time_claims_are_checked_with_leeway() {
        let file = secret_file();
        let identifier = identifier(&hs256(&file));
        let expired = sign_hs256(&json!({"sub": "alice", "exp": now() - 120}));
        assert_eq!(jwt_reason_of(&identifier, &expired), "expired");
        let early = sign_hs256(&json!({"sub": "alice", "exp": now() + 600, "nbf": now() + 300}));
        assert_eq!(jwt_reason_of(&identifier, &early), "not yet valid");
        // Within the default 30 s leeway both are accepted.
        let skewed = sign_hs256(&json!({"sub": "alice", "exp": now() - 10, "nbf": now() + 10}));
        assert_eq!(
            identifier.identify(Some(&skewed), true).unwrap().id,
            "alice"
        );
        let no_exp = sign_hs256(&json!({"sub": "alice"}));
        assert_eq!(jwt_reason_of(&identifier, &no_exp), "missing expiry");
    }

    #[test]
    fn hs256_issuer_and_audience_are_checked_when_configured() {
        let file = secret_file();
        let config = jwt_config(json!({
            "algorithm": "HS256", "secret_file": file.0,
            "issuer": "https://idp.example", "audience": "erasure-gateway",
        }));
        let identifier = identifier(&config);
        let exp = now() + 300;
        let good = sign_hs256(&json!({
            "sub": "alice", "exp": exp, "iss": "https://idp.example", "aud": ["x", "erasure-gateway"],
        }));
        assert_eq!(identifier.identify(Some(&good), true).unwrap().id, "alice");
        let wrong_iss = sign_hs256(&json!({
            "sub": "alice", "exp": exp, "iss": "https://evil.example", "aud": "erasure-gateway",
        }));
        assert_eq!(jwt_reason_of(&identifier, &wrong_iss), "wrong issuer");
        let wrong_aud = sign_hs256(&json!({
            "sub": "alice", "exp": exp, "iss": "https://idp.example", "aud": "other",
        }));
        assert_eq!(jwt_reason_of(&identifier, &wrong_aud), "wrong audience");
        let no_iss = sign_hs256(&json!({"sub": "alice", "exp": exp, "aud": "erasure-gateway"}));
        assert_eq!(jwt_reason_of(&identifier, &no_iss), "missing issuer");
        let no_aud = sign_hs256(&json!({"sub": "alice", "exp": exp, "iss": "https://idp.example"}));
        assert_eq!(jwt_reason_of(&identifier, &no_aud), "missing audience");
    }

    #[test]
    fn unconfigured_audience_accepts_any() {
        let file = secret_file();
        let identifier = identifier(&hs256(&file));
        let token = sign_hs256(&json!({"sub": "alice", "exp": now() + 300, "aud": "whatever"}));
        assert_eq!(identifier.identify(Some(&token), true).unwrap().id, "alice");
    }

    #[test]
    fn hs256_missing_or_unusable_subject_is_refused() {
        let file = secret_file();
        let identifier = identifier(&hs256(&file));
        let exp = now() + 300;
        for claims in [
            json!({"exp": exp}),
            json!({"exp": exp, "sub": ""}),
            json!({"exp": exp, "sub": 42}),
        ] {
            assert_eq!(
                jwt_reason_of(&identifier, &sign_hs256(&claims)),
                "missing subject"
            );
        }
        let anonymous = sign_hs256(&json!({"exp": exp, "sub": "anonymous"}));
        assert_eq!(jwt_reason_of(&identifier, &anonymous), "reserved subject");
        assert_eq!(jwt_reason_of(&identifier, "not.a.jwt"), "malformed token");
    }

    #[test]
    fn es256_good_and_bad() {
        let signer = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let public = TempFile::new(signer.public_key_pem().as_bytes());
        let config = jwt_config(json!({"algorithm": "ES256", "public_key_file": public.0}));
        let identifier = identifier(&config);
        let sign = |key: &rcgen::KeyPair, claims: serde_json::Value| {
            let key = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
            jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap()
        };
        let good = sign(&signer, json!({"sub": "alice", "exp": now() + 60}));
        let caller = identifier.identify(Some(&good), true).unwrap();
        assert_eq!(
            (caller.id.as_str(), caller.source),
            ("alice", CallerSource::Jwt)
        );
        let forged = sign(&other, json!({"sub": "alice", "exp": now() + 60}));
        assert_eq!(jwt_reason_of(&identifier, &forged), "bad signature");
        // An HS256 token is refused whatever its key: only ES256 is accepted.
        let confused = sign_hs256(&json!({"sub": "alice", "exp": now() + 60}));
        assert_eq!(jwt_reason_of(&identifier, &confused), "wrong algorithm");
    }

    #[test]
    fn rs256_refuses_an_ec_key_file_naming_it() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let public = TempFile::new(pair.public_key_pem().as_bytes());
        let config = jwt_config(json!({"algorithm": "RS256", "public_key_file": public.0}));
        let err = Identifier::new(&CallerTable::default(), Some(&config))
            .unwrap_err()
            .to_string();
        assert!(err.contains("jwt.public_key_file"), "{err}");
        assert!(err.contains(&public.0.display().to_string()), "{err}");
    }

    #[test]
    fn key_file_errors_name_the_file() {
        let missing = std::env::temp_dir().join("identity-test-no-such-secret");
        let config = jwt_config(json!({"algorithm": "HS256", "secret_file": missing}));
        let err = Identifier::new(&CallerTable::default(), Some(&config))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("jwt.secret_file") && err.contains("identity-test-no-such-secret"),
            "{err}"
        );

        let short = TempFile::new(b"short\n");
        let err = Identifier::new(&CallerTable::default(), Some(&hs256(&short)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&short.0.display().to_string()) && err.contains("at least 32"),
            "{err}"
        );
        assert!(!err.contains("short\n"), "{err}");

        let garbage =
            TempFile::new(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n");
        let config = jwt_config(json!({"algorithm": "ES256", "public_key_file": garbage.0}));
        let err = Identifier::new(&CallerTable::default(), Some(&config))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&garbage.0.display().to_string()), "{err}");
    }

    #[test]
    fn jwt_config_errors_name_the_key() {
        let cases = [
            (json!({"algorithm": "HS256"}), "jwt.secret_file"),
            (
                json!({"algorithm": "HS256", "secret_file": "s", "public_key_file": "p"}),
                "jwt.public_key_file",
            ),
            (json!({"algorithm": "ES256"}), "jwt.public_key_file"),
            (
                json!({"algorithm": "RS256", "secret_file": "s"}),
                "jwt.secret_file",
            ),
            (
                json!({"algorithm": "HS256", "secret_file": "s", "subject_claim": ""}),
                "jwt.subject_claim",
            ),
            (
                json!({"algorithm": "HS256", "secret_file": "s", "issuer": ""}),
                "jwt.issuer",
            ),
            (
                json!({"algorithm": "HS256", "secret_file": "s", "audience": ""}),
                "jwt.audience",
            ),
            (
                json!({"algorithm": "HS256", "secret_file": "s", "leeway": "2h"}),
                "jwt.leeway",
            ),
        ];
        for (value, key) in cases {
            let err = JwtConfig::try_from(jwt_toml(value.clone()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{value}: {err}");
        }
        let config = jwt_toml(json!({"algorithm": "HS256", "secret_file": "s", "leeway": "5s"}));
        assert_eq!(config.leeway, Duration::from_secs(5));
        assert_eq!(config.subject_claim, "sub");
        let default = jwt_toml(json!({"algorithm": "HS256", "secret_file": "s"}));
        assert_eq!(default.leeway, Duration::from_secs(30));

        let unknown =
            serde_json::from_value::<JwtToml>(json!({"algorithm": "HS256", "secrte_file": "s"}))
                .unwrap_err()
                .to_string();
        assert!(unknown.contains("secrte_file"), "{unknown}");
        let bad_alg = serde_json::from_value::<JwtToml>(json!({"algorithm": "none"})).unwrap_err();
        assert!(bad_alg.to_string().contains("HS256"), "{bad_alg}");
    }
}
