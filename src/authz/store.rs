//! The policy snapshot in force, swapped atomically: a request takes one
//! snapshot at its start and uses it throughout; a reload swaps in a new set
//! only after it loaded and validated completely.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;

use super::IdForm;
use super::{PolicyErrors, PolicySnapshot};

/// How long a replaced snapshot's own thread waits for the requests still
/// holding it (longer than any upstream timeout a call waits for).
const RETIRE_WAIT: Duration = Duration::from_secs(600);

/// The outcome of a successful reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The version replaced.
    pub previous: String,
    /// The version now in force.
    pub version: String,
}

/// Reload history for `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct ReloadState {
    /// The last successful reload.
    pub last_success: Option<SystemTime>,
    /// The last refused reload and why.
    pub last_failure: Option<(SystemTime, String)>,
}

/// The policy directory, the set loaded from it, and its reload history.
#[derive(Debug)]
pub struct PolicyStore {
    dir: PathBuf,
    /// Entity types whose ids the routed vendors compare normalised; every
    /// set loaded must spell them so.
    id_forms: Vec<(String, IdForm)>,
    current: ArcSwap<PolicySnapshot>,
    reloads: Mutex<ReloadState>,
    /// Held through a reload's read and swap: two reloads at once (the
    /// file watcher and `/v1/reload`) take turns, so the set read last is
    /// the set in force.
    loading: Mutex<()>,
}

impl PolicyStore {
    /// Loads `dir` and checks its ids against `id_forms`.
    ///
    /// # Errors
    /// The set does not load, validate, or spell its ids as compared.
    pub fn load(dir: PathBuf, id_forms: Vec<(String, IdForm)>) -> Result<Self, PolicyErrors> {
        let snapshot = PolicySnapshot::load(&dir)?;
        snapshot.check_id_forms(&id_forms)?;
        Ok(Self::new(dir, id_forms, snapshot))
    }

    /// A store holding an already loaded snapshot.
    pub fn new(dir: PathBuf, id_forms: Vec<(String, IdForm)>, snapshot: PolicySnapshot) -> Self {
        Self {
            dir,
            id_forms,
            current: ArcSwap::from_pointee(snapshot),
            reloads: Mutex::new(ReloadState::default()),
            loading: Mutex::new(()),
        }
    }

    /// The snapshot new requests are decided with.
    pub fn snapshot(&self) -> Arc<PolicySnapshot> {
        self.current.load_full()
    }

    /// The policy directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Loads the directory again and, only if the whole set loads,
    /// validates and spells its ids as compared, swaps it in. Requests in
    /// flight finish on the snapshot they started with. Blocking: file reads
    /// and Cedar validation.
    ///
    /// # Errors
    /// The new set is invalid; the one in force stays.
    pub fn reload(&self) -> Result<Reloaded, PolicyErrors> {
        let _turn = self
            .loading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let previous = self.current.load().version().to_owned();
        let now = SystemTime::now();
        let loaded = PolicySnapshot::load(&self.dir)
            .and_then(|snapshot| snapshot.check_id_forms(&self.id_forms).map(|()| snapshot));
        let mut state = self
            .reloads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match loaded {
            Ok(snapshot) => {
                let version = snapshot.version().to_owned();
                retire(self.current.swap(Arc::new(snapshot)));
                state.last_success = Some(now);
                Ok(Reloaded { previous, version })
            }
            Err(errors) => {
                state.last_failure = Some((now, errors.to_string()));
                Err(errors)
            }
        }
    }

    /// When the policies were last reloaded, and the last refusal.
    pub fn reload_state(&self) -> ReloadState {
        self.reloads.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Frees a replaced snapshot on a thread of its own, once the requests
/// still deciding with it are done. Freeing a large set (10k policies,
/// 100k entities) takes tens of milliseconds; left to the last request that
/// held it, that would happen on an async worker and stall every request
/// queued behind it. A holder that keeps it longer than [`RETIRE_WAIT`]
/// frees it itself.
fn retire(old: Arc<PolicySnapshot>) {
    let spawned = std::thread::Builder::new()
        .name("policy-retire".into())
        .spawn(move || {
            let started = Instant::now();
            while Arc::strong_count(&old) > 1 && started.elapsed() < RETIRE_WAIT {
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(old);
        });
    if let Err(error) = spawned {
        // The old set is then freed by whichever holder lets it go last.
        tracing::warn!(%error, "could not start a thread to free the replaced policy set");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_snapshot_is_freed_off_the_request_that_held_it_last() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/policies/schema.cedarschema"),
            dir.path().join("schema.cedarschema"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("p.cedar"),
            "@id(\"p\") permit (principal, action, resource);",
        )
        .unwrap();
        let store = PolicyStore::load(dir.path().to_path_buf(), Vec::new()).unwrap();
        // A request in flight holds the snapshot it started with.
        let in_flight = store.snapshot();
        let freed = Arc::downgrade(&in_flight);
        std::fs::write(
            dir.path().join("p.cedar"),
            "@id(\"q\") permit (principal, action, resource);",
        )
        .unwrap();
        store.reload().unwrap();
        assert_ne!(store.snapshot().version(), in_flight.version());
        // The store let go of it, the retiring thread did not: the
        // request's drop is not the last one, so it frees nothing.
        assert_eq!(Arc::strong_count(&in_flight), 2);
        drop(in_flight);
        for _ in 0..400 {
            if freed.upgrade().is_none() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the replaced snapshot was never freed");
    }
}
