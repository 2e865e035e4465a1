//! Who is calling: turns the credential of a request into a [`Caller`].
//!
//! A credential is either a static token, matched by its SHA-256 against the
//! `[[caller]]` entries (`callers`), or (with `[jwt]` configured) a JWT
//! whose signature and time claims are verified and whose subject names the
//! caller (`jwt`). Unknown or missing credentials become the anonymous
//! caller; a JWT that fails verification is an error, so the gateway refuses
//! the call (fail closed).

mod callers;
#[cfg(test)]
mod fixtures;
mod jwks;
mod jwt;

use std::path::PathBuf;

pub use callers::{token_sha256, Caller, CallerEntry, CallerSource, CallerTable, Identifier};
pub use jwks::JwksConfig;
pub use jwt::{JwtAlgorithm, JwtConfig, JwtToml};

/// The id of the caller whose credential is missing or unknown.
pub const ANONYMOUS: &str = "anonymous";

/// Why a caller could not be identified, or a `[jwt]` key file is unusable.
///
/// Unusable config values are refused earlier, when the config is loaded
/// ([`crate::config::InvalidValue`]).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
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
