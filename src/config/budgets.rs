//! `[budgets]` as written, and its check into [`BudgetConfig`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::budget::{Backend, BudgetConfig, Limits, RepeatRule};
use crate::setting::InvalidValue;

/// `[budgets]`: per caller and vendor, how many targets and calls may be
/// erased per window, where the counts live, and how repeats are answered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetsToml {
    /// `memory` (this replica counts alone) or `redis` (replicas share one
    /// count).
    pub backend: BackendKind,
    /// The Redis server, for `backend = "redis"`.
    pub redis_url: Option<String>,
    /// Name of an environment variable holding the Redis URL instead (for a
    /// URL with a password).
    pub redis_url_env: Option<String>,
    /// How long one Redis round trip may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// `forward` or `refuse` a repeated erasure of a target.
    pub repeat: RepeatToml,
    /// Limits of callers without their own.
    pub default: LimitsToml,
    /// Limits per caller id.
    pub caller: BTreeMap<String, LimitsToml>,
    /// How long a call held by an `@approval` forbid waits for approval.
    #[serde(with = "humantime_serde")]
    pub approval_ttl: Duration,
    /// The role a caller needs to approve or reject a held call.
    pub approver_role: String,
}

impl Default for BudgetsToml {
    fn default() -> Self {
        Self {
            backend: BackendKind::Memory,
            redis_url: None,
            redis_url_env: None,
            timeout: BudgetConfig::default().timeout,
            repeat: RepeatToml::Forward,
            default: LimitsToml::default(),
            caller: BTreeMap::new(),
            approval_ttl: BudgetConfig::default().approval_ttl,
            approver_role: BudgetConfig::default().approver_role,
        }
    }
}

/// `budgets.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// In this process.
    Memory,
    /// In Redis.
    Redis,
}

/// `budgets.repeat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepeatToml {
    /// Forward a repeat (recorded as one).
    Forward,
    /// Refuse it with the earlier decision's id.
    Refuse,
}

/// One set of limits as written; a key left out is unlimited (targets,
/// calls) or the default window.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsToml {
    /// Targets per `targets_window`.
    pub targets: Option<u64>,
    /// e.g. `"1h"`.
    #[serde(with = "humantime_serde")]
    pub targets_window: Option<Duration>,
    /// Calls per `calls_window`.
    pub calls: Option<u64>,
    /// e.g. `"1m"`.
    #[serde(with = "humantime_serde")]
    pub calls_window: Option<Duration>,
}

impl LimitsToml {
    /// These limits over `base`, checked; `key` names them in errors.
    fn over(&self, base: &Limits, key: &str) -> Result<Limits, InvalidValue> {
        let window = |value: Option<Duration>, name: &str, base: Duration| {
            let value = value.unwrap_or(base);
            if value.as_secs() == 0 || value.subsec_nanos() != 0 {
                return Err(InvalidValue::new(
                    format!("{key}.{name}"),
                    "must be a whole number of seconds, at least 1s (e.g. \"1m\", \"1h\")",
                ));
            }
            Ok(value)
        };
        Ok(Limits {
            targets: self.targets.or(base.targets),
            targets_window: window(self.targets_window, "targets_window", base.targets_window)?,
            calls: self.calls.or(base.calls),
            calls_window: window(self.calls_window, "calls_window", base.calls_window)?,
        })
    }
}

impl TryFrom<BudgetsToml> for BudgetConfig {
    type Error = InvalidValue;

    fn try_from(raw: BudgetsToml) -> Result<Self, InvalidValue> {
        let backend = match raw.backend {
            BackendKind::Memory => {
                if raw.redis_url.is_some() || raw.redis_url_env.is_some() {
                    return Err(InvalidValue::new(
                        "budgets.redis_url",
                        "is only read with backend = \"redis\"",
                    ));
                }
                Backend::Memory
            }
            BackendKind::Redis => Backend::Redis {
                url: redis_url(&raw)?,
            },
        };
        if raw.timeout.is_zero() {
            return Err(InvalidValue::new("budgets.timeout", "must be more than 0"));
        }
        if raw.approval_ttl.as_secs() == 0 {
            return Err(InvalidValue::new(
                "budgets.approval_ttl",
                "must be at least 1s",
            ));
        }
        if raw.approver_role.trim().is_empty() {
            return Err(InvalidValue::new(
                "budgets.approver_role",
                "must name a role",
            ));
        }
        let default = raw.default.over(&Limits::default(), "budgets.default")?;
        let callers = raw
            .caller
            .iter()
            .map(|(id, limits)| {
                limits
                    .over(&default, &format!("budgets.caller.{id}"))
                    .map(|l| (id.clone(), l))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            backend,
            default,
            callers,
            repeat: match raw.repeat {
                RepeatToml::Forward => RepeatRule::Forward,
                RepeatToml::Refuse => RepeatRule::Refuse,
            },
            timeout: raw.timeout,
            approval_ttl: raw.approval_ttl,
            approver_role: raw.approver_role,
        })
    }
}

/// The Redis URL from the file or the named environment variable.
fn redis_url(raw: &BudgetsToml) -> Result<String, InvalidValue> {
    let url = match (&raw.redis_url, &raw.redis_url_env) {
        (Some(_), Some(_)) => {
            return Err(InvalidValue::new(
                "budgets.redis_url",
                "set redis_url or redis_url_env, not both",
            ))
        }
        (Some(url), None) => url.clone(),
        (None, Some(var)) => std::env::var(var).map_err(|_| {
            InvalidValue::new(
                "budgets.redis_url_env",
                format!("the environment variable `{var}` is not set"),
            )
        })?,
        (None, None) => {
            return Err(InvalidValue::new(
                "budgets.redis_url",
                "backend = \"redis\" needs redis_url (e.g. \"redis://127.0.0.1:6379\") or redis_url_env",
            ))
        }
    };
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        // Never quote the URL: it may hold a password.
        return Err(InvalidValue::new(
            "budgets.redis_url",
            "must start with redis:// or rediss://",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BudgetConfig, String> {
        let raw: BudgetsToml = toml::from_str(text).map_err(|e| e.to_string())?;
        BudgetConfig::try_from(raw).map_err(|e| format!("{}: {}", e.key, e.message))
    }

    #[test]
    fn callers_inherit_the_default_limits_they_leave_out() {
        let config = parse(
            "[default]\ntargets = 200\ncalls = 20\n[caller.bulk]\ntargets = 5000\ntargets_window = \"1d\"\n",
        )
        .expect("valid");
        assert_eq!(config.default.targets, Some(200));
        assert_eq!(config.default.targets_window, Duration::from_secs(3600));
        let bulk = config.callers["bulk"];
        assert_eq!(bulk.targets, Some(5000));
        assert_eq!(bulk.targets_window, Duration::from_secs(86_400));
        assert_eq!(
            (bulk.calls, bulk.calls_window),
            (Some(20), Duration::from_secs(60))
        );
        assert_eq!(config.backend, Backend::Memory);
    }

    #[test]
    fn bad_budgets_are_named_by_key() {
        for (text, key) in [
            ("backend = \"redis\"", "budgets.redis_url"),
            (
                "backend = \"redis\"\nredis_url = \"http://x\"",
                "budgets.redis_url",
            ),
            ("redis_url = \"redis://x\"", "budgets.redis_url"),
            (
                "[default]\ncalls_window = \"1500ms\"",
                "budgets.default.calls_window",
            ),
            (
                "[caller.x]\ntargets_window = \"0s\"",
                "budgets.caller.x.targets_window",
            ),
            ("timeout = \"0s\"", "budgets.timeout"),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.starts_with(key), "{text}: {error}");
        }
        assert!(parse("limit = 3")
            .expect_err("unknown")
            .contains("unknown field"));
    }

    #[test]
    fn a_redis_url_with_a_password_is_never_shown() {
        let config = parse("backend = \"redis\"\nredis_url = \"redis://:hunter2@127.0.0.1:1\"")
            .expect("valid");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
