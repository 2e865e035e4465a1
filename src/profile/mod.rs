//! Vendor profiles: recognise a vendor's erasure call (`classify`), read it
//! strictly into an [`ErasureRequest`] (`parse`), name the caller's
//! credential, and answer in the vendor's own error shape. Pure: plain values
//! in, plain values out; the proxy, identity and Cedar stages build on it.
//!
//! A profile is written as a [`ProfileDefinition`] (TOML) and used as a
//! [`VendorProfile`]: validated, with its path pattern and header names
//! compiled once, so that no request parses profile text again.

mod builtin;
mod classify;
mod completion;
mod credential;
mod definition;
mod outbound;
mod parse;
mod path;
#[cfg(test)]
mod test_support;
mod text;
mod validate;
mod vendor;

pub use crate::response::ErrorShape;
pub use builtin::{builtin, builtins, BUILTIN_NAMES};
pub use classify::{
    classify, is_method_override_header, is_url_rewrite_header, Ambiguity, Classification,
    ErasureCall, RequestHead, URL_REWRITE_HEADERS,
};
pub use completion::{StatusAnswer, TargetState, TargetStatus};
pub use credential::{credential, looks_like_jwt, Credential, CredentialKind, Secret};
pub use definition::{
    CompletionRule, ContextField, ContextType, CredentialRule, IdForm, MethodRule, OtherMethods,
    ParamSource, PrefixRule, ProfileDefinition, TargetSource, VendorRequestId, MAX_TARGETS_CEILING,
    RESERVED_CONTEXT_KEYS,
};
pub use outbound::{forwarded_sha256, outbound, Outbound, OutboundError};
pub use parse::{parse, CallParams, ErasureRequest, ParseError, Target, TargetProblem};
pub use path::PathIssue;
pub use validate::ProfileError;
pub use vendor::VendorProfile;
