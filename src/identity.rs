//! Who is calling: turns the credential of a request into a [`Caller`].
//!
//! A credential is either a static token, matched by its SHA-256 against the
//! `[[caller]]` entries, or (with `[jwt]` configured) a JWT whose signature and
//! time claims are verified and whose subject names the caller. Unknown or
//! missing credentials become the anonymous caller; a JWT that fails
//! verification is an error, so the gateway refuses the call (fail closed).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::digest::is_sha256_hex;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// The id of the caller whose credential is missing or unknown.
pub const ANONYMOUS: &str = "anonymous";

/// The largest `leeway` accepted: it absorbs clock skew, nothing more.
const MAX_LEEWAY: Duration = Duration::from_secs(3600);

/// The smallest HS256 secret, in bytes (RFC 7518 §3.2: at least the hash size).
const MIN_HS256_SECRET: usize = 32;

/// Why a caller could not be identified, or the identity setup is unusable.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A configuration value cannot be used.
    #[error("`{key}`: {message}")]
    Config {
        /// The dotted key, e.g. `caller[2].token_sha256` or `jwt.secret_file`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A key file named by `[jwt]` cannot be read or used.
    #[error("`{key}`: {path}: {message}")]
    KeyFile {
        /// The key that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never its content).
        message: String,
    },
    /// The request's JWT failed verification. The reason is a short fixed
    /// phrase ("bad signature", "expired", …) and never holds the token or
    /// its claims.
    #[error("invalid JWT: {0}")]
    InvalidJwt(&'static str),
}

/// One `[[caller]]` entry: a caller id, the SHA-256 of its token, its roles.
///
/// An entry without a token names the roles of the JWT subject with that id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerEntry {
    /// Caller id, the `Gateway::Caller` entity id.
    pub id: String,
    /// SHA-256 hex of the token or API key (never the token itself).
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// `Gateway::Role` ids the caller belongs to.
    #[serde(default)]
    pub roles: Vec<String>,
}

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

/// `[jwt]`: how JWT credentials are verified.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// `HS256`, `RS256` or `ES256`; tokens signed otherwise are refused.
    pub algorithm: JwtAlgorithm,
    /// HS256: file holding the shared secret (a trailing newline is trimmed).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// RS256/ES256: PEM file holding the public key.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
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

fn config_error(key: &str, message: impl Into<String>) -> IdentityError {
    IdentityError::Config {
        key: key.to_owned(),
        message: message.into(),
    }
}

impl JwtConfig {
    /// Checks the values without reading any file, so a config loader can
    /// refuse a bad `[jwt]` table at parse time.
    ///
    /// # Errors
    /// [`IdentityError::Config`] naming the key: the key file that does not
    /// fit the algorithm is missing or both are set, `subject_claim`,
    /// `issuer` or `audience` is empty, or `leeway` exceeds one hour.
    pub fn check(&self) -> Result<(), IdentityError> {
        match (self.algorithm, &self.secret_file, &self.public_key_file) {
            (JwtAlgorithm::Hs256, Some(_), None) => {}
            (JwtAlgorithm::Hs256, _, Some(_)) => {
                return Err(config_error(
                    "jwt.public_key_file",
                    "HS256 takes a shared secret: set secret_file instead",
                ))
            }
            (JwtAlgorithm::Hs256, None, None) => {
                return Err(config_error("jwt.secret_file", "HS256 needs secret_file"))
            }
            (_, None, Some(_)) => {}
            (algorithm, Some(_), _) => {
                return Err(config_error(
                    "jwt.secret_file",
                    format!("{algorithm} takes a public key: set public_key_file instead"),
                ))
            }
            (algorithm, None, None) => {
                return Err(config_error(
                    "jwt.public_key_file",
                    format!("{algorithm} needs public_key_file"),
                ))
            }
        }
        if self.subject_claim.is_empty() {
            return Err(config_error("jwt.subject_claim", "must not be empty"));
        }
        if self.issuer.as_deref() == Some("") {
            return Err(config_error("jwt.issuer", "must not be empty"));
        }
        if self.audience.as_deref() == Some("") {
            return Err(config_error("jwt.audience", "must not be empty"));
        }
        if self.leeway > MAX_LEEWAY {
            return Err(config_error(
                "jwt.leeway",
                "must be at most 1h (it absorbs clock skew)",
            ));
        }
        Ok(())
    }
}

/// How a caller was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerSource {
    /// No credential, or one that matched no `[[caller]]`.
    Anonymous,
    /// A token whose SHA-256 matched a `[[caller]]` entry.
    Token,
    /// A verified JWT; the id is its subject claim.
    Jwt,
    /// Named in a described request (`policy test`, `explain`,
    /// `/v1/authorize`), not identified from a credential.
    Given,
}

impl CallerSource {
    /// The snake_case name used in the trail.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Token => "token",
            Self::Jwt => "jwt",
            Self::Given => "given",
        }
    }
}

/// The identified principal of a request. It never holds the credential, so
/// it is safe to log, serialize and record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// The `Gateway::Caller` entity id.
    pub id: String,
    /// The `Gateway::Role` ids the caller belongs to.
    pub roles: Vec<String>,
    /// How the caller was identified.
    pub source: CallerSource,
}

impl Caller {
    /// The caller without a known credential: id `anonymous`, no roles.
    #[must_use]
    pub fn anonymous() -> Self {
        Self {
            id: ANONYMOUS.to_owned(),
            roles: Vec::new(),
            source: CallerSource::Anonymous,
        }
    }
}

/// The SHA-256 of a credential, as lowercase hex: the form `[[caller]]`
/// entries hold.
#[must_use]
pub fn token_sha256(token: &str) -> String {
    crate::digest::sha256_hex(token)
}

/// A configured JWT verifier.
struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    subject_claim: String,
    algorithm: JwtAlgorithm,
}

impl JwtVerifier {
    fn new(config: &JwtConfig) -> Result<Self, IdentityError> {
        config.check()?;
        let key = match (&config.secret_file, &config.public_key_file) {
            (Some(path), _) => read_secret(path)?,
            (None, Some(path)) => read_public_key(config.algorithm, path)?,
            (None, None) => return Err(config_error("jwt.secret_file", "no key file configured")),
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

    /// The verified subject of a token.
    fn verify(&self, token: &str) -> Result<String, IdentityError> {
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &self.key,
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

/// Identifies callers from their credentials: the `[[caller]]` table and the
/// optional JWT verifier, built once at start (and at every reload).
pub struct Identifier {
    callers: Vec<CallerEntry>,
    /// Lowercase hex SHA-256 of a token → index into `callers`.
    by_token: HashMap<String, usize>,
    /// Caller id → index into `callers`.
    by_id: HashMap<String, usize>,
    jwt: Option<JwtVerifier>,
}

impl fmt::Debug for Identifier {
    // Hand-written so that an HS256 secret can never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identifier")
            .field("callers", &self.callers.len())
            .field("jwt", &self.jwt.as_ref().map(|j| j.algorithm))
            .finish_non_exhaustive()
    }
}

impl Identifier {
    /// Builds the identifier, reading the `[jwt]` key file when one is
    /// configured.
    ///
    /// # Errors
    /// [`IdentityError::Config`] naming the key (`caller[i].id`,
    /// `caller[i].token_sha256`, `caller[i].roles`, `jwt.…`): an empty or
    /// reserved (`anonymous`) id, a token hash that is not 64 hex digits, a
    /// duplicate id or token hash, an empty role, or a bad `[jwt]` value.
    /// [`IdentityError::KeyFile`] naming the file: a key file that cannot be
    /// read or holds no usable key.
    pub fn new(callers: &[CallerEntry], jwt: Option<&JwtConfig>) -> Result<Self, IdentityError> {
        let mut by_token = HashMap::with_capacity(callers.len());
        let mut by_id = HashMap::with_capacity(callers.len());
        let mut entries = Vec::with_capacity(callers.len());
        for (i, caller) in callers.iter().enumerate() {
            if caller.id.is_empty() {
                return Err(config_error(
                    &format!("caller[{i}].id"),
                    "must not be empty",
                ));
            }
            if caller.id == ANONYMOUS {
                return Err(config_error(
                    &format!("caller[{i}].id"),
                    "`anonymous` is reserved for callers without a known credential",
                ));
            }
            if let Some(j) = by_id.insert(caller.id.clone(), i) {
                return Err(config_error(
                    &format!("caller[{i}].id"),
                    format!("duplicates caller[{j}].id"),
                ));
            }
            if caller.roles.iter().any(String::is_empty) {
                return Err(config_error(
                    &format!("caller[{i}].roles"),
                    "a role must not be empty",
                ));
            }
            let mut entry = caller.clone();
            if let Some(hash) = &caller.token_sha256 {
                // The value is not echoed: it may be a token pasted by mistake.
                if !is_sha256_hex(hash) {
                    return Err(config_error(
                        &format!("caller[{i}].token_sha256"),
                        "must be 64 hex digits (the SHA-256 of the token, not the token)",
                    ));
                }
                let hash = hash.to_ascii_lowercase();
                if let Some(j) = by_token.insert(hash.clone(), i) {
                    return Err(config_error(
                        &format!("caller[{i}].token_sha256"),
                        format!("duplicates caller[{j}].token_sha256"),
                    ));
                }
                entry.token_sha256 = Some(hash);
            }
            entries.push(entry);
        }
        let jwt = jwt.map(JwtVerifier::new).transpose()?;
        Ok(Self {
            callers: entries,
            by_token,
            by_id,
            jwt,
        })
    }

    /// Identifies the caller of a request from its credential.
    ///
    /// `token_is_jwt` says that the vendor profile classified the credential
    /// as a JWT (see [`crate::profile::looks_like_jwt`]). Without a token (or with an empty
    /// one) the caller is anonymous. With `[jwt]` configured, a JWT must
    /// verify and its subject is the caller id, with the roles of the
    /// `[[caller]]` entry of that id. Any other token is matched by its
    /// SHA-256; an unknown one is anonymous.
    ///
    /// # Errors
    /// [`IdentityError::InvalidJwt`] when a JWT fails verification: bad
    /// signature, another algorithm, expired, not yet valid, wrong or
    /// missing issuer or audience, no expiry, no usable subject, malformed.
    pub fn identify(
        &self,
        token: Option<&str>,
        token_is_jwt: bool,
    ) -> Result<Caller, IdentityError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(Caller::anonymous());
        };
        if let (true, Some(jwt)) = (token_is_jwt, &self.jwt) {
            let id = jwt.verify(token)?;
            let roles = self
                .by_id
                .get(&id)
                .and_then(|&i| self.callers.get(i))
                .map(|entry| entry.roles.clone())
                .unwrap_or_default();
            return Ok(Caller {
                id,
                roles,
                source: CallerSource::Jwt,
            });
        }
        let caller = self
            .by_token
            .get(&token_sha256(token))
            .and_then(|&i| self.callers.get(i))
            .map_or_else(Caller::anonymous, |entry| Caller {
                id: entry.id.clone(),
                roles: entry.roles.clone(),
                source: CallerSource::Token,
            });
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!";

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    /// A fresh file under the system temp dir, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(content: &[u8]) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "identity-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, content).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn entry(id: &str, token: Option<&str>, roles: &[&str]) -> CallerEntry {
        CallerEntry {
            id: id.to_owned(),
            token_sha256: token.map(token_sha256),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    fn jwt_config(value: serde_json::Value) -> JwtConfig {
        serde_json::from_value(value).unwrap()
    }

    fn hs256(file: &TempFile) -> JwtConfig {
        jwt_config(json!({"algorithm": "HS256", "secret_file": file.0}))
    }

    fn sign_hs256(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn secret_file() -> TempFile {
        TempFile::new(format!("{SECRET}\n").as_bytes())
    }

    fn identifier(jwt: &JwtConfig) -> Identifier {
        let callers = [
            entry("privacy-ops", Some("seam_live_token"), &["privacy-officer"]),
            entry("alice", None, &["bulk-eraser"]),
        ];
        Identifier::new(&callers, Some(jwt)).unwrap()
    }

    fn jwt_reason_of(identifier: &Identifier, token: &str) -> &'static str {
        match identifier.identify(Some(token), true) {
            Err(IdentityError::InvalidJwt(reason)) => reason,
            other => panic!("expected an invalid JWT, got {other:?}"),
        }
    }

    #[test]
    fn token_matches_its_caller() {
        let callers = [entry(
            "privacy-ops",
            Some("seam_live_token"),
            &["privacy-officer"],
        )];
        let identifier = Identifier::new(&callers, None).unwrap();
        let caller = identifier.identify(Some("seam_live_token"), false).unwrap();
        assert_eq!(
            caller,
            Caller {
                id: "privacy-ops".into(),
                roles: vec!["privacy-officer".into()],
                source: CallerSource::Token,
            }
        );
        let recorded = serde_json::to_string(&caller).unwrap();
        assert!(!recorded.contains("seam_live_token"), "{recorded}");
        assert!(recorded.contains(r#""source":"token""#), "{recorded}");
    }

    #[test]
    fn uppercase_hash_in_config_matches() {
        let callers = [CallerEntry {
            id: "ops".into(),
            token_sha256: Some(token_sha256("t0ken").to_ascii_uppercase()),
            roles: vec![],
        }];
        let identifier = Identifier::new(&callers, None).unwrap();
        assert_eq!(identifier.identify(Some("t0ken"), false).unwrap().id, "ops");
    }

    #[test]
    fn unknown_or_missing_token_is_anonymous() {
        let callers = [entry(
            "privacy-ops",
            Some("seam_live_token"),
            &["privacy-officer"],
        )];
        let identifier = Identifier::new(&callers, None).unwrap();
        assert_eq!(
            identifier.identify(Some("seam_other"), false).unwrap(),
            Caller::anonymous()
        );
        assert_eq!(
            identifier.identify(None, false).unwrap(),
            Caller::anonymous()
        );
        assert_eq!(
            identifier.identify(Some(""), false).unwrap(),
            Caller::anonymous()
        );
        // Without `[jwt]`, a JWT is an opaque token matched by its hash.
        let token = sign_hs256(&json!({"sub": "privacy-ops", "exp": now() + 60}));
        assert_eq!(
            identifier.identify(Some(&token), true).unwrap(),
            Caller::anonymous()
        );
    }

    #[test]
    fn entry_without_token_matches_no_token() {
        let identifier = Identifier::new(&[entry("alice", None, &["r"])], None).unwrap();
        assert_eq!(
            identifier.identify(Some("alice"), false).unwrap(),
            Caller::anonymous()
        );
    }

    #[test]
    fn hs256_good_token_names_the_subject_and_its_roles() {
        let file = secret_file();
        let identifier = identifier(&hs256(&file));
        let token = sign_hs256(&json!({"sub": "alice", "exp": now() + 300}));
        assert_eq!(
            identifier.identify(Some(&token), true).unwrap(),
            Caller {
                id: "alice".into(),
                roles: vec!["bulk-eraser".into()],
                source: CallerSource::Jwt,
            }
        );
        // A subject without a `[[caller]]` entry has no roles.
        let token = sign_hs256(&json!({"sub": "bob", "exp": now() + 300}));
        let caller = identifier.identify(Some(&token), true).unwrap();
        assert_eq!((caller.id.as_str(), caller.roles.len()), ("bob", 0));
        // A static token still works beside `[jwt]`.
        let caller = identifier.identify(Some("seam_live_token"), false).unwrap();
        assert_eq!(caller.source, CallerSource::Token);
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
    fn custom_subject_claim() {
        let file = secret_file();
        let config = jwt_config(json!({
            "algorithm": "HS256", "secret_file": file.0, "subject_claim": "email",
        }));
        let identifier = Identifier::new(
            &[entry("a@example.com", None, &["privacy-officer"])],
            Some(&config),
        )
        .unwrap();
        let token =
            sign_hs256(&json!({"sub": "ignored", "email": "a@example.com", "exp": now() + 60}));
        let caller = identifier.identify(Some(&token), true).unwrap();
        assert_eq!(caller.id, "a@example.com");
        assert_eq!(caller.roles, ["privacy-officer"]);
        let token = sign_hs256(&json!({"sub": "alice", "exp": now() + 60}));
        assert_eq!(jwt_reason_of(&identifier, &token), "missing subject");
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
        let err = Identifier::new(&[], Some(&config)).unwrap_err().to_string();
        assert!(err.contains("jwt.public_key_file"), "{err}");
        assert!(err.contains(&public.0.display().to_string()), "{err}");
    }

    #[test]
    fn key_file_errors_name_the_file() {
        let missing = std::env::temp_dir().join("identity-test-no-such-secret");
        let config = jwt_config(json!({"algorithm": "HS256", "secret_file": missing}));
        let err = Identifier::new(&[], Some(&config)).unwrap_err().to_string();
        assert!(
            err.contains("jwt.secret_file") && err.contains("identity-test-no-such-secret"),
            "{err}"
        );

        let short = TempFile::new(b"short\n");
        let err = Identifier::new(&[], Some(&hs256(&short)))
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
        let err = Identifier::new(&[], Some(&config)).unwrap_err().to_string();
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
            let err = jwt_config(value.clone()).check().unwrap_err().to_string();
            assert!(err.contains(key), "{value}: {err}");
        }
        let config = jwt_config(json!({"algorithm": "HS256", "secret_file": "s", "leeway": "5s"}));
        assert_eq!(config.leeway, Duration::from_secs(5));
        assert_eq!(config.subject_claim, "sub");
        let default = jwt_config(json!({"algorithm": "HS256", "secret_file": "s"}));
        assert_eq!(default.leeway, Duration::from_secs(30));

        let unknown =
            serde_json::from_value::<JwtConfig>(json!({"algorithm": "HS256", "secrte_file": "s"}))
                .unwrap_err()
                .to_string();
        assert!(unknown.contains("secrte_file"), "{unknown}");
        let bad_alg =
            serde_json::from_value::<JwtConfig>(json!({"algorithm": "none"})).unwrap_err();
        assert!(bad_alg.to_string().contains("HS256"), "{bad_alg}");
    }

    #[test]
    fn caller_errors_name_the_entry() {
        let cases: [(Vec<CallerEntry>, &str); 6] = [
            (vec![entry("", None, &[])], "caller[0].id"),
            (vec![entry("anonymous", None, &[])], "caller[0].id"),
            (
                vec![entry("a", None, &[]), entry("a", None, &[])],
                "caller[1].id",
            ),
            (
                vec![entry("a", Some("t"), &[]), entry("b", Some("t"), &[])],
                "caller[1].token_sha256",
            ),
            (
                vec![CallerEntry {
                    id: "a".into(),
                    token_sha256: Some("seam_live_token".into()),
                    roles: vec![],
                }],
                "caller[0].token_sha256",
            ),
            (vec![entry("a", None, &[""])], "caller[0].roles"),
        ];
        for (callers, key) in cases {
            let err = Identifier::new(&callers, None).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
            assert!(!err.contains("seam_live_token"), "{err}");
        }
        let duplicate = [entry("a", Some("t"), &[]), entry("b", Some("t"), &[])];
        let err = Identifier::new(&duplicate, None).unwrap_err().to_string();
        assert!(err.contains("caller[0]"), "{err}");
    }

    #[test]
    fn caller_entry_reads_like_the_config_table() {
        let entry: CallerEntry = serde_json::from_value(json!({"id": "alice"})).unwrap();
        assert_eq!((entry.token_sha256, entry.roles.len()), (None, 0));
        assert!(serde_json::from_value::<CallerEntry>(json!({"id": "a", "token": "x"})).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let file = secret_file();
        let shown = format!("{:?}", identifier(&hs256(&file)));
        assert!(!shown.contains(SECRET), "{shown}");
    }
}
