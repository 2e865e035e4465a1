//! The `[[caller]]` table, checked at load into a [`CallerTable`], and the
//! [`Identifier`] that turns a request's credential into a [`Caller`] with it
//! and the optional JWT verifier.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::jwt::JwtVerifier;
use super::{IdentityError, JwtConfig, ANONYMOUS};
use crate::conn::ClientCert;
use crate::digest::is_sha256_hex;
use crate::setting::{InvalidValue, SHA256_HEX_EXPECTED};

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
    /// A verified client certificate with exactly this subject (RFC 4514,
    /// `CN=…, O=…`) identifies this caller when no known credential does.
    #[serde(default)]
    pub cert_subject: Option<String>,
    /// …or one with this subject alternative name (DNS, e-mail or URI).
    #[serde(default)]
    pub cert_san: Option<String>,
}

/// The `[[caller]]` table, checked: ids non-empty, unique and not
/// `anonymous`; roles non-empty; token hashes 64 hex digits, unique, and
/// held in lowercase, the form [`token_sha256`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerTable {
    entries: Vec<CallerEntry>,
    /// Lowercase hex SHA-256 of a token → index into `entries`.
    by_token: HashMap<String, usize>,
    /// Caller id → index into `entries`.
    by_id: HashMap<String, usize>,
    /// Certificate subject or SAN → index into `entries`.
    by_cert: HashMap<String, usize>,
}

impl CallerTable {
    /// How many callers the table holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no caller.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn by_token(&self, hash: &str) -> Option<&CallerEntry> {
        self.by_token.get(hash).and_then(|&i| self.entries.get(i))
    }

    fn by_id(&self, id: &str) -> Option<&CallerEntry> {
        self.by_id.get(id).and_then(|&i| self.entries.get(i))
    }

    /// The caller a verified certificate names: by subject, else by SAN.
    fn by_cert(&self, cert: &ClientCert) -> Option<&CallerEntry> {
        std::iter::once(format!("subject\0{}", cert.subject))
            .chain(cert.sans.iter().map(|san| format!("san\0{san}")))
            .find_map(|key| self.by_cert.get(&key))
            .and_then(|&i| self.entries.get(i))
    }
}

impl TryFrom<Vec<CallerEntry>> for CallerTable {
    type Error = InvalidValue;

    /// Checks the entries in order.
    ///
    /// # Errors
    /// The key naming the entry (`caller[i].id`, `caller[i].token_sha256`,
    /// `caller[i].roles`): an empty or reserved (`anonymous`) id, a token
    /// hash that is not 64 hex digits, a duplicate id or token hash, an
    /// empty role.
    fn try_from(callers: Vec<CallerEntry>) -> Result<Self, InvalidValue> {
        let mut by_token = HashMap::with_capacity(callers.len());
        let mut by_id = HashMap::with_capacity(callers.len());
        let mut by_cert = HashMap::new();
        let mut entries = Vec::with_capacity(callers.len());
        for (i, mut caller) in callers.into_iter().enumerate() {
            let invalid = |field: &str, message: String| {
                InvalidValue::new(format!("caller[{i}].{field}"), message)
            };
            if caller.id.is_empty() {
                return Err(invalid("id", "must not be empty".into()));
            }
            if caller.id == ANONYMOUS {
                return Err(invalid(
                    "id",
                    "`anonymous` is reserved for callers without a known credential".into(),
                ));
            }
            if let Some(j) = by_id.insert(caller.id.clone(), i) {
                return Err(invalid("id", format!("duplicates caller[{j}].id")));
            }
            if caller.roles.iter().any(String::is_empty) {
                return Err(invalid("roles", "a role must not be empty".into()));
            }
            if let Some(hash) = &caller.token_sha256 {
                // The value is not echoed: it may be a token pasted by mistake.
                if !is_sha256_hex(hash) {
                    return Err(invalid("token_sha256", SHA256_HEX_EXPECTED.into()));
                }
                let hash = hash.to_ascii_lowercase();
                if let Some(j) = by_token.insert(hash.clone(), i) {
                    return Err(invalid(
                        "token_sha256",
                        format!("duplicates caller[{j}].token_sha256"),
                    ));
                }
                caller.token_sha256 = Some(hash);
            }
            let certs = [
                ("cert_subject", "subject", &caller.cert_subject),
                ("cert_san", "san", &caller.cert_san),
            ];
            for (field, kind, value) in certs {
                let Some(value) = value else { continue };
                if value.trim().is_empty() {
                    return Err(invalid(field, "must not be empty".into()));
                }
                if let Some(j) = by_cert.insert(format!("{kind}\0{value}"), i) {
                    return Err(invalid(field, format!("duplicates caller[{j}].{field}")));
                }
            }
            entries.push(caller);
        }
        Ok(Self {
            entries,
            by_token,
            by_id,
            by_cert,
        })
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
    /// A verified client certificate matched `cert_subject` or `cert_san`.
    Certificate,
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
            Self::Certificate => "certificate",
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

/// Identifies callers from their credentials: the `[[caller]]` table and the
/// optional JWT verifier, built once at start (and at every reload).
pub struct Identifier {
    callers: CallerTable,
    jwt: Option<JwtVerifier>,
}

impl fmt::Debug for Identifier {
    // Hand-written so that an HS256 secret can never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identifier")
            .field("callers", &self.callers.len())
            .field("jwt", &self.jwt.as_ref().map(JwtVerifier::algorithm))
            .finish_non_exhaustive()
    }
}

impl Identifier {
    /// Builds the identifier from the checked caller table, reading the
    /// `[jwt]` key file when one is configured.
    ///
    /// # Errors
    /// [`IdentityError::KeyFile`] naming the file: a key file that cannot be
    /// read or holds no usable key.
    pub fn new(callers: &CallerTable, jwt: Option<&JwtConfig>) -> Result<Self, IdentityError> {
        Ok(Self {
            callers: callers.clone(),
            jwt: jwt.map(JwtVerifier::new).transpose()?,
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
            let entry = self.callers.by_id(&id);
            // A JWT names only a caller without a token or certificate of
            // its own: else whoever can get a JWT issued for that subject
            // would act as (and with the roles of) the token's holder.
            if entry.is_some_and(|e| {
                e.token_sha256.is_some() || e.cert_subject.is_some() || e.cert_san.is_some()
            }) {
                return Err(IdentityError::InvalidJwt(
                    "its subject is a caller that signs in with a token or certificate, not a JWT",
                ));
            }
            let roles = entry.map(|entry| entry.roles.clone()).unwrap_or_default();
            return Ok(Caller {
                id,
                roles,
                source: CallerSource::Jwt,
            });
        }
        let caller =
            self.callers
                .by_token(&token_sha256(token))
                .map_or_else(Caller::anonymous, |entry| Caller {
                    id: entry.id.clone(),
                    roles: entry.roles.clone(),
                    source: CallerSource::Token,
                });
        Ok(caller)
    }
}

impl Identifier {
    /// Before [`identify`](Self::identify): with a JWKS, fetches the key
    /// set when it is stale or lacks the key a JWT names (bounded in time;
    /// the keys held stay in use when the fetch fails).
    pub async fn prepare(&self, token: Option<&str>, token_is_jwt: bool) {
        if let (true, Some(jwt), Some(token)) = (token_is_jwt, &self.jwt, token) {
            jwt.prepare(token).await;
        }
    }

    /// [`identify`](Self::identify), then, when no known credential named
    /// a caller, the caller a verified client certificate maps to.
    ///
    /// # Errors
    /// As [`identify`](Self::identify).
    pub fn identify_with_cert(
        &self,
        token: Option<&str>,
        token_is_jwt: bool,
        cert: Option<&ClientCert>,
    ) -> Result<Caller, IdentityError> {
        let caller = self.identify(token, token_is_jwt)?;
        if caller.source != CallerSource::Anonymous {
            return Ok(caller);
        }
        Ok(cert
            .and_then(|cert| self.callers.by_cert(cert))
            .map_or(caller, |entry| Caller {
                id: entry.id.clone(),
                roles: entry.roles.clone(),
                source: CallerSource::Certificate,
            }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{
        entry, hs256, identifier, jwt_config, jwt_reason_of, now, secret_file, sign_hs256, table,
        SECRET,
    };
    use super::*;

    #[test]
    fn token_matches_its_caller() {
        let callers = [entry(
            "privacy-ops",
            Some("seam_live_token"),
            &["privacy-officer"],
        )];
        let identifier = Identifier::new(&table(&callers).unwrap(), None).unwrap();
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
    fn a_verified_certificate_names_its_caller_when_no_credential_does() {
        let mut by_subject = entry("mtls-ops", None, &["privacy-officer"]);
        by_subject.cert_subject = Some("CN=mtls-ops,O=Example".into());
        let mut by_san = entry("san-ops", None, &[]);
        by_san.cert_san = Some("ops@example.com".into());
        let token = entry("token-ops", Some("t0ken"), &[]);
        let identifier =
            Identifier::new(&table(&[by_subject, by_san, token]).unwrap(), None).unwrap();
        let cert = |subject: &str, sans: &[&str]| ClientCert {
            subject: subject.into(),
            sans: sans.iter().map(|s| (*s).to_owned()).collect(),
        };
        let who = |token: Option<&str>, cert: &ClientCert| {
            let caller = identifier
                .identify_with_cert(token, false, Some(cert))
                .unwrap();
            (caller.id, caller.source)
        };
        assert_eq!(
            who(None, &cert("CN=mtls-ops,O=Example", &[])),
            ("mtls-ops".into(), CallerSource::Certificate)
        );
        assert_eq!(
            who(
                None,
                &cert("CN=other", &["x.example.com", "ops@example.com"])
            ),
            ("san-ops".into(), CallerSource::Certificate)
        );
        // A known credential wins over the certificate.
        assert_eq!(
            who(Some("t0ken"), &cert("CN=mtls-ops,O=Example", &[])),
            ("token-ops".into(), CallerSource::Token)
        );
        assert_eq!(
            who(None, &cert("CN=mtls-ops", &[])),
            ("anonymous".into(), CallerSource::Anonymous)
        );
        let mut twice = entry("b", None, &[]);
        twice.cert_subject = Some("CN=x".into());
        let mut again = entry("c", None, &[]);
        again.cert_subject = Some("CN=x".into());
        assert_eq!(
            table(&[twice, again]).unwrap_err().key,
            "caller[1].cert_subject"
        );
    }

    #[test]
    fn uppercase_hash_in_config_matches() {
        let callers = [CallerEntry {
            id: "ops".into(),
            token_sha256: Some(token_sha256("t0ken").to_ascii_uppercase()),
            roles: vec![],
            cert_subject: None,
            cert_san: None,
        }];
        let identifier = Identifier::new(&table(&callers).unwrap(), None).unwrap();
        assert_eq!(identifier.identify(Some("t0ken"), false).unwrap().id, "ops");
    }

    #[test]
    fn unknown_or_missing_token_is_anonymous() {
        let callers = [entry(
            "privacy-ops",
            Some("seam_live_token"),
            &["privacy-officer"],
        )];
        let identifier = Identifier::new(&table(&callers).unwrap(), None).unwrap();
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
        let identifier =
            Identifier::new(&table(&[entry("alice", None, &["r"])]).unwrap(), None).unwrap();
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
    fn a_jwt_cannot_name_a_caller_that_signs_in_with_a_token_or_certificate() {
        let file = secret_file();
        let mut by_cert = entry("mtls-ops", None, &["approver"]);
        by_cert.cert_san = Some("ops.internal".into());
        let callers = table(&[
            entry(
                "privacy-ops",
                Some("seam_live_token"),
                &["privacy-officer", "approver"],
            ),
            by_cert,
        ])
        .unwrap();
        let identifier = Identifier::new(&callers, Some(&hs256(&file))).unwrap();
        for sub in ["privacy-ops", "mtls-ops"] {
            let token = sign_hs256(&json!({"sub": sub, "exp": now() + 300}));
            assert!(
                jwt_reason_of(&identifier, &token).contains("token or certificate"),
                "{sub}"
            );
        }
    }

    #[test]
    fn custom_subject_claim() {
        let file = secret_file();
        let config = jwt_config(json!({
            "algorithm": "HS256", "secret_file": file.0, "subject_claim": "email",
        }));
        let callers = table(&[entry("a@example.com", None, &["privacy-officer"])]).unwrap();
        let identifier = Identifier::new(&callers, Some(&config)).unwrap();
        let token =
            sign_hs256(&json!({"sub": "ignored", "email": "a@example.com", "exp": now() + 60}));
        let caller = identifier.identify(Some(&token), true).unwrap();
        assert_eq!(caller.id, "a@example.com");
        assert_eq!(caller.roles, ["privacy-officer"]);
        let token = sign_hs256(&json!({"sub": "alice", "exp": now() + 60}));
        assert_eq!(jwt_reason_of(&identifier, &token), "missing subject");
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
                    cert_subject: None,
                    cert_san: None,
                }],
                "caller[0].token_sha256",
            ),
            (vec![entry("a", None, &[""])], "caller[0].roles"),
        ];
        for (callers, key) in cases {
            let err = table(&callers).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
            assert!(!err.contains("seam_live_token"), "{err}");
        }
        let duplicate = [entry("a", Some("t"), &[]), entry("b", Some("t"), &[])];
        let err = table(&duplicate).unwrap_err().to_string();
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
