//! Vendor profiles: recognise a vendor's erasure call (`classify`), read it
//! strictly into an [`ErasureRequest`] (`parse`), name the caller's
//! credential, and answer in the vendor's own error shape. Pure: plain values
//! in, plain values out; the proxy, identity and Cedar stages build on it.

mod builtin;
mod classify;
mod credential;
mod definition;
mod error_shape;
mod outbound;
mod parse;
mod path;

pub use builtin::{builtin, builtins, BUILTIN_NAMES};
pub use classify::{
    classify, is_url_rewrite_header, Ambiguity, Classification, ErasureCall, RequestHead,
    URL_REWRITE_HEADERS,
};
pub use credential::{credential, looks_like_jwt, Credential, CredentialKind, Secret};
pub use definition::{
    ContextField, ContextType, CredentialRule, IdForm, MethodRule, OtherMethods, ParamSource,
    PrefixRule, ProfileError, TargetSource, VendorProfile, VendorRequestId, RESERVED_CONTEXT_KEYS,
};
pub use error_shape::ErrorShape;
pub use outbound::{forwarded_sha256, outbound, Outbound, OutboundError};
pub use parse::{parse, CallParams, ErasureRequest, ParseError, Target, TargetProblem};
pub use path::PathIssue;
