//! `demo`: runs [`crate::demo`] on a runtime and turns its verdict into an
//! exit code. The demo itself, and everything it prints, lives there.

use std::path::Path;

use super::{runtime, Failure, Ran};

/// `demo`: succeeds only if every call was decided as the demo expects.
pub(super) fn demo(dir: &Path) -> Ran {
    let expected = runtime()
        .and_then(|rt| {
            rt.block_on(crate::demo::run(dir))
                .map_err(|e| crate::error_chain(&e))
        })
        .map_err(|e| Failure::check(format!("demo: {e}")))?;
    // The demo's own account says which call went otherwise.
    if expected {
        Ok(())
    } else {
        Err(Failure::Reported)
    }
}
