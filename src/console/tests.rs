//! The console's index against the CLI's readers: every filter selects
//! what `audit query` lists (with the same outcome and completion joined),
//! a receipt built from the index's picks is the `audit receipt` one, the
//! index follows appended records, and a tampered trail is reported broken.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::detail::receipt_of;
use super::index::TrailIndex;
use super::{ChainCheck, Console, ConsoleSettings};
use crate::trail::chain::{seal, GENESIS};
use crate::trail::filter::{parse_time, DecisionValue, QueryFilter};
use crate::trail::pseudonym::PseudonymKey;
use crate::trail::query::query_files;
use crate::trail::receipt::receipt;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

const VENDORS: [&str; 3] = ["seam", "kore", "botpenguin"];
const CALLERS: [Option<&str>; 3] = [Some("privacy-ops"), Some("support"), None];
const IDS: [&str; 5] = ["Owner@Example.com", "u-1", "u-2", "c-9", "Space::s-1"];

/// A varied trail: three vendors, callers, verdicts, e-mail ids compared
/// ignoring case, pseudonymized targets, outcomes (some awaiting
/// completion), completions, approvals and checkpoints.
fn records(n: usize, key: &PseudonymKey) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for i in 0..n {
        let vendor = VENDORS[i % 3];
        let verdict = ["allow", "deny", "held", "allow"][i % 4];
        let pseudonymized = i % 7 == 3;
        let targets: Vec<Value> = (0..1 + i % 3)
            .map(|t| {
                let raw = IDS[(i + t) % IDS.len()];
                let form = raw.contains('@').then_some("email_casefold");
                let stored = if form.is_some() { raw.to_lowercase() } else { raw.to_owned() };
                let id = if pseudonymized { key.pseudonym(&stored) } else { stored };
                let decision = if verdict == "deny" && t == 0 { "deny" } else { "allow" };
                let policy = if decision == "deny" { format!("never-{}", i % 2) } else { "officers-may-erase".into() };
                let mut target = json!({"type": format!("{}::User", vendor), "id": id, "decision": decision, "policies": [policy], "errors": []});
                if let Some(form) = form {
                    target["id_form"] = form.into();
                }
                target
            })
            .chain([json!({"type": format!("{}::User", vendor), "id": if pseudonymized { key.pseudonym(&format!("solo-{i}")) } else { format!("solo-{i}") }, "decision": "allow", "policies": ["officers-may-erase"], "errors": []})])
            .collect();
        let decision_id = if i % 11 == 5 {
            String::new()
        } else {
            format!("d-{i}")
        };
        let mut decision = json!({
            "kind": "decision", "time": format!("2026-12-0{}T{:02}:00:00.000Z", 1 + i % 5, i % 24),
            "replica": "a", "decision_id": decision_id, "request_id": format!("r-{}", i % 40), "vendor": vendor, "upstream": vendor,
            "action": "X::Action::\"erase\"", "principal": CALLERS[i % 3].map(|id| json!({"id": id, "roles": [], "source": "token"})),
            "credential": {"kind": "bearer", "fingerprint": "abc"}, "client": {"ip": "127.0.0.1", "cert": false},
            "targets": targets, "decision": verdict, "mode": "enforce",
            "effect": if verdict == "allow" { "forwarded" } else { "refused" },
            "reasons": [], "context": {}, "policy_version": "sha256:00",
        });
        if pseudonymized {
            decision["pseudonymized"] = true.into();
        }
        if verdict == "held" {
            decision["approval_id"] = format!("ap-{i}").into();
        }
        out.push(object(decision));
        if verdict == "allow" {
            let awaits = vendor == "kore";
            let mut outcome = json!({"kind": "outcome", "time": "2026-12-05T00:00:00.000Z", "replica": "a",
                "decision_id": decision_id, "request_id": format!("r-{}", i % 40), "vendor": vendor,
                "status": if i % 8 == 0 { 502 } else { 200 }, "latency_ms": 5});
            if awaits {
                outcome["awaits_completion"] = true.into();
                outcome["vendor_request_id"] = format!("vr-{i}").into();
            }
            out.push(object(outcome));
            if awaits && i % 3 == 1 {
                let state = if i % 2 == 0 {
                    "completed"
                } else {
                    "in_progress"
                };
                out.push(object(json!({"kind": "completion", "time": "2026-12-05T01:00:00.000Z", "replica": "a",
                    "decision_id": "", "vendor_request_id": format!("vr-{i}"), "vendor": vendor, "upstream": vendor,
                    "source": "poll", "request_id": "poll-1", "state": state,
                    "targets": [{"type": "kore::User", "id": IDS[i % IDS.len()], "status": "x", "state": if state == "completed" { "succeeded" } else { "pending" }}]})));
            }
        }
        if verdict == "held" && i % 8 == 2 {
            out.push(object(json!({"kind": "approval", "time": "2026-12-05T02:00:00.000Z", "replica": "a",
                "approval_id": format!("ap-{i}"), "decision_id": decision_id, "state": "approved",
                "approver": {"id": "lead", "roles": [], "source": "token"}, "requester": "privacy-ops",
                "vendor": vendor, "action": "X", "call_sha256": "00", "expires": 0})));
        }
        if i % 13 == 12 {
            out.push(object(
                json!({"kind": "checkpoint", "time": "2026-12-05T03:00:00.000Z", "replica": "a",
                "head_seq": out.len(), "head_hash": "x", "key_id": "k", "signature": "s"}),
            ));
        }
    }
    out
}

/// Seals and writes records into two files; answers the trail directory.
fn write(dir: &Path, records: Vec<Map<String, Value>>, split: usize) -> PathBuf {
    let trail = dir.join("trail");
    std::fs::create_dir_all(&trail).unwrap();
    let mut prev = GENESIS.to_owned();
    let mut files = [Vec::new(), Vec::new()];
    for (i, mut record) in records.into_iter().enumerate() {
        if record["kind"] == "checkpoint" {
            // What the writer signs: the head it is sealed after.
            record.insert("head_seq".into(), (i as u64).into());
            record.insert("head_hash".into(), prev.clone().into());
        }
        let line = seal(&mut record, i as u64 + 1, &prev);
        prev = record["hash"].as_str().unwrap().to_owned();
        files[usize::from(i >= split)].extend_from_slice(&line);
    }
    for (n, text) in files.iter().enumerate() {
        std::fs::write(
            trail.join(format!("decisions-a-2026120{}T000000Z.jsonl", n + 1)),
            text,
        )
        .unwrap();
    }
    trail
}

fn key(dir: &Path) -> PseudonymKey {
    let path = dir.join("pseudonym.key");
    std::fs::write(&path, "p".repeat(40)).unwrap();
    PseudonymKey::load(&path).unwrap()
}

fn filters() -> Vec<QueryFilter> {
    let mut all = vec![QueryFilter::default()];
    let some = |text: &str| Some(text.to_owned());
    for vendor in VENDORS {
        all.push(QueryFilter {
            vendor: some(vendor),
            ..Default::default()
        });
    }
    for caller in ["privacy-ops", "support", "nobody"] {
        all.push(QueryFilter {
            caller: some(caller),
            ..Default::default()
        });
    }
    for decision in [
        DecisionValue::Allow,
        DecisionValue::Deny,
        DecisionValue::Held,
    ] {
        all.push(QueryFilter {
            decision: Some(decision),
            ..Default::default()
        });
    }
    for target in [
        "owner@example.com",
        "OWNER@EXAMPLE.COM",
        "u-1",
        "Space::s-1",
        "s-1",
        "kore::User::u-2",
        "seam::User::u-2",
        "nobody",
    ] {
        all.push(QueryFilter {
            target: some(target),
            ..Default::default()
        });
    }
    for policy in ["never-0", "never-1", "officers-may-erase"] {
        all.push(QueryFilter {
            policy: some(policy),
            decision: Some(DecisionValue::Deny),
            ..Default::default()
        });
    }
    all.push(QueryFilter {
        pending: true,
        ..Default::default()
    });
    all.push(QueryFilter {
        since: Some(parse_time("2026-12-02T05:00:00Z").unwrap()),
        until: Some(parse_time("2026-12-04").unwrap()),
        vendor: some("kore"),
        ..Default::default()
    });
    all
}

/// The rows of `audit query` as (decision id or request id, status,
/// completion), and the console's picks the same way.
type Row = (String, Option<u16>, Option<String>);

fn console_rows(index: &TrailIndex, filter: &QueryFilter, key: Option<&PseudonymKey>) -> Vec<Row> {
    index
        .select(filter, key)
        .0
        .iter()
        .map(|at| {
            let entry = &index.entries[*at as usize];
            let record = index.read_record(entry.loc).unwrap();
            let id = record["decision_id"].as_str().unwrap();
            let id = if id.is_empty() {
                record["request_id"].as_str().unwrap()
            } else {
                id
            };
            (
                id.to_owned(),
                entry.status,
                entry.completion.map(|s| index.name(s).to_owned()),
            )
        })
        .collect()
}

#[test]
fn every_filter_selects_what_audit_query_lists() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let trail = write(dir.path(), records(240, &key), 150);
    let paths = vec![trail];
    let index = TrailIndex::open(&paths).unwrap();
    for filter in filters() {
        for key in [None, Some(&key)] {
            let query: Vec<Row> = query_files(&paths, &filter, key)
                .unwrap()
                .rows
                .into_iter()
                .map(|r| {
                    (
                        r.decision_id.unwrap_or(r.request_id),
                        r.status,
                        r.completion,
                    )
                })
                .collect();
            let console = console_rows(&index, &filter, key);
            assert_eq!(console, query, "{filter:?} key {}", key.is_some());
        }
    }
    // The data exercises what it claims to.
    let everything = console_rows(&index, &QueryFilter::default(), None);
    assert_eq!(everything.len(), 240);
    assert!(everything
        .iter()
        .any(|r| r.2.as_deref() == Some("completed")));
    assert!(everything.iter().any(|r| r.1 == Some(502)));
    assert!(index.counts.pseudonymized > 0);
    assert_eq!(index.counts.verdicts, [120, 60, 60]);
}

#[test]
fn a_receipt_from_the_index_is_the_audit_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let trail = write(dir.path(), records(120, &key), 70);
    let paths = vec![trail];
    let index = TrailIndex::open(&paths).unwrap();
    let mut states = Vec::new();
    let solos: Vec<String> = (0..40).map(|i| format!("solo-{i}")).collect();
    let targets = IDS
        .iter()
        .copied()
        .chain(["owner@EXAMPLE.com", "kore::User::u-1", "nobody"]);
    for target in targets.chain(solos.iter().map(String::as_str)) {
        for key in [None, Some(&key)] {
            let expected = receipt(&paths, target, key).unwrap();
            let got = receipt_of(&index, target, key);
            let seqs = |r: &crate::trail::receipt::Receipt| -> Vec<u64> {
                r.records
                    .iter()
                    .chain(&r.checkpoint)
                    .map(|m| m["seq"].as_u64().unwrap())
                    .collect()
            };
            assert_eq!(
                seqs(&got),
                seqs(&expected),
                "{target} key {}",
                key.is_some()
            );
            assert_eq!(got, expected, "{target}");
            states.push(expected.state);
        }
    }
    for state in [
        "erased",
        "pending",
        "refused",
        "held",
        "not_found",
        "failed",
    ] {
        assert!(
            states.iter().any(|s| s == state),
            "no {state} receipt among {states:?}"
        );
    }
}

#[test]
fn the_index_follows_appended_records_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let all = records(60, &key);
    let trail = write(dir.path(), all, 1_000);
    let first = trail.join("decisions-a-20261201T000000Z.jsonl");
    let text = std::fs::read(&first).unwrap();
    // Start with half the file and a torn last line.
    let cut = text.len() / 2;
    std::fs::write(&first, &text[..cut]).unwrap();
    std::fs::remove_file(trail.join("decisions-a-20261202T000000Z.jsonl")).unwrap();
    let paths = vec![trail.clone()];
    let mut index = TrailIndex::open(&paths).unwrap();
    let early = index.entries.len();
    assert!(early > 0 && early < 60);
    assert_eq!(
        index.skipped_lines, 0,
        "a torn last line is waited for, not skipped"
    );
    std::fs::write(&first, &text).unwrap();
    assert!(index.refresh().unwrap() > 0);
    assert_eq!(index.entries.len(), 60);
    // A rotated file after it.
    let more = write(&dir.path().join("more"), records(10, &key), 1_000);
    std::fs::copy(
        more.join("decisions-a-20261201T000000Z.jsonl"),
        trail.join("decisions-a-20261203T000000Z.jsonl"),
    )
    .unwrap();
    index.refresh().unwrap();
    assert_eq!(index.entries.len(), 70);
    assert_eq!(index.files.len(), 2);
}

#[test]
fn a_tampered_trail_is_reported_broken_at_its_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let trail = write(dir.path(), records(40, &key), 1_000);
    let console = Console::open(ConsoleSettings {
        paths: vec![trail.clone()],
        ..Default::default()
    })
    .unwrap();
    console.verify_now();
    let verification = console.verification().0;
    let Some(ChainCheck {
        result: Ok(summary),
        ..
    }) = verification.chain("decisions-a")
    else {
        panic!("an intact trail verifies: {verification:?}")
    };
    assert!(summary.records > 40);
    let file = trail.join("decisions-a-20261201T000000Z.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = lines
        .iter()
        .position(|l| l.contains("\"decision\":\"deny\""))
        .unwrap();
    lines[at] = lines[at].replace("\"decision\":\"deny\"", "\"decision\":\"allow\"");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    console.verify_now();
    let verification = console.verification().0;
    let Some(ChainCheck {
        result: Err(failure),
        ..
    }) = verification.chain("decisions-a")
    else {
        panic!("a tampered trail does not verify: {verification:?}")
    };
    let bad = at as u64 + 1;
    assert_eq!(
        (failure.line, failure.seq),
        (Some(bad), Some(bad)),
        "{failure}"
    );
}

#[test]
fn an_edit_in_place_is_found_by_the_running_console_without_a_new_record() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let trail = write(dir.path(), records(40, &key), 1_000);
    let console = Console::open(ConsoleSettings {
        paths: vec![trail.clone()],
        reverify_after: Some(Duration::from_millis(200)),
        ..Default::default()
    })
    .unwrap();
    console.follow();
    let chain_ok = |console: &Console| {
        console
            .verification()
            .0
            .chain("decisions-a")
            .map(|check| check.result.is_ok())
    };
    let until = |want: bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while chain_ok(&console) != Some(want) {
            assert!(Instant::now() < deadline, "verification never said {want}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until(true);
    // The same length, no line added: only the bytes change.
    let file = trail.join("decisions-a-20261201T000000Z.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let forged = text.replacen("\"decision\":\"deny\"", "\"decision\":\"DENY\"", 1);
    assert_ne!(forged, text);
    assert_eq!(forged.len(), text.len());
    std::fs::write(&file, forged).unwrap();
    until(false);
    console.stop();
}

/// The `data-seq` of each row of a decisions page, in order.
fn page_seqs(console: &Console, query: &str) -> Vec<u64> {
    let super::pages::Page::Html(markup) = super::pages::route(console, "/decisions", query) else {
        panic!("{query}: not a page")
    };
    markup
        .into_string()
        .split("data-seq=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

#[test]
fn every_sort_pages_through_the_whole_order() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let trail = write(dir.path(), records(130, &key), 1_000);
    let console = Console::open(ConsoleSettings {
        paths: vec![trail.clone()],
        ..Default::default()
    })
    .unwrap();
    // The decisions as `audit query` reads them, with their seq.
    let rows = query_files(&[trail], &QueryFilter::default(), None)
        .unwrap()
        .rows;
    let index = console.index.read().unwrap();
    let seqs: Vec<u64> = index.entries.iter().map(|e| e.seq).collect();
    drop(index);
    assert_eq!(rows.len(), seqs.len());
    for sort in ["time", "decision", "vendor", "caller", "status"] {
        for descending in [false, true] {
            // Stable sort by the column; ties in trail order (reversed when
            // descending).
            let mut expected: Vec<(String, u64)> = rows
                .iter()
                .zip(&seqs)
                .map(|(row, seq)| {
                    let column = match sort {
                        "decision" => ["allow", "deny", "held"]
                            .iter()
                            .position(|d| *d == row.decision)
                            .unwrap()
                            .to_string(),
                        "vendor" => row.vendor.clone(),
                        "caller" if row.caller == "-" => String::new(),
                        "caller" => format!("~{}", row.caller),
                        "status" => format!("{:05}", row.status.map_or(0, |s| s + 1)),
                        _ => row.time.clone(),
                    };
                    (column, *seq)
                })
                .collect();
            expected.sort();
            if descending {
                expected.reverse();
            }
            let order = if descending { "desc" } else { "asc" };
            let mut shown = Vec::new();
            for page in 1..=3 {
                shown.extend(page_seqs(
                    &console,
                    &format!("sort={sort}&order={order}&page={page}"),
                ));
            }
            let expected: Vec<u64> = expected.into_iter().map(|(_, seq)| seq).collect();
            assert_eq!(shown, expected, "{sort} {order}");
        }
    }
}

#[test]
fn a_raw_id_is_found_in_a_pseudonymized_trail_only_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let trail = write(dir.path(), records(60, &key), 1_000);
    let console = Console::open(ConsoleSettings {
        paths: vec![trail],
        ..Default::default()
    })
    .unwrap();
    // Decision 3 (and every 7th after it) names its targets by pseudonym.
    let pseudonym = key.pseudonym("solo-3");
    let form = |target: &str, secret: &str| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("target", target)
            .append_pair("key", secret)
            .finish()
    };
    let secret = "p".repeat(40);
    match super::pages::lookup(&console, &form("solo-3", &secret)) {
        super::pages::Page::Redirect(to) => assert_eq!(
            to,
            format!("receipt?target={}", pseudonym.replace(':', "%3A"))
        ),
        other => panic!("{other:?}"),
    }
    // The raw id alone finds nothing; a wrong key finds nothing; a short
    // key is refused with the reason.
    let index = console.index.read().unwrap();
    assert_eq!(receipt_of(&index, "solo-3", None).state, "not_found");
    assert_ne!(receipt_of(&index, &pseudonym, None).state, "not_found");
    drop(index);
    let wrong = "q".repeat(40);
    assert!(matches!(
        super::pages::lookup(&console, &form("solo-3", &wrong)),
        super::pages::Page::Error(http::StatusCode::NOT_FOUND, _)
    ));
    match super::pages::lookup(&console, &form("solo-3", "short")) {
        super::pages::Page::Error(http::StatusCode::BAD_REQUEST, message) => {
            assert!(message.contains("at least 32"), "{message}");
            assert!(!message.contains("short"), "the key never shows: {message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_replica_chain_in_a_directory_is_verified_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let trail = write(dir.path(), records(30, &key), 1_000);
    // A second writer's chain in the same directory.
    let b_file = trail.join("decisions-b-20261201T000000Z.jsonl");
    let resealed: Vec<Map<String, Value>> = records(20, &key)
        .into_iter()
        .map(|mut r| {
            r.insert("replica".into(), "b".into());
            r
        })
        .collect();
    let b_dir = write(&dir.path().join("b2"), resealed, 1_000);
    std::fs::copy(b_dir.join("decisions-a-20261201T000000Z.jsonl"), &b_file).unwrap();
    let console = Console::open(ConsoleSettings {
        paths: vec![trail],
        ..Default::default()
    })
    .unwrap();
    console.verify_now();
    let verification = console.verification().0;
    for label in ["decisions-a", "decisions-b"] {
        let chain = verification
            .chain(label)
            .unwrap_or_else(|| panic!("{label}: {verification:?}"));
        assert!(chain.result.is_ok(), "{label}: {:?}", chain.result);
    }
    // Break b: a is still proven, b is not.
    let mut lines: Vec<String> = std::fs::read_to_string(&b_file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines[4] = lines[4].replace("\"replica\":\"b\"", "\"replica\":\"x\"");
    std::fs::write(&b_file, lines.join("\n") + "\n").unwrap();
    console.verify_now();
    let verification = console.verification().0;
    assert!(verification.chain("decisions-a").unwrap().result.is_ok());
    let broken = verification
        .chain("decisions-b")
        .unwrap()
        .result
        .as_ref()
        .unwrap_err();
    assert_eq!(broken.seq, Some(5), "{broken}");
    let super::pages::Page::Html(overview) = super::pages::route(&console, "/", "") else {
        panic!("the overview")
    };
    let overview = overview.into_string();
    assert!(
        overview.contains("Trail verified (decisions-a)"),
        "{overview}"
    );
    assert!(
        overview.contains("does NOT verify (decisions-b)"),
        "{overview}"
    );
    assert!(
        overview.contains("chains broken"),
        "the page as a whole says broken"
    );
}
