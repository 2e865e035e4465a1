//! The real gateway, two ways: in this process on `127.0.0.1:0`
//! ([`spawn_gateway`]), or as the `erasure-gateway serve` binary
//! ([`Served`]); both from a [`GatewayConfig`].

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use erasure_gateway::config::Config;
use erasure_gateway::stand_in::{Received, Recorder};
use serde_json::Value;
use tokio::net::TcpListener;

use super::GatewayConfig;

/// A gateway running in this process.
pub struct Gateway {
    /// Its configuration, as it parsed it.
    pub config: Config,
    /// The proxy listener.
    pub addr: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    stand_ins: Vec<Recorder>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// `path` on the proxy listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `path` on the proxy listener over TLS (the dev certificate's name).
    pub fn tls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// `path` on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Its `/metrics` text (admin listener).
    pub async fn metrics(&self) -> String {
        let (_, body) = super::get(&self.admin_url("/metrics")).await;
        String::from_utf8_lossy(&body).into_owned()
    }

    /// [`super::call`] on the proxy listener.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> (http::response::Parts, Value) {
        super::call(method, &self.url(path), headers, body).await
    }

    /// The records of its trail, oldest first.
    pub fn trail(&self) -> Vec<Value> {
        super::trail_records(&self.config)
    }

    /// Begins graceful shutdown, waits for the gateway to return, and
    /// checks that every call it forwarded reached its stand-in vendors
    /// exactly as decided ([`assert_forwarded_as_decided`]). Its files stay
    /// until it is dropped.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("gateway stops within 10s")
                .unwrap();
        }
        assert_forwarded_as_decided(self);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts the real gateway in this process, both listeners on
/// `127.0.0.1:0`.
pub async fn spawn_gateway(config: GatewayConfig) -> Gateway {
    let parsed = config.config();
    let (stand_ins, dir) = config.into_parts();
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = proxy.local_addr().unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listeners = erasure_gateway::Listeners { proxy, admin };
    let running = parsed.clone();
    let task = tokio::spawn(async move {
        erasure_gateway::run(&running, listeners, async {
            let _ = stopped.await;
        })
        .await
        .expect("gateway starts");
    });
    Gateway {
        config: parsed,
        addr,
        admin: admin_addr,
        stand_ins,
        stop: Some(stop),
        task: Some(task),
        _dir: dir,
    }
}

/// The digest of a request as a stand-in vendor received it, computed the
/// way the decision record's `forwarded_sha256` is.
pub fn received_sha256(seen: &Received) -> String {
    erasure_gateway::profile::forwarded_sha256(
        seen.method.as_str(),
        &seen.path_and_query,
        &seen.headers,
        &seen.body,
    )
}

/// Asserts that every call the gateway's trail records as forwarded (and
/// answered) reached one of its stand-in vendors exactly as decided: a
/// received request's digest equals the decision's `forwarded_sha256`.
/// Returns how many were checked.
pub fn assert_forwarded_as_decided(gateway: &Gateway) -> usize {
    let received: HashSet<String> = gateway
        .stand_ins
        .iter()
        .flat_map(Recorder::received)
        .map(|seen| received_sha256(&seen))
        .collect();
    let records = gateway.trail();
    // A call whose exchange failed (vendor unreachable, reset, too slow) may
    // not have reached a recorder whole; those are checked by their tests.
    let failed: HashSet<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "outcome" && r.get("error").is_some())
        .map(|r| &r["decision_id"])
        .collect();
    let mut checked = 0;
    for record in &records {
        if record["kind"] != "decision"
            || record["effect"] != "forwarded"
            || failed.contains(&record["decision_id"])
        {
            continue;
        }
        let digest = record["forwarded_sha256"]
            .as_str()
            .unwrap_or_else(|| panic!("a forwarded decision without forwarded_sha256: {record}"));
        assert!(
            received.contains(digest),
            "no stand-in vendor received the request decided as {digest}: {record}"
        );
        checked += 1;
    }
    checked
}

/// The `erasure-gateway` binary.
pub fn gateway_binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_erasure-gateway"))
}

/// What a finished `erasure-gateway` command did.
pub struct Ran {
    /// Its exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Ran {
    /// Asserts that it exited with `code`, showing what it printed if not.
    pub fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "--- stdout\n{}--- stderr\n{}",
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `erasure-gateway` with `args`, then `paths`, to completion.
pub fn run_gateway(args: &[&str], paths: &[&Path]) -> Ran {
    Ran::from(gateway_binary().args(args).args(paths).output().unwrap())
}

impl From<std::process::Output> for Ran {
    fn from(out: std::process::Output) -> Self {
        Self {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A running `erasure-gateway serve` process, its JSON log lines on a
/// channel; killed when dropped.
pub struct Served {
    /// The process.
    pub child: Child,
    /// The proxy listener's address, as it logged it.
    pub proxy: String,
    /// The admin listener's address, as it logged it.
    pub admin: String,
    log: Receiver<Value>,
}

impl Served {
    /// Writes `config` to its file, starts `serve --config` on it with JSON
    /// logs and waits for the `listening` line. `stdout` is where the
    /// process's stdout goes.
    pub fn start(config: &GatewayConfig, stdout: Stdio) -> Self {
        Self::start_with_env(config, stdout, &[])
    }

    /// [`start`](Self::start) with these environment variables set.
    pub fn start_with_env(config: &GatewayConfig, stdout: Stdio, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut child = gateway_binary()
            .envs(env.iter().copied())
            .args(["--log-format", "json", "serve", "--config"])
            .arg(config.write())
            .stderr(Stdio::piped())
            .stdout(stdout)
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(json) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(json);
                }
            }
        });
        let mut served = Self {
            child,
            proxy: String::new(),
            admin: String::new(),
            log,
        };
        let listening = served
            .wait_log(|j| j["message"] == "listening", Duration::from_secs(20))
            .expect("the gateway logs its listening addresses");
        served.proxy = listening["proxy"].as_str().unwrap_or_default().to_owned();
        served.admin = listening["admin"].as_str().unwrap_or_default().to_owned();
        served
    }

    /// `path` on the proxy listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    /// The log lines not yet read, as JSON.
    pub fn drain_log(&self) -> Vec<Value> {
        self.log.try_iter().collect()
    }

    /// The first log line (from now) that `want` accepts, within `limit`.
    pub fn wait_log(&self, want: impl Fn(&Value) -> bool, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(line) = self.log.recv_timeout(Duration::from_millis(100)) {
                if want(&line) {
                    return Some(line);
                }
            }
        }
        None
    }

    /// Sends a signal (`TERM`, `INT`, `HUP`, `KILL`) to the process.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name}");
    }

    /// Waits for the process to exit; its exit code, or `None` (and kills
    /// it) when it has not exited within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
