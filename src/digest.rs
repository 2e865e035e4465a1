//! SHA-256 as lowercase hex: the one form in which credentials, policy
//! files and forwarded calls are fingerprinted.

use sha2::{Digest, Sha256};

/// The SHA-256 of `bytes` as 64 lowercase hex digits.
#[must_use]
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// Whether `s` is a SHA-256 written as 64 hex digits (either case), the form
/// config holds token digests in.
#[must_use]
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_of_nothing_is_the_known_one() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_sha256_hex(&sha256_hex("x")));
        assert!(is_sha256_hex(&sha256_hex("x").to_uppercase()));
        assert!(!is_sha256_hex("e3b0"));
        assert!(!is_sha256_hex(&"g".repeat(64)));
    }
}
