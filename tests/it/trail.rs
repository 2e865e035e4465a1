//! The decision trail through the running gateway: every erasure call is on
//! record before anything is forwarded, the chain verifies across rotation,
//! a failing disk refuses erasure calls, and a `kill -9` loses nothing that
//! reached a vendor.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use erasure_gateway::stand_in::KORE_ERASURE_ACCEPTED;
use serde_json::{json, Value};

use crate::support::{
    call, gateway_binary, get, http1_client, request, run_gateway, send, spawn_gateway,
    spawn_vendor, temp_dir, trail_records_in, Behaviour, GatewayConfig, Served, StandIn, JSON,
};

const OFFICER: &str = "trail-officer-token";
const KORE: &str = "/kore/api/public/bot/eraseUsersData";
/// A Kore.ai erasure of an ordinary user, which the officer may make.
const ORDINARY: &str = r#"{"userIds":["u-ordinary-0001"]}"#;
/// A Kore.ai erasure of an account owner, which policy always refuses.
const OWNER: &str = r#"{"userIds":["owner@example.com"]}"#;

/// `config` with one Kore.ai upstream reaching `vendor` and the officer.
fn kore_config(vendor: &StandIn, config: GatewayConfig) -> GatewayConfig {
    config
        .caller("trail-ops", OFFICER, &["privacy-officer"])
        .vendor("kore", vendor)
}

async fn erase(url: &str, auth: &str, body: &str) -> (u16, http::HeaderMap) {
    let (parts, _) = call("DELETE", url, &[("auth", auth), JSON], body).await;
    (parts.status.as_u16(), parts.headers)
}

/// The officer's erasure of an ordinary user as request `id`: its status,
/// or the error once the gateway is gone.
async fn erase_as(url: &str, id: &str) -> Result<u16, hyper_util::client::legacy::Error> {
    let mut req = request("DELETE", url, ORDINARY);
    let headers = req.headers_mut();
    headers.insert("auth", OFFICER.parse().unwrap());
    headers.insert("content-type", JSON.1.parse().unwrap());
    headers.insert("x-request-id", id.parse().unwrap());
    send(&http1_client(), req)
        .await
        .map(|(parts, _)| parts.status.as_u16())
}

fn trail_dir(config: &erasure_gateway::config::Config) -> PathBuf {
    config.audit.path.parent().unwrap().to_owned()
}

#[tokio::test]
async fn every_erasure_call_is_recorded_and_the_chain_verifies_across_rotation() {
    let vendor = spawn_vendor(Behaviour::Json(KORE_ERASURE_ACCEPTED)).await;
    let mut gateway = spawn_gateway(kore_config(
        &vendor,
        GatewayConfig::new().audit("rotate_bytes", 4096),
    ))
    .await;
    let url = gateway.url(KORE);
    let (status, headers) = erase(&url, OFFICER, ORDINARY).await;
    assert_eq!(status, 200);
    let allowed_id = headers["x-request-id"].to_str().unwrap().to_owned();
    let (status, headers) = erase(&url, OFFICER, OWNER).await;
    assert_eq!(status, 403);
    let denied_id = headers["x-request-id"].to_str().unwrap().to_owned();
    let (status, headers) = erase(&url, OFFICER, r#"{"userIds":["u-1"],"userIds":["u-2"]}"#).await;
    assert_eq!(status, 400);
    let invalid_id = headers["x-request-id"].to_str().unwrap().to_owned();
    // Enough traffic to rotate a few times.
    for _ in 0..20 {
        assert_eq!(
            erase(&url, "someone-else", r#"{"userIds":["u-2"]}"#)
                .await
                .0,
            403
        );
    }

    let records = gateway.trail();
    let find = |kind: &str, id: &str| {
        records
            .iter()
            .find(|r| r["kind"] == kind && r["request_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} record for {id}"))
    };
    let allowed = find("decision", &allowed_id);
    assert_eq!(allowed["decision"], "allow");
    assert_eq!(allowed["effect"], "forwarded");
    assert_eq!(allowed["principal"]["id"], "trail-ops");
    assert_eq!(allowed["targets"][0]["id"], "u-ordinary-0001");
    assert_eq!(
        allowed["targets"][0]["policies"],
        json!(["privacy-officers-may-erase"])
    );
    assert_eq!(allowed["credential"]["kind"], "bearer");
    assert!(allowed["policy_version"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(allowed["context"]["target_count"], 1);
    let outcome = find("outcome", &allowed_id);
    assert_eq!(outcome["status"], 200);
    assert_eq!(outcome["vendor_request_id"], "eud-123");
    let allowed_seq = allowed["seq"].as_u64().unwrap();
    assert!(
        outcome["seq"].as_u64().unwrap() > allowed_seq,
        "the decision precedes its outcome"
    );

    let denied = find("decision", &denied_id);
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["effect"], "refused");
    assert_eq!(denied["status"], 403);
    assert_eq!(
        denied["targets"][0]["policies"],
        json!(["kore-never-erase-account-owners"])
    );
    assert!(records
        .iter()
        .all(|r| !(r["kind"] == "outcome" && r["request_id"] == denied_id.as_str())));

    let invalid = find("decision", &invalid_id);
    assert_eq!(invalid["refusal"], "invalid_input");
    assert_eq!(
        invalid["principal"],
        Value::Null,
        "refused before the caller was identified"
    );

    let text: String = records.iter().map(Value::to_string).collect();
    assert!(!text.contains(OFFICER), "a credential reached the trail");

    let files: Vec<_> = std::fs::read_dir(trail_dir(&gateway.config))
        .unwrap()
        .collect();
    assert!(files.len() >= 2, "rotation by size made several files");
    let trail = trail_dir(&gateway.config);
    let verified = run_gateway(&["audit", "verify"], &[&trail]);
    verified.assert_exit(0);
    assert!(verified.stdout.starts_with("OK"), "{}", verified.stdout);

    let query = run_gateway(
        &[
            "audit",
            "query",
            "--decision",
            "deny",
            "--policy",
            "kore-never-erase-account-owners",
            "--format",
            "json",
        ],
        &[&trail],
    );
    query.assert_exit(0);
    let rows: Vec<Value> = query
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["request_id"], denied_id.as_str());
    gateway.stop().await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_unwritable_trail_refuses_erasure_calls_until_the_disk_recovers() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let config = kore_config(&vendor, GatewayConfig::new());
    // The trail's newest file is /dev/full: every write fails with ENOSPC.
    let full = config
        .audit_dir()
        .join("decisions-test-29990101T000000.000Z.jsonl");
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    let mut gateway = spawn_gateway(config).await;
    let url = gateway.url(KORE);

    let (parts, body) = call("DELETE", &url, &[("auth", OFFICER), JSON], ORDINARY).await;
    assert_eq!(parts.status, 503);
    assert!(
        body.to_string().contains("cannot record decisions"),
        "answered in Kore.ai's shape with the reason: {body}"
    );
    let (status, _) = erase(&url, OFFICER, OWNER).await;
    assert_eq!(
        status, 503,
        "a refusal that cannot be recorded is a 503 too"
    );
    assert!(
        vendor.received().is_empty(),
        "nothing is forwarded without a durable decision"
    );
    let (ready, _) = get(&gateway.admin_url("/readyz")).await;
    assert_eq!(ready.status, 503);
    // Calls that are not erasure calls still flow.
    let (other, _) = get(&gateway.url("/kore/api/public/bot/st-1")).await;
    assert_eq!(other.status, 200);
    assert_eq!(vendor.received().len(), 1);

    // The disk recovers; the gateway notices by itself.
    std::fs::remove_file(&full).unwrap();
    let started = Instant::now();
    loop {
        let (ready, _) = get(&gateway.admin_url("/readyz")).await;
        if ready.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "readyz never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = erase(&url, OFFICER, ORDINARY).await;
    assert_eq!(status, 200);
    assert_eq!(vendor.received().len(), 2);
    let (metrics, text) = get(&gateway.admin_url("/metrics")).await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("erasure_gateway_trail_write_errors_total 2"));
    // Each durable batch is measured: its size and its write + fsync time.
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    let batches = value("erasure_gateway_trail_commit_records_count");
    assert!(batches >= 1.0, "{text}");
    assert!(value("erasure_gateway_trail_commit_records_sum") >= batches);
    assert_eq!(value("erasure_gateway_trail_commit_seconds_count"), batches);
    assert!(value("erasure_gateway_trail_commit_seconds_sum") > 0.0);
    gateway.stop().await;
}

#[tokio::test]
async fn a_pseudonymized_trail_hides_ids_but_query_finds_them_with_the_key() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let key_dir = temp_dir("pseudonym");
    let key = key_dir.path().join("key");
    std::fs::write(&key, "test-only-pseudonym-key-0123456789abcdef").unwrap();
    let mut gateway = spawn_gateway(kore_config(
        &vendor,
        GatewayConfig::new().audit("pseudonym_key_file", key.display().to_string()),
    ))
    .await;
    let (status, _) = erase(&gateway.url(KORE), OFFICER, OWNER).await;
    assert_eq!(status, 403);
    let records = gateway.trail();
    let text: String = records.iter().map(Value::to_string).collect();
    assert!(!text.contains("owner@example.com"), "{text}");
    assert_eq!(records[0]["pseudonymized"], true);
    assert!(records[0]["targets"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));

    let query = |with_key: bool| {
        let mut cmd = gateway_binary();
        cmd.args([
            "audit",
            "query",
            "--target",
            "owner@example.com",
            "--format",
            "json",
        ]);
        if with_key {
            cmd.arg("--pseudonym-key").arg(&key);
        }
        cmd.arg(trail_dir(&gateway.config));
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert_eq!(query(true), 1);
    assert_eq!(query(false), 0);
    gateway.stop().await;
}

/// The central promise: kill the gateway mid-load; after a restart the
/// trail verifies, and every request the vendor received has an allow
/// decision on record.
#[tokio::test]
async fn after_kill_9_under_load_every_forwarded_call_has_its_decision_on_record() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let config = kore_config(&vendor, GatewayConfig::new().audit("replica", "crash"));
    let trail = config.audit_dir();

    let served = Served::start(&config, Stdio::null());
    let url = served.url(KORE);
    let mut workers = Vec::new();
    for w in 0..8 {
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            for i in 0..200 {
                // After the kill, requests fail: that is expected.
                if erase_as(&url, &format!("crash-{w}-{i}")).await.is_err() {
                    return;
                }
            }
        }));
    }
    // Let the load run, then kill -9 in the middle of it.
    let started = Instant::now();
    while vendor.received().len() < 150 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    served.signal("KILL");
    drop(served);
    for w in workers {
        let _ = w.await;
    }
    let received: Vec<String> = vendor
        .received()
        .iter()
        .map(|r| r.headers["x-request-id"].to_str().unwrap().to_owned())
        .collect();
    assert!(
        received.len() >= 150,
        "load reached the vendor: {}",
        received.len()
    );

    // Restart: the writer continues the chain (cutting a torn tail if any).
    let mut served = Served::start(&config, Stdio::null());
    let (status, _) = erase(&served.url(KORE), OFFICER, ORDINARY).await;
    assert_eq!(status, 200);
    served.signal("TERM");
    assert_eq!(served.wait_exit(Duration::from_secs(10)), Some(0));

    run_gateway(&["audit", "verify"], &[&trail]).assert_exit(0);

    let allowed: std::collections::HashSet<String> = trail_records_in(&trail)
        .into_iter()
        .filter(|r| r["kind"] == "decision" && r["decision"] == "allow")
        .map(|r| r["request_id"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<&String> = received
        .iter()
        .filter(|id| !allowed.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "forwarded without a decision on record: {missing:?}"
    );
}

/// SIGTERM mid-load: the gateway stops accepting, finishes what is in
/// flight, and exits 0; every call the vendor received has its decision and
/// its outcome on record, and the trail verifies.
// Multi-threaded: the stand-in vendor must keep answering while this thread
// blocks waiting for the gateway process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_under_load_every_forwarded_call_has_its_decision_and_outcome() {
    let vendor = spawn_vendor(Behaviour::Slow(Duration::from_millis(40))).await;
    let config = kore_config(
        &vendor,
        GatewayConfig::new()
            .proxy("shutdown_grace", "10s")
            .audit("replica", "term"),
    );
    let trail = config.audit_dir();
    let mut served = Served::start(&config, Stdio::null());
    let url = served.url(KORE);
    let mut workers = Vec::new();
    for w in 0..6 {
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            for i in 0..100 {
                let id = format!("term-{w}-{i}");
                match erase_as(&url, &id).await {
                    Ok(status) => answered.push((id, status)),
                    Err(_) => break,
                }
            }
            answered
        }));
    }
    let started = Instant::now();
    while vendor.received().len() < 30 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    served.signal("TERM");
    assert_eq!(served.wait_exit(Duration::from_secs(15)), Some(0));
    let warnings: Vec<String> = served
        .drain_log()
        .into_iter()
        .filter(|j| j["level"] == "WARN" || j["level"] == "ERROR")
        .map(|j| j.to_string())
        .collect();
    assert!(warnings.is_empty(), "drained cleanly: {warnings:#?}");
    let mut answered = Vec::new();
    for w in workers {
        answered.extend(w.await.unwrap());
    }
    run_gateway(&["audit", "verify"], &[&trail]).assert_exit(0);
    let records = trail_records_in(&trail);
    let decision_of = |request_id: &str| {
        records
            .iter()
            .find(|r| r["kind"] == "decision" && r["request_id"] == request_id)
            .map(|r| r["decision_id"].clone())
    };
    let outcome_of = |decision_id: &Value| {
        records
            .iter()
            .find(|r| r["kind"] == "outcome" && r["decision_id"] == *decision_id)
    };
    let received = vendor.received();
    assert!(received.len() >= 30, "load reached the vendor");
    for seen in &received {
        let id = seen.headers["x-request-id"].to_str().unwrap();
        let decision = decision_of(id).unwrap_or_else(|| panic!("{id}: no decision"));
        let outcome = outcome_of(&decision).unwrap_or_else(|| panic!("{id}: no outcome"));
        assert_eq!(outcome["status"], 200, "{id}: drained, not cut off");
    }
    // Every answer a client got was a whole one from the vendor.
    assert!(
        answered.iter().all(|(_, status)| *status == 200),
        "{answered:?}"
    );
    assert_eq!(answered.len(), received.len());
}

/// The exit code and everything printed of `erasure-gateway args paths`.
fn run(args: &[&str], paths: &[&Path]) -> (Option<i32>, String) {
    let ran = run_gateway(args, paths);
    (ran.code, ran.stdout + &ran.stderr)
}

#[tokio::test]
async fn audit_verify_names_a_modified_record_and_a_checkpoint_catches_truncation() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let keys = temp_dir("keys");
    let key = keys.path().join("signing.pem");
    let (code, text) = run(&["audit", "keygen", "--out"], &[&key]);
    assert_eq!(code, Some(0), "{text}");
    let public = keys.path().join("signing.pub");
    assert!(public.exists());
    // In-chain checkpoints every 4 records.
    let mut gateway = spawn_gateway(kore_config(
        &vendor,
        GatewayConfig::new()
            .audit("signing_key_file", key.display().to_string())
            .audit("checkpoint_every", 4),
    ))
    .await;
    for _ in 0..6 {
        erase(&gateway.url(KORE), OFFICER, OWNER).await;
    }
    let dir = trail_dir(&gateway.config);
    gateway.stop().await;
    let records = trail_records_in(&dir);
    assert!(
        records.iter().any(|r| r["kind"] == "checkpoint"),
        "in-chain checkpoints"
    );

    let (code, text) = run(&["audit", "verify", "--public-key"], &[&public, &dir]);
    assert_eq!(code, Some(0), "{text}");
    let (code, checkpoint) = run(&["audit", "checkpoint", "--key"], &[&key, &dir]);
    assert_eq!(code, Some(0), "{checkpoint}");
    let cp = keys.path().join("head.json");
    std::fs::write(&cp, checkpoint.lines().next().unwrap()).unwrap();
    let (code, text) = run(&["audit", "verify", "--checkpoint"], &[&cp, &dir]);
    assert_eq!(code, Some(0), "{text}");

    // Truncate the newest records: the chain alone still verifies, the
    // checkpoint does not.
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    std::fs::write(&file, lines[..lines.len() - 2].join("\n") + "\n").unwrap();
    let (code, text) = run(&["audit", "verify"], &[&dir]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&["audit", "verify", "--checkpoint"], &[&cp, &dir]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("removed from the end"), "{text}");

    // Modify one field of the third record.
    let mut edited = lines[..lines.len() - 2].to_vec();
    edited[2] = edited[2].replace("\"deny\"", "\"allow\"");
    std::fs::write(&file, edited.join("\n") + "\n").unwrap();
    let (code, text) = run(&["audit", "verify"], &[&dir]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("line 3") && text.contains("seq 3"), "{text}");
    assert!(text.contains("modified"), "{text}");
}

#[tokio::test]
async fn with_stdout_on_each_durable_record_is_also_printed() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let config = kore_config(&vendor, GatewayConfig::new().audit("stdout", true));
    let dir = config.audit_dir();
    let mut served = Served::start(&config, Stdio::piped());
    let proxy = served.proxy.clone();
    let (status, headers) = erase(&format!("http://{proxy}{KORE}"), OFFICER, OWNER).await;
    assert_eq!(status, 403);
    let id = headers["x-request-id"].to_str().unwrap().to_owned();
    let stdout = served.child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout).lines().next().unwrap().unwrap()
    })
    .await
    .unwrap();
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["kind"], "decision");
    assert_eq!(record["request_id"], id.as_str());
    served.signal("TERM");
    assert_eq!(served.wait_exit(Duration::from_secs(10)), Some(0));
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(on_disk)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        line
    );
}

#[tokio::test]
async fn a_failing_stdout_copy_is_logged_once_and_counted_and_the_file_keeps_every_record() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let config = kore_config(&vendor, GatewayConfig::new().audit("stdout", true));
    let mut served = Served::start(&config, Stdio::piped());
    // The collector goes away: the pipe's reading end is closed.
    drop(served.child.stdout.take());
    let proxy = served.proxy.clone();
    for _ in 0..3 {
        let (status, _) = erase(&format!("http://{proxy}{KORE}"), OFFICER, OWNER).await;
        assert_eq!(status, 403, "decisions are still made and recorded");
    }
    let warned = served.wait_log(
        |line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.contains("stdout copy failed"))
        },
        Duration::from_secs(5),
    );
    assert!(warned.is_some(), "the failure is logged");
    let again = served.wait_log(
        |line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.contains("stdout copy failed"))
        },
        Duration::from_millis(300),
    );
    assert!(again.is_none(), "…once per failing stretch");
    let (_, metrics) = get(&format!("http://{}/metrics", served.admin)).await;
    let metrics = String::from_utf8_lossy(&metrics);
    let failed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("erasure_gateway_trail_stdout_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no stdout error counter: {metrics}"));
    assert!(failed >= 2, "{failed} failed batches counted");
    let records = trail_records_in(&config.audit_dir());
    assert_eq!(
        records.iter().filter(|r| r["kind"] == "decision").count(),
        3
    );
    served.signal("TERM");
    assert_eq!(served.wait_exit(Duration::from_secs(10)), Some(0));
}

#[tokio::test]
async fn the_group_read_key_lets_a_collectors_group_read_the_trail_and_nobody_else() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let vendor = spawn_vendor(Behaviour::Echo).await;
    for (group_read, file_mode, dir_mode) in [(false, 0o600, 0o700), (true, 0o640, 0o750)] {
        // A directory the gateway has to create.
        let parent = temp_dir("modes");
        let dir = parent.path().join("audit");
        let mut gateway = spawn_gateway(kore_config(
            &vendor,
            GatewayConfig::new()
                .audit("path", dir.join("decisions.jsonl").display().to_string())
                .audit("group_read", group_read),
        ))
        .await;
        let (status, _) = erase(&gateway.url(KORE), OFFICER, OWNER).await;
        assert_eq!(status, 403);
        gateway.stop().await;
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(mode(&files[0]), file_mode, "group_read = {group_read}");
        assert_eq!(mode(&dir), dir_mode, "group_read = {group_read}");
    }
}

#[test]
fn tail_follow_prints_records_across_a_real_rotation_by_the_writer() {
    use std::io::Read;
    let dir = temp_dir("tail-cli");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let trail = erasure_gateway::trail::Trail::start(
        erasure_gateway::trail::WriterConfig {
            path: dir.path().join("decisions.jsonl"),
            replica: "gw1".into(),
            rotate_bytes: 1,
            rotate_daily: true,
            stdout: false,
            commit: erasure_gateway::trail::CommitMode::Group,
            checkpoint_every: 0,
            group_read: false,
        },
        None,
    )
    .unwrap();
    let append = |n: u64| {
        let mut record = serde_json::Map::new();
        record.insert("kind".into(), "decision".into());
        record.insert("request_id".into(), format!("cli-{n}").into());
        rt.block_on(trail.append(record)).unwrap();
    };
    append(1);
    let first = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut child = gateway_binary()
        .args(["audit", "tail", "--follow", "-n", "5"])
        .arg(&first)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut wait_for = |wanted: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen.contains(wanted) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("never saw {wanted} in {seen:?}"),
            }
        }
    };
    wait_for("\"cli-1\"");
    for n in 2..=3 {
        append(n);
        wait_for(&format!("\"cli-{n}\""));
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        std::fs::read_dir(&dir).unwrap().count() >= 3,
        "the writer rotated"
    );
}

/// A trail written by the binary as it was before the tree was reshaped
/// (tests/fixtures/trail-0.1/README.md says how): today's reader verifies
/// it, and every audit command prints the same bytes it printed then.
#[test]
fn a_trail_from_before_the_reshaping_reads_and_prints_byte_for_byte_as_before() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trail-0.1");
    let file = std::fs::read_dir(&fixture)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let cases: [(&[&str], &Path, &str); 6] = [
        (&["audit", "verify"], &fixture, "verify.txt"),
        (&["audit", "query"], &fixture, "query.txt"),
        (
            &["audit", "query", "--format", "json"],
            &fixture,
            "query.jsonl",
        ),
        (
            &["audit", "query", "--format", "csv"],
            &fixture,
            "query.csv",
        ),
        (
            &["audit", "query", "--decision", "deny", "--vendor", "kore"],
            &fixture,
            "query-deny-kore.txt",
        ),
        (&["audit", "tail"], &file, "tail.jsonl"),
    ];
    for (args, path, expected) in cases {
        let ran = run_gateway(args, &[path]);
        ran.assert_exit(0);
        let want = std::fs::read_to_string(fixture.join("expected").join(expected)).unwrap();
        assert!(
            ran.stdout == want,
            "{args:?} printed otherwise than before:\n--- now\n{}--- before\n{want}",
            ran.stdout
        );
    }
}
