//! `approvals list|approve|reject`: four-eyes approval of held erasure
//! calls, through a running gateway's admin listener (`GET /v1/approvals`,
//! `POST /v1/approvals/{id}`), as the caller whose credential is in the
//! environment.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use super::{load_config, runtime, AdminTarget, ApprovalsCommand, Failure, Ran, TextOrJson};

/// Runs one `approvals` command.
pub(super) fn run(command: ApprovalsCommand) -> Ran {
    match command {
        ApprovalsCommand::List { target, format } => {
            let answer = call(&target, Method::GET, "/v1/approvals", None)?;
            match format {
                TextOrJson::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&answer).unwrap_or_default()
                ),
                TextOrJson::Text => print!("{}", table(&answer)),
            }
            Ok(())
        }
        ApprovalsCommand::Approve { id, note, target } => {
            settle(&target, &id, "approve", note.as_deref())
        }
        ApprovalsCommand::Reject { id, note, target } => {
            settle(&target, &id, "reject", note.as_deref())
        }
    }
}

fn settle(target: &AdminTarget, id: &str, decision: &str, note: Option<&str>) -> Ran {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Failure::usage(format!("`{id}` is not an approval id")));
    }
    let body = json!({ "decision": decision, "note": note });
    let answer = call(
        target,
        Method::POST,
        &format!("/v1/approvals/{id}"),
        Some(body),
    )?;
    println!(
        "{} {} (requester {}, {} target(s) at {}); the requester's identical call {}",
        answer["id"].as_str().unwrap_or(id),
        answer["state"].as_str().unwrap_or(decision),
        answer["requester"].as_str().unwrap_or("?"),
        answer["targets"].as_array().map_or(0, Vec::len),
        upstream(&answer),
        if decision == "approve" {
            "may now go ahead, once"
        } else {
            "stays refused"
        }
    );
    Ok(())
}

/// One admin call with the caller's own credential; the answer's JSON, or
/// the admin listener's error message.
fn call(
    target: &AdminTarget,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, Failure> {
    let token = std::env::var(&target.token_env).map_err(|_| {
        Failure::usage(format!(
            "set {} to your own caller credential (the token your [[caller]] entry hashes, or a JWT)",
            target.token_env
        ))
    })?;
    let base = match &target.admin_url {
        Some(url) => url.to_string(),
        None => {
            let mut addr = load_config(target.config.as_deref())?.admin.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
    };
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let request = Request::builder()
        .method(method)
        .uri(&url)
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.trim()),
        )
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .map_err(|e| Failure::usage(format!("{url}: {e}")))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, bytes))
    };
    let (status, bytes) = runtime()
        .map_err(Failure::usage)?
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), exchange).await })
        .map_err(|_| Failure::check(format!("{url}: no answer within 10s")))?
        .map_err(|e| Failure::check(format!("{url}: {e}")))?;
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status != StatusCode::OK {
        let message = answer["error"]["message"].as_str().map_or_else(
            || String::from_utf8_lossy(&bytes).into_owned(),
            str::to_owned,
        );
        return Err(Failure::check(format!("{status}: {message}")));
    }
    Ok(answer)
}

/// Where a held call goes: its vendor, and the upstream when its name says
/// something more (`seam (seam-sandbox)`).
fn upstream(approval: &Value) -> String {
    let vendor = approval["vendor"].as_str().unwrap_or("?");
    match approval["upstream"].as_str() {
        Some(upstream) if !upstream.is_empty() && upstream != vendor => {
            format!("{vendor} ({upstream})")
        }
        _ => vendor.to_owned(),
    }
}

/// `approvals list` as a table, one held call a line.
fn table(answer: &Value) -> String {
    let empty = Vec::new();
    let all = answer["approvals"].as_array().unwrap_or(&empty);
    if all.is_empty() {
        return "no held calls\n".to_owned();
    }
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let rows: Vec<[String; 7]> = all
        .iter()
        .map(|a| {
            let targets = a["targets"].as_array().map_or(&empty, |t| t);
            let first = targets.first().map(text).unwrap_or_default();
            let more = if targets.len() > 1 {
                format!(" (+{})", targets.len() - 1)
            } else {
                String::new()
            };
            let policies: Vec<String> = a["policies"]
                .as_array()
                .map_or(&empty, |p| p)
                .iter()
                .map(|p| text(&p["id"]))
                .collect();
            [
                text(&a["id"]),
                text(&a["state"]),
                text(&a["requester"]),
                upstream(a),
                format!("{first}{more}"),
                policies.join(", "),
                text(&a["expires"]),
            ]
        })
        .collect();
    let head = [
        "ID",
        "STATE",
        "REQUESTER",
        "VENDOR",
        "TARGETS",
        "HELD BY",
        "EXPIRES",
    ];
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(head.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
