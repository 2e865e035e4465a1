//! Budgets counted in Redis, shared by every replica: a charge is one Lua
//! script (read the counts and earlier decisions, judge, count), which Redis
//! runs atomically, so two replicas racing cannot both pass a limit.
//!
//! Keys are per account and window (`eg:budget:{account}:t:<secs>:<index>`)
//! and expire with their window; the account part is a digest of caller and
//! vendor in a hash tag, so one account's keys share a Redis Cluster slot.
//! Targets are kept as the digests the pipeline hands over, never as ids.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::{Account, Ask, BudgetError, Charge, Counts, Limit, Windows};
use crate::digest::sha256_hex;

/// Read the counts and earlier decisions; refuse a repeat or a call past a
/// limit; else count the call and remember its targets (first decision
/// wins). ARGV: targets, targets limit (-1: none), calls limit, targets TTL,
/// calls TTL, repeat rule, decision id.
const CHARGE: &str = r"
local t = tonumber(redis.call('GET', KEYS[1]) or '0')
local c = tonumber(redis.call('GET', KEYS[2]) or '0')
local repeats = {}
local repeated = false
for i = 3, #KEYS do
  local earlier = redis.call('GET', KEYS[i])
  if earlier then repeats[#repeats + 1] = earlier; repeated = true
  else repeats[#repeats + 1] = '' end
end
if repeated and ARGV[6] == 'refuse' then return {'repeated', t, c, repeats} end
local n = tonumber(ARGV[1])
local tl = tonumber(ARGV[2])
local cl = tonumber(ARGV[3])
if tl >= 0 and t + n > tl then return {'targets', t, c, repeats} end
if cl >= 0 and c + 1 > cl then return {'calls', t, c, repeats} end
redis.call('INCRBY', KEYS[1], n)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[5])
for i = 3, #KEYS do redis.call('SET', KEYS[i], ARGV[7], 'EX', ARGV[4], 'NX') end
return {'charged', t, c, repeats}
";

/// Keys outlive their window by this much, for replicas whose clocks differ.
const CLOCK_SLACK_SECS: u64 = 60;

pub(super) struct RedisCounters {
    manager: ConnectionManager,
    script: Script,
    timeout: Duration,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never shown.
        f.debug_struct("RedisCounters")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisCounters {
    /// Counters in the Redis at `url`; the connection is made on first use,
    /// and made again after it breaks.
    pub(super) fn new(url: &str, timeout: Duration) -> Result<Self, BudgetError> {
        // The client's own error can quote the URL, password and all.
        let client = redis::Client::open(url).map_err(|e| {
            BudgetError(format!(
                "budgets.redis_url is not a Redis URL ({:?})",
                e.kind()
            ))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Fail this call fast; the next one tries again.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(timeout);
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| BudgetError(format!("cannot set up the Redis connection: {e}")))?;
        Ok(Self {
            manager,
            script: Script::new(CHARGE),
            timeout,
        })
    }

    pub(super) async fn counts(
        &self,
        account: Account<'_>,
        windows: &Windows,
    ) -> Result<Counts, BudgetError> {
        let keys = Keys::new(account, windows);
        let mut connection = self.manager.clone();
        let names = [&keys.targets, &keys.calls];
        let read = connection.mget::<_, (Option<u64>, Option<u64>)>(&names);
        let (targets, calls) = self.bounded(read).await?;
        Ok(Counts {
            targets: targets.unwrap_or(0),
            calls: calls.unwrap_or(0),
        })
    }

    pub(super) async fn charge(&self, ask: &Ask<'_>) -> Result<Charge, BudgetError> {
        let windows = &ask.windows;
        let keys = Keys::new(ask.account, windows);
        let limit = |l: Option<u64>| l.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let mut invocation = self.script.prepare_invoke();
        invocation.key(&keys.targets).key(&keys.calls);
        for target in ask.targets {
            invocation.key(format!("{}:{target}", keys.erased));
        }
        invocation
            .arg(ask.targets.len())
            .arg(limit(ask.limits.targets))
            .arg(limit(ask.limits.calls))
            .arg(windows.targets_secs + CLOCK_SLACK_SECS)
            .arg(windows.calls_secs + CLOCK_SLACK_SECS)
            .arg(match ask.repeat {
                super::RepeatRule::Forward => "forward",
                super::RepeatRule::Refuse => "refuse",
            })
            .arg(ask.decision_id);
        let mut connection = self.manager.clone();
        let (verdict, targets, calls, earlier): (String, u64, u64, Vec<String>) = self
            .bounded(invocation.invoke_async(&mut connection))
            .await?;
        let before = Counts { targets, calls };
        let repeats: Vec<Option<String>> = earlier
            .into_iter()
            .map(|id| Some(id).filter(|id| !id.is_empty()))
            .collect();
        // The script judged already; the shared rule says what it meant.
        let judged = ask.judge(before, repeats);
        let agrees = matches!(
            (&judged, verdict.as_str()),
            (Charge::Charged { .. }, "charged")
                | (Charge::Repeated { .. }, "repeated")
                | (
                    Charge::Exceeded {
                        limit: Limit::Targets,
                        ..
                    },
                    "targets"
                )
                | (
                    Charge::Exceeded {
                        limit: Limit::Calls,
                        ..
                    },
                    "calls"
                )
        );
        if agrees {
            Ok(judged)
        } else {
            // Only a script and a gateway disagreeing on the rule gets here:
            // refuse rather than guess which one counted.
            Err(BudgetError(format!(
                "the Redis budget script answered `{verdict}`, the gateway judged {judged:?}"
            )))
        }
    }

    /// A handle on the shared, reconnecting connection.
    pub(super) fn connection(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// One Redis round trip, bounded by the configured timeout (the
    /// connection's own timeouts hold too; this also bounds reconnecting).
    pub(super) async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BudgetError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(BudgetError(describe(&e))),
            Err(_) => Err(BudgetError(format!(
                "no answer from Redis within {}",
                humantime::format_duration(self.timeout)
            ))),
        }
    }
}

/// A Redis error without anything the URL holds.
fn describe(error: &redis::RedisError) -> String {
    if error.is_connection_refusal() {
        "Redis refused the connection".into()
    } else if error.is_timeout() {
        "Redis did not answer in time".into()
    } else if error.is_io_error() || error.is_connection_dropped() {
        "the connection to Redis broke".into()
    } else {
        format!("Redis answered an error ({:?})", error.kind())
    }
}

/// One account's keys in one pair of windows.
struct Keys {
    targets: String,
    calls: String,
    /// Prefix of the erased-target keys.
    erased: String,
}

impl Keys {
    fn new(account: Account<'_>, windows: &Windows) -> Self {
        let digest = sha256_hex(format!("{}\0{}", account.caller, account.vendor));
        let tag = &digest[..24];
        Self {
            targets: format!(
                "eg:budget:{{{tag}}}:t:{}:{}",
                windows.targets_secs, windows.targets
            ),
            calls: format!(
                "eg:budget:{{{tag}}}:c:{}:{}",
                windows.calls_secs, windows.calls
            ),
            erased: format!(
                "eg:budget:{{{tag}}}:e:{}:{}",
                windows.targets_secs, windows.targets
            ),
        }
    }
}
