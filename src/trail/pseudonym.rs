//! Pseudonyms for erasure targets: a keyed hash that stands in for a target
//! id in a pseudonymized trail, so reviewers holding the key can still find
//! every decision about one person while the trail itself names nobody.
//!
//! The writer replaces each target `id` by [`PseudonymKey::pseudonym`] and
//! marks the record `pseudonymized: true`; `audit query --target` hashes the
//! id it is given the same way.

use std::fmt;
use std::path::{Path, PathBuf};

use ring::hmac;

/// The shortest secret accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// What a pseudonym starts with.
pub const PREFIX: &str = "hmac-sha256:";

/// The key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PseudonymError {
    /// The file could not be read.
    #[error("pseudonym key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds fewer than [`MIN_KEY_BYTES`] bytes of secret.
    #[error("pseudonym key file {path}: holds {len} bytes of secret, at least {MIN_KEY_BYTES} are required (e.g. `openssl rand -hex 32 > {path}`)")]
    TooShort {
        /// The key file.
        path: PathBuf,
        /// The secret's length after dropping a trailing newline.
        len: usize,
    },
}

/// The `[audit] pseudonym_key_file` secret. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct PseudonymKey {
    key: hmac::Key,
    path: PathBuf,
}

impl PseudonymKey {
    /// Loads the key: the file's bytes, less one trailing newline (`\n` or
    /// `\r\n`), so a key written by `openssl rand -hex 32 > FILE` and the same
    /// key saved by an editor are one key. The bytes are used as they are
    /// (hex text is not decoded).
    ///
    /// # Errors
    /// The file cannot be read, or holds fewer than [`MIN_KEY_BYTES`] bytes.
    pub fn load(path: &Path) -> Result<Self, PseudonymError> {
        let bytes = std::fs::read(path).map_err(|source| PseudonymError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_secret(&bytes, path)
    }

    /// The key from a key file's content (a reviewer may paste it rather
    /// than name the file); `path` only names it in errors.
    ///
    /// # Errors
    /// It holds fewer than [`MIN_KEY_BYTES`] bytes.
    pub fn from_secret(bytes: &[u8], path: &Path) -> Result<Self, PseudonymError> {
        let secret = bytes
            .strip_suffix(b"\r\n")
            .or_else(|| bytes.strip_suffix(b"\n"))
            .unwrap_or(bytes);
        if secret.len() < MIN_KEY_BYTES {
            return Err(PseudonymError::TooShort {
                path: path.to_owned(),
                len: secret.len(),
            });
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            path: path.to_owned(),
        })
    }

    /// `"hmac-sha256:" + hex(HMAC-SHA-256(key, id))`.
    pub fn pseudonym(&self, id: &str) -> String {
        let tag = hmac::sign(&self.key, id.as_bytes());
        format!("{PREFIX}{}", hex::encode(tag.as_ref()))
    }

    /// The file the key was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PseudonymKey")
            .field("path", &self.path)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Whether `value` has the shape of a pseudonym (the prefix and 64 lowercase
/// hex digits).
pub fn is_pseudonym(value: &str) -> bool {
    value.strip_prefix(PREFIX).is_some_and(|digits| {
        digits.len() == 64
            && digits
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn a_pseudonym_is_stable_and_depends_on_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = PseudonymKey::load(&key_file(dir.path(), "a", &[7; 32])).unwrap();
        let a_again = PseudonymKey::load(&key_file(dir.path(), "a2", &[7; 32])).unwrap();
        let b = PseudonymKey::load(&key_file(dir.path(), "b", &[8; 32])).unwrap();
        let p = a.pseudonym("u-1");
        assert_eq!(p, a.pseudonym("u-1"));
        assert_eq!(p, a_again.pseudonym("u-1"));
        assert_ne!(p, b.pseudonym("u-1"));
        assert_ne!(p, a.pseudonym("u-2"));
        assert!(is_pseudonym(&p), "{p}");
        assert!(!is_pseudonym("u-1"));
    }

    #[test]
    fn the_pseudonym_is_hmac_sha256_in_hex() {
        // RFC 4231 test case 2 uses a short key; this checks the construction
        // with ring's own HMAC against an independent computation instead.
        let dir = tempfile::tempdir().unwrap();
        let secret = b"0123456789abcdef0123456789abcdef";
        let key = PseudonymKey::load(&key_file(dir.path(), "k", secret)).unwrap();
        let expected = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, secret),
            b"alice@example.com",
        );
        assert_eq!(
            key.pseudonym("alice@example.com"),
            format!("hmac-sha256:{}", hex::encode(expected.as_ref()))
        );
    }

    #[test]
    fn one_trailing_newline_is_not_part_of_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let text = "5f".repeat(32);
        let plain = PseudonymKey::load(&key_file(dir.path(), "p", text.as_bytes())).unwrap();
        let lf =
            PseudonymKey::load(&key_file(dir.path(), "l", format!("{text}\n").as_bytes())).unwrap();
        let crlf = PseudonymKey::load(&key_file(dir.path(), "c", format!("{text}\r\n").as_bytes()))
            .unwrap();
        assert_eq!(plain.pseudonym("x"), lf.pseudonym("x"));
        assert_eq!(plain.pseudonym("x"), crlf.pseudonym("x"));
    }

    #[test]
    fn a_short_key_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(
            dir.path(),
            "short.key",
            b"0123456789abcdef0123456789abcde\n",
        );
        let error = PseudonymKey::load(&path).unwrap_err();
        assert!(matches!(error, PseudonymError::TooShort { len: 31, .. }));
        assert!(error.to_string().contains("short.key"), "{error}");
        let missing = PseudonymKey::load(&dir.path().join("absent.key")).unwrap_err();
        assert!(missing.to_string().contains("absent.key"), "{missing}");
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = PseudonymKey::load(&key_file(
            dir.path(),
            "k",
            b"SECRETSECRETSECRETSECRETSECRET!!",
        ))
        .unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
