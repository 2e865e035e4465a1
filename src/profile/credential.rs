//! The caller's credential as the profile describes it: which header, which
//! scheme, and which token prefixes mean which kind. Only a kind, a short
//! fingerprint and a full SHA-256 leave this module in printable form; the
//! token itself sits in a [`Secret`] whose `Debug` is redacted.

use std::fmt;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::vendor::VendorProfile;

/// What kind of credential a caller presented (the `context.credential.kind`
/// Cedar attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A vendor API key (Seam: `seam_…`).
    ApiKey,
    /// A personal access token (Seam: `seam_at…`).
    PersonalAccessToken,
    /// A client session token (Seam: `seam_cst…`).
    ClientSessionToken,
    /// A three-part base64url token.
    Jwt,
    /// Any other token in the credential header.
    Bearer,
    /// No usable credential.
    None,
}

impl CredentialKind {
    /// The snake_case name used in config, Cedar context and the trail.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::PersonalAccessToken => "personal_access_token",
            Self::ClientSessionToken => "client_session_token",
            Self::Jwt => "jwt",
            Self::Bearer => "bearer",
            Self::None => "none",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token that must never be printed or serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret text, for the one consumer that needs it (JWT
    /// verification). Never log the result.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The credential of one request.
///
/// `Debug` shows the kind and hashes only; `Serialize` writes the kind and
/// fingerprint only (the trail never holds more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// What kind of credential it is.
    pub kind: CredentialKind,
    /// The first 12 hex digits of the token's SHA-256; empty for `none`.
    pub fingerprint: String,
    /// The full lowercase hex SHA-256 of the token, for matching
    /// `[[caller]] token_sha256`; empty for `none`.
    #[serde(skip)]
    pub token_sha256: String,
    #[serde(skip)]
    token: Option<Secret>,
}

impl Credential {
    /// The credential of a request that presented none (or none usable).
    #[must_use]
    pub fn none() -> Self {
        Self {
            kind: CredentialKind::None,
            fingerprint: String::new(),
            token_sha256: String::new(),
            token: None,
        }
    }

    fn from_token(kind: CredentialKind, token: &str) -> Self {
        let token_sha256 = crate::digest::sha256_hex(token);
        Self {
            kind,
            fingerprint: token_sha256.get(..12).unwrap_or_default().to_owned(),
            token_sha256,
            token: Some(Secret(token.to_owned())),
        }
    }

    /// The raw token, for JWT verification only. Never log it.
    #[must_use]
    pub fn token(&self) -> Option<&str> {
        self.token.as_ref().map(Secret::expose)
    }
}

fn is_base64url(part: &str) -> bool {
    part.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether a credential has the shape of a compact JWS: three dot-separated
/// base64url parts, the first two non-empty. The signature part may be empty
/// (an unsecured JWT is still a JWT, which the verifier then refuses). It
/// says nothing of validity.
#[must_use]
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    matches!(parts.as_slice(), [header, payload, signature]
        if !header.is_empty() && !payload.is_empty()
            && is_base64url(header) && is_base64url(payload) && is_base64url(signature))
}

/// Reads the caller's credential from `headers` as `profile.credential`
/// describes it.
///
/// The kind comes from the longest matching configured prefix, else `jwt` for
/// a three-part base64url token, else `bearer`. A missing header, a repeated
/// header, a value that is not visible ASCII, a different auth scheme or an
/// empty token all give [`CredentialKind::None`]: the gateway cannot say who
/// the caller is, so it treats them as anonymous (classification refuses a
/// repeated header on an erasure call outright).
#[must_use]
pub fn credential(profile: &VendorProfile, headers: &HeaderMap) -> Credential {
    let rule = &profile.credential;
    let mut values = headers
        .get_all(&profile.decided_headers().credential)
        .iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Credential::none();
    };
    let Ok(text) = value.to_str() else {
        return Credential::none();
    };
    let token = match &rule.scheme {
        Some(scheme) => {
            let Some((given, rest)) = text.trim().split_once(' ') else {
                return Credential::none();
            };
            if !given.eq_ignore_ascii_case(scheme) {
                return Credential::none();
            }
            rest.trim()
        }
        None => text.trim(),
    };
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Credential::none();
    }
    let by_prefix = rule
        .prefixes
        .iter()
        .filter(|p| token.starts_with(p.prefix.as_str()))
        .max_by_key(|p| p.prefix.len())
        .map(|p| p.kind);
    let kind = by_prefix.unwrap_or(if looks_like_jwt(token) {
        CredentialKind::Jwt
    } else {
        CredentialKind::Bearer
    });
    Credential::from_token(kind, token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::builtin;
    use crate::profile::test_support::headers;

    /// Seam's reading of `authorization: Bearer {token}`.
    fn seam_bearer(token: &str) -> Credential {
        let seam = builtin("seam").unwrap();
        credential(
            &seam,
            &headers(&[("authorization", &format!("Bearer {token}"))]),
        )
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";

    #[test]
    fn seam_token_prefixes_map_to_their_kinds() {
        let seam = builtin("seam").unwrap();
        let rows = [
            ("Bearer seam_at1_abc", CredentialKind::PersonalAccessToken),
            ("Bearer seam_cst1_abc", CredentialKind::ClientSessionToken),
            ("Bearer seam_test_abc", CredentialKind::ApiKey),
            (&*format!("Bearer {JWT}"), CredentialKind::Jwt),
            ("Bearer opaque-token", CredentialKind::Bearer),
            ("bearer seam_test_abc", CredentialKind::ApiKey),
            ("Basic c2VhbTp4", CredentialKind::None),
            ("Bearer ", CredentialKind::None),
            ("seam_test_abc", CredentialKind::None),
        ];
        for (value, kind) in rows {
            let got = credential(&seam, &headers(&[("authorization", value)]));
            assert_eq!(got.kind, kind, "{value}");
        }
    }

    #[test]
    fn a_missing_credential_is_none_with_no_fingerprint() {
        let seam = builtin("seam").unwrap();
        let got = credential(&seam, &HeaderMap::new());
        assert_eq!(got, Credential::none());
        assert!(got.token().is_none());
        assert!(got.fingerprint.is_empty());
    }

    #[test]
    fn a_repeated_credential_header_identifies_nobody() {
        let seam = builtin("seam").unwrap();
        let got = credential(
            &seam,
            &headers(&[
                ("authorization", "Bearer seam_a"),
                ("authorization", "Bearer seam_b"),
            ]),
        );
        assert_eq!(got.kind, CredentialKind::None);
    }

    #[test]
    fn kore_reads_the_raw_jwt_from_the_auth_header() {
        let kore = builtin("kore").unwrap();
        let got = credential(&kore, &headers(&[("auth", JWT)]));
        assert_eq!(got.kind, CredentialKind::Jwt);
        assert_eq!(got.token(), Some(JWT));
        let opaque = credential(&kore, &headers(&[("auth", "not-a-jwt")]));
        assert_eq!(opaque.kind, CredentialKind::Bearer);
        let bearer_elsewhere = credential(&kore, &headers(&[("authorization", JWT)]));
        assert_eq!(bearer_elsewhere.kind, CredentialKind::None);
    }

    #[test]
    fn fingerprint_is_the_first_twelve_hex_of_the_token_sha256() {
        let got = seam_bearer("seam_test_abc");
        let full = crate::digest::sha256_hex(b"seam_test_abc");
        assert_eq!(got.token_sha256, full);
        assert_eq!(got.fingerprint, full[..12]);
        assert_eq!(got.token(), Some("seam_test_abc"));
    }

    #[test]
    fn debug_and_serialize_never_show_the_token() {
        let got = seam_bearer("seam_test_SECRETVALUE");
        let debug = format!("{got:?}");
        assert!(!debug.contains("SECRETVALUE"), "{debug}");
        assert!(debug.contains("<redacted>"));
        let json = serde_json::to_string(&got).unwrap();
        assert!(!json.contains("SECRETVALUE"), "{json}");
        assert_eq!(
            json,
            format!(
                r#"{{"kind":"api_key","fingerprint":"{}"}}"#,
                got.fingerprint
            )
        );
    }

    #[test]
    fn jwt_shape_needs_three_base64url_parts() {
        assert!(looks_like_jwt(JWT));
        assert!(looks_like_jwt("eyJh.eyJz."));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt(".b.c"));
        assert!(!looks_like_jwt("a+b.c.d"));
    }
}
