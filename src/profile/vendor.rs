//! [`VendorProfile`]: a [`ProfileDefinition`] that passed validation, with
//! the forms request handling reads (the path pattern, header names, folded
//! field names) compiled once when it is built. Nothing parses profile text
//! per request; and since the definition is only readable through the
//! profile, the compiled forms cannot drift from it.

use std::ops::Deref;

use http::header::HeaderName;
use http::Method;

use super::definition::{IdForm, MethodRule, OtherMethods, ProfileDefinition};
use super::path::PathPattern;
use super::validate::ProfileError;

/// The headers an erasure call is decided on and carries to the vendor, as
/// parsed names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DecidedHeaders {
    /// The credential header (`authorization`, Kore: `auth`).
    pub(super) credential: HeaderName,
    /// The workspace header, when the profile names one.
    pub(super) workspace: Option<HeaderName>,
    /// The profile's `forward_headers`.
    pub(super) forward: Vec<HeaderName>,
}

impl DecidedHeaders {
    /// The credential, workspace and forwarded headers, in that order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &HeaderName> {
        std::iter::once(&self.credential)
            .chain(&self.workspace)
            .chain(&self.forward)
    }
}

/// What a profile's text compiles to: everything request handling would
/// otherwise parse again on every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Compiled {
    /// The erasure path pattern, parsed from `path`.
    pub(super) pattern: PathPattern,
    /// The header names the profile reads.
    pub(super) headers: DecidedHeaders,
    /// Each allowed field, case-folded, with its spelling in the profile.
    pub(super) folded_fields: Vec<(String, String)>,
    /// The status call's path pattern (`completion.path`).
    pub(super) completion: Option<PathPattern>,
}

/// One vendor's erasure call: a validated [`ProfileDefinition`] (read its
/// fields through this profile) and its compiled forms.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorProfile {
    definition: ProfileDefinition,
    compiled: Compiled,
}

impl Deref for VendorProfile {
    type Target = ProfileDefinition;

    fn deref(&self) -> &ProfileDefinition {
        &self.definition
    }
}

impl TryFrom<ProfileDefinition> for VendorProfile {
    type Error = ProfileError;

    fn try_from(definition: ProfileDefinition) -> Result<Self, ProfileError> {
        Self::new(definition)
    }
}

impl VendorProfile {
    /// Validates `definition` and compiles what request handling reads.
    ///
    /// # Errors
    /// [`ProfileError::Invalid`] naming the first offending key.
    pub fn new(definition: ProfileDefinition) -> Result<Self, ProfileError> {
        let compiled = definition.compile()?;
        Ok(Self {
            definition,
            compiled,
        })
    }

    /// Parses, validates and compiles one profile written in TOML.
    ///
    /// # Errors
    /// [`ProfileError::Toml`] for bad TOML or unknown keys,
    /// [`ProfileError::Invalid`] when validation fails.
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        Self::new(toml::from_str(text)?)
    }

    /// The status call's compiled path pattern.
    pub(super) fn completion_pattern(&self) -> Option<&PathPattern> {
        self.compiled.completion.as_ref()
    }

    /// The definition this profile was built from.
    #[must_use]
    pub fn definition(&self) -> &ProfileDefinition {
        &self.definition
    }

    /// The fully qualified Cedar entity type (`Seam::Customer`).
    #[must_use]
    pub fn qualified(&self, entity_type: &str) -> String {
        format!("{}::{entity_type}", self.namespace)
    }

    /// The entity types whose ids this vendor compares in a normalised
    /// form, qualified, with that form.
    #[must_use]
    pub fn id_forms(&self) -> Vec<(String, IdForm)> {
        self.targets
            .iter()
            .filter(|t| !t.id_form.is_exact())
            .map(|t| (self.qualified(&t.entity_type), t.id_form))
            .collect()
    }

    /// The rule for `method`, when it is an erasure method (exact match).
    #[must_use]
    pub fn method_rule(&self, method: &Method) -> Option<&MethodRule> {
        self.methods.iter().find(|m| m.method == method.as_str())
    }

    /// Whether `other_methods = "pass"` lets `method` through on the
    /// erasure path (when the request has no body).
    #[must_use]
    pub fn passes(&self, method: &Method) -> bool {
        self.other_methods == OtherMethods::Pass
            && self.pass_methods.iter().any(|m| m == method.as_str())
    }

    /// The compiled erasure path pattern.
    pub(super) fn pattern(&self) -> &PathPattern {
        &self.compiled.pattern
    }

    /// The compiled credential, workspace and forwarded header names.
    pub(super) fn decided_headers(&self) -> &DecidedHeaders {
        &self.compiled.headers
    }

    /// The allowed field whose case-folded name is `folded`.
    pub(super) fn field_folded_as(&self, folded: &str) -> Option<&str> {
        self.compiled
            .folded_fields
            .iter()
            .find(|(f, _)| f == folded)
            .map(|(_, field)| field.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::test_support::{head_with, headers, MINIMAL_PROFILE};
    use crate::profile::{builtin, classify, parse, Classification};

    #[test]
    fn a_fourth_vendor_needs_only_a_profile() {
        let acme = VendorProfile::from_toml(MINIMAL_PROFILE).unwrap();
        assert_eq!(acme.other_methods, OtherMethods::Refuse);
        assert_eq!(acme.qualified("Person"), "Acme::Person");
    }

    #[test]
    fn a_malformed_path_pattern_is_refused_when_the_profile_is_built() {
        let mut definition: ProfileDefinition = toml::from_str(MINIMAL_PROFILE).unwrap();
        for bad in [
            "/people/{person_id",
            "people/{person_id}",
            "/people//{person_id}",
        ] {
            definition.path = bad.to_owned();
            let err = VendorProfile::new(definition.clone()).unwrap_err();
            assert!(
                matches!(&err, ProfileError::Invalid { field, .. } if field == "path"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_built_profile_holds_its_parsed_pattern_and_header_names() {
        let seam = builtin("seam").unwrap();
        assert_eq!(
            seam.pattern(),
            &PathPattern::parse("/customers/delete_data").unwrap()
        );
        let names: Vec<&str> = seam
            .decided_headers()
            .iter()
            .map(HeaderName::as_str)
            .collect();
        assert_eq!(names, ["authorization", "seam-workspace"]);
        assert_eq!(seam.field_folded_as("customer_keys"), Some("customer_keys"));
    }

    /// Classification and parsing read the compiled pattern, never the path
    /// text: a profile whose text no longer parses still classifies and
    /// renders by the pattern it was built with.
    #[test]
    fn classification_and_parsing_use_the_compiled_pattern() {
        let VendorProfile {
            mut definition,
            compiled,
        } = builtin("botpenguin").unwrap();
        definition.path = "{not a pattern".to_owned();
        let profile = VendorProfile {
            definition,
            compiled,
        };
        let none = headers(&[]);
        let head = head_with(&Method::DELETE, "/customer/a%40b", &none);
        let Classification::Erasure(call) = classify(&profile, &head) else {
            panic!("expected the compiled pattern to classify the call");
        };
        let request = parse(&profile, &call, &head, b"").unwrap();
        assert_eq!(request.path, "/customer/a@b");
    }
}
