//! The reviewers' console (`audit serve`): the trail as read-only web pages
//! — an overview with the chain's verification, a filtered decisions table,
//! one decision with its outcome and why, and a target's receipt.
//!
//! [`index`] keeps a small entry per decision and follows the files as the
//! writer appends; a background verifier runs [`verify_files`] over the
//! whole trail after each change, so the overview says plainly whether the
//! trail proves anything. [`http`] answers requests (access, security
//! headers, routing) with pages rendered by [`pages`]. Nothing here writes
//! to the trail, the policies or the gateway.

mod chart;
mod detail;
pub mod http;
pub mod index;
pub mod pages;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::authz::{PolicyErrors, PolicySnapshot};
use crate::trail::files::{self, FilesError};
use crate::trail::naming::TrailName;
use crate::trail::verify::{verify_files, VerifyFailure, VerifyOptions, VerifySummary};

use index::TrailIndex;

/// How often the files are looked at for appended records.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// The least time between two verifications of a changing trail.
const REVERIFY_AFTER: Duration = Duration::from_secs(10);

/// What the console serves and checks.
#[derive(Debug, Clone, Default)]
pub struct ConsoleSettings {
    /// The trail: files oldest first, or directories.
    pub paths: Vec<PathBuf>,
    /// Options for verifying the chain (partial trail, pinned public key).
    pub verify: VerifyOptions,
    /// Policy directories whose texts the decision pages quote, matched to
    /// a decision by its recorded policy version.
    pub policies: Vec<PathBuf>,
    /// Where the console's pages are: empty for `audit serve`, `/console`
    /// on the admin listener.
    pub base: String,
    /// The least time between two verifications (default 10 s; each also
    /// waits ten times as long as the last one took).
    pub reverify_after: Option<Duration>,
}

/// The policy texts of each version loaded: version → `@id` → text.
pub type PolicyTexts = HashMap<String, BTreeMap<String, String>>;

/// One writer's chain (its files share the `<stem>-<replica>-` prefix)
/// and how it verified.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    /// The files' shared prefix without its last `-` (`decisions-gw1`);
    /// empty for files the writer's naming does not describe.
    pub label: String,
    /// The summary, or the first way the chain fails.
    pub result: Result<VerifySummary, VerifyFailure>,
}

/// Where verification stands.
#[derive(Debug, Clone)]
pub enum Verification {
    /// Not finished yet for the first time.
    Running,
    /// The last run's answer for each chain, over the records the index
    /// held when it began.
    Done {
        /// Each chain, in the order its first file is read.
        chains: Vec<ChainCheck>,
        /// When it finished.
        at: SystemTime,
        /// How long it took.
        took: Duration,
    },
}

impl Verification {
    /// The check of the chain `label` names.
    pub fn chain(&self, label: &str) -> Option<&ChainCheck> {
        match self {
            Self::Running => None,
            Self::Done { chains, .. } => chains.iter().find(|c| c.label == label),
        }
    }
}

/// The chain a trail file belongs to: its writer's prefix (`decisions-gw1`),
/// or `""` for a name the writer did not make.
pub fn chain_label(path: &Path) -> String {
    TrailName::of(path).map_or_else(String::new, |name| {
        name.prefix.trim_end_matches('-').to_owned()
    })
}

/// The trail's files grouped by chain, each group oldest first, groups in
/// the order their first file comes.
fn chains_of(paths: &[PathBuf]) -> Vec<(String, Vec<PathBuf>)> {
    let Ok(files) = files::trail_files(paths) else {
        // `verify_files` says why, naming the path.
        return vec![(String::new(), paths.to_vec())];
    };
    let mut chains: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for file in files {
        let label = chain_label(&file);
        match chains.iter_mut().find(|(l, _)| *l == label) {
            Some((_, group)) => group.push(file),
            None => chains.push((label, vec![file])),
        }
    }
    if chains.is_empty() {
        chains.push((String::new(), paths.to_vec()));
    }
    chains
}

/// A console's state: the index, verification and policy texts.
#[derive(Debug)]
pub struct Console {
    /// The trail, indexed.
    pub index: RwLock<TrailIndex>,
    verification: Mutex<(Verification, u64)>,
    wake: Condvar,
    settings: ConsoleSettings,
    /// Policy texts by version.
    policies: RwLock<PolicyTexts>,
    stop: AtomicBool,
}

/// The console cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The trail cannot be read.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// A policy directory does not load.
    #[error("policies {dir}: {errors}")]
    Policies {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        errors: PolicyErrors,
    },
}

impl Console {
    /// Indexes the trail and loads the policy texts; verification starts
    /// with [`Console::follow`].
    ///
    /// # Errors
    /// The trail or a policy directory cannot be read.
    pub fn open(mut settings: ConsoleSettings) -> Result<Arc<Self>, ConsoleError> {
        settings.base = settings.base.trim_end_matches('/').to_owned();
        let index = TrailIndex::open(&settings.paths)?;
        let mut policies = PolicyTexts::new();
        for dir in &settings.policies {
            let (version, texts) = policy_texts(dir)?;
            policies.insert(version, texts);
        }
        Ok(Arc::new(Self {
            index: RwLock::new(index),
            verification: Mutex::new((Verification::Running, 0)),
            wake: Condvar::new(),
            settings,
            policies: RwLock::new(policies),
            stop: AtomicBool::new(false),
        }))
    }

    /// Starts the two background threads: one follows the files into the
    /// index, one verifies the chain again after each change. They end
    /// after [`Console::stop`].
    pub fn follow(self: &Arc<Self>) {
        let verifier = self.clone();
        std::thread::Builder::new()
            .name("console-verify".into())
            .spawn(move || verifier.verify_loop())
            .map_err(|e| tracing::error!(error = %e, "console: cannot start the verifier"))
            .ok();
        let follower = self.clone();
        std::thread::Builder::new()
            .name("console-follow".into())
            .spawn(move || follower.follow_loop())
            .map_err(|e| tracing::error!(error = %e, "console: cannot follow the trail"))
            .ok();
    }

    /// Ends the background threads.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_all();
    }

    fn follow_loop(&self) {
        while !self.stop.load(Ordering::Acquire) {
            std::thread::sleep(FOLLOW_EVERY);
            let added = match self.index.write() {
                Ok(mut index) => index.refresh(),
                Err(_) => return,
            };
            match added {
                Ok(0) => {}
                Ok(_) => self.wake.notify_all(),
                Err(error) => tracing::warn!(%error, "console: cannot read the trail"),
            }
        }
    }

    /// Lines the index has read so far.
    fn records_indexed(&self) -> u64 {
        self.index.read().map_or(0, |index| index.lines_read())
    }

    /// The trail's files as they stand: each one's path, length and time
    /// of change. An edit in place changes it even when no line is added.
    fn files_state(&self) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        crate::trail::files::trail_files(&self.settings.paths)
            .unwrap_or_default()
            .into_iter()
            .map(|path| {
                let meta = std::fs::metadata(&path).ok();
                let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
                (path, len, meta.and_then(|m| m.modified().ok()))
            })
            .collect()
    }

    /// Verifies the whole trail again after each change (a record added,
    /// or any file's length or time of change moved: an edit in place),
    /// but spends at most a tenth of one core on it: after a run that took
    /// `t`, the next waits `max(reverify_after, 10 t)` (a busy gateway's
    /// trail changes all the time; the overview says how many newer records
    /// wait).
    fn verify_loop(&self) {
        let least = self.settings.reverify_after.unwrap_or(REVERIFY_AFTER);
        let mut verified_at = None;
        let mut next = Instant::now();
        loop {
            let state = (self.records_indexed(), self.files_state());
            if verified_at.as_ref() != Some(&state) && Instant::now() >= next {
                self.verify_now();
                if let Verification::Done { took, .. } = self.verification().0 {
                    next = Instant::now() + least.max(took * 10);
                }
                verified_at = Some(state);
            }
            let Ok(state) = self.verification.lock() else {
                return;
            };
            let wait = next
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(100), Duration::from_secs(5));
            let waited = self.wake.wait_timeout(state, wait);
            drop(waited);
            if self.stop.load(Ordering::Acquire) {
                return;
            }
        }
    }

    /// Verification's last answer, and the records the index held when it
    /// began.
    pub fn verification(&self) -> (Verification, u64) {
        self.verification
            .lock()
            .map_or((Verification::Running, 0), |state| state.clone())
    }

    /// Verifies now, each writer's chain on its own (several replicas'
    /// files may share a directory), and waits for the answer.
    pub fn verify_now(&self) {
        let records = self.records_indexed();
        let began = Instant::now();
        let chains = chains_of(&self.settings.paths)
            .into_iter()
            .map(|(label, files)| ChainCheck {
                result: verify_files(&files, &self.settings.verify),
                label,
            })
            .collect();
        if let Ok(mut state) = self.verification.lock() {
            *state = (
                Verification::Done {
                    chains,
                    at: SystemTime::now(),
                    took: began.elapsed(),
                },
                records,
            );
        }
    }

    /// Where the pages are: `""` for `audit serve`, `/console` on the
    /// admin listener.
    pub fn base(&self) -> &str {
        &self.settings.base
    }

    /// The text of policy `id` as of policy-set `version`, when that
    /// version is loaded.
    pub fn policy_text(&self, version: &str, id: &str) -> Option<String> {
        self.policies.read().ok()?.get(version)?.get(id).cloned()
    }

    /// Learns the texts of a policy set (the gateway's console learns each
    /// set it reloads, so new decisions quote the text they were decided
    /// under).
    pub fn learn_policies(&self, snapshot: &PolicySnapshot) {
        let known = self
            .policies
            .read()
            .is_ok_and(|texts| texts.contains_key(snapshot.version()));
        if !known {
            if let Ok(mut texts) = self.policies.write() {
                texts.insert(snapshot.version().to_owned(), texts_of(snapshot));
            }
        }
    }

    /// Whether an in-chain checkpoint's signature is checked (a public key
    /// was pinned).
    pub fn key_pinned(&self) -> bool {
        self.settings.verify.public_key.is_some()
    }
}

/// Loads a policy directory: its version and each policy's text by `@id`.
fn policy_texts(dir: &Path) -> Result<(String, BTreeMap<String, String>), ConsoleError> {
    let snapshot = PolicySnapshot::load(dir).map_err(|errors| ConsoleError::Policies {
        dir: dir.to_owned(),
        errors,
    })?;
    Ok((snapshot.version().to_owned(), texts_of(&snapshot)))
}

/// Each policy's text by `@id`.
fn texts_of(snapshot: &PolicySnapshot) -> BTreeMap<String, String> {
    snapshot
        .policies
        .policies()
        .map(|policy| {
            let id = policy
                .annotation("id")
                .map_or_else(|| policy.id().to_string(), str::to_owned);
            (id, policy.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests;
