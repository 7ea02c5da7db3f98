//! Against a real OpenID Provider (node's `oidc-provider`, pinned in
//! `tests/oidc/VERSION`): JWT access tokens from the client_credentials grant
//! with a resource indicator, trusted through OpenID Connect discovery.

mod common;
#[path = "common/oidc.rs"]
mod oidc;
#[path = "common/server.rs"]
mod server;

use std::convert::Infallible;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use oidc::{AUDIENCE, Provider, free_port};
use serde_json::{Value, json};
use server::TempDir;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_jwt_auth::{Claims, JwtAuthLayer, NoCustomClaims, RequireClaims, TrustedIssuer};

type Body = Full<Bytes>;

fn issuer(provider_iss: &str, audience: &str) -> TrustedIssuer {
    TrustedIssuer::discover(provider_iss)
        .audience(audience)
        .require_at_jwt()
        .allow_http()
        .min_refetch_interval(Duration::from_millis(300))
        .build()
        .unwrap()
}

/// Answers the accepted token's claims.
fn app(
    issuer: TrustedIssuer,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone
{
    JwtAuthLayer::<NoCustomClaims>::trusting(issuer).layer(service_fn(
        |req: Request<Body>| async move {
            let c = req.extensions().get::<Claims>().unwrap();
            let body = json!({
                "sub": c.user_id(), "iss": c.issuer(), "aud": c.audience(),
                "scope": c.scopes(), "client_id": c.client_id(), "local": c.is_local(),
            });
            Ok::<_, Infallible>(Response::new(Body::from(body.to_string())))
        },
    ))
}

async fn call(
    svc: &(impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone),
    token: &str,
) -> (StatusCode, Value) {
    let req = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::default())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `token` with its header changed by `edit` (signature left as it was).
fn with_header(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[0]).unwrap()).unwrap();
    edit(&mut header);
    parts[0] = URL_SAFE_NO_PAD.encode(header.to_string());
    parts.join(".")
}

#[tokio::test]
async fn provider_tokens_are_accepted_with_their_claims_and_refused_when_wrong() {
    let dir = TempDir::new();
    let Some(provider) = Provider::start(&dir.0.join("key.json"), 0) else {
        return;
    };
    let svc = app(issuer(&provider.issuer, AUDIENCE));
    let token = provider.token("read admin").await;

    let (status, body) = call(&svc, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sub"], "api-client");
    assert_eq!(body["iss"], provider.issuer);
    assert_eq!(body["aud"], json!([AUDIENCE]));
    assert_eq!(body["scope"], json!(["read", "admin"]));
    assert_eq!(body["client_id"], "api-client");
    assert_eq!(body["local"], false);

    // Scope checks on a real token.
    let admin = RequireClaims::<NoCustomClaims>::any_scope(&["admin"]);
    let guarded = JwtAuthLayer::<NoCustomClaims>::trusting(issuer(&provider.issuer, AUDIENCE))
        .layer(admin.layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::from("{}")))
        })));
    assert_eq!(call(&guarded, &token).await.0, StatusCode::OK);
    let reader = provider.token("read").await;
    assert_eq!(call(&guarded, &reader).await.0, StatusCode::FORBIDDEN);

    // The wrong audience: an app that serves another resource.
    let other_api = app(issuer(&provider.issuer, "urn:another-api"));
    assert_eq!(call(&other_api, &token).await.0, StatusCode::UNAUTHORIZED);

    // Tampered: one character of the payload changed.
    let mut tampered = token.clone().into_bytes();
    let dot = token.find('.').unwrap();
    tampered[dot + 10] = if tampered[dot + 10] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(call(&svc, &tampered).await.0, StatusCode::UNAUTHORIZED);

    // HS256 keyed with the provider's public JWK (as JSON, and its `x`), under its kid.
    let jwks = provider.jwks().await;
    let public = &jwks["keys"][0];
    let payload = token.split('.').nth(1).unwrap();
    for secret in [
        public.to_string().into_bytes(),
        public["x"].as_str().unwrap().as_bytes().to_vec(),
    ] {
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": public["kid"]});
        let input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header.to_string()));
        let mac = {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
            aws_lc_rs::hmac::sign(&key, input.as_bytes())
        };
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
        assert_eq!(call(&svc, &forged).await.0, StatusCode::UNAUTHORIZED);
    }

    // A token of a second provider, which this app does not trust.
    let Some(untrusted) = Provider::start(&dir.0.join("other.json"), 0) else {
        return;
    };
    let foreign = untrusted.token("read admin").await;
    let (status, body) = call(&svc, &foreign).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Even under the trusted provider's kid.
    let foreign = with_header(&foreign, |h| h["kid"] = public["kid"].clone());
    assert_eq!(call(&svc, &foreign).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unknown_kid_storm_fetches_the_jwks_at_most_once() {
    let dir = TempDir::new();
    let Some(provider) = Provider::start(&dir.0.join("key.json"), 0) else {
        return;
    };
    let trusted = TrustedIssuer::discover(&provider.issuer)
        .audience(AUDIENCE)
        .allow_http()
        .min_refetch_interval(Duration::from_secs(30))
        .build()
        .unwrap();
    let svc = app(trusted);
    let token = provider.token("read").await;
    assert_eq!(call(&svc, &token).await.0, StatusCode::OK);
    let before = provider.jwks_fetches().await;
    assert_eq!(before, 1);

    let storm: Vec<_> = (0..300)
        .map(|i| {
            let svc = svc.clone();
            let forged = with_header(&token, |h| h["kid"] = json!(format!("storm-{i}")));
            tokio::spawn(async move { call(&svc, &forged).await.0 })
        })
        .collect();
    for s in storm {
        assert_eq!(s.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let after = provider.jwks_fetches().await;
    assert!(
        after - before <= 1,
        "{} fetches for the storm",
        after - before
    );
    assert_eq!(call(&svc, &token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_provider_restarted_with_a_new_key_is_followed_without_restarting_the_app() {
    let dir = TempDir::new();
    let Some(first) = Provider::start(&dir.0.join("key-1.json"), free_port()) else {
        return;
    };
    let port = first.port;
    let svc = app(issuer(&first.issuer, AUDIENCE));
    let old = first.token("read").await;
    assert_eq!(call(&svc, &old).await.0, StatusCode::OK);
    first.stop();

    // Same issuer (same port), a new signing key.
    let second = Provider::start(&dir.0.join("key-2.json"), port).unwrap();
    let new = second.token("read").await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, body) = call(&svc, &new).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The old key is gone from the provider's JWKS, and so from the app.
    assert_eq!(call(&svc, &old).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_provider_down_at_start_is_503_then_accepted_once_up() {
    let dir = TempDir::new();
    let key = dir.0.join("key.json");
    let Some(provider) = Provider::start(&key, free_port()) else {
        return;
    };
    let (iss, port) = (provider.issuer.clone(), provider.port);
    let token = provider.token("read").await;
    provider.stop();

    // A fresh app while the provider is down: 503, never 401.
    let svc = app(issuer(&iss, AUDIENCE));
    let req = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::default())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));

    let _provider = Provider::start(&key, port).unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, body) = call(&svc, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
