//! Erasure budgets: how many targets and calls one caller may erase through
//! one vendor per fixed window, and which targets it erased already.
//!
//! The pipeline reads a caller's counts before the decision (they go into
//! the Cedar context) and charges an allowed call after it, in one atomic
//! step that also finds repeats: in process ([`memory`]) or in Redis
//! ([`shared`]) so that every replica counts against one budget. Windows are
//! fixed and aligned to the Unix epoch, so replicas agree on them. Nothing
//! here knows the request: targets arrive as digests, callers and vendors as
//! names.

mod approval;
mod memory;
mod shared;

pub use approval::{Approval, Settled};

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `[budgets]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetConfig {
    /// Where the counts live.
    pub backend: Backend,
    /// The limits of callers without their own.
    pub default: Limits,
    /// Callers' own limits (keys they leave out come from `default`).
    pub callers: BTreeMap<String, Limits>,
    /// What a repeated erasure of the same target is answered with.
    pub repeat: RepeatRule,
    /// How long one Redis round trip may take before the call is refused.
    pub timeout: Duration,
    /// How long a held call waits for approval (and an approval for the
    /// repeated call).
    pub approval_ttl: Duration,
    /// The role a caller needs to approve or reject a held call.
    pub approver_role: String,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Memory,
            default: Limits::default(),
            callers: BTreeMap::new(),
            repeat: RepeatRule::Forward,
            timeout: Duration::from_millis(500),
            approval_ttl: Duration::from_secs(3600),
            approver_role: "approver".to_owned(),
        }
    }
}

/// Where the counts live.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// In this process: one replica's own count.
    Memory,
    /// In Redis, shared by every replica that names the same server.
    Redis {
        /// `redis://…` or `rediss://…`; may hold a password, so it is never
        /// logged or shown (see its `Debug`).
        url: String,
    },
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            Self::Redis { .. } => f.write_str("Redis { url: <hidden> }"),
        }
    }
}

/// What a repeated erasure is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatRule {
    /// Forward it again (recorded as a repeat).
    Forward,
    /// Refuse it, naming the earlier decision.
    Refuse,
}

/// One caller's limits; `None` is unlimited (but still counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Targets per `targets_window`.
    pub targets: Option<u64>,
    /// The targets window (whole seconds, at least one).
    pub targets_window: Duration,
    /// Calls per `calls_window`.
    pub calls: Option<u64>,
    /// The calls window.
    pub calls_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            targets: None,
            targets_window: Duration::from_secs(3600),
            calls: None,
            calls_window: Duration::from_secs(60),
        }
    }
}

/// Who is counted: one caller through one vendor.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    /// The `Gateway::Caller` id.
    pub caller: &'a str,
    /// The vendor profile name.
    pub vendor: &'a str,
}

/// A caller's counts in its current windows, before the call at hand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Targets erased in the current targets window.
    pub targets: u64,
    /// Calls forwarded in the current calls window.
    pub calls: u64,
}

/// Which limit a call would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Targets per window.
    Targets,
    /// Calls per window.
    Calls,
}

impl Limit {
    /// `targets` or `calls`, as the trail writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Targets => "targets",
            Self::Calls => "calls",
        }
    }
}

/// What charging a call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    /// Counted: the call may go. `repeats[i]` is the earlier decision that
    /// erased target `i` in this window, if one did.
    Charged {
        /// The counts before this call.
        before: Counts,
        /// Earlier decisions, per target.
        repeats: Vec<Option<String>>,
    },
    /// Not counted: the call would break `limit`.
    Exceeded {
        /// The counts before this call.
        before: Counts,
        /// The limit it would break.
        limit: Limit,
        /// That limit's value.
        allowed: u64,
        /// When that window ends.
        retry_after: Duration,
    },
    /// Not counted: `repeat = "refuse"` and some targets were erased in this
    /// window already.
    Repeated {
        /// The counts before this call.
        before: Counts,
        /// Earlier decisions, per target.
        repeats: Vec<Option<String>>,
    },
}

/// The budget store cannot answer (Redis down or slow).
#[derive(Debug, thiserror::Error)]
#[error("the budget store cannot be reached: {0}")]
pub struct BudgetError(pub(crate) String);

/// The budgets of every caller, and their store.
#[derive(Debug)]
pub struct Budgets {
    config: BudgetConfig,
    store: Store,
    /// Approvals, when the store is this process.
    approvals: approval::MemoryApprovals,
}

#[derive(Debug)]
enum Store {
    Memory(memory::Counters),
    Redis(shared::RedisCounters),
}

/// The fixed windows a call falls in at one instant.
#[derive(Debug, Clone, Copy)]
struct Windows {
    /// Index of the targets window since the epoch.
    targets: u64,
    targets_secs: u64,
    targets_left: Duration,
    calls: u64,
    calls_secs: u64,
    calls_left: Duration,
}

impl Windows {
    fn at(limits: &Limits, now: Duration) -> Self {
        let (targets, targets_secs, targets_left) = window(limits.targets_window, now);
        let (calls, calls_secs, calls_left) = window(limits.calls_window, now);
        Self {
            targets,
            targets_secs,
            targets_left,
            calls,
            calls_secs,
            calls_left,
        }
    }
}

/// The index of the window of `length` that `now` (since the epoch) falls
/// in, its length in seconds, and the time left in it.
fn window(length: Duration, now: Duration) -> (u64, u64, Duration) {
    let secs = length.as_secs().max(1);
    let index = now.as_secs() / secs;
    let end = Duration::from_secs((index + 1) * secs);
    (index, secs, end.saturating_sub(now))
}

/// What one charge asks of a store: the call's size, the limits and
/// windows, and how repeats are answered.
#[derive(Debug, Clone, Copy)]
struct Ask<'a> {
    account: Account<'a>,
    limits: &'a Limits,
    windows: Windows,
    targets: &'a [String],
    decision_id: &'a str,
    repeat: RepeatRule,
}

impl Ask<'_> {
    /// The answer once the store has read its counts and earlier decisions;
    /// `Charged` means the store must now count the call.
    fn judge(&self, before: Counts, repeats: Vec<Option<String>>) -> Charge {
        if self.repeat == RepeatRule::Refuse && repeats.iter().any(Option::is_some) {
            return Charge::Repeated { before, repeats };
        }
        let n = self.targets.len() as u64;
        if let Some(allowed) = self.limits.targets {
            if before.targets.saturating_add(n) > allowed {
                return Charge::Exceeded {
                    before,
                    limit: Limit::Targets,
                    allowed,
                    retry_after: self.windows.targets_left,
                };
            }
        }
        if let Some(allowed) = self.limits.calls {
            if before.calls.saturating_add(1) > allowed {
                return Charge::Exceeded {
                    before,
                    limit: Limit::Calls,
                    allowed,
                    retry_after: self.windows.calls_left,
                };
            }
        }
        Charge::Charged { before, repeats }
    }
}

impl Budgets {
    /// The budgets of `config`; a Redis store connects on first use (and
    /// again after it fails), so a gateway starts while Redis is down.
    ///
    /// # Errors
    /// The Redis URL cannot be used.
    pub fn new(config: BudgetConfig) -> Result<Self, BudgetError> {
        let store = match &config.backend {
            Backend::Memory => Store::Memory(memory::Counters::new(longest_window(&config))),
            Backend::Redis { url } => {
                Store::Redis(shared::RedisCounters::new(url, config.timeout)?)
            }
        };
        Ok(Self {
            config,
            store,
            approvals: approval::MemoryApprovals::default(),
        })
    }

    /// The limits that apply to `caller`.
    pub fn limits(&self, caller: &str) -> &Limits {
        self.config
            .callers
            .get(caller)
            .unwrap_or(&self.config.default)
    }

    /// `account`'s counts in its current windows.
    ///
    /// # Errors
    /// The store cannot be reached.
    pub async fn counts(&self, account: Account<'_>) -> Result<Counts, BudgetError> {
        let windows = Windows::at(self.limits(account.caller), now());
        match &self.store {
            Store::Memory(m) => Ok(m.counts(account, &windows)),
            Store::Redis(r) => r.counts(account, &windows).await,
        }
    }

    /// Charges one call naming `targets` (digests, one per target) to
    /// `account`, unless it breaks a limit or repeats a target under `repeat
    /// = "refuse"`: atomically, so that two replicas racing cannot both
    /// pass a limit. `decision_id` is remembered as the decision that erased
    /// each target first in the targets window.
    ///
    /// # Errors
    /// The store cannot be reached; nothing may be forwarded then.
    pub async fn charge(
        &self,
        account: Account<'_>,
        targets: &[String],
        decision_id: &str,
    ) -> Result<Charge, BudgetError> {
        let limits = self.limits(account.caller);
        let ask = Ask {
            account,
            limits,
            windows: Windows::at(limits, now()),
            targets,
            decision_id,
            repeat: self.config.repeat,
        };
        match &self.store {
            Store::Memory(m) => Ok(m.charge(&ask)),
            Store::Redis(r) => r.charge(&ask).await,
        }
    }

    /// `memory` or `redis`, for logs and `/readyz`.
    pub fn backend_name(&self) -> &'static str {
        match self.config.backend {
            Backend::Memory => "memory",
            Backend::Redis { .. } => "redis",
        }
    }
}

/// The longest targets window of any caller: how long a target is
/// remembered for repeats.
fn longest_window(config: &BudgetConfig) -> Duration {
    config
        .callers
        .values()
        .map(|l| l.targets_window)
        .chain([config.default.targets_window])
        .max()
        .unwrap_or(Duration::from_secs(3600))
}

/// The time since the Unix epoch.
pub(crate) fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask<'a>(limits: &'a Limits, targets: &'a [String], repeat: RepeatRule) -> Ask<'a> {
        Ask {
            account: Account {
                caller: "c",
                vendor: "seam",
            },
            limits,
            windows: Windows::at(limits, Duration::from_secs(7_200 + 600)),
            targets,
            decision_id: "d",
            repeat,
        }
    }

    #[test]
    fn windows_are_aligned_to_the_epoch_and_say_what_is_left() {
        let (index, secs, left) = window(Duration::from_secs(3600), Duration::from_secs(7_800));
        assert_eq!((index, secs, left), (2, 3600, Duration::from_secs(3000)));
        let (index, _, left) = window(Duration::from_millis(10), Duration::from_millis(2_500));
        assert_eq!((index, left), (2, Duration::from_millis(500)));
    }

    #[test]
    fn a_call_that_would_pass_a_limit_is_not_charged_and_says_when_to_retry() {
        let limits = Limits {
            targets: Some(10),
            calls: Some(3),
            ..Limits::default()
        };
        let six: Vec<String> = (0..6).map(|i| i.to_string()).collect();
        let before = Counts {
            targets: 5,
            calls: 0,
        };
        let judged = ask(&limits, &six, RepeatRule::Forward).judge(before, vec![None; 6]);
        assert_eq!(
            judged,
            Charge::Exceeded {
                before,
                limit: Limit::Targets,
                allowed: 10,
                retry_after: Duration::from_secs(3000),
            }
        );
        let four = &six[..4];
        let judged = ask(&limits, four, RepeatRule::Forward).judge(before, vec![None; 4]);
        assert!(matches!(judged, Charge::Charged { .. }), "{judged:?}");
        let calls = Counts {
            targets: 0,
            calls: 3,
        };
        let judged = ask(&limits, four, RepeatRule::Forward).judge(calls, vec![None; 4]);
        assert!(
            matches!(
                judged,
                Charge::Exceeded {
                    limit: Limit::Calls,
                    allowed: 3,
                    ..
                }
            ),
            "{judged:?}"
        );
    }

    #[test]
    fn repeats_are_refused_only_when_the_rule_says_so() {
        let limits = Limits::default();
        let one = ["t".to_owned()];
        let repeats = vec![Some("earlier".to_owned())];
        let judged =
            ask(&limits, &one, RepeatRule::Refuse).judge(Counts::default(), repeats.clone());
        assert!(matches!(judged, Charge::Repeated { .. }), "{judged:?}");
        let judged = ask(&limits, &one, RepeatRule::Forward).judge(Counts::default(), repeats);
        assert!(matches!(judged, Charge::Charged { .. }), "{judged:?}");
    }

    #[test]
    fn unlimited_budgets_still_count() {
        let budgets = Budgets::new(BudgetConfig::default()).expect("memory budgets");
        let account = Account {
            caller: "c",
            vendor: "seam",
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let two = ["a".to_owned(), "b".to_owned()];
            let charged = budgets.charge(account, &two, "d1").await.expect("charged");
            assert!(matches!(charged, Charge::Charged { .. }));
            assert_eq!(
                budgets.counts(account).await.expect("counts"),
                Counts {
                    targets: 2,
                    calls: 1
                }
            );
            let again = budgets
                .charge(account, &two[..1], "d2")
                .await
                .expect("charged");
            assert_eq!(
                again,
                Charge::Charged {
                    before: Counts {
                        targets: 2,
                        calls: 1
                    },
                    repeats: vec![Some("d1".to_owned())],
                }
            );
            let other = Account {
                caller: "c",
                vendor: "kore",
            };
            assert_eq!(
                budgets.counts(other).await.expect("counts"),
                Counts::default()
            );
        });
    }
}
