//! Two example servers on one store, over HTTP: a logout and a revoke-all on
//! instance A refused by instance B's `/api/me/` (answered by B's revocation
//! view, no store call), within the bound: at once on PostgreSQL (`NOTIFY`)
//! and Redis (the log stream), within the poll interval on SQLite (a file both
//! open). Each prints how long B took to refuse.

mod common;
#[path = "common/server.rs"]
mod server;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use server::{Server, TempDir};

async fn send(
    base: &str,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json");
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let res = client
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = res.status();
    assert!(!status.is_server_error(), "{path}: {status}");
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn login(base: &str, user: &Value) -> (String, String) {
    let (status, pair) = send(base, Method::POST, "/api/token/", None, user.clone()).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    (
        pair["access"].as_str().unwrap().to_owned(),
        pair["refresh"].as_str().unwrap().to_owned(),
    )
}

/// How long B's `/api/me/` takes to refuse `access` (it must within `bound`).
async fn refused_on(base: &str, access: &str, bound: Duration, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        let (status, _) = send(base, Method::GET, "/api/me/", Some(access), Value::Null).await;
        if status == StatusCode::UNAUTHORIZED {
            return start.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            start.elapsed() < bound,
            "{what}: still accepted after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn scenario(db: &str, a: &Server, b: &Server, bound: Duration) {
    let user = json!({"username": "ada", "password": "correct horse battery"});
    let (status, _) = send(&a.base, Method::POST, "/api/users/", None, user.clone()).await;
    assert_eq!(status, StatusCode::CREATED);

    // A logout on A.
    let (access, refresh) = login(&a.base, &user).await;
    assert_eq!(
        send(&b.base, Method::GET, "/api/me/", Some(&access), Value::Null)
            .await
            .0,
        StatusCode::OK
    );
    let (status, _) = send(
        &a.base,
        Method::POST,
        "/api/token/blacklist/",
        None,
        json!({"refresh": refresh}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let logout = refused_on(&b.base, &access, bound, "logout").await;

    // A revoke-all on A, of two sessions.
    let (first, _) = login(&a.base, &user).await;
    let (second, _) = login(&b.base, &user).await;
    for t in [&first, &second] {
        assert_eq!(
            send(&b.base, Method::GET, "/api/me/", Some(t), Value::Null)
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, _) = send(
        &a.base,
        Method::POST,
        "/api/token/revoke-all/",
        Some(&first),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let all = refused_on(&b.base, &second, bound, "revoke-all").await;
    eprintln!("{db}: B refused a logout made on A after {logout:?}, a revoke-all after {all:?}");
}

fn pg_tables(prefix: &str) -> String {
    [
        "jwt_auth_refresh_tokens",
        "jwt_auth_sessions",
        "jwt_auth_user_cutoffs",
        "jwt_auth_schema_versions",
        "jwt_auth_revocations",
        "users",
    ]
    .map(|t| format!("{prefix}{t}"))
    .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_share_logouts_at_once() {
    let url = common::service_url(common::POSTGRES_URL.0, common::POSTGRES_URL.1);
    let pool = match sqlx::PgPool::connect(&url).await {
        Ok(p) => p,
        Err(e) => return common::unavailable("PostgreSQL", e).unwrap_or(()),
    };
    let prefix = format!("{}_", &common::unique_name("inst")[..16]);
    let vars = [
        ("DATABASE_URL", url.as_str()),
        ("TABLE_PREFIX", prefix.as_str()),
    ];
    let a = Server::start(&vars);
    let b = Server::start(&vars);
    scenario("PostgreSQL", &a, &b, Duration::from_millis(200)).await;
    drop((a, b));
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {} CASCADE",
        pg_tables(&prefix)
    )))
    .execute(&pool)
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_instances_share_logouts_at_once() {
    let redis = common::service_url(common::REDIS_URL.0, common::REDIS_URL.1);
    if let Err(e) = tower_jwt_auth::RedisStore::connect(&redis).await {
        return common::unavailable("Redis", e).unwrap_or(());
    }
    let url = common::service_url(common::POSTGRES_URL.0, common::POSTGRES_URL.1);
    let pool = match sqlx::PgPool::connect(&url).await {
        Ok(p) => p,
        Err(e) => return common::unavailable("PostgreSQL", e).unwrap_or(()),
    };
    // Users in PostgreSQL (both instances must know them), sessions in Redis.
    let prefix = format!("{}_", &common::unique_name("inst")[..16]);
    let vars = [
        ("DATABASE_URL", url.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("TABLE_PREFIX", prefix.as_str()),
        ("SESSION_MAX_AGE_SECS", "600"),
    ];
    let a = Server::start(&vars);
    let b = Server::start(&vars);
    scenario("Redis", &a, &b, Duration::from_millis(200)).await;
    drop((a, b));
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {prefix}users CASCADE"
    )))
    .execute(&pool)
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_instances_share_logouts_within_the_poll_interval() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("shared.db").display());
    let a = Server::start(&[("DATABASE_URL", &url)]);
    let b = Server::start(&[("DATABASE_URL", &url)]);
    // The view's default poll interval is 250 ms.
    scenario("SQLite", &a, &b, Duration::from_millis(250 + 300)).await;
}
