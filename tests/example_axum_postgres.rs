//! `examples/axum_postgres.rs` run as a newcomer would run it, against the
//! PostgreSQL at `TEST_POSTGRES_URL` (skipped when unreachable, except under
//! `CI`), under a table prefix of its own: register, login (and the same 401
//! for a wrong password and an unknown user), `/api/me/` by the UUID column,
//! the optional route with and without a token, the role check, refresh,
//! logout, JWKS.

mod common;
#[path = "common/server.rs"]
mod server;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use server::Server;

async fn send(
    base: &str,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json");
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    let res = client
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_example_works_end_to_end() {
    let url = common::service_url(common::POSTGRES_URL.0, common::POSTGRES_URL.1);
    let pool = match sqlx::PgPool::connect(&url).await {
        Ok(pool) => pool,
        Err(e) => return common::unavailable("PostgreSQL", e).unwrap_or(()),
    };
    let prefix = format!("{}_", common::unique_name("ex"));
    let server = Server::start_example(
        "axum_postgres",
        &[("DATABASE_URL", &url), ("TABLE_PREFIX", &prefix)],
    );
    let base = server.base.clone();
    let post = |path: &'static str, body: Value| send(&base, Method::POST, path, None, body);

    let (status, ada) = post(
        "/api/users/",
        json!({"username": "ada", "password": "s3cret-pass"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ada}");
    let (status, _) = post(
        "/api/users/",
        json!({"username": "bob", "password": "hunter22"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, wrong) = post(
        "/api/token/",
        json!({"username": "ada", "password": "nope"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, unknown) = post(
        "/api/token/",
        json!({"username": "nobody", "password": "nope"}),
    )
    .await;
    assert_eq!((status, &unknown), (StatusCode::UNAUTHORIZED, &wrong));
    let (status, malformed) = post("/api/token/", json!({"username": "ada"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed["error"], "invalid_request");

    let (status, pair) = post(
        "/api/token/",
        json!({"username": "ada", "password": "s3cret-pass"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let access = pair["access"].as_str().unwrap().to_owned();
    let (status, me) = send(&base, Method::GET, "/api/me/", Some(&access), Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (me["id"].clone(), me["role"].clone()),
        (ada["id"].clone(), json!("admin"))
    );
    let (_, hello) = send(
        &base,
        Method::GET,
        "/api/hello/",
        Some(&access),
        Value::Null,
    )
    .await;
    assert_eq!(
        hello,
        json!(format!("hello {}", ada["id"].as_str().unwrap()))
    );
    let (_, guest) = send(&base, Method::GET, "/api/hello/", None, Value::Null).await;
    assert_eq!(guest, json!("hello guest"));
    let (status, _) = send(
        &base,
        Method::GET,
        "/api/hello/",
        Some("not.a.token"),
        Value::Null,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a bad token is not a guest"
    );
    let (status, _) = send(
        &base,
        Method::GET,
        "/api/admin/",
        Some(&access),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (_, bob) = post(
        "/api/token/",
        json!({"username": "bob", "password": "hunter22"}),
    )
    .await;
    let bob_access = bob["access"].as_str().unwrap();
    let (status, refused) = send(
        &base,
        Method::GET,
        "/api/admin/",
        Some(bob_access),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");

    let (status, next) = post("/api/token/refresh/", json!({"refresh": pair["refresh"]})).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    let (status, _) = post("/api/token/blacklist/", json!({"refresh": next["refresh"]})).await;
    assert_eq!(status, StatusCode::OK);
    let next_access = next["access"].as_str().unwrap();
    let (status, _) = send(
        &base,
        Method::GET,
        "/api/me/",
        Some(next_access),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "logged out at once");

    let (status, jwks) = send(
        &base,
        Method::GET,
        "/.well-known/jwks.json",
        None,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["alg"], "ES256");

    drop(server);
    for table in [
        "refresh_tokens",
        "sessions",
        "user_cutoffs",
        "schema_versions",
        "users",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP TABLE IF EXISTS \"{prefix}{table}\""
        )))
        .execute(&pool)
        .await
        .unwrap();
    }
}
