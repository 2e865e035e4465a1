//! Proof of erasure end to end: the real gateway in front of a stand-in
//! Kore.ai that erases later and answers its status API, the gateway's own
//! polling (`track_completion`) and status calls passing through, then the
//! `audit receipt`, `verify --receipt`, `query --pending` and `export`
//! commands of the real binary on the trail that run wrote.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{
    run_gateway, spawn_gateway, spawn_vendor, temp_dir, trail_records_in, Behaviour, Gateway,
    GatewayConfig, StandIn, JSON,
};

const OFFICER: &str = "kore-officer-token-1";
const KORE_KEY: &str = "kore-vendor-key-for-tests-only";
const ERASE: &str = "/kore/api/public/bot/eraseUsersData";
const STATUS: &str = "/kore/api/public/bot/eraseUsersData/status/";

/// Kore.ai in front of `kore`, the officer, and the vendor key from a file.
fn kore_config(kore: &StandIn) -> GatewayConfig {
    let config = GatewayConfig::new();
    let key = config.write_file("kore-key", KORE_KEY);
    let mut credential = toml::Table::new();
    credential.insert("file".into(), key.display().to_string().into());
    config
        .caller("kore-ops", OFFICER, &["privacy-officer"])
        .vendor("kore", kore)
        .upstream_credential(credential)
}

async fn erase(gateway: &Gateway, users: &[&str]) -> (u16, Value) {
    let (parts, answer) = gateway
        .call(
            "DELETE",
            ERASE,
            &[("auth", OFFICER), JSON],
            json!({ "userIds": users }).to_string(),
        )
        .await;
    (parts.status.as_u16(), answer)
}

async fn status_call(gateway: &Gateway, id: &str) -> (u16, Value) {
    let (parts, answer) = gateway
        .call("GET", &format!("{STATUS}{id}"), &[("auth", OFFICER)], "")
        .await;
    (parts.status.as_u16(), answer)
}

fn of_kind<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

/// Waits (bounded) until the trail holds a completion record whose state
/// is final.
fn until_final_completion(dir: &Path) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let records = trail_records_in(dir);
        if records
            .iter()
            .any(|r| r["kind"] == "completion" && r["state"] != "in_progress")
        {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "no final completion: {records:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn the_gateway_polls_kore_with_its_own_key_until_every_target_is_final() {
    let kore = spawn_vendor(Behaviour::kore(1)).await;
    let mut gateway =
        spawn_gateway(kore_config(&kore).upstream_key("track_completion", "50ms")).await;
    let (status, answer) = erase(&gateway, &["u-1", "fail-2"]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["requestId"], "eud-1");
    let dir = gateway.config.audit.path.parent().unwrap().to_owned();
    let records = tokio::task::spawn_blocking(move || until_final_completion(&dir))
        .await
        .unwrap();
    let decision = of_kind(&records, "decision")[0];
    let outcome = of_kind(&records, "outcome")[0];
    assert_eq!(outcome["awaits_completion"], true);
    assert_eq!(outcome["vendor_request_id"], "eud-1");
    let completions = of_kind(&records, "completion");
    assert_eq!(
        completions.len(),
        2,
        "one in progress, one final: {completions:#?}"
    );
    for completion in &completions {
        assert_eq!(completion["decision_id"], decision["decision_id"]);
        assert_eq!(completion["vendor_request_id"], "eud-1");
        assert_eq!(completion["source"], "poll");
    }
    assert_eq!(completions[0]["state"], "in_progress");
    let last = completions[1];
    assert_eq!(last["state"], "failed", "one target failed: {last}");
    assert_eq!(last["targets"][0]["type"], "Kore::User");
    assert_eq!(last["targets"][0]["state"], "succeeded");
    assert_eq!(last["targets"][1]["status"], "FAILED");
    assert_eq!(last["targets"][1]["state"], "failed");
    // Polls use the vendor's key, never a caller's, and stop once final.
    let seen = kore.received();
    let polls: Vec<_> = seen.iter().filter(|r| r.method == "GET").collect();
    assert_eq!(polls.len(), 2, "polling stops at the final answer");
    for poll in &polls {
        assert_eq!(
            poll.path_and_query,
            "/api/public/bot/eraseUsersData/status/eud-1"
        );
        assert_eq!(poll.headers["auth"], KORE_KEY);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(kore.count(), 3, "no poll after the final answer");
    let metrics = gateway.metrics().await;
    for line in [
        r#"erasure_gateway_completion_polls_total{upstream="kore",result="in_progress"} 1"#,
        r#"erasure_gateway_completion_polls_total{upstream="kore",result="final"} 1"#,
        "erasure_gateway_cedar_decision_seconds_count 1",
        r#"erasure_gateway_decisions_total{vendor="kore",decision="allow"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_status_call_passing_through_is_relayed_and_recorded_as_a_completion() {
    let kore = spawn_vendor(Behaviour::kore(1)).await;
    let mut gateway = spawn_gateway(kore_config(&kore)).await;
    assert_eq!(erase(&gateway, &["Ann@Example.com"]).await.0, 200);
    let (status, first) = status_call(&gateway, "eud-1").await;
    assert_eq!(status, 200);
    assert_eq!(first["response"][0]["status"], "IN_PROGRESS");
    let (_, second) = status_call(&gateway, "eud-1").await;
    assert_eq!(second["response"][0]["status"], "SUCCESS");
    // An id the vendor does not know: relayed, nothing recorded.
    assert_eq!(status_call(&gateway, "eud-999").await.0, 404);
    let records = gateway.trail();
    let decision_id = &of_kind(&records, "decision")[0]["decision_id"];
    let completions = of_kind(&records, "completion");
    assert_eq!(completions.len(), 2, "{completions:#?}");
    assert!(completions.iter().all(|c| c["source"] == "status_call"
        && c["decision_id"] == *decision_id
        && c["request_id"].as_str().is_some_and(|id| !id.is_empty())));
    assert_eq!(completions[1]["state"], "completed");
    // In the form Kore.ai compares addresses in, as the decision has it.
    assert_eq!(completions[1]["targets"][0]["id"], "ann@example.com");
    // The status call went with the vendor's key in place of the caller's.
    let asked = kore.received();
    assert!(asked
        .iter()
        .filter(|r| r.method == "GET")
        .all(|r| r.headers["auth"] == KORE_KEY));
    gateway.stop().await;
}

/// Runs `audit` with `args` on the trail directory.
fn audit(args: &[&str], dir: &Path) -> crate::support::Ran {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    run_gateway(&all, &[dir])
}

fn keys(dir: &Path) -> (PathBuf, PathBuf) {
    let private = dir.join("audit-signing.pem");
    run_gateway(&["audit", "keygen", "--out"], &[&private]).assert_exit(0);
    (private.clone(), private.with_extension("pub"))
}

#[tokio::test]
async fn a_receipt_says_erased_when_by_whom_and_under_which_policy_and_verifies() {
    let keys_dir = temp_dir("receipt-keys");
    let (private, public) = keys(keys_dir.path());
    let kore = spawn_vendor(Behaviour::kore(1)).await;
    let mut gateway = spawn_gateway(
        kore_config(&kore)
            .audit("signing_key_file", private.display().to_string())
            .audit("checkpoint_every", 1),
    )
    .await;
    let dir = gateway.config.audit.path.parent().unwrap().to_owned();
    assert_eq!(erase(&gateway, &["u-7"]).await.0, 200);
    // Forwarded, accepted, not completed: pending.
    let pending = audit(&["query", "--pending", "--format", "json"], &dir);
    pending.assert_exit(0);
    let rows: Vec<Value> = pending
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{}", pending.stdout);
    assert_eq!(rows[0]["vendor_request_id"], "eud-1");
    status_call(&gateway, "eud-1").await;
    status_call(&gateway, "eud-1").await;
    let pending = audit(&["query", "--pending", "--format", "json"], &dir);
    assert_eq!(pending.stdout, "", "completed erasures are not pending");
    // The account owner's erasure is refused by policy, matched in Kore's id form.
    assert_eq!(erase(&gateway, &["Owner@EXAMPLE.com"]).await.0, 403);
    gateway.stop().await;

    let ran = audit(&["receipt", "--target", "u-7", "--format", "json"], &dir);
    ran.assert_exit(0);
    let receipt: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(receipt["state"], "erased");
    assert_eq!(receipt["by"], "kore-ops");
    assert!(receipt["erased_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(receipt["policies"], json!(["privacy-officers-may-erase"]));
    let kinds: Vec<&str> = receipt["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["decision", "outcome", "completion", "completion"]);
    let last_seq = receipt["records"][3]["seq"].as_u64().unwrap();
    assert!(receipt["checkpoint"]["head_seq"].as_u64().unwrap() >= last_seq);

    let table = audit(&["receipt", "--target", "u-7"], &dir);
    table.assert_exit(0);
    assert!(
        table.stdout.starts_with("u-7: erased at "),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("covered by the checkpoint"),
        "{}",
        table.stdout
    );

    let refused = audit(
        &[
            "receipt",
            "--target",
            "owner@example.com",
            "--format",
            "json",
        ],
        &dir,
    );
    let refused: Value = serde_json::from_str(&refused.stdout).unwrap();
    assert_eq!(refused["state"], "refused");
    assert!(refused["policies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "kore-never-erase-account-owners"));
    let nobody = audit(&["receipt", "--target", "nobody"], &dir);
    nobody.assert_exit(1);

    // The receipt checks out against the trail, signature included...
    let file = keys_dir.path().join("receipt-u-7.json");
    std::fs::write(&file, &ran.stdout).unwrap();
    let verify = |receipt: &Path| {
        run_gateway(
            &[
                "audit",
                "verify",
                "--receipt",
                &receipt.display().to_string(),
                "--public-key",
                &public.display().to_string(),
            ],
            &[&dir],
        )
    };
    let checked = verify(&file);
    checked.assert_exit(0);
    assert!(
        checked
            .stdout
            .contains("4 record(s) in the trail, unmodified; checkpoint signature verified"),
        "{}",
        checked.stdout
    );
    // ...and one edited afterwards does not.
    let mut forged = receipt.clone();
    forged["records"][0]["principal"]["id"] = "someone-else".into();
    let forged_file = keys_dir.path().join("forged.json");
    std::fs::write(&forged_file, forged.to_string()).unwrap();
    let caught = verify(&forged_file);
    caught.assert_exit(1);
    assert!(caught.stdout.contains("was modified"), "{}", caught.stdout);

    // The summary is held to the records: another state or target, or a
    // record left out, is caught although every record is genuine.
    let mut other_state = receipt.clone();
    other_state["state"] = "refused".into();
    let mut other_target = receipt.clone();
    other_target["target"] = "u-8".into();
    let mut left_out = receipt.clone();
    let dropped = left_out["records"].as_array_mut().unwrap().remove(3);
    let dropped_seq = dropped["seq"].as_u64().unwrap();
    for (forged, says) in [
        (
            other_state,
            "the receipt says state refused; its records say erased".to_owned(),
        ),
        (other_target, "not about it: seq".to_owned()),
        (left_out, format!("left out: seq {dropped_seq}")),
    ] {
        std::fs::write(&forged_file, forged.to_string()).unwrap();
        let caught = verify(&forged_file);
        caught.assert_exit(1);
        assert!(caught.stdout.contains(&says), "{says}: {}", caught.stdout);
    }
    // A repeated key is refused, as the trail's verification refuses one.
    let doubled = ran.stdout.replacen('{', "{\"state\": \"refused\",", 1);
    std::fs::write(&forged_file, doubled).unwrap();
    let caught = verify(&forged_file);
    assert_ne!(caught.code, Some(0), "{}", caught.stdout);
    assert!(caught.stderr.contains("not a receipt"), "{}", caught.stderr);
}

#[tokio::test]
async fn export_keeps_the_chain_in_ocsf_and_ecs_and_follows_new_records() {
    let kore = spawn_vendor(Behaviour::kore(0)).await;
    let mut gateway = spawn_gateway(kore_config(&kore)).await;
    let dir = gateway.config.audit.path.parent().unwrap().to_owned();
    assert_eq!(erase(&gateway, &["u-1"]).await.0, 200);
    status_call(&gateway, "eud-1").await;
    let trail = trail_records_in(&dir);
    let lines: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert_eq!(trail.len(), 3);

    let plain = audit(&["export", "--format", "jsonl"], &dir);
    plain.assert_exit(0);
    assert_eq!(plain.stdout.lines().collect::<Vec<_>>(), lines);

    let ocsf = audit(&["export", "--format", "ocsf"], &dir);
    ocsf.assert_exit(0);
    let events: Vec<Value> = ocsf
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    for (event, (record, line)) in events.iter().zip(trail.iter().zip(&lines)) {
        assert_eq!(event["class_uid"], 6003);
        assert_eq!(event["raw_data"], line.as_str());
        assert_eq!(event["unmapped"]["hash"], record["hash"]);
        assert_eq!(event["unmapped"]["prev"], record["prev"]);
    }
    assert_eq!(events[0]["activity_name"], "Delete");
    assert_eq!(events[0]["actor"]["user"]["uid"], "kore-ops");
    assert_eq!(events[0]["resources"][0]["uid"], "u-1");

    let ecs = audit(&["export", "--format", "ecs"], &dir);
    let first: Value = serde_json::from_str(ecs.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["event"]["outcome"], "success");
    assert_eq!(first["rule"]["id"], "privacy-officers-may-erase");
    assert_eq!(first["user"]["id"], "kore-ops");
    assert_eq!(first["source"]["ip"], "127.0.0.1");
    assert_eq!(first["event"]["original"], lines[0].as_str());

    // Following: records appended after the start arrive as events too.
    let mut follower = crate::support::gateway_binary()
        .args(["audit", "export", "--format", "ecs", "--follow"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    for _ in 0..3 {
        lines_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    assert_eq!(erase(&gateway, &["u-2"]).await.0, 200);
    let next: Value =
        serde_json::from_str(&lines_rx.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(next["erasure_gateway"]["chain"]["kind"], "decision");
    assert_eq!(next["erasure_gateway"]["chain"]["seq"], 4);
    follower.kill().unwrap();
    follower.wait().unwrap();
    gateway.stop().await;
}
