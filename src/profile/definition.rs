//! [`ProfileDefinition`]: the declarative description of one vendor's erasure
//! call as written, in the same format as a `[[profile]]` table of the
//! gateway config. It is raw text until
//! [`VendorProfile::new`](super::VendorProfile::new) validates it and compiles
//! what classification and parsing read; they read nothing else, so a new
//! vendor needs a profile, not Rust.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::credential::CredentialKind;
pub use crate::authz::IdForm;
use crate::response::ErrorShape;

/// Context keys the gateway itself fills in; a profile may not claim them.
/// (`workspace` comes from [`ProfileDefinition::workspace_header`].)
pub const RESERVED_CONTEXT_KEYS: [&str; 9] = [
    "vendor",
    "target_count",
    "erasures_in_window",
    "calls_in_window",
    "client_cert_subject",
    "client_ip",
    "client_cert",
    "credential",
    "workspace",
];

/// One vendor's erasure call, as written (not yet validated).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileDefinition {
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
    /// The most targets one call may name (1 to [`MAX_TARGETS_CEILING`]);
    /// a call naming more is refused (400) before anything is decided.
    /// Every target is written to the call's decision record, so this also
    /// bounds a record's size. Defaults to 1,000.
    #[serde(default = "default_max_targets")]
    pub max_targets: usize,
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
    /// Where the vendor answers how an accepted erasure request went, for
    /// the trail's `completion` records (Kore.ai's status API). Without it
    /// the vendor answers synchronously: its outcome is the completion.
    #[serde(default)]
    pub completion: Option<CompletionRule>,
}

/// A vendor's status API for erasures it carries out later.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionRule {
    /// Path pattern of the status call (`GET`), with one `{request_id}`
    /// capture: the outcome's `vendor_request_id`.
    pub path: String,
    /// JSON pointer to the array of per-target statuses in its answer.
    pub targets_pointer: String,
    /// The member of each element holding the target id.
    pub target_id: String,
    /// The member of each element holding the target's status.
    pub target_status: String,
    /// The targets' entity type, whose `id_form` the ids are compared in
    /// (default: the first target source's).
    #[serde(default)]
    pub entity_type: Option<String>,
    /// Statuses meaning the target's data was erased (compared ignoring
    /// ASCII case).
    pub succeeded: Vec<String>,
    /// Statuses meaning it was not and will not be.
    pub failed: Vec<String>,
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

/// The highest `max_targets` a profile may set: a decision record naming
/// this many targets stays well within a trail line's bound.
pub const MAX_TARGETS_CEILING: usize = 10_000;

fn default_max_targets() -> usize {
    1_000
}

fn default_pass_methods() -> Vec<String> {
    vec!["GET".to_owned(), "HEAD".to_owned()]
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::profile::test_support::MINIMAL_PROFILE;
    use crate::profile::VendorProfile;

    #[test]
    fn unknown_keys_are_an_error_that_names_the_key() {
        let text = MINIMAL_PROFILE.replace("[credential]", "[credential]\nheadr = \"x\"");
        let err = VendorProfile::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("headr"), "{err}");
        let text = MINIMAL_PROFILE.replace(
            "entity_type = \"Person\"",
            "entity_type = \"Person\"\nfeild = \"x\"",
        );
        assert!(VendorProfile::from_toml(&text)
            .unwrap_err()
            .to_string()
            .contains("feild"));
    }
}
