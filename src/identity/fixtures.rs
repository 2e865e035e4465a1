//! Test fixtures shared by the caller-table and JWT tests: key files, a
//! signer, and identifiers built from JSON config.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::{CallerEntry, CallerTable, Identifier, IdentityError, JwtConfig, JwtToml};
use crate::config::InvalidValue;

pub(super) const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!";

pub(super) fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// A fresh file under the system temp dir, removed when dropped.
pub(super) struct TempFile(pub(super) PathBuf);

impl TempFile {
    pub(super) fn new(content: &[u8]) -> Self {
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

pub(super) fn entry(id: &str, token: Option<&str>, roles: &[&str]) -> CallerEntry {
    CallerEntry {
        id: id.to_owned(),
        token_sha256: token.map(super::token_sha256),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        cert_subject: None,
        cert_san: None,
    }
}

/// The checked table of `entries`.
pub(super) fn table(entries: &[CallerEntry]) -> Result<CallerTable, InvalidValue> {
    CallerTable::try_from(entries.to_vec())
}

/// `[jwt]` read from JSON, unchecked.
pub(super) fn jwt_toml(value: serde_json::Value) -> JwtToml {
    serde_json::from_value(value).unwrap()
}

/// `[jwt]` read from JSON and checked.
pub(super) fn jwt_config(value: serde_json::Value) -> JwtConfig {
    JwtConfig::try_from(jwt_toml(value)).unwrap()
}

pub(super) fn hs256(file: &TempFile) -> JwtConfig {
    jwt_config(json!({"algorithm": "HS256", "secret_file": file.0}))
}

pub(super) fn sign_hs256(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

pub(super) fn secret_file() -> TempFile {
    TempFile::new(format!("{SECRET}\n").as_bytes())
}

/// An identifier with a static-token caller and a JWT-subject caller.
pub(super) fn identifier(jwt: &JwtConfig) -> Identifier {
    let callers = [
        entry("privacy-ops", Some("seam_live_token"), &["privacy-officer"]),
        entry("alice", None, &["bulk-eraser"]),
    ];
    Identifier::new(&table(&callers).unwrap(), Some(jwt)).unwrap()
}

pub(super) fn jwt_reason_of(identifier: &Identifier, token: &str) -> &'static str {
    match identifier.identify(Some(token), true) {
        Err(IdentityError::InvalidJwt(reason)) => reason,
        other => panic!("expected an invalid JWT, got {other:?}"),
    }
}
