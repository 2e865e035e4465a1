//! erasure-gateway: a reverse proxy in front of vendor data-erasure APIs.
//!
//! Requests flow one way: [`server`] (accept, TLS, hyper) → [`pipeline`] →
//! [`route`] → [`profile`] → [`identity`] → [`authz`] → [`trail`] →
//! [`forward`], with [`response`] the one place that picks statuses and
//! error bodies. [`start`] wires a config into a running gateway;
//! ARCHITECTURE.md is the map.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod authz;
pub mod budget;
pub mod certs;
pub mod cli;
pub mod config;
pub mod conn;
pub mod console;
pub mod demo;
pub mod digest;
pub mod directory;
pub mod forward;
pub mod identity;
pub mod json;
pub mod metrics;
pub mod offline;
pub mod pipeline;
pub mod profile;
pub mod reload;
pub mod request_id;
pub mod response;
pub mod route;
pub mod server;
pub mod setting;
pub mod stand_in;
pub mod start;
pub mod telemetry;
pub mod tls;
pub mod trail;
pub mod wire;

use bytes::Bytes;

pub use start::{run, Listeners, StartError};

/// Any error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every request and response the gateway handles.
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// An error and its sources, `: `-joined (hyper's top-level message alone
/// says little, e.g. "client error (Connect)").
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        message.push_str(": ");
        message.push_str(&e.to_string());
        source = e.source();
    }
    message
}
