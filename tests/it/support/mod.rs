//! The one harness of the integration tests: stand-in vendors that record
//! what arrives ([`spawn_vendor`]), a typed gateway configuration
//! ([`GatewayConfig`]) for the gateway in this process ([`spawn_gateway`])
//! or as the binary ([`Served`]), and HTTP clients (plain, h2c, TLS).
//! No fixed ports, no global servers: every test gets its own, on
//! `127.0.0.1:0`, and its own temporary directories.

mod client;
mod gateway;
mod gateway_config;
mod redis_server;
mod vendor;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};

pub use client::{
    bearer, call, get, h2c_client, http1_client, refused_without_certificate, request, send,
    tls_client, JSON,
};
pub use erasure_gateway::stand_in::{Behaviour, Received, StandIn};
pub use gateway::{
    assert_forwarded_as_decided, gateway_binary, received_sha256, run_gateway, spawn_gateway,
    Gateway, Ran, Served,
};
pub use gateway_config::{Endpoint, GatewayConfig};
pub use redis_server::RedisServer;
pub use vendor::{cert_dir, spawn_partial_vendor, spawn_tls_vendor, spawn_vendor, AfterPartial};

/// The repository's shipped policies.
pub const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

/// A fresh, empty directory under the system temp dir, removed when the
/// returned value is dropped.
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("eg-{name}-"))
        .tempdir()
        .unwrap()
}

/// A private copy of the shipped policies (with their `tests/`) that a
/// test may edit.
pub fn policies_copy() -> tempfile::TempDir {
    let copy = temp_dir("policies");
    let shipped = Path::new(POLICIES);
    for dir in [Path::new(""), Path::new("tests")] {
        std::fs::create_dir_all(copy.path().join(dir)).unwrap();
        for entry in std::fs::read_dir(shipped.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, copy.path().join(dir).join(path.file_name().unwrap()))
                    .unwrap();
            }
        }
    }
    copy
}

/// SHA-256 of `bytes`, in hex: how the config names a credential.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// The records of the trail in `dir`, oldest first, across its files.
pub fn trail_records_in(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}

/// The records of the trail a gateway configuration names.
pub fn trail_records(config: &erasure_gateway::config::Config) -> Vec<serde_json::Value> {
    trail_records_in(config.audit.path.parent().unwrap())
}

/// A deterministic body of `len` bytes that is not all one value.
pub fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect::<Vec<u8>>()
        .into()
}
