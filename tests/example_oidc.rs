//! The example server trusting a real OpenID Provider (`OIDC_ISSUER`): its
//! tokens on `/api/claims/` and `/api/admin/` (scope `admin`), never on
//! `/api/me/`; the server's own tokens beside them.

mod common;
#[path = "common/oidc.rs"]
mod oidc;
#[path = "common/server.rs"]
mod server;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oidc::{AUDIENCE, Provider};
use serde_json::{Value, json};
use server::{Server, TempDir};

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    json: Value,
}

async fn send(base: &str, method: Method, path: &str, token: Option<&str>, body: Value) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let client = Client::builder(TokioExecutor::new()).build_http();
    let res = client
        .request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = res.status();
    assert!(!status.is_server_error(), "{path}: {status}");
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        challenge,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn get(base: &str, path: &str, token: &str) -> Answer {
    send(base, Method::GET, path, Some(token), Value::Null).await
}

#[tokio::test]
async fn the_example_server_trusts_the_configured_provider() {
    let dir = TempDir::new();
    let Some(provider) = Provider::start(&dir.0.join("key.json"), 0) else {
        return;
    };
    let server = Server::start(&[
        ("DATABASE_URL", "memory"),
        ("OIDC_ISSUER", &provider.issuer),
        ("OIDC_AUDIENCE", AUDIENCE),
        ("OIDC_ALLOW_HTTP", "1"),
    ]);
    let base = server.base.as_str();

    let admin = provider.token("read admin").await;
    let claims = get(base, "/api/claims/", &admin).await;
    assert_eq!(claims.status, StatusCode::OK, "{}", claims.json);
    assert_eq!(
        claims.json,
        json!({"sub": "api-client", "iss": provider.issuer, "scope": "read admin", "local": false})
    );
    assert_eq!(
        get(base, "/api/admin/", &admin).await.status,
        StatusCode::OK
    );

    let reader = provider.token("read").await;
    let refused = get(base, "/api/admin/", &reader).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json["error"], "insufficient_scope");
    assert_eq!(
        refused.challenge.as_deref(),
        Some(r#"Bearer realm="api", error="insufficient_scope", scope="admin""#)
    );
    // `/api/me/` is for the server's own users.
    assert_eq!(
        get(base, "/api/me/", &admin).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The server's own tokens, beside the provider's.
    let user = json!({"username": "ada", "password": "correct horse battery"});
    let created = send(base, Method::POST, "/api/users/", None, user.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let pair = send(base, Method::POST, "/api/token/", None, user).await;
    let own = pair.json["access"].as_str().unwrap().to_owned();
    let claims = get(base, "/api/claims/", &own).await;
    assert_eq!(claims.status, StatusCode::OK);
    assert_eq!(claims.json["local"], true);
    assert_eq!(
        get(base, "/api/admin/", &own).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(get(base, "/api/me/", &own).await.status, StatusCode::OK);
}

#[tokio::test]
async fn without_oidc_issuer_outside_tokens_are_refused() {
    let dir = TempDir::new();
    let Some(provider) = Provider::start(&dir.0.join("key.json"), 0) else {
        return;
    };
    let server = Server::start(&[("DATABASE_URL", "memory")]);
    let token = provider.token("read admin").await;
    let answer = get(&server.base, "/api/claims/", &token).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json["error"], "invalid_token");
}
