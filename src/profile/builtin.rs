//! The three seed vendors' profiles, shipped as TOML in `builtin/` and read
//! by the same deserializer and validation as an operator's `[[profile]]`.

use super::validate::ProfileError;
use super::vendor::VendorProfile;

/// Seam's profile text.
pub(crate) const SEAM_TOML: &str = include_str!("builtin/seam.toml");
/// Kore.ai's profile text.
pub(crate) const KORE_TOML: &str = include_str!("builtin/kore.toml");
/// BotPenguin's profile text.
pub(crate) const BOTPENGUIN_TOML: &str = include_str!("builtin/botpenguin.toml");

/// Names of the built-in profiles.
pub const BUILTIN_NAMES: [&str; 3] = ["seam", "kore", "botpenguin"];

/// The built-in profile called `name`.
///
/// # Errors
/// [`ProfileError::UnknownBuiltin`] for another name; a parse or validation
/// error only if the shipped TOML were broken (a unit test proves it is not).
pub fn builtin(name: &str) -> Result<VendorProfile, ProfileError> {
    let text = match name {
        "seam" => SEAM_TOML,
        "kore" => KORE_TOML,
        "botpenguin" => BOTPENGUIN_TOML,
        other => return Err(ProfileError::UnknownBuiltin(other.to_owned())),
    };
    VendorProfile::from_toml(text)
}

/// All built-in profiles, in [`BUILTIN_NAMES`] order.
///
/// # Errors
/// As [`builtin`].
pub fn builtins() -> Result<Vec<VendorProfile>, ProfileError> {
    BUILTIN_NAMES.iter().map(|name| builtin(name)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::definition::{ContextType, OtherMethods, ParamSource};

    #[test]
    fn every_builtin_profile_parses_and_validates() {
        let all = builtins().unwrap();
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, BUILTIN_NAMES);
    }

    #[test]
    fn an_unknown_builtin_name_is_an_error() {
        assert!(matches!(builtin("stripe"), Err(ProfileError::UnknownBuiltin(n)) if n == "stripe"));
    }

    #[test]
    fn seam_maps_all_nineteen_key_arrays_to_their_cedar_types() {
        let seam = builtin("seam").unwrap();
        let got: Vec<(String, String)> = seam
            .targets
            .iter()
            .map(|t| (t.field.clone().unwrap(), seam.qualified(&t.entity_type)))
            .collect();
        let expected = [
            ("access_grant_keys", "AccessGrant"),
            ("booking_keys", "Booking"),
            ("building_keys", "Building"),
            ("common_area_keys", "CommonArea"),
            ("customer_keys", "Customer"),
            ("facility_keys", "Facility"),
            ("guest_keys", "Guest"),
            ("listing_keys", "Listing"),
            ("property_keys", "Property"),
            ("property_listing_keys", "PropertyListing"),
            ("reservation_keys", "Reservation"),
            ("resident_keys", "Resident"),
            ("room_keys", "Room"),
            ("space_keys", "Space"),
            ("staff_member_keys", "StaffMember"),
            ("tenant_keys", "Tenant"),
            ("unit_keys", "Unit"),
            ("user_identity_keys", "UserIdentity"),
            ("user_keys", "User"),
        ]
        .map(|(f, t)| (f.to_owned(), format!("Seam::{t}")));
        assert_eq!(got, expected);
        // The 19 key arrays, and `_strict`, which both Seam SDKs append.
        assert_eq!(seam.allowed_fields.len(), 20);
        assert!(seam.allowed_fields.iter().any(|f| f == "_strict"));
        assert_eq!(seam.action, "delete_data");
        let sources: Vec<(&str, ParamSource)> = seam
            .methods
            .iter()
            .map(|m| (m.method.as_str(), m.params))
            .collect();
        assert_eq!(
            sources,
            [
                ("POST", ParamSource::Body),
                ("DELETE", ParamSource::Query),
                ("GET", ParamSource::Query)
            ]
        );
    }

    #[test]
    fn kore_and_botpenguin_profiles_match_their_docs() {
        let kore = builtin("kore").unwrap();
        assert_eq!(kore.path, "/api/public/bot/eraseUsersData");
        assert_eq!(kore.qualified(&kore.targets[0].entity_type), "Kore::User");
        assert_eq!(kore.context[0].kind, ContextType::EntitySet);
        assert_eq!(kore.other_methods, OtherMethods::Refuse);
        let bp = builtin("botpenguin").unwrap();
        assert_eq!(bp.targets[0].path_param.as_deref(), Some("customer_id"));
        assert_eq!(bp.other_methods, OtherMethods::Pass);
        assert_eq!(bp.action, "delete_customer");
    }
}
