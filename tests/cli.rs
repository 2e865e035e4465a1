//! The `erasure-gateway` binary: exit codes, config errors, graceful
//! shutdown on SIGTERM, dev certificates and the health check.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{http1_client, request, send, spawn_vendor, Behaviour};

fn binary() -> Command {
    support::gateway_binary()
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eg-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn an_unknown_config_key_is_named_with_its_line_and_exits_2() {
    let path = temp_file(
        "unknown.toml",
        "[proxy]\nlisten = \"127.0.0.1:0\"\nlissten = \"x\"\n",
    );
    let out = binary()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lissten"), "{stderr}");
    assert!(stderr.contains("unknown.toml"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}

#[test]
fn a_bad_value_and_a_missing_file_exit_2_naming_what_is_wrong() {
    let path = temp_file(
        "bad.toml",
        "[[upstream]]\nname = \"x\"\nurl = \"gopher://old\"\npath_prefix = \"/x\"\n",
    );
    let out = binary()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("upstream[0].url"));

    let out = binary()
        .args(["serve", "--config", "/nonexistent/gw.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/gw.toml"));
}

#[test]
fn a_bad_certificate_file_is_a_startup_error_naming_the_file() {
    let cert = temp_file("not-a-cert.pem", "hello");
    let key = temp_file("not-a-key.pem", "hello");
    let text = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[audit]\npath = \"{}\"\n",
        cert.display(),
        key.display(),
        support::unique_temp_dir("badcert").join("d.jsonl").display()
    );
    let path = temp_file("badcert.toml", &text);
    let out = binary()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-a-cert.pem"));
}

#[test]
fn a_usage_error_exits_2() {
    let out = binary()
        .arg("serve")
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Starts the binary with `config` (plus a private trail directory).
fn start(config: &str) -> support::Served {
    let trail = support::unique_temp_dir("cli-trail").join("decisions.jsonl");
    let config = format!("{config}\n[audit]\npath = \"{}\"\n", trail.display());
    let path = temp_file(&format!("run-{}.toml", rand_suffix()), &config);
    support::Served::start(&path, Stdio::null())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test]
async fn sigterm_lets_the_in_flight_request_finish_then_exits_0() {
    let vendor = spawn_vendor(Behaviour::Slow(Duration::from_millis(1500))).await;
    let config = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"10s\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [[upstream]]\nname = \"v\"\nurl = \"{}\"\npath_prefix = \"/v\"\n",
        vendor.url("http")
    );
    let mut served = start(&config);
    let url = format!("http://{}/v/slow", served.proxy);
    let in_flight = tokio::spawn(async move {
        send(&http1_client(), request("GET", &url, ""))
            .await
            .map(|(p, _)| p.status)
    });
    for _ in 0..200 {
        if !vendor.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        vendor.received().len(),
        1,
        "the slow request reached the vendor"
    );
    served.signal("TERM");

    let status = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(status, 200);
    let code = tokio::task::spawn_blocking(move || served.wait_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "exit code after SIGTERM");
}

#[tokio::test]
async fn healthcheck_is_0_against_a_running_gateway_and_1_against_nothing() {
    let config = "[proxy]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n";
    let mut served = start(config);
    let admin = served.admin.clone();
    let ok = binary()
        .args(["healthcheck", "--url", &format!("http://{admin}/healthz")])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    served.signal("INT");
    assert_eq!(
        served.wait_exit(Duration::from_secs(10)),
        Some(0),
        "exit code after SIGINT"
    );

    let down = binary()
        .args(["healthcheck", "--url", &format!("http://{admin}/healthz")])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
}

#[test]
fn certs_dev_writes_a_ca_server_and_client_certificate() {
    let dir = std::env::temp_dir().join(format!("eg-cli-certs-{}", std::process::id()));
    let out = binary()
        .args(["certs", "dev", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    for name in [
        "ca.pem",
        "gateway.pem",
        "gateway-key.pem",
        "client.pem",
        "client-key.pem",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.starts_with("-----BEGIN "), "{name}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("gateway-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private keys are not readable by others");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn an_invalid_policy_stops_the_gateway_naming_file_line_and_policy() {
    let dir = std::env::temp_dir().join(format!("eg-cli-policies-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = std::path::Path::new(support::POLICIES);
    for name in ["schema.cedarschema", "entities.json", "erasure.cedar"] {
        std::fs::copy(shipped.join(name), dir.join(name)).unwrap();
    }
    std::fs::write(
        dir.join("broken.cedar"),
        "// a typo in a context field\n@id(\"seam-typo\")\nforbid (principal, action, resource)\nwhen { context.workspce == \"x\" };\n",
    )
    .unwrap();
    let config = temp_file(
        "policies.toml",
        &format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[policies]\ndir = \"{}\"\n",
            dir.display()
        ),
    );
    let out = binary()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.cedar:4:"), "{stderr}");
    assert!(stderr.contains("policy `seam-typo`"), "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}

/// The binary, not the library: each vendor's allowed and denied call.
#[tokio::test]
async fn the_running_binary_decides_each_vendors_erasure_calls() {
    use sha2::{Digest, Sha256};
    let seam = spawn_vendor(Behaviour::Echo).await;
    let kore = spawn_vendor(Behaviour::Echo).await;
    let bp = spawn_vendor(Behaviour::Echo).await;
    let officer = "binary-officer-token";
    let hash = hex::encode(Sha256::digest(officer.as_bytes()));
    let config = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[policies]\ndir = \"{policies}\"\n\
         [[caller]]\nid = \"ops\"\ntoken_sha256 = \"{hash}\"\nroles = [\"privacy-officer\"]\n\
         [[upstream]]\nname = \"seam\"\nprofile = \"seam\"\nurl = \"{s}\"\npath_prefix = \"/seam\"\n\
         [[upstream]]\nname = \"kore\"\nprofile = \"kore\"\nurl = \"{k}\"\npath_prefix = \"/kore\"\n\
         [[upstream]]\nname = \"botpenguin\"\nprofile = \"botpenguin\"\nurl = \"{b}\"\npath_prefix = \"/botpenguin\"\n",
        policies = support::POLICIES,
        s = seam.url("http"),
        k = kore.url("http"),
        b = bp.url("http"),
    );
    let mut served = start(&config);
    let proxy = served.proxy.clone();
    let client = http1_client();
    let cases = [
        (
            "POST",
            "/seam/customers/delete_data",
            "authorization",
            format!("Bearer {officer}"),
            r#"{"customer_keys":["c-1"]}"#,
            200,
        ),
        (
            "POST",
            "/seam/customers/delete_data",
            "authorization",
            "Bearer nobody".to_owned(),
            r#"{"customer_keys":["c-1"]}"#,
            403,
        ),
        (
            "DELETE",
            "/kore/api/public/bot/eraseUsersData",
            "auth",
            officer.to_owned(),
            r#"{"userIds":["u-ordinary-0001"]}"#,
            200,
        ),
        (
            "DELETE",
            "/kore/api/public/bot/eraseUsersData",
            "auth",
            officer.to_owned(),
            r#"{"userIds":["owner@example.com"]}"#,
            403,
        ),
        (
            "DELETE",
            "/botpenguin/customer/c-7",
            "authorization",
            format!("Bearer {officer}"),
            "",
            200,
        ),
        (
            "DELETE",
            "/botpenguin/customer/c-7",
            "authtype",
            "Key".to_owned(),
            "",
            403,
        ),
    ];
    for (method, path, header, value, body, status) in &cases {
        let mut req = request(method, &format!("http://{proxy}{path}"), body.to_string());
        req.headers_mut().insert(*header, value.parse().unwrap());
        req.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        let (parts, answer) = send(&client, req).await.unwrap();
        assert_eq!(
            parts.status.as_u16(),
            *status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&answer)
        );
        let decision = if *status == 200 { "allow" } else { "deny" };
        assert_eq!(
            parts.headers["x-erasure-decision"], decision,
            "{method} {path}"
        );
    }
    assert_eq!(seam.received().len(), 1);
    assert_eq!(kore.received().len(), 1);
    assert_eq!(bp.received().len(), 1);
    served.signal("TERM");
    assert_eq!(served.wait_exit(Duration::from_secs(10)), Some(0));
}

fn copy_policies(name: &str) -> PathBuf {
    let dir = support::unique_temp_dir(name);
    let shipped = std::path::Path::new(support::POLICIES);
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    for entry in std::fs::read_dir(shipped.join("tests")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("tests").join(path.file_name().unwrap())).unwrap();
    }
    dir
}

#[test]
fn the_shipped_policy_tests_pass_and_the_policies_are_formatted() {
    let out = binary()
        .args(["policy", "test", "--policies", support::POLICIES])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with("passed, 0 failed"), "{stdout}");
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 15, "{stdout}");

    let out = binary()
        .args(["policy", "validate", "--policies", support::POLICIES])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = binary()
        .args(["policy", "fmt", "--check", "--policies", support::POLICIES])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_failing_policy_test_case_exits_1_and_says_which_and_why() {
    let dir = copy_policies("failing-case");
    std::fs::write(
        dir.join("tests/wrong.toml"),
        r#"[[case]]
name = "an account owner is (wrongly) expected to be erased"
request = { vendor = "kore", method = "DELETE", path = "/api/public/bot/eraseUsersData", json = { userIds = ["owner@example.com"] }, caller = { id = "ops", roles = ["privacy-officer"] } }
expect = { decision = "allow", policies = ["privacy-officers-may-erase"] }
"#,
    )
    .unwrap();
    let out = binary()
        .args(["policy", "test", "--policies"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("wrongly"),
        "{stdout}"
    );
    assert!(
        stdout.contains("decision: expected allow, got deny"),
        "{stdout}"
    );
    assert!(
        stdout.contains("kore-never-erase-account-owners"),
        "{stdout}"
    );
    assert!(
        stdout.lines().last().unwrap().ends_with("passed, 1 failed"),
        "{stdout}"
    );
}

#[test]
fn policy_validate_names_file_line_and_policy_and_exits_1() {
    let dir = copy_policies("invalid");
    std::fs::write(
        dir.join("typo.cedar"),
        "@id(\"typo\")\nforbid (principal, action, resource)\nwhen { context.target_cont > 1 };\n",
    )
    .unwrap();
    let out = binary()
        .args(["policy", "validate", "--policies"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("typo.cedar:3:"), "{stdout}");
    assert!(stdout.contains("policy `typo`"), "{stdout}");
    assert!(
        stdout.contains("when { context.target_cont > 1 };"),
        "the source line is shown: {stdout}"
    );
}

#[test]
fn explain_says_why_a_described_request_is_denied() {
    let mut child = binary()
        .args(["explain", "--format", "json", "--request", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .env(
            "ERASURE_GATEWAY_CONFIG",
            temp_file(
                "explain.toml",
                &format!("[policies]\ndir = \"{}\"\n", support::POLICIES),
            ),
        )
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"vendor":"kore","method":"DELETE","path":"/api/public/bot/eraseUsersData","json":{"userIds":["u-codev-0001"]},"caller":{"id":"ops","roles":["privacy-officer"]}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["decision"], "deny");
    assert_eq!(
        json["targets"][0]["policies"][0],
        "kore-never-erase-bot-developers"
    );
    assert_eq!(json["context"]["vendor"], "kore");
    assert_eq!(json["refusal"]["status"], 403);
}

#[test]
fn the_demo_decides_every_call_as_expected_and_verifies_its_trail() {
    let dir = support::unique_temp_dir("demo").join("run");
    let out = binary().args(["demo", "--dir"]).arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains('✗'), "{stdout}");
    assert_eq!(stdout.matches('✓').count(), 9, "{stdout}");
    for policy in [
        "kore-never-erase-account-owners",
        "kore-never-erase-bot-developers",
        "seam-pat-requires-workspace",
        "deny-anonymous",
        "bulk-erasure-requires-role",
    ] {
        assert!(stdout.contains(policy), "{policy}: {stdout}");
    }
    assert!(stdout.contains("trail: OK"), "{stdout}");
    assert!(
        stdout.contains("audit query"),
        "it tells where to look next: {stdout}"
    );
    // A second run replaces its own previous demo; a foreign directory is refused.
    let again = binary().args(["demo", "--dir"]).arg(&dir).output().unwrap();
    assert_eq!(again.status.code(), Some(0));
    let foreign = support::unique_temp_dir("not-a-demo");
    std::fs::write(foreign.join("precious.txt"), "keep me").unwrap();
    let refused = binary()
        .args(["demo", "--dir"])
        .arg(&foreign)
        .output()
        .unwrap();
    assert_ne!(refused.status.code(), Some(0));
    assert!(foreign.join("precious.txt").exists());
}

#[test]
fn sighup_reloads_the_policies() {
    let trail = support::unique_temp_dir("hup").join("decisions.jsonl");
    let config = temp_file(
        &format!("hup-{}.toml", rand_suffix()),
        &format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[policies]\ndir = \"{}\"\n[audit]\npath = \"{}\"\n",
            support::POLICIES,
            trail.display()
        ),
    );
    let mut served = support::Served::start(&config, Stdio::null());
    served.signal("HUP");
    let reloaded = served.wait_log(
        |j| j["message"] == "reloading policies" && j["trigger"] == "SIGHUP",
        Duration::from_secs(20),
    );
    assert!(reloaded.is_some(), "SIGHUP triggers a reload");
    served.signal("TERM");
    assert_eq!(served.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn audit_commands_on_a_missing_path_are_usage_errors_naming_it() {
    let absent = std::env::temp_dir().join(format!(
        "eg-cli-{}-no-such-trail/decisions.jsonl",
        std::process::id()
    ));
    let key = temp_file("unused.pem", "");
    let commands: [Vec<std::ffi::OsString>; 4] = [
        vec!["verify".into(), absent.clone().into()],
        vec!["query".into(), absent.clone().into()],
        vec!["tail".into(), absent.clone().into()],
        vec![
            "checkpoint".into(),
            "--key".into(),
            key.into(),
            absent.clone().into(),
        ],
    ];
    for args in commands {
        let out = binary().arg("audit").args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&absent.display().to_string()) && stderr.contains("no such file"),
            "{args:?}: {stderr}"
        );
    }
}
