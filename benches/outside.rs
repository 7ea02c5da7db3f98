//! Outside tokens (a trusted issuer's, Keycloak-shaped) through the layer,
//! next to raw `jsonwebtoken::decode` of the same token, in the same
//! interleaved run, for ES256 and RS256, with the issuer's keys given
//! (static) and fetched from a JWKS server (remote, after the first fetch);
//! then the app's own HS256 token with and without a trusted issuer
//! configured (the cost of reading `iss` first); then two threads at once
//! against one thread, static keys against remote ones (the remote keys are
//! read through `arc-swap`, with no lock: their scaling should match).
//!
//! ```text
//! cargo bench --bench outside
//! ```
//!
//! `OUTSIDE_ROUNDS` sets the rounds (default 101).

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response};
use jsonwebtoken::{EncodingKey, Header};
use serde::Deserialize;
use serde_json::json;
use support::{Variant, interleaved, ready};
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::{Algorithm, Jwt, JwtAuthLayer, Key, NoCustomClaims, TrustedIssuer};

const ISS: &str = "https://sso.example.com/realms/acme";
const AUD: &str = "orders-api";

const BARE: &str = "bare service";
const STATIC: &str = "layer, trusted issuer (static keys)";
const REMOTE: &str = "layer, trusted issuer (JWKS)";
const RAW: &str = "raw jsonwebtoken::decode";

/// What raw decode reads: the claims the layer reads from an outside token.
#[derive(Deserialize)]
#[allow(dead_code)]
struct RawClaims {
    sub: String,
    exp: u64,
    iss: String,
    aud: String,
    scope: String,
    client_id: String,
}

fn rounds() -> usize {
    std::env::var("OUTSIDE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(101)
}

fn outside_token(alg: Algorithm, private_pem: &[u8]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "exp": now + 3600, "iat": now, "jti": "onrtac:3e1b7c2a-1f4d",
        "iss": ISS, "aud": AUD, "sub": "f3a1c9e2-5b7d-4e2a-8c1f-9d0e6b4a2c11",
        "typ": "Bearer", "azp": "orders-web", "scope": "orders:read profile",
        "client_id": "orders-web",
    });
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(private_pem).unwrap(),
        _ => EncodingKey::from_ec_pem(private_pem).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = Some("kc-1".into());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// A JWKS server on loopback (axum, on the runtime given), serving `jwks`.
fn jwks_server(rt: &tokio::runtime::Runtime, jwks: serde_json::Value) -> String {
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    })
}

struct Issuers {
    fixed: TrustedIssuer,
    remote: TrustedIssuer,
}

fn issuers(rt: &tokio::runtime::Runtime, key: Key) -> Issuers {
    let jwk = serde_json::to_value(key.public_jwk().unwrap()).unwrap();
    let url = jwks_server(rt, json!({ "keys": [jwk] }));
    let fixed = TrustedIssuer::with_keys(ISS, [key])
        .audience(AUD)
        .build()
        .unwrap();
    let remote = TrustedIssuer::jwks_url(ISS, &url)
        .audience(AUD)
        .allow_http()
        .build()
        .unwrap();
    rt.block_on(remote.prefetch()).unwrap();
    Issuers { fixed, remote }
}

fn bare()
-> impl Service<Request<()>, Response = Response<bytes::Bytes>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(bytes::Bytes::new()))
    })
}

fn request(header: &HeaderValue) -> Request<()> {
    Request::get("/")
        .header(http::header::AUTHORIZATION, header.clone())
        .body(())
        .unwrap()
}

fn serve<'a, S>(mut svc: S, header: &'a HeaderValue) -> impl FnMut() + 'a
where
    S: Service<Request<()>, Response = Response<bytes::Bytes>, Error = Infallible> + 'a,
{
    move || assert_eq!(ready(svc.call(request(header))).unwrap().status(), 200)
}

/// The outside token through the layer, beside raw decode.
fn bench_alg(
    rt: &tokio::runtime::Runtime,
    name: &'static str,
    alg: Algorithm,
    private: &[u8],
    public: &[u8],
) -> (f64, f64, f64, f64, f64, f64) {
    let token = outside_token(alg, private);
    let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let key = Key::from_public_pem("kc-1", alg, public).unwrap();
    let issuers = issuers(rt, key);
    let decoding = match alg {
        Algorithm::RS256 => jsonwebtoken::DecodingKey::from_rsa_pem(public).unwrap(),
        _ => jsonwebtoken::DecodingKey::from_ec_pem(public).unwrap(),
    };
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.leeway = 0;
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    assert!(jsonwebtoken::decode::<RawClaims>(&token, &decoding, &validation).is_ok());

    let fixed = JwtAuthLayer::<NoCustomClaims>::trusting(issuers.fixed).layer(bare());
    let remote = JwtAuthLayer::<NoCustomClaims>::trusting(issuers.remote).layer(bare());
    let _guard = rt.enter();
    let mut variants = vec![
        Variant::new(BARE, serve_bare(&header)),
        Variant::new(STATIC, serve(fixed, &header)),
        Variant::new(REMOTE, serve(remote, &header)),
        Variant::new(RAW, {
            let token = token.clone();
            move || {
                assert!(jsonwebtoken::decode::<RawClaims>(&token, &decoding, &validation).is_ok())
            }
        }),
    ];
    let r = interleaved(&mut variants, rounds(), Duration::from_millis(1));
    r.print_medians(name);
    let (slo, shi) = r.added_ratio_iqr(STATIC, BARE, RAW);
    let (rlo, rhi) = r.added_ratio_iqr(REMOTE, BARE, RAW);
    println!(
        "  static keys: (layer - bare) / raw = {:.3}x ({slo:.3}-{shi:.3}); JWKS: {:.3}x ({rlo:.3}-{rhi:.3}); raw {:.0} ns",
        r.added_ratio(STATIC, BARE, RAW),
        r.added_ratio(REMOTE, BARE, RAW),
        r.median_ns(RAW)
    );
    (
        r.added_ratio(STATIC, BARE, RAW),
        r.added_ratio(REMOTE, BARE, RAW),
        slo.min(rlo),
        shi.max(rhi),
        r.median_ns(RAW),
        r.median_of(|t| t(REMOTE) - t(BARE)),
    )
}

fn serve_bare(header: &HeaderValue) -> impl FnMut() + '_ {
    let mut svc = bare();
    move || assert!(ready(svc.call(request(header))).is_ok())
}

/// The app's own HS256 token, with and without a trusted issuer on the layer:
/// what reading `iss` before the signature costs the app's own tokens.
fn own_tokens_with_an_issuer(rt: &tokio::runtime::Runtime) {
    let jwt = Jwt::builder()
        .signing_key(Key::hmac("k1", Algorithm::HS256, [7u8; 32]).unwrap())
        .issuer("bench")
        .audience("api")
        .build()
        .unwrap();
    let (token, _) = jwt
        .issue_access("42", uuid::Uuid::new_v4(), &NoCustomClaims)
        .unwrap();
    let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let issuer = issuers(
        rt,
        Key::from_public_pem(
            "kc-1",
            Algorithm::ES256,
            include_bytes!("../tests/keys/es256.pub.pem"),
        )
        .unwrap(),
    )
    .fixed;
    let plain = JwtAuthLayer::new(jwt.clone()).layer(bare());
    let trusting = JwtAuthLayer::new(jwt).trust(issuer).layer(bare());
    let mut variants = vec![
        Variant::new(BARE, serve_bare(&header)),
        Variant::new("own HS256 token, no trusted issuer", serve(plain, &header)),
        Variant::new(
            "own HS256 token, one trusted issuer",
            serve(trusting, &header),
        ),
    ];
    let r = interleaved(&mut variants, rounds(), Duration::from_millis(1));
    r.print_medians("own HS256 token");
    println!(
        "  with an issuer / without, layer cost: {:.3}x",
        r.median_of(|t| (t("own HS256 token, one trusted issuer") - t(BARE))
            / (t("own HS256 token, no trusted issuer") - t(BARE)))
    );
}

/// ns per request on one thread and on two threads at once, for one layer.
fn scaling<S>(svc: S, header: &HeaderValue, n: usize) -> (f64, f64)
where
    S: Service<Request<()>, Response = Response<bytes::Bytes>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let run = |mut svc: S, header: HeaderValue| {
        move || {
            let start = Instant::now();
            for _ in 0..n {
                assert_eq!(ready(svc.call(request(&header))).unwrap().status(), 200);
            }
            start.elapsed().as_nanos() as f64 / n as f64
        }
    };
    let one = run(svc.clone(), header.clone())();
    let threads: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(run(svc.clone(), header.clone())))
        .collect();
    let two = threads.into_iter().map(|t| t.join().unwrap()).sum::<f64>() / 2.0;
    (one, two)
}

fn contention(rt: &tokio::runtime::Runtime) {
    let private = include_bytes!("../tests/keys/es256.pem");
    let public = include_bytes!("../tests/keys/es256.pub.pem");
    let token = outside_token(Algorithm::ES256, private);
    let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let issuers = issuers(
        rt,
        Key::from_public_pem("kc-1", Algorithm::ES256, public).unwrap(),
    );
    let fixed = JwtAuthLayer::<NoCustomClaims>::trusting(issuers.fixed).layer(bare());
    let remote = JwtAuthLayer::<NoCustomClaims>::trusting(issuers.remote).layer(bare());
    let _guard = rt.enter();
    let mut rows = Vec::new();
    for round in 0..7 {
        let (s1, s2) = scaling(fixed.clone(), &header, 4000);
        let (r1, r2) = scaling(remote.clone(), &header, 4000);
        rows.push((s2 / s1, r2 / r1));
        if round == 0 {
            println!(
                "  first round: static 1 thread {s1:.0} ns, 2 threads {s2:.0} ns; JWKS 1 thread {r1:.0} ns, 2 threads {r2:.0} ns"
            );
        }
    }
    let s = support::median(rows.iter().map(|r| r.0).collect());
    let r = support::median(rows.iter().map(|r| r.1).collect());
    println!(
        "ES256 outside token, ns per request with 2 threads / with 1 (median of 7 rounds): static keys {s:.3}, JWKS {r:.3}"
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let es = bench_alg(
        &rt,
        "ES256",
        Algorithm::ES256,
        include_bytes!("../tests/keys/es256.pem"),
        include_bytes!("../tests/keys/es256.pub.pem"),
    );
    let rs = bench_alg(
        &rt,
        "RS256",
        Algorithm::RS256,
        include_bytes!("../tests/keys/rs256.pem"),
        include_bytes!("../tests/keys/rs256.pub.pem"),
    );
    own_tokens_with_an_issuer(&rt);
    contention(&rt);
    println!();
    println!(
        "| alg | raw decode | (layer − bare) / raw, static keys | (layer − bare) / raw, JWKS | IQR (both) |"
    );
    println!("| --- | ---: | ---: | ---: | --- |");
    for (name, r) in [("ES256", es), ("RS256", rs)] {
        println!(
            "| {name} | {:.0} ns | **{:.3}x** | **{:.3}x** | {:.3}–{:.3} |",
            r.4, r.0, r.1, r.2, r.3
        );
    }
    let _ = Arc::new(());
}
