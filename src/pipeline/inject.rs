//! Callers never hold vendor keys: where an upstream has a vendor
//! credential, the gateway sends it in place of the caller's, on erasure
//! calls (after the decision) and on pass-through calls of a known caller;
//! an unknown caller's pass-through call goes without any credential.

use http::{HeaderMap, HeaderName};

use crate::forward::{CredentialError, VendorCredential};
use crate::profile::VendorProfile;

/// The header `profile` reads the caller's credential from.
fn credential_header(profile: &VendorProfile) -> Option<HeaderName> {
    HeaderName::from_bytes(profile.credential.header.as_bytes()).ok()
}

/// Replaces the caller's credential in `headers` with the vendor's, and
/// sets the headers that go with it.
///
/// # Errors
/// The vendor credential cannot be made (a JWT that cannot be minted).
pub(super) fn vendor_credential(
    profile: &VendorProfile,
    credential: &VendorCredential,
    headers: &mut HeaderMap,
) -> Result<(), CredentialError> {
    let value = credential.header_value(profile.credential.scheme.as_deref())?;
    if let Some(name) = credential_header(profile) {
        headers.insert(name, value);
    }
    for (name, value) in credential.headers() {
        headers.insert(name.clone(), value.clone());
    }
    Ok(())
}

/// Removes the caller's credential (and the headers the vendor credential
/// would set) from `headers`.
pub(super) fn strip_credential(
    profile: &VendorProfile,
    credential: &VendorCredential,
    headers: &mut HeaderMap,
) {
    if let Some(name) = credential_header(profile) {
        headers.remove(name);
    }
    for (name, _) in credential.headers() {
        headers.remove(name);
    }
}
