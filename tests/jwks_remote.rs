//! Remote keys from a JWKS server the test controls: discovery, caching,
//! refresh on an unknown `kid` (single-flight, rate-limited), bounded
//! staleness, 503 before any key, and every unsafe answer refused: slow,
//! 500, oversized, redirected elsewhere, an HMAC key, a key without `alg`.

#[path = "common/jwks_server.rs"]
mod jwks_server;
#[path = "common/outside.rs"]
mod outside;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use jsonwebtoken::Algorithm;
use jwks_server::{Answer, JwksServer};
use outside::*;
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_jwt_auth::{JwtAuthLayer, Key, NoCustomClaims, TrustedIssuer, TrustedIssuerBuilder};

const AUD: &str = "urn:orders";

type Body = Full<Bytes>;

fn jwk(kid: &str, alg: Algorithm, pem: &[u8]) -> Value {
    let key = Key::from_public_pem(kid, alg, pem).unwrap();
    serde_json::to_value(key.public_jwk().unwrap()).unwrap()
}

fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

fn claims(iss: &str) -> Value {
    keycloak_claims(iss, AUD, "read", &[])
}

fn es256(iss: &str, kid: &str) -> String {
    sign(
        Algorithm::ES256,
        ES256_PEM,
        kid,
        Some("at+jwt"),
        &claims(iss),
    )
}

/// An issuer with quick intervals, for tests.
fn quick(builder: TrustedIssuerBuilder) -> TrustedIssuer {
    builder
        .audience(AUD)
        .allow_http()
        .fetch_timeout(Duration::from_millis(500))
        .min_refetch_interval(Duration::from_millis(300))
        .build()
        .unwrap()
}

fn service(
    issuer: TrustedIssuer,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone
{
    JwtAuthLayer::<NoCustomClaims>::trusting(issuer).layer(service_fn(
        |_req: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::from("ok"))) },
    ))
}

async fn status(
    svc: &(impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone),
    token: &str,
) -> StatusCode {
    let req = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::default())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    if res.status() == StatusCode::SERVICE_UNAVAILABLE {
        assert!(res.headers().contains_key("retry-after"));
    }
    res.status()
}

#[tokio::test]
async fn discovery_then_cached_keys() {
    let server = JwksServer::start(Answer::Keys(jwks(&[]), None)).await;
    server.answer(Answer::Keys(
        jwks(&[jwk("k1", Algorithm::ES256, ES256_PUB_PEM)]),
        None,
    ));
    let issuer = quick(TrustedIssuer::discover(&server.base));
    let svc = service(issuer.clone());
    let token = es256(&server.base, "k1");
    for _ in 0..20 {
        assert_eq!(status(&svc, &token).await, StatusCode::OK);
    }
    assert_eq!(
        server.jwks_hits(),
        1,
        "the keys are fetched once, then cached"
    );
    assert_eq!(issuer.fetch_count(), 2, "discovery and the JWKS");
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let server = JwksServer::start(Answer::Keys(
        jwks(&[jwk("k1", Algorithm::ES256, ES256_PUB_PEM)]),
        None,
    ))
    .await;
    // The document names `server.base`; we trust a path under it.
    let iss = format!("{}/realms/acme", server.base);
    let issuer = quick(TrustedIssuer::discover(&iss));
    assert_eq!(
        status(&service(issuer), &es256(&iss, "k1")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(server.jwks_hits(), 0);
}

#[tokio::test]
async fn no_key_yet_is_503_then_the_provider_comes_up() {
    let server = JwksServer::start(Answer::Status(500)).await;
    let iss = "https://idp.test/";
    let issuer = quick(TrustedIssuer::jwks_url(iss, &server.jwks_url()));
    let svc = service(issuer.clone());
    let token = es256(iss, "k1");
    assert_eq!(status(&svc, &token).await, StatusCode::SERVICE_UNAVAILABLE);
    // Within the refetch interval no new fetch: still 503, one hit.
    assert_eq!(status(&svc, &token).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.jwks_hits(), 1);
    assert!(issuer.prefetch().await.is_err());

    server.answer(Answer::Keys(
        jwks(&[jwk("k1", Algorithm::ES256, ES256_PUB_PEM)]),
        None,
    ));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(status(&svc, &token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_slow_provider_times_out_as_503() {
    let keys = jwks(&[jwk("k1", Algorithm::ES256, ES256_PUB_PEM)]);
    let server = JwksServer::start(Answer::Slow(keys, Duration::from_secs(5))).await;
    let iss = "https://idp.test/";
    let svc = service(quick(TrustedIssuer::jwks_url(iss, &server.jwks_url())));
    let started = Instant::now();
    assert_eq!(
        status(&svc, &es256(iss, "k1")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_oversized_jwks_is_refused_with_or_without_a_length() {
    for streamed in [false, true] {
        let server = JwksServer::start(Answer::Oversized {
            bytes: 64 * 1024,
            streamed,
        })
        .await;
        let iss = "https://idp.test/";
        let issuer = TrustedIssuer::jwks_url(iss, &server.jwks_url())
            .audience(AUD)
            .allow_http()
            .max_response_size(16 * 1024)
            .build()
            .unwrap();
        let err = issuer.prefetch().await.unwrap_err();
        assert!(
            err.to_string().contains("over 16384 bytes"),
            "streamed {streamed}: {err}"
        );
        assert_eq!(server.jwks_hits(), 1);
    }
}

#[tokio::test]
async fn redirects_are_followed_within_the_origin_only() {
    let keys = jwks(&[jwk("k1", Algorithm::ES256, ES256_PUB_PEM)]);
    let server = JwksServer::start(Answer::Keys(keys.clone(), None)).await;
    let elsewhere = JwksServer::start(Answer::Keys(keys, None)).await;
    let iss = "https://idp.test/";

    server.answer(Answer::Redirect(format!("{}/moved/jwks", server.base)));
    server.serve_moved(jwks(&[jwk("k1", Algorithm::ES256, ES256_PUB_PEM)]));
    let svc = service(quick(TrustedIssuer::jwks_url(iss, &server.jwks_url())));
    assert_eq!(
        status(&svc, &es256(iss, "k1")).await,
        StatusCode::OK,
        "same origin: followed"
    );

    server.answer(Answer::Redirect(elsewhere.jwks_url()));
    let svc = service(quick(TrustedIssuer::jwks_url(iss, &server.jwks_url())));
    assert_eq!(
        status(&svc, &es256(iss, "k1")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(elsewhere.jwks_hits(), 0, "never followed to another origin");
}

#[tokio::test]
async fn an_hmac_key_in_the_jwks_never_verifies() {
    use base64::Engine;
    let secret = b"a shared secret of at least 32 bytes!!";
    let oct = json!({
        "kty": "oct", "kid": "hs", "alg": "HS256", "use": "sig",
        "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
    });
    let server = JwksServer::start(Answer::Keys(
        jwks(&[oct, jwk("k1", Algorithm::ES256, ES256_PUB_PEM)]),
        None,
    ))
    .await;
    let iss = "https://idp.test/";
    let svc = service(quick(TrustedIssuer::jwks_url(iss, &server.jwks_url())));
    assert_eq!(status(&svc, &es256(iss, "k1")).await, StatusCode::OK);
    let forged = sign_hs256(secret, "hs", &claims(iss));
    assert_eq!(status(&svc, &forged).await, StatusCode::UNAUTHORIZED);
    // HS256 keyed with the EC key's public PEM, under its kid.
    let confused = sign_hs256(ES256_PUB_PEM, "k1", &claims(iss));
    assert_eq!(status(&svc, &confused).await, StatusCode::UNAUTHORIZED);

    // A JWKS with only an HMAC key has no usable key at all.
    let only_oct =
        json!({"kty": "oct", "kid": "hs", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"});
    server.answer(Answer::Keys(jwks(&[only_oct]), None));
    let issuer = quick(TrustedIssuer::jwks_url(iss, &server.jwks_url()));
    assert!(issuer.prefetch().await.is_err());
}

#[tokio::test]
async fn a_key_without_alg_verifies_only_the_algorithm_its_type_implies() {
    let mut ec = jwk("ec", Algorithm::ES256, ES256_PUB_PEM);
    let mut rsa = jwk("rsa", Algorithm::RS256, RS256_PUB_PEM);
    ec.as_object_mut().unwrap().remove("alg");
    rsa.as_object_mut().unwrap().remove("alg");
    let mut enc = jwk("enc", Algorithm::ES256, ES256_PUB_PEM);
    enc["use"] = json!("enc");
    let server = JwksServer::start(Answer::Keys(jwks(&[ec, rsa, enc]), None)).await;
    let iss = "https://idp.test/";
    let svc = service(quick(TrustedIssuer::jwks_url(iss, &server.jwks_url())));
    assert_eq!(status(&svc, &es256(iss, "ec")).await, StatusCode::OK);
    let rs256 = sign(Algorithm::RS256, RS256_PEM, "rsa", None, &claims(iss));
    assert_eq!(status(&svc, &rs256).await, StatusCode::OK);
    let ps256 = sign(Algorithm::PS256, RS256_PEM, "rsa", None, &claims(iss));
    assert_eq!(
        status(&svc, &ps256).await,
        StatusCode::UNAUTHORIZED,
        "RSA without alg is RS256 only"
    );
    assert_eq!(
        status(&svc, &es256(iss, "enc")).await,
        StatusCode::UNAUTHORIZED,
        "an encryption key"
    );
}

#[tokio::test]
async fn an_unknown_kid_storm_fetches_at_most_once_per_interval() {
    let server = JwksServer::start(Answer::Keys(
        jwks(&[jwk("k1", Algorithm::ES256, ES256_PUB_PEM)]),
        None,
    ))
    .await;
    let iss = "https://idp.test/";
    let issuer = TrustedIssuer::jwks_url(iss, &server.jwks_url())
        .audience(AUD)
        .allow_http()
        .min_refetch_interval(Duration::from_secs(30))
        .build()
        .unwrap();
    let svc = service(issuer);
    assert_eq!(status(&svc, &es256(iss, "k1")).await, StatusCode::OK);
    assert_eq!(server.jwks_hits(), 1);

    // Within the interval of the first fetch, no unknown kid fetches.
    let storm: Vec<_> = (0..200)
        .map(|i| {
            let svc = svc.clone();
            let token = es256(iss, &format!("unknown-{i}"));
            tokio::spawn(async move { status(&svc, &token).await })
        })
        .collect();
    for s in storm {
        assert_eq!(s.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        server.jwks_hits(),
        1,
        "a storm of unknown kids fetched the keys"
    );
    assert_eq!(status(&svc, &es256(iss, "k1")).await, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_fetch_and_a_rotated_key_is_picked_up() {
    let server = JwksServer::start(Answer::Keys(
        jwks(&[jwk("k1", Algorithm::ES256, ES256_PUB_PEM)]),
        None,
    ))
    .await;
    let iss = "https://idp.test/";
    let svc = service(quick(TrustedIssuer::jwks_url(iss, &server.jwks_url())));
    assert_eq!(status(&svc, &es256(iss, "k1")).await, StatusCode::OK);

    // The provider rotates to a new key; tokens signed by it arrive at once.
    let mut b = Key::from_private_pem("k2", Algorithm::ES256, ES256_B_PEM).unwrap();
    b = b.verification_only();
    let b_jwk = serde_json::to_value(b.public_jwk().unwrap()).unwrap();
    server.answer(Answer::Keys(
        jwks(&[jwk("k1", Algorithm::ES256, ES256_PUB_PEM), b_jwk]),
        None,
    ));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let token = sign(Algorithm::ES256, ES256_B_PEM, "k2", None, &claims(iss));
    let wave: Vec<_> = (0..50)
        .map(|_| {
            let (svc, token) = (svc.clone(), token.clone());
            tokio::spawn(async move { status(&svc, &token).await })
        })
        .collect();
    for s in wave {
        assert_eq!(s.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(server.jwks_hits(), 2, "one fetch for the whole wave");
}

#[tokio::test]
async fn the_last_good_keys_serve_for_a_bounded_time() {
    let keys = jwks(&[jwk("k1", Algorithm::ES256, ES256_PUB_PEM)]);
    let server = JwksServer::start(Answer::Keys(keys.clone(), Some("max-age=0"))).await;
    let iss = "https://idp.test/";
    let issuer = TrustedIssuer::jwks_url(iss, &server.jwks_url())
        .audience(AUD)
        .allow_http()
        .refresh_interval(Duration::from_millis(200), Duration::from_secs(60))
        .min_refetch_interval(Duration::from_millis(100))
        .max_stale(Duration::from_millis(800))
        .build()
        .unwrap();
    let svc = service(issuer.clone());
    let token = es256(iss, "k1");
    assert_eq!(status(&svc, &token).await, StatusCode::OK);

    // The provider fails; the keys are due for refresh after 200 ms (the
    // lower bound on `max-age=0`), and keep serving until 200 + 800 ms.
    server.answer(Answer::Status(500));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        status(&svc, &token).await,
        StatusCode::OK,
        "stale keys still serve"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(server.jwks_hits() >= 2, "a background refresh was tried");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        status(&svc, &token).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "past the bound"
    );

    server.answer(Answer::Keys(keys, Some("max-age=3600")));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        status(&svc, &token).await,
        StatusCode::OK,
        "recovered by itself"
    );
    let hits = server.jwks_hits();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(status(&svc, &token).await, StatusCode::OK);
    assert_eq!(server.jwks_hits(), hits, "max-age=3600 is respected");
}

#[tokio::test]
async fn plain_http_needs_to_be_allowed() {
    let err = TrustedIssuer::jwks_url("https://idp.test/", "http://127.0.0.1:9/jwks")
        .audience(AUD)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not https"), "{err}");
    let err = TrustedIssuer::discover("http://127.0.0.1:9")
        .audience(AUD)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not https"), "{err}");
    // No audience: refused too.
    assert!(
        TrustedIssuer::discover("https://idp.test/")
            .build()
            .is_err()
    );
}
