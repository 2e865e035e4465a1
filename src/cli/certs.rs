//! `certs dev`: writes throwaway certificates made by [`crate::certs`].

use std::path::Path;

use super::{Failure, Ran};
use crate::certs::DevCerts;

/// `certs dev`: a development CA, server and client certificate under `out`.
pub(super) fn dev(out: &Path) -> Ran {
    let paths = DevCerts::generate()
        .and_then(|certs| certs.write(out))
        .map_err(|e| Failure::check(format!("certs dev: {e}")))?;
    for path in paths {
        println!("wrote {}", path.display());
    }
    println!("development use only: the keys are unencrypted and the CA is throwaway");
    Ok(())
}
