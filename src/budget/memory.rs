//! Budgets counted in this process: one replica's own count. A charge reads,
//! judges and counts under one lock, so concurrent calls cannot both pass a
//! limit; remembered targets are bounded in number and age (moka).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{Account, Ask, Charge, Counts, Windows};

/// Targets remembered for repeats at most (the oldest go first).
const REMEMBERED_TARGETS: u64 = 1_000_000;

/// Accounts kept before stale ones are dropped.
const ACCOUNTS_BEFORE_PRUNING: usize = 4_096;

#[derive(Debug)]
pub(super) struct Counters {
    accounts: Mutex<HashMap<(String, String), Slot>>,
    /// `caller\0vendor\0target` → (targets window index, decision id).
    erased: moka::sync::Cache<String, (u64, Arc<str>)>,
}

/// One account's counts, each in the window it was counted in.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    targets_window: u64,
    targets: u64,
    calls_window: u64,
    calls: u64,
}

impl Slot {
    fn counts(&self, windows: &Windows) -> Counts {
        Counts {
            targets: if self.targets_window == windows.targets {
                self.targets
            } else {
                0
            },
            calls: if self.calls_window == windows.calls {
                self.calls
            } else {
                0
            },
        }
    }

    fn is_stale(&self, windows: &Windows) -> bool {
        self.targets_window < windows.targets && self.calls_window < windows.calls
    }
}

impl Counters {
    /// Counters whose remembered targets live at most `longest_window`.
    pub(super) fn new(longest_window: Duration) -> Self {
        Self {
            accounts: Mutex::new(HashMap::new()),
            erased: moka::sync::Cache::builder()
                .max_capacity(REMEMBERED_TARGETS)
                .time_to_live(longest_window)
                .build(),
        }
    }

    pub(super) fn counts(&self, account: Account<'_>, windows: &Windows) -> Counts {
        let accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        accounts
            .get(&(account.caller.to_owned(), account.vendor.to_owned()))
            .map(|slot| slot.counts(windows))
            .unwrap_or_default()
    }

    pub(super) fn charge(&self, ask: &Ask<'_>) -> Charge {
        let windows = &ask.windows;
        let key = (ask.account.caller.to_owned(), ask.account.vendor.to_owned());
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let before = accounts
            .get(&key)
            .map(|slot| slot.counts(windows))
            .unwrap_or_default();
        // Each target's key, and the call that erased it in this window.
        // `erased` changes only under the `accounts` lock, held throughout.
        let seen: Vec<(String, Option<Arc<str>>)> = ask
            .targets
            .iter()
            .map(|target| {
                let remembered =
                    format!("{}\0{}\0{target}", ask.account.caller, ask.account.vendor);
                let earlier = self
                    .erased
                    .get(&remembered)
                    .filter(|(index, _)| *index == windows.targets)
                    .map(|(_, id)| id);
                (remembered, earlier)
            })
            .collect();
        let repeats = seen
            .iter()
            .map(|(_, earlier)| earlier.as_ref().map(ToString::to_string))
            .collect();
        let judged = ask.judge(before, repeats);
        if !matches!(judged, Charge::Charged { .. }) {
            return judged;
        }
        if accounts.len() >= ACCOUNTS_BEFORE_PRUNING {
            accounts.retain(|_, slot| !slot.is_stale(windows));
        }
        accounts.insert(
            key,
            Slot {
                targets_window: windows.targets,
                targets: before.targets + ask.targets.len() as u64,
                calls_window: windows.calls,
                calls: before.calls + 1,
            },
        );
        let id: Arc<str> = Arc::from(ask.decision_id);
        for (remembered, earlier) in seen {
            if earlier.is_none() {
                self.erased
                    .insert(remembered, (windows.targets, id.clone()));
            }
        }
        judged
    }
}
