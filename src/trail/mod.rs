//! The decision trail: a hash-chained JSON Lines file that records every
//! erasure decision before anything is forwarded, and what the upstream
//! answered after.

mod canon;
pub mod chain;
pub mod checkpoint;
mod diagnose;
pub mod export;
pub mod files;
pub mod filter;
#[cfg(test)]
mod fixtures;
pub mod naming;
pub mod pseudonym;
pub mod query;
pub mod receipt;
pub mod record;
pub mod render;
mod rotation;
pub mod tail;
pub mod verify;
pub mod writer;

pub use writer::{
    CommitMode, CommitObserver, Committed, Trail, TrailError, Unsealed, WriterConfig,
};
