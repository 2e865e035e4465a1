//! Seam's real, official SDKs against the gateway: Python `seam` (PyPI) and
//! JavaScript `seam` (npm, wrapping `@seamapi/http`), pinned in `tests/sdk/`.
//! An allowed `customers.delete_data` reaches the stand-in vendor exactly as
//! the SDK sent it; a denied one surfaces as the SDK's own `SeamHttpApiError`
//! (403, `erasure_denied_by_policy`, the policy id, the request id) and
//! reaches nobody.
//!
//! The SDKs are installed on first use (Python into `target/sdk-python`,
//! JavaScript into `tests/sdk/node_modules`); a failed install fails the test
//! and says what to install.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    self, sha256_hex, spawn_gateway, spawn_vendor, Behaviour, GatewayConfig, StandIn,
};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk");

// Obviously fake credentials. Every alphanumeric run after `seam_` stays
// short, so none looks like a live Seam token to the secret check.
const OFFICER_KEY: &str = "seam_test_officer_key_0001";
const UNKNOWN_KEY: &str = "seam_test_unknown_key_1";
const OFFICER_PAT: &str = "seam_at_test_pat_1";

/// The ids both scripts erase; `seam_sdk.py` and `seam_sdk.mjs` use the same.
const CUSTOMER_KEYS: [&str; 2] = ["customer_a", "customer_b"];
const USER_KEYS: [&str; 1] = ["user_1"];

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

fn python_dir() -> PathBuf {
    Path::new(MANIFEST_DIR).join("target/sdk-python")
}

/// Runs `command` to completion on a blocking thread, killing it after
/// `limit` (tokio's `process` feature is not enabled in this crate).
async fn output_within(mut command: Command, limit: Duration) -> Result<Output, String> {
    tokio::task::spawn_blocking(move || {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start {:?}: {e}", command.get_program()))?;
        // Drain both pipes while waiting, so a chatty child cannot block.
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                pipe.read_to_end(&mut bytes).ok();
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().ok();
                child.wait().ok();
                return Err(format!(
                    "{:?} did not finish within {limit:?}",
                    command.get_program()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Ok(Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    })
    .await
    .unwrap()
}

/// Runs an install command, failing the test with `hint` if it cannot.
async fn install(what: &str, command: Command, hint: &str) {
    let started = Instant::now();
    let output = output_within(command, INSTALL_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("installing {what} failed: {e}; {hint}"));
    assert!(
        output.status.success(),
        "installing {what} failed ({}); {hint}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    eprintln!("installed {what} in {:.1?}", started.elapsed());
}

/// Installs the pinned SDKs unless the marker of the same pins is present.
/// Both are installed by the one test in this file, so nothing races.
async fn ensure_sdks() {
    let requirements = std::fs::read(Path::new(SDK_DIR).join("requirements.txt")).unwrap();
    let marker = python_dir().join(".erasure-gateway-installed");
    let pins = sha256_hex(&requirements);
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(pins.as_str()) {
        // Start clean: pip --target does not replace what an older pin left.
        std::fs::remove_dir_all(python_dir()).ok();
        let mut pip = Command::new("python3");
        pip.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(python_dir())
        .arg("-r")
        .arg(Path::new(SDK_DIR).join("requirements.txt"));
        install(
            "Seam's Python SDK",
            pip,
            "install python3 (3.11 or newer, as seam 3.18 requires) with pip and reach PyPI, or run \
             `python3 -m pip install --target target/sdk-python -r tests/sdk/requirements.txt`",
        )
        .await;
        std::fs::write(&marker, &pins).unwrap();
    }

    let lock = std::fs::read(Path::new(SDK_DIR).join("package-lock.json")).unwrap();
    let marker = Path::new(SDK_DIR).join("node_modules/.erasure-gateway-installed");
    let pins = sha256_hex(&lock);
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(pins.as_str()) {
        let mut npm = Command::new("npm");
        // The SDK needs no install scripts; a few of its CLI's dependencies
        // have some, which a test has no reason to run.
        npm.args(["ci", "--prefix", SDK_DIR, "--no-audit", "--no-fund"])
            .arg("--ignore-scripts");
        install(
            "Seam's JavaScript SDK",
            npm,
            "install node and npm (verified on node 20; seam declares node >= 22.12) and reach \
             the npm registry, or run \
             `npm ci --prefix tests/sdk --no-audit --no-fund --ignore-scripts`",
        )
        .await;
        std::fs::write(&marker, &pins).unwrap();
    }
}

/// One stand-in Seam and the gateway in front of it, with a privacy officer
/// known by API key and by personal access token.
async fn seam_behind_gateway() -> (StandIn, support::Gateway) {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new()
        .caller("sdk-privacy-officer", OFFICER_KEY, &["privacy-officer"])
        .caller("sdk-privacy-officer-pat", OFFICER_PAT, &["privacy-officer"])
        .vendor("seam", &vendor);
    let gateway = spawn_gateway(config).await;
    (vendor, gateway)
}

/// Runs one SDK script against the gateway and returns its JSON lines by
/// scenario.
async fn run_script(
    program: &str,
    script: &str,
    gateway: &support::Gateway,
) -> BTreeMap<String, Value> {
    let mut command = Command::new(program);
    command
        .arg(Path::new(SDK_DIR).join(script))
        .current_dir(SDK_DIR)
        .env("PYTHONPATH", python_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("SEAM_SDK_TEST_ENDPOINT", gateway.url("/seam"))
        .env("SEAM_SDK_TEST_OFFICER_KEY", OFFICER_KEY)
        .env("SEAM_SDK_TEST_UNKNOWN_KEY", UNKNOWN_KEY)
        .env("SEAM_SDK_TEST_OFFICER_PAT", OFFICER_PAT);
    // The SDKs read these; a developer's shell must not steer the test.
    for name in [
        "SEAM_API_KEY",
        "SEAM_PERSONAL_ACCESS_TOKEN",
        "SEAM_WORKSPACE_ID",
        "SEAM_ENDPOINT",
        "SEAM_API_URL",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(name);
    }
    command.env("NO_PROXY", "127.0.0.1,localhost");
    let started = Instant::now();
    let output = output_within(command, SCRIPT_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "{script} ran in {:.1?} ({})\n{stdout}{stderr}",
        started.elapsed(),
        output.status
    );
    assert!(output.status.success(), "{script} failed: {stderr}");
    let lines: BTreeMap<String, Value> = stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            (value["scenario"].as_str().unwrap().to_owned(), value)
        })
        .collect();
    for scenario in ["allowed", "unknown_api_key", "pat_without_workspace"] {
        assert!(
            lines.contains_key(scenario),
            "{script} reported no `{scenario}` line:\n{stdout}{stderr}"
        );
    }
    lines
}

/// The SDK raised its own API error for a policy denial, naming `policy`,
/// with the request id the gateway answered with.
fn assert_denied_as_sdk_api_error(sdk: &str, line: &Value, policy: &str, api_error_class: &str) {
    let context = format!("{sdk} {}: {line}", line["scenario"]);
    assert_eq!(
        line["outcome"], "api_error",
        "not the SDK's SeamHttpApiError: {context}"
    );
    assert_eq!(line["error_class"], api_error_class, "{context}");
    assert_eq!(line["status"], 403, "{context}");
    assert_eq!(line["error_type"], "erasure_denied_by_policy", "{context}");
    let message = line["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(policy),
        "message names {policy}: {context}"
    );
    let request_id = line["request_id"].as_str().unwrap_or_default();
    assert!(!request_id.is_empty(), "SDK saw a request id: {context}");
    assert_eq!(
        line["x_request_id"].as_str(),
        Some(request_id),
        "SDK's request id is the response's x-request-id: {context}"
    );
    assert_eq!(line["x_erasure_decision"], "deny", "{context}");
}

/// The vendor received exactly the allowed call: `DELETE` with the ids as
/// repeated query keys (both SDKs send delete_data that way), no body, and
/// the officer's credential.
fn assert_vendor_got_only_the_allowed_call(sdk: &str, vendor: &StandIn) {
    let received = vendor.received();
    for call in &received {
        eprintln!(
            "{sdk}: the vendor received {} {} {:?} body {:?}",
            call.method, call.path_and_query, call.headers, call.body
        );
    }
    assert_eq!(
        received.len(),
        1,
        "{sdk}: the vendor received exactly the allowed call and nothing of the denied ones: {received:#?}"
    );
    let call = &received[0];
    assert_eq!(call.method, http::Method::DELETE, "{sdk}");
    let (path, query) = call
        .path_and_query
        .split_once('?')
        .unwrap_or((call.path_and_query.as_str(), ""));
    assert_eq!(path, "/customers/delete_data", "{sdk}");
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let values = |key: &str| -> Vec<&str> {
        params
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(values("customer_keys"), CUSTOMER_KEYS, "{sdk}: {query}");
    assert_eq!(values("user_keys"), USER_KEYS, "{sdk}: {query}");
    // Both SDKs mark every query-string call strict (`_strict=true`); the
    // gateway forwards the call rebuilt, keys in sorted canonical order.
    let mut keys: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    keys.dedup();
    assert_eq!(
        keys,
        ["_strict", "customer_keys", "user_keys"],
        "{sdk}: {query}"
    );
    assert!(call.body.is_empty(), "{sdk}: no body on a query-form call");
    assert_eq!(
        call.headers["authorization"],
        format!("Bearer {OFFICER_KEY}").as_str(),
        "{sdk}"
    );
}

fn assert_allowed(sdk: &str, line: &Value) {
    assert_eq!(
        line["outcome"], "ok",
        "{sdk}: the allowed call succeeds through the SDK: {line}"
    );
    assert_eq!(line["x_erasure_decision"], "allow", "{sdk}: {line}");
}

#[tokio::test]
async fn seam_sdks_erase_through_the_gateway_and_surface_denials_as_their_own_api_error() {
    ensure_sdks().await;
    // Both SDKs run before anything is asserted, so one failing run still
    // shows (with --nocapture) what the other SDK saw.
    let (py_vendor, mut gateway) = seam_behind_gateway().await;
    let python = run_script("python3", "seam_sdk.py", &gateway).await;
    gateway.stop().await;
    let (js_vendor, mut gateway) = seam_behind_gateway().await;
    let javascript = run_script("node", "seam_sdk.mjs", &gateway).await;
    gateway.stop().await;

    // Python: `Seam(api_key=…, endpoint=…).customers.delete_data(...)`.
    assert_allowed("python", &python["allowed"]);
    assert_denied_as_sdk_api_error(
        "python",
        &python["unknown_api_key"],
        "deny-anonymous",
        "seam.exceptions.SeamHttpApiError",
    );
    // The Python SDK refuses a personal access token without a workspace
    // before sending anything (SeamInvalidOptionsError), so that denial can
    // only be exercised through the JavaScript SDK.
    let pat = &python["pat_without_workspace"];
    assert_eq!(pat["outcome"], "sdk_refused", "python: {pat}");
    assert_eq!(
        pat["error_class"], "seam.options.SeamInvalidOptionsError",
        "python: {pat}"
    );
    assert_vendor_got_only_the_allowed_call("python", &py_vendor);

    // JavaScript: `new Seam({ apiKey, endpoint }).customers.deleteData({...})`.
    assert_allowed("javascript", &javascript["allowed"]);
    assert_denied_as_sdk_api_error(
        "javascript",
        &javascript["unknown_api_key"],
        "deny-anonymous",
        "SeamHttpApiError",
    );
    assert_denied_as_sdk_api_error(
        "javascript",
        &javascript["pat_without_workspace"],
        "seam-pat-requires-workspace",
        "SeamHttpApiError",
    );
    assert_vendor_got_only_the_allowed_call("javascript", &js_vendor);
}
