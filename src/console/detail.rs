//! One decision's page (every field, its outcome and completion, its place
//! in the chain, and why: the determining policies' text as of the
//! recorded policy version) and a target's receipt (the same receipt as
//! `audit receipt`, built from the index's picks) with its JSON download.

use std::path::Path;

use http::StatusCode;
use maud::{html, Markup};
use serde_json::{Map, Value};

use super::http::form_value;
use super::index::{RecordLoc, TrailIndex};
use super::pages::{chain_state, layout, link, Page};
use super::{chain_label, Console, Verification};
use crate::trail::pseudonym::{PseudonymKey, MIN_KEY_BYTES, PREFIX};
use crate::trail::receipt::{what, Receipt, ReceiptBuilder};
use crate::trail::record::{DecisionRecord, Sealed};

fn pretty(record: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(record).unwrap_or_default()
}

/// A record's text field (`""` when absent).
pub(super) fn text<'r>(record: &'r Map<String, Value>, field: &str) -> &'r str {
    record.get(field).and_then(Value::as_str).unwrap_or("")
}

/// A record's number field (0 when absent).
pub(super) fn number(record: &Map<String, Value>, field: &str) -> u64 {
    record.get(field).and_then(Value::as_u64).unwrap_or(0)
}

fn seq_of(record: &Map<String, Value>) -> u64 {
    number(record, "seq")
}

/// Where a record at `seq` of the chain `label` stands, in words.
fn proven(console: &Console, label: &str, seq: u64) -> (&'static str, String) {
    let verification = console.verification().0;
    let Some(chain) = verification.chain(label) else {
        return ("running", "the chain is being verified".into());
    };
    match &chain.result {
        Ok(summary) => match &summary.head {
            Some(head) if seq <= head.seq => (
                "ok",
                format!("verified: its hash and link hold, and the chain continues unbroken to the head at seq {}", head.seq),
            ),
            _ => ("running", "newer than the last verification".into()),
        },
        Err(failure) => match failure.seq {
            Some(bad) if seq < bad => (
                "ok",
                format!("intact: before the first bad record (seq {bad}); but the chain as a whole does not verify"),
            ),
            _ => (
                "broken",
                format!("NOT proven: the chain breaks at {} — {}",
                    failure.seq.map_or_else(|| "its start".to_owned(), |s| format!("seq {s}")), failure.reason),
            ),
        },
    }
}

/// `/decision/{key}`.
pub fn decision_page(console: &Console, index: &TrailIndex, key: &str) -> Page {
    let Some(at) = index.by_key(key) else {
        return Page::Error(
            StatusCode::NOT_FOUND,
            format!("no decision {key} in this trail"),
        );
    };
    let entry = &index.entries[at as usize];
    let Ok(map) = index.read_record(entry.loc) else {
        return Page::Error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the record can no longer be read: was the file rewritten?".into(),
        );
    };
    let Ok(sealed) = Sealed::<DecisionRecord>::from_map(&map) else {
        return Page::Error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the record is not a decision".into(),
        );
    };
    let record = &sealed.record;
    let linked: Vec<Map<String, Value>> = entry
        .linked
        .iter()
        .filter_map(|loc| index.read_record(*loc).ok())
        .collect();
    let label = chain_label(&index.files[entry.loc.file as usize]);
    let (state_class, state) = proven(console, &label, entry.seq);
    let covering = index
        .checkpoints
        .iter()
        .find(|(cp_seq, loc)| {
            *cp_seq > entry.seq
                && (loc.file, loc.offset) > (entry.loc.file, entry.loc.offset)
                && chain_label(&index.files[loc.file as usize]) == label
        })
        .and_then(|(_, loc)| index.read_record(*loc).ok());
    let mut determining: Vec<&str> = Vec::new();
    for policy in record.targets.iter().flat_map(|t| &t.policies) {
        if !determining.contains(&policy.as_str()) {
            determining.push(policy);
        }
    }

    let neighbour = |at: Option<usize>| {
        at.and_then(|at| index.entries.get(at))
            .map(|e| index.page_key_of(e))
    };
    let previous = neighbour((at as usize).checked_sub(1));
    let next = neighbour(Some(at as usize + 1));
    let caller = record.principal.as_ref();
    let file = index.files[entry.loc.file as usize].display().to_string();
    Page::Html(layout(
        console.base(),
        "Decision",
        "decisions",
        &html! {
            h1 { "Decision " span class=(format!("verdict {}", record.decision)) { (record.decision) } " · " (record.vendor) " · " (sealed.time) }
            dl.fields id="fields" {
                dt { "decision id" } dd { code { (record.decision_id) } }
                dt { "request id" } dd { code { (record.request_id) } }
                dt { "caller" } dd {
                    @match caller {
                        Some(p) => { a href=(link(&[("caller", &p.id)])) { (p.id) } " (" (p.source) "; roles " (p.roles.join(", ")) ")" }
                        None => "not identified",
                    }
                }
                dt { "credential" } dd { (record.credential.kind) " · fingerprint " code { (record.credential.fingerprint) } }
                dt { "client" } dd { (record.client.ip) @if record.client.cert { " (client certificate)" } }
                dt { "action" } dd { code { (record.action) } " via upstream " (record.upstream) }
                dt { "mode / effect" } dd { (record.mode) " / " (record.effect)
                    @if let Some(status) = record.status { " · answered " (status) }
                    @if let Some(refusal) = &record.refusal { " · " (refusal) } }
                dt { "reasons" } dd { @for r in &record.reasons { div { (r) } } }
                dt { "policy version" } dd { code { (record.policy_version) } }
                @if let Some(digest) = &record.forwarded_sha256 { dt { "forwarded request" } dd { "sha256 " code { (digest) } } }
                @if let Some(id) = &record.approval_id { dt { "approval" } dd { code { (id) } } }
            }
            h2 { "Targets" }
            table id="targets" {
                thead { tr { th { "type" } th { "id" } th { "decision" } th { "determining policies" } th { "errors" } } }
                tbody { @for t in &record.targets { tr {
                    td { (t.entity_type) }
                    td { a href=(format!("receipt?{}", query_of("target", &t.id))) { (t.id) } }
                    td { span class=(format!("verdict {}", t.decision)) { (t.decision) } }
                    td { (t.policies.join(", ")) }
                    td { (t.errors.join("; ")) @if let Some(r) = &t.repeat_of { " repeat of " (r) } }
                } } }
            }
            h2 { "Why" }
            @if determining.is_empty() { p { "No policy determined it (" (record.reasons.join("; ")) ")." } }
            @for policy in &determining {
                h3 { code { (policy) } }
                @match console.policy_text(&record.policy_version, policy) {
                    Some(source) => pre.policy { (source) },
                    None => p.small { "The text of this policy as of version " code { (crate::authz::short_version(&record.policy_version)) }
                        " is not loaded: start the console with --policies DIR of that version to quote it." },
                }
            }
            h2 { "Outcome and completion" }
            @if linked.is_empty() { p { "No later record about this call." } }
            @else { (records_table(&linked, None)) }
            h2 { "Place in the chain" }
            dl.fields id="chain" {
                dt { "seq" } dd { (entry.seq) }
                dt { "file" } dd { (file) " line " (entry.loc.line) }
                dt { "prev" } dd { code.hash { (text(&map, "prev")) } }
                dt { "hash" } dd { code.hash { (text(&map, "hash")) } }
                dt { "proof" } dd { span class=(format!("proof {state_class}")) id="proof" { (state) } }
                dt { "checkpoint" } dd {
                    @match &covering {
                        Some(cp) => { "covered by the checkpoint at seq " (seq_of(cp)) " signed " (text(cp, "time")) " by key " code { (text(cp, "key_id")) } }
                        None => "no signed checkpoint covers it yet",
                    }
                }
            }
            nav.pages {
                @if let Some(p) = &previous { a rel="prev" href=(format!("decision/{p}")) { "← previous decision" } " " }
                @if let Some(n) = &next { a rel="next" href=(format!("decision/{n}")) { "next decision →" } }
            }
            details { summary { "The whole record" } pre { (pretty(&map)) } }
        },
    ))
}

fn query_of(name: &str, value: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair(name, value)
        .finish()
}

fn records_table(records: &[Map<String, Value>], link_decisions: Option<&TrailIndex>) -> Markup {
    html! {
        table.records id="records" {
            thead { tr { th { "seq" } th { "time" } th { "kind" } th { "hash" } th { "what" } } }
            tbody { @for r in records { tr {
                td { (seq_of(r)) }
                td { (text(r, "time")) }
                td { (text(r, "kind")) }
                td { code { (text(r, "hash").get(..16).unwrap_or("")) } }
                td {
                    @if let (Some(_), "decision") = (link_decisions, text(r, "kind")) {
                        a href=(format!("decision/{}", super::index::page_key(text(r, "decision_id"), seq_of(r)))) { (what(r)) }
                    } @else { (what(r)) }
                }
            } } }
        }
        details { summary { "The records, whole" } @for r in records { pre { (pretty(r)) } } }
    }
}

/// The receipt of `target`, from the records the index names.
pub fn receipt_of(index: &TrailIndex, target: &str, key: Option<&PseudonymKey>) -> Receipt {
    let filter = ReceiptBuilder::filter(target);
    let (chosen, _) = index.select(&filter, key);
    let mut locs: Vec<RecordLoc> = Vec::new();
    for at in &chosen {
        let entry = &index.entries[*at as usize];
        locs.push(entry.loc);
        locs.extend(&entry.linked);
    }
    if let Some(first) = locs.iter().map(|l| (l.file, l.offset)).min() {
        locs.extend(
            index
                .checkpoints
                .iter()
                .map(|(_, loc)| *loc)
                .filter(|loc| (loc.file, loc.offset) > first),
        );
    }
    locs.sort_by_key(|l| (l.file, l.offset));
    locs.dedup();
    let mut builder = ReceiptBuilder::new(&filter, key);
    for loc in locs {
        if let Ok(record) = index.read_record(loc) {
            builder.add(record);
        }
    }
    builder.finish()
}

/// `/receipt?target=…`.
pub fn receipt_page(console: &Console, index: &TrailIndex, query: &str) -> Page {
    let target = form_value(query, "target");
    let receipt = target.as_deref().map(|t| receipt_of(index, t, None));
    Page::Html(layout(
        console.base(),
        "Receipt",
        "receipt",
        &html! {
            h1 { "Receipt for a target" }
            form.filters method="get" action="receipt" {
                label { "target " input name="target" value=(target.as_deref().unwrap_or("")) placeholder="owner@example.com, Kore::User::u-1 or a pseudonym" required; }
                button type="submit" { "Look up" }
            }
            @if index.counts.pseudonymized > 0 {
                form.filters method="post" action="lookup" {
                    p.small { "This trail names targets by pseudonym. To find a raw id, give the pseudonym key; it is used for this lookup only and never kept or shown." }
                    label { "raw id " input name="target" required; }
                    label { "pseudonym key " input type="password" name="key" autocomplete="off" required; }
                    button type="submit" { "Look up by pseudonym" }
                }
            }
            @if let Some(receipt) = &receipt { (receipt_body(console, index, receipt)) }
        },
    ))
}

fn receipt_body(console: &Console, index: &TrailIndex, receipt: &Receipt) -> Markup {
    let answer = match receipt.state.as_str() {
        "erased" => "Erased",
        "pending" => "Accepted by the vendor, not yet reported complete",
        "failed" => "The vendor failed to erase it",
        "refused" => "Refused: not erased",
        "held" => "Held for a second caller's approval: not erased",
        "forwarded" => "Forwarded; no answer from the vendor on record",
        _ => "Not found: no decision in this trail names it",
    };
    html! {
        section.receipt id="receipt" data-state=(receipt.state) {
            h2 { (receipt.target) ": " span.answer { (answer) } }
            dl.fields {
                @if let Some(at) = &receipt.erased_at { dt { "when" } dd { (at) } }
                @if let Some(by) = &receipt.by { dt { "by" } dd { (by) } }
                @if !receipt.policies.is_empty() { dt { "under" } dd { (receipt.policies.join(", ")) } }
                dt { "does the trail prove it?" } dd id="proves" { (proves(console, receipt)) }
                dt { "signed checkpoint" } dd {
                    @match &receipt.checkpoint {
                        Some(cp) => { "covered by the signed checkpoint at seq " (seq_of(cp)) " (" (text(cp, "time")) ", key " code { (text(cp, "key_id")) } ")" }
                        None => "no signed checkpoint covers these records yet",
                    }
                }
            }
            @if receipt.state != "not_found" {
                p { a.download href=(format!("receipt.json?{}", query_of("target", &receipt.target))) download { "Download the receipt (JSON)" }
                    " — check it with " code { "erasure-gateway audit verify TRAIL --receipt FILE --public-key KEY" } }
                (records_table(&receipt.records, Some(index)))
            }
        }
        (chain_state(console, index))
    }
}

/// Whether the chain holding the receipt's records verifies up to them, in
/// one sentence.
fn proves(console: &Console, receipt: &Receipt) -> String {
    let verification = console.verification().0;
    let Verification::Done { chains, .. } = &verification else {
        return "the trail is being verified: reload in a moment".into();
    };
    let Some(last) = receipt.records.iter().map(seq_of).max() else {
        return "nothing to prove: no record names this target".into();
    };
    let broken: Vec<&str> = chains
        .iter()
        .filter_map(|c| c.result.as_ref().err().map(|_| c.label.as_str()))
        .collect();
    let unverified = chains.iter().all(|c| {
        c.result
            .as_ref()
            .ok()
            .and_then(|s| s.head.as_ref())
            .is_none_or(|head| head.seq < last)
    });
    if !broken.is_empty() {
        format!(
            "NO: the trail does not verify ({}); see below",
            broken.join(", ")
        )
    } else if unverified {
        "not yet: these records are newer than the last verification".into()
    } else {
        "yes: every record's hash and link hold, and the chain continues unbroken past them".into()
    }
}

/// `/receipt.json?target=…`: the receipt `audit receipt --format json` prints.
pub fn receipt_download(index: &TrailIndex, query: &str) -> Page {
    let Some(target) = form_value(query, "target") else {
        return Page::Error(
            StatusCode::BAD_REQUEST,
            "name a target: /receipt.json?target=ID".into(),
        );
    };
    let receipt = receipt_of(index, &target, None);
    let safe: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    match serde_json::to_string_pretty(&receipt) {
        Ok(json) => Page::Download {
            name: format!("receipt-{safe}.json"),
            json: json + "\n",
        },
        Err(e) => Page::Error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The pseudonym lookup: the raw id's pseudonym that the trail holds, as a
/// link to its receipt (the raw id and the key go no further).
pub fn lookup(index: &TrailIndex, form: &str) -> Page {
    let (Some(target), Some(secret)) = (form_value(form, "target"), form_value(form, "key")) else {
        return Page::Error(
            StatusCode::BAD_REQUEST,
            "give the raw id and the pseudonym key".into(),
        );
    };
    let Ok(key) = PseudonymKey::from_secret(secret.as_bytes(), Path::new("(pasted)")) else {
        return Page::Error(
            StatusCode::BAD_REQUEST,
            format!("that is not a pseudonym key: one holds at least {MIN_KEY_BYTES} bytes (the key file's content, as [audit] pseudonym_key_file holds it)"),
        );
    };
    let filter = ReceiptBuilder::filter(&target);
    let (chosen, _) = index.select(&filter, Some(&key));
    let pseudonyms = crate::trail::filter::Matcher::new(&filter, Some(&key)).target_ids();
    let found = chosen.iter().find_map(|at| {
        let record = index.read_record(index.entries[*at as usize].loc).ok()?;
        let sealed = Sealed::<DecisionRecord>::from_map(&record).ok()?;
        sealed
            .record
            .targets
            .into_iter()
            .map(|t| t.id)
            .find(|id| id.starts_with(PREFIX) && pseudonyms.contains(id))
    });
    match found {
        Some(pseudonym) => Page::Redirect(format!("receipt?{}", query_of("target", &pseudonym))),
        None => Page::Error(
            StatusCode::NOT_FOUND,
            "no decision in this trail names that id under that key".into(),
        ),
    }
}
