//! How the cost per request grows with the store: `MemoryStore` holding 1k,
//! 100k and 1M outstanding sessions (one live refresh token each, ten sessions
//! per user), and requests carrying access tokens of 65,536 sessions picked at
//! random among them, in random order (so the lookups miss the CPU caches as
//! they would in a big store). Measured, each size against the others in one
//! interleaved run:
//!
//! - the revocation check alone (`TokenStore::is_revoked`);
//! - a request through `JwtAuthLayer` with the revocation check (HS256);
//! - the same with the verified-token cache (hits; the store still asked on
//!   every request, staleness 0);
//! - the first two again with a hot set: requests from 1,024 of the sessions
//!   only (a working set that fits the CPU caches, whatever the store's size),
//!   which tells the work done apart from the memory latency of a big store.
//!
//! ```text
//! cargo bench --bench scaling -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! `SCALING_ROUNDS` sets the interleaved rounds (default 41).

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use http::{HeaderValue, Request, Response};
use support::{Variant, interleaved, ready};
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::store::NewSession;
use tower_jwt_auth::{
    Algorithm, Jwt, JwtAuthLayer, Key, MemoryStore, NoCustomClaims, TokenCache, TokenStore,
};
use uuid::Uuid;

const SIZES: [(usize, &str); 3] = [(1_000, "1k"), (100_000, "100k"), (1_000_000, "1M")];
const SAMPLE: usize = 65_536;

/// A small deterministic generator (xorshift): the sample and its order.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Sized {
    label: &'static str,
    store: Arc<MemoryStore>,
    /// `(session, user, iat)` of the sampled sessions, in request order.
    checks: Vec<(Uuid, String, u64)>,
    /// `Bearer <token>` of the same sessions, same order.
    headers: Vec<HeaderValue>,
}

/// The hot set: requests cycle through the first `HOT` sampled sessions.
const HOT: usize = 1024;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn build(jwt: &Jwt, n: usize, label: &'static str, rng: &mut Rng) -> Sized {
    let store = Arc::new(MemoryStore::new());
    let t = now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let s = NewSession::new(
            Uuid::new_v4(),
            format!("00000000-0000-4000-8000-{:012}", i / 10),
            Uuid::new_v4(),
            t,
            t + 86_400,
            t + 30 * 86_400,
        )
        .with_label(None);
        ready(store.create_session(&s)).unwrap();
        ids.push((s.session_id, s.user_id));
    }
    let mut checks = Vec::with_capacity(SAMPLE);
    let mut headers = Vec::with_capacity(SAMPLE);
    for _ in 0..SAMPLE {
        let (sid, user) = &ids[(rng.next() % n as u64) as usize];
        let (token, _) = jwt.issue_access(user, *sid, &NoCustomClaims).unwrap();
        let value: &'static str = Box::leak(format!("Bearer {token}").into_boxed_str());
        headers.push(HeaderValue::from_static(value));
        checks.push((*sid, user.clone(), t));
    }
    Sized {
        label,
        store,
        checks,
        headers,
    }
}

fn main() {
    let jwt = Jwt::builder()
        .signing_key(Key::hmac("k1", Algorithm::HS256, [7u8; 32]).unwrap())
        .issuer("bench")
        .audience("api")
        .build()
        .unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let sized: Vec<Sized> = SIZES
        .iter()
        .map(|(n, label)| {
            let s = build(&jwt, *n, label, &mut rng);
            println!(
                "{label}: {} sessions, {} token records",
                s.store.session_count(),
                s.store.token_count()
            );
            s
        })
        .collect();

    let bare = service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(bytes::Bytes::new()))
    });
    const KINDS: [&str; 5] = [
        "is_revoked",
        "layer + revocation check",
        "layer + cache + revocation check",
        "is_revoked, hot set",
        "layer + revocation check, hot set",
    ];
    let labels: Vec<Vec<&'static str>> = sized
        .iter()
        .map(|s| {
            KINDS
                .iter()
                .map(|k| -> &'static str { Box::leak(format!("{k} ({})", s.label).into()) })
                .collect()
        })
        .collect();
    let mut variants = Vec::new();
    for (s, l) in sized.iter().zip(&labels) {
        for (k, label) in l.iter().enumerate() {
            let span = if k >= 3 { HOT } else { SAMPLE };
            let mut i = 0usize;
            if k == 0 || k == 3 {
                let store = s.store.clone();
                let checks = &s.checks;
                variants.push(Variant::new(label, move || {
                    let (sid, user, iat) = &checks[i % span];
                    i += 1;
                    assert!(!ready(store.is_revoked(*sid, user, *iat)).unwrap());
                }));
                continue;
            }
            let mut layer = JwtAuthLayer::new(jwt.clone()).revocation_check(s.store.clone());
            if k == 2 {
                layer = layer.cache(TokenCache::<NoCustomClaims>::new(2 * SAMPLE, 256 << 20));
            }
            let mut svc = layer.layer(bare);
            let headers = &s.headers;
            variants.push(Variant::new(label, move || {
                let req = Request::get("/")
                    .header(http::header::AUTHORIZATION, headers[i % span].clone())
                    .body(())
                    .unwrap();
                i += 1;
                assert_eq!(ready(svc.call(req)).unwrap().status(), 200);
            }));
        }
    }
    // Fill the caches: every sampled token once.
    for v in variants.iter_mut() {
        for _ in 0..SAMPLE {
            (v.run)();
        }
    }
    let rounds: usize = std::env::var("SCALING_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(41);
    let r = interleaved(&mut variants, rounds, Duration::from_millis(1));
    r.print_medians("Scaling");
    println!();
    println!("| measurement | 1k | 100k | 1M | 100k / 1k | 1M / 1k |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (k, name) in KINDS.iter().enumerate() {
        let (a, b, c) = (labels[0][k], labels[1][k], labels[2][k]);
        println!(
            "| {name} | {:.0} ns | {:.0} ns | {:.0} ns | {:.3}x | {:.3}x |",
            r.median_ns(a),
            r.median_ns(b),
            r.median_ns(c),
            r.ratio(b, a),
            r.ratio(c, a),
        );
    }
    println!();

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("scaling");
    for v in variants.iter_mut() {
        let id: String = v
            .label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        g.bench_function(id, |b| b.iter(|| (v.run)()));
    }
    g.finish();
    c.final_summary();
}
