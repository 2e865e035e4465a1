//! The reviewers' console (`audit serve`) as a reviewer uses it: the real
//! binary on a trail the real gateway wrote (the demo's), driven by headless
//! Chromium through chromedriver (WebDriver): sign in, the overview's
//! counts, a filter that narrows the table, a decision's page, a receipt
//! downloaded, and a tampered trail shown broken. With
//! `CONSOLE_SCREENSHOTS=DIR` the three main pages are saved there as PNG
//! (how `docs/console-*.png` were made).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::temp_dir;
use crate::support::{call, cert_dir, refused_without_certificate, request, send, tls_client};
use crate::support::{gateway_binary, run_gateway};

const TOKEN: &str = "reviewer-token-for-the-console-tests";

/// The demo's trail and policies, written once for these tests.
fn demo() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = temp_dir("console-demo");
        let ran = run_gateway(&["demo", "--dir"], &[&dir.path().join("demo")]);
        ran.assert_exit(0);
        dir
    })
    .path()
}

fn demo_trail() -> PathBuf {
    demo().join("demo/audit")
}

/// A running `audit serve`, killed when dropped.
struct Console {
    child: Child,
    base: String,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_console(trail: &Path, dir: &Path) -> Console {
    let section = format!(
        "[console]\ntoken_sha256 = \"{}\"\n",
        erasure_gateway::digest::sha256_hex(TOKEN)
    );
    start_console_with(trail, dir, &section)
}

/// `audit serve` with this `[console]` section.
fn start_console_with(trail: &Path, dir: &Path, section: &str) -> Console {
    let config = dir.join("console.toml");
    std::fs::write(&config, section).unwrap();
    let mut child = gateway_binary()
        .args(["audit", "serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--policies")
        .arg(demo().join("demo/policies"))
        .arg(trail)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("the console names its address first: {first:?}"))
        .trim_end_matches('/')
        .to_owned();
    assert!(
        !first.contains(TOKEN),
        "the configured token is never printed"
    );
    Console { child, base }
}

/// `audit query --format json` of the demo trail, with extra arguments.
fn query(args: &[&str]) -> Vec<Value> {
    let trail = demo_trail();
    let mut all = vec!["audit", "query", "--format", "json"];
    all.extend(args);
    let ran = run_gateway(&all, &[&trail]);
    ran.assert_exit(0);
    ran.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// chromedriver on a free loopback port, and a headless Chromium session
/// that saves downloads in `downloads`.
struct Browser {
    client: Client,
    driver: Child,
}

impl Browser {
    async fn start(downloads: &Path) -> Self {
        let binary = [
            "chromedriver",
            "/usr/bin/chromedriver",
            "/usr/lib/chromium/chromedriver",
        ]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok()
        })
        .expect(
            "chromedriver is not installed: these tests drive Debian's Chromium \
                 (apt-get install chromium chromium-driver; .ci/run installs them)",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = std::process::Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1100", "--hide-scrollbars"],
                "prefs": {
                    "download.default_directory": downloads.to_str().unwrap(),
                    "download.prompt_for_download": false,
                },
            }),
        );
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if started.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("chromedriver did not start a Chromium session: {e}"),
            }
        };
        Self { client, driver }
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    async fn sign_in(&self, base: &str) {
        self.client.goto(&format!("{base}/")).await.unwrap();
        assert!(self.client.current_url().await.unwrap().path() == "/login");
        let field = self
            .client
            .find(Locator::Css("input[name=token]"))
            .await
            .unwrap();
        field.send_keys(TOKEN).await.unwrap();
        self.client
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.wait_url(|path, _| path == "/").await;
    }

    /// Waits (10 s at most) until the page's address is what `want`
    /// accepts (path, query): a click returns before its navigation ends.
    async fn wait_url(&self, want: impl Fn(&str, &str) -> bool) {
        let started = Instant::now();
        loop {
            let url = self.client.current_url().await.unwrap();
            if want(url.path(), url.query().unwrap_or("")) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never left {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reloads `url` until `css` is on it (verification runs in the
    /// background), within 20 s.
    async fn wait_for(&self, url: &str, css: &str) {
        let started = Instant::now();
        loop {
            self.client.goto(url).await.unwrap();
            if self.client.find(Locator::Css(css)).await.is_ok() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{css} never showed on {url}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("CONSOLE_SCREENSHOTS") {
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(Path::new(&dir).join(format!("console-{name}.png")), png).unwrap();
        }
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn count(rows: &[Value], field: &str, value: &str) -> usize {
    rows.iter().filter(|r| r[field] == value).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_reads_the_overview_filters_decisions_and_downloads_a_receipt() {
    let dir = temp_dir("console");
    let console = start_console(&demo_trail(), dir.path());
    let downloads = dir.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let browser = Browser::start(&downloads).await;
    browser.sign_in(&console.base).await;

    // The overview: counts as `audit query` has them, the chain verified.
    let rows = query(&[]);
    browser
        .wait_for(&format!("{}/", console.base), "#chain-state.ok")
        .await;
    for decision in ["allow", "deny", "held"] {
        assert_eq!(
            browser.text(&format!("#total-{decision}")).await,
            count(&rows, "decision", decision).to_string(),
            "{decision}"
        );
    }
    assert_eq!(browser.text("#total").await, rows.len().to_string());
    assert!(browser
        .text("#chain-state")
        .await
        .contains("Trail verified"));
    assert!(browser
        .text("#denying")
        .await
        .contains("kore-never-erase-account-owners"));
    browser.screenshot("overview").await;

    // A filter narrows the table, and the narrowed table is a link.
    browser
        .client
        .goto(&format!("{}/decisions", console.base))
        .await
        .unwrap();
    let all_rows = browser
        .client
        .find_all(Locator::Css("#decisions tbody tr"))
        .await
        .unwrap();
    assert_eq!(all_rows.len(), rows.len());
    browser
        .client
        .find(Locator::Css("select[name=vendor]"))
        .await
        .unwrap()
        .select_by_value("kore")
        .await
        .unwrap();
    browser
        .client
        .find(Locator::Css("form.filters button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_url(|path, query| path == "/decisions" && query.contains("vendor=kore"))
        .await;
    let kore = query(&["--vendor", "kore"]);
    let shown = browser
        .client
        .find_all(Locator::Css("#decisions tbody tr"))
        .await
        .unwrap();
    assert!(!kore.is_empty() && kore.len() < rows.len());
    assert_eq!(shown.len(), kore.len());
    for row in &shown {
        assert_eq!(
            row.find(Locator::Css("td:nth-child(3)"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "kore"
        );
    }
    assert!(browser
        .text("#matched")
        .await
        .starts_with(&kore.len().to_string()));
    browser.screenshot("decisions").await;

    // One decision: its fields, why (the policy's text), its chain place.
    let denied = &query(&["--policy", "kore-never-erase-account-owners"])[0];
    let id = denied["decision_id"].as_str().unwrap();
    browser
        .client
        .goto(&format!("{}/decision/{id}", console.base))
        .await
        .unwrap();
    assert!(browser.text("#fields").await.contains(id));
    let why = browser.text("pre.policy").await;
    assert!(
        why.contains("forbid") && why.contains("account_owner"),
        "{why}"
    );
    assert!(browser.text("#proof").await.starts_with("verified"));
    browser.screenshot("decision").await;

    // A receipt: erased, by whom, under which policy; downloaded whole.
    let erased = rows
        .iter()
        .find(|r| r["vendor"] == "seam" && r["decision"] == "allow" && r["status"] == 200)
        .expect("the demo erases on Seam");
    let target = erased["targets"][0]
        .as_str()
        .unwrap()
        .rsplit("::")
        .next()
        .unwrap()
        .to_owned();
    browser
        .client
        .goto(&format!("{}/receipt?target={target}", console.base))
        .await
        .unwrap();
    let receipt_text = browser.text("#receipt").await;
    assert!(receipt_text.contains("Erased"), "{receipt_text}");
    assert!(receipt_text.contains(erased["caller"].as_str().unwrap()));
    assert!(
        browser.text("#proves").await.starts_with("yes"),
        "the trail proves it"
    );
    browser.screenshot("receipt").await;
    browser
        .client
        .find(Locator::Css("a.download"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let expected = run_gateway(
        &["audit", "receipt", "--format", "json", "--target", &target],
        &[&demo_trail()],
    );
    expected.assert_exit(0);
    let expected: Value = serde_json::from_str(&expected.stdout).unwrap();
    let started = Instant::now();
    let downloaded = loop {
        let file = std::fs::read_dir(&downloads)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "json"));
        if let Some(file) = file {
            if let Ok(json) = serde_json::from_slice::<Value>(&std::fs::read(&file).unwrap()) {
                break json;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no receipt downloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(downloaded, expected);
    assert_eq!(downloaded["state"], "erased");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_trail_shows_as_broken_naming_the_first_bad_record() {
    let dir = temp_dir("console-tampered");
    let trail = dir.path().join("trail");
    std::fs::create_dir(&trail).unwrap();
    let path = std::fs::read_dir(demo_trail())
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .expect("the demo wrote a trail file");
    let text = std::fs::read_to_string(&path).unwrap();
    // A denial rewritten as an allow, its hash left as it was.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = lines
        .iter()
        .position(|l| l.contains("\"decision\":\"deny\""))
        .unwrap();
    lines[at] = lines[at].replace("\"decision\":\"deny\"", "\"decision\":\"allow\"");
    std::fs::write(
        trail.join(path.file_name().unwrap()),
        lines.join("\n") + "\n",
    )
    .unwrap();
    let console = start_console(&trail, dir.path());
    let browser = Browser::start(dir.path()).await;
    browser.sign_in(&console.base).await;
    browser
        .wait_for(&format!("{}/", console.base), "#chain-state.broken")
        .await;
    let state = browser.text("#chain-state").await;
    assert!(state.contains("does NOT verify"), "{state}");
    assert!(state.contains(&format!("line {}", at + 1)), "{state}");
    assert!(state.contains(&format!("seq {}", at + 1)), "{state}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_only_reads_and_only_for_a_reviewer() {
    let dir = temp_dir("console-access");
    let console = start_console(&demo_trail(), dir.path());
    let base = &console.base;
    let (parts, _) = call("GET", &format!("{base}/"), &[], "").await;
    assert_eq!(parts.status, 303);
    assert_eq!(parts.headers["location"], "/login");
    let (parts, _) = call("GET", &format!("{base}/receipt.json?target=u-1"), &[], "").await;
    assert_eq!(parts.status, 401);
    let (parts, _) = call(
        "GET",
        &format!("{base}/"),
        &[("authorization", "Bearer not-the-token")],
        "",
    )
    .await;
    assert_eq!(parts.status, 303);
    let (parts, _) = call(
        "POST",
        &format!("{base}/login"),
        &[("content-type", "application/x-www-form-urlencoded")],
        "token=wrong",
    )
    .await;
    assert_eq!(parts.status, 401);
    let reviewer = format!("Bearer {TOKEN}");
    let (parts, _) = call(
        "GET",
        &format!("{base}/decisions"),
        &[("authorization", &reviewer)],
        "",
    )
    .await;
    assert_eq!(parts.status, 200);
    let csp = parts.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "no script is allowed: {csp}");
    assert_eq!(parts.headers["cache-control"], "no-store");
    assert_eq!(parts.headers["x-frame-options"], "DENY");
    for method in ["POST", "PUT", "DELETE"] {
        let (parts, _) = call(
            method,
            &format!("{base}/decisions"),
            &[("authorization", &reviewer)],
            "",
        )
        .await;
        assert_eq!(parts.status, 405, "{method}");
    }
    let (parts, _) = call(
        "POST",
        &format!("{base}/login"),
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("token={TOKEN}"),
    )
    .await;
    assert_eq!(parts.status, 303);
    let cookie = parts.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(demo_trail())
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    for path in [
        "/",
        "/decisions?decision=deny&sort=vendor&order=asc",
        "/receipt?target=u-1",
        "/chart/hours.svg",
    ] {
        let (parts, _) = call("GET", &format!("{base}{path}"), &[("cookie", &cookie)], "").await;
        assert_eq!(parts.status, 200, "{path}");
    }
    for (path, bytes) in before {
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "the console changed {}",
            path.display()
        );
    }
}

#[test]
fn audit_serve_refuses_a_missing_trail_or_a_bad_console_section_by_name() {
    let dir = temp_dir("console-usage");
    let missing = dir.path().join("no-such-trail");
    let ran = run_gateway(&["audit", "serve"], &[&missing]);
    ran.assert_exit(2);
    assert!(ran.stderr.contains("no-such-trail"), "{}", ran.stderr);
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[console]\ntoken_sha256 = \"my-token\"\n").unwrap();
    let ran = run_gateway(&["audit", "serve", "--config"], &[&config, &demo_trail()]);
    ran.assert_exit(2);
    assert!(
        ran.stderr.contains("console.token_sha256"),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains("my-token"),
        "a token in the wrong place is not echoed: {}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_certificate_is_access_enough_over_tls() {
    let certs = erasure_gateway::certs::DevCerts::generate().unwrap();
    let dir = cert_dir(&certs, "console-mtls");
    let file = |name: &str| dir.path().join(name).display().to_string();
    let section = format!(
        "[console]\ntls_cert = \"{}\"\ntls_key = \"{}\"\nclient_ca = \"{}\"\n",
        file("gateway.pem"),
        file("gateway-key.pem"),
        file("ca.pem")
    );
    let console = start_console_with(&demo_trail(), dir.path(), &section);
    assert!(console.base.starts_with("https://"), "{}", console.base);
    let base = console.base.replace("127.0.0.1", "localhost");
    // A certificate the CA signed: the pages, no token, no sign-in.
    let reviewer = tls_client(&certs, true);
    let (parts, body) = send(&reviewer, request("GET", &format!("{base}/decisions"), ""))
        .await
        .unwrap();
    assert_eq!(parts.status, 200);
    assert!(String::from_utf8_lossy(&body).contains("decision(s) match"));
    // Without one, the handshake itself is refused.
    let addr = console.base.trim_start_matches("https://");
    assert!(refused_without_certificate(&certs, addr).await);
}

/// `GET` on the admin listener with the reviewer token; status and body.
async fn reviewer_get(url: &str) -> (u16, String) {
    let auth = format!("Bearer {TOKEN}");
    let mut req = request("GET", url, "");
    req.headers_mut()
        .insert("authorization", auth.parse().unwrap());
    let (parts, body) = send(&crate::support::http1_client(), req).await.unwrap();
    (
        parts.status.as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_the_console_following_the_live_trail() {
    use crate::support::{bearer, spawn_gateway, spawn_vendor, Behaviour, GatewayConfig, JSON};
    let seam = spawn_vendor(Behaviour::Echo).await;
    let config = GatewayConfig::new()
        .vendor("seam", &seam)
        .caller("privacy-ops", "officer-token-1", &["privacy-officer"])
        .set("console", "enabled", true)
        .set(
            "console",
            "token_sha256",
            erasure_gateway::digest::sha256_hex(TOKEN),
        );
    let mut gateway = spawn_gateway(config).await;
    // Behind the reviewer token, like `audit serve`; the rest of the admin
    // listener is unchanged.
    let (parts, _) = call("GET", &gateway.admin_url("/console/"), &[], "").await;
    assert_eq!(parts.status, 303);
    assert_eq!(parts.headers["location"], "/console/login");
    let (parts, _) = call("GET", &gateway.admin_url("/healthz"), &[], "").await;
    assert_eq!(parts.status, 200);
    let (status, page) = reviewer_get(&gateway.admin_url("/console/")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<base href=\"/console/\">"),
        "links resolve under /console/"
    );
    // An erasure decided now shows in the table once the follower reads it.
    let (parts, _) = gateway
        .call(
            "POST",
            "/seam/customers/delete_data",
            &[("authorization", &bearer("officer-token-1")), JSON],
            r#"{"customer_keys":["cust-console-1"]}"#,
        )
        .await;
    assert_eq!(parts.status, 200);
    let started = Instant::now();
    loop {
        let (status, page) =
            reviewer_get(&gateway.admin_url("/console/decisions?target=cust-console-1")).await;
        assert_eq!(status, 200);
        if page.contains("<strong>1</strong> decision(s) match") {
            assert!(page.contains("Seam::Customer::cust-console-1"), "{page}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the console never showed the new decision"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Its page quotes the policy in force that allowed it.
    let decision = gateway
        .trail()
        .into_iter()
        .find(|r| r["kind"] == "decision")
        .expect("the decision is on record");
    let id = decision["decision_id"].as_str().unwrap();
    let (status, page) = reviewer_get(&gateway.admin_url(&format!("/console/decision/{id}"))).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<pre class=\"policy\">") && page.contains("permit"),
        "{page}"
    );
    gateway.stop().await;
}
