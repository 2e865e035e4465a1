//! `audit query`'s filter: which decisions to list (`--since`, `--until`,
//! `--decision`, `--vendor`, `--caller`, `--target`, `--policy`), the
//! parsing of its time and decision values, and matching it against a
//! decision record. [`super::query`] reads the trail and applies it.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use super::pseudonym::PseudonymKey;
use super::record::{DecisionRecord, Sealed, TargetRecord};
use crate::setting::IdForm;

/// An overall decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionValue {
    /// Every target allowed.
    Allow,
    /// At least one target denied, or the call refused.
    Deny,
    /// Held for a second caller's approval.
    Held,
}

impl DecisionValue {
    /// As written in the trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Held => "held",
        }
    }
}

impl FromStr for DecisionValue {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Self, FilterError> {
        match text {
            "allow" => Ok(Self::Allow),
            "deny" => Ok(Self::Deny),
            "held" => Ok(Self::Held),
            other => Err(FilterError::Decision(other.to_owned())),
        }
    }
}

/// Which decisions to list; every criterion given must hold.
#[derive(Debug, Clone, Default)]
pub struct QueryFilter {
    /// Decisions at or after this time.
    pub since: Option<SystemTime>,
    /// Decisions before this time.
    pub until: Option<SystemTime>,
    /// Decisions with this overall decision.
    pub decision: Option<DecisionValue>,
    /// Decisions about calls to this vendor profile.
    pub vendor: Option<String>,
    /// Decisions about calls by this caller (principal id).
    pub caller: Option<String>,
    /// Decisions naming this target: a raw id (`u-1`), `type::id`
    /// (`Kore::User::u-1`) or a pseudonym. In a pseudonymized record the raw
    /// id is compared as its pseudonym, which needs the pseudonym key.
    pub target: Option<String>,
    /// Decisions that this policy id determined for some target.
    pub policy: Option<String>,
    /// Only erasures forwarded to a vendor that carries them out later and
    /// not yet completed (`audit query --pending`).
    pub pending: bool,
}

/// A `--since`, `--until` or `--decision` value is refused.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// A time filter is not a date or an RFC 3339 time.
    #[error("`{text}` is not a time: use RFC 3339 (2026-11-22T19:20:00Z, 2026-11-22T20:20:00+01:00) or a date (2026-11-22, midnight UTC)")]
    Time {
        /// What was given.
        text: String,
    },
    /// A decision filter is not `allow`, `deny` or `held`.
    #[error("`{0}` is not a decision: use allow, deny or held")]
    Decision(String),
}

/// Parses a `--since`/`--until` value: RFC 3339 with `Z` or a numeric
/// offset (`2026-11-22T19:20:00Z`, `2026-12-01T00:00:00+01:00`; fractions,
/// lower-case `t`/`z` and a space for `T` accepted; no offset means UTC) or
/// a date (`2026-11-22`, meaning midnight UTC).
///
/// # Errors
/// Neither form.
pub fn parse_time(text: &str) -> Result<SystemTime, FilterError> {
    let refused = || FilterError::Time {
        text: text.to_owned(),
    };
    let upper = text.trim().to_ascii_uppercase();
    let is_date = upper.len() == 10 && upper.bytes().filter(|b| *b == b'-').count() == 2;
    if is_date {
        return humantime::parse_rfc3339(&format!("{upper}T00:00:00Z")).map_err(|_| refused());
    }
    let (local, east) = split_offset(&upper).ok_or_else(refused)?;
    // humantime reads UTC only, and lets some trailing text through: check
    // the shape here, read the local time as UTC, then take the offset off.
    let fraction = local.get(19..).unwrap_or("");
    let fraction_ok = fraction.is_empty()
        || (fraction.len() > 1
            && fraction.starts_with('.')
            && fraction[1..].bytes().all(|b| b.is_ascii_digit()));
    if local.len() < 19 || !fraction_ok {
        return Err(refused());
    }
    let as_utc = humantime::parse_rfc3339_weak(&format!("{local}Z")).map_err(|_| refused())?;
    let shift = Duration::from_secs(east.unsigned_abs());
    let utc = if east >= 0 {
        as_utc.checked_sub(shift)
    } else {
        as_utc.checked_add(shift)
    };
    utc.ok_or_else(refused)
}

/// `…T19:20:00+01:00` → (`…T19:20:00`, 3600): the local time and its offset
/// east of UTC in seconds (`Z`, `-00:00` and no offset: 0).
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix('Z') {
        return Some((local, 0));
    }
    let at = text.len().checked_sub(6)?;
    let (local, offset) = text.split_at_checked(at)?;
    let sign = match offset.as_bytes() {
        [b'+', _, _, b':', _, _] => 1,
        [b'-', _, _, b':', _, _] => -1,
        // No offset (a date's `-` is further left): UTC.
        _ => return Some((text, 0)),
    };
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = offset.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
        part.parse().ok()
    };
    let (hours, minutes) = (number(1..3)?, number(4..6)?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((local, sign * (hours * 3600 + minutes * 60)))
}

/// Decisions the filter left out without being able to judge them.
#[derive(Debug, Default)]
pub struct Unjudged {
    /// No readable time, under a time filter.
    untimed: u64,
    /// Pseudonymized, under a target filter, and no pseudonym key.
    pseudonymized_unsearchable: u64,
}

impl Unjudged {
    /// A warning for the reviewer for each kind of decision left out.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.untimed > 0 {
            warnings.push(format!(
                "{} decision(s) without a readable time were left out of the time filter",
                self.untimed
            ));
        }
        if self.pseudonymized_unsearchable > 0 {
            warnings.push(format!(
                "{} pseudonymized decision(s) could not be searched by target: pass the pseudonym key",
                self.pseudonymized_unsearchable
            ));
        }
        warnings
    }
}

/// A [`QueryFilter`] applied to decision records.
pub struct Matcher<'a> {
    filter: &'a QueryFilter,
    /// The target filter's pseudonyms, when a key is given.
    target_pseudonyms: Vec<String>,
}

impl<'a> Matcher<'a> {
    /// The matcher of `filter`; `key` finds a raw target id among
    /// pseudonyms.
    pub fn new(filter: &'a QueryFilter, key: Option<&PseudonymKey>) -> Self {
        // Pseudonyms are made of ids in the vendor's form: the id as
        // given, without its `type::`, and in each e-mail form.
        let target_pseudonyms = key
            .zip(filter.target.as_deref())
            .map(|(key, target)| {
                let bare = target.rsplit_once("::").map_or(target, |(_, id)| id);
                let mut ids = vec![target.to_owned(), bare.to_owned()];
                ids.extend(
                    [IdForm::EmailCasefold, IdForm::EmailDomainCasefold].map(|f| f.apply(bare)),
                );
                ids.dedup();
                ids.iter().map(|id| key.pseudonym(id)).collect()
            })
            .unwrap_or_default();
        Self {
            filter,
            target_pseudonyms,
        }
    }

    /// Every recorded id that the target filter can match ([`Self::is_target`]
    /// holds only for a record whose id is one of these): the filter's text
    /// after each `::` and whole, in each id form, and their pseudonyms. An
    /// index of recorded ids finds the candidates with it.
    pub fn target_ids(&self) -> Vec<String> {
        let Some(wanted) = self.filter.target.as_deref() else {
            return Vec::new();
        };
        let mut bare: Vec<&str> = vec![wanted];
        bare.extend(wanted.match_indices("::").map(|(at, _)| &wanted[at + 2..]));
        let mut ids: Vec<String> = Vec::new();
        for id in bare {
            for form in [
                IdForm::Exact,
                IdForm::EmailCasefold,
                IdForm::EmailDomainCasefold,
            ] {
                ids.push(form.apply(id));
            }
        }
        ids.extend(self.target_pseudonyms.iter().cloned());
        ids.sort();
        ids.dedup();
        ids
    }

    /// Whether `t` is the target `wanted` names: its id (`u-1`), `type::id`
    /// or pseudonym, compared in the form the vendor compares ids in (an
    /// e-mail address ignoring case where the record says so).
    pub fn is_target(&self, wanted: &str, t: &TargetRecord, pseudonymized: bool) -> bool {
        if pseudonymized {
            return t.id == wanted || self.target_pseudonyms.contains(&t.id);
        }
        let bare = wanted
            .strip_prefix(t.entity_type.as_str())
            .and_then(|rest| rest.strip_prefix("::"))
            .unwrap_or(wanted);
        let form = t
            .id_form
            .as_deref()
            .and_then(|f| serde_json::from_value::<IdForm>(f.into()).ok())
            .unwrap_or_default();
        t.id == bare || t.id == form.apply(bare)
    }

    /// Whether the decision matches; counts it in `unjudged` when that
    /// cannot be told.
    pub fn matches(&self, sealed: &Sealed<DecisionRecord>, unjudged: &mut Unjudged) -> bool {
        let filter = self.filter;
        let record = &sealed.record;
        if filter
            .decision
            .is_some_and(|d| d.as_str() != record.decision)
            || filter.vendor.as_ref().is_some_and(|v| *v != record.vendor)
        {
            return false;
        }
        if let Some(caller) = &filter.caller {
            if record.principal.as_ref().map(|p| &p.id) != Some(caller) {
                return false;
            }
        }
        if filter.since.is_some() || filter.until.is_some() {
            let Ok(time) = humantime::parse_rfc3339(&sealed.time) else {
                unjudged.untimed += 1;
                return false;
            };
            if filter.since.is_some_and(|since| time < since)
                || filter.until.is_some_and(|until| time >= until)
            {
                return false;
            }
        }
        if let Some(policy) = &filter.policy {
            if !record.targets.iter().any(|t| t.policies.contains(policy)) {
                return false;
            }
        }
        if let Some(target) = &filter.target {
            let found = record
                .targets
                .iter()
                .any(|t| self.is_target(target, t, record.pseudonymized));
            if !found {
                if record.pseudonymized && self.target_pseudonyms.is_empty() {
                    unjudged.pseudonymized_unsearchable += 1;
                }
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_and_until_accept_rfc_3339_with_an_offset() {
        let utc = |text: &str| parse_time(text).unwrap();
        assert_eq!(
            utc("2026-12-01T00:00:00+01:00"),
            utc("2026-11-30T23:00:00Z")
        );
        assert_eq!(
            utc("2026-11-30T18:30:00.250-05:30"),
            utc("2026-12-01T00:00:00.250Z")
        );
        assert_eq!(utc("2026-12-01t00:00:00z"), utc("2026-12-01T00:00:00Z"));
        assert_eq!(utc("2026-12-01 00:00:00-00:00"), utc("2026-12-01"));
        assert_eq!(utc("2026-12-01T00:00:00+00:00"), utc("2026-12-01"));
        for bad in [
            "2026-12-01T00:00:00+1:00",
            "2026-12-01T00:00:00+24:00",
            "2026-12-01T00:00:00+01:60",
            "2026-12-01T00:00:00+0100",
            "2026-12-01T00:00:00Zjunk",
            "2026-12-01T00:00:00.Z",
            "2026-12-01T00:00+01:00",
            "2026-12-01+01:00",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        let message = parse_time("tomorrow").unwrap_err().to_string();
        assert!(message.contains("+01:00"), "{message}");
    }

    #[test]
    fn times_and_decisions_are_parsed_or_refused() {
        assert!(parse_time("2026-11-22T19:20:00.123Z").is_ok());
        assert!(parse_time("2026-11-22 19:20:00").is_ok());
        assert!(matches!(
            parse_time("yesterday"),
            Err(FilterError::Time { .. })
        ));
        assert!("maybe".parse::<DecisionValue>().is_err());
    }
}
