//! `erasure-gateway demo`: the gateway at work in one command, with no
//! network and no setup. Stand-in Seam, Kore.ai and BotPenguin servers and
//! the real gateway run on loopback; the vendors' documented sample calls
//! and calls the default policies refuse are sent; the decisions are shown
//! and the trail is verified.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::digest::sha256_hex as sha256;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::stand_in::{Behaviour, StandIn, KORE_ERASURE_ACCEPTED};
use crate::trail::verify::{verify_files, VerifyOptions};
use crate::Listeners;

/// The shipped policies, embedded so the demo needs no files.
const POLICY_FILES: [(&str, &str); 4] = [
    (
        "schema.cedarschema",
        include_str!("../policies/schema.cedarschema"),
    ),
    ("erasure.cedar", include_str!("../policies/erasure.cedar")),
    (
        "guardrails.cedar",
        include_str!("../policies/guardrails.cedar"),
    ),
    ("entities.json", include_str!("../policies/entities.json")),
];

/// The demo's own rule, beside the shipped ones: it shows four-eyes approval.
const DEMO_APPROVAL_POLICY: &str = r#"// Written by `erasure-gateway demo`: not one of the shipped policies.
@id("seam-residents-need-a-second-pair-of-eyes")
@approval("erasing a Seam resident")
forbid (principal, action == Seam::Action::"delete_data", resource is Seam::Resident);
"#;

/// The demo could not run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DemoError(String);

fn fail(context: &str, e: impl std::fmt::Display) -> DemoError {
    DemoError(format!("{context}: {e}"))
}

/// One call of the demo and what must happen to it.
struct Call {
    what: &'static str,
    caller: &'static str,
    vendor: usize,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: String,
    expect: &'static str,
    expect_policy: Option<&'static str>,
}

/// A row of the result table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What the call was.
    pub call: String,
    /// Who made it.
    pub caller: String,
    /// The gateway's decision header (`allow`, `deny`) or the status.
    pub decision: String,
    /// The policies named in the answer.
    pub policies: String,
    /// What the stand-in vendor answered, or `—` when nothing was forwarded.
    pub upstream: String,
    /// Whether this is what the default policies should do.
    pub as_expected: bool,
}

/// Runs the demo in `dir` (created; a previous demo there is replaced) and
/// prints to stdout. Returns whether every call was decided as expected and
/// the trail verified.
///
/// # Errors
/// The demo could not set up its servers or files.
pub async fn run(dir: &Path) -> Result<bool, DemoError> {
    prepare(dir)?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).map_err(|e| fail("policies", e))?;
    for (name, text) in POLICY_FILES {
        std::fs::write(policies.join(name), text).map_err(|e| fail(name, e))?;
    }
    std::fs::write(policies.join("demo-approval.cedar"), DEMO_APPROVAL_POLICY)
        .map_err(|e| fail("demo-approval.cedar", e))?;

    let vendors = [
        stand_in("seam", r#"{"ok":true}"#).await?,
        stand_in("kore", KORE_ERASURE_ACCEPTED).await?,
        stand_in("botpenguin", r#"{"success":true,"message":"","code":200}"#).await?,
    ];
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let api_key = format!("seam_demo_{}", nonce % 1_000_000);
    let pat = format!("seam_at_demo_{}", nonce % 1_000_000);
    let bearer = format!("demo-botpenguin-{}", nonce % 1_000_000);
    let lead = format!("demo-privacy-lead-{}", nonce % 1_000_000);
    let jwt_secret = format!("demo-only-jwt-secret-{nonce:032}");
    std::fs::write(dir.join("jwt-secret"), &jwt_secret).map_err(|e| fail("jwt-secret", e))?;
    let kore_jwt = jwt("kore-privacy-ops", &jwt_secret)?;
    let config_text = demo_config(dir, &vendors, &[&api_key, &pat, &bearer, &lead]);
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, &config_text).map_err(|e| fail("gateway.toml", e))?;
    write_explain_request(dir)?;
    let config = Config::parse(&config_text, &config_path).map_err(|e| fail("config", e))?;

    let listeners = Listeners {
        proxy: TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| fail("bind", e))?,
        admin: TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| fail("bind", e))?,
    };
    let proxy = listeners.proxy.local_addr().map_err(|e| fail("bind", e))?;
    let admin = listeners.admin.local_addr().map_err(|e| fail("bind", e))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway_config = config.clone();
    let gateway = tokio::spawn(async move {
        crate::run(&gateway_config, listeners, async {
            let _ = stopped.await;
        })
        .await
    });

    println!("erasure-gateway demo: gateway on http://{proxy}, stand-in vendors on loopback, files in {}\n", dir.display());
    let calls = calls(&api_key, &pat, &bearer, &kore_jwt);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let prefixes = ["/seam", "/kore", "/botpenguin"];
    let mut rows = Vec::new();
    let mut answered = Vec::new();
    for call in &calls {
        let before = vendors[call.vendor].count();
        let url = format!("http://{proxy}{}{}", prefixes[call.vendor], call.path);
        let mut request = Request::builder().method(call.method).uri(&url);
        for (name, value) in &call.headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::from(call.body.clone())))
            .map_err(|e| fail(call.what, e))?;
        let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
            .await
            .map_err(|e| fail(call.what, e))?
            .map_err(|e| fail(call.what, e))?;
        let status = response.status();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let _ = response.into_body().collect().await;
        let forwarded = vendors[call.vendor].count() > before;
        answered.push((request_id, status.as_u16(), forwarded));
    }
    let approval =
        approval_round_trip(&client, proxy, admin, [&api_key, &lead], &vendors[0]).await?;
    let _ = stop.send(());
    match gateway.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(fail("gateway", e)),
        Err(e) => return Err(fail("gateway", e)),
    }
    // What was decided, as the trail recorded it.
    let recorded = decisions(&dir.join("audit"))?;
    for (call, (request_id, status, forwarded)) in calls.iter().zip(answered) {
        let (decision, policies) = recorded
            .get(&request_id)
            .cloned()
            .unwrap_or_else(|| ("not recorded".to_owned(), String::new()));
        let as_expected = decision == call.expect
            && call.expect_policy.is_none_or(|p| policies.contains(p))
            && forwarded == (call.expect == "allow");
        rows.push(Row {
            call: call.what.to_owned(),
            caller: call.caller.to_owned(),
            decision,
            policies,
            upstream: if forwarded {
                status.to_string()
            } else {
                "—".to_owned()
            },
            as_expected,
        });
    }
    rows.extend(approval);

    print!("{}", render(&rows));
    let trail_dir = dir.join("audit");
    let verified = verify_files(std::slice::from_ref(&trail_dir), &VerifyOptions::default());
    println!();
    match &verified {
        Ok(summary) => println!("trail: {summary}"),
        Err(failure) => println!("trail: {failure}"),
    }
    let all_expected = rows.iter().all(|r| r.as_expected);
    println!(
        "\n{}",
        if all_expected && verified.is_ok() {
            "Every call was decided as the default policies (and the demo's approval rule) say, and the trail verifies."
        } else {
            "SOMETHING IS WRONG: a call was not decided as expected (marked ✗ above), or the trail did not verify."
        }
    );
    // Name the binary as it was started (`target/release/erasure-gateway`
    // under `cargo run`), so the commands can be pasted as they are.
    let program = std::env::args()
        .next()
        .unwrap_or_else(|| "erasure-gateway".to_owned());
    let trail = trail_dir.display();
    println!("\nLook further:");
    println!("  {program} audit query {trail}");
    println!("  {program} audit query {trail} --decision deny --format csv");
    println!("  {program} audit verify {trail}");
    println!(
        "  {program} explain --config {} --request {}",
        config_path.display(),
        dir.join("owner-erasure.toml").display()
    );
    println!(
        "  {program} policy replay --trail {trail} --policies {}",
        dir.join("policies").display()
    );
    println!(
        "  {program} audit serve {trail} --policies {}   # the reviewers' console in a browser",
        dir.join("policies").display()
    );
    Ok(all_expected && verified.is_ok())
}

/// Decision records by request id: the decision, and the determining
/// policies (or the refusal, for calls refused before Cedar).
fn decisions(
    trail: &Path,
) -> Result<std::collections::HashMap<String, (String, String)>, DemoError> {
    let files =
        crate::trail::files::trail_files(&[trail.to_path_buf()]).map_err(|e| fail("trail", e))?;
    let mut found = std::collections::HashMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| fail("trail", e))?;
        for line in text.lines() {
            let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if record["kind"] != "decision" {
                continue;
            }
            let mut policies: Vec<&str> = record["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|t| t["policies"].as_array().into_iter().flatten())
                .filter_map(serde_json::Value::as_str)
                .collect();
            policies.sort_unstable();
            policies.dedup();
            // Policy allowed it, and something after policy (a budget)
            // refused it: the client was refused, so is the row.
            let allowed_then_refused =
                record["decision"] == "allow" && record["effect"] == "refused";
            let policies = if policies.is_empty() || allowed_then_refused {
                format!(
                    "(refused: {})",
                    record["refusal"].as_str().unwrap_or("no policy permits")
                )
            } else {
                policies.join(", ")
            };
            let decision = if allowed_then_refused {
                "deny"
            } else {
                record["decision"].as_str().unwrap_or_default()
            };
            found.insert(
                record["request_id"].as_str().unwrap_or_default().to_owned(),
                (decision.to_owned(), policies),
            );
        }
    }
    Ok(found)
}

/// Creates `dir`, replacing a previous demo there (never anything else).
fn prepare(dir: &Path) -> Result<(), DemoError> {
    let marker = dir.join(".erasure-gateway-demo");
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(|e| fail(&dir.display().to_string(), e))?
            .next()
            .is_none();
        if !empty && !marker.exists() {
            return Err(DemoError(format!(
                "{} exists and is not a previous demo; choose another --dir",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir).map_err(|e| fail(&dir.display().to_string(), e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| fail(&dir.display().to_string(), e))?;
    std::fs::write(&marker, "").map_err(|e| fail("marker", e))
}

fn jwt(subject: &str, secret: &str) -> Result<String, DemoError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": subject, "iat": now, "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| fail("jwt", e))
}

/// A Seam resident's erasure, held by the demo's `@approval` rule; approved
/// by a second caller on the admin listener; then the same call again.
async fn approval_round_trip(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    proxy: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    [api_key, lead]: [&str; 2],
    seam: &StandIn,
) -> Result<Vec<Row>, DemoError> {
    let send = |url: String, token: &str, body: &str| {
        let request = Request::builder()
            .method("POST")
            .uri(url)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())));
        async move {
            let request = request.map_err(|e| fail("approval", e))?;
            let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
                .await
                .map_err(|e| fail("approval", e))?
                .map_err(|e| fail("approval", e))?;
            let status = response.status().as_u16();
            let approval = response
                .headers()
                .get("x-erasure-approval-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let _ = response.into_body().collect().await;
            Ok::<_, DemoError>((status, approval))
        }
    };
    let erase = format!("http://{proxy}/seam/customers/delete_data");
    let body = r#"{"resident_keys":["resident_77"]}"#;
    let before = seam.count();
    let (held, approval) = send(erase.clone(), api_key, body).await?;
    let id = approval.unwrap_or_default();
    let (settled, _) = send(
        format!("http://{admin}/v1/approvals/{id}"),
        lead,
        r#"{"decision":"approve","note":"demo: checked with the resident's ticket"}"#,
    )
    .await?;
    let (again, _) = send(erase, api_key, body).await?;
    let row =
        |call: &str, caller: &str, decision: &str, policies: String, upstream: &str, ok: bool| {
            Row {
                call: call.to_owned(),
                caller: caller.to_owned(),
                decision: decision.to_owned(),
                policies,
                upstream: upstream.to_owned(),
                as_expected: ok,
            }
        };
    let short = id.get(..13).unwrap_or(&id);
    Ok(vec![
        row(
            "Seam: erase a resident (held for approval)",
            "privacy-ops (API key)",
            "held",
            "seam-residents-need-a-second-pair-of-eyes".to_owned(),
            "—",
            held == 403 && !id.is_empty(),
        ),
        row(
            "  … approved on the admin listener",
            "privacy-lead (approver)",
            "approved",
            format!("(approval {short}…)"),
            "—",
            settled == 200,
        ),
        row(
            "  … the same call again",
            "privacy-ops (API key)",
            if again == 200 { "allow" } else { "deny" },
            "privacy-officers-may-erase".to_owned(),
            &again.to_string(),
            again == 200 && seam.count() == before + 1,
        ),
    ])
}

fn demo_config(dir: &Path, vendors: &[StandIn; 3], tokens: &[&String; 4]) -> String {
    let [api_key, pat, bearer, lead] = tokens;
    format!(
        r#"# Written by `erasure-gateway demo`. Stand-in vendors are gone once the demo
# exits; `serve --config` with this file needs vendors of your own on these ports.
[proxy]
listen = "127.0.0.1:8080"

[admin]
listen = "127.0.0.1:9090"

[policies]
dir = "{policies}"

[audit]
path = "{audit}"
replica = "demo"

[jwt]
algorithm = "HS256"
secret_file = "{secret}"

[[caller]]
id = "privacy-ops"
token_sha256 = "{api_key}"
roles = ["privacy-officer"]

[[caller]]
id = "privacy-ops-pat"
token_sha256 = "{pat}"
roles = ["privacy-officer"]

[[caller]]
id = "botpenguin-privacy-ops"
token_sha256 = "{bearer}"
roles = ["privacy-officer"]

[[caller]]
id = "kore-privacy-ops"
roles = ["privacy-officer"]

# Approves calls held by an @approval policy (four eyes; never its own).
[[caller]]
id = "privacy-lead"
token_sha256 = "{lead}"
roles = ["approver"]

# Erasure budgets: this caller may make one erasure call a minute.
[budgets.caller.botpenguin-privacy-ops]
calls = 1

[[upstream]]
name = "seam"
profile = "seam"
url = "http://{seam}"
path_prefix = "/seam"

[[upstream]]
name = "kore"
profile = "kore"
url = "http://{kore}"
path_prefix = "/kore"

[[upstream]]
name = "botpenguin"
profile = "botpenguin"
url = "http://{botpenguin}"
path_prefix = "/botpenguin"
"#,
        policies = dir.join("policies").display(),
        audit = dir.join("audit").join("decisions.jsonl").display(),
        secret = dir.join("jwt-secret").display(),
        api_key = sha256(api_key),
        pat = sha256(pat),
        bearer = sha256(bearer),
        lead = sha256(lead),
        seam = vendors[0].addr(),
        kore = vendors[1].addr(),
        botpenguin = vendors[2].addr(),
    )
}

fn write_explain_request(dir: &Path) -> Result<(), DemoError> {
    let text = r#"# A described request for `erasure-gateway explain --request`.
vendor = "kore"
method = "DELETE"
path = "/api/public/bot/eraseUsersData"
caller = { id = "kore-privacy-ops", roles = ["privacy-officer"] }
json = { userIds = ["owner@example.com"] }
"#;
    std::fs::write(dir.join("owner-erasure.toml"), text).map_err(|e| fail("owner-erasure.toml", e))
}

fn calls(api_key: &str, pat: &str, bearer: &str, kore_jwt: &str) -> Vec<Call> {
    let json = ("content-type", "application/json".to_owned());
    let seam = |token: &str| ("authorization", format!("Bearer {token}"));
    let bulk: Vec<String> = (1..=60).map(|i| format!("space_{i:03}")).collect();
    vec![
        Call {
            what: "Seam: delete customer data (documented call)",
            caller: "privacy-ops (API key)",
            vendor: 0,
            method: "POST",
            path: "/customers/delete_data".into(),
            headers: vec![seam(api_key), json.clone()],
            body: r#"{"customer_keys":["customer_8f3a"],"user_keys":["user_51c2"]}"#.into(),
            expect: "allow",
            expect_policy: None,
        },
        Call {
            what: "Kore.ai: erase users data (documented sample)",
            caller: "kore-privacy-ops (JWT)",
            vendor: 1,
            method: "DELETE",
            path: "/api/public/bot/eraseUsersData".into(),
            headers: vec![("auth", kore_jwt.to_owned()), json.clone()],
            body: r#"{"userIds":["u-ordinary-0001"],"botIds":["st-11111111-2222-333-4444-555555555555"],"RemoveDataFromAllBots":true}"#.into(),
            expect: "allow",
            expect_policy: None,
        },
        Call {
            what: "BotPenguin: delete customer (documented call)",
            caller: "botpenguin-privacy-ops",
            vendor: 2,
            method: "DELETE",
            path: "/customer/cust-1001".into(),
            headers: vec![seam(bearer), ("authtype", "Key".to_owned())],
            body: String::new(),
            expect: "allow",
            expect_policy: None,
        },
        Call {
            what: "BotPenguin: a second erasure within the minute",
            caller: "botpenguin-privacy-ops (budget: 1 call/min)",
            vendor: 2,
            method: "DELETE",
            path: "/customer/cust-1003".into(),
            headers: vec![seam(bearer), ("authtype", "Key".to_owned())],
            body: String::new(),
            expect: "deny",
            expect_policy: Some("budget_exceeded"),
        },
        Call {
            what: "Kore.ai: erase an account owner",
            caller: "kore-privacy-ops (JWT)",
            vendor: 1,
            method: "DELETE",
            path: "/api/public/bot/eraseUsersData".into(),
            headers: vec![("auth", kore_jwt.to_owned()), json.clone()],
            body: r#"{"userIds":["owner@example.com"]}"#.into(),
            expect: "deny",
            expect_policy: Some("kore-never-erase-account-owners"),
        },
        Call {
            what: "Kore.ai: erase a bot co-developer",
            caller: "kore-privacy-ops (JWT)",
            vendor: 1,
            method: "DELETE",
            path: "/api/public/bot/eraseUsersData".into(),
            headers: vec![("auth", kore_jwt.to_owned()), json.clone()],
            body: r#"{"userIds":["u-codev-0001"]}"#.into(),
            expect: "deny",
            expect_policy: Some("kore-never-erase-bot-developers"),
        },
        Call {
            what: "Seam: personal access token, no seam-workspace",
            caller: "privacy-ops-pat (PAT)",
            vendor: 0,
            method: "POST",
            path: "/customers/delete_data".into(),
            headers: vec![seam(pat), json.clone()],
            body: r#"{"customer_keys":["customer_8f3a"]}"#.into(),
            expect: "deny",
            expect_policy: Some("seam-pat-requires-workspace"),
        },
        Call {
            what: "BotPenguin: delete customer, no credential",
            caller: "anonymous",
            vendor: 2,
            method: "DELETE",
            path: "/customer/cust-1002".into(),
            headers: vec![("authtype", "Key".to_owned())],
            body: String::new(),
            expect: "deny",
            expect_policy: Some("deny-anonymous"),
        },
        Call {
            what: "Seam: bulk erasure of 60 spaces",
            caller: "privacy-ops (API key)",
            vendor: 0,
            method: "POST",
            path: "/customers/delete_data".into(),
            headers: vec![seam(api_key), json.clone()],
            body: serde_json::json!({ "space_keys": bulk }).to_string(),
            expect: "deny",
            expect_policy: Some("bulk-erasure-requires-role"),
        },
        Call {
            what: "Seam: the same call spelled /Customers/Delete_Data",
            caller: "privacy-ops (API key)",
            vendor: 0,
            method: "POST",
            path: "/Customers/Delete_Data".into(),
            headers: vec![seam(api_key), json],
            body: r#"{"customer_keys":["customer_8f3a"]}"#.into(),
            expect: "deny",
            expect_policy: None,
        },
    ]
}

fn render(rows: &[Row]) -> String {
    let headers = ["", "CALL", "CALLER", "DECISION", "POLICIES", "UPSTREAM"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                if r.as_expected { "✓" } else { "✗" }.to_owned(),
                r.call.clone(),
                r.caller.clone(),
                r.decision.clone(),
                r.policies.clone(),
                r.upstream.clone(),
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[String; 6]| {
        let mut text = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            text.push_str(cell);
            if i + 1 < row.len() {
                text.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(&headers.map(str::to_owned));
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}

/// A stand-in vendor answering every request with `body`.
async fn stand_in(name: &str, body: &'static str) -> Result<StandIn, DemoError> {
    StandIn::spawn(Behaviour::Json(body))
        .await
        .map_err(|e| fail(name, e))
}

/// The default place for demo files.
pub fn default_dir() -> PathBuf {
    PathBuf::from("demo-run")
}
