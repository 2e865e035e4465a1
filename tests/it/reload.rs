//! Policy hot reload and the admin decision endpoint, against a running
//! gateway: a valid change takes effect without a restart, an invalid one is
//! refused and the old decisions stay, and reloading under traffic never
//! serves a half-loaded set or drops a request.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    bearer, call, gateway_binary, policies_copy, spawn_gateway, spawn_vendor, Behaviour, Gateway,
    GatewayConfig, StandIn,
};

const OFFICER: &str = "reload-officer-token";
const ADMIN_TOKEN: &str = "reload-admin-token";

/// The gateway on the policies in `policies`, with an admin token, the
/// officer, and one BotPenguin upstream reaching the stand-in returned.
async fn gateway_on(policies: &Path) -> (StandIn, Gateway) {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new()
        .policies("dir", policies.display().to_string())
        .admin_token(ADMIN_TOKEN)
        .caller("ops", OFFICER, &["privacy-officer"])
        .vendor("botpenguin", &vendor);
    (vendor, spawn_gateway(config).await)
}

const FORBID_VIP: &str = "@id(\"never-erase-vip\")\nforbid (principal, action, resource == BotPenguin::Customer::\"vip\");\n";

/// The officer's `DELETE` of the BotPenguin customer at `url`; the
/// answer's head.
async fn officer_erases(url: &str) -> http::response::Parts {
    let auth = bearer(OFFICER);
    call("DELETE", url, &[("authorization", &auth)], "").await.0
}

async fn erase_vip(gateway: &Gateway) -> u16 {
    officer_erases(&gateway.url("/botpenguin/customer/vip"))
        .await
        .status
        .as_u16()
}

async fn admin_post(
    gateway: &Gateway,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (parts, json) = call("POST", &gateway.admin_url(path), &headers, body).await;
    (parts.status.as_u16(), json)
}

async fn readyz(gateway: &Gateway) -> Value {
    call("GET", &gateway.admin_url("/readyz"), &[], "").await.1
}

#[tokio::test]
async fn post_v1_reload_applies_a_valid_change_and_refuses_an_invalid_one() {
    let dir = policies_copy();
    let (vendor, mut gateway) = gateway_on(dir.path()).await;
    assert_eq!(erase_vip(&gateway).await, 200);
    let before = readyz(&gateway).await["policy_version"].clone();

    std::fs::write(dir.path().join("vip.cedar"), FORBID_VIP).unwrap();
    let (status, _) = admin_post(&gateway, "/v1/reload", None, "").await;
    assert_eq!(status, 401, "reload needs the admin token");
    let (status, body) = admin_post(&gateway, "/v1/reload", Some(ADMIN_TOKEN), "").await;
    assert_eq!(status, 200, "{body}");
    // The file watcher may have reloaded the same change a moment earlier.
    assert!(
        body["previous_version"] == before || body["previous_version"] == body["policy_version"],
        "{body}"
    );
    assert_ne!(body["policy_version"], before);
    assert_eq!(erase_vip(&gateway).await, 403, "the new forbid is in force");

    // An invalid edit: refused, named, and the last good set stays.
    std::fs::write(
        dir.path().join("broken.cedar"),
        "@id(\"broken\")\npermit (principal, action, resource)\nwhen { context.nope };\n",
    )
    .unwrap();
    let (status, body) = admin_post(&gateway, "/v1/reload", Some(ADMIN_TOKEN), "").await;
    assert_eq!(status, 422, "{body}");
    let errors = body["errors"].to_string();
    assert!(
        errors.contains("broken.cedar:3:") && errors.contains("policy `broken`"),
        "{errors}"
    );
    assert_eq!(erase_vip(&gateway).await, 403, "the old decisions stay");
    let ready = readyz(&gateway).await;
    assert!(ready["last_reload_failure"]["error"]
        .as_str()
        .unwrap()
        .contains("broken.cedar"));

    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(r#"erasure_gateway_policy_reloads_total{result="error"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("erasure_gateway_policy_version_info{version="),
        "{metrics}"
    );
    assert_eq!(
        vendor.received().len(),
        1,
        "only the first call was forwarded"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn editing_a_policy_file_reloads_it_without_a_restart() {
    let dir = policies_copy();
    let (_vendor, mut gateway) = gateway_on(dir.path()).await;
    assert_eq!(erase_vip(&gateway).await, 200);
    // Reading the files to load them is not a change: no reload loop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(r#"erasure_gateway_policy_reloads_total{result="ok"} 1"#),
        "only the initial load happened: {metrics}"
    );
    std::fs::write(dir.path().join("vip.cedar"), FORBID_VIP).unwrap();
    let started = Instant::now();
    while erase_vip(&gateway).await != 403 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the file change was never picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gateway.stop().await;
}

#[tokio::test]
async fn reloading_under_traffic_never_serves_a_half_loaded_set_or_drops_a_request() {
    let dir = policies_copy();
    let (_vendor, mut gateway) = gateway_on(dir.path()).await;
    let url = gateway.url("/botpenguin/customer/vip");
    let mut workers = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..60 {
                let parts = officer_erases(&url).await;
                statuses.push((
                    parts.status.as_u16(),
                    parts.headers["x-erasure-decision"]
                        .to_str()
                        .unwrap()
                        .to_owned(),
                ));
            }
            statuses
        }));
    }
    // Flip between two valid sets while the traffic runs.
    for i in 0..10 {
        if i % 2 == 0 {
            std::fs::write(dir.path().join("vip.cedar"), FORBID_VIP).unwrap();
        } else {
            std::fs::remove_file(dir.path().join("vip.cedar")).unwrap();
        }
        let (status, body) = admin_post(&gateway, "/v1/reload", Some(ADMIN_TOKEN), "").await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut answered = 0;
    for w in workers {
        for (status, decision) in w.await.unwrap() {
            answered += 1;
            // Either set decides consistently; nothing else may happen.
            assert!(
                (status == 200 && decision == "allow") || (status == 403 && decision == "deny"),
                "{status} {decision}"
            );
        }
    }
    assert_eq!(answered, 240, "every request got an answer");
    gateway.stop().await;
}

#[tokio::test]
async fn policy_files_replaced_with_invalid_content_under_load_keep_the_old_set() {
    let dir = policies_copy();
    std::fs::write(dir.path().join("vip.cedar"), FORBID_VIP).unwrap();
    let (vendor, mut gateway) = gateway_on(dir.path()).await;
    let version = readyz(&gateway).await["policy_version"].clone();
    let url = gateway.url("/botpenguin/customer/vip");
    let mut workers = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..50 {
                statuses.push(officer_erases(&url).await.status.as_u16());
            }
            statuses
        }));
    }
    // Garbage, a schema violation, a truncated policy file and a truncated
    // entity file: each refused, by the watcher and by /v1/reload alike.
    let bad_entities = r#"[{"uid":{"type":"Kore::User","id":"#;
    for (file, text) in [
        (
            "vip.cedar",
            "@id(\"x\") forbid (principal, action, resource",
        ),
        (
            "vip.cedar",
            "@id(\"x\") forbid (principal, action, resource) when { resource.nope };",
        ),
        ("erasure.cedar", "truncated"),
        ("entities.json", bad_entities),
    ] {
        let original = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let text = if text == "truncated" {
            // Cut inside the first policy, as a half-written file would be.
            &original[..original.find("permit (").unwrap() + 10]
        } else {
            text
        };
        std::fs::write(dir.path().join(file), text).unwrap();
        let (status, body) = admin_post(&gateway, "/v1/reload", Some(ADMIN_TOKEN), "").await;
        assert_eq!(status, 422, "{file}: {body}");
        tokio::time::sleep(Duration::from_millis(30)).await;
        std::fs::write(dir.path().join(file), original).unwrap();
    }
    for w in workers {
        for status in w.await.unwrap() {
            assert_eq!(
                status, 403,
                "the old set, which forbids vip, decided every call"
            );
        }
    }
    assert_eq!(vendor.received().len(), 0);
    assert_eq!(readyz(&gateway).await["policy_version"], version);
    let trail = gateway.config.audit.path.parent().unwrap().to_owned();
    erasure_gateway::trail::verify::verify_files(&[trail], &Default::default()).unwrap();
    gateway.stop().await;
}

#[tokio::test]
async fn post_v1_authorize_decides_without_forwarding() {
    let dir = policies_copy();
    let (vendor, mut gateway) = gateway_on(dir.path()).await;
    let described = format!(
        r#"{{"vendor":"botpenguin","method":"DELETE","path":"/customer/c-9","headers":{{"authorization":"Bearer {OFFICER}"}}}}"#
    );
    let (status, _) = admin_post(&gateway, "/v1/authorize", None, &described).await;
    assert_eq!(
        status, 401,
        "authorize needs the admin token when one is set"
    );
    let (status, body) = admin_post(&gateway, "/v1/authorize", Some(ADMIN_TOKEN), &described).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "allow");
    assert_eq!(
        body["caller"]["id"], "ops",
        "the credential was identified with [[caller]]"
    );
    assert_eq!(
        body["targets"][0]["policies"][0],
        "privacy-officers-may-erase"
    );
    let (status, body) = admin_post(
        &gateway,
        "/v1/authorize",
        Some(ADMIN_TOKEN),
        r#"{"vendor":"botpenguin","method":"DELETE","path":"/customer/c-9"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["decision"], "deny");
    assert_eq!(body["targets"][0]["policies"][0], "deny-anonymous");
    let (status, _) = admin_post(&gateway, "/v1/authorize", Some(ADMIN_TOKEN), "{not json").await;
    assert_eq!(status, 400);
    assert!(vendor.received().is_empty());
    gateway.stop().await;
}

#[tokio::test]
async fn replay_finds_exactly_the_flips_a_deliberate_change_introduces() {
    let dir = policies_copy();
    let (_vendor, mut gateway) = gateway_on(dir.path()).await;
    assert_eq!(erase_vip(&gateway).await, 200);
    for customer in ["c-1", "c-2"] {
        let url = gateway.url(&format!("/botpenguin/customer/{customer}"));
        assert_eq!(officer_erases(&url).await.status, 200);
    }
    // An anonymous call, denied.
    let (parts, _) = gateway
        .call("DELETE", "/botpenguin/customer/c-3", &[], "")
        .await;
    assert_eq!(parts.status, 403);
    let trail = gateway.config.audit.path.parent().unwrap().to_owned();
    gateway.stop().await;

    let run = |policies: &Path| {
        let out = gateway_binary()
            .args(["policy", "replay", "--trail"])
            .arg(&trail)
            .arg("--policies")
            .arg(policies)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = run(dir.path());
    assert_eq!(code, Some(0), "the same set flips nothing: {text}");
    assert!(
        text.contains("4 decisions replayed, 0 would flip"),
        "{text}"
    );

    // The candidate forbids erasing the VIP: exactly that decision flips.
    let candidate = policies_copy();
    std::fs::write(candidate.path().join("vip.cedar"), FORBID_VIP).unwrap();
    let (code, text) = run(candidate.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("allow → deny  never-erase-vip  (1 decision)"),
        "{text}"
    );
    assert!(text.contains("BotPenguin::Customer::\"vip\""), "{text}");
    assert!(
        text.contains("4 decisions replayed, 1 would flip"),
        "{text}"
    );

    // A candidate that drops the anonymous ban... still denies (no permit):
    // no flip; one that lets anonymous erase flips exactly that call.
    let open = policies_copy();
    std::fs::write(
        open.path().join("open.cedar"),
        "@id(\"anyone-may-erase\")\npermit (principal, action, resource);\n",
    )
    .unwrap();
    std::fs::write(open.path().join("guardrails.cedar"), "").unwrap();
    let (code, text) = run(open.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("deny → allow  deny-anonymous  (1 decision)"),
        "{text}"
    );
    assert!(
        text.contains("4 decisions replayed, 1 would flip"),
        "{text}"
    );
}

/// Whether a TLS client trusting only `certs`' CA completes a call.
async fn trusted_by(certs: &erasure_gateway::certs::DevCerts, url: &str) -> bool {
    let client = crate::support::tls_client(certs, false);
    crate::support::send(&client, crate::support::request("GET", url, ""))
        .await
        .is_ok()
}

#[tokio::test]
async fn a_replaced_tls_certificate_is_served_without_a_restart_and_a_broken_one_is_not() {
    use erasure_gateway::certs::DevCerts;
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let first = DevCerts::generate().unwrap();
    let dir = crate::support::cert_dir(&first, "tls-reload");
    let mut gateway = spawn_gateway(
        GatewayConfig::new()
            .plain(&vendor)
            .proxy(
                "tls_cert",
                dir.path().join("gateway.pem").display().to_string(),
            )
            .proxy(
                "tls_key",
                dir.path().join("gateway-key.pem").display().to_string(),
            ),
    )
    .await;
    let url = gateway.tls_url("/v/x");
    assert!(trusted_by(&first, &url).await);
    // A broken pair (the key file emptied) is refused; the old pair stays.
    std::fs::write(dir.path().join("gateway-key.pem"), "").unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        trusted_by(&first, &url).await,
        "a broken pair replaced the good one"
    );
    // A new pair from another CA: new handshakes present it.
    let second = DevCerts::generate().unwrap();
    second.write(dir.path()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !trusted_by(&second, &url).await {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !trusted_by(&first, &url).await,
        "the old certificate is still served"
    );
    gateway.stop().await;
}
