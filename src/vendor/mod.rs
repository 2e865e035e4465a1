//! Vendor profiles: recognise a vendor's erasure call (`classify`), read it
//! strictly into an [`ErasureRequest`] (`parse`), name the caller's
//! credential, and answer in the vendor's own error shape. Pure: plain values
//! in, plain values out; the proxy, identity and Cedar stages build on it.

mod builtin;
mod classify;
mod credential;
mod error_shape;
mod parse;
mod path;
mod profile;
pub(crate) mod strict_json;

pub use builtin::{builtin, builtins, BUILTIN_NAMES};
pub use classify::{classify, Ambiguity, Classification, ErasureCall, RequestHead};
pub use credential::{credential, Credential, CredentialKind, Secret};
pub use error_shape::ErrorShape;
pub use parse::{parse, ErasureRequest, ParseError, Target, TargetProblem};
pub use path::PathIssue;
pub use profile::{
    ContextField, ContextType, CredentialRule, MethodRule, OtherMethods, ParamSource, PrefixRule,
    ProfileError, TargetSource, VendorProfile, VendorRequestId, RESERVED_CONTEXT_KEYS,
};
