//! The proxy spine end to end: real gateway, real stand-in vendors, real
//! TLS, all on loopback.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use erasure_gateway::certs::DevCerts;
use http::{StatusCode, Version};

use crate::support::{
    self, cert_dir, get, h2c_client, http1_client, pattern, request, send, spawn_gateway,
    spawn_partial_vendor, spawn_tls_vendor, spawn_vendor, AfterPartial, Behaviour, GatewayConfig,
};

/// A configuration whose proxy listener serves TLS with the dev
/// certificate written to `certs`.
fn serving_tls(certs: &Path) -> GatewayConfig {
    GatewayConfig::new()
        .proxy("tls_cert", certs.join("gateway.pem").display().to_string())
        .proxy(
            "tls_key",
            certs.join("gateway-key.pem").display().to_string(),
        )
}

#[tokio::test]
async fn large_bodies_stream_through_byte_for_byte_for_get_post_and_delete() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let mut gateway = spawn_gateway(GatewayConfig::new().plain(&vendor)).await;
    let client = http1_client();
    let body = pattern(5 * 1024 * 1024 + 17);
    for method in ["GET", "POST", "DELETE"] {
        let url = gateway.url(&format!("/v/files/{method}?x=1&y=%20"));
        let (parts, echoed) = send(&client, request(method, &url, body.clone()))
            .await
            .unwrap();
        assert_eq!(parts.status, StatusCode::OK, "{method}");
        assert_eq!(echoed.len(), body.len(), "{method}: response length");
        assert!(echoed == body, "{method}: response body differs");
    }
    let received = vendor.received();
    assert_eq!(received.len(), 3);
    for (r, method) in received.iter().zip(["GET", "POST", "DELETE"]) {
        assert_eq!(r.method, method);
        assert_eq!(r.path_and_query, format!("/files/{method}?x=1&y=%20"));
        assert!(r.body == body, "{method}: upstream saw a different body");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_host_rewritten_and_request_id_kept() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let mut gateway = spawn_gateway(GatewayConfig::new().plain(&vendor)).await;
    let client = http1_client();
    let mut req = request("POST", &gateway.url("/v/x"), "hi");
    let h = req.headers_mut();
    h.insert("connection", "x-private-hop".parse().unwrap());
    h.insert("x-private-hop", "secret".parse().unwrap());
    h.insert("keep-alive", "timeout=1".parse().unwrap());
    h.insert("te", "trailers".parse().unwrap());
    h.insert("proxy-authorization", "Basic Zm9vOmJhcg==".parse().unwrap());
    h.insert("x-request-id", "client-chosen-42".parse().unwrap());
    h.insert("x-end-to-end", "kept".parse().unwrap());
    let (parts, _) = send(&client, req).await.unwrap();
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers["x-request-id"], "client-chosen-42");
    assert!(
        !parts.headers.contains_key("x-vendor-hop"),
        "response hop-by-hop leaked"
    );
    assert!(!parts.headers.contains_key("keep-alive"));
    assert_eq!(parts.headers["x-vendor"], "stand-in");

    let seen = &vendor.received()[0];
    for gone in ["x-private-hop", "keep-alive", "te", "proxy-authorization"] {
        assert!(
            !seen.headers.contains_key(gone),
            "{gone} reached the upstream"
        );
    }
    assert_eq!(
        seen.headers["host"],
        format!("127.0.0.1:{}", vendor.addr().port())
    );
    assert_eq!(seen.headers["x-request-id"], "client-chosen-42");
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-end-to-end"], "kept");
    gateway.stop().await;
}

#[tokio::test]
async fn a_missing_or_unsafe_request_id_is_replaced_and_sent_both_ways() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let mut gateway = spawn_gateway(GatewayConfig::new().plain(&vendor)).await;
    let mut req = request("GET", &gateway.url("/v/x"), "");
    req.headers_mut()
        .insert("x-request-id", "bad id with spaces".parse().unwrap());
    let (parts, _) = send(&http1_client(), req).await.unwrap();
    let id = parts.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(vendor.received()[0].headers["x-request-id"], id.as_str());
    gateway.stop().await;
}

#[tokio::test]
async fn an_http2_client_is_served_over_h2c() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let mut gateway = spawn_gateway(GatewayConfig::new().plain(&vendor)).await;
    let body = pattern(300_000);
    let (parts, echoed) = send(
        &h2c_client(),
        request("POST", &gateway.url("/v/h2"), body.clone()),
    )
    .await
    .unwrap();
    assert_eq!(parts.version, Version::HTTP_2);
    assert_eq!(parts.status, 200);
    assert!(echoed == body);
    assert!(parts.headers.contains_key("x-request-id"));
    assert_eq!(
        vendor.received()[0].headers["host"],
        format!("127.0.0.1:{}", vendor.addr().port())
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_tls_client_gets_h2_by_alpn_and_reaches_a_tls_upstream_trusted_through_ca() {
    let certs = DevCerts::generate().unwrap();
    let dir = cert_dir(&certs, "tls");
    let vendor = spawn_tls_vendor(Behaviour::Echo, &certs).await;
    let mut gateway = spawn_gateway(
        serving_tls(dir.path())
            .plain(&vendor)
            .upstream_ca(&dir.path().join("ca.pem")),
    )
    .await;
    let client = support::tls_client(&certs, false);
    let (parts, body) = send(
        &client,
        request("PUT", &gateway.tls_url("/v/secure"), "over tls"),
    )
    .await
    .unwrap();
    assert_eq!(parts.status, 200);
    assert_eq!(parts.version, Version::HTTP_2, "ALPN should pick h2");
    assert_eq!(&body[..], b"over tls");
    let seen = &vendor.received()[0];
    assert_eq!(seen.path_and_query, "/secure");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    assert_eq!(
        seen.headers["host"],
        format!("localhost:{}", vendor.addr().port())
    );
    gateway.stop().await;
}

#[tokio::test]
async fn an_upstream_not_trusted_is_a_bad_gateway() {
    let certs = DevCerts::generate().unwrap();
    let vendor = spawn_tls_vendor(Behaviour::Echo, &certs).await;
    // No `ca`: the dev CA is not among the public roots.
    let mut gateway = spawn_gateway(GatewayConfig::new().plain(&vendor)).await;
    let (parts, body) = get(&gateway.url("/v/x")).await;
    assert_eq!(parts.status, StatusCode::BAD_GATEWAY);
    assert!(String::from_utf8_lossy(&body).contains("upstream_unreachable"));
    assert!(vendor.received().is_empty());
    gateway.stop().await;
}

#[tokio::test]
async fn with_client_ca_a_client_without_certificate_is_refused() {
    let certs = DevCerts::generate().unwrap();
    let dir = cert_dir(&certs, "mtls");
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let mut gateway = spawn_gateway(
        serving_tls(dir.path())
            .proxy("client_ca", dir.path().join("ca.pem").display().to_string())
            .plain(&vendor),
    )
    .await;

    assert!(
        support::refused_without_certificate(&certs, &gateway.addr.to_string()).await,
        "a client without a certificate must not get through"
    );

    let (parts, _) = send(
        &support::tls_client(&certs, true),
        request("GET", &gateway.tls_url("/v/x"), ""),
    )
    .await
    .unwrap();
    assert_eq!(parts.status, 200);
    assert_eq!(
        vendor.received().len(),
        1,
        "only the certified client reached the vendor"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn an_upstream_refusing_connections_is_a_502_in_json() {
    // Bind then drop: nothing listens on the port any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut gateway =
        spawn_gateway(GatewayConfig::new().plain(&format!("http://127.0.0.1:{port}"))).await;
    let (parts, body) = get(&gateway.url("/v/x")).await;
    assert_eq!(parts.status, StatusCode::BAD_GATEWAY);
    assert_eq!(parts.headers["content-type"], "application/json");
    assert!(parts.headers.contains_key("x-request-id"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "upstream_unreachable");
    assert!(
        !body.windows(9).any(|w| w == b"127.0.0.1"),
        "error names internals"
    );
    // Failed exchanges are counted by kind (their latency is not recorded).
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(
            r#"erasure_gateway_upstream_errors_total{upstream="vendor",kind="upstream_unreachable"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"erasure_gateway_request_duration_seconds_count{upstream="vendor"} 1"#),
        "{metrics}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_hanging_upstream_is_a_504_within_the_configured_timeout() {
    let vendor = spawn_vendor(Behaviour::Hang).await;
    let mut gateway = spawn_gateway(
        GatewayConfig::new()
            .plain(&vendor)
            .proxy("upstream_timeout", "300ms"),
    )
    .await;
    let started = Instant::now();
    let (parts, body) = get(&gateway.url("/v/x")).await;
    let elapsed = started.elapsed();
    assert_eq!(parts.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(String::from_utf8_lossy(&body).contains("upstream_timeout"));
    assert!(
        elapsed >= Duration::from_millis(300),
        "answered before the timeout: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "timeout not enforced: {elapsed:?}"
    );
    assert_eq!(vendor.received().len(), 1);
    gateway.stop().await;
}

#[tokio::test]
async fn a_request_past_upstream_max_connections_waits_then_is_refused_unsent() {
    let (vendor, requests) = spawn_partial_vendor(AfterPartial::Wait).await;
    let mut gateway = spawn_gateway(
        GatewayConfig::new()
            .plain(vendor.as_str())
            .proxy("upstream_max_connections", 1)
            .proxy("upstream_timeout", "300ms"),
    )
    .await;
    let client = http1_client();
    // Its head is relayed, its body never ends: it holds the one slot.
    let first = client
        .request(request("GET", &gateway.url("/v/first"), ""))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let started = Instant::now();
    let (parts, body) = get(&gateway.url("/v/second")).await;
    assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "upstream_busy", "{json}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited for a slot"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1, "never sent");
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(
            r#"erasure_gateway_upstream_errors_total{upstream="vendor",kind="upstream_busy"} 1"#
        ),
        "{metrics}"
    );
    // The slot comes back with the first body: the next request is sent.
    drop(first);
    let mut third = None;
    for _ in 0..10 {
        let response = client
            .request(request("GET", &gateway.url("/v/third"), ""))
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            third = Some(response);
            break;
        }
    }
    assert!(third.is_some(), "the slot was given back");
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    drop(third);
    gateway.stop().await;
}

#[tokio::test]
async fn an_unrouted_request_gets_a_json_404_naming_no_internals() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let mut gateway = spawn_gateway(GatewayConfig::new().plain(&vendor)).await;
    for path in ["/nowhere", "/V/x", "/vx"] {
        let (parts, body) = get(&gateway.url(path)).await;
        assert_eq!(parts.status, StatusCode::NOT_FOUND, "{path}");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "not_routed");
        assert!(!String::from_utf8_lossy(&body).contains(&vendor.addr().port().to_string()));
    }
    let (parts, _) = get(&gateway.url("/v/../v/x")).await;
    assert_eq!(
        parts.status,
        StatusCode::BAD_REQUEST,
        "dot segments are refused"
    );
    assert!(vendor.received().is_empty());
    gateway.stop().await;
}

#[tokio::test]
async fn requests_beyond_the_concurrency_bound_get_a_503() {
    let vendor = spawn_vendor(Behaviour::Slow(Duration::from_millis(1500))).await;
    let mut gateway = spawn_gateway(
        GatewayConfig::new()
            .plain(&vendor)
            .proxy("max_concurrency", 1),
    )
    .await;
    let client = http1_client();
    let first = tokio::spawn({
        let client = client.clone();
        let url = gateway.url("/v/slow");
        async move {
            send(&client, request("GET", &url, ""))
                .await
                .unwrap()
                .0
                .status
        }
    });
    // Wait until the first request occupies the only slot.
    for _ in 0..100 {
        if !vendor.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (parts, body) = send(&client, request("GET", &gateway.url("/v/second"), ""))
        .await
        .unwrap();
    assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(String::from_utf8_lossy(&body).contains("overloaded"));
    assert!(parts.headers.contains_key("x-request-id"));
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    assert_eq!(vendor.received().len(), 1);
    gateway.stop().await;
}

#[tokio::test]
async fn passthrough_deny_refuses_calls_that_are_not_erasure_calls() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let mut gateway = spawn_gateway(
        GatewayConfig::new()
            .plain(&vendor)
            .proxy("passthrough", "deny"),
    )
    .await;
    let (parts, _) = get(&gateway.url("/v/x")).await;
    assert_eq!(parts.status, StatusCode::FORBIDDEN);
    assert!(vendor.received().is_empty());
    gateway.stop().await;
}

#[tokio::test]
async fn admin_reports_health_readiness_and_metrics() {
    let vendor = spawn_vendor(Behaviour::Echo).await;
    let mut gateway = spawn_gateway(GatewayConfig::new().plain(&vendor)).await;
    let client = http1_client();
    send(&client, request("GET", &gateway.url("/v/x"), ""))
        .await
        .unwrap();
    send(&client, request("GET", &gateway.url("/nowhere"), ""))
        .await
        .unwrap();

    let (health, _) = send(&client, request("GET", &gateway.admin_url("/healthz"), ""))
        .await
        .unwrap();
    assert_eq!(health.status, 200);
    let (ready, body) = send(&client, request("GET", &gateway.admin_url("/readyz"), ""))
        .await
        .unwrap();
    assert_eq!(ready.status, 200, "{}", String::from_utf8_lossy(&body));
    let (metrics, text) = send(&client, request("GET", &gateway.admin_url("/metrics"), ""))
        .await
        .unwrap();
    assert_eq!(metrics.status, 200);
    assert!(metrics.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains(r#"erasure_gateway_requests_total{upstream="vendor",code="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"erasure_gateway_requests_total{upstream="none",code="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"erasure_gateway_upstream_latency_seconds_count{upstream="vendor"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("erasure_gateway_requests_in_flight 0"),
        "{text}"
    );
    // Admin errors come in the gateway's error body with the request id,
    // in the body and the header alike.
    let mut nope = request("GET", &gateway.admin_url("/nope"), "");
    nope.headers_mut()
        .insert("x-request-id", "admin-probe-7".parse().unwrap());
    let (missing, body) = send(&client, nope).await.unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.headers["x-request-id"], "admin-probe-7");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert_eq!(body["error"]["request_id"], "admin-probe-7", "{body}");
    let (put, body) = send(&client, request("PUT", &gateway.admin_url("/healthz"), ""))
        .await
        .unwrap();
    assert_eq!(put.status, 405);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["error"]["request_id"],
        put.headers["x-request-id"].to_str().unwrap(),
        "{body}"
    );
    gateway.stop().await;
}

/// An HTTP/2 client on a raw connection to the gateway (prior knowledge).
async fn raw_h2(
    addr: std::net::SocketAddr,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    (client, tokio::spawn(connection))
}

/// One HTTP/2 frame: 9-byte header and payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

#[tokio::test]
async fn http2_rapid_reset_closes_the_connection_with_enhance_your_calm() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let vendor = spawn_vendor(Behaviour::Hang).await;
    let mut gateway = spawn_gateway(
        GatewayConfig::new()
            .plain(&vendor)
            .proxy("h2_max_pending_accept_reset_streams", 5),
    )
    .await;
    // Written by hand so that every HEADERS and its RST_STREAM arrive in one
    // burst, before the gateway can accept the stream: the attack's shape.
    let mut attack = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    attack.extend(h2_frame(0x4, 0, 0, &[]));
    // :method GET, :scheme http, :path /v/slow, :authority 127.0.0.1 (HPACK).
    let mut block = vec![0x82, 0x86, 0x44, 7];
    block.extend_from_slice(b"/v/slow");
    block.extend([0x41, 9]);
    block.extend_from_slice(b"127.0.0.1");
    for n in 0..200u32 {
        let stream = 2 * n + 1;
        attack.extend(h2_frame(0x1, 0x5, stream, &block));
        attack.extend(h2_frame(0x3, 0, stream, &0x8u32.to_be_bytes()));
    }
    let mut tcp = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    tcp.write_all(&attack).await.unwrap();
    let mut seen = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the gateway closes the connection");
    let mut goaway = None;
    let mut at = 0;
    while at + 9 <= seen.len() {
        let len = usize::from(seen[at]) << 16
            | usize::from(seen[at + 1]) << 8
            | usize::from(seen[at + 2]);
        let payload = &seen[at + 9..(at + 9 + len).min(seen.len())];
        if seen[at + 3] == 0x7 && payload.len() >= 8 {
            goaway = Some(u32::from_be_bytes([
                payload[4], payload[5], payload[6], payload[7],
            ]));
        }
        at += 9 + len;
    }
    assert_eq!(goaway, Some(0xb), "GOAWAY with ENHANCE_YOUR_CALM");
    assert!(
        vendor.received().len() < 200,
        "the flood did not reach the vendor whole"
    );
    // The gateway still serves everyone else.
    let (parts, _) = send(&h2c_client(), request("GET", &gateway.url("/nowhere"), ""))
        .await
        .unwrap();
    assert_eq!(parts.status, StatusCode::NOT_FOUND);
    gateway.stop().await;
}

#[tokio::test]
async fn http2_stream_flood_is_bounded_by_the_configured_concurrent_streams() {
    let vendor = spawn_vendor(Behaviour::Hang).await;
    let mut gateway = spawn_gateway(
        GatewayConfig::new()
            .plain(&vendor)
            .proxy("h2_max_concurrent_streams", 4)
            .proxy("upstream_timeout", "20s"),
    )
    .await;
    let (client, _connection) = raw_h2(gateway.addr).await;
    let mut client = client.ready().await.unwrap();
    // One round trip, so that the gateway's SETTINGS have arrived.
    let probe = http::Request::get(gateway.url("/nowhere"))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(probe, true).unwrap();
    assert_eq!(response.await.unwrap().status(), StatusCode::NOT_FOUND);
    let mut client = client.ready().await.unwrap();
    let url = gateway.url("/v/hang");
    let mut responses = Vec::new();
    for _ in 0..40 {
        let request = http::Request::get(&url).body(()).unwrap();
        // Streams past the bound wait at the client; none is refused.
        let (response, _) = client.send_request(request, true).unwrap();
        responses.push(response);
        client = client.ready().await.unwrap();
    }
    assert_eq!(client.current_max_send_streams(), 4);
    let deadline = Instant::now() + Duration::from_secs(5);
    while vendor.received().len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        vendor.received().len(),
        4,
        "only the advertised number of streams reached the gateway at once"
    );
    drop(responses);
    gateway.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_one_it_names_and_no_one_else_can_say_so() {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let token = "proxy-officer-token";
    let erase = |gateway: &support::Gateway, xff: &str| {
        let (url, xff) = (gateway.url("/seam/customers/delete_data"), xff.to_owned());
        async move {
            support::call(
                "POST",
                &url,
                &[
                    ("authorization", &support::bearer(token)),
                    support::JSON,
                    ("x-forwarded-for", &xff),
                ],
                r#"{"customer_keys":["c-1"]}"#,
            )
            .await
            .0
            .status
        }
    };
    for (trusted, want_ip, want_via) in [
        (true, "203.0.113.7", Some("127.0.0.1")),
        (false, "127.0.0.1", None),
    ] {
        let mut config = GatewayConfig::new()
            .caller("ops", token, &["privacy-officer"])
            .vendor("seam", &seam);
        if trusted {
            config = config.proxy(
                "trusted_proxies",
                toml::Value::Array(vec!["127.0.0.1/32".into(), "10.0.0.0/8".into()]),
            );
        }
        let mut gateway = spawn_gateway(config).await;
        // A forged hop on the left; the load balancer's own hop on the right.
        assert_eq!(erase(&gateway, "6.6.6.6, 203.0.113.7, 10.0.0.9").await, 200);
        let decision = gateway
            .trail()
            .into_iter()
            .find(|r| r["kind"] == "decision")
            .unwrap();
        assert_eq!(decision["client"]["ip"], want_ip, "trusted = {trusted}");
        assert_eq!(decision["context"]["client_ip"], want_ip);
        assert_eq!(decision["client"]["via"].as_str(), want_via);
        let seen = seam.received();
        assert_eq!(seen.last().unwrap().headers["x-forwarded-for"], want_ip);
        gateway.stop().await;
    }
    let bad = GatewayConfig::new()
        .proxy(
            "trusted_proxies",
            toml::Value::Array(vec!["10.0.0.0/33".into()]),
        )
        .toml();
    let error = erasure_gateway::config::Config::parse(&bad, Path::new("gw.toml")).unwrap_err();
    assert!(error.to_string().contains("trusted_proxies"), "{error}");
}
