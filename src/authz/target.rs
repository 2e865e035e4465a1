//! The target of an erasure, as Cedar decides it: a typed entity id in the
//! form the vendor compares ids in. Made by the vendor profiles, read by the
//! decision and the trail.

use serde::{Deserialize, Serialize};

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

/// How a vendor compares a target id, so that the gateway looks up the same
/// person the vendor will erase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdForm {
    /// Opaque ids, compared byte for byte.
    #[default]
    Exact,
    /// An id holding `@` is an e-mail address compared ignoring the letter
    /// case of the whole address; other ids are exact.
    EmailCasefold,
    /// An id holding `@` is an e-mail address whose domain is compared
    /// ignoring letter case (RFC 5321: the local part is the mailbox's own);
    /// other ids are exact.
    EmailDomainCasefold,
}

impl IdForm {
    /// The id in the form the vendor compares it in.
    #[must_use]
    pub fn apply(self, id: &str) -> String {
        match (self, id.rsplit_once('@')) {
            (Self::EmailCasefold, Some(_)) => id.to_lowercase(),
            (Self::EmailDomainCasefold, Some((local, domain))) => {
                format!("{local}@{}", domain.to_lowercase())
            }
            _ => id.to_owned(),
        }
    }

    /// Whether ids are compared byte for byte.
    #[must_use]
    pub fn is_exact(&self) -> bool {
        *self == Self::Exact
    }

    /// The snake_case name used in profiles and the trail.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::EmailCasefold => "email_casefold",
            Self::EmailDomainCasefold => "email_domain_casefold",
        }
    }
}
