//! What the trail targets set up once per fuzzing process: a scratch
//! directory for the trail files each run writes, and a signing key.

use std::path::PathBuf;
use std::sync::OnceLock;

use erasure_gateway::trail::checkpoint::{generate_pem, SigningKey};

/// This process's own directory, `eg-fuzz-<target>-<pid>` in the temporary
/// directory.
pub fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = env!("CARGO_BIN_NAME").replace('_', "-");
        let dir = std::env::temp_dir().join(format!("eg-fuzz-{target}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

/// A signing key made for this process, its PEM file in [`scratch`].
pub fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let path = scratch().join("signing-key.pem");
        std::fs::write(&path, generate_pem().expect("a key")).expect("key file");
        SigningKey::load(&path).expect("the key loads")
    })
}
