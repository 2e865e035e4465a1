//! Limiting the blast radius end to end (budgets, repeats, four-eyes
//! approval, callers without vendor keys): the real gateway (in this process
//! and as two `serve` processes) in front of a stand-in Seam, counting in
//! process or in a real `redis-server`.
//!
//! What matters: a call past its budget is refused in Seam's shape with
//! `Retry-After`, forwards nothing, and is on the trail with its counts;
//! replicas sharing Redis never let more targets through than the budget.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{
    self, bearer, call, spawn_gateway, spawn_vendor, Behaviour, GatewayConfig, RedisServer, Served,
    StandIn, JSON,
};

const OFFICER: &str = "officer-token-1";
const BULK: &str = "bulk-officer-token-1";
const SEAM_ERASE: &str = "/seam/customers/delete_data";

/// A `[budgets]` limits table.
fn limits(targets: Option<i64>, calls: Option<i64>) -> toml::Value {
    let mut table = toml::Table::new();
    if let Some(targets) = targets {
        table.insert("targets".into(), targets.into());
    }
    if let Some(calls) = calls {
        table.insert("calls".into(), calls.into());
    }
    table.into()
}

/// Seam in front of `seam`, the officer and the bulk caller, and `config`.
fn seam_config(config: GatewayConfig, seam: &StandIn) -> GatewayConfig {
    config
        .caller("privacy-ops", OFFICER, &["privacy-officer"])
        .caller("bulk-ops", BULK, &["privacy-officer", "bulk-eraser"])
        .vendor("seam", seam)
}

fn body(keys: &[String]) -> String {
    json!({ "customer_keys": keys }).to_string()
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Customer keys Seam received, over every call.
fn targets_received(seam: &StandIn) -> usize {
    seam.received()
        .iter()
        .map(|seen| {
            serde_json::from_slice::<Value>(&seen.body).unwrap()["customer_keys"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum()
}

/// A Seam erasure call with `authorization` and `body`, through `gateway`.
async fn seam_erase(
    gateway: &crate::support::Gateway,
    authorization: &str,
    body: impl AsRef<[u8]>,
) -> (http::response::Parts, Value) {
    gateway
        .call(
            "POST",
            SEAM_ERASE,
            &[("authorization", authorization), JSON],
            body,
        )
        .await
}

fn decisions(trail: &[Value]) -> Vec<&Value> {
    trail.iter().filter(|r| r["kind"] == "decision").collect()
}

#[tokio::test]
async fn a_call_past_its_target_budget_is_refused_with_retry_after_and_forwards_nothing() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let config =
        seam_config(GatewayConfig::new(), &seam).set("budgets", "default", limits(Some(5), None));
    let mut gateway = spawn_gateway(config).await;
    let auth = bearer(OFFICER);
    let headers = [("authorization", auth.as_str()), JSON];

    let (parts, _) = gateway
        .call("POST", SEAM_ERASE, &headers, body(&keys("a", 3)))
        .await;
    assert_eq!(parts.status, 200);
    let (parts, error) = gateway
        .call("POST", SEAM_ERASE, &headers, body(&keys("b", 3)))
        .await;
    assert_eq!(parts.status, 429, "{error}");
    assert_eq!(error["error"]["type"], "budget_exceeded", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("5 targets per 1h"), "{message}");
    let retry: u64 = parts.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
    assert_eq!(seam.count(), 1, "the refused call reached Seam");

    // What is left of the budget still goes.
    let (parts, _) = gateway
        .call("POST", SEAM_ERASE, &headers, body(&keys("c", 2)))
        .await;
    assert_eq!(parts.status, 200);
    // Another caller has its own budget.
    let bulk = bearer(BULK);
    let (parts, _) = seam_erase(&gateway, &bulk, body(&keys("d", 4))).await;
    assert_eq!(parts.status, 200);
    assert_eq!(targets_received(&seam), 9);

    let trail = gateway.trail();
    let decisions = decisions(&trail);
    let refused = decisions[1];
    assert_eq!(refused["effect"], "refused");
    assert_eq!(refused["refusal"], "budget_exceeded");
    assert_eq!(refused["status"], 429);
    assert_eq!(refused["budget"]["exceeded"], "targets");
    assert_eq!(refused["budget"]["erasures_in_window"], 3);
    assert_eq!(refused["budget"]["targets_limit"], 5);
    assert_eq!(refused["budget"]["targets_window_secs"], 3600);
    assert_eq!(decisions[2]["budget"]["erasures_in_window"], 3);
    assert_eq!(decisions[2]["context"]["erasures_in_window"], 3);
    assert_eq!(decisions[3]["budget"]["erasures_in_window"], 0);
    gateway.stop().await;
}

#[tokio::test]
async fn a_callers_own_call_budget_overrides_the_default() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let mut callers = toml::Table::new();
    callers.insert("bulk-ops".into(), limits(None, Some(1)));
    let config = seam_config(GatewayConfig::new(), &seam)
        .set("budgets", "default", limits(Some(100), Some(2)))
        .set("budgets", "caller", callers);
    let mut gateway = spawn_gateway(config).await;
    let bulk = bearer(BULK);
    let headers = [("authorization", bulk.as_str()), JSON];
    let (first, _) = gateway
        .call("POST", SEAM_ERASE, &headers, body(&keys("x", 1)))
        .await;
    let (second, error) = gateway
        .call("POST", SEAM_ERASE, &headers, body(&keys("y", 1)))
        .await;
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (200, 429));
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 erasure calls per 1m"),
        "{error}"
    );
    let officer = bearer(OFFICER);
    let headers = [("authorization", officer.as_str()), JSON];
    for (n, want) in [(1, 200), (2, 200), (3, 429)] {
        let (parts, _) = gateway
            .call(
                "POST",
                SEAM_ERASE,
                &headers,
                body(&keys(&format!("o{n}"), 1)),
            )
            .await;
        assert_eq!(parts.status, want, "officer call {n}");
    }
    assert_eq!(seam.count(), 3);
    let trail = gateway.trail();
    let last = decisions(&trail).last().copied().unwrap().clone();
    assert_eq!(last["budget"]["exceeded"], "calls");
    assert_eq!(last["budget"]["calls_in_window"], 2);
    gateway.stop().await;
}

#[tokio::test]
async fn policies_read_the_counts_from_the_context() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let policies = support::policies_copy();
    std::fs::write(
        policies.path().join("budget.cedar"),
        r#"@id("bulk-needs-the-bulk-role")
forbid (principal, action, resource)
when { context.erasures_in_window + context.target_count > 4 }
unless { principal in Gateway::Role::"bulk-eraser" };
"#,
    )
    .unwrap();
    let config = seam_config(GatewayConfig::new(), &seam)
        .policies("dir", policies.path().display().to_string());
    let mut gateway = spawn_gateway(config).await;
    let officer = bearer(OFFICER);
    let bulk = bearer(BULK);
    for (auth, prefix, want) in [
        (&officer, "a", 200),
        (&officer, "b", 403),
        (&bulk, "c", 200),
        (&bulk, "d", 200),
    ] {
        let (parts, answer) = gateway
            .call(
                "POST",
                SEAM_ERASE,
                &[("authorization", auth), JSON],
                body(&keys(prefix, 3)),
            )
            .await;
        assert_eq!(parts.status, want, "{prefix}: {answer}");
        if want == 403 {
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains("bulk-needs-the-bulk-role"), "{message}");
        }
    }
    assert_eq!(seam.count(), 3);
    gateway.stop().await;
}

#[tokio::test]
async fn a_repeated_erasure_is_refused_with_the_earlier_decision_when_configured() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let config = seam_config(GatewayConfig::new(), &seam).set("budgets", "repeat", "refuse");
    let mut gateway = spawn_gateway(config).await;
    let auth = bearer(OFFICER);
    let headers = [("authorization", auth.as_str()), JSON];
    let (first, _) = gateway
        .call("POST", SEAM_ERASE, &headers, body(&keys("p", 1)))
        .await;
    assert_eq!(first.status, 200);
    let earlier = first.headers["x-erasure-decision-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let again = vec!["q-0".to_owned(), "p-0".to_owned()];
    let (parts, error) = gateway
        .call("POST", SEAM_ERASE, &headers, body(&again))
        .await;
    assert_eq!(parts.status, 409, "{error}");
    assert_eq!(error["error"]["type"], "repeated_erasure");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&earlier),
        "{error}"
    );
    assert_eq!(seam.count(), 1, "the repeat reached Seam");

    let trail = gateway.trail();
    let refused = decisions(&trail)[1].clone();
    assert_eq!(refused["refusal"], "repeated_erasure");
    assert_eq!(refused["targets"][0].get("repeat_of"), None);
    assert_eq!(refused["targets"][1]["repeat_of"], earlier.as_str());
    // Nothing was charged for the refused repeat: q-0 goes alone.
    let (parts, _) = gateway
        .call("POST", SEAM_ERASE, &headers, body(&keys("q", 1)))
        .await;
    assert_eq!(parts.status, 200);
    gateway.stop().await;
}

#[tokio::test]
async fn a_repeated_erasure_is_forwarded_and_recorded_as_one_by_default() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let mut gateway = spawn_gateway(seam_config(GatewayConfig::new(), &seam)).await;
    let auth = bearer(OFFICER);
    let headers = [("authorization", auth.as_str()), JSON];
    let (first, _) = gateway
        .call("POST", SEAM_ERASE, &headers, body(&keys("r", 1)))
        .await;
    let (second, _) = gateway
        .call("POST", SEAM_ERASE, &headers, body(&keys("r", 1)))
        .await;
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (200, 200));
    assert_eq!(seam.count(), 2);
    let trail = gateway.trail();
    let decisions = decisions(&trail);
    assert_eq!(decisions[0]["targets"][0].get("repeat_of"), None);
    assert_eq!(
        decisions[1]["targets"][0]["repeat_of"],
        first.headers["x-erasure-decision-id"].to_str().unwrap()
    );
    assert_eq!(decisions[1]["budget"]["erasures_in_window"], 1);
    gateway.stop().await;
}

/// A Redis-backed `[budgets]` on top of `config`.
fn redis_budgets(config: GatewayConfig, redis: &RedisServer) -> GatewayConfig {
    config
        .set("budgets", "backend", "redis")
        .set("budgets", "redis_url", redis.url())
        .set("budgets", "timeout", "300ms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_processes_sharing_redis_never_pass_more_than_one_budget() {
    let redis = RedisServer::start();
    let seam = spawn_vendor(Behaviour::Echo).await;
    let replica = |name: &str| {
        let config = redis_budgets(seam_config(GatewayConfig::new(), &seam), &redis)
            .audit("replica", name)
            .set("budgets", "default", limits(Some(50), None));
        let served = Served::start(&config, Stdio::null());
        (served, config)
    };
    let (a, config_a) = replica("a");
    let (b, config_b) = replica("b");
    let auth = bearer(OFFICER);
    // 40 calls of 3 targets at once, half through each replica: 16 fit.
    let calls = (0..40).map(|i| {
        let url = if i % 2 == 0 {
            a.url(SEAM_ERASE)
        } else {
            b.url(SEAM_ERASE)
        };
        let auth = auth.clone();
        async move {
            let keys = keys(&format!("call{i}"), 3);
            call("POST", &url, &[("authorization", &auth), JSON], body(&keys))
                .await
                .0
                .status
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let passed = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((passed, refused), (16, 24), "{statuses:?}");
    assert_eq!(targets_received(&seam), 48);
    let forwarded: usize = [&config_a, &config_b]
        .iter()
        .map(|c| {
            support::trail_records_in(&c.audit_dir())
                .iter()
                .filter(|r| r["kind"] == "decision" && r["effect"] == "forwarded")
                .count()
        })
        .sum();
    assert_eq!(forwarded, 16);
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_refuses_erasures_with_503_and_recovers_when_it_returns() {
    let mut redis = RedisServer::start();
    let seam = spawn_vendor(Behaviour::Echo).await;
    let config = redis_budgets(seam_config(GatewayConfig::new(), &seam), &redis);
    let mut gateway = spawn_gateway(config).await;
    let auth = bearer(OFFICER);
    let url = gateway.url(SEAM_ERASE);
    // Four clients erase, one target a call, until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (url, auth, stop) = (url.clone(), auth.clone(), stop.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for n in 0..2_000 {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let keys = keys(&format!("c{c}-{n}"), 1);
                    let (parts, _) =
                        call("POST", &url, &[("authorization", &auth), JSON], body(&keys)).await;
                    statuses.push(parts.status.as_u16());
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                statuses
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Pass-through does not need Redis.
    let (parts, _) = gateway
        .call("GET", "/seam/devices/list", &[("authorization", &auth)], "")
        .await;
    assert_eq!(parts.status, 200);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut statuses = Vec::new();
    for client in clients {
        statuses.extend(client.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let unavailable = statuses.iter().filter(|s| **s == 503).count();
    assert!(
        ok > 0 && unavailable > 0,
        "{ok} allowed, {unavailable} refused"
    );
    assert_eq!(
        ok + unavailable,
        statuses.len(),
        "only 200 and 503: {statuses:?}"
    );

    // While Redis is down, not one erasure is forwarded.
    let before = seam.count();
    let (parts, error) = gateway
        .call(
            "POST",
            SEAM_ERASE,
            &[("authorization", &auth), JSON],
            body(&keys("down", 1)),
        )
        .await;
    assert_eq!(parts.status, 503, "{error}");
    assert_eq!(error["error"]["type"], "budget_unavailable", "{error}");
    assert_eq!(seam.count(), before);

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    let status = loop {
        n += 1;
        let keys = keys(&format!("back{n}"), 1);
        let (parts, _) = gateway
            .call(
                "POST",
                SEAM_ERASE,
                &[("authorization", &auth), JSON],
                body(&keys),
            )
            .await;
        if parts.status == 200 || Instant::now() > deadline {
            break parts.status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200, "erasures resume once Redis is back");

    let trail = gateway.trail();
    let decisions = decisions(&trail);
    let recorded_unavailable = decisions
        .iter()
        .filter(|r| r["refusal"] == "budget_unavailable")
        .count();
    assert!(
        recorded_unavailable > unavailable,
        "every 503 is on the trail"
    );
    let forwarded = decisions
        .iter()
        .filter(|r| r["effect"] == "forwarded")
        .count();
    // Every erasure Seam got is on the trail as forwarded, and no other (the
    // one pass-through call is not an erasure).
    assert_eq!(forwarded, seam.count() - 1);
    // …and each reached Seam exactly as decided.
    gateway.stop().await;
}

const REVIEWER: &str = "reviewer-token-1";
const INTERN: &str = "intern-token-1";

/// A gateway whose policies hold any Seam call of more than three targets
/// for approval; the officer may also approve (but never its own calls).
async fn approval_env(
    seam: &StandIn,
    config: GatewayConfig,
) -> (crate::support::Gateway, tempfile::TempDir) {
    let policies = support::policies_copy();
    std::fs::write(
        policies.path().join("approval.cedar"),
        r#"@id("bulk-needs-a-second-pair-of-eyes")
@approval("an erasure of more than three targets")
forbid (principal, action == Seam::Action::"delete_data", resource)
when { context.target_count > 3 };
"#,
    )
    .unwrap();
    let config = config
        .caller("privacy-ops", OFFICER, &["privacy-officer", "approver"])
        .caller("reviewer", REVIEWER, &["approver"])
        .caller("intern", INTERN, &[])
        .vendor("seam", seam)
        .policies("dir", policies.path().display().to_string());
    (spawn_gateway(config).await, policies)
}

/// The officer's Seam call of `n` fresh targets, held for approval: its
/// body and the approval id.
async fn held_call(gateway: &crate::support::Gateway, prefix: &str, n: usize) -> (String, String) {
    held_call_at(gateway, SEAM_ERASE, prefix, n).await
}

/// [`held_call`], sent to `path` (another upstream with Seam's profile).
async fn held_call_at(
    gateway: &crate::support::Gateway,
    path: &str,
    prefix: &str,
    n: usize,
) -> (String, String) {
    let auth = bearer(OFFICER);
    let bulk = body(&keys(prefix, n));
    let (parts, error) = gateway
        .call("POST", path, &[("authorization", &auth), JSON], &bulk)
        .await;
    assert_eq!(parts.status, 403, "{error}");
    assert_eq!(error["error"]["type"], "approval_required", "{error}");
    let id = parts.headers["x-erasure-approval-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        error["error"]["message"].as_str().unwrap().contains(&id),
        "{error}"
    );
    (bulk, id)
}

/// `GET /v1/approvals` as the reviewer: the answer, checked to be 200.
async fn listed_approvals(gateway: &crate::support::Gateway) -> Value {
    let (parts, listed) = call(
        "GET",
        &gateway.admin_url("/v1/approvals"),
        &[("authorization", &bearer(REVIEWER))],
        "",
    )
    .await;
    assert_eq!(parts.status, 200, "{listed}");
    listed
}

async fn settle(
    gateway: &crate::support::Gateway,
    id: &str,
    token: &str,
    decision: &str,
) -> (http::response::Parts, Value) {
    let auth = bearer(token);
    call(
        "POST",
        &gateway.admin_url(&format!("/v1/approvals/{id}")),
        &[("authorization", &auth), JSON],
        json!({ "decision": decision, "note": "checked the ticket" }).to_string(),
    )
    .await
}

#[tokio::test]
async fn a_held_call_goes_ahead_once_after_a_second_caller_approves_it() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let (mut gateway, _policies) = approval_env(&seam, GatewayConfig::new()).await;
    let auth = bearer(OFFICER);
    let headers = [("authorization", auth.as_str()), JSON];
    let (bulk, id) = held_call(&gateway, "bulk", 4).await;
    // Asking again waits for the same approval.
    let (parts, _) = gateway.call("POST", SEAM_ERASE, &headers, &bulk).await;
    assert_eq!(parts.headers["x-erasure-approval-id"], id.as_str());
    assert_eq!(seam.count(), 0, "a held call reached Seam");

    // Four eyes: not the requester, not a caller without the role.
    let (parts, error) = settle(&gateway, &id, OFFICER, "approve").await;
    assert_eq!(parts.status, 403, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("four eyes"),
        "{error}"
    );
    let (parts, _) = settle(&gateway, &id, INTERN, "approve").await;
    assert_eq!(parts.status, 403);
    let listed = listed_approvals(&gateway).await;
    assert_eq!(listed["approvals"][0]["id"], id.as_str());
    assert_eq!(listed["approvals"][0]["state"], "pending");
    assert_eq!(
        listed["approvals"][0]["targets"][0],
        "Seam::Customer::\"bulk-0\""
    );

    let (parts, approved) = settle(&gateway, &id, REVIEWER, "approve").await;
    assert_eq!(parts.status, 200, "{approved}");
    assert_eq!(approved["state"], "approved");
    let (parts, _) = settle(&gateway, &id, REVIEWER, "reject").await;
    assert_eq!(parts.status, 409, "an approval is settled once");

    // Another call is not what was approved.
    let (parts, _) = gateway
        .call("POST", SEAM_ERASE, &headers, body(&keys("other", 4)))
        .await;
    assert_eq!(parts.status, 403);
    assert_ne!(parts.headers["x-erasure-approval-id"], id.as_str());
    // The identical call goes, once.
    let (parts, answer) = gateway.call("POST", SEAM_ERASE, &headers, &bulk).await;
    assert_eq!(parts.status, 200, "{answer}");
    assert_eq!(seam.count(), 1);
    let (parts, _) = gateway.call("POST", SEAM_ERASE, &headers, &bulk).await;
    assert_eq!(parts.status, 403, "an approval is used once");
    assert_eq!(seam.count(), 1);

    let trail = gateway.trail();
    let held = &decisions(&trail)[0];
    assert_eq!(held["decision"], "held");
    assert_eq!(held["refusal"], "approval_required");
    assert_eq!(held["approval_id"], id.as_str());
    let digest = held["call_sha256"].as_str().unwrap();
    assert_eq!(
        held["body_sha256"],
        support::sha256_hex(
            serde_json::to_vec(&serde_json::from_str::<Value>(&bulk).unwrap()).unwrap()
        )
        .as_str(),
        "the canonical body's digest"
    );
    let record = trail.iter().find(|r| r["kind"] == "approval").unwrap();
    assert_eq!(record["approval_id"], id.as_str());
    assert_eq!(record["state"], "approved");
    assert_eq!(record["approver"]["id"], "reviewer");
    assert_eq!(record["requester"], "privacy-ops");
    assert_eq!(record["decision_id"], held["decision_id"]);
    assert_eq!(record["note"], "checked the ticket");
    let went = decisions(&trail)
        .into_iter()
        .find(|r| r["effect"] == "forwarded")
        .unwrap()
        .clone();
    assert_eq!(went["decision"], "allow");
    assert_eq!(went["approval_id"], id.as_str());
    assert_eq!(went["call_sha256"], digest);
    assert_eq!(went["body_sha256"], held["body_sha256"]);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_approvers_at_once_leave_one_answer_on_the_trail_and_it_is_the_one_that_holds() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new().caller("second", "second-token-1", &["approver"]);
    let (mut gateway, _policies) = approval_env(&seam, config).await;
    for round in 0..5 {
        let (_, id) = held_call(&gateway, &format!("race{round}"), 4).await;
        let ((approved, _), (rejected, _)) = tokio::join!(
            settle(&gateway, &id, REVIEWER, "approve"),
            settle(&gateway, &id, "second-token-1", "reject"),
        );
        let statuses = [approved.status.as_u16(), rejected.status.as_u16()];
        assert!(
            statuses == [200, 409] || statuses == [409, 200],
            "one answer holds, the other is refused: {statuses:?}"
        );
        let held = if statuses[0] == 200 {
            "approved"
        } else {
            "rejected"
        };
        let records: Vec<Value> = gateway
            .trail()
            .into_iter()
            .filter(|r| r["kind"] == "approval" && r["approval_id"] == id.as_str())
            .collect();
        assert_eq!(records.len(), 1, "round {round}: {records:?}");
        assert_eq!(records[0]["state"], held, "round {round}");
        let listed = listed_approvals(&gateway).await;
        let this = listed["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id.as_str())
            .unwrap();
        assert_eq!(this["state"], held, "round {round}");
    }
    assert_eq!(seam.count(), 0);
    gateway.stop().await;
}

#[tokio::test]
async fn a_rejected_call_stays_refused_and_approval_cannot_lift_other_denials() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let (mut gateway, _policies) = approval_env(&seam, GatewayConfig::new()).await;
    let auth = bearer(OFFICER);
    let headers = [("authorization", auth.as_str()), JSON];
    let (bulk, id) = held_call(&gateway, "r", 5).await;
    let (parts, rejected) = settle(&gateway, &id, REVIEWER, "reject").await;
    assert_eq!(
        (parts.status.as_u16(), &rejected["state"]),
        (200, &json!("rejected"))
    );
    let (parts, error) = gateway.call("POST", SEAM_ERASE, &headers, &bulk).await;
    assert_eq!(parts.status, 403, "{error}");
    assert_ne!(
        parts.headers["x-erasure-approval-id"],
        id.as_str(),
        "asked anew"
    );

    // Without a permit, approval would not help: a plain denial, no approval.
    let intern = bearer(INTERN);
    let (parts, error) = seam_erase(&gateway, &intern, &bulk).await;
    assert_eq!(parts.status, 403);
    assert_eq!(
        error["error"]["type"], "erasure_denied_by_policy",
        "{error}"
    );
    assert!(parts.headers.get("x-erasure-approval-id").is_none());
    assert_eq!(seam.count(), 0);
    let trail = gateway.trail();
    assert_eq!(
        trail.iter().filter(|r| r["kind"] == "approval").count(),
        1,
        "the rejection is on the trail"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_given_through_one_replica_holds_at_another_through_redis() {
    let redis = RedisServer::start();
    let seam = spawn_vendor(Behaviour::Echo).await;
    let (mut a, _pa) = approval_env(&seam, redis_budgets(GatewayConfig::new(), &redis)).await;
    let (mut b, _pb) = approval_env(&seam, redis_budgets(GatewayConfig::new(), &redis)).await;
    let auth = bearer(OFFICER);
    let headers = [("authorization", auth.as_str()), JSON];
    let (bulk, id) = held_call(&a, "x", 4).await;
    let (parts, _) = b.call("POST", SEAM_ERASE, &headers, &bulk).await;
    assert_eq!(
        parts.headers["x-erasure-approval-id"],
        id.as_str(),
        "one approval for both"
    );
    let (parts, error) = settle(&b, &id, OFFICER, "approve").await;
    assert_eq!(parts.status, 403, "{error}");
    let (parts, approved) = settle(&b, &id, REVIEWER, "approve").await;
    assert_eq!(parts.status, 200, "{approved}");
    let (parts, _) = settle(&a, &id, REVIEWER, "approve").await;
    assert_eq!(parts.status, 409);
    let (parts, answer) = a.call("POST", SEAM_ERASE, &headers, &bulk).await;
    assert_eq!(parts.status, 200, "{answer}");
    let (parts, _) = b.call("POST", SEAM_ERASE, &headers, &bulk).await;
    assert_eq!(parts.status, 403, "used once, across replicas");
    assert_eq!(seam.count(), 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn an_approval_given_for_one_upstream_does_not_send_the_call_to_another_with_the_same_profile(
) {
    // Two Seam accounts behind one gateway: the approver approved the
    // sandbox's erasure, never production's.
    let sandbox = spawn_vendor(Behaviour::Echo).await;
    let production = spawn_vendor(Behaviour::Echo).await;
    let config =
        GatewayConfig::new().named_vendor("seam-sandbox", "seam", &sandbox, "/seam-sandbox");
    let (mut gateway, _policies) = approval_env(&production, config).await;
    let auth = bearer(OFFICER);
    let headers = [("authorization", auth.as_str()), JSON];
    let sandbox_erase = "/seam-sandbox/customers/delete_data";
    let (bulk, id) = held_call_at(&gateway, sandbox_erase, "acct", 4).await;
    let listed = listed_approvals(&gateway).await;
    assert_eq!(listed["approvals"][0]["vendor"], "seam", "{listed}");
    assert_eq!(
        listed["approvals"][0]["upstream"], "seam-sandbox",
        "{listed}"
    );
    let (parts, approved) = settle(&gateway, &id, REVIEWER, "approve").await;
    assert_eq!(parts.status, 200, "{approved}");

    // The same requester, the same body, the same profile: another account.
    let (parts, error) = gateway.call("POST", SEAM_ERASE, &headers, &bulk).await;
    assert_eq!(parts.status, 403, "{error}");
    assert_eq!(error["error"]["type"], "approval_required", "{error}");
    assert_ne!(
        parts.headers["x-erasure-approval-id"],
        id.as_str(),
        "production's call is held on its own"
    );
    assert_eq!(
        production.count(),
        0,
        "the sandbox's approval reached production"
    );
    assert_eq!(sandbox.count(), 0);

    // The approval still holds where it was given, once.
    let (parts, answer) = gateway.call("POST", sandbox_erase, &headers, &bulk).await;
    assert_eq!(parts.status, 200, "{answer}");
    assert_eq!((sandbox.count(), production.count()), (1, 0));

    let trail = gateway.trail();
    let held = decisions(&trail);
    let production_held = held
        .iter()
        .find(|r| r["upstream"] == "seam" && r["decision"] == "held")
        .expect("production's held decision");
    assert_ne!(production_held["approval_id"], id.as_str());
    let went = held
        .iter()
        .find(|r| r["effect"] == "forwarded")
        .expect("the sandbox call went");
    assert_eq!(went["upstream"], "seam-sandbox");
    assert_eq!(went["approval_id"], id.as_str());
    assert_ne!(
        went["call_sha256"], production_held["call_sha256"],
        "the digest names the upstream"
    );
    gateway.stop().await;
}

/// `erasure-gateway approvals …` as `token`'s caller, against `gateway`.
async fn approvals_command(
    gateway: &crate::support::Gateway,
    token: &str,
    args: &[&str],
) -> crate::support::Ran {
    let mut command = crate::support::gateway_binary();
    command
        .env("ERASURE_GATEWAY_TOKEN", token)
        .arg("approvals")
        .args(args)
        .args(["--admin-url", &gateway.admin_url("")]);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    crate::support::Ran::from(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approvals_command_lists_approves_and_refuses_self_approval() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let (mut gateway, _policies) = approval_env(&seam, GatewayConfig::new()).await;
    let auth = bearer(OFFICER);
    let headers = [("authorization", auth.as_str()), JSON];
    let (bulk, id) = held_call(&gateway, "cli", 4).await;

    let listed = approvals_command(&gateway, REVIEWER, &["list"]).await;
    listed.assert_exit(0);
    assert!(listed.stdout.contains(&id), "{}", listed.stdout);
    assert!(listed.stdout.contains("pending"), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("bulk-needs-a-second-pair-of-eyes"),
        "{}",
        listed.stdout
    );

    let own = approvals_command(&gateway, OFFICER, &["approve", &id]).await;
    own.assert_exit(1);
    assert!(own.stderr.contains("four eyes"), "{}", own.stderr);

    let approved =
        approvals_command(&gateway, REVIEWER, &["approve", &id, "--note", "PRIV-42"]).await;
    approved.assert_exit(0);
    assert!(approved.stdout.contains("approved"), "{}", approved.stdout);
    let (parts, _) = gateway.call("POST", SEAM_ERASE, &headers, &bulk).await;
    assert_eq!(parts.status, 200);
    assert_eq!(seam.count(), 1);
    let note = gateway
        .trail()
        .into_iter()
        .find(|r| r["kind"] == "approval")
        .unwrap();
    assert_eq!(note["note"], "PRIV-42");
    gateway.stop().await;
}

#[tokio::test]
async fn an_approval_expires_unused() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new().set("budgets", "approval_ttl", "1s");
    let (mut gateway, _policies) = approval_env(&seam, config).await;
    let auth = bearer(OFFICER);
    let headers = [("authorization", auth.as_str()), JSON];
    let (bulk, id) = held_call(&gateway, "late", 4).await;
    let (parts, _) = settle(&gateway, &id, REVIEWER, "approve").await;
    assert_eq!(parts.status, 200);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (parts, _) = gateway.call("POST", SEAM_ERASE, &headers, &bulk).await;
    assert_eq!(
        parts.status, 403,
        "an expired approval let the call through"
    );
    assert_ne!(parts.headers["x-erasure-approval-id"], id.as_str());
    let (parts, _) = settle(&gateway, &id, REVIEWER, "approve").await;
    assert_eq!(parts.status, 404, "an expired approval is gone");
    assert_eq!(seam.count(), 0);
    gateway.stop().await;
}

const SEAM_VENDOR_KEY: &str = "seam_vendor_master_key_0123456789";

/// `[upstream.credential]` reading the secret from `file`.
fn credential_from(file: &std::path::Path, extra: &[(&str, toml::Value)]) -> toml::Table {
    let mut table = toml::Table::new();
    table.insert("file".into(), file.display().to_string().into());
    for (key, value) in extra {
        table.insert((*key).into(), value.clone());
    }
    table
}

fn header<'a>(seen: &'a crate::support::Received, name: &str) -> Option<&'a str> {
    seen.headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn callers_never_hold_the_vendor_key_the_gateway_sends_it_in_their_place() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new();
    let key_file = config.write_file("seam-key", &format!("{SEAM_VENDOR_KEY}\n"));
    let config = seam_config(config, &seam).upstream_credential(credential_from(&key_file, &[]));
    let mut gateway = spawn_gateway(config).await;
    let officer = bearer(OFFICER);

    let (parts, _) = seam_erase(&gateway, &officer, body(&keys("k", 2))).await;
    assert_eq!(parts.status, 200);
    let (parts, _) = gateway
        .call(
            "GET",
            "/seam/devices/list",
            &[("authorization", officer.as_str())],
            "",
        )
        .await;
    assert_eq!(parts.status, 200);
    // A stranger's pass-through call goes with no credential at all.
    let (parts, _) = gateway
        .call(
            "GET",
            "/seam/devices/list",
            &[("authorization", "Bearer who-knows")],
            "",
        )
        .await;
    assert_eq!(parts.status, 200);

    let seen = seam.received();
    let vendor = format!("Bearer {SEAM_VENDOR_KEY}");
    assert_eq!(
        header(&seen[0], "authorization"),
        Some(vendor.as_str()),
        "erasure"
    );
    assert_eq!(
        header(&seen[1], "authorization"),
        Some(vendor.as_str()),
        "pass-through"
    );
    assert_eq!(
        header(&seen[2], "authorization"),
        None,
        "a stranger got the vendor key"
    );
    assert!(seen
        .iter()
        .all(|s| !format!("{:?}", s.headers).contains(OFFICER)));

    let trail_text: String = std::fs::read_dir(gateway.config.audit.path.parent().unwrap())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(
        !trail_text.contains(SEAM_VENDOR_KEY),
        "the vendor key is in the trail"
    );
    assert_eq!(gateway.trail()[0]["principal"]["id"], "privacy-ops");
    gateway.stop().await;
}

#[tokio::test]
async fn kore_gets_a_jwt_minted_per_call_from_the_app_client_secret() {
    const CLIENT_SECRET: &str = "kore-app-client-secret-for-tests-only";
    const CALLERS_SECRET: &str = "callers-own-hs256-secret-for-tests-only";
    let kore = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new();
    let secret_file = config.write_file("kore-client-secret", CLIENT_SECRET);
    let config = config
        .jwt_hs256(CALLERS_SECRET)
        .jwt_caller("kore-officer", &["privacy-officer"])
        .vendor("kore", &kore)
        .upstream_credential(credential_from(
            &secret_file,
            &[
                ("mint", "kore_jwt".into()),
                ("client_id", "cs-test-app".into()),
            ],
        ));
    let mut gateway = spawn_gateway(config).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let caller_jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "kore-officer", "iat": now, "exp": now + 300}),
        &jsonwebtoken::EncodingKey::from_secret(CALLERS_SECRET.as_bytes()),
    )
    .unwrap();
    for user in ["u-1", "u-2"] {
        let (parts, answer) = gateway
            .call(
                "DELETE",
                "/kore/api/public/bot/eraseUsersData",
                &[("auth", caller_jwt.as_str()), JSON],
                json!({ "userIds": [user] }).to_string(),
            )
            .await;
        assert_eq!(parts.status, 200, "{answer}");
    }
    let seen = kore.received();
    assert_eq!(seen.len(), 2);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    for call in &seen {
        let minted = header(call, "auth").unwrap();
        assert_ne!(minted, caller_jwt, "the caller's JWT reached Kore.ai");
        let claims = jsonwebtoken::decode::<Value>(
            minted,
            &jsonwebtoken::DecodingKey::from_secret(CLIENT_SECRET.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["appId"], "cs-test-app");
        assert!(
            claims["exp"].as_u64().unwrap() <= now + 120,
            "a short expiry"
        );
    }
    gateway.stop().await;
}

#[tokio::test]
async fn botpenguin_gets_its_token_and_authtype_in_place_of_the_callers() {
    let botpenguin = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new();
    let token_file = config.write_file("botpenguin-token", "bp_vendor_token_42");
    let mut headers = toml::Table::new();
    headers.insert("authtype".into(), "Key".into());
    let config = config
        .caller("privacy-ops", OFFICER, &["privacy-officer"])
        .vendor("botpenguin", &botpenguin)
        .upstream_credential(credential_from(&token_file, &[("headers", headers.into())]));
    let mut gateway = spawn_gateway(config).await;
    let officer = bearer(OFFICER);
    let (parts, answer) = gateway
        .call(
            "DELETE",
            "/botpenguin/customer/cust-77",
            &[("authorization", officer.as_str()), ("authtype", "Caller")],
            "",
        )
        .await;
    assert_eq!(parts.status, 200, "{answer}");
    let seen = botpenguin.received();
    assert_eq!(
        header(&seen[0], "authorization"),
        Some("Bearer bp_vendor_token_42")
    );
    assert_eq!(header(&seen[0], "authtype"), Some("Key"));
    gateway.stop().await;
}

#[tokio::test]
async fn a_client_certificate_identifies_a_caller_that_sends_no_token() {
    let certs = erasure_gateway::certs::DevCerts::generate().unwrap();
    let dir = support::cert_dir(&certs, "mtls-caller");
    let seam = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new()
        .proxy(
            "tls_cert",
            dir.path().join("gateway.pem").display().to_string(),
        )
        .proxy(
            "tls_key",
            dir.path().join("gateway-key.pem").display().to_string(),
        )
        .proxy("client_ca", dir.path().join("ca.pem").display().to_string());
    let key_file = config.write_file("seam-key", SEAM_VENDOR_KEY);
    let mut config = config
        .vendor("seam", &seam)
        .upstream_credential(credential_from(&key_file, &[]));
    let mut caller = toml::Table::new();
    caller.insert("id".into(), "mtls-ops".into());
    caller.insert(
        "cert_subject".into(),
        "CN=erasure-gateway dev client".into(),
    );
    caller.insert(
        "roles".into(),
        toml::Value::Array(vec!["privacy-officer".into()]),
    );
    config = config.raw_caller(caller);
    let mut gateway = spawn_gateway(config).await;
    let request = support::request("POST", &gateway.tls_url(SEAM_ERASE), body(&keys("m", 1)));
    let mut request = request;
    request
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    let (parts, answer) = support::send(&support::tls_client(&certs, true), request)
        .await
        .unwrap();
    assert_eq!(parts.status, 200, "{}", String::from_utf8_lossy(&answer));
    let seen = seam.received();
    let vendor = format!("Bearer {SEAM_VENDOR_KEY}");
    assert_eq!(header(&seen[0], "authorization"), Some(vendor.as_str()));
    let principal = &gateway.trail()[0]["principal"];
    assert_eq!(principal["id"], "mtls-ops");
    assert_eq!(principal["source"], "certificate");
    gateway.stop().await;
}

/// A JWKS endpoint whose key set the test can swap, counting fetches.
struct JwksServer {
    url: String,
    body: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    async fn start(body: String) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let body = std::sync::Arc::new(std::sync::Mutex::new(body));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (served, counted) = (body.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (served, counted) = (served.clone(), counted.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let body = served.lock().unwrap().clone();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { url, body, fetches }
    }

    fn serve(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// An ES256 signing key and its public JWK.
struct SigningKey {
    kid: &'static str,
    encoding: jsonwebtoken::EncodingKey,
    jwk: Value,
}

impl SigningKey {
    fn generate(kid: &'static str) -> Self {
        use base64::Engine as _;
        let pair = rcgen::KeyPair::generate().unwrap();
        let raw = pair.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        Self {
            kid,
            encoding: jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())
                .unwrap(),
            jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
                        "kid": kid, "alg": "ES256", "use": "sig"}),
        }
    }

    fn sign(&self, sub: &str, kid: Option<&str>) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = kid.or(Some(self.kid)).map(str::to_owned);
        jsonwebtoken::encode(
            &header,
            &json!({"sub": sub, "iat": now, "exp": now + 300}),
            &self.encoding,
        )
        .unwrap()
    }
}

fn key_set(keys: &[&SigningKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

#[tokio::test]
async fn caller_jwts_verify_against_a_jwks_url_and_follow_key_rotation() {
    let (old, new) = (
        SigningKey::generate("k-2026-11"),
        SigningKey::generate("k-2026-12"),
    );
    let jwks = JwksServer::start(key_set(&[&old])).await;
    let kore = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new()
        .set("jwt", "algorithm", "ES256")
        .set("jwt", "jwks_url", jwks.url.clone())
        .set("jwt", "jwks_refresh", "10s")
        .jwt_caller("kore-officer", &["privacy-officer"])
        .vendor("kore", &kore);
    let mut gateway = spawn_gateway(config).await;
    let erase = |token: String, user: &'static str| kore_erase_as(&gateway, token, user.to_owned());
    assert_eq!(erase(old.sign("kore-officer", None), "u-1").await, 200);
    assert_eq!(jwks.fetches(), 1);
    assert_eq!(erase(old.sign("kore-officer", None), "u-2").await, 200);
    assert_eq!(jwks.fetches(), 1, "keys are cached");

    // The provider rotates: the new key is fetched when a token names it.
    jwks.serve(key_set(&[&new]));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(erase(new.sign("kore-officer", None), "u-3").await, 200);
    assert_eq!(jwks.fetches(), 2);
    // The retired key no longer verifies; made-up key ids do not hammer the provider.
    assert_eq!(erase(old.sign("kore-officer", None), "u-4").await, 401);
    for _ in 0..5 {
        assert_eq!(
            erase(new.sign("kore-officer", Some("made-up")), "u-5").await,
            401
        );
    }
    assert!(jwks.fetches() <= 3, "{} fetches", jwks.fetches());
    assert_eq!(
        kore.count(),
        3,
        "only verified callers' erasures reached Kore.ai"
    );
    gateway.stop().await;
}

/// A Kore.ai erasure of `user` with the JWT `token`: the answer's status.
async fn kore_erase_as(gateway: &crate::support::Gateway, token: String, user: String) -> u16 {
    gateway
        .call(
            "DELETE",
            "/kore/api/public/bot/eraseUsersData",
            &[("auth", token.as_str()), JSON],
            json!({ "userIds": [user] }).to_string(),
        )
        .await
        .0
        .status
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_provider_that_never_answers_costs_waiting_calls_one_timeout_not_one_each() {
    // Accepts and holds every connection, answers nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        silent.local_addr().unwrap()
    );
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let kore = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new()
        .set("jwt", "algorithm", "ES256")
        .set("jwt", "jwks_url", url)
        .jwt_caller("kore-officer", &["privacy-officer"])
        .vendor("kore", &kore);
    let mut gateway = spawn_gateway(config).await;
    let key = SigningKey::generate("k-unheld");
    let started = std::time::Instant::now();
    let calls =
        (0..4).map(|i| kore_erase_as(&gateway, key.sign("kore-officer", None), format!("u-{i}")));
    let statuses = futures_util::future::join_all(calls).await;
    let took = started.elapsed();
    assert_eq!(statuses, [401; 4], "no key, no caller");
    // One fetch timeout (5 s) for all four, where one each made 20 s.
    assert!(took < Duration::from_secs(12), "{took:?}");
    assert_eq!(kore.count(), 0);
    held.abort();
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendor_key_comes_from_the_environment_and_its_absence_stops_the_start() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let mut credential = toml::Table::new();
    credential.insert("env".into(), "EG_TEST_SEAM_VENDOR_KEY".into());
    let config = seam_config(GatewayConfig::new(), &seam).upstream_credential(credential);

    let path = config.write();
    let refused = crate::support::run_gateway(&["serve", "--config"], &[&path]);
    refused.assert_exit(2);
    assert!(
        refused.stderr.contains("upstream `seam`")
            && refused.stderr.contains("EG_TEST_SEAM_VENDOR_KEY"),
        "{}",
        refused.stderr
    );

    let served = Served::start_with_env(
        &config,
        Stdio::null(),
        &[("EG_TEST_SEAM_VENDOR_KEY", SEAM_VENDOR_KEY)],
    );
    let officer = bearer(OFFICER);
    let (parts, _) = call(
        "POST",
        &served.url(SEAM_ERASE),
        &[("authorization", &officer), JSON],
        body(&keys("env", 1)),
    )
    .await;
    assert_eq!(parts.status, 200);
    let seen = seam.received();
    let vendor = format!("Bearer {SEAM_VENDOR_KEY}");
    assert_eq!(header(&seen[0], "authorization"), Some(vendor.as_str()));
    let log: String = served.drain_log().iter().map(Value::to_string).collect();
    assert!(
        !log.contains(SEAM_VENDOR_KEY),
        "the vendor key is in the log"
    );
    drop(served);
}

#[tokio::test]
async fn a_vendor_credential_cannot_add_headers_that_change_what_the_vendor_reads() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    for name in [
        "x-http-method-override",
        "seam-workspace",
        "X-Original-URL",
        "content-type",
        "authorization",
    ] {
        let config = GatewayConfig::new();
        let key_file = config.write_file("seam-key", SEAM_VENDOR_KEY);
        let mut headers = toml::Table::new();
        headers.insert(name.into(), "x".into());
        let config = seam_config(config, &seam)
            .upstream_credential(credential_from(&key_file, &[("headers", headers.into())]));
        let path = config.write();
        let refused = crate::support::run_gateway(&["serve", "--config"], &[&path]);
        refused.assert_exit(2);
        assert!(
            refused.stderr.contains("credential.headers"),
            "{name}: {}",
            refused.stderr
        );
    }
    assert_eq!(seam.count(), 0, "nothing reached the vendor");
}
