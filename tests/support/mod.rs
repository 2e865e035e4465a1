//! Shared setup for integration tests: stand-in vendors that record what
//! arrives, the real gateway on `127.0.0.1:0`, and HTTP clients (plain, h2c,
//! TLS with or without a client certificate).
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use erasure_gateway::certs::DevCerts;
use erasure_gateway::config::Config;
use http::{HeaderMap, Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

/// A request as the stand-in vendor received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: http::Method,
    pub path_and_query: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How the stand-in vendor answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// 200 with the request body echoed back, plus hop-by-hop headers the
    /// gateway must strip.
    Echo,
    /// Record, then wait this long before answering 200.
    Slow(Duration),
    /// Record, then never answer.
    Hang,
    /// 200 with this JSON body (e.g. Kore.ai's `{"requestId":…}`).
    Json(&'static str),
    /// This status with a small JSON error body (a vendor failing).
    Status(u16),
}

/// Every stand-in vendor's recorder in this test binary, so that stopping a
/// gateway can check what its allowed calls delivered.
static RECORDERS: Mutex<Vec<Arc<Mutex<Vec<Recorded>>>>> = Mutex::new(Vec::new());

/// The digest of a request as a stand-in vendor received it, computed the
/// way the decision record's `forwarded_sha256` is.
pub fn received_sha256(seen: &Recorded) -> String {
    erasure_gateway::vendor::forwarded_sha256(
        seen.method.as_str(),
        &seen.path_and_query,
        &seen.headers,
        &seen.body,
    )
}

/// Asserts that every call the trail of `config` records as forwarded (and
/// answered) reached some stand-in vendor exactly as decided: a received request's
/// digest equals the decision's `forwarded_sha256`. Returns how many were
/// checked.
pub fn assert_forwarded_as_decided(config: &Config) -> usize {
    let received: std::collections::HashSet<String> = RECORDERS
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| r.lock().unwrap().clone())
        .map(|seen| received_sha256(&seen))
        .collect();
    let records = trail_records_lenient(config);
    // A call whose exchange failed (vendor unreachable, reset, too slow) may
    // not have reached a recorder whole; those are checked by their tests.
    let failed: std::collections::HashSet<&serde_json::Value> = records
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

/// A running stand-in vendor.
pub struct Vendor {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Recorded>>>,
}

impl Vendor {
    pub fn received(&self) -> Vec<Recorded> {
        self.received.lock().unwrap().clone()
    }

    pub fn url(&self, scheme: &str) -> String {
        let host = if scheme == "https" {
            "localhost"
        } else {
            "127.0.0.1"
        };
        format!("{scheme}://{host}:{}", self.addr.port())
    }
}

/// Starts a plain-HTTP stand-in vendor (HTTP/1.1 and h2c).
pub async fn spawn_vendor(behaviour: Behaviour) -> Vendor {
    spawn_vendor_inner(behaviour, None).await
}

/// Starts a TLS stand-in vendor with the dev server certificate.
pub async fn spawn_tls_vendor(behaviour: Behaviour, certs: &DevCerts) -> Vendor {
    let chain = CertificateDer::pem_slice_iter(certs.server_cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(certs.server_key.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    spawn_vendor_inner(
        behaviour,
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
    )
    .await
}

async fn spawn_vendor_inner(
    behaviour: Behaviour,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Vendor {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    RECORDERS.lock().unwrap().push(received.clone());
    let recorder = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let recorder = recorder.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let recorder = recorder.clone();
                    async move { Ok::<_, Infallible>(vendor_answer(req, &recorder, behaviour).await) }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                match tls {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    Vendor { addr, received }
}

async fn vendor_answer(
    req: Request<Incoming>,
    recorder: &Mutex<Vec<Recorded>>,
    behaviour: Behaviour,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    recorder.lock().unwrap().push(Recorded {
        method: parts.method.clone(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        version: parts.version,
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    match behaviour {
        Behaviour::Echo => {}
        Behaviour::Slow(d) => tokio::time::sleep(d).await,
        Behaviour::Hang => std::future::pending::<()>().await,
        Behaviour::Status(status) => {
            return Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(
                    br#"{"error":{"type":"internal","message":"vendor failed"}}"#,
                )))
                .unwrap();
        }
        Behaviour::Json(json) => {
            return Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(json.as_bytes())))
                .unwrap();
        }
    }
    let mut builder = Response::builder()
        .status(200)
        .header("x-vendor", "stand-in")
        .header("x-vendor-method", parts.method.as_str());
    if parts.version == Version::HTTP_11 {
        builder = builder
            .header("connection", "x-vendor-hop")
            .header("x-vendor-hop", "must-not-reach-the-client")
            .header("keep-alive", "timeout=5");
    }
    builder.body(Full::new(body)).unwrap()
}

/// A gateway running in this process on `127.0.0.1:0`.
pub struct Gateway {
    pub config: Config,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn tls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Begins graceful shutdown, waits for the gateway to return, and
    /// checks that every call it forwarded reached a stand-in vendor exactly
    /// as decided ([`assert_forwarded_as_decided`]).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("gateway stops within 10s")
                .unwrap();
        }
        assert_forwarded_as_decided(&self.config);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The repository's shipped policies.
pub const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

/// A configuration from TOML text, with both listeners on port 0 and the
/// shipped policies, unless the text sets them.
pub fn config(toml_text: &str) -> Config {
    let mut table: toml::Table = toml_text.parse().expect("test TOML parses");
    let mut section = |name: &str, key: &str, value: &str| {
        let entry = table
            .entry(name)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(t) = entry.as_table_mut() {
            t.entry(key)
                .or_insert_with(|| toml::Value::String(value.to_owned()));
        }
    };
    section("proxy", "listen", "127.0.0.1:0");
    section("admin", "listen", "127.0.0.1:0");
    section("policies", "dir", POLICIES);
    let trail = unique_temp_dir("trail").join("decisions.jsonl");
    section("audit", "path", &trail.to_string_lossy());
    section("audit", "replica", "test");
    let text = toml::to_string(&table).expect("test TOML serialises");
    Config::parse(&text, Path::new("test.toml")).unwrap_or_else(|e| panic!("test config: {e}"))
}

/// A fresh, empty directory under the system temp dir.
pub fn unique_temp_dir(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "eg-{name}-{}-{}-{n}",
        std::process::id(),
        uuid_like()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The trail's records, oldest first, across its files.
pub fn trail_records(config: &Config) -> Vec<serde_json::Value> {
    let dir = config.audit.path.parent().unwrap().to_owned();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}

/// The trail's records that parse, oldest first; none when it has no
/// directory (tests that tamper with a trail still get checked).
pub fn trail_records_lenient(config: &Config) -> Vec<serde_json::Value> {
    let Some(dir) = config.audit.path.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}

/// Starts the real gateway in this process.
pub async fn spawn_gateway(config: Config) -> Gateway {
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = proxy.local_addr().unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listeners = erasure_gateway::Listeners { proxy, admin };
    let kept = config.clone();
    let task = tokio::spawn(async move {
        erasure_gateway::run(&config, listeners, async {
            let _ = stopped.await;
        })
        .await
        .expect("gateway starts");
    });
    Gateway {
        config: kept,
        addr,
        admin: admin_addr,
        stop: Some(stop),
        task: Some(task),
    }
}

/// A plain HTTP/1.1 client.
pub fn http1_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 client with prior knowledge (h2c).
pub fn h2c_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A TLS client trusting the dev CA, optionally presenting the dev client
/// certificate; ALPN offers h2 and http/1.1.
pub fn tls_client(
    certs: &DevCerts,
    with_client_cert: bool,
) -> Client<HttpsConnector<HttpConnector>, Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(certs.ca_cert.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = if with_client_cert {
        let chain = CertificateDer::pem_slice_iter(certs.client_cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(certs.client_key.as_bytes()).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Sends a request and collects the whole response.
pub async fn send<C>(
    client: &Client<C, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(http::response::Parts, Bytes), hyper_util::client::legacy::Error>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let response = tokio::time::timeout(Duration::from_secs(20), client.request(request))
        .await
        .expect("response within 20s")?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("whole body").to_bytes();
    Ok((parts, body))
}

/// A request with a body.
pub fn request(method: &str, url: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(body.into()))
        .unwrap()
}

/// Writes the dev certificates into a fresh temporary directory.
pub fn cert_dir(certs: &DevCerts, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "eg-test-{name}-{}-{}",
        std::process::id(),
        uuid_like()
    ));
    certs.write(&dir).unwrap();
    dir
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A deterministic body of `len` bytes that is not all one value.
pub fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The `erasure-gateway` binary.
pub fn gateway_binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_erasure-gateway"))
}

/// A running `erasure-gateway serve` process, its JSON log lines on a
/// channel; killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub proxy: String,
    pub admin: String,
    log: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Served {
    /// Starts `serve --config config_path` with JSON logs and waits for its
    /// `listening` line. `stdout` is where the process's stdout goes.
    pub fn start(config_path: &Path, stdout: std::process::Stdio) -> Self {
        use std::io::BufRead;
        let mut child = gateway_binary()
            .args(["--log-format", "json", "serve", "--config"])
            .arg(config_path)
            .stderr(std::process::Stdio::piped())
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
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
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

    /// The log lines not yet read, as JSON.
    pub fn drain_log(&self) -> Vec<serde_json::Value> {
        self.log.try_iter().collect()
    }

    /// The first log line (from now) that `want` accepts, within `limit`.
    pub fn wait_log(
        &self,
        want: impl Fn(&serde_json::Value) -> bool,
        limit: Duration,
    ) -> Option<serde_json::Value> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
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
        let sent = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name}");
    }

    /// Waits for the process to exit; its exit code, or `None` (and kills
    /// it) when it has not exited within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let started = std::time::Instant::now();
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
