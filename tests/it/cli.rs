//! The `erasure-gateway` binary: exit codes, config errors, graceful
//! shutdown on SIGTERM, dev certificates and the health check.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::{
    self, bearer, call, gateway_binary, policies_copy, run_gateway, spawn_vendor, temp_dir,
    Behaviour, GatewayConfig, Ran, Served, JSON,
};

/// Writes `contents` to `name` in `dir`.
fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Runs `serve --config config`, asserts that it exits 2 (a usage or
/// configuration error) and returns its stderr.
fn serve_refuses(config: &Path) -> String {
    let ran = run_gateway(&["serve", "--config"], &[config]);
    ran.assert_exit(2);
    ran.stderr
}

#[test]
fn an_unknown_config_key_is_named_with_its_line_and_exits_2() {
    let dir = temp_dir("cli");
    let path = write_file(
        dir.path(),
        "unknown.toml",
        "[proxy]\nlisten = \"127.0.0.1:0\"\nlissten = \"x\"\n",
    );
    let stderr = serve_refuses(&path);
    assert!(stderr.contains("lissten"), "{stderr}");
    assert!(stderr.contains("unknown.toml"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}

#[test]
fn a_bad_value_and_a_missing_file_exit_2_naming_what_is_wrong() {
    let config = GatewayConfig::new().plain("gopher://old");
    let stderr = serve_refuses(&config.write());
    assert!(stderr.contains("upstream[0].url"), "{stderr}");

    let stderr = serve_refuses(Path::new("/nonexistent/gw.toml"));
    assert!(stderr.contains("/nonexistent/gw.toml"), "{stderr}");
}

#[test]
fn a_bad_certificate_file_is_a_startup_error_naming_the_file() {
    let dir = temp_dir("cli");
    let cert = write_file(dir.path(), "not-a-cert.pem", "hello");
    let key = write_file(dir.path(), "not-a-key.pem", "hello");
    let config = GatewayConfig::new()
        .proxy("tls_cert", cert.display().to_string())
        .proxy("tls_key", key.display().to_string());
    let stderr = serve_refuses(&config.write());
    assert!(stderr.contains("not-a-cert.pem"), "{stderr}");
}

#[test]
fn a_usage_error_exits_2() {
    run_gateway(&["serve", "--no-such-flag"], &[]).assert_exit(2);
}

#[tokio::test]
async fn sigterm_lets_the_in_flight_request_finish_then_exits_0() {
    let vendor = spawn_vendor(Behaviour::Slow(Duration::from_millis(1500))).await;
    let config = GatewayConfig::new()
        .proxy("shutdown_grace", "10s")
        .plain(&vendor);
    let mut served = Served::start(&config, Stdio::null());
    let url = served.url("/v/slow");
    let in_flight = tokio::spawn(async move { call("GET", &url, &[], "").await.0.status });
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

    let status = in_flight.await.expect("the in-flight request completes");
    assert_eq!(status, 200);
    let code = tokio::task::spawn_blocking(move || served.wait_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "exit code after SIGTERM");
}

#[tokio::test]
async fn healthcheck_is_0_against_a_running_gateway_and_1_against_nothing() {
    let config = GatewayConfig::new();
    let mut served = Served::start(&config, Stdio::null());
    let healthz = format!("http://{}/healthz", served.admin);
    run_gateway(&["healthcheck", "--url", &healthz], &[]).assert_exit(0);
    served.signal("INT");
    assert_eq!(
        served.wait_exit(Duration::from_secs(10)),
        Some(0),
        "exit code after SIGINT"
    );

    run_gateway(&["healthcheck", "--url", &healthz], &[]).assert_exit(1);
}

#[test]
fn certs_dev_writes_a_ca_server_and_client_certificate() {
    let parent = temp_dir("certs");
    let dir = parent.path().join("dev");
    run_gateway(&["certs", "dev", "--out"], &[&dir]).assert_exit(0);
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
}

#[test]
fn an_invalid_policy_stops_the_gateway_naming_file_line_and_policy() {
    let policies = temp_dir("policies");
    let dir = policies.path();
    let shipped = Path::new(support::POLICIES);
    for name in ["schema.cedarschema", "entities.json", "erasure.cedar"] {
        std::fs::copy(shipped.join(name), dir.join(name)).unwrap();
    }
    std::fs::write(
        dir.join("broken.cedar"),
        "// a typo in a context field\n@id(\"seam-typo\")\nforbid (principal, action, resource)\nwhen { context.workspce == \"x\" };\n",
    )
    .unwrap();
    let config = GatewayConfig::new().policies("dir", dir.display().to_string());
    let stderr = serve_refuses(&config.write());
    assert!(stderr.contains("broken.cedar:4:"), "{stderr}");
    assert!(stderr.contains("policy `seam-typo`"), "{stderr}");
}

/// The binary, not the library: each vendor's allowed and denied call.
#[tokio::test]
async fn the_running_binary_decides_each_vendors_erasure_calls() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let kore = spawn_vendor(Behaviour::Echo).await;
    let bp = spawn_vendor(Behaviour::Echo).await;
    let officer = "binary-officer-token";
    let config = GatewayConfig::new()
        .caller("ops", officer, &["privacy-officer"])
        .vendor("seam", &seam)
        .vendor("kore", &kore)
        .vendor("botpenguin", &bp)
        .proxy("access_log", true);
    let mut served = Served::start(&config, Stdio::null());
    let cases = [
        (
            "POST",
            "/seam/customers/delete_data",
            "authorization",
            bearer(officer),
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
            bearer(officer),
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
        let headers = [(*header, value.as_str()), JSON];
        let (parts, answer) = call(method, &served.url(path), &headers, body).await;
        assert_eq!(parts.status.as_u16(), *status, "{method} {path}: {answer}");
        let decision = if *status == 200 { "allow" } else { "deny" };
        assert_eq!(
            parts.headers["x-erasure-decision"], decision,
            "{method} {path}"
        );
    }
    assert_eq!(seam.received().len(), 1);
    assert_eq!(kore.received().len(), 1);
    assert_eq!(bp.received().len(), 1);
    // Log fields are plain values: the request id as sent back, unquoted;
    // the determining policies as text, not a Rust `Some([…])`.
    let (parts, _) = call(
        "POST",
        &served.url("/seam/customers/delete_data"),
        &[
            ("authorization", "Bearer nobody"),
            JSON,
            ("x-request-id", "log-check-1"),
        ],
        r#"{"customer_keys":["c-2"]}"#,
    )
    .await;
    assert_eq!(parts.headers["x-request-id"], "log-check-1");
    let decided = served
        .wait_log(
            |line| line["message"] == "erasure call decided" && line["request_id"] == "log-check-1",
            Duration::from_secs(5),
        )
        .expect("the decision's log line names its request id unquoted");
    assert_eq!(decided["erasure.policies"], "deny-anonymous", "{decided}");
    // The opt-in access log: one line per pass-through call, its path
    // without the query; erasure calls are in the trail, not here.
    let (parts, _) = call(
        "GET",
        &served.url("/seam/devices/list?api_key=not-for-logs"),
        &[("x-request-id", "access-1")],
        "",
    )
    .await;
    assert_eq!(parts.status, 200);
    let access = served
        .wait_log(
            |line| line["message"] == "pass-through",
            Duration::from_secs(5),
        )
        .expect("an access log line");
    assert_eq!(access["request_id"], "access-1", "{access}");
    assert_eq!(access["path"], "/devices/list", "{access}");
    assert_eq!(access["method"], "GET", "{access}");
    assert_eq!(access["upstream"], "seam", "{access}");
    assert_eq!(access["status"], 200, "{access}");
    assert!(!access.to_string().contains("not-for-logs"), "{access}");
    served.signal("TERM");
    assert_eq!(served.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn completions_and_a_man_page_come_from_the_command_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let ran = run_gateway(&["completions", shell], &[]);
        ran.assert_exit(0);
        for word in ["approvals", "audit", "serve", "log-format"] {
            assert!(ran.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    let man = run_gateway(&["man"], &[]);
    man.assert_exit(0);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH erasure-gateway 1"),
        "{}",
        man.stdout
    );
    assert!(
        man.stdout.contains("approvals"),
        "the man page lists the commands"
    );
    run_gateway(&["completions", "tcsh"], &[]).assert_exit(2);
}

#[test]
fn text_logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let config = GatewayConfig::new().plain("http://127.0.0.1:9");
    let mut child = support::gateway_binary()
        .args(["--log-format", "text", "serve", "--config"])
        .arg(config.write())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("listening"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escapes in piped logs: {stderr:?}"
    );
}

#[test]
fn the_shipped_policy_tests_pass_and_the_policies_are_formatted() {
    let policies = Path::new(support::POLICIES);
    let ran = run_gateway(&["policy", "test", "--policies"], &[policies]);
    ran.assert_exit(0);
    let stdout = &ran.stdout;
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with("passed, 0 failed"), "{stdout}");
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 15, "{stdout}");

    run_gateway(&["policy", "validate", "--policies"], &[policies]).assert_exit(0);
    run_gateway(&["policy", "fmt", "--check", "--policies"], &[policies]).assert_exit(0);
}

#[test]
fn a_failing_policy_test_case_exits_1_and_says_which_and_why() {
    let dir = policies_copy();
    std::fs::write(
        dir.path().join("tests/wrong.toml"),
        r#"[[case]]
name = "an account owner is (wrongly) expected to be erased"
request = { vendor = "kore", method = "DELETE", path = "/api/public/bot/eraseUsersData", json = { userIds = ["owner@example.com"] }, caller = { id = "ops", roles = ["privacy-officer"] } }
expect = { decision = "allow", policies = ["privacy-officers-may-erase"] }
"#,
    )
    .unwrap();
    let ran = run_gateway(&["policy", "test", "--policies"], &[dir.path()]);
    ran.assert_exit(1);
    let stdout = &ran.stdout;
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
    let dir = policies_copy();
    std::fs::write(
        dir.path().join("typo.cedar"),
        "@id(\"typo\")\nforbid (principal, action, resource)\nwhen { context.target_cont > 1 };\n",
    )
    .unwrap();
    let ran = run_gateway(&["policy", "validate", "--policies"], &[dir.path()]);
    ran.assert_exit(1);
    let stdout = &ran.stdout;
    assert!(stdout.contains("typo.cedar:3:"), "{stdout}");
    assert!(stdout.contains("policy `typo`"), "{stdout}");
    assert!(
        stdout.contains("when { context.target_cont > 1 };"),
        "the source line is shown: {stdout}"
    );
}

#[test]
fn explain_says_why_a_described_request_is_denied() {
    let config = GatewayConfig::new();
    let mut child = gateway_binary()
        .args(["explain", "--format", "json", "--request", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .env("ERASURE_GATEWAY_CONFIG", config.write())
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
    let parent = temp_dir("demo");
    let dir = parent.path().join("run");
    let ran = run_gateway(&["demo", "--dir"], &[&dir]);
    ran.assert_exit(0);
    let stdout = &ran.stdout;
    assert!(!stdout.contains('✗'), "{stdout}");
    assert_eq!(stdout.matches('✓').count(), 13, "{stdout}");
    for policy in [
        "(refused: budget_exceeded)",
        "seam-residents-need-a-second-pair-of-eyes",
        "approved",
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
    run_gateway(&["demo", "--dir"], &[&dir]).assert_exit(0);
    let foreign = temp_dir("not-a-demo");
    std::fs::write(foreign.path().join("precious.txt"), "keep me").unwrap();
    let refused = run_gateway(&["demo", "--dir"], &[foreign.path()]);
    assert_ne!(refused.code, Some(0));
    assert!(foreign.path().join("precious.txt").exists());
}

#[test]
fn sighup_reloads_the_policies() {
    let config = GatewayConfig::new();
    let mut served = Served::start(&config, Stdio::null());
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
    let dir = temp_dir("cli");
    let absent = dir.path().join("no-such-trail/decisions.jsonl");
    let key = write_file(dir.path(), "unused.pem", "");
    let absent = absent.as_path();
    let commands: [(&[&str], Vec<&Path>); 4] = [
        (&["audit", "verify"], vec![absent]),
        (&["audit", "query"], vec![absent]),
        (&["audit", "tail"], vec![absent]),
        (&["audit", "checkpoint", "--key"], vec![&key, absent]),
    ];
    for (args, paths) in commands {
        let Ran { code, stderr, .. } = run_gateway(args, &paths);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&absent.display().to_string()) && stderr.contains("no such file"),
            "{args:?}: {stderr}"
        );
    }
}
