//! The integration tests, one binary: the real gateway (in this process and
//! as the binary) in front of stand-in vendors, the deployment files, and
//! Seam's own SDKs. Shared setup is in `support`.
#![allow(clippy::unwrap_used)]

mod support;

mod architecture;
mod blast_radius;
mod cli;
mod console;
mod deploy;
mod erasure;
mod proxy;
mod receipts;
mod reload;
mod seam_sdk;
mod telemetry;
mod trail;
