//! The target of an erasure, as Cedar decides it: a typed entity id in the
//! form the vendor compares ids in. Made by the vendor profiles, read by the
//! decision and the trail.

use serde::Serialize;

pub use crate::setting::IdForm;

/// One id to erase, typed as a Cedar entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Fully qualified Cedar entity type (`Seam::Customer`).
    pub entity_type: String,
    /// The entity id as the caller sent it (decoded from the query string or
    /// path; object ids as documented on
    /// [`TargetSource::object_fields`](crate::profile::TargetSource::object_fields)),
    /// in the form the vendor compares it in ([`IdForm`]).
    pub id: String,
    /// How the id was normalised before lookup (recorded when not exact).
    #[serde(skip_serializing_if = "IdForm::is_exact")]
    pub id_form: IdForm,
}

impl Target {
    /// A target whose id is compared byte for byte.
    #[must_use]
    pub fn exact(entity_type: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            entity_type: entity_type.into(),
            id: id.into(),
            id_form: IdForm::Exact,
        }
    }
}
