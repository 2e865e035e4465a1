//! The console's index of a trail: one small entry per decision (what the
//! table filters and sorts on, and where the whole record is on disk), the
//! records linked to it, the overview's counts, and recorded target ids to
//! decisions. Built by streaming the files once, then grown as the writer
//! appends; a page reads the few whole records it shows from disk.
//!
//! Filtering here must agree with `audit query`: the simple criteria are
//! compared on the entry, and a target criterion picks candidates from the
//! id index and confirms each with the query's own [`Matcher`] on the
//! whole record.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, BufReader, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::trail::files::{self, FilesError, Line, LineReader};
use crate::trail::filter::{Matcher, QueryFilter, Unjudged};
use crate::trail::pseudonym::PseudonymKey;
use crate::trail::query::{self, completion_key, JoinKey};
use crate::trail::record::{kind, DecisionRecord, Sealed};

/// Where a record is: its file, 1-based line, and byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLoc {
    /// The file's place in [`TrailIndex::files`].
    pub file: u32,
    /// 1-based line number.
    pub line: u32,
    /// Byte offset of the line's start.
    pub offset: u64,
    /// The line's length without its newline.
    pub len: u32,
}

/// An overall decision, as the table shows and counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Every target allowed.
    Allow,
    /// Denied or refused.
    Deny,
    /// Held for a second caller's approval.
    Held,
}

impl Verdict {
    fn of(text: &str) -> Option<Self> {
        match text {
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            "held" => Some(Self::Held),
            _ => None,
        }
    }

    /// As written in the trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Held => "held",
        }
    }

    /// Its column in the per-hour and per-vendor counts.
    pub fn slot(self) -> usize {
        self as usize
    }
}

/// A symbol: an interned vendor, caller, policy or state name.
pub type Sym = u32;

/// One decision, small: what the table filters and sorts on.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The record's seq in its chain.
    pub seq: u64,
    /// Milliseconds since the Unix epoch; `None` when the time does not read.
    pub time_ms: Option<i64>,
    /// The decision record.
    pub loc: RecordLoc,
    /// The overall decision.
    pub verdict: Verdict,
    /// The vendor profile.
    pub vendor: Sym,
    /// The caller, once identified.
    pub caller: Option<Sym>,
    /// The determining policies of every target.
    pub policies: Box<[Sym]>,
    /// The upstream's status from the outcome, or the refusal's.
    pub status: Option<u16>,
    /// The vendor erases later; completion records say how it went.
    pub awaits_completion: bool,
    /// The newest completion state.
    pub completion: Option<Sym>,
    /// The records after it about the same call: outcome, completions,
    /// approvals, in trail order.
    pub linked: Vec<RecordLoc>,
}

impl Entry {
    /// Forwarded, accepted by a vendor that erases later, not final yet
    /// (as `audit query --pending`).
    pub fn is_pending(&self, index: &TrailIndex) -> bool {
        query::is_pending(
            self.awaits_completion,
            self.completion.map(|s| index.name(s)),
        )
    }
}

/// What the overview counts.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Decisions by verdict (allow, deny, held).
    pub verdicts: [u64; 3],
    /// Decisions by vendor and verdict.
    pub vendors: BTreeMap<Sym, [u64; 3]>,
    /// Decisions by hour (Unix hours) and verdict.
    pub hours: BTreeMap<i64, [u64; 3]>,
    /// Denials each policy determined.
    pub denying: HashMap<Sym, u64>,
    /// Records by kind.
    pub kinds: BTreeMap<String, u64>,
    /// Decisions whose target ids are pseudonyms.
    pub pseudonymized: u64,
}

/// A whole trail, indexed.
#[derive(Debug, Default)]
pub struct TrailIndex {
    paths: Vec<PathBuf>,
    /// The trail's files, oldest first.
    pub files: Vec<PathBuf>,
    /// How far each file has been read (bytes) and its lines so far.
    read: Vec<(u64, u32)>,
    /// Decisions in trail order.
    pub entries: Vec<Entry>,
    /// Checkpoint records in trail order, with their seq.
    pub checkpoints: Vec<(u64, RecordLoc)>,
    /// The overview's counts.
    pub counts: Counts,
    /// Lines that are not records.
    pub skipped_lines: u64,
    names: Vec<String>,
    symbols: HashMap<String, Sym>,
    /// Hash of a recorded target id → the first decision naming it (most
    /// ids are named once: no list for them)…
    targets: HashMap<u64, u32>,
    /// …and the later ones, for ids named again.
    targets_again: HashMap<u64, Vec<u32>>,
    awaiting_outcome: HashMap<JoinKey, u32>,
    awaiting_completion: HashMap<String, u32>,
    by_decision_id: HashMap<String, u32>,
    by_approval_id: HashMap<String, Vec<u32>>,
}

/// The fields of a record the index reads (the rest stays on disk).
#[derive(Deserialize)]
struct Light<'a> {
    #[serde(borrow, default)]
    kind: Cow<'a, str>,
    #[serde(default)]
    seq: u64,
    #[serde(borrow, default)]
    time: Cow<'a, str>,
    #[serde(borrow, default)]
    decision_id: Cow<'a, str>,
    #[serde(borrow, default)]
    request_id: Cow<'a, str>,
    #[serde(borrow, default)]
    vendor: Cow<'a, str>,
    #[serde(borrow, default)]
    principal: Option<LightPrincipal<'a>>,
    #[serde(borrow, default)]
    targets: Vec<LightTarget<'a>>,
    #[serde(borrow, default)]
    decision: Cow<'a, str>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(borrow, default)]
    vendor_request_id: Option<Cow<'a, str>>,
    #[serde(default)]
    awaits_completion: bool,
    #[serde(borrow, default)]
    state: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    approval_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pseudonymized: bool,
}

#[derive(Deserialize)]
struct LightPrincipal<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct LightTarget<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    decision: Cow<'a, str>,
    #[serde(borrow, default)]
    policies: Vec<Cow<'a, str>>,
}

/// A decision's page key: its `decision_id`, or `seq-N` in older trails.
pub fn page_key(decision_id: &str, seq: u64) -> String {
    if decision_id.is_empty() {
        format!("seq-{seq}")
    } else {
        decision_id.to_owned()
    }
}

fn id_hash(id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

impl TrailIndex {
    /// Indexes the trail in `paths` (files oldest first; a directory as its
    /// `*.jsonl`).
    ///
    /// # Errors
    /// A file or directory cannot be read.
    pub fn open(paths: &[PathBuf]) -> Result<Self, FilesError> {
        let mut index = Self {
            paths: paths.to_vec(),
            ..Self::default()
        };
        index.refresh()?;
        Ok(index)
    }

    /// Reads what was appended since the last read (and new files after
    /// rotation). Answers how many records were added. A file that shrank
    /// or vanished means the trail was rewritten: the index starts again.
    ///
    /// # Errors
    /// A file or directory cannot be read.
    pub fn refresh(&mut self) -> Result<u64, FilesError> {
        let found = files::trail_files(&self.paths)?;
        let rewritten =
            found.len() < self.files.len()
                || self.files.iter().zip(&found).any(|(a, b)| a != b)
                || self.files.iter().zip(&self.read).any(|(path, (done, _))| {
                    std::fs::metadata(path).map_or(true, |m| m.len() < *done)
                });
        if rewritten {
            *self = Self {
                paths: std::mem::take(&mut self.paths),
                ..Self::default()
            };
        }
        for path in found.into_iter().skip(self.files.len()) {
            self.files.push(path);
            self.read.push((0, 0));
        }
        let mut added = 0;
        for file in 0..self.files.len() {
            added += self.read_file(file).map_err(|source| FilesError {
                path: self.files[file].clone(),
                source,
            })?;
        }
        Ok(added)
    }

    fn read_file(&mut self, file: usize) -> io::Result<u64> {
        let (offset, line_no) = self.read[file];
        let mut handle = File::open(&self.files[file])?;
        if handle.metadata()?.len() <= offset {
            return Ok(0);
        }
        handle.seek(SeekFrom::Start(offset))?;
        let mut reader = LineReader::resume(
            BufReader::with_capacity(1 << 16, handle),
            u64::from(line_no),
            offset,
        );
        let mut added = 0;
        loop {
            let start = reader.position();
            match reader.next_line()? {
                // A line without its newline is still being written: it is
                // read again next time.
                None | Some(Line::Unterminated(_)) => break,
                Some(Line::TooLong) => self.skipped_lines += 1,
                Some(Line::Complete(body)) => {
                    let loc = RecordLoc {
                        file: file as u32,
                        line: reader.line_no() as u32,
                        offset: start,
                        len: body.len() as u32,
                    };
                    match serde_json::from_slice::<Light<'_>>(&body) {
                        Ok(record) if !body.is_empty() => {
                            self.add(&record, loc);
                            added += 1;
                        }
                        _ => self.skipped_lines += 1,
                    }
                }
            }
            self.read[file] = (reader.position(), reader.line_no() as u32);
        }
        Ok(added)
    }

    fn intern(&mut self, name: &str) -> Sym {
        if let Some(sym) = self.symbols.get(name) {
            return *sym;
        }
        let sym = self.names.len() as Sym;
        self.names.push(name.to_owned());
        self.symbols.insert(name.to_owned(), sym);
        sym
    }

    /// The name of a symbol.
    pub fn name(&self, sym: Sym) -> &str {
        self.names.get(sym as usize).map_or("", String::as_str)
    }

    /// How many names are interned (symbols are `0..count`).
    pub fn symbol_count(&self) -> u32 {
        self.names.len() as u32
    }

    /// The symbol of a name, if the trail holds it.
    pub fn symbol(&self, name: &str) -> Option<Sym> {
        self.symbols.get(name).copied()
    }

    fn add(&mut self, record: &Light<'_>, loc: RecordLoc) {
        *self
            .counts
            .kinds
            .entry(record.kind.clone().into_owned())
            .or_default() += 1;
        match record.kind.as_ref() {
            kind::DECISION => self.add_decision(record, loc),
            kind::OUTCOME => {
                let key = JoinKey::of(&record.decision_id, &record.request_id);
                if let Some(at) = self.awaiting_outcome.remove(&key) {
                    let vendor = record.vendor.as_ref();
                    let entry = &mut self.entries[at as usize];
                    entry.status = record.status;
                    entry.awaits_completion = record.awaits_completion;
                    entry.linked.push(loc);
                    if let Some(id) = record.vendor_request_id.as_deref() {
                        if record.awaits_completion {
                            self.awaiting_completion
                                .insert(completion_key(vendor, id), at);
                        }
                    }
                }
            }
            kind::COMPLETION => {
                let id = record.vendor_request_id.as_deref().unwrap_or("");
                let by_request = self
                    .awaiting_completion
                    .get(&completion_key(&record.vendor, id))
                    .copied();
                let by_decision = self
                    .by_decision_id
                    .get(record.decision_id.as_ref())
                    .copied();
                let state = record.state.as_deref().map(|s| self.intern(s));
                // The table's state follows `audit query` (by vendor request
                // id); the decision's page lists the record either way.
                if let Some(at) = by_request {
                    self.entries[at as usize].completion = state;
                }
                if let Some(at) = by_request.or(by_decision) {
                    self.entries[at as usize].linked.push(loc);
                }
            }
            kind::APPROVAL => {
                let mut linked: Vec<u32> = Some(record.decision_id.as_ref())
                    .filter(|id| !id.is_empty())
                    .and_then(|id| self.by_decision_id.get(id))
                    .copied()
                    .into_iter()
                    .collect();
                if let Some(ids) = record
                    .approval_id
                    .as_deref()
                    .and_then(|id| self.by_approval_id.get(id))
                {
                    linked.extend(ids);
                }
                linked.sort_unstable();
                linked.dedup();
                for at in linked {
                    self.entries[at as usize].linked.push(loc);
                }
            }
            kind::CHECKPOINT => self.checkpoints.push((record.seq, loc)),
            _ => {}
        }
    }

    fn add_decision(&mut self, record: &Light<'_>, loc: RecordLoc) {
        let at = self.entries.len() as u32;
        let Some(verdict) = Verdict::of(&record.decision) else {
            self.skipped_lines += 1;
            return;
        };
        let time_ms = humantime::parse_rfc3339(&record.time).ok().map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        });
        let vendor = self.intern(&record.vendor);
        let caller = record.principal.as_ref().map(|p| self.intern(&p.id));
        let mut policies: Vec<Sym> = Vec::new();
        let mut denying: Vec<Sym> = Vec::new();
        for target in &record.targets {
            for policy in &target.policies {
                let sym = self.intern(policy);
                if !policies.contains(&sym) {
                    policies.push(sym);
                }
                if target.decision == "deny" && !denying.contains(&sym) {
                    denying.push(sym);
                }
            }
            let hash = id_hash(&target.id);
            match self.targets.get(&hash) {
                None => {
                    self.targets.insert(hash, at);
                }
                Some(first) if *first == at => {}
                Some(_) => {
                    let again = self.targets_again.entry(hash).or_default();
                    if again.last() != Some(&at) {
                        again.push(at);
                    }
                }
            }
        }
        let counts = &mut self.counts;
        counts.pseudonymized += u64::from(record.pseudonymized);
        counts.verdicts[verdict.slot()] += 1;
        counts.vendors.entry(vendor).or_default()[verdict.slot()] += 1;
        if let Some(ms) = time_ms {
            counts.hours.entry(ms.div_euclid(3_600_000)).or_default()[verdict.slot()] += 1;
        }
        if verdict == Verdict::Deny {
            for sym in denying {
                *counts.denying.entry(sym).or_default() += 1;
            }
        }
        self.awaiting_outcome
            .insert(JoinKey::of(&record.decision_id, &record.request_id), at);
        if !record.decision_id.is_empty() {
            self.by_decision_id
                .insert(record.decision_id.clone().into_owned(), at);
        }
        if let Some(id) = record.approval_id.as_deref() {
            self.by_approval_id
                .entry(id.to_owned())
                .or_default()
                .push(at);
        }
        self.entries.push(Entry {
            seq: record.seq,
            time_ms,
            loc,
            verdict,
            vendor,
            caller,
            policies: policies.into_boxed_slice(),
            status: record.status,
            awaits_completion: false,
            completion: None,
            linked: Vec::new(),
        });
    }

    /// Lines read: records of every kind, and lines that are not records.
    pub fn lines_read(&self) -> u64 {
        self.counts.kinds.values().sum::<u64>() + self.skipped_lines
    }

    /// The key of an entry's decision page (its decision id, read from the
    /// record, or `seq-N`).
    pub fn page_key_of(&self, entry: &Entry) -> String {
        let record = self.read_record(entry.loc).ok();
        let id = record
            .as_ref()
            .and_then(|r| r.get("decision_id"))
            .and_then(Value::as_str)
            .unwrap_or("");
        page_key(id, entry.seq)
    }

    /// The entry a decision page names.
    pub fn by_key(&self, key: &str) -> Option<u32> {
        if let Some(at) = self.by_decision_id.get(key) {
            return Some(*at);
        }
        // Decisions written before decision ids: `seq-N`.
        let seq: u64 = key.strip_prefix("seq-")?.parse().ok()?;
        self.entries
            .iter()
            .position(|e| e.seq == seq)
            .map(|at| at as u32)
    }

    /// Reads a record's line.
    ///
    /// # Errors
    /// The file cannot be read there.
    pub fn read_line(&self, loc: RecordLoc) -> io::Result<Vec<u8>> {
        let file = File::open(&self.files[loc.file as usize])?;
        let mut bytes = vec![0; loc.len as usize];
        file.read_exact_at(&mut bytes, loc.offset)?;
        Ok(bytes)
    }

    /// Reads a record, whole.
    ///
    /// # Errors
    /// The file cannot be read there, or the line is no longer a record
    /// (the file was rewritten).
    pub fn read_record(&self, loc: RecordLoc) -> io::Result<Map<String, Value>> {
        let bytes = self.read_line(loc)?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The entries that match `filter`, in trail order, and the warnings
    /// `audit query` would give for what it could not judge.
    pub fn select(
        &self,
        filter: &QueryFilter,
        key: Option<&PseudonymKey>,
    ) -> (Vec<u32>, Vec<String>) {
        let since = filter.since.map(millis);
        let until = filter.until.map(millis);
        let mut unjudged_time = 0u64;
        let vendor = filter.vendor.as_deref().map(|v| self.symbol(v));
        let caller = filter.caller.as_deref().map(|c| self.symbol(c));
        let policy = filter.policy.as_deref().map(|p| self.symbol(p));
        // A name the trail never holds matches nothing.
        if [vendor, caller, policy]
            .iter()
            .any(|s| matches!(s, Some(None)))
        {
            return (Vec::new(), Vec::new());
        }
        let verdict = filter.decision.and_then(|d| Verdict::of(d.as_str()));
        let simple = |entry: &Entry| {
            verdict.is_none_or(|v| v == entry.verdict)
                && vendor.is_none_or(|v| v == Some(entry.vendor))
                && caller.is_none_or(|c| c == entry.caller)
                && policy.is_none_or(|p| p.is_some_and(|p| entry.policies.contains(&p)))
        };
        let timed = |entry: &Entry, untimed: &mut u64| {
            if since.is_none() && until.is_none() {
                return true;
            }
            let Some(ms) = entry.time_ms else {
                *untimed += 1;
                return false;
            };
            since.is_none_or(|s| ms >= s) && until.is_none_or(|u| ms < u)
        };
        let candidates: Box<dyn Iterator<Item = u32>> = match &filter.target {
            None => Box::new(0..self.entries.len() as u32),
            Some(_) => {
                let matcher = Matcher::new(filter, key);
                let mut picked: Vec<u32> = matcher
                    .target_ids()
                    .iter()
                    .flat_map(|id| {
                        let hash = id_hash(id);
                        let again = self.targets_again.get(&hash).into_iter().flatten();
                        self.targets.get(&hash).into_iter().chain(again)
                    })
                    .copied()
                    .collect();
                picked.sort_unstable();
                picked.dedup();
                Box::new(picked.into_iter())
            }
        };
        let mut chosen: Vec<u32> = candidates
            .filter(|at| {
                let entry = &self.entries[*at as usize];
                simple(entry) && timed(entry, &mut unjudged_time)
            })
            .collect();
        let mut warnings = Vec::new();
        if filter.target.is_some() {
            // Confirm each candidate with the query's own matcher.
            let matcher = Matcher::new(filter, key);
            let mut unjudged = Unjudged::default();
            chosen.retain(|at| {
                let entry = &self.entries[*at as usize];
                self.read_record(entry.loc)
                    .ok()
                    .and_then(|map| Sealed::<DecisionRecord>::from_map(&map).ok())
                    .is_some_and(|sealed| matcher.matches(&sealed, &mut unjudged))
            });
            if key.is_none() && self.counts.pseudonymized > 0 {
                warnings.push(format!(
                    "{} decision(s) name their targets by pseudonym: look a raw id up with the pseudonym key",
                    self.counts.pseudonymized
                ));
            }
        }
        if filter.pending {
            chosen.retain(|at| self.entries[*at as usize].is_pending(self));
        }
        if unjudged_time > 0 {
            warnings.push(format!(
                "{unjudged_time} decision(s) without a readable time were left out of the time filter"
            ));
        }
        (chosen, warnings)
    }
}

fn millis(time: std::time::SystemTime) -> i64 {
    match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}
