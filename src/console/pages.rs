//! The console's pages, rendered on the server with maud (escaped by
//! construction): the frame, the overview and the decisions table here;
//! one decision and a target's receipt in `detail`. No script: links and
//! GET forms carry every state, so a filtered, sorted page is a link a
//! reviewer can send on.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use maud::{html, Markup, DOCTYPE};

use super::http::form_value;
use super::index::{Entry, TrailIndex, Verdict};
use super::{chain_label, chart, detail, ChainCheck, Console, Verification};
use crate::trail::filter::{parse_time, DecisionValue, QueryFilter};
use crate::trail::record::{DecisionRecord, Sealed};

/// Rows on one page of the decisions table.
pub const PAGE_ROWS: usize = 50;

/// The console's stylesheet (served as a file: the CSP allows no inline
/// style).
pub const STYLESHEET: &str = include_str!("console.css");

/// What a route answers.
#[derive(Debug)]
pub enum Page {
    /// An HTML page.
    Html(Markup),
    /// An SVG image.
    Svg(String),
    /// A JSON file to save.
    Download {
        /// The file name offered.
        name: String,
        /// Its content.
        json: String,
    },
    /// Go there (303).
    Redirect(String),
    /// An error page.
    Error(StatusCode, String),
}

/// Answers a GET of `path` with `query`.
pub fn route(console: &Console, path: &str, query: &str) -> Page {
    let Ok(index) = console.index.read() else {
        return Page::Error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the index is unavailable".into(),
        );
    };
    match path {
        "/" => Page::Html(overview(console, &index)),
        "/decisions" => decisions(console.base(), &index, query),
        "/chart/hours.svg" => Page::Svg(chart::hours(&index)),
        "/receipt" => detail::receipt_page(console, &index, query),
        "/receipt.json" => detail::receipt_download(&index, query),
        _ => match path.strip_prefix("/decision/") {
            Some(key) => detail::decision_page(console, &index, key),
            None => Page::Error(StatusCode::NOT_FOUND, format!("no page at {path}")),
        },
    }
}

/// Answers the pseudonym lookup form.
pub fn lookup(console: &Console, form: &str) -> Page {
    let Ok(index) = console.index.read() else {
        return Page::Error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the index is unavailable".into(),
        );
    };
    detail::lookup(&index, form)
}

/// The frame around every page.
pub fn layout(base: &str, title: &str, current: &str, body: &Markup) -> Markup {
    // Every link is relative to the console's base (`/` for `audit serve`,
    // `/console/` on the admin listener).
    let nav = [
        ("./", "Overview"),
        ("decisions", "Decisions"),
        ("receipt", "Receipts"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · erasure-gateway audit console" }
                base href=(format!("{base}/"));
                link rel="stylesheet" href="static/console.css";
            }
            body {
                header {
                    span.brand { "erasure-gateway · audit console" }
                    nav {
                        @for (href, name) in nav {
                            a href=(href) class=[(href == current).then_some("current")] { (name) }
                        }
                    }
                    span.readonly { "read-only" }
                }
                main { (body) }
            }
        }
    }
}

/// The login page.
pub fn login(base: &str, problem: Option<&str>) -> Markup {
    layout(
        base,
        "Sign in",
        "",
        &html! {
            h1 { "Sign in" }
            p { "The console needs the reviewer token (" code { "[console] token_sha256" } " names its digest) or a client certificate." }
            @if let Some(problem) = problem { p.bad { (problem) } }
            form method="post" action="login" {
                label { "Reviewer token " input type="password" name="token" autocomplete="off" required; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// An error page.
pub fn error(base: &str, status: StatusCode, message: &str) -> Markup {
    layout(
        base,
        status.canonical_reason().unwrap_or("Error"),
        "",
        &html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p { (message) }
            p { a href="./" { "Back to the overview" } }
        },
    )
}

/// A time in milliseconds since the epoch, as the trail writes times.
pub fn time_text(ms: Option<i64>) -> String {
    ms.and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .map_or_else(
            || "—".to_owned(),
            |t| humantime::format_rfc3339_millis(t).to_string(),
        )
}

fn ago(at: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(at)
        .map_or(0, |d| d.as_secs());
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// The trail's state, in words, for the overview and the receipts: each
/// writer's chain verified, or where it breaks, with its newest signed
/// checkpoint.
pub fn chain_state(console: &Console, index: &TrailIndex) -> Markup {
    let (verification, verified_records) = console.verification();
    let indexed = index.lines_read();
    let (overall, chains, at, took) = match &verification {
        Verification::Running => ("running", &[][..], None, None),
        Verification::Done { chains, at, took } => {
            let broken = chains.iter().any(|c| c.result.is_err());
            (
                if broken { "broken" } else { "ok" },
                &chains[..],
                Some(*at),
                Some(*took),
            )
        }
    };
    html! {
        section id="chain-state" class=(format!("chains {overall}")) {
            @if chains.is_empty() {
                div.state.running {
                    h2 { "Verifying the trail…" }
                    p { "The chain of " (indexed) " records is being checked. Reload in a moment." }
                }
            }
            @for chain in chains {
                (chain_panel(console, index, chain))
            }
            @if let (Some(at), Some(took)) = (at, took) {
                p.small { "Checked " (ago(at)) " ago in " (format!("{:.1}", took.as_secs_f64())) " s." }
            }
            @if overall != "running" && indexed > verified_records {
                p.warn { (indexed - verified_records) " newer record(s) are not verified yet." }
            }
        }
    }
}

fn chain_panel(console: &Console, index: &TrailIndex, chain: &ChainCheck) -> Markup {
    let name = if chain.label.is_empty() {
        String::new()
    } else {
        format!(" ({})", chain.label)
    };
    let newest_checkpoint = index
        .checkpoints
        .iter()
        .rev()
        .find(|(_, loc)| chain_label(&index.files[loc.file as usize]) == chain.label)
        .and_then(|(_, loc)| index.read_record(*loc).ok());
    html! {
        @match &chain.result {
            Ok(summary) => {
                div.state.ok {
                    h2 { "Trail verified" (name) }
                    p {
                        "Every record's hash, sequence and link to the one before hold: "
                        strong { (summary.records) " records" } " in " (summary.files) " file(s)"
                        @if let Some(first) = summary.first_seq.filter(|s| *s != 1) {
                            ", starting at seq " (first) " (earlier files archived)"
                        }
                        "."
                    }
                    @if let Some(head) = &summary.head {
                        p { "Head: seq " strong { (head.seq) } ", hash " code.hash { (head.hash) } }
                    }
                    (checkpoint_line(console, newest_checkpoint.as_ref()))
                }
            }
            Err(failure) => {
                div.state.broken {
                    h2 { "The trail does NOT verify" (name) }
                    p { "Nothing in this chain after the first bad record is proven. The first bad record:" }
                    p.failure {
                        @if let Some(file) = &failure.file { (file.display()) }
                        @if let Some(line) = failure.line { " line " (line) }
                        @if let Some(seq) = failure.seq { " (seq " strong { (seq) } ")" }
                        ": " (failure.reason)
                    }
                    (checkpoint_line(console, newest_checkpoint.as_ref()))
                }
            }
        }
    }
}

fn checkpoint_line(
    console: &Console,
    checkpoint: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Markup {
    use detail::{number, text};
    html! {
        @match checkpoint {
            Some(cp) => p.checkpoint {
                "Newest signed checkpoint: at seq " (number(cp, "seq")) ", covering up to seq " (number(cp, "head_seq"))
                ", signed " (text(cp, "time")) " by key " code { (text(cp, "key_id")) } ". "
                @if console.key_pinned() {
                    "Its signature was checked against the pinned public key."
                } @else {
                    "Signature not checked: start the console with --public-key to pin the key."
                }
            },
            None => p.checkpoint { "No signed checkpoint in this chain (set " code { "[audit] checkpoint_key_file" } ")." },
        }
    }
}

fn overview(console: &Console, index: &TrailIndex) -> Markup {
    let counts = &index.counts;
    let total: u64 = counts.verdicts.iter().sum();
    let mut denying: Vec<(&str, u64)> = counts
        .denying
        .iter()
        .map(|(sym, n)| (index.name(*sym), *n))
        .collect();
    denying.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    denying.truncate(10);
    let pending: Vec<&Entry> = index
        .entries
        .iter()
        .filter(|e| e.is_pending(index))
        .collect();
    let verdicts = [Verdict::Allow, Verdict::Deny, Verdict::Held];
    layout(
        console.base(),
        "Overview",
        "./",
        &html! {
            h1 { "Overview" }
            (chain_state(console, index))
            section {
                h2 { "Decisions" }
                table.counts id="counts" {
                    thead { tr { th { "vendor" } @for v in verdicts { th { (v.as_str()) } } th { "total" } } }
                    tbody {
                        @for (vendor, n) in &counts.vendors {
                            tr {
                                td { a href=(link(&[("vendor", index.name(*vendor))])) { (index.name(*vendor)) } }
                                @for v in verdicts {
                                    td data-decision=(v.as_str()) {
                                        a href=(link(&[("vendor", index.name(*vendor)), ("decision", v.as_str())])) { (n[v.slot()]) }
                                    }
                                }
                                td { (n.iter().sum::<u64>()) }
                            }
                        }
                    }
                    tfoot {
                        tr {
                            th { "all" }
                            @for v in verdicts {
                                td id=(format!("total-{}", v.as_str())) {
                                    a href=(link(&[("decision", v.as_str())])) { (counts.verdicts[v.slot()]) }
                                }
                            }
                            td id="total" { (total) }
                        }
                    }
                }
                figure {
                    img src="chart/hours.svg" alt="Decisions per hour, allowed, denied and held" width="760" height="260";
                    figcaption { "Decisions per hour (UTC), the last 48 hours of the trail" }
                }
            }
            section {
                h2 { "Top denying policies" }
                @if denying.is_empty() { p { "No call was denied by a policy." } }
                ol id="denying" {
                    @for (policy, n) in &denying {
                        li { a href=(link(&[("policy", policy), ("decision", "deny")])) { code { (policy) } } " — " (n) " denial(s)" }
                    }
                }
            }
            section {
                h2 { "Pending completions" }
                p { (pending.len()) " erasure(s) accepted by a vendor that carries them out later and not yet reported complete." }
                @if !pending.is_empty() {
                    ul id="pending" {
                        @for entry in pending.iter().take(20) {
                            li { (row_link(index, entry)) " — " (time_text(entry.time_ms)) " — " (index.name(entry.vendor)) }
                        }
                    }
                    p { a href="decisions?pending=on" { "All pending erasures" } }
                }
            }
        },
    )
}

/// `/decisions?` with these filters.
pub fn link(pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        query.append_pair(key, value);
    }
    format!("decisions?{}", query.finish())
}

fn row_link(index: &TrailIndex, entry: &Entry) -> Markup {
    let key = index.page_key_of(entry);
    html! { a href=(format!("decision/{key}")) { "seq " (entry.seq) } }
}

/// The decisions table's filter, sort and page, read from a query.
#[derive(Debug, Default)]
struct TableQuery {
    filter: QueryFilter,
    /// The filter as given, to fill the form and the links.
    given: Vec<(&'static str, String)>,
    sort: &'static str,
    descending: bool,
    page: usize,
}

const FILTERS: [&str; 8] = [
    "since", "until", "decision", "vendor", "caller", "target", "policy", "pending",
];
const SORTS: [&str; 5] = ["time", "decision", "vendor", "caller", "status"];

fn table_query(query: &str) -> Result<TableQuery, String> {
    let mut table = TableQuery {
        sort: "time",
        descending: true,
        page: 1,
        ..TableQuery::default()
    };
    for name in FILTERS {
        if let Some(value) = form_value(query, name) {
            table.given.push((name, value));
        }
    }
    for (name, value) in &table.given {
        let f = &mut table.filter;
        match *name {
            "since" => f.since = Some(parse_time(value).map_err(|e| e.to_string())?),
            "until" => f.until = Some(parse_time(value).map_err(|e| e.to_string())?),
            "decision" => {
                f.decision = Some(value.parse::<DecisionValue>().map_err(|e| e.to_string())?);
            }
            "vendor" => f.vendor = Some(value.clone()),
            "caller" => f.caller = Some(value.clone()),
            "target" => f.target = Some(value.clone()),
            "policy" => f.policy = Some(value.clone()),
            _ => f.pending = true,
        }
    }
    if let Some(sort) = form_value(query, "sort") {
        table.sort = SORTS
            .into_iter()
            .find(|s| *s == sort)
            .ok_or(format!("cannot sort by `{sort}`"))?;
    }
    table.descending = form_value(query, "order").as_deref() != Some("asc");
    table.page = form_value(query, "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    Ok(table)
}

impl TableQuery {
    fn href(&self, sort: &str, descending: bool, page: usize) -> String {
        let mut pairs: Vec<(&str, &str)> =
            self.given.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = page.to_string();
        pairs.extend([
            ("sort", sort),
            ("order", if descending { "desc" } else { "asc" }),
            ("page", &page),
        ]);
        link(&pairs)
    }

    fn value(&self, name: &str) -> &str {
        self.given
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Puts the first `want` entries of the table's order at the front of
/// `chosen`, in order (ties in trail order, reversed when descending). Only
/// they are sorted: the rest is partitioned behind them, so a page costs
/// O(n), not a sort of the whole trail.
fn order(index: &TrailIndex, chosen: &mut [u32], sort: &str, descending: bool, want: usize) {
    let entry = |at: &u32| &index.entries[*at as usize];
    // Vendors and callers by name: rank the few names once.
    let mut names: Vec<(&str, u32)> = (0..index.symbol_count())
        .map(|sym| (index.name(sym), sym))
        .collect();
    names.sort_unstable();
    let mut ranks = vec![0u32; names.len()];
    for (place, (_, sym)) in names.iter().enumerate() {
        ranks[*sym as usize] = place as u32 + 1;
    }
    let rank = |sym: Option<u32>| sym.map_or(0, |s| i64::from(ranks[s as usize]));
    let key = |at: &u32| -> (i64, u32) {
        let e = entry(at);
        let primary = match sort {
            "decision" => e.verdict.slot() as i64,
            "status" => e.status.map_or(-1, i64::from),
            "vendor" => rank(Some(e.vendor)),
            "caller" => rank(e.caller),
            _ => e.time_ms.unwrap_or(i64::MIN),
        };
        (primary, *at)
    };
    let compare = |a: &u32, b: &u32| {
        let order = key(a).cmp(&key(b));
        if descending {
            order.reverse()
        } else {
            order
        }
    };
    let want = want.min(chosen.len());
    if want == 0 {
        return;
    }
    if want < chosen.len() {
        chosen.select_nth_unstable_by(want - 1, compare);
    }
    chosen[..want].sort_unstable_by(compare);
}

fn decisions(base: &str, index: &TrailIndex, query: &str) -> Page {
    let table = match table_query(query) {
        Ok(table) => table,
        Err(problem) => return Page::Error(StatusCode::BAD_REQUEST, problem),
    };
    let (mut chosen, warnings) = index.select(&table.filter, None);
    let matched = chosen.len();
    let pages = matched.div_ceil(PAGE_ROWS).max(1);
    let page = table.page.min(pages);
    order(
        index,
        &mut chosen,
        table.sort,
        table.descending,
        page * PAGE_ROWS,
    );
    let rows: Vec<(&Entry, Option<Sealed<DecisionRecord>>)> = chosen
        .iter()
        .skip((page - 1) * PAGE_ROWS)
        .take(PAGE_ROWS)
        .map(|at| {
            let entry = &index.entries[*at as usize];
            let record = index
                .read_record(entry.loc)
                .ok()
                .and_then(|map| Sealed::<DecisionRecord>::from_map(&map).ok());
            (entry, record)
        })
        .collect();
    let vendors: Vec<&str> = index
        .counts
        .vendors
        .keys()
        .map(|s| index.name(*s))
        .collect();
    let header = |sort: &str, label: &str| {
        let now = table.sort == sort;
        let next_descending = if now {
            !table.descending
        } else {
            sort == "time"
        };
        let arrow = match (now, table.descending) {
            (false, _) => "",
            (true, true) => " ▼",
            (true, false) => " ▲",
        };
        html! { th { a href=(table.href(sort, next_descending, 1)) { (label) (arrow) } } }
    };
    Page::Html(layout(
        base,
        "Decisions",
        "decisions",
        &html! {
            h1 { "Decisions" }
            form.filters method="get" action="decisions" {
                label { "since " input name="since" value=(table.value("since")) placeholder="2026-12-01"; }
                label { "until " input name="until" value=(table.value("until")) placeholder="2026-12-07T12:00:00Z"; }
                label { "decision "
                    select name="decision" {
                        option value="" { "any" }
                        @for d in ["allow", "deny", "held"] {
                            option value=(d) selected[table.value("decision") == d] { (d) }
                        }
                    }
                }
                label { "vendor "
                    select name="vendor" {
                        option value="" { "any" }
                        @for v in &vendors { option value=(v) selected[table.value("vendor") == *v] { (v) } }
                    }
                }
                label { "caller " input name="caller" value=(table.value("caller")); }
                label { "target " input name="target" value=(table.value("target")) placeholder="id, Type::id or pseudonym"; }
                label { "policy " input name="policy" value=(table.value("policy")); }
                label { input type="checkbox" name="pending" checked[!table.value("pending").is_empty()]; " pending only" }
                button type="submit" { "Filter" }
                " " a href="decisions" { "clear" }
            }
            p id="matched" { strong { (matched) } " decision(s) match" @if pages > 1 { "; page " (page) " of " (pages) } "." }
            @for warning in &warnings { p.warn { (warning) } }
            table.decisions id="decisions" {
                thead { tr {
                    (header("time", "time")) (header("decision", "decision")) (header("vendor", "vendor"))
                    (header("caller", "caller")) th { "targets" } th { "policies" } (header("status", "status"))
                } }
                tbody {
                    @for (entry, record) in &rows {
                        @let verdict = entry.verdict.as_str();
                        tr data-seq=(entry.seq) {
                            td { a href=(decision_href(record.as_ref(), entry.seq)) { (time_text(entry.time_ms)) } }
                            td { span class=(format!("verdict {verdict}")) { (verdict) } }
                            td { (index.name(entry.vendor)) }
                            td { (entry.caller.map_or("—", |c| index.name(c))) }
                            td.targets { (targets_text(record.as_ref())) }
                            td { (entry.policies.iter().map(|p| index.name(*p)).collect::<Vec<_>>().join(", ")) }
                            td { (entry.status.map_or_else(|| "—".to_owned(), |s| s.to_string()))
                                 @if let Some(state) = entry.completion { " · " (index.name(state)) }
                                 @else if entry.awaits_completion { " · pending" } }
                        }
                    }
                }
            }
            nav.pages {
                @if page > 1 { a rel="prev" href=(table.href(table.sort, table.descending, page - 1)) { "← newer" } " " }
                @if page < pages { a rel="next" href=(table.href(table.sort, table.descending, page + 1)) { "older →" } }
            }
        },
    ))
}

/// A decision page's address.
pub fn decision_href(record: Option<&Sealed<DecisionRecord>>, seq: u64) -> String {
    let id = record.map_or("", |r| r.record.decision_id.as_str());
    format!("decision/{}", super::index::page_key(id, seq))
}

fn targets_text(record: Option<&Sealed<DecisionRecord>>) -> String {
    let Some(record) = record else {
        return "(record unreadable)".into();
    };
    let targets = &record.record.targets;
    let mut text = String::new();
    for (i, t) in targets.iter().take(3).enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        let _ = write!(text, "{}::{}", t.entity_type, t.id);
    }
    if targets.len() > 3 {
        let _ = write!(text, " and {} more", targets.len() - 3);
    }
    text
}
