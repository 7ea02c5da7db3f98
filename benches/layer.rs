//! The layer's cost per request, next to raw `jsonwebtoken::decode` of the same
//! token, in one run: a bare service, the same service behind `JwtAuthLayer`, the
//! layer with the revocation check on `MemoryStore`, and the decode alone.
//!
//! `cargo bench --bench layer`
//!
//! Futures are polled once with a no-op waker: every service here is ready at
//! once, so the figures are the work itself, not a runtime's scheduling.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response};
use serde::Deserialize;
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::{
    Algorithm, Jwt, JwtAuthLayer, Key, MemoryStore, MemoryUsers, NoCustomClaims, Sessions,
};

/// A labelled closure that serves one request.
type Variant<'a> = (&'static str, Box<dyn FnMut() + 'a>);

fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("benchmarked future was not ready"),
    }
}

/// The claims raw decode reads: the same fields the layer reads.
#[derive(Deserialize)]
#[allow(dead_code)]
struct RawClaims {
    sub: String,
    exp: u64,
    iat: u64,
    jti: String,
    sid: String,
    token_type: String,
    iss: String,
    aud: String,
}

fn bench_alg(c: &mut Criterion, name: &str, key: Key, decoding: jsonwebtoken::DecodingKey) {
    let alg = key.algorithm();
    let jwt = Jwt::builder()
        .signing_key(key)
        .issuer("bench")
        .audience("api")
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let users = Arc::new(MemoryUsers::<uuid::Uuid, ()>::new());
    let id = uuid::Uuid::new_v4();
    users.insert(id, ());
    let sessions: Sessions<_> = Sessions::new(jwt.clone(), store.clone(), users);
    let pair = rt
        .block_on(sessions.login(&id, &NoCustomClaims, None))
        .unwrap();
    let header = HeaderValue::from_str(&format!("Bearer {}", pair.access)).unwrap();
    let req = || {
        Request::get("/")
            .header(http::header::AUTHORIZATION, header.clone())
            .body(())
            .unwrap()
    };

    let bare = service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(bytes::Bytes::new()))
    });
    let mut layered = JwtAuthLayer::new(jwt.clone()).layer(bare);
    let mut checked = JwtAuthLayer::new(jwt.clone())
        .revocation_check(store)
        .layer(bare);
    let mut bare = bare;

    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.leeway = 0;
    validation.set_issuer(&["bench"]);
    validation.set_audience(&["api"]);
    // Sanity: every path accepts the token.
    assert!(jsonwebtoken::decode::<RawClaims>(&pair.access, &decoding, &validation).is_ok());
    assert_eq!(ready(layered.call(req())).unwrap().status(), 200);
    assert_eq!(ready(checked.call(req())).unwrap().status(), 200);

    let mut variants: [Variant<'_>; 4] = [
        (
            "bare service",
            Box::new({
                let mut bare = bare;
                move || assert!(ready(bare.call(req())).is_ok())
            }),
        ),
        (
            "behind JwtAuthLayer",
            Box::new({
                let mut layered = layered.clone();
                move || assert!(ready(layered.call(req())).is_ok())
            }),
        ),
        (
            "layer + revocation check",
            Box::new({
                let mut checked = checked.clone();
                move || assert!(ready(checked.call(req())).is_ok())
            }),
        ),
        (
            "raw jsonwebtoken::decode",
            Box::new({
                let (token, decoding, validation) =
                    (pair.access.clone(), decoding.clone(), validation.clone());
                move || {
                    assert!(
                        jsonwebtoken::decode::<RawClaims>(&token, &decoding, &validation).is_ok()
                    )
                }
            }),
        ),
    ];
    interleaved(name, &mut variants);

    let mut g = c.benchmark_group(name);
    g.bench_function("bare_service", |b| {
        b.iter(|| ready(bare.call(black_box(req()))))
    });
    g.bench_function("jwt_auth_layer", |b| {
        b.iter(|| ready(layered.call(black_box(req()))))
    });
    g.bench_function("layer_with_revocation_check", |b| {
        b.iter(|| ready(checked.call(black_box(req()))))
    });
    g.bench_function("raw_jsonwebtoken_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<RawClaims>(black_box(&pair.access), &decoding, &validation)
                .unwrap()
        })
    });
    g.finish();
}

fn layer(c: &mut Criterion) {
    let secret = [7u8; 32];
    bench_alg(
        c,
        "HS256",
        Key::hmac("k1", Algorithm::HS256, secret).unwrap(),
        jsonwebtoken::DecodingKey::from_secret(&secret).unwrap(),
    );
    let pem = include_str!("../tests/keys/es256.pem");
    let public = include_str!("../tests/keys/es256.pub.pem");
    bench_alg(
        c,
        "ES256",
        Key::from_private_pem("k2", Algorithm::ES256, pem).unwrap(),
        jsonwebtoken::DecodingKey::from_ec_pem(public.as_bytes()).unwrap(),
    );
}

/// The same variants measured in alternation (batch A, batch B, ... repeated), the
/// median batch of each kept: on a noisy machine a neighbour's load hits every
/// variant alike, so the ratios hold even when absolute times drift.
fn interleaved(name: &str, variants: &mut [Variant<'_>]) {
    const ROUNDS: usize = 41;
    let batch = if name.starts_with("HS") { 2000 } else { 100 };
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); variants.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            let start = std::time::Instant::now();
            for _ in 0..batch {
                f();
            }
            times[i].push(start.elapsed().as_nanos() as f64 / batch as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let m: Vec<f64> = times.iter_mut().map(median).collect();
    let (bare, layer, checked, raw) = (m[0], m[1], m[2], m[3]);
    println!("{name} interleaved medians ({ROUNDS} rounds x {batch}):");
    for (i, (label, _)) in variants.iter().enumerate() {
        println!("  {label:<28} {:>10.0} ns", m[i]);
    }
    println!(
        "  layer cost (layer - bare) / raw decode = {:.2}x; with revocation check = {:.2}x",
        (layer - bare) / raw,
        (checked - bare) / raw
    );
}

criterion_group!(benches, layer);
criterion_main!(benches);
