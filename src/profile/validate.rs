//! Validation of a [`ProfileDefinition`]: everything the deserializer cannot
//! check, done once when a [`VendorProfile`](super::VendorProfile) is built.
//! What validation parses (the path pattern, the header names) it keeps, as
//! the profile's [`Compiled`] form.

use std::collections::BTreeSet;

use http::header::HeaderName;
use http::Method;

use super::credential::CredentialKind;
use super::definition::{
    ContextType, OtherMethods, ParamSource, ProfileDefinition, MAX_TARGETS_CEILING,
    RESERVED_CONTEXT_KEYS,
};
use super::path::PathPattern;
use super::text::{fold_case, is_identifier};
use super::vendor::{Compiled, DecidedHeaders};

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The text is not TOML, or does not have the profile's shape (unknown
    /// keys included); the message names the key.
    #[error("vendor profile is not valid: {0}")]
    Toml(#[from] toml::de::Error),
    /// A field has a value the gateway cannot work with.
    #[error("vendor profile `{profile}`: `{field}` {reason}")]
    Invalid {
        /// The profile's name.
        profile: String,
        /// The offending key, dotted (`targets[2].path_param`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No built-in profile has this name.
    #[error("no built-in vendor profile is named `{0}`")]
    UnknownBuiltin(String),
}

/// Headers an erasure call's rebuilt request sets itself, or that describe
/// one connection; a profile cannot forward them from the client.
const GATEWAY_SET_HEADERS: [&str; 14] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
];

/// The header `s` names, when `s` is already its lower-case spelling
/// (`HeaderName::from_bytes` lower-cases; a profile should already be lower
/// case so that it reads the same everywhere).
fn header_name(s: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(s.as_bytes())
        .ok()
        .filter(|h| h.as_str() == s)
}

/// An HTTP method in upper case, as sent on the wire.
fn is_upper_method(s: &str) -> bool {
    Method::from_bytes(s.as_bytes()).is_ok() && s == s.to_ascii_uppercase()
}

/// The index of the first name that is empty or repeats an earlier one.
fn first_empty_or_repeated<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<usize> {
    let mut seen = BTreeSet::new();
    names
        .into_iter()
        .position(|name| name.is_empty() || !seen.insert(name))
}

impl ProfileDefinition {
    fn invalid(&self, field: impl Into<String>, reason: impl Into<String>) -> ProfileError {
        ProfileError::Invalid {
            profile: self.name.clone(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Checks everything the deserializer cannot: names, the path pattern,
    /// that targets and context fields are reachable and allowed, the
    /// credential rule and the error template; and compiles the path pattern,
    /// the header names and the folded field names that request handling
    /// reads.
    ///
    /// # Errors
    /// [`ProfileError::Invalid`] naming the first offending key.
    pub(super) fn compile(&self) -> Result<Compiled, ProfileError> {
        self.validate_names()?;
        let pattern =
            PathPattern::parse(&self.path).map_err(|reason| self.invalid("path", reason))?;
        self.validate_methods()?;
        self.validate_targets(&pattern)?;
        self.validate_context()?;
        self.validate_allowed_fields()?;
        let credential = self.validate_credential()?;
        self.validate_pass_methods()?;
        let forward = self.validate_forward_headers()?;
        let workspace = match &self.workspace_header {
            Some(header) => Some(header_name(header).ok_or_else(|| {
                self.invalid("workspace_header", "must be a lower-case header name")
            })?),
            None => None,
        };
        self.error
            .validate()
            .map_err(|(key, reason)| self.invalid(format!("error.{key}"), reason))?;
        let completion = self.validate_completion()?;
        Ok(Compiled {
            completion,
            pattern,
            headers: DecidedHeaders {
                credential,
                workspace,
                forward,
            },
            folded_fields: self
                .allowed_fields
                .iter()
                .map(|field| (fold_case(field), field.clone()))
                .collect(),
        })
    }

    fn validate_completion(&self) -> Result<Option<PathPattern>, ProfileError> {
        let Some(rule) = &self.completion else {
            return Ok(None);
        };
        let pattern = super::completion::compile(rule)
            .map_err(|(key, reason)| self.invalid(format!("completion.{key}"), reason))?;
        if let Some(wanted) = &rule.entity_type {
            if !self.targets.iter().any(|t| &t.entity_type == wanted) {
                return Err(self.invalid(
                    "completion.entity_type",
                    format!("`{wanted}` is not the entity type of any target"),
                ));
            }
        }
        Ok(Some(pattern))
    }

    fn validate_names(&self) -> Result<(), ProfileError> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !name_ok {
            return Err(self.invalid(
                "name",
                "must be non-empty lower-case letters, digits, `_` or `-`",
            ));
        }
        if !self.namespace.split("::").all(is_identifier) {
            return Err(self.invalid(
                "namespace",
                "must be a Cedar namespace (`Seam`, `Acme::Crm`)",
            ));
        }
        if self.action.is_empty() || self.action.chars().any(char::is_control) {
            return Err(self.invalid("action", "must be a non-empty Cedar action id"));
        }
        Ok(())
    }

    fn validate_methods(&self) -> Result<(), ProfileError> {
        if self.methods.is_empty() {
            return Err(self.invalid("methods", "must name at least one erasure method"));
        }
        let mut seen = BTreeSet::new();
        for (i, rule) in self.methods.iter().enumerate() {
            if !is_upper_method(&rule.method) {
                return Err(self.invalid(
                    format!("methods[{i}].method"),
                    "must be an upper-case HTTP method",
                ));
            }
            if !seen.insert(rule.method.as_str()) {
                return Err(self.invalid(format!("methods[{i}].method"), "is listed twice"));
            }
        }
        Ok(())
    }

    fn validate_targets(&self, pattern: &PathPattern) -> Result<(), ProfileError> {
        if self.targets.is_empty() {
            return Err(self.invalid("targets", "must name at least one target source"));
        }
        if !(1..=MAX_TARGETS_CEILING).contains(&self.max_targets) {
            return Err(self.invalid(
                "max_targets",
                format!("must be between 1 and {MAX_TARGETS_CEILING}"),
            ));
        }
        let captures: Vec<&str> = pattern.captures().collect();
        let carries_params = self.methods.iter().any(|m| m.params != ParamSource::None);
        let mut fields = BTreeSet::new();
        let mut params = BTreeSet::new();
        for (i, target) in self.targets.iter().enumerate() {
            let at = |key: &str| format!("targets[{i}].{key}");
            if !is_identifier(&target.entity_type) {
                return Err(
                    self.invalid(at("entity_type"), "must be a Cedar identifier (`Customer`)")
                );
            }
            match (&target.field, &target.path_param) {
                (Some(field), None) => {
                    if field.is_empty() {
                        return Err(self.invalid(at("field"), "must not be empty"));
                    }
                    if !carries_params {
                        return Err(self.invalid(
                            at("field"),
                            "is unreachable: every method has `params = \"none\"`",
                        ));
                    }
                    if !fields.insert(field.as_str()) {
                        return Err(self.invalid(at("field"), "is listed twice"));
                    }
                    let object_fields = target.object_fields.iter().map(String::as_str);
                    if let Some(j) = first_empty_or_repeated(object_fields) {
                        return Err(self.invalid(
                            format!("targets[{i}].object_fields[{j}]"),
                            "must be a non-empty name listed once",
                        ));
                    }
                }
                (None, Some(param)) => {
                    if !captures.contains(&param.as_str()) {
                        return Err(self.invalid(
                            at("path_param"),
                            format!("names no `{{{param}}}` capture in `path`"),
                        ));
                    }
                    if !params.insert(param.as_str()) {
                        return Err(self.invalid(at("path_param"), "is listed twice"));
                    }
                    if !target.object_fields.is_empty() {
                        return Err(
                            self.invalid(at("object_fields"), "applies only to a `field` target")
                        );
                    }
                }
                _ => {
                    return Err(self.invalid(
                        format!("targets[{i}]"),
                        "must have exactly one of `field` and `path_param`",
                    ))
                }
            }
        }
        Ok(())
    }

    fn validate_context(&self) -> Result<(), ProfileError> {
        let mut keys = BTreeSet::new();
        let target_fields: BTreeSet<&str> = self
            .targets
            .iter()
            .filter_map(|t| t.field.as_deref())
            .collect();
        let mut fields = BTreeSet::new();
        for (i, ctx) in self.context.iter().enumerate() {
            let at = |key: &str| format!("context[{i}].{key}");
            if ctx.field.is_empty() || target_fields.contains(ctx.field.as_str()) {
                return Err(self.invalid(at("field"), "must be non-empty and not a target field"));
            }
            if !fields.insert(ctx.field.as_str()) {
                return Err(self.invalid(at("field"), "is listed twice"));
            }
            if !is_identifier(&ctx.key) {
                return Err(self.invalid(at("key"), "must be a Cedar identifier"));
            }
            if RESERVED_CONTEXT_KEYS.contains(&ctx.key.as_str()) {
                return Err(self.invalid(at("key"), "is reserved for the gateway"));
            }
            if !keys.insert(ctx.key.as_str()) {
                return Err(self.invalid(at("key"), "is listed twice"));
            }
            match (ctx.kind, &ctx.entity_type) {
                (ContextType::EntitySet, Some(t)) if is_identifier(t) => {}
                (ContextType::EntitySet, _) => {
                    return Err(self.invalid(
                        at("entity_type"),
                        "must be a Cedar identifier for an `entity_set`",
                    ))
                }
                (_, Some(_)) => {
                    return Err(self.invalid(at("entity_type"), "applies only to an `entity_set`"))
                }
                (_, None) => {}
            }
            if let Some(default) = &ctx.default {
                let fits = match ctx.kind {
                    ContextType::Bool => default.is_boolean(),
                    ContextType::String => default.is_string(),
                    ContextType::StringSet | ContextType::EntitySet => {
                        default.as_array().is_some_and(|a| {
                            a.iter()
                                .all(|v| v.as_str().is_some_and(|s| !s.trim().is_empty()))
                        })
                    }
                };
                if !fits {
                    return Err(self.invalid(at("default"), "does not have the field's type"));
                }
            }
        }
        Ok(())
    }

    fn validate_allowed_fields(&self) -> Result<(), ProfileError> {
        if let Some(i) = first_empty_or_repeated(self.allowed_fields.iter().map(String::as_str)) {
            return Err(self.invalid(
                format!("allowed_fields[{i}]"),
                "must be a non-empty name listed once",
            ));
        }
        let needed = self
            .targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                t.field
                    .as_deref()
                    .map(|f| (format!("targets[{i}].field"), f))
            })
            .chain(
                self.context
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("context[{i}].field"), c.field.as_str())),
            );
        for (key, field) in needed {
            if !self.allowed_fields.iter().any(|f| f == field) {
                return Err(
                    self.invalid(key, format!("`{field}` is missing from `allowed_fields`"))
                );
            }
        }
        Ok(())
    }

    fn validate_pass_methods(&self) -> Result<(), ProfileError> {
        let passed = match self.other_methods {
            OtherMethods::Pass => self.pass_methods.as_slice(),
            OtherMethods::Refuse => &[],
        };
        for (i, method) in passed.iter().enumerate() {
            let at = format!("pass_methods[{i}]");
            if !is_upper_method(method) {
                return Err(self.invalid(at, "must be an upper-case HTTP method"));
            }
            if self.methods.iter().any(|m| m.method == *method) {
                return Err(self.invalid(at, "is an erasure method of this profile"));
            }
        }
        Ok(())
    }

    fn validate_forward_headers(&self) -> Result<Vec<HeaderName>, ProfileError> {
        let mut seen = BTreeSet::new();
        let mut names = Vec::with_capacity(self.forward_headers.len());
        for (i, header) in self.forward_headers.iter().enumerate() {
            let at = format!("forward_headers[{i}]");
            let name = header_name(header)
                .filter(|_| seen.insert(header.as_str()))
                .ok_or_else(|| {
                    self.invalid(at.clone(), "must be a lower-case header name listed once")
                })?;
            if GATEWAY_SET_HEADERS.contains(&header.as_str())
                || *header == self.credential.header
                || self.workspace_header.as_deref() == Some(header.as_str())
            {
                return Err(self.invalid(
                    at,
                    "is set by the gateway or already forwarded as the credential or workspace",
                ));
            }
            names.push(name);
        }
        Ok(names)
    }

    fn validate_credential(&self) -> Result<HeaderName, ProfileError> {
        let header = header_name(&self.credential.header)
            .ok_or_else(|| self.invalid("credential.header", "must be a lower-case header name"))?;
        if let Some(scheme) = &self.credential.scheme {
            if scheme.is_empty()
                || !scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c))
            {
                return Err(self.invalid(
                    "credential.scheme",
                    "must be an auth scheme token (`Bearer`)",
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, rule) in self.credential.prefixes.iter().enumerate() {
            if rule.prefix.is_empty() || !seen.insert(rule.prefix.as_str()) {
                return Err(self.invalid(
                    format!("credential.prefixes[{i}].prefix"),
                    "must be non-empty and listed once",
                ));
            }
            if rule.kind == CredentialKind::None {
                return Err(self.invalid(
                    format!("credential.prefixes[{i}].kind"),
                    "cannot be `none`: a presented token is a credential",
                ));
            }
        }
        Ok(header)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::builtin::SEAM_TOML;
    use crate::profile::test_support::MINIMAL_PROFILE;
    use crate::profile::VendorProfile;

    fn invalid_field(text: &str) -> String {
        match VendorProfile::from_toml(text) {
            Err(ProfileError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid profile, got {other:?}"),
        }
    }

    #[test]
    fn invalid_profiles_name_the_offending_field() {
        let rows: [(&str, &str, &str); 14] = [
            ("path = \"/people/{person_id}\"", "path = \"/people/{person\"", "path"),
            ("path = \"/people/{person_id}\"", "path = \"/people/x\"", "targets[0].path_param"),
            ("path_param = \"person_id\"", "path_param = \"person_id\"\nfield = \"x\"", "targets[0]"),
            ("entity_type = \"Person\"", "entity_type = \"Per son\"", "targets[0].entity_type"),
            ("namespace = \"Acme\"", "namespace = \"Ac-me\"", "namespace"),
            ("name = \"acme\"", "name = \"\"", "name"),
            ("method = \"DELETE\"", "method = \"delete\"", "methods[0].method"),
            ("header = \"authorization\"", "header = \"Bad Header\"", "credential.header"),
            ("body = { error = \"{message}\" }", "body = { error = \"{msg}\" }", "error.body"),
            ("content_type = \"application/json\"", "content_type = \"\"", "error.content_type"),
            ("scheme = \"Bearer\"", "scheme = \"Bea rer\"", "credential.scheme"),
            ("allowed_fields = []", "allowed_fields = [\"a\", \"a\"]", "allowed_fields[1]"),
            (
                "[[targets]]\npath_param = \"person_id\"",
                "[[targets]]\nfield = \"ids\"\nentity_type = \"Person\"\n[[targets]]\npath_param = \"person_id\"",
                "targets[0].field",
            ),
            (
                "[credential]",
                "[[context]]\nfield = \"f\"\nkey = \"vendor\"\ntype = \"bool\"\n[credential]",
                "context[0].key",
            ),
        ];
        for (from, to, field) in rows {
            let text = MINIMAL_PROFILE.replacen(from, to, 1);
            assert_eq!(invalid_field(&text), field, "{to}");
        }
    }

    #[test]
    fn a_profile_without_targets_is_invalid() {
        let mut acme: ProfileDefinition = toml::from_str(MINIMAL_PROFILE).unwrap();
        acme.targets.clear();
        assert!(matches!(
            VendorProfile::new(acme),
            Err(ProfileError::Invalid { field, .. }) if field == "targets"
        ));
    }

    #[test]
    fn max_targets_is_between_one_and_the_ceiling() {
        let mut acme: ProfileDefinition = toml::from_str(MINIMAL_PROFILE).unwrap();
        assert_eq!(acme.max_targets, 1_000, "the default");
        for bad in [0, MAX_TARGETS_CEILING + 1] {
            acme.max_targets = bad;
            assert!(matches!(
                VendorProfile::new(acme.clone()),
                Err(ProfileError::Invalid { field, .. }) if field == "max_targets"
            ));
        }
        acme.max_targets = MAX_TARGETS_CEILING;
        assert!(VendorProfile::new(acme).is_ok());
    }

    #[test]
    fn target_fields_must_be_in_allowed_fields() {
        let text = SEAM_TOML.replacen("\"customer_keys\",", "", 1);
        assert_eq!(invalid_field(&text), "targets[4].field");
    }
}
