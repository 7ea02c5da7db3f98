//! End to end: the real example server (`examples/server/`) as a process on a free
//! port, driven over real HTTP the way a SimpleJWT client drives SimpleJWT.
//!
//! Every route, every refusal, rotation, reuse detection, 32 concurrent refreshes
//! of one token, logout and revoke-all taking effect on access tokens at once,
//! the caller's session list and revoking one of them by id (never another
//! user's), malformed and oversized bodies, wrong methods; and not one 5xx
//! anywhere. The metrics route (`METRICS_BIND`) is checked on its own. The
//! scenario runs on SQLite (a temporary file), in memory, and on PostgreSQL and
//! MySQL when they are reachable (under CI they must be).

mod common;
#[path = "common/server.rs"]
mod server;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_jwt_auth::{Algorithm, Jwt, Key, NoCustomClaims, TokenKind};

use server::{SECRET, Server, TempDir, server_command, sigterm};

const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------- the process

impl Server {
    fn api(&self) -> Api {
        Api {
            base: self.base.clone(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

// ---------------------------------------------------------------- the client

/// One answer: status, headers and the body (as JSON when it is JSON).
#[derive(Debug)]
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

impl Resp {
    fn token(&self, field: &str) -> String {
        self.json[field]
            .as_str()
            .unwrap_or_else(|| panic!("no `{field}` in {}", self.json))
            .to_owned()
    }
}

#[derive(Clone)]
struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// Checks what every answer must be: never a 5xx, and errors in the JSON shape.
fn check(method: &Method, path: &str, status: StatusCode, headers: &HeaderMap, json: &Value) {
    assert!(
        !status.is_server_error(),
        "{method} {path} answered {status}: {json}"
    );
    if status.is_client_error() && method != Method::HEAD {
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {path} {status}: not JSON"
        );
        assert!(
            json["error"].is_string() && json["error_description"].is_string(),
            "{method} {path} {status}: {json}"
        );
    }
}

impl Api {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).expect("request");
        let res = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: no answer in 30 s"))
            .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        check(&method, path, parts.status, &parts.headers, &json);
        Resp {
            status: parts.status,
            headers: parts.headers,
            json,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<Bytes>) -> Resp {
        self.send(Method::POST, path, &[("content-type", content_type)], body)
            .await
    }

    async fn bearer(&self, method: Method, path: &str, access: &str) -> Resp {
        self.send(
            method,
            path,
            &[("authorization", &format!("Bearer {access}"))],
            Bytes::new(),
        )
        .await
    }

    async fn login_as(&self, username: &str, user_agent: &str) -> Resp {
        self.send(
            Method::POST,
            "/api/token/",
            &[
                ("content-type", "application/json"),
                ("user-agent", user_agent),
            ],
            json!({ "username": username, "password": PASSWORD }).to_string(),
        )
        .await
    }

    async fn sessions(&self, access: &str) -> Vec<Value> {
        let list = self.bearer(Method::GET, "/api/sessions/", access).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.json);
        list.json.as_array().expect("a JSON array").clone()
    }

    async fn me(&self, access: &str) -> Resp {
        self.send(
            Method::GET,
            "/api/me/",
            &[("authorization", &format!("Bearer {access}"))],
            Bytes::new(),
        )
        .await
    }

    async fn register(&self, username: &str) -> Resp {
        self.post(
            "/api/users/",
            json!({ "username": username, "password": PASSWORD }),
        )
        .await
    }

    async fn login(&self, username: &str) -> Resp {
        self.post(
            "/api/token/",
            json!({ "username": username, "password": PASSWORD }),
        )
        .await
    }

    async fn refresh(&self, refresh: &str) -> Resp {
        self.post("/api/token/refresh/", json!({ "refresh": refresh }))
            .await
    }

    async fn logout(&self, refresh: &str) -> Resp {
        self.post("/api/token/blacklist/", json!({ "refresh": refresh }))
            .await
    }

    async fn verify(&self, token: &str) -> Resp {
        self.post("/api/token/verify/", json!({ "token": token }))
            .await
    }

    /// A chunked body (no Content-Length) over a raw connection: the size limit
    /// must hold while reading, too. Returns the status.
    async fn post_chunked(&self, path: &str, size: usize) -> StatusCode {
        let addr = self.base.trim_start_matches("http://");
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        let _ = conn.write_all(head.as_bytes()).await;
        let mut body = String::from("{\"username\":\"");
        body.push_str(&"a".repeat(size));
        body.push_str("\",\"password\":\"x\"}");
        for chunk in body.as_bytes().chunks(4096) {
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(chunk);
            frame.extend_from_slice(b"\r\n");
            if conn.write_all(&frame).await.is_err() {
                break; // the server answered and closed early: fine
            }
        }
        let _ = conn.write_all(b"0\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .expect("a status line");
        let status = StatusCode::from_u16(code).expect("status");
        assert!(!status.is_server_error(), "chunked {path}: {status}");
        assert!(
            text.contains("\"error\""),
            "chunked {path}: not the JSON error shape: {text}"
        );
        status
    }
}

/// Mints tokens as the servers under test do (same secret, same kid), for the
/// cases a client cannot produce: expired, unknown user, not-a-UUID user.
fn minter(access_ttl: Duration) -> Jwt {
    Jwt::builder()
        .signing_key(Key::hmac("main", Algorithm::HS256, SECRET).unwrap())
        .access_ttl(access_ttl)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------- the scenario

/// A handle on the server's database, to change a user behind its back.
enum Db {
    None,
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
}

impl Db {
    async fn deactivate(&self, prefix: &str, username: &str) -> bool {
        let sql = |p: &str| {
            sqlx::AssertSqlSafe(format!(
                "UPDATE {prefix}users SET is_active = FALSE WHERE username = {p}"
            ))
        };
        let n = match self {
            Db::None => return false,
            Db::Sqlite(pool) => sqlx::query(sql("?"))
                .bind(username)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
            Db::Postgres(pool) => sqlx::query(sql("$1"))
                .bind(username)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
            Db::MySql(pool) => sqlx::query(sql("?"))
                .bind(username)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
        };
        assert_eq!(n, 1);
        true
    }
}

/// The `jti` of a token (its payload read without checking: the server did).
fn jti_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON");
    claims["jti"].as_str().expect("a jti").to_owned()
}

async fn scenario(server: &Server, db: Db, prefix: &str) {
    let api = server.api();

    // --- registration: 201 {"id": uuid}; 409 taken; 400 bad input
    let created = api.register("alice").await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let alice_id = created.token("id");
    assert!(
        uuid::Uuid::parse_str(&alice_id).is_ok(),
        "the id is the UUID: {alice_id}"
    );
    assert_eq!(created.json.as_object().unwrap().len(), 1);
    assert_eq!(api.register("alice").await.status, StatusCode::CONFLICT);
    for bad in [
        json!({ "username": "bob" }),
        json!({ "password": PASSWORD }),
        json!({ "username": "bob", "password": "short" }),
        json!({ "username": "bob smith", "password": PASSWORD }),
        json!({ "username": "", "password": PASSWORD }),
        json!({ "username": 7, "password": PASSWORD }),
        json!({ "username": "b".repeat(151), "password": PASSWORD }),
        json!(["bob", PASSWORD]),
        json!({}),
    ] {
        let r = api.post("/api/users/", bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
        assert_eq!(r.json["error"], "invalid_request");
    }
    assert_eq!(
        api.post_raw("/api/users/", "application/json", "{\"username\":")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let plain = api
        .post_raw("/api/users/", "text/plain", "username=bob&password=x")
        .await;
    assert_eq!(plain.status, StatusCode::BAD_REQUEST);
    let multipart = api
        .post_raw("/api/users/", "multipart/form-data; boundary=x", "--x--")
        .await;
    assert_eq!(multipart.status, StatusCode::BAD_REQUEST);

    // --- HTML-form bodies, which DRF (and so SimpleJWT) takes too: `requests.post(url, data=...)`
    const FORM: &str = "application/x-www-form-urlencoded";
    let creds = format!("username=form.user&password={}", PASSWORD.replace(' ', "+"));
    assert_eq!(
        api.post_raw("/api/users/", FORM, creds.clone())
            .await
            .status,
        StatusCode::CREATED
    );
    let pair = api.post_raw("/api/token/", FORM, creds).await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.json);
    let token = format!("token={}", pair.token("access"));
    assert_eq!(
        api.post_raw("/api/token/verify/", FORM, token).await.status,
        StatusCode::OK
    );
    let next = api
        .post_raw(
            "/api/token/refresh/",
            FORM,
            format!("refresh={}", pair.token("refresh")),
        )
        .await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.json);
    let out = api
        .post_raw(
            "/api/token/blacklist/",
            FORM,
            format!("refresh={}", next.token("refresh")),
        )
        .await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(
        api.post_raw("/api/token/refresh/", FORM, "").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.post_raw("/api/token/", FORM, "a".repeat(20_000))
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // --- login: 200 {"access","refresh"}; 401 bad credentials; 400 bad input
    let wrong = api
        .post(
            "/api/token/",
            json!({ "username": "alice", "password": "not the password" }),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let nobody = api
        .post(
            "/api/token/",
            json!({ "username": "nobody", "password": PASSWORD }),
        )
        .await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.json, nobody.json,
        "an unknown user and a wrong password look the same"
    );
    assert_eq!(
        api.post("/api/token/", json!({})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.post("/api/token/", json!({ "username": "alice" }))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.post_raw("/api/token/", "text/plain", "alice")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let login = api.login("alice").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.json);
    assert_eq!(login.headers["cache-control"], "no-store");
    let (access, refresh) = (login.token("access"), login.token("refresh"));

    // --- /api/me/: the resolved user; 401 without or with a bad token
    let me = api.me(&access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json, json!({ "id": alice_id, "username": "alice" }));
    let anon = api.send(Method::GET, "/api/me/", &[], Bytes::new()).await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anon.headers["www-authenticate"], "Bearer realm=\"api\"");
    assert_eq!(api.me("not.a.token").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.me(&refresh).await.status,
        StatusCode::UNAUTHORIZED,
        "a refresh token is not an access token"
    );
    let two = api
        .send(
            Method::GET,
            "/api/me/",
            &[("authorization", "Bearer a b")],
            Bytes::new(),
        )
        .await;
    assert_eq!(two.status, StatusCode::BAD_REQUEST);
    let basic = api
        .send(
            Method::GET,
            "/api/me/",
            &[("authorization", "Basic YTpi")],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        basic.status,
        StatusCode::UNAUTHORIZED,
        "another scheme is no token"
    );

    // --- verify (SimpleJWT #9): valid 200 {}, invalid 401, missing field 400
    let v = api.verify(&access).await;
    assert_eq!((v.status, v.json.clone()), (StatusCode::OK, json!({})));
    assert_eq!(api.verify(&refresh).await.status, StatusCode::OK);
    assert_eq!(api.verify("garbage").await.status, StatusCode::UNAUTHORIZED);
    let mut tampered = access.clone();
    tampered.pop();
    tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(api.verify(&tampered).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.post("/api/token/verify/", json!({})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.post("/api/token/verify/", json!({ "token": 5 }))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // --- ten rotations: each answer a new pair that works
    let mut chain = vec![refresh.clone()];
    let mut current = refresh.clone();
    let mut current_access = access.clone();
    for i in 0..10 {
        let r = api.refresh(&current).await;
        assert_eq!(r.status, StatusCode::OK, "rotation {i}: {}", r.json);
        let (a, next) = (r.token("access"), r.token("refresh"));
        assert_ne!(next, current);
        assert_eq!(
            api.me(&a).await.status,
            StatusCode::OK,
            "rotation {i}: the new access token works"
        );
        chain.push(next.clone());
        current = next;
        current_access = a;
    }
    // SimpleJWT #1: a refresh with `{}` is 400; an access token is the wrong type (401).
    assert_eq!(
        api.post("/api/token/refresh/", json!({})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.refresh(&current_access).await.status,
        StatusCode::UNAUTHORIZED
    );

    // --- reuse detection: a spent token kills the whole session
    let replay = api.refresh(&chain[5]).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.json["error"], "invalid_token");
    assert_eq!(
        api.refresh(&current).await.status,
        StatusCode::UNAUTHORIZED,
        "the live successor dies too"
    );
    assert_eq!(
        api.me(&current_access).await.status,
        StatusCode::UNAUTHORIZED,
        "so does its access token, at once"
    );
    assert_eq!(
        api.verify(&current_access).await.status,
        StatusCode::UNAUTHORIZED
    );

    // --- 32 concurrent refreshes of one token: one successor, answered to all
    // (the default reuse window re-delivers it; never a second branch)
    let login = api.login("alice").await;
    let shared = login.token("refresh");
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (api, token) = (api.clone(), shared.clone());
        tasks.push(tokio::spawn(async move { api.refresh(&token).await }));
    }
    let mut successors = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "a concurrent refresh: {}", r.json);
        successors.insert(jti_of(&r.token("refresh")));
    }
    assert_eq!(successors.len(), 1, "every 200 carries the same successor");

    // --- two tabs refresh one token at once, then each its own new token: both
    // stay signed in (the second tab's token is the same successor, unused)
    let login = api.login("alice").await;
    let r0 = login.token("refresh");
    let (a, b) = tokio::join!(api.refresh(&r0), api.refresh(&r0));
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(jti_of(&a.token("refresh")), jti_of(&b.token("refresh")));
    let (ta, tb) = (a.token("refresh"), b.token("refresh"));
    let (a2, b2) = tokio::join!(api.refresh(&ta), api.refresh(&tb));
    assert_eq!(
        (a2.status, b2.status),
        (StatusCode::OK, StatusCode::OK),
        "two tabs: {} / {}",
        a2.json,
        b2.json
    );
    assert_eq!(api.me(&a2.token("access")).await.status, StatusCode::OK);
    assert_eq!(api.me(&b2.token("access")).await.status, StatusCode::OK);
    // --- a retried request (its answer lost): the same successor again, and the
    // chain goes on from it
    let r3 = api.refresh(&b2.token("refresh")).await;
    let retry = api.refresh(&b2.token("refresh")).await;
    assert_eq!((r3.status, retry.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        jti_of(&r3.token("refresh")),
        jti_of(&retry.token("refresh"))
    );
    let r4 = api.refresh(&retry.token("refresh")).await;
    assert_eq!(r4.status, StatusCode::OK, "{}", r4.json);
    // --- a replay generations later is reuse: the session is revoked
    assert_eq!(api.refresh(&r0).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.me(&r4.token("access")).await.status,
        StatusCode::UNAUTHORIZED,
        "the replay revoked the session"
    );
    assert_eq!(
        api.refresh(&r4.token("refresh")).await.status,
        StatusCode::UNAUTHORIZED
    );

    // --- logout (blacklist): the session's access token is refused at once
    let login = api.login("alice").await;
    let (access, refresh) = (login.token("access"), login.token("refresh"));
    assert_eq!(api.me(&access).await.status, StatusCode::OK);
    let out = api.logout(&refresh).await;
    assert_eq!((out.status, out.json.clone()), (StatusCode::OK, json!({})));
    assert_eq!(api.me(&access).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.refresh(&refresh).await.status,
        StatusCode::UNAUTHORIZED,
        "SimpleJWT #6"
    );
    assert_eq!(
        api.logout(&refresh).await.status,
        StatusCode::UNAUTHORIZED,
        "blacklisting twice: 401"
    );
    assert_eq!(
        api.post("/api/token/blacklist/", json!({})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(api.logout("garbage").await.status, StatusCode::UNAUTHORIZED);

    // --- revoke-all: every session of the user, access tokens included
    let s1 = api.login("alice").await;
    let s2 = api.login("alice").await;
    assert_eq!(api.register("carol").await.status, StatusCode::CREATED);
    let carol = api.login("carol").await;
    let revoke = api
        .send(
            Method::POST,
            "/api/token/revoke-all/",
            &[("authorization", &format!("Bearer {}", s1.token("access")))],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        (revoke.status, revoke.json.clone()),
        (StatusCode::OK, json!({}))
    );
    for s in [&s1, &s2] {
        assert_eq!(
            api.me(&s.token("access")).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            api.refresh(&s.token("refresh")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        api.me(&carol.token("access")).await.status,
        StatusCode::OK,
        "other users keep their sessions"
    );
    let anon = api
        .send(Method::POST, "/api/token/revoke-all/", &[], Bytes::new())
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    let fresh = api.login("alice").await;
    assert_eq!(
        api.me(&fresh.token("access")).await.status,
        StatusCode::OK,
        "a new login works after revoke-all"
    );

    // --- tokens a client cannot make (SimpleJWT #1, #5, #12, #13)
    let jwt = minter(Duration::from_secs(300));
    let (stranger, _) = jwt
        .issue_access(
            &uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4(),
            &NoCustomClaims,
        )
        .unwrap();
    assert_eq!(
        api.me(&stranger).await.status,
        StatusCode::UNAUTHORIZED,
        "a session the store never saw"
    );
    let pair = jwt.issue_pair(&alice_id, &NoCustomClaims).unwrap();
    assert_eq!(
        api.refresh(&pair.refresh).await.status,
        StatusCode::UNAUTHORIZED,
        "a refresh token the store never saw"
    );
    let pair = jwt.issue_pair("42", &NoCustomClaims).unwrap();
    assert_eq!(
        api.refresh(&pair.refresh).await.status,
        StatusCode::UNAUTHORIZED,
        "an id that is not a UUID: 401, not 500"
    );
    assert_eq!(api.me(&pair.access).await.status, StatusCode::UNAUTHORIZED);
    let pem =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/rs256.pem")).unwrap();
    let rs = Jwt::builder()
        .signing_key(Key::from_private_pem("main", Algorithm::RS256, pem).unwrap())
        .build()
        .unwrap();
    let (foreign, _) = rs
        .issue_access(&alice_id, uuid::Uuid::new_v4(), &NoCustomClaims)
        .unwrap();
    assert_eq!(
        api.me(&foreign).await.status,
        StatusCode::UNAUTHORIZED,
        "an RS256 token at an HS256 server"
    );
    assert_eq!(api.verify(&foreign).await.status, StatusCode::UNAUTHORIZED);
    let short = minter(Duration::from_secs(1));
    let (expiring, _) = short
        .issue_access(&alice_id, uuid::Uuid::new_v4(), &NoCustomClaims)
        .unwrap();
    let _ = jwt
        .validate::<NoCustomClaims>(&expiring, TokenKind::Access)
        .expect("valid when minted");

    // --- malformed bodies on the session endpoints: 400, never 500
    for path in [
        "/api/token/refresh/",
        "/api/token/blacklist/",
        "/api/token/verify/",
    ] {
        for (ct, body) in [
            ("application/json", "{"),
            ("application/json", "[]"),
            ("application/json", "null"),
            ("application/json", "{\"refresh\": 5, \"token\": 5}"),
            ("application/json", "\u{0}\u{1}"),
            ("text/plain", "{\"refresh\":\"x\",\"token\":\"x\"}"),
            ("application/json", ""),
        ] {
            let r = api.post_raw(path, ct, body).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{path} {ct} {body:?}: {}",
                r.json
            );
        }
    }
    assert_eq!(
        api.post_raw("/api/users/", "application/json", "")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(
        api.post_raw("/api/token/", "application/json", deep)
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let deep = format!("{}{}", "[".repeat(2_000), "]".repeat(2_000));
    assert_eq!(
        api.post_raw("/api/token/", "application/json", deep)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let huge_token = "a".repeat(10_000);
    assert_eq!(
        api.verify(&huge_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api.me(&huge_token).await.status, StatusCode::UNAUTHORIZED);

    // --- oversized bodies: 413 on every route that reads one, declared or chunked
    let big = json!({ "username": "a".repeat(20_000), "password": PASSWORD, "refresh": "x", "token": "x" });
    for path in [
        "/api/users/",
        "/api/token/",
        "/api/token/refresh/",
        "/api/token/verify/",
        "/api/token/blacklist/",
    ] {
        assert_eq!(
            api.post(path, big.clone()).await.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}"
        );
        let r = api
            .post_raw(path, "application/json", vec![b' '; 200_000])
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}, 200 KB");
        assert_eq!(
            api.post_chunked(path, 20_000).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}, chunked"
        );
    }

    // --- wrong methods: 405 with Allow; unknown routes: 404; all JSON
    for (method, path, allow) in [
        (Method::GET, "/api/users/", "POST"),
        (Method::GET, "/api/token/", "POST"),
        (Method::PUT, "/api/token/", "POST"),
        (Method::GET, "/api/token/refresh/", "POST"),
        (Method::GET, "/api/token/verify/", "POST"),
        (Method::DELETE, "/api/token/blacklist/", "POST"),
        (Method::GET, "/api/token/revoke-all/", "POST"),
        (Method::POST, "/api/me/", "GET, HEAD"),
        (Method::DELETE, "/api/me/", "GET, HEAD"),
        (Method::POST, "/.well-known/jwks.json", "GET, HEAD"),
    ] {
        let r = api
            .send(
                method.clone(),
                path,
                &[("content-type", "application/json")],
                "{}",
            )
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(r.headers["allow"], allow, "{method} {path}");
    }
    for path in [
        "/index.html",
        "/api/token",
        "/api/users",
        "/api/me",
        "/admin/",
        "/api/token/refresh/x",
        "/%00",
    ] {
        let r = api.send(Method::GET, path, &[], Bytes::new()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }

    // --- JWKS: HS256 publishes no key
    let jwks = api
        .send(Method::GET, "/.well-known/jwks.json", &[], Bytes::new())
        .await;
    assert_eq!(
        (jwks.status, jwks.json.clone()),
        (StatusCode::OK, json!({ "keys": [] }))
    );

    // --- expiry boundary (SimpleJWT #10): dead at `exp`
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        api.me(&expiring).await.status,
        StatusCode::UNAUTHORIZED,
        "an expired access token"
    );

    // --- a user made inactive (SimpleJWT #5): refresh and /api/me/ refuse at once
    let dave = api.register("dave").await;
    assert_eq!(dave.status, StatusCode::CREATED);
    let s = api.login("dave").await;
    if db.deactivate(prefix, "dave").await {
        assert_eq!(
            api.me(&s.token("access")).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            api.refresh(&s.token("refresh")).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            api.login("dave").await.status,
            StatusCode::UNAUTHORIZED,
            "an inactive user cannot log in"
        );
    }

    sessions_by_id(&api).await;
}

/// `GET /api/sessions/` and `DELETE /api/sessions/{id}/` (issue 9): the caller's
/// own sessions with their labels, revoking one by id ends it at once, and
/// another user's session id is a 404 that leaves that session alive.
async fn sessions_by_id(api: &Api) {
    assert_eq!(api.register("sam").await.status, StatusCode::CREATED);
    assert_eq!(api.register("tess").await.status, StatusCode::CREATED);
    let laptop = api.login_as("sam", "Firefox on a laptop").await;
    let phone = api.login_as("sam", "Safari on a phone").await;
    let long_agent = format!("Agent/{}", "x".repeat(400));
    let long = api.login_as("sam", &long_agent).await;
    let tess = api.login_as("tess", "tess's browser").await;
    let session_of = |r: &Resp| {
        let jwt = minter(Duration::from_secs(300));
        // Read, not validated: only the session id is wanted.
        let claims = jwt
            .validate::<NoCustomClaims>(&r.token("access"), TokenKind::Access)
            .expect("the server's own token");
        claims.session_id().to_string()
    };
    let (laptop_id, phone_id, long_id, tess_id) = (
        session_of(&laptop),
        session_of(&phone),
        session_of(&long),
        session_of(&tess),
    );

    // --- the list: own sessions only, labels from the User-Agent, no tokens
    let raw = api
        .bearer(Method::GET, "/api/sessions/", &laptop.token("access"))
        .await;
    assert_eq!(raw.status, StatusCode::OK, "{}", raw.json);
    assert_eq!(
        raw.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let text = raw.json.to_string();
    for r in [&laptop, &phone, &long, &tess] {
        for t in ["access", "refresh"] {
            assert!(!text.contains(&r.token(t)), "a token in the list: {text}");
        }
    }
    let list = raw.json.as_array().expect("an array").clone();
    let ids: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(list.len(), 3, "sam's three sessions: {text}");
    for id in [&laptop_id, &phone_id, &long_id] {
        assert!(ids.contains(&id.as_str()), "{id} in {text}");
    }
    assert!(!ids.contains(&tess_id.as_str()), "not tess's: {text}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for s in &list {
        let created = s["created_at"].as_u64().expect("created_at");
        let rotated = s["last_rotated_at"].as_u64().expect("last_rotated_at");
        let expires = s["expires_at"].as_u64().expect("expires_at");
        assert!(created <= now + 1 && created + 120 >= now, "{s}");
        assert!(rotated >= created && expires > created, "{s}");
        let label = s["label"].as_str().expect("a label");
        let current = s["current"].as_bool().expect("current");
        assert_eq!(current, s["id"] == laptop_id.as_str(), "{s}");
        match s["id"].as_str().unwrap() {
            id if id == laptop_id => assert_eq!(label, "Firefox on a laptop"),
            id if id == phone_id => assert_eq!(label, "Safari on a phone"),
            _ => {
                assert_eq!(label.chars().count(), 200, "truncated: {label}");
                assert!(long_agent.starts_with(label));
            }
        }
    }
    let tess_list = api.sessions(&tess.token("access")).await;
    assert_eq!(tess_list.len(), 1);
    assert_eq!(tess_list[0]["id"], tess_id.as_str());
    assert_eq!(tess_list[0]["label"], "tess's browser");

    // A rotation shows in last_rotated_at (seconds: wait for the clock to tick).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let phone = api.refresh(&phone.token("refresh")).await;
    assert_eq!(phone.status, StatusCode::OK, "{}", phone.json);
    let rotated = api.sessions(&laptop.token("access")).await;
    let p = rotated
        .iter()
        .find(|s| s["id"] == phone_id.as_str())
        .expect("the phone session");
    assert!(
        p["last_rotated_at"].as_u64() > p["created_at"].as_u64(),
        "rotation recorded: {p}"
    );

    // --- refusals: no token, wrong method, someone else's id, unknown, malformed
    let anon = api
        .send(Method::GET, "/api/sessions/", &[], Bytes::new())
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    let anon = api
        .send(
            Method::DELETE,
            &format!("/api/sessions/{phone_id}/"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    let post = api
        .bearer(Method::POST, "/api/sessions/", &laptop.token("access"))
        .await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    let theft = api
        .bearer(
            Method::DELETE,
            &format!("/api/sessions/{phone_id}/"),
            &tess.token("access"),
        )
        .await;
    assert_eq!(
        (theft.status, theft.json["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "another user's session: {}",
        theft.json
    );
    assert_eq!(
        api.me(&phone.token("access")).await.status,
        StatusCode::OK,
        "another user's DELETE left the session alive"
    );
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/sessions/{unknown}/"),
        "/api/sessions/not-a-uuid/".to_owned(),
        format!("/api/sessions/{}/", "f".repeat(5000)),
        "/api/sessions/%FF%FE/".to_owned(),
        "/api/sessions/%00/".to_owned(),
        format!(
            "/api/sessions/{}/",
            laptop_id.to_uppercase().replace('-', "")
        ),
    ] {
        let r = api
            .bearer(Method::DELETE, &path, &tess.token("access"))
            .await;
        assert!(
            r.status == StatusCode::NOT_FOUND || r.status == StatusCode::BAD_REQUEST,
            "DELETE {path}: {} {}",
            r.status,
            r.json
        );
    }
    assert_eq!(api.sessions(&laptop.token("access")).await.len(), 3);

    // --- revoking one of one's own: its tokens are refused at once
    let gone = api
        .bearer(
            Method::DELETE,
            &format!("/api/sessions/{phone_id}/"),
            &laptop.token("access"),
        )
        .await;
    assert_eq!(
        (gone.status, gone.json.clone()),
        (StatusCode::OK, json!({}))
    );
    assert_eq!(
        api.me(&phone.token("access")).await.status,
        StatusCode::UNAUTHORIZED,
        "the revoked session's access token"
    );
    assert_eq!(
        api.refresh(&phone.token("refresh")).await.status,
        StatusCode::UNAUTHORIZED,
        "the revoked session's refresh token"
    );
    let again = api
        .bearer(
            Method::DELETE,
            &format!("/api/sessions/{phone_id}/"),
            &laptop.token("access"),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "already revoked");
    let left: Vec<Value> = api.sessions(&laptop.token("access")).await;
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|s| s["id"] != phone_id.as_str()));
    assert_eq!(api.me(&laptop.token("access")).await.status, StatusCode::OK);
    assert_eq!(api.me(&tess.token("access")).await.status, StatusCode::OK);

    // --- the current session too: a logout with the access token
    let own = api
        .bearer(
            Method::DELETE,
            &format!("/api/sessions/{long_id}/"),
            &long.token("access"),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(
        api.me(&long.token("access")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api.sessions(&laptop.token("access")).await.len(), 1);
}

// ---------------------------------------------------------------- the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_by_default_every_route() {
    let dir = TempDir::new();
    let file = dir.0.join("e2e.db");
    let url = format!("sqlite://{}", file.display());
    let server = Server::start(&[("DATABASE_URL", &url)]);
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("the server created the SQLite file");
    scenario(&server, Db::Sqlite(pool), "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_every_route() {
    let server = Server::start(&[("DATABASE_URL", "memory")]);
    scenario(&server, Db::None, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_route() {
    let url = common::service_url(common::POSTGRES_URL.0, common::POSTGRES_URL.1);
    let pool = match sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
    {
        Ok(p) => p,
        Err(e) => return common::unavailable("PostgreSQL", e).unwrap_or(()),
    };
    let prefix = format!("{}_", &common::unique_name("e2e")[..16]);
    let server = Server::start(&[("DATABASE_URL", &url), ("TABLE_PREFIX", &prefix)]);
    scenario(&server, Db::Postgres(pool.clone()), &prefix).await;
    drop(server);
    let tables = [
        "jwt_auth_refresh_tokens",
        "jwt_auth_sessions",
        "jwt_auth_user_cutoffs",
        "jwt_auth_schema_versions",
        "jwt_auth_revocations",
        "users",
    ]
    .map(|t| format!("{prefix}{t}"))
    .join(", ");
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {tables} CASCADE"
    )))
    .execute(&pool)
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_every_route() {
    let url = common::service_url(common::MYSQL_URL.0, common::MYSQL_URL.1);
    let pool = match sqlx::mysql::MySqlPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
    {
        Ok(p) => p,
        Err(e) => return common::unavailable("MySQL", e).unwrap_or(()),
    };
    let prefix = format!("{}_", &common::unique_name("e2e")[..16]);
    let server = Server::start(&[("DATABASE_URL", &url), ("TABLE_PREFIX", &prefix)]);
    scenario(&server, Db::MySql(pool.clone()), &prefix).await;
    drop(server);
    for t in [
        "jwt_auth_refresh_tokens",
        "jwt_auth_sessions",
        "jwt_auth_user_cutoffs",
        "jwt_auth_schema_versions",
        "jwt_auth_revocations",
        "users",
    ] {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP TABLE IF EXISTS {prefix}{t}"
        )))
        .execute(&pool)
        .await;
    }
}

/// A configuration that cannot work: one line on stderr, exit code 2, no panic.
#[test]
fn bad_configuration_stops_with_one_line() {
    let dir = TempDir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("JWT_SECRET", "short")], "JWT_SECRET"),
        (vec![("DATABASE_URL", "not a url")], "DATABASE_URL"),
        (
            vec![("DATABASE_URL", "oracle://u:hunter2@h/db")],
            "DATABASE_URL",
        ),
        (
            vec![(
                "DATABASE_URL",
                "postgres://postgres:hunter2@127.0.0.1:1/nope",
            )],
            "cannot open the database",
        ),
        (
            vec![("DATABASE_URL", "mysql://root@127.0.0.1:1/nope")],
            "cannot open the database",
        ),
        (
            vec![
                ("DATABASE_URL", "memory"),
                ("REDIS_URL", "redis://127.0.0.1:1/"),
            ],
            "Redis",
        ),
        (vec![("BIND", "nowhere")], "BIND"),
        (
            vec![("DATABASE_URL", "memory"), ("BIND", &taken_addr)],
            "BIND",
        ),
        (vec![("JWT_ALG", "none")], "JWT_ALG"),
        (
            vec![
                ("JWT_ALG", "ES256"),
                ("JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
            ],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (
            vec![("JWT_ALG", "ES256"), ("JWT_PRIVATE_KEY_FILE", "Cargo.toml")],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (vec![("ACCESS_TTL_SECS", "0")], "ACCESS_TTL_SECS"),
        (vec![("REUSE_GRACE_SECS", "soon")], "REUSE_GRACE_SECS"),
        (vec![("METRICS_BIND", "nowhere")], "METRICS_BIND"),
        (
            vec![("DATABASE_URL", "memory"), ("METRICS_BIND", &taken_addr)],
            "METRICS_BIND",
        ),
    ];
    for (vars, mention) in cases {
        let mut cmd = server_command(&vars, &dir.0);
        if vars.iter().any(|(k, _)| *k == "JWT_PRIVATE_KEY_FILE") {
            cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        }
        let out = cmd.stdin(Stdio::null()).output().expect("the server runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{vars:?}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{vars:?}: one error line: {stderr}");
        assert!(errors[0].contains(mention), "{vars:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{vars:?}: {stderr}"
        );
        assert!(
            !stderr.contains("hunter2"),
            "{vars:?}: the password is printed: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{vars:?}: nothing starts");
    }
    drop(taken);
}

/// Nothing set but the port: a SQLite file in the working directory, a random
/// secret with a warning, and the quick start.
#[test]
fn defaults_work_on_a_fresh_machine() {
    let dir = TempDir::new();
    let mut child = server_command(&[("BIND", "127.0.0.1:0")], &dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let last = line.contains("/api/token/blacklist/");
            lines.push(line);
            if last {
                break;
            }
        }
        let _ = tx.send(lines);
    });
    let lines = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let lines = lines.expect("the quick start is printed").join("\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(lines.contains("listening on http://127.0.0.1:"), "{lines}");
    for route in [
        "/api/users/",
        "/api/token/",
        "/api/me/",
        "/api/token/refresh/",
        "/api/token/blacklist/",
    ] {
        assert!(
            lines.contains(route),
            "the quick start shows {route}: {lines}"
        );
    }
    assert!(stderr.contains("will not survive a restart"), "{stderr}");
    assert!(
        dir.0.join("tower-jwt-auth-example.db").exists(),
        "the SQLite file is in the working directory"
    );
}

/// Asymmetric algorithms with no key file: a generated pair whose public half the
/// JWKS route serves, and which verifies the tokens the server issues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_key_pairs_are_published() {
    for alg in ["ES256", "EdDSA", "RS256"] {
        let server = Server::start(&[("DATABASE_URL", "memory"), ("JWT_ALG", alg)]);
        let api = server.api();
        let jwks = api
            .send(Method::GET, "/.well-known/jwks.json", &[], Bytes::new())
            .await;
        assert_eq!(jwks.status, StatusCode::OK);
        let keys = jwks.json["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 1, "{alg}: {}", jwks.json);
        assert_eq!(keys[0]["alg"], alg);
        assert!(keys[0].get("d").is_none(), "{alg}: no private part");
        assert!(server.stderr_text().contains("will not survive a restart"));
        if alg == "ES256" {
            // A resource server with only the JWKS verifies the server's tokens.
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys[0].clone()).unwrap();
            let verifier = Jwt::builder()
                .signing_key(Key::hmac("unused", Algorithm::HS256, [7u8; 32]).unwrap())
                .verification_key(Key::from_jwk(&jwk).unwrap())
                .build()
                .unwrap();
            assert_eq!(api.register("erin").await.status, StatusCode::CREATED);
            let login = api.login("erin").await;
            let claims = verifier
                .validate::<NoCustomClaims>(&login.token("access"), TokenKind::Access)
                .unwrap();
            assert_eq!(
                api.me(&login.token("access")).await.json["id"],
                claims.user_id()
            );
        }
    }
}

/// A key file: its public half is what the JWKS serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_file_is_used() {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys");
    let file = keys.join("es256.pem");
    let server = Server::start(&[
        ("DATABASE_URL", "memory"),
        ("JWT_ALG", "ES256"),
        ("JWT_PRIVATE_KEY_FILE", file.to_str().unwrap()),
        ("JWT_KID", "2026-11"),
    ]);
    let jwks = server
        .api()
        .send(Method::GET, "/.well-known/jwks.json", &[], Bytes::new())
        .await;
    let public = Key::from_public_pem(
        "2026-11",
        Algorithm::ES256,
        std::fs::read(keys.join("es256.pub.pem")).unwrap(),
    )
    .unwrap();
    let expected = serde_json::to_value(public.public_jwk().unwrap()).unwrap();
    assert_eq!(jwks.json["keys"][0]["x"], expected["x"]);
    assert_eq!(jwks.json["keys"][0]["y"], expected["y"]);
    assert_eq!(jwks.json["keys"][0]["kid"], "2026-11");
    assert!(!server.stderr_text().contains("will not survive"));
}

/// SIGTERM: the request in flight finishes, then the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let mut server = Server::start(&[("DATABASE_URL", "memory")]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    // A registration whose body is still arriving when SIGTERM comes.
    let body = json!({ "username": "frank", "password": PASSWORD }).to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/users/ HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    sigterm(server.pid());
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "the request in flight finished: {answer}"
    );
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    // And new connections are refused.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Sessions in Redis (`REDIS_URL`), users in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_every_route() {
    let url = common::service_url(common::REDIS_URL.0, common::REDIS_URL.1);
    if let Err(e) = tower_jwt_auth::RedisStore::connect(&url).await {
        return common::unavailable("Redis", e).unwrap_or(());
    }
    // A prefix of its own (keys `e2e_..._jwt_auth:*`), and sessions short enough
    // that Redis forgets them soon after the test.
    let prefix = format!("{}_", &common::unique_name("e2e")[..16]);
    let server = Server::start(&[
        ("DATABASE_URL", "memory"),
        ("REDIS_URL", &url),
        ("TABLE_PREFIX", &prefix),
        ("SESSION_MAX_AGE_SECS", "600"),
    ]);
    scenario(&server, Db::None, &prefix).await;
}

/// Sessions in a Redis Cluster (`REDIS_CLUSTER_URLS`: 3 masters, 3 replicas,
/// started by the test), users in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_every_route() {
    let Some(cluster) = common::redis_cluster::cluster() else {
        return;
    };
    let prefix = format!("{}_", &common::unique_name("e2e")[..16]);
    let server = Server::start(&[
        ("DATABASE_URL", "memory"),
        ("REDIS_CLUSTER_URLS", &cluster.urls.join(",")),
        ("TABLE_PREFIX", &prefix),
        ("SESSION_MAX_AGE_SECS", "600"),
    ]);
    scenario(&server, Db::None, &prefix).await;
}

/// A reuse grace window lets the immediate predecessor be exchanged once more.
/// A refused oversized body gets its 413, not a reset connection: the server
/// reads and discards up to 8 MiB before answering (declared lengths; each
/// request on a fresh connection, as a client retrying would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_their_413_delivered() {
    let server = Server::start(&[("DATABASE_URL", "memory")]);
    let api = server.api();
    for size in [2 << 20, 8 << 20] {
        for path in [
            "/api/token/refresh/",
            "/api/token/",
            "/api/users/",
            "/api/me/",
        ] {
            for round in 0..5 {
                let r = api
                    .send(
                        Method::POST,
                        path,
                        &[
                            ("content-type", "application/json"),
                            ("connection", "close"),
                        ],
                        vec![b' '; size],
                    )
                    .await;
                assert_eq!(
                    r.status,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "{path}, {size} bytes, round {round}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_grace_window() {
    let server = Server::start(&[("DATABASE_URL", "memory"), ("REUSE_GRACE_SECS", "30")]);
    let api = server.api();
    assert_eq!(api.register("grace").await.status, StatusCode::CREATED);
    let r0 = api.login("grace").await.token("refresh");
    let r1 = api.refresh(&r0).await.token("refresh");
    let r2 = api.refresh(&r1).await;
    assert_eq!(r2.status, StatusCode::OK);
    let again = api.refresh(&r1).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the immediate predecessor, within grace: {}",
        again.json
    );
    assert_eq!(
        api.refresh(&r0).await.status,
        StatusCode::UNAUTHORIZED,
        "older generations never get grace"
    );
    assert_eq!(
        api.me(&again.token("access")).await.status,
        StatusCode::UNAUTHORIZED,
        "and that was reuse: the session is gone"
    );
}

/// `METRICS_BIND`: the crate's counters in Prometheus text format on a listener
/// of their own (not on the API's port), and the events hook's reuse alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_route_counts_validations_and_rotations() {
    // Window 0: the replay below is reuse at once (not a re-delivery).
    let server = Server::start(&[
        ("DATABASE_URL", "memory"),
        ("METRICS_BIND", "127.0.0.1:0"),
        ("REUSE_GRACE_SECS", "0"),
    ]);
    let url = server.metrics_url();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/metrics"),
        "{url}"
    );
    assert!(
        !url.starts_with(&format!("{}/", server.base)),
        "a port of its own"
    );
    let api = server.api();
    assert_eq!(api.register("mia").await.status, StatusCode::CREATED);
    let login = api.login("mia").await;
    for _ in 0..3 {
        assert_eq!(api.me(&login.token("access")).await.status, StatusCode::OK);
    }
    assert_eq!(api.me("x").await.status, StatusCode::UNAUTHORIZED);
    let next = api.refresh(&login.token("refresh")).await;
    assert_eq!(next.status, StatusCode::OK);
    // A replay: reuse detected, the session revoked, the alert logged.
    assert_eq!(
        api.refresh(&login.token("refresh")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.me(&next.token("access")).await.status,
        StatusCode::UNAUTHORIZED
    );

    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let res = client
        .get(url.parse().unwrap())
        .await
        .expect("the metrics route answers");
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
    };
    assert!(
        text.contains("# TYPE tower_jwt_auth_validations_total counter"),
        "{text}"
    );
    assert!(value(r#"tower_jwt_auth_validations_total{outcome="accepted"}"#) >= 3.0);
    assert!(value(r#"tower_jwt_auth_validations_total{outcome="malformed"}"#) >= 1.0);
    assert!(value(r#"tower_jwt_auth_validations_total{outcome="revoked"}"#) >= 1.0);
    assert_eq!(
        value(r#"tower_jwt_auth_rotations_total{outcome="rotated"}"#),
        1.0
    );
    assert_eq!(
        value(r#"tower_jwt_auth_rotations_total{outcome="reuse_detected"}"#),
        1.0
    );
    assert!(value(r#"tower_jwt_auth_store_call_seconds_count{op="rotate"}"#) >= 2.0);
    assert!(
        text.contains(r#"tower_jwt_auth_store_call_seconds_bucket{op="rotate",le="#),
        "store latency is a histogram: {text}"
    );
    // The revocation view answered the revocation checks: no store call.
    assert!(value(r#"tower_jwt_auth_revocation_checks_total{source="view"}"#) >= 3.0);
    // No token text, ever.
    assert!(!text.contains(&login.token("access")[..20]));

    // The API's port does not serve them.
    assert_eq!(
        api.send(Method::GET, "/metrics", &[], Bytes::new())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The events hook's alert for the replayed token.
    assert!(
        server.wait_stderr("security alert", Duration::from_secs(10)),
        "the reuse alert is logged: {}",
        server.stderr_text()
    );
}
