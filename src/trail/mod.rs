//! The decision trail: a hash-chained JSON Lines file that records every
//! erasure decision before anything is forwarded, and what the upstream
//! answered after.

pub mod entry;
pub mod pseudonym;
pub mod record;
pub mod writer;

pub use writer::{CommitMode, Trail, TrailError, WriterConfig};
