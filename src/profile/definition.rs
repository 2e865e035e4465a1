//! [`VendorProfile`]: the declarative description of one vendor's erasure
//! call, in the same format as a `[[profile]]` table of the gateway config,
//! and its validation. Classification and parsing read nothing else, so a
//! new vendor needs a profile, not Rust.

use std::collections::BTreeSet;

use http::header::HeaderName;
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::credential::CredentialKind;
use super::error_shape::ErrorShape;
use super::path::PathPattern;

/// Context keys the gateway itself fills in; a profile may not claim them.
/// (`workspace` comes from [`VendorProfile::workspace_header`].)
pub const RESERVED_CONTEXT_KEYS: [&str; 6] = [
    "vendor",
    "target_count",
    "client_ip",
    "client_cert",
    "credential",
    "workspace",
];

/// One vendor's erasure call.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VendorProfile {
    /// Profile name, as `[[upstream]] profile = "…"` refers to it (`seam`).
    pub name: String,
    /// Cedar namespace of the action and entity types (`Seam`).
    pub namespace: String,
    /// Cedar action id (`delete_data` → `Seam::Action::"delete_data"`).
    pub action: String,
    /// Path pattern of the erasure call; `{name}` captures one segment
    /// (`/customer/{customer_id}`).
    pub path: String,
    /// The methods that make the erasure call and where each takes its
    /// parameters.
    pub methods: Vec<MethodRule>,
    /// What to do with any other method on the erasure path. Defaults to
    /// `refuse`.
    #[serde(default)]
    pub other_methods: OtherMethods,
    /// With `other_methods = "pass"`: the methods that pass on the erasure
    /// path, and only without a body. Any other method is refused, because
    /// Rails, Laravel, Symfony and Express honour a `_method` override in the
    /// body of a `POST` (and a body is where the gateway does not look on a
    /// passed call). Defaults to `GET` and `HEAD`.
    #[serde(default = "default_pass_methods")]
    pub pass_methods: Vec<String>,
    /// Where the ids to erase come from; each becomes one Cedar resource.
    pub targets: Vec<TargetSource>,
    /// Body or query fields copied into the Cedar context.
    #[serde(default)]
    pub context: Vec<ContextField>,
    /// Every top-level body or query field the call may carry, including the
    /// target and context fields; any other field refuses the call (the
    /// upstream might honour a field the gateway ignores).
    #[serde(default)]
    pub allowed_fields: Vec<String>,
    /// How the caller's credential is presented.
    pub credential: CredentialRule,
    /// A request header copied into the context as `workspace`
    /// (Seam: `seam-workspace`).
    #[serde(default)]
    pub workspace_header: Option<String>,
    /// Request headers besides the credential and workspace headers that an
    /// allowed erasure call carries to the vendor as received (BotPenguin:
    /// `authtype`). Every other header of the client's request is dropped
    /// from the rebuilt call.
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// The vendor's error response shape.
    pub error: ErrorShape,
    /// Where the vendor's own id for an accepted erasure request is found in
    /// its response, for the trail's outcome record.
    #[serde(default)]
    pub vendor_request_id: Option<VendorRequestId>,
}

/// Where a vendor names its own request id in a response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VendorRequestId {
    /// A response header (Seam: `seam-request-id`).
    #[serde(default)]
    pub header: Option<String>,
    /// A JSON pointer into a JSON response body (Kore.ai: `/requestId`).
    #[serde(default)]
    pub json_pointer: Option<String>,
}

/// One erasure method and where its parameters travel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MethodRule {
    /// HTTP method, upper case as sent on the wire (`DELETE`).
    pub method: String,
    /// Where this method carries the erasure parameters.
    pub params: ParamSource,
}

/// Where an erasure call carries its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamSource {
    /// A JSON object body; the query string must be empty.
    Body,
    /// The query string, arrays as repeated keys; the body must be empty.
    Query,
    /// Neither: only path captures (BotPenguin). Body and query must be
    /// empty.
    None,
}

/// What happens to a non-erasure method on the erasure path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherMethods {
    /// Forward it as an ordinary call (BotPenguin's `GET /customer/{id}`).
    Pass,
    /// Refuse it (fail closed).
    #[default]
    Refuse,
}

/// One source of target ids: a body/query array `field` **or** a path
/// capture `path_param`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSource {
    /// A top-level field holding an array of ids (JSON array, or repeated
    /// query key).
    #[serde(default)]
    pub field: Option<String>,
    /// A path capture holding one id.
    #[serde(default)]
    pub path_param: Option<String>,
    /// Cedar entity type within the profile namespace (`Customer`).
    pub entity_type: String,
    /// When set, an array element may also be a JSON object with exactly
    /// these fields, each a non-empty string. Its entity id is the field
    /// values in this order, each with `%` and `/` percent-encoded, joined
    /// by `/` (Kore: `{"channel_id":"c","channel_user_id":"u"}` → `c/u`).
    #[serde(default)]
    pub object_fields: Vec<String>,
    /// How the vendor compares these ids, applied before entity lookup and
    /// to the forwarded call. Defaults to `exact`.
    #[serde(default)]
    pub id_form: IdForm,
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

fn default_pass_methods() -> Vec<String> {
    vec!["GET".to_owned(), "HEAD".to_owned()]
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

/// A field copied into the Cedar context.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContextField {
    /// The top-level body or query field (`RemoveDataFromAllBots`).
    pub field: String,
    /// The context key (`remove_from_all_bots`).
    pub key: String,
    /// The field's expected type.
    #[serde(rename = "type")]
    pub kind: ContextType,
    /// For `entity_set`: the entity type within the namespace (`Bot`).
    #[serde(default)]
    pub entity_type: Option<String>,
    /// The value when the field is absent; without it the key is left out.
    #[serde(default)]
    pub default: Option<Value>,
}

/// The type of a context field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextType {
    /// JSON `true`/`false` (query: exactly `true` or `false`).
    Bool,
    /// One string.
    String,
    /// An array of non-empty strings.
    StringSet,
    /// An array of non-empty entity ids, written as Cedar entity references
    /// `{"__entity":{"type":"Ns::Type","id":"…"}}`.
    EntitySet,
}

/// How the credential is presented.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRule {
    /// The header holding it (`authorization`, Kore: `auth`).
    pub header: String,
    /// The auth scheme before the token (`Bearer`, compared ignoring case);
    /// without it the whole header value is the token.
    #[serde(default)]
    pub scheme: Option<String>,
    /// Token prefixes and their kinds; the longest matching prefix wins.
    #[serde(default)]
    pub prefixes: Vec<PrefixRule>,
}

/// A token prefix and the credential kind it means.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixRule {
    /// The prefix (`seam_at`).
    pub prefix: String,
    /// The kind (`personal_access_token`).
    pub kind: CredentialKind,
}

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

/// Cedar identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_cedar_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_header_name(s: &str) -> bool {
    // `HeaderName::from_bytes` lower-cases; a profile should already be lower
    // case so that it reads the same everywhere.
    HeaderName::from_bytes(s.as_bytes()).is_ok_and(|h| h.as_str() == s)
}

impl VendorProfile {
    /// Parses and validates one profile written in TOML.
    ///
    /// # Errors
    /// [`ProfileError::Toml`] for bad TOML or unknown keys,
    /// [`ProfileError::Invalid`] when [`VendorProfile::validate`] fails.
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        let profile: Self = toml::from_str(text)?;
        profile.validate()?;
        Ok(profile)
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

    fn invalid(&self, field: impl Into<String>, reason: impl Into<String>) -> ProfileError {
        ProfileError::Invalid {
            profile: self.name.clone(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Checks everything the deserializer cannot: names, the path pattern,
    /// that targets and context fields are reachable and allowed, the
    /// credential rule and the error template.
    ///
    /// # Errors
    /// [`ProfileError::Invalid`] naming the first offending key.
    pub fn validate(&self) -> Result<(), ProfileError> {
        self.validate_names()?;
        let pattern =
            PathPattern::parse(&self.path).map_err(|reason| self.invalid("path", reason))?;
        self.validate_methods()?;
        self.validate_targets(&pattern)?;
        self.validate_context()?;
        self.validate_allowed_fields()?;
        self.validate_credential()?;
        self.validate_pass_and_forward()?;
        if let Some(header) = &self.workspace_header {
            if !is_header_name(header) {
                return Err(self.invalid("workspace_header", "must be a lower-case header name"));
            }
        }
        self.error
            .validate()
            .map_err(|(key, reason)| self.invalid(format!("error.{key}"), reason))
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
        if !self.namespace.split("::").all(is_cedar_identifier) {
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
            let valid = Method::from_bytes(rule.method.as_bytes()).is_ok()
                && rule.method == rule.method.to_ascii_uppercase();
            if !valid {
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
        let captures: Vec<&str> = pattern.captures().collect();
        let carries_params = self.methods.iter().any(|m| m.params != ParamSource::None);
        let mut fields = BTreeSet::new();
        let mut params = BTreeSet::new();
        for (i, target) in self.targets.iter().enumerate() {
            let at = |key: &str| format!("targets[{i}].{key}");
            if !is_cedar_identifier(&target.entity_type) {
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
                    let mut seen = BTreeSet::new();
                    for (j, name) in target.object_fields.iter().enumerate() {
                        if name.is_empty() || !seen.insert(name.as_str()) {
                            return Err(self.invalid(
                                format!("targets[{i}].object_fields[{j}]"),
                                "must be a non-empty name listed once",
                            ));
                        }
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
            if !is_cedar_identifier(&ctx.key) {
                return Err(self.invalid(at("key"), "must be a Cedar identifier"));
            }
            if RESERVED_CONTEXT_KEYS.contains(&ctx.key.as_str()) {
                return Err(self.invalid(at("key"), "is reserved for the gateway"));
            }
            if !keys.insert(ctx.key.as_str()) {
                return Err(self.invalid(at("key"), "is listed twice"));
            }
            match (ctx.kind, &ctx.entity_type) {
                (ContextType::EntitySet, Some(t)) if is_cedar_identifier(t) => {}
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
        let mut seen = BTreeSet::new();
        for (i, field) in self.allowed_fields.iter().enumerate() {
            if field.is_empty() || !seen.insert(field.as_str()) {
                return Err(self.invalid(
                    format!("allowed_fields[{i}]"),
                    "must be a non-empty name listed once",
                ));
            }
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
            if !seen.contains(field) {
                return Err(
                    self.invalid(key, format!("`{field}` is missing from `allowed_fields`"))
                );
            }
        }
        Ok(())
    }

    fn validate_pass_and_forward(&self) -> Result<(), ProfileError> {
        let passed = match self.other_methods {
            OtherMethods::Pass => self.pass_methods.as_slice(),
            OtherMethods::Refuse => &[],
        };
        for (i, method) in passed.iter().enumerate() {
            let at = format!("pass_methods[{i}]");
            if Method::from_bytes(method.as_bytes()).is_err()
                || *method != method.to_ascii_uppercase()
            {
                return Err(self.invalid(at, "must be an upper-case HTTP method"));
            }
            if self.methods.iter().any(|m| m.method == *method) {
                return Err(self.invalid(at, "is an erasure method of this profile"));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, header) in self.forward_headers.iter().enumerate() {
            let at = format!("forward_headers[{i}]");
            if !is_header_name(header) || !seen.insert(header.as_str()) {
                return Err(self.invalid(at, "must be a lower-case header name listed once"));
            }
            if GATEWAY_SET_HEADERS.contains(&header.as_str())
                || *header == self.credential.header
                || self.workspace_header.as_deref() == Some(header.as_str())
            {
                return Err(self.invalid(
                    at,
                    "is set by the gateway or already forwarded as the credential or workspace",
                ));
            }
        }
        Ok(())
    }

    /// Whether `other_methods = "pass"` lets `method` through on the
    /// erasure path (when the request has no body).
    #[must_use]
    pub fn passes(&self, method: &Method) -> bool {
        self.other_methods == OtherMethods::Pass
            && self.pass_methods.iter().any(|m| m == method.as_str())
    }

    fn validate_credential(&self) -> Result<(), ProfileError> {
        if !is_header_name(&self.credential.header) {
            return Err(self.invalid("credential.header", "must be a lower-case header name"));
        }
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
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::builtin::SEAM_TOML;

    fn invalid_field(text: &str) -> String {
        match VendorProfile::from_toml(text) {
            Err(ProfileError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid profile, got {other:?}"),
        }
    }

    const MINIMAL: &str = r#"
name = "acme"
namespace = "Acme"
action = "forget"
path = "/people/{person_id}"
allowed_fields = []
[[methods]]
method = "DELETE"
params = "none"
[[targets]]
path_param = "person_id"
entity_type = "Person"
[credential]
header = "authorization"
scheme = "Bearer"
[error]
content_type = "application/json"
body = { error = "{message}" }
"#;

    #[test]
    fn a_fourth_vendor_needs_only_a_profile() {
        let acme = VendorProfile::from_toml(MINIMAL).unwrap();
        assert_eq!(acme.other_methods, OtherMethods::Refuse);
        assert_eq!(acme.qualified("Person"), "Acme::Person");
    }

    #[test]
    fn unknown_keys_are_an_error_that_names_the_key() {
        let text = MINIMAL.replace("[credential]", "[credential]\nheadr = \"x\"");
        let err = VendorProfile::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("headr"), "{err}");
        let text = MINIMAL.replace(
            "entity_type = \"Person\"",
            "entity_type = \"Person\"\nfeild = \"x\"",
        );
        assert!(VendorProfile::from_toml(&text)
            .unwrap_err()
            .to_string()
            .contains("feild"));
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
            let text = MINIMAL.replacen(from, to, 1);
            assert_eq!(invalid_field(&text), field, "{to}");
        }
    }

    #[test]
    fn a_profile_without_targets_is_invalid() {
        let mut acme = VendorProfile::from_toml(MINIMAL).unwrap();
        acme.targets.clear();
        assert!(matches!(
            acme.validate(),
            Err(ProfileError::Invalid { field, .. }) if field == "targets"
        ));
    }

    #[test]
    fn target_fields_must_be_in_allowed_fields() {
        let text = SEAM_TOML.replacen("\"customer_keys\",", "", 1);
        assert_eq!(invalid_field(&text), "targets[4].field");
    }
}
