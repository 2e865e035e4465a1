//! Erasure calls end to end: the real gateway in front of stand-in Seam,
//! Kore.ai and BotPenguin servers, decided by the shipped policies.
//!
//! The assertion that matters most: a refused call leaves the stand-in
//! vendor's recorder empty.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    self, bearer, h2c_client, http1_client, send, spawn_gateway, spawn_partial_vendor,
    spawn_vendor, AfterPartial, Behaviour, Endpoint, GatewayConfig, StandIn, JSON,
};

const OFFICER: &str = "officer-token-1";
const BULK: &str = "bulk-officer-token-1";
const NO_ROLE: &str = "plain-token-1";
const SEAM_PAT: &str = "seam_at_pat_officer1";
const JWT_SECRET: &str = "test-only-hs256-secret-not-for-production-use";

fn jwt(sub: &str, exp_offset: i64, secret: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": sub, "exp": now + exp_offset, "iat": now}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

struct Env {
    gateway: support::Gateway,
    seam: StandIn,
    kore: StandIn,
    botpenguin: StandIn,
}

/// The three vendors behind one gateway, with the test callers.
async fn env() -> Env {
    env_with(GatewayConfig::new()).await
}

/// [`env`], on top of `config`.
async fn env_with(config: GatewayConfig) -> Env {
    let seam = spawn_vendor(Behaviour::Echo).await;
    let kore = spawn_vendor(Behaviour::Echo).await;
    let botpenguin = spawn_vendor(Behaviour::Echo).await;
    let config = config
        .jwt_hs256(JWT_SECRET)
        .caller("privacy-ops", OFFICER, &["privacy-officer"])
        .caller("bulk-ops", BULK, &["privacy-officer", "bulk-eraser"])
        .caller("intern", NO_ROLE, &[])
        .caller("seam-pat-ops", SEAM_PAT, &["privacy-officer"])
        .jwt_caller("kore-officer", &["privacy-officer"])
        .vendor("seam", &seam)
        .vendor("kore", &kore)
        .vendor("botpenguin", &botpenguin);
    let gateway = spawn_gateway(config).await;
    Env {
        gateway,
        seam,
        kore,
        botpenguin,
    }
}

impl Env {
    /// `POST` of Seam's erasure path with `authorization` and a JSON `body`.
    async fn seam_erase(&self, authorization: &str, body: &str) -> (http::response::Parts, Value) {
        self.gateway
            .call(
                "POST",
                "/seam/customers/delete_data",
                &[("authorization", authorization), JSON],
                body,
            )
            .await
    }

    /// `DELETE` of Kore.ai's erasure path with `token` in `auth` and a JSON
    /// `body`.
    async fn kore_erase(&self, token: &str, body: &str) -> (http::response::Parts, Value) {
        self.gateway
            .call(
                "DELETE",
                "/kore/api/public/bot/eraseUsersData",
                &[("auth", token), JSON],
                body,
            )
            .await
    }

    fn received(&self) -> usize {
        self.seam.count() + self.kore.count() + self.botpenguin.count()
    }
}

#[tokio::test]
async fn seam_body_and_query_forms_are_allowed_for_a_privacy_officer() {
    let mut env = env().await;
    let auth = bearer(OFFICER);
    let body = r#"{"customer_keys":["cust-1","cust-2"],"user_keys":["user-9"]}"#;
    let (parts, _) = env.seam_erase(&auth, body).await;
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers["x-erasure-decision"], "allow");

    let (parts, _) = env.gateway.call("DELETE",
        "/seam/customers/delete_data?customer_keys=cust-1&customer_keys=cust-2&user_keys=user-9",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers["x-erasure-decision"], "allow");

    let seen = env.seam.received();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path_and_query, "/customers/delete_data");
    assert_eq!(
        &seen[0].body[..],
        body.as_bytes(),
        "body forwarded byte for byte"
    );
    assert_eq!(
        seen[1].path_and_query,
        "/customers/delete_data?customer_keys=cust-1&customer_keys=cust-2&user_keys=user-9"
    );
    env.gateway.stop().await;
}

#[tokio::test]
async fn kore_documented_sample_is_allowed_for_a_verified_jwt_officer() {
    let mut env = env().await;
    let token = jwt("kore-officer", 300, JWT_SECRET);
    let body = r#"{
    "userIds": ["u-ordinary-0001"],
    "botIds": ["st-11111111-2222-333-4444-555555555555"],
    "RemoveDataFromAllBots": true
  }"#;
    let (parts, _) = env.kore_erase(&token, body).await;
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers["x-erasure-decision"], "allow");
    assert_eq!(env.kore.received().len(), 1);
    env.gateway.stop().await;
}

#[tokio::test]
async fn kore_account_owner_is_never_erased() {
    let mut env = env().await;
    let token = jwt("kore-officer", 300, JWT_SECRET);
    let body = r#"{"userIds":["u-ordinary-0001","owner@example.com"]}"#;
    let (parts, json) = env.kore_erase(&token, body).await;
    assert_eq!(parts.status, StatusCode::FORBIDDEN);
    assert_eq!(parts.headers["x-erasure-decision"], "deny");
    assert_eq!(parts.headers["content-type"], "application/json");
    let msg = json["errors"][0]["msg"].as_str().unwrap();
    assert!(msg.contains("kore-never-erase-account-owners"), "{json}");
    assert_eq!(json["errors"][0]["code"], 403);
    assert_eq!(env.received(), 0, "a denied call must not reach the vendor");
    env.gateway.stop().await;
}

#[tokio::test]
async fn kore_bot_co_developer_is_never_erased() {
    let mut env = env().await;
    let token = jwt("kore-officer", 300, JWT_SECRET);
    let body = r#"{"userIds":["u-codev-0001"],"botIds":[],"RemoveDataFromAllBots":false}"#;
    let (parts, json) = env.kore_erase(&token, body).await;
    assert_eq!(parts.status, StatusCode::FORBIDDEN);
    assert!(
        json.to_string().contains("kore-never-erase-bot-developers"),
        "{json}"
    );
    assert_eq!(env.received(), 0);
    env.gateway.stop().await;
}

#[tokio::test]
async fn seam_personal_access_token_needs_the_workspace_header() {
    let mut env = env().await;
    let auth = bearer(SEAM_PAT);
    let body = r#"{"customer_keys":["cust-1"]}"#;
    let (parts, json) = env.seam_erase(&auth, body).await;
    assert_eq!(parts.status, StatusCode::FORBIDDEN);
    assert_eq!(json["error"]["type"], "erasure_denied_by_policy");
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("seam-pat-requires-workspace"));
    assert_eq!(
        json["error"]["request_id"],
        parts.headers["x-request-id"].to_str().unwrap()
    );
    assert_eq!(
        parts.headers["seam-request-id"],
        parts.headers["x-request-id"]
    );
    assert_eq!(env.received(), 0);

    let (parts, _) = env
        .gateway
        .call(
            "POST",
            "/seam/customers/delete_data",
            &[("authorization", &auth), ("seam-workspace", "ws_1"), JSON],
            body,
        )
        .await;
    assert_eq!(parts.status, 200);
    assert_eq!(env.seam.received().len(), 1);
    env.gateway.stop().await;
}

#[tokio::test]
async fn anonymous_and_role_less_callers_are_denied_in_botpenguin_shape() {
    let mut env = env().await;
    for (headers, policy) in [
        (vec![("authtype", "Key")], Some("deny-anonymous")),
        (
            vec![
                ("authorization", "Bearer unknown-token"),
                ("authtype", "Key"),
            ],
            Some("deny-anonymous"),
        ),
        (
            vec![
                ("authorization", "Bearer plain-token-1"),
                ("authtype", "Key"),
            ],
            None,
        ),
    ] {
        let (parts, json) = env
            .gateway
            .call("DELETE", "/botpenguin/customer/cust-42", &headers, "")
            .await;
        assert_eq!(parts.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert_eq!(json["success"], false);
        assert_eq!(json["code"], 403);
        let message = json["message"].as_str().unwrap();
        match policy {
            Some(id) => assert!(message.contains(id), "{message}"),
            None => assert!(message.contains("no policy permits"), "{message}"),
        }
    }
    let auth = bearer(OFFICER);
    let (parts, _) = env
        .gateway
        .call(
            "DELETE",
            "/botpenguin/customer/cust-42",
            &[("authorization", &auth), ("authtype", "Key")],
            "",
        )
        .await;
    assert_eq!(parts.status, 200);
    let seen = env.botpenguin.received();
    assert_eq!(seen.len(), 1, "only the officer's call reached BotPenguin");
    assert_eq!(seen[0].path_and_query, "/customer/cust-42");
    env.gateway.stop().await;
}

#[tokio::test]
async fn more_than_fifty_targets_need_the_bulk_role() {
    let mut env = env().await;
    let keys: Vec<String> = (0..51).map(|i| format!("space-{i}")).collect();
    let body = json!({ "space_keys": keys }).to_string();
    let officer = bearer(OFFICER);
    let (parts, json) = env.seam_erase(&officer, &body).await;
    assert_eq!(parts.status, StatusCode::FORBIDDEN);
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bulk-erasure-requires-role"));
    assert_eq!(env.received(), 0);
    let bulk = bearer(BULK);
    let (parts, _) = env.seam_erase(&bulk, &body).await;
    assert_eq!(parts.status, 200);
    assert_eq!(env.seam.received().len(), 1);
    env.gateway.stop().await;
}

#[tokio::test]
async fn a_jwt_with_a_bad_signature_or_expired_is_a_401_in_kore_shape() {
    let mut env = env().await;
    let body = r#"{"userIds":["u-ordinary-0001"]}"#;
    for token in [
        jwt(
            "kore-officer",
            300,
            "another-secret-that-is-also-long-enough-000",
        ),
        jwt("kore-officer", -3600, JWT_SECRET),
    ] {
        let (parts, json) = env.kore_erase(&token, body).await;
        assert_eq!(parts.status, StatusCode::UNAUTHORIZED, "{json}");
        assert_eq!(json["errors"][0]["code"], 401);
        assert!(
            !json.to_string().contains(&token),
            "the token must not be echoed"
        );
    }
    assert_eq!(env.received(), 0);
    env.gateway.stop().await;
}

#[tokio::test]
async fn malformed_erasure_bodies_are_refused_with_400_and_never_forwarded() {
    let mut env = env_with(GatewayConfig::new().proxy("max_body_bytes", 4096)).await;
    let token = jwt("kore-officer", 300, JWT_SECRET);
    let big = json!({ "userIds": vec!["u-ordinary-0001"; 400] }).to_string();
    let cases: Vec<(&str, String, u16)> = vec![
        ("not json", "userIds=u-1".into(), 400),
        ("not an object", r#"["u-1"]"#.into(), 400),
        (
            "duplicate key",
            r#"{"userIds":["u-ordinary-0001"],"userIds":["owner@example.com"]}"#.into(),
            400,
        ),
        (
            "nested duplicate key",
            r#"{"userIds":[{"channel_id":"a","channel_id":"b","channel_user_id":"c"}]}"#.into(),
            400,
        ),
        (
            "unknown field",
            r#"{"userIds":["u-1"],"deleteEverything":true}"#.into(),
            400,
        ),
        ("empty id", r#"{"userIds":[""]}"#.into(), 400),
        ("numeric id", r#"{"userIds":[42]}"#.into(), 400),
        ("wrong type", r#"{"userIds":"u-1"}"#.into(), 400),
        ("no targets", r#"{"userIds":[]}"#.into(), 400),
        ("too large", big, 413),
    ];
    for (name, body, status) in cases {
        let (parts, json) = env.kore_erase(&token, &body).await;
        assert_eq!(parts.status.as_u16(), status, "{name}: {json}");
        assert!(
            json["errors"][0]["msg"].is_string(),
            "{name}: Kore shape: {json}"
        );
        assert_eq!(parts.headers["x-erasure-decision"], "deny", "{name}");
    }
    assert_eq!(env.received(), 0);
    env.gateway.stop().await;
}

/// Requests an upstream could read as the erasure call: decided exactly, or
/// refused — never passed through undecided. Every row carries an officer's
/// credential, so a row wrongly classified as "not erasure" would reach the
/// vendor and fail the recorder check.
#[tokio::test]
async fn the_bypass_matrix_never_reaches_a_vendor_undecided() {
    let mut env = env().await;
    let officer = bearer(OFFICER);
    let token = jwt("kore-officer", 300, JWT_SECRET);
    let seam_body = r#"{"customer_keys":["cust-1"]}"#;
    let kore_body = r#"{"userIds":["owner@example.com"]}"#;
    // (method, path, extra header, body, expected status)
    type Row<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>, &'a str, u16);
    let rows: Vec<Row> = vec![
        // Seam
        ("POST", "/seam/customers/delete_data/", None, seam_body, 400),
        ("POST", "/seam/Customers/Delete_Data", None, seam_body, 400),
        (
            "POST",
            "/seam/customers%2Fdelete_data",
            None,
            seam_body,
            400,
        ),
        (
            "POST",
            "/seam/customers/delete%5Fdata",
            None,
            seam_body,
            400,
        ),
        ("POST", "/seam//customers/delete_data", None, seam_body, 400),
        ("POST", "/seam/customers//delete_data", None, seam_body, 400),
        (
            "POST",
            "/seam/customers/delete_data;x=1",
            None,
            seam_body,
            400,
        ),
        (
            "POST",
            "/seam/customers/delete_data?customer_keys=cust-1",
            None,
            seam_body,
            400,
        ),
        (
            "PUT",
            "/seam/customers/delete_data",
            Some(("x-http-method-override", "POST")),
            seam_body,
            400,
        ),
        (
            "POST",
            "/seam/customers/other",
            Some(("x-http-method-override", "DELETE")),
            "{}",
            200,
        ),
        // Kore
        (
            "DELETE",
            "/kore/api/public/bot/eraseusersdata",
            None,
            kore_body,
            400,
        ),
        (
            "DELETE",
            "/kore/api/public/bot/eraseUsersData/",
            None,
            kore_body,
            400,
        ),
        (
            "DELETE",
            "/kore/api/public/bot/%65raseUsersData",
            None,
            kore_body,
            400,
        ),
        (
            "DELETE",
            "/kore/api/public/bot/eraseUsersData?userIds=owner@example.com",
            None,
            kore_body,
            400,
        ),
        (
            "POST",
            "/kore/api/public/bot/eraseUsersData",
            Some(("x-http-method-override", "DELETE")),
            kore_body,
            400,
        ),
        (
            "POST",
            "/kore/api/public/bot/eraseUsersData",
            Some(("x-http-method", "DELETE")),
            kore_body,
            400,
        ),
        (
            "POST",
            "/kore/api/public/bot/eraseUsersData",
            Some(("x-method-override", "DELETE")),
            kore_body,
            400,
        ),
        (
            "DELETE",
            "/kore/api/public/bot/eraseUsersData",
            None,
            kore_body,
            403,
        ),
        // BotPenguin
        ("DELETE", "/botpenguin/customer/cust-1/", None, "", 400),
        ("DELETE", "/botpenguin/Customer/cust-1", None, "", 400),
        ("DELETE", "/botpenguin/customer/cust%2F1", None, "", 400),
        ("DELETE", "/botpenguin/customer/cust-1;v=2", None, "", 400),
        (
            "POST",
            "/botpenguin/customer/cust-1",
            Some(("x-http-method-override", "DELETE")),
            "",
            400,
        ),
        // Dot segments are refused before any profile sees them.
        ("DELETE", "/botpenguin/x/../customer/cust-1", None, "", 400),
        (
            "DELETE",
            "/botpenguin/customer/%2e%2e/customer/cust-1",
            None,
            "",
            400,
        ),
    ];
    for (method, path, extra, body, status) in &rows {
        let before = env.received();
        let mut headers = vec![
            ("authorization", officer.as_str()),
            ("auth", token.as_str()),
            JSON,
        ];
        if let Some(h) = extra {
            headers.push(*h);
        }
        let (parts, json) = env.gateway.call(method, path, &headers, body).await;
        assert_eq!(
            parts.status.as_u16(),
            *status,
            "{method} {path} {extra:?}: {json}"
        );
        let reached = env.received() - before;
        if *status == 200 {
            assert_eq!(
                reached, 1,
                "{method} {path}: a non-erasure call passes through"
            );
        } else {
            assert_eq!(reached, 0, "{method} {path} {extra:?} reached the vendor");
        }
    }
    // A read of the same BotPenguin resource is not an erasure call.
    let (parts, _) = env
        .gateway
        .call(
            "GET",
            "/botpenguin/customer/cust-1",
            &[("authorization", &officer)],
            "",
        )
        .await;
    assert_eq!(parts.status, 200);
    assert!(!parts.headers.contains_key("x-erasure-decision"));
    env.gateway.stop().await;
}

#[tokio::test]
async fn http2_and_chunked_bodies_are_buffered_and_decided() {
    let mut env = env().await;
    let token = jwt("kore-officer", 300, JWT_SECRET);
    // HTTP/2 (h2c): the owner is refused, the ordinary user allowed.
    for (user, status) in [("owner@example.com", 403), ("u-ordinary-0001", 200)] {
        let mut req = support::request(
            "DELETE",
            &env.gateway.url("/kore/api/public/bot/eraseUsersData"),
            json!({ "userIds": [user] }).to_string(),
        );
        req.headers_mut().insert("auth", token.parse().unwrap());
        req.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        let (parts, _) = send(&h2c_client(), req).await.unwrap();
        assert_eq!(parts.version, http::Version::HTTP_2);
        assert_eq!(parts.status.as_u16(), status, "h2 {user}");
    }
    assert_eq!(env.kore.received().len(), 1);

    // HTTP/1.1 chunked, written by hand so the body has no length.
    let body = br#"{"userIds":["owner@example.com"]}"#;
    let head = format!(
        "DELETE /kore/api/public/bot/eraseUsersData HTTP/1.1\r\nhost: gw\r\nauth: {token}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(env.gateway.addr)
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(7) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        stream.write_all(chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(
        answer.contains("kore-never-erase-account-owners"),
        "{answer}"
    );
    assert_eq!(
        env.kore.received().len(),
        1,
        "the chunked owner erasure never reached Kore"
    );
    env.gateway.stop().await;
}

#[tokio::test]
async fn shadow_mode_forwards_a_denied_call_and_marks_it() {
    let mut env = env_with(GatewayConfig::new().policies("mode", "shadow")).await;
    let token = jwt("kore-officer", 300, JWT_SECRET);
    let body = r#"{"userIds":["owner@example.com"]}"#;
    let (parts, _) = env.kore_erase(&token, body).await;
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers["x-erasure-decision"], "would-deny");
    assert_eq!(env.kore.received().len(), 1);
    // Malformed calls are still refused: shadow mode decides, it does not guess.
    let (parts, _) = env.kore_erase(&token, "{").await;
    assert_eq!(parts.status, 400);
    assert_eq!(env.kore.received().len(), 1);
    env.gateway.stop().await;
}

/// A stand-in entity directory: `GET /{type}/{id}` from a fixed map,
/// each answer taking `delay`.
async fn spawn_directory(entities: HashMap<String, Value>, delay: Duration) -> StandIn {
    let answers = entities
        .into_iter()
        .map(|(path, entity)| (path, entity.to_string()))
        .collect();
    spawn_vendor(Behaviour::ByPath {
        answers: Arc::new(answers),
        delay,
    })
    .await
}

/// How often the stand-in directory was asked for each path.
fn hits(directory: &StandIn) -> HashMap<String, usize> {
    let mut hits = HashMap::new();
    for seen in directory.received() {
        let path = seen.path_and_query.split('?').next().unwrap_or_default();
        *hits.entry(path.to_owned()).or_insert(0) += 1;
    }
    hits
}

/// A configuration consulting the entity directory at `url`.
fn with_directory(url: &str) -> GatewayConfig {
    GatewayConfig::new()
        .policies("directory_url", url)
        .policies("directory_timeout", "500ms")
}

#[tokio::test]
async fn the_directory_decides_unknown_users_hit_miss_and_coalesced() {
    let owner = json!({
        "uid": {"type": "Kore::User", "id": "u-dir-owner"},
        "attrs": {"account_owner": true},
        "parents": []
    });
    let mut entities = HashMap::new();
    entities.insert("/Kore%3A%3AUser/u-dir-owner".to_owned(), owner);
    let directory = spawn_directory(entities, Duration::from_millis(150)).await;
    let mut env = env_with(with_directory(&directory.url())).await;
    let token = jwt("kore-officer", 300, JWT_SECRET);
    let path = "/kore/api/public/bot/eraseUsersData";

    // Hit: the directory says this user owns an account.
    let (parts, json) = env
        .kore_erase(&token, r#"{"userIds":["u-dir-owner"]}"#)
        .await;
    assert_eq!(parts.status, 403, "{json}");
    assert!(json.to_string().contains("kore-never-erase-account-owners"));

    // Miss: no such entity → an ordinary user.
    let (parts, _) = env
        .kore_erase(&token, r#"{"userIds":["u-dir-nobody"]}"#)
        .await;
    assert_eq!(parts.status, 200);

    // Entities in entities.json are not fetched.
    let (parts, _) = env
        .kore_erase(&token, r#"{"userIds":["u-ordinary-0001"]}"#)
        .await;
    assert_eq!(parts.status, 200);
    assert!(!hits(&directory)
        .keys()
        .any(|k| k.contains("u-ordinary-0001")));

    // Twenty concurrent calls for one uncached user: one directory fetch.
    let mut calls = Vec::new();
    for _ in 0..20 {
        let url = env.gateway.url(path);
        let token = token.clone();
        calls.push(tokio::spawn(async move {
            let headers = [("auth", token.as_str()), JSON];
            support::call("DELETE", &url, &headers, r#"{"userIds":["u-dir-fresh"]}"#)
                .await
                .0
                .status
        }));
    }
    for c in calls {
        assert_eq!(c.await.unwrap(), 200);
    }
    let hits = hits(&directory);
    assert_eq!(
        hits.get("/Kore%3A%3AUser/u-dir-fresh"),
        Some(&1),
        "{hits:?}"
    );
    assert_eq!(
        hits.get("/Kore%3A%3AUser/u-dir-owner"),
        Some(&1),
        "{hits:?}"
    );
    assert_eq!(directory.count(), 3);
    // Each fetch is a miss; every other lookup a hit (the coalesced ones
    // included: they did not fetch).
    let metrics = env.gateway.metrics().await;
    assert!(
        metrics.contains(r#"erasure_gateway_directory_lookups_total{result="miss"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"erasure_gateway_directory_lookups_total{result="hit"} 19"#),
        "{metrics}"
    );
    env.gateway.stop().await;
}

#[tokio::test]
async fn a_directory_that_is_down_or_slow_refuses_the_call_with_503() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let slow = spawn_directory(HashMap::new(), Duration::from_secs(5)).await;
    for url in [format!("http://{closed}"), slow.url()] {
        let mut env = env_with(with_directory(&url)).await;
        let token = jwt("kore-officer", 300, JWT_SECRET);
        let (parts, json) = env.kore_erase(&token, r#"{"userIds":["u-unknown"]}"#).await;
        assert_eq!(parts.status, 503, "{json}");
        assert!(json["errors"][0]["msg"].is_string());
        assert_eq!(env.received(), 0);
        env.gateway.stop().await;
    }
}

#[tokio::test]
async fn non_erasure_calls_pass_through_untouched_and_undecided() {
    let mut env = env().await;
    let (parts, _) = env
        .gateway
        .call(
            "GET",
            "/seam/devices/list",
            &[("authorization", "Bearer whatever")],
            "",
        )
        .await;
    assert_eq!(parts.status, 200);
    assert!(!parts.headers.contains_key("x-erasure-decision"));
    let (parts, _) = env
        .gateway
        .call(
            "POST",
            "/kore/api/public/bot/st-1/users",
            &[JSON],
            "{\"a\":1}",
        )
        .await;
    assert_eq!(parts.status, 200);
    assert_eq!(env.received(), 2);
    env.gateway.stop().await;
}

/// Whether the upstream could read a request that reached it as the erasure
/// call: its path normalised the way a lenient server might (decoded, case
/// folded, slashes collapsed, `;params` and trailing slash dropped) matches,
/// and the method (or an override header) is one that erases.
fn upstream_could_erase(vendor: &str, seen: &support::Received) -> bool {
    let raw = seen.path_and_query.split('?').next().unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .to_lowercase();
    let segments: Vec<&str> = decoded
        .split('/')
        .map(|s| s.split(';').next().unwrap_or_default())
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let overridden = [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ]
    .iter()
    .any(|h| seen.headers.contains_key(*h));
    let method = seen.method.as_str().to_ascii_uppercase();
    match vendor {
        "seam" => segments == ["customers", "delete_data"],
        "kore" => segments == ["api", "public", "bot", "eraseusersdata"],
        _ => segments.len() == 2 && segments[0] == "customer" && (method == "DELETE" || overridden),
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipCase(usize),
    DoubleSlash(usize),
    TrailingSlash,
    Encode(usize),
    PathParam,
    Method(&'static str),
    Override(&'static str),
    QueryParams,
    BodyByte(usize, u8),
    BodyDuplicateKey,
}

fn mutation() -> impl proptest::strategy::Strategy<Value = Mutation> {
    use proptest::prelude::*;
    prop_oneof![
        (0usize..64).prop_map(Mutation::FlipCase),
        (0usize..64).prop_map(Mutation::DoubleSlash),
        Just(Mutation::TrailingSlash),
        (0usize..64).prop_map(Mutation::Encode),
        Just(Mutation::PathParam),
        prop::sample::select(vec![
            "GET", "POST", "PUT", "PATCH", "DELETE", "delete", "OPTIONS"
        ])
        .prop_map(Mutation::Method),
        prop::sample::select(vec![
            "x-http-method-override",
            "x-http-method",
            "x-method-override"
        ])
        .prop_map(Mutation::Override),
        Just(Mutation::QueryParams),
        (0usize..64, any::<u8>()).prop_map(|(i, b)| Mutation::BodyByte(i, b)),
        Just(Mutation::BodyDuplicateKey),
    ]
}

struct Seed {
    vendor: &'static str,
    method: &'static str,
    prefix: &'static str,
    path: &'static str,
    body: &'static str,
}

const SEEDS: [Seed; 3] = [
    Seed {
        vendor: "seam",
        method: "POST",
        prefix: "/seam",
        path: "/customers/delete_data",
        body: r#"{"customer_keys":["cust-1"],"user_keys":["u-1"]}"#,
    },
    Seed {
        vendor: "kore",
        method: "DELETE",
        prefix: "/kore",
        path: "/api/public/bot/eraseUsersData",
        body: r#"{"userIds":["u-ordinary-0001"],"botIds":["st-1"],"RemoveDataFromAllBots":false}"#,
    },
    Seed {
        vendor: "botpenguin",
        method: "DELETE",
        prefix: "/botpenguin",
        path: "/customer/cust-1",
        body: "",
    },
];

fn apply(seed: &Seed, mutations: &[Mutation]) -> (String, String, Vec<(String, String)>, Vec<u8>) {
    let mut method = seed.method.to_owned();
    let mut path = seed.path.to_owned();
    let mut query = String::new();
    let mut headers = Vec::new();
    let mut body = seed.body.as_bytes().to_vec();
    for m in mutations {
        match m {
            Mutation::FlipCase(i) => {
                let i = i % path.len();
                let flipped: String = path
                    .char_indices()
                    .map(|(j, c)| {
                        if j == i {
                            if c.is_ascii_lowercase() {
                                c.to_ascii_uppercase()
                            } else {
                                c.to_ascii_lowercase()
                            }
                        } else {
                            c
                        }
                    })
                    .collect();
                path = flipped;
            }
            Mutation::DoubleSlash(i) => {
                let slashes: Vec<usize> = path.match_indices('/').map(|(j, _)| j).collect();
                let at = slashes[i % slashes.len()];
                path.insert(at, '/');
            }
            Mutation::TrailingSlash => path.push('/'),
            Mutation::Encode(i) => {
                let i = i % path.len();
                if path.is_char_boundary(i) && path.as_bytes()[i].is_ascii_alphanumeric() {
                    let c = path.as_bytes()[i];
                    path.replace_range(i..=i, &format!("%{c:02X}"));
                }
            }
            Mutation::PathParam => path.push_str(";v=1"),
            Mutation::Method(m) => method = (*m).to_owned(),
            Mutation::Override(h) => headers.push(((*h).to_owned(), "DELETE".to_owned())),
            Mutation::QueryParams => query = "customer_keys=cust-9&userIds=u-9".to_owned(),
            Mutation::BodyByte(i, b) => {
                if !body.is_empty() {
                    let i = i % body.len();
                    body[i] = *b;
                }
            }
            Mutation::BodyDuplicateKey => {
                if body.first() == Some(&b'{') {
                    body.splice(
                        1..1,
                        br#""userIds":["x"],"customer_keys":["y"],"#.iter().copied(),
                    );
                }
            }
        }
    }
    let mut target = format!("{}{}", seed.prefix, path);
    if !query.is_empty() {
        target.push('?');
        target.push_str(&query);
    }
    (method, target, headers, body)
}

/// Random mutations of the three vendors' erasure calls, sent by an anonymous
/// caller (whom policy always denies): whatever reaches a vendor must be
/// something that vendor could not read as an erasure call, and nothing is
/// ever marked allowed.
#[test]
fn mutated_erasure_calls_are_never_forwarded_without_a_decision() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut env = rt.block_on(env());
    let client = http1_client();
    let mut runner = TestRunner::new(Config {
        cases: 192,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0usize..SEEDS.len(), prop::collection::vec(mutation(), 1..4));
    runner
        .run(&strategy, |(seed, mutations)| {
            let seed = &SEEDS[seed];
            let (method, target, headers, body) = apply(seed, &mutations);
            let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
                return Ok(());
            };
            let Ok(uri) = env.gateway.url(&target).parse::<http::Uri>() else {
                return Ok(());
            };
            let vendor = match seed.vendor {
                "seam" => &env.seam,
                "kore" => &env.kore,
                _ => &env.botpenguin,
            };
            let before = vendor.received().len();
            let mut req = Request::builder().method(method).uri(uri);
            req = req.header("content-type", "application/json");
            for (name, value) in &headers {
                req = req.header(name.as_str(), value.as_str());
            }
            let req = req.body(Full::new(Bytes::from(body))).unwrap();
            let (parts, _) = rt.block_on(send(&client, req)).unwrap();
            prop_assert_ne!(
                parts
                    .headers
                    .get("x-erasure-decision")
                    .map(|v| v.as_bytes()),
                Some(&b"allow"[..]),
                "{} {:?}: an anonymous erasure was allowed",
                target,
                mutations
            );
            let received = vendor.received();
            for seen in &received[before..] {
                prop_assert!(
                    !upstream_could_erase(seed.vendor, seen),
                    "{} {} reached {} undecided: {:?} (mutations {:?}, status {})",
                    seen.method,
                    seen.path_and_query,
                    seed.vendor,
                    seen.headers,
                    mutations,
                    parts.status
                );
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(env.gateway.stop());
}

// ---------------------------------------------------------------------------
// Forward exactly what was decided: each test is named after an attack the
// security review found or one of its variants.
// ---------------------------------------------------------------------------

/// The trail's decision records, oldest first.
fn decisions(env: &Env) -> Vec<Value> {
    env.gateway
        .trail()
        .into_iter()
        .filter(|r| r["kind"] == "decision")
        .collect()
}

/// Asserts the refused call left every recorder empty and that the newest
/// decision record holds its refusal.
fn assert_refused_and_recorded(env: &Env, status: u16, parts: &http::response::Parts, what: &str) {
    assert_eq!(parts.status.as_u16(), status, "{what}");
    assert_eq!(env.received(), 0, "{what}: a vendor received the call");
    let last = decisions(env)
        .pop()
        .unwrap_or_else(|| panic!("{what}: no record"));
    assert_eq!(last["effect"], "refused", "{what}: {last}");
    assert_eq!(
        last["decision_id"],
        parts.headers["x-erasure-decision-id"].to_str().unwrap(),
        "{what}"
    );
}

#[tokio::test]
async fn seam_pat_with_connection_naming_the_workspace_is_refused_and_recorded() {
    let mut env = env().await;
    let auth = bearer(SEAM_PAT);
    for named in ["seam-workspace", "authorization", "content-type", "host"] {
        let connection = format!("keep-alive, {named}");
        let (parts, json) = env
            .gateway
            .call(
                "POST",
                "/seam/customers/delete_data",
                &[
                    ("authorization", &auth),
                    ("seam-workspace", "ws-1"),
                    ("connection", &connection),
                    JSON,
                ],
                r#"{"customer_keys":["cust-1"]}"#,
            )
            .await;
        assert_refused_and_recorded(&env, 400, &parts, named);
        assert_eq!(json["error"]["type"], "ambiguous_erasure_request");
        assert!(json["error"]["message"].as_str().unwrap().contains(named));
    }
    env.gateway.stop().await;
}

#[tokio::test]
async fn url_rewrite_headers_cannot_carry_an_erasure_path_through_pass_through() {
    let mut env = env().await;
    let auth = bearer(OFFICER);
    for (header, value, path) in [
        (
            "x-original-url",
            "/customers/delete_data",
            "/seam/devices/list",
        ),
        (
            "x-rewrite-url",
            "/customers/delete_data",
            "/seam/devices/list",
        ),
        (
            "x-original-url",
            "/api/public/bot/eraseUsersData",
            "/kore/api/public/bot/st-1/users",
        ),
        ("x-rewrite-url", "/customer/c1", "/botpenguin/bots/b1"),
        (
            "x-original-url",
            "/devices/list",
            "/seam/customers/delete_data",
        ),
    ] {
        let (parts, _) = env
            .gateway
            .call(
                "POST",
                path,
                &[("authorization", &auth), (header, value), JSON],
                r#"{"customer_keys":["cust-1"]}"#,
            )
            .await;
        assert_refused_and_recorded(&env, 400, &parts, &format!("{header}: {value} on {path}"));
    }
    // Naming an ordinary path, it is stripped and the call passes.
    let (parts, _) = env
        .gateway
        .call(
            "GET",
            "/seam/devices/list",
            &[
                ("x-original-url", "/locks/list"),
                ("x-forwarded-prefix", "/x"),
            ],
            "",
        )
        .await;
    assert_eq!(parts.status, 200);
    let seen = env.seam.received();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].headers.contains_key("x-original-url"));
    assert!(!seen[0].headers.contains_key("x-forwarded-prefix"));
    env.gateway.stop().await;
}

#[tokio::test]
async fn botpenguin_post_with_a_method_override_in_body_or_mangled_query_is_refused() {
    let mut env = env().await;
    let auth = bearer(OFFICER);
    let form = ("content-type", "application/x-www-form-urlencoded");
    let cases: [(&str, (&str, &str), &str); 7] = [
        ("/botpenguin/customer/c1", form, "_method=DELETE"),
        ("/botpenguin/customer/c1", JSON, r#"{"_method":"DELETE"}"#),
        ("/botpenguin/customer/c1?.method=DELETE", form, ""),
        ("/botpenguin/customer/c1?%5Bmethod=DELETE", form, ""),
        ("/botpenguin/customer/c1?%20_method=DELETE", form, ""),
        ("/botpenguin/customer/c1?_METHOD=DELETE", form, ""),
        (
            "/botpenguin/customer/c1",
            ("x_http_method_override", "DELETE"),
            "",
        ),
    ];
    for (path, header, body) in cases {
        let (parts, json) = env
            .gateway
            .call(
                "POST",
                path,
                &[("authorization", &auth), ("authtype", "Key"), header],
                body,
            )
            .await;
        assert_refused_and_recorded(&env, 400, &parts, &format!("{path} {header:?} {body}"));
        assert_eq!(json["success"], false, "BotPenguin's shape");
    }
    // PUT and PATCH are refused on the path too; GET (no body) still passes.
    for method in ["PUT", "PATCH"] {
        let (parts, _) = env
            .gateway
            .call(method, "/botpenguin/customer/c1", &[], "x")
            .await;
        assert_refused_and_recorded(&env, 400, &parts, method);
    }
    let (parts, _) = env
        .gateway
        .call("GET", "/botpenguin/customer/c1", &[], "")
        .await;
    assert_eq!(parts.status, 200);
    assert_eq!(env.botpenguin.received().len(), 1);
    env.gateway.stop().await;
}

#[tokio::test]
async fn a_call_naming_more_targets_than_its_profile_allows_is_refused_and_recorded_small() {
    // Every target goes into the decision record: an unbounded list (a
    // 1 MiB body holds ~250k keys) would make a record no restart or
    // `audit verify` could read back.
    let mut env = env().await;
    let keys: Vec<String> = (0..50_000).map(|i| format!("k{i}")).collect();
    let body = json!({ "customer_keys": keys }).to_string();
    for auth in ["", OFFICER] {
        let bearer = bearer(auth);
        let (parts, json) = env.seam_erase(&bearer, &body).await;
        assert_refused_and_recorded(&env, 400, &parts, "50,000 targets");
        assert!(
            json.to_string().contains("at most 1000"),
            "in Seam's shape: {json}"
        );
    }
    let line = env
        .gateway
        .trail()
        .iter()
        .map(|record| record.to_string().len())
        .max()
        .unwrap();
    assert!(
        line < 4_096,
        "the refusal's record holds no target list: {line} bytes"
    );
    env.gateway.stop().await;
}

#[tokio::test]
async fn an_erasure_path_completed_by_the_upstreams_base_path_is_refused_unsent() {
    // Kore's url carries `/api`, the start of its erasure path: the vendor
    // reads `/kore/public/bot/eraseUsersData` as `/api/public/bot/…`.
    let kore = spawn_vendor(Behaviour::Echo).await;
    let base = format!("{}/api", kore.url());
    let config = GatewayConfig::new()
        .jwt_hs256(JWT_SECRET)
        .jwt_caller("kore-officer", &["privacy-officer"])
        .vendor("kore", Endpoint::Url(&base));
    let mut gateway = spawn_gateway(config).await;
    let token = jwt("kore-officer", 300, JWT_SECRET);
    for path in [
        "/kore/public/bot/eraseUsersData",
        "/kore/public/bot/eraseUsersData/",
        "/kore/public/bot/ERASEUSERSDATA",
    ] {
        let (parts, json) = gateway
            .call(
                "DELETE",
                path,
                &[("auth", &token), JSON],
                r#"{"userIds":["u-1"]}"#,
            )
            .await;
        assert_eq!(parts.status, 400, "{path}: {json}");
        assert!(json.to_string().contains("base path"), "{path}: {json}");
    }
    assert_eq!(kore.count(), 0, "an erasure reached Kore undecided");
    let trail = gateway.trail();
    let refused: Vec<_> = trail
        .iter()
        .filter(|r| r["kind"] == "decision" && r["effect"] == "refused")
        .collect();
    assert_eq!(refused.len(), 3, "{trail:?}");
    // What is not an erasure call under the base path still passes.
    let (parts, _) = gateway.call("GET", "/kore/public/bot/list", &[], "").await;
    assert_eq!(parts.status, 200);
    assert_eq!(kore.received()[0].path_and_query, "/api/public/bot/list");
    gateway.stop().await;
}

#[tokio::test]
async fn kore_account_owner_spelled_in_upper_case_or_padded_is_never_erased() {
    let mut env = env().await;
    let token = jwt("kore-officer", 300, JWT_SECRET);
    let (parts, json) = env
        .kore_erase(&token, r#"{"userIds":["Owner@EXAMPLE.COM"]}"#)
        .await;
    assert_refused_and_recorded(&env, 403, &parts, "upper-case owner");
    assert!(json["errors"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("kore-never-erase-account-owners"));
    let last = decisions(&env).pop().unwrap();
    assert_eq!(last["targets"][0]["id"], "owner@example.com");
    assert_eq!(last["targets"][0]["id_form"], "email_casefold");
    for padded in [
        r#"{"userIds":[" owner@example.com"]}"#,
        r#"{"userIds":["owner@example.com\t"]}"#,
        r#"{"userIds":["owner@example.com\u0000"]}"#,
        // Letters a case-insensitive collation may fold to plain ones
        // (ſ → s, ﬁ → fi): the vendor could match an address never looked up.
        r#"{"userIds":["owner@example.\u017fe"]}"#,
        r#"{"userIds":["u-1","\ufb01n@example.com"]}"#,
    ] {
        let (parts, json) = env.kore_erase(&token, padded).await;
        assert_refused_and_recorded(&env, 400, &parts, padded);
        assert!(json.to_string().contains("userIds"), "{padded}: {json}");
    }
    env.gateway.stop().await;
}

#[tokio::test]
async fn allowed_calls_reach_the_vendor_rebuilt_exactly_as_decided() {
    let mut env = env().await;
    let auth = bearer(OFFICER);
    let (parts, _) = env
        .gateway
        .call(
            "POST",
            "/seam/customers/delete_data",
            &[
                ("authorization", &auth),
                ("content-type", "application/json; charset=utf-8"),
                ("cookie", "session=1"),
                ("x-customer-scope", "all"),
                ("x-forwarded-host", "evil.example"),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
                ("x-request-id", "client-id-1"),
            ],
            r#"{ "user_keys" : ["user-9"], "customer_keys": ["cust-1"] }"#,
        )
        .await;
    assert_eq!(parts.status, 200);
    let seen = env.seam.received();
    assert_eq!(seen.len(), 1);
    let got = &seen[0];
    assert_eq!(got.method, "POST");
    assert_eq!(got.path_and_query, "/customers/delete_data");
    assert_eq!(
        &got.body[..],
        br#"{"customer_keys":["cust-1"],"user_keys":["user-9"]}"#
    );
    let mut names: Vec<&str> = got.headers.keys().map(http::HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "authorization",
            "content-length",
            "content-type",
            "host",
            "traceparent",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-request-id"
        ]
    );
    assert_eq!(got.headers["content-type"], "application/json");
    let decision = decisions(&env).pop().unwrap();
    assert_eq!(decision["request_id"], "client-id-1");
    assert_eq!(
        decision["forwarded_sha256"].as_str().unwrap(),
        support::received_sha256(got),
        "the decision names the bytes the vendor read"
    );
    let outcome = env
        .gateway
        .trail()
        .into_iter()
        .rfind(|r| r["kind"] == "outcome")
        .unwrap();
    assert_eq!(outcome["decision_id"], decision["decision_id"]);
    assert_eq!(
        parts.headers["x-erasure-decision-id"].to_str().unwrap(),
        decision["decision_id"]
    );
    assert_eq!(support::assert_forwarded_as_decided(&env.gateway), 1);
    env.gateway.stop().await;
}

#[tokio::test]
async fn a_reused_client_request_id_cannot_attach_one_outcome_to_another_decision() {
    let mut env = env().await;
    let auth = bearer(OFFICER);
    for key in ["cust-1", "cust-2"] {
        let body = format!(r#"{{"customer_keys":["{key}"]}}"#);
        let (parts, _) = env
            .gateway
            .call(
                "POST",
                "/seam/customers/delete_data",
                &[("authorization", &auth), ("x-request-id", "reused-1"), JSON],
                &body,
            )
            .await;
        assert_eq!(parts.status, 200);
    }
    let records = env.gateway.trail();
    let ids: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "decision")
        .map(|r| &r["decision_id"])
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    let outcomes: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "outcome")
        .map(|r| &r["decision_id"])
        .collect();
    assert_eq!(outcomes, ids, "each outcome links to its own decision");
    assert!(records
        .iter()
        .filter(|r| r["kind"] == "decision")
        .all(|r| r["request_id"] == "reused-1"));
    env.gateway.stop().await;
}

#[tokio::test]
async fn dot_segments_under_a_vendor_prefix_are_refused_in_its_shape_and_recorded() {
    let mut env = env().await;
    let auth = bearer(OFFICER);
    for (path, probe) in [
        ("/seam/x/../customers/delete_data", "/error/type"),
        (
            "/kore/api/x/%2e%2e/public/bot/eraseUsersData",
            "/errors/0/msg",
        ),
        ("/botpenguin/./customer/c1", "/message"),
    ] {
        let (parts, json) = env
            .gateway
            .call("DELETE", path, &[("authorization", &auth)], "")
            .await;
        assert_refused_and_recorded(&env, 400, &parts, path);
        assert!(json.pointer(probe).is_some(), "{path}: {json}");
    }
    env.gateway.stop().await;
}

// ---------------------------------------------------------------------------
// Faults: the vendor or the directory failing while an allowed call is on
// its way. Each answer is in the vendor's shape, the trail holds the decision
// and an outcome saying what happened, nothing is retried, and the trail
// verifies afterwards.
// ---------------------------------------------------------------------------

/// A gateway on `config` with one Seam upstream reaching `to` and the
/// privacy officer.
async fn seam_gateway<'a>(to: impl Into<Endpoint<'a>>, config: GatewayConfig) -> support::Gateway {
    spawn_gateway(
        config
            .caller("privacy-ops", OFFICER, &["privacy-officer"])
            .vendor("seam", to),
    )
    .await
}

async fn seam_erase(gateway: &support::Gateway) -> (http::response::Parts, Value) {
    gateway
        .call(
            "POST",
            "/seam/customers/delete_data",
            &[("authorization", &bearer(OFFICER)), JSON],
            r#"{"customer_keys":["cust-1"]}"#,
        )
        .await
}

/// The one decision and its outcome, after checking they link and the
/// chain verifies.
fn decision_and_outcome(gateway: &support::Gateway) -> (Value, Value) {
    let records = gateway.trail();
    let decisions: Vec<&Value> = records.iter().filter(|r| r["kind"] == "decision").collect();
    let outcomes: Vec<&Value> = records.iter().filter(|r| r["kind"] == "outcome").collect();
    assert_eq!(decisions.len(), 1, "{records:#?}");
    assert_eq!(outcomes.len(), 1, "{records:#?}");
    assert_eq!(decisions[0]["decision_id"], outcomes[0]["decision_id"]);
    let dir = gateway.config.audit.path.parent().unwrap().to_owned();
    erasure_gateway::trail::verify::verify_files(&[dir], &Default::default())
        .unwrap_or_else(|e| panic!("the trail verifies: {e:?}"));
    (decisions[0].clone(), outcomes[0].clone())
}

#[tokio::test]
async fn a_vendor_refusing_connections_is_a_502_in_its_shape_with_the_outcome_recorded() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut gateway = seam_gateway(&format!("http://{closed}"), GatewayConfig::new()).await;
    let (parts, json) = seam_erase(&gateway).await;
    assert_eq!(parts.status, 502);
    assert_eq!(json["error"]["type"], "upstream_unreachable", "{json}");
    let (decision, outcome) = decision_and_outcome(&gateway);
    assert_eq!(decision["effect"], "forwarded");
    assert_eq!(outcome["status"], 502);
    assert_eq!(outcome["error"], "upstream_unreachable");
    gateway.stop().await;
}

#[tokio::test]
async fn a_vendor_resetting_mid_response_is_a_502_and_the_call_is_not_retried() {
    // A vendor that answers a head promising 100 bytes, sends 7, and hangs
    // up, counting the requests it read.
    let (vendor, requests) = spawn_partial_vendor(AfterPartial::HangUp).await;
    let mut gateway = seam_gateway(vendor.as_str(), GatewayConfig::new()).await;
    let (parts, json) = seam_erase(&gateway).await;
    assert_eq!(parts.status, 502);
    assert_eq!(json["error"]["type"], "upstream_failed", "{json}");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "sent once, never retried"
    );
    let (_, outcome) = decision_and_outcome(&gateway);
    assert_eq!(outcome["status"], 502);
    assert_eq!(outcome["upstream_status"], 200);
    assert_eq!(outcome["error"], "upstream_failed");
    gateway.stop().await;
}

#[tokio::test]
async fn a_hanging_vendor_is_a_504_after_the_timeout_and_is_not_retried() {
    let vendor = spawn_vendor(Behaviour::Hang).await;
    let mut gateway = seam_gateway(
        &vendor,
        GatewayConfig::new().proxy("upstream_timeout", "300ms"),
    )
    .await;
    let (parts, json) = seam_erase(&gateway).await;
    assert_eq!(parts.status, 504);
    assert_eq!(json["error"]["type"], "upstream_timeout", "{json}");
    assert_eq!(vendor.received().len(), 1);
    let (_, outcome) = decision_and_outcome(&gateway);
    assert_eq!(outcome["error"], "upstream_timeout");
    gateway.stop().await;
}

#[tokio::test]
async fn an_erasure_finding_every_vendor_connection_busy_is_refused_unsent_and_recorded() {
    let (vendor, requests) = spawn_partial_vendor(AfterPartial::Wait).await;
    let mut gateway = seam_gateway(
        vendor.as_str(),
        GatewayConfig::new()
            .proxy("upstream_max_connections", 1)
            .proxy("upstream_timeout", "300ms"),
    )
    .await;
    // A pass-through call whose answer never ends holds the one connection.
    let holding = http1_client()
        .request(support::request(
            "GET",
            &gateway.url("/seam/devices/list"),
            "",
        ))
        .await
        .unwrap();
    assert_eq!(holding.status(), 200);
    let (parts, json) = seam_erase(&gateway).await;
    assert_eq!(parts.status, 503, "{json}");
    assert_eq!(json["error"]["type"], "upstream_busy", "{json}");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "the erasure was not sent"
    );
    let (decision, outcome) = decision_and_outcome(&gateway);
    assert_eq!(decision["effect"], "forwarded");
    assert_eq!(outcome["status"], 503);
    assert_eq!(outcome["error"], "upstream_busy");
    drop(holding);
    gateway.stop().await;
}

#[tokio::test]
async fn a_slow_vendor_within_the_timeout_is_relayed_with_its_latency_recorded() {
    let vendor = spawn_vendor(Behaviour::Slow(Duration::from_millis(300))).await;
    let mut gateway = seam_gateway(
        &vendor,
        GatewayConfig::new().proxy("upstream_timeout", "5s"),
    )
    .await;
    let (parts, _) = seam_erase(&gateway).await;
    assert_eq!(parts.status, 200);
    let (_, outcome) = decision_and_outcome(&gateway);
    assert_eq!(outcome["status"], 200);
    assert!(outcome["latency_ms"].as_u64().unwrap() >= 300, "{outcome}");
    gateway.stop().await;
}

#[tokio::test]
async fn a_vendor_5xx_is_relayed_recorded_and_not_retried() {
    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
    ] {
        let vendor = spawn_vendor(Behaviour::Status(status)).await;
        let mut gateway = seam_gateway(&vendor, GatewayConfig::new()).await;
        let (parts, json) = seam_erase(&gateway).await;
        assert_eq!(parts.status, status);
        assert_eq!(
            json["error"]["message"], "vendor failed",
            "the vendor's own answer"
        );
        assert_eq!(vendor.received().len(), 1, "sent once, never retried");
        let (_, outcome) = decision_and_outcome(&gateway);
        assert_eq!(outcome["status"], status.as_u16());
        gateway.stop().await;
    }
}

#[tokio::test]
async fn a_directory_answering_garbage_refuses_the_call_and_records_it() {
    let garbage = spawn_vendor(Behaviour::Json("{\"uid\": [1, 2")).await;
    let mut env = env_with(with_directory(&garbage.url())).await;
    let token = jwt("kore-officer", 300, JWT_SECRET);
    let (parts, json) = env.kore_erase(&token, r#"{"userIds":["u-unknown"]}"#).await;
    assert_eq!(parts.status, 503, "{json}");
    assert!(json["errors"][0]["msg"].is_string());
    assert_refused_and_recorded(&env, 503, &parts, "garbage directory");
    env.gateway.stop().await;
}

#[tokio::test]
async fn a_policy_set_spelling_a_kore_owner_in_another_case_does_not_start() {
    let policies = support::policies_copy();
    let entities = policies.path().join("entities.json");
    let text = std::fs::read_to_string(&entities)
        .unwrap()
        .replace("owner@example.com", "Owner@Example.com");
    std::fs::write(&entities, text).unwrap();
    let config = GatewayConfig::new()
        .policies("dir", policies.path().display().to_string())
        .vendor("kore", "http://127.0.0.1:9");
    let listeners = erasure_gateway::Listeners {
        proxy: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let error = erasure_gateway::run(&config.config(), listeners, async {})
        .await
        .expect_err("refused at start");
    let message = error.to_string();
    assert!(
        message.contains("entities.json") && message.contains("write `owner@example.com`"),
        "{message}"
    );
}

/// Further variants tried against the rebuilt-forwarding invariant; each
/// is refused with nothing forwarded and the refusal on record.
#[tokio::test]
async fn further_variants_of_the_review_attacks_are_refused_and_recorded() {
    let mut env = env().await;
    let officer = bearer(OFFICER);
    let pat = bearer(SEAM_PAT);
    let token = jwt("kore-officer", 300, JWT_SECRET);
    let seam = "/seam/customers/delete_data";
    let kore = "/kore/api/public/bot/eraseUsersData";
    type Row<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str, u16);
    let rows: Vec<Row> = vec![
        // A second workspace or content type: the vendor may read the other.
        (
            "POST",
            seam,
            vec![
                ("authorization", &pat),
                ("seam-workspace", "ws-1"),
                ("seam-workspace", "ws-2"),
                JSON,
            ],
            r#"{"customer_keys":["c1"]}"#,
            400,
        ),
        (
            "POST",
            seam,
            vec![
                ("authorization", &officer),
                JSON,
                ("content-type", "text/plain"),
            ],
            r#"{"customer_keys":["c1"]}"#,
            400,
        ),
        // A key spelled with an escape that unescapes onto another key.
        (
            "DELETE",
            kore,
            vec![("auth", &token), JSON],
            r#"{"userIds":["u-ordinary-0001"],"user\u0049ds":["owner@example.com"]}"#,
            400,
        ),
        // A flag as a string the vendor might coerce.
        (
            "DELETE",
            kore,
            vec![("auth", &token), JSON],
            r#"{"userIds":["u-ordinary-0001"],"RemoveDataFromAllBots":"true"}"#,
            400,
        ),
        // A padded part of a channel object id.
        (
            "DELETE",
            kore,
            vec![("auth", &token), JSON],
            r#"{"userIds":[{"channel_id":"c ","channel_user_id":"u"}]}"#,
            400,
        ),
        // A NUL in a query id.
        (
            "DELETE",
            "/seam/customers/delete_data?customer_keys=c1%00",
            vec![("authorization", &officer)],
            "",
            400,
        ),
        // A body on a path-only call, naming another customer.
        (
            "DELETE",
            "/botpenguin/customer/c1",
            vec![("authorization", &officer), JSON],
            r#"{"customer_id":"c2"}"#,
            400,
        ),
        // `_method` as a JSON field of a body call.
        (
            "POST",
            seam,
            vec![("authorization", &officer), JSON],
            r#"{"customer_keys":["c1"],"_method":"DELETE"}"#,
            400,
        ),
        // Connection naming the credential on a query-form call.
        (
            "GET",
            "/seam/customers/delete_data?customer_keys=c1",
            vec![("authorization", &officer), ("connection", "authorization")],
            "",
            400,
        ),
        // A rewrite header riding on the erasure path itself.
        (
            "DELETE",
            kore,
            vec![
                ("auth", &token),
                JSON,
                ("x-original-url", "/api/public/bot/st-1"),
            ],
            r#"{"userIds":["u-ordinary-0001"]}"#,
            400,
        ),
        // A letter-case variant of the method.
        (
            "delete",
            "/botpenguin/customer/c1",
            vec![("authorization", &officer)],
            "",
            400,
        ),
    ];
    for (method, path, headers, body, status) in &rows {
        let (parts, _) = env.gateway.call(method, path, headers, body).await;
        assert_refused_and_recorded(&env, *status, &parts, &format!("{method} {path} {body}"));
    }
    // Held as well: a declared content encoding is not forwarded, so the
    // vendor reads the JSON that was decided, not a decoding of it.
    let (parts, _) = env
        .gateway
        .call(
            "POST",
            seam,
            &[
                ("authorization", &officer),
                JSON,
                ("content-encoding", "identity"),
            ],
            r#"{"customer_keys":["c1"]}"#,
        )
        .await;
    assert_eq!(parts.status, 200);
    let seen = env.seam.received();
    assert!(!seen[0].headers.contains_key("content-encoding"));
    env.gateway.stop().await;
}
