//! `examples/resource_server.rs` run against a real OpenID Provider, as a
//! user whose tokens come from Auth0 or Keycloak would run it.

mod common;
#[path = "common/oidc.rs"]
mod oidc;
#[path = "common/server.rs"]
mod server;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oidc::{AUDIENCE, Provider};
use serde_json::Value;
use server::{Server, TempDir};

async fn get(base: &str, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let res = client
        .request(req.body(Full::default()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_resource_server_example_guards_its_routes_with_the_providers_tokens() {
    let dir = TempDir::new();
    let Some(provider) = Provider::start(&dir.0.join("key.json"), 0) else {
        return;
    };
    let server = Server::start_example(
        "resource_server",
        &[
            ("OIDC_ISSUER", &provider.issuer),
            ("OIDC_AUDIENCE", AUDIENCE),
            ("OIDC_ALLOW_HTTP", "1"),
        ],
    );
    let base = server.base.as_str();
    let admin = provider.token("read admin").await;
    let reader = provider.token("read").await;

    assert_eq!(get(base, "/api/public/", None).await.0, StatusCode::OK);
    assert_eq!(
        get(base, "/api/claims/", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, claims) = get(base, "/api/claims/", Some(&reader)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claims["sub"], "api-client");
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["client_id"], "api-client");
    assert_eq!(
        get(base, "/api/orders/", Some(&reader)).await.0,
        StatusCode::OK
    );
    let (status, body) = get(base, "/api/admin/", Some(&reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(
        get(base, "/api/admin/", Some(&admin)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(base, "/api/orders/", Some("not.a.token")).await.0,
        StatusCode::UNAUTHORIZED
    );
}
