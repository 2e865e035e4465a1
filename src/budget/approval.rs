//! Four-eyes approvals: a call that only `@approval` forbids deny is held;
//! a second caller approves or rejects it; the requester's identical call
//! then proceeds, once. Kept in the budgets' store (this process, or Redis
//! for replicas), and gone when they expire.
//!
//! A held call is known by its requester, vendor and `call_sha256` (the
//! digest of the call as it would be forwarded); its state moves once,
//! atomically: `pending` → `settling:<by>` (reserved by the one approver
//! whose answer is being recorded) → `approved:<by>` | `rejected:<by>`
//! (or back to `pending` when it could not be recorded), and `approved` →
//! `used` when the call goes.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use redis::AsyncCommands;
use redis::Script;
use serde::{Deserialize, Serialize};

use super::{now, shared::RedisCounters, BudgetError, Budgets, Store};
use crate::digest::sha256_hex;

/// One call held for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approval id (UUIDv7), given to the requester.
    pub id: String,
    /// The caller who made the call.
    pub requester: String,
    /// The vendor profile name.
    pub vendor: String,
    /// The upstream the call goes to (one of those with this profile).
    #[serde(default)]
    pub upstream: String,
    /// `Namespace::Action::"id"`.
    pub action: String,
    /// The digest of the call as it would be forwarded.
    pub call_sha256: String,
    /// The call's targets, as `Type::"id"` (what the approver looks at).
    pub targets: Vec<String>,
    /// The `@approval` forbids that held it, with the reasons they give.
    pub policies: Vec<(String, String)>,
    /// The `decision` record of the held call.
    pub held_decision_id: String,
    /// Unix seconds when it was held.
    pub created: u64,
    /// Unix seconds when it expires.
    pub expires: u64,
    /// `pending`, `approved`, `rejected` or `used`.
    #[serde(default)]
    pub state: String,
    /// Who approved or rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_by: Option<String>,
}

/// What settling an approval came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// It was pending and is now approved or rejected.
    Done(Approval),
    /// No such approval (never held, or expired).
    NotFound,
    /// It was approved, rejected or used already.
    AlreadySettled(Approval),
}

impl Approval {
    fn with_state(mut self, state: &str) -> Self {
        match state.split_once(':') {
            Some((state, by)) => {
                self.state = state.to_owned();
                self.settled_by = Some(by.to_owned());
            }
            None => state.clone_into(&mut self.state),
        }
        self
    }
}

/// An approval's state and who put it there (none for `pending`).
type State<'a> = (&'a str, Option<&'a str>);

/// The approvals kept in this process.
#[derive(Debug, Default)]
pub(super) struct MemoryApprovals {
    /// By id; the state is in the approval.
    held: Mutex<HashMap<String, Approval>>,
}

fn call_key(requester: &str, vendor: &str, call_sha256: &str) -> String {
    sha256_hex(format!("{requester}\0{vendor}\0{call_sha256}"))
}

impl MemoryApprovals {
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Approval>> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let now = now().as_secs();
        held.retain(|_, a| a.expires > now);
        held
    }

    fn hold(&self, approval: Approval) -> Approval {
        let mut held = self.locked();
        let open = held.values().find(|a| {
            a.state == "pending"
                && a.requester == approval.requester
                && a.vendor == approval.vendor
                && a.call_sha256 == approval.call_sha256
        });
        if let Some(open) = open {
            return open.clone();
        }
        held.insert(approval.id.clone(), approval.clone());
        approval
    }

    fn take_approved(&self, requester: &str, vendor: &str, call_sha256: &str) -> Option<Approval> {
        let mut held = self.locked();
        let approved = held.values_mut().find(|a| {
            a.state == "approved"
                && a.requester == requester
                && a.vendor == vendor
                && a.call_sha256 == call_sha256
        })?;
        "used".clone_into(&mut approved.state);
        Some(approved.clone())
    }

    /// Moves `id` from `from` (a state, and who holds it: none for
    /// `pending`) to `to`, as `by`; anything else is answered as it stands.
    fn step(&self, id: &str, from: State<'_>, to: State<'_>) -> Settled {
        let mut held = self.locked();
        let Some(approval) = held.get_mut(id) else {
            return Settled::NotFound;
        };
        if (approval.state.as_str(), approval.settled_by.as_deref()) != from {
            return Settled::AlreadySettled(approval.clone());
        }
        to.0.clone_into(&mut approval.state);
        approval.settled_by = to.1.map(str::to_owned);
        Settled::Done(approval.clone())
    }

    fn get(&self, id: &str) -> Option<Approval> {
        self.locked().get(id).cloned()
    }

    fn list(&self) -> Vec<Approval> {
        let mut all: Vec<Approval> = self.locked().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }
}

/// Every approval key shares one hash tag (one Redis Cluster slot), so the
/// scripts may touch several.
const TAG: &str = "eg:approval:{eg-approvals}";

/// Hold a call unless it is held already: KEYS call key, record, state,
/// index; ARGV id, record JSON, TTL, expiry. Answers the id in force.
const HOLD: &str = r"
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[3], 'pending', 'EX', ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
return ARGV[1]
";

/// Move an approval from one state to another: KEYS state, call key; ARGV
/// the state it must be in, the new one, and `reject` to forget the call.
const STEP: &str = r"
local s = redis.call('GET', KEYS[1])
if not s then return {'missing', ''} end
if s ~= ARGV[1] then return {'settled', s} end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
if ARGV[3] == 'reject' then redis.call('DEL', KEYS[2]) end
return {'done', ARGV[2]}
";

/// An approval's state as the store writes it: `pending`, `settling:bob`.
fn state_text((state, by): State<'_>) -> String {
    by.map_or_else(|| state.to_owned(), |by| format!("{state}:{by}"))
}

/// Use an approved approval once: KEYS state, call key.
const TAKE: &str = r"
local s = redis.call('GET', KEYS[1])
if s and string.sub(s, 1, 9) == 'approved:' then
  redis.call('SET', KEYS[1], 'used', 'KEEPTTL')
  redis.call('DEL', KEYS[2])
  return s
end
return false
";

fn record_key(id: &str) -> String {
    format!("{TAG}:{id}")
}

fn state_key(id: &str) -> String {
    format!("{TAG}:{id}:state")
}

fn redis_call_key(requester: &str, vendor: &str, call_sha256: &str) -> String {
    format!("{TAG}:call:{}", call_key(requester, vendor, call_sha256))
}

fn index_key() -> String {
    format!("{TAG}:index")
}

impl RedisCounters {
    async fn approval(&self, id: &str) -> Result<Option<Approval>, BudgetError> {
        let mut c = self.connection();
        let (record, state): (Option<String>, Option<String>) = self
            .bounded(c.mget(&[record_key(id), state_key(id)]))
            .await?;
        let (Some(record), Some(state)) = (record, state) else {
            return Ok(None);
        };
        let approval: Approval = serde_json::from_str(&record)
            .map_err(|e| BudgetError(format!("an approval in Redis does not read: {e}")))?;
        Ok(Some(approval.with_state(&state)))
    }

    async fn hold(&self, approval: Approval) -> Result<Approval, BudgetError> {
        let ttl = approval.expires.saturating_sub(now().as_secs()).max(1);
        let json = serde_json::to_string(&approval).unwrap_or_default();
        let script = Script::new(HOLD);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(redis_call_key(
                &approval.requester,
                &approval.vendor,
                &approval.call_sha256,
            ))
            .key(record_key(&approval.id))
            .key(state_key(&approval.id))
            .key(index_key())
            .arg(&approval.id)
            .arg(json)
            .arg(ttl)
            .arg(approval.expires);
        let mut c = self.connection();
        let id: String = self.bounded(invocation.invoke_async(&mut c)).await?;
        if id == approval.id {
            return Ok(approval.with_state("pending"));
        }
        // Held already (by this replica or another): that one stands.
        Ok(self.approval(&id).await?.unwrap_or(approval))
    }

    async fn take_approved(
        &self,
        requester: &str,
        vendor: &str,
        call_sha256: &str,
    ) -> Result<Option<Approval>, BudgetError> {
        let call = redis_call_key(requester, vendor, call_sha256);
        let mut c = self.connection();
        let Some(id): Option<String> = self.bounded(c.get(&call)).await? else {
            return Ok(None);
        };
        let script = Script::new(TAKE);
        let mut invocation = script.prepare_invoke();
        invocation.key(state_key(&id)).key(&call);
        let taken: Option<String> = self.bounded(invocation.invoke_async(&mut c)).await?;
        let Some(state) = taken else {
            return Ok(None);
        };
        Ok(self
            .approval(&id)
            .await?
            .map(|a| a.with_state(&state).with_state("used")))
    }

    async fn step(&self, id: &str, from: State<'_>, to: State<'_>) -> Result<Settled, BudgetError> {
        let Some(approval) = self.approval(id).await? else {
            return Ok(Settled::NotFound);
        };
        let call = redis_call_key(&approval.requester, &approval.vendor, &approval.call_sha256);
        let script = Script::new(STEP);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(state_key(id))
            .key(call)
            .arg(state_text(from))
            .arg(state_text(to))
            .arg(if to.0 == "rejected" { "reject" } else { "keep" });
        let mut c = self.connection();
        let (outcome, now_state): (String, String) =
            self.bounded(invocation.invoke_async(&mut c)).await?;
        Ok(match outcome.as_str() {
            "done" => Settled::Done(approval.with_state(&now_state)),
            "settled" => Settled::AlreadySettled(approval.with_state(&now_state)),
            _ => Settled::NotFound,
        })
    }

    async fn list(&self) -> Result<Vec<Approval>, BudgetError> {
        let mut c = self.connection();
        let index = index_key();
        let now = now().as_secs();
        let _: () = self.bounded(c.zrembyscore(&index, "-inf", now)).await?;
        let ids: Vec<String> = self.bounded(c.zrange(&index, 0, -1)).await?;
        let mut all = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(approval) = self.approval(&id).await? {
                all.push(approval);
            }
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }
}

impl Budgets {
    /// Holds a call for approval, unless the same call of the same
    /// requester is pending already: then that approval stands.
    ///
    /// # Errors
    /// The store cannot be reached.
    pub async fn hold(&self, approval: Approval) -> Result<Approval, BudgetError> {
        match &self.store {
            Store::Memory(_) => Ok(self.approvals.hold(approval.with_state("pending"))),
            Store::Redis(r) => r.hold(approval).await,
        }
    }

    /// The approved approval of this call, used up by this call: `None`
    /// when there is none (never held, pending, rejected, used, expired).
    ///
    /// # Errors
    /// The store cannot be reached.
    pub async fn take_approved(
        &self,
        requester: &str,
        vendor: &str,
        call_sha256: &str,
    ) -> Result<Option<Approval>, BudgetError> {
        match &self.store {
            Store::Memory(_) => Ok(self.approvals.take_approved(requester, vendor, call_sha256)),
            Store::Redis(r) => r.take_approved(requester, vendor, call_sha256).await,
        }
    }

    /// Reserves a pending approval for `by` to settle (`settling`): no
    /// other approver can settle it meanwhile, and it lets no call through.
    /// [`settle`](Self::settle) or [`release`](Self::release) follows.
    ///
    /// # Errors
    /// The store cannot be reached.
    pub async fn reserve(&self, id: &str, by: &str) -> Result<Settled, BudgetError> {
        self.step(id, ("pending", None), ("settling", Some(by)))
            .await
    }

    /// Gives a reservation of `by` back: pending again (its answer could not
    /// be recorded).
    ///
    /// # Errors
    /// The store cannot be reached.
    pub async fn release(&self, id: &str, by: &str) -> Result<Settled, BudgetError> {
        self.step(id, ("settling", Some(by)), ("pending", None))
            .await
    }

    /// Approves (`approve`) or rejects an approval that `by` reserved.
    ///
    /// # Errors
    /// The store cannot be reached.
    pub async fn settle(&self, id: &str, approve: bool, by: &str) -> Result<Settled, BudgetError> {
        let state = if approve { "approved" } else { "rejected" };
        self.step(id, ("settling", Some(by)), (state, Some(by)))
            .await
    }

    async fn step(&self, id: &str, from: State<'_>, to: State<'_>) -> Result<Settled, BudgetError> {
        match &self.store {
            Store::Memory(_) => Ok(self.approvals.step(id, from, to)),
            Store::Redis(r) => r.step(id, from, to).await,
        }
    }

    /// One approval, if it has not expired.
    ///
    /// # Errors
    /// The store cannot be reached.
    pub async fn approval(&self, id: &str) -> Result<Option<Approval>, BudgetError> {
        match &self.store {
            Store::Memory(_) => Ok(self.approvals.get(id)),
            Store::Redis(r) => r.approval(id).await,
        }
    }

    /// Every approval that has not expired, oldest first.
    ///
    /// # Errors
    /// The store cannot be reached.
    pub async fn approvals(&self) -> Result<Vec<Approval>, BudgetError> {
        match &self.store {
            Store::Memory(_) => Ok(self.approvals.list()),
            Store::Redis(r) => r.list().await,
        }
    }

    /// How long a held call waits for its approval, and an approval for
    /// the repeated call.
    pub fn approval_ttl(&self) -> std::time::Duration {
        self.config.approval_ttl
    }

    /// The role a caller needs to approve or reject.
    pub fn approver_role(&self) -> &str {
        &self.config.approver_role
    }
}
