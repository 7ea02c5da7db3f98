//! Throughput with every core busy: a multi-threaded Tokio runtime, 64 tasks,
//! each sending requests with its own tokens (1024 sessions in all, HS256, the
//! algorithm where the layer's own work weighs most) through its own clone of
//! the service. Measured with 1 worker thread and with one per core, in
//! alternation; the scaling (requests/s with N workers over requests/s with 1)
//! of each variant is set against that of raw `jsonwebtoken::decode` done by
//! the same tasks, which shares nothing between threads. A shared lock or a
//! contended atomic on the layer's path would show as a scaling below raw
//! decode's.
//!
//! ```text
//! cargo bench --bench throughput -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! `THROUGHPUT_ROUNDS` sets the interleaved rounds (default 21).

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use http::{HeaderValue, Request, Response};
use serde::Deserialize;
use support::median;
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, Jwt, JwtAuthLayer, Key, MemoryStore, MemoryUsers, NoCustomClaims, Sessions,
    TokenCache,
};

const TASKS: usize = 64;
const SESSIONS: usize = 1024;

#[derive(Clone, Deserialize)]
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

type Bare = tower::util::ServiceFn<
    fn(Request<()>) -> std::future::Ready<Result<Response<bytes::Bytes>, Infallible>>,
>;
type Auth = tower_jwt_auth::JwtAuth<Bare, NoCustomClaims, tower_jwt_auth::JsonRejection>;

fn bare_service() -> Bare {
    service_fn(
        (|_req: Request<()>| std::future::ready(Ok(Response::new(bytes::Bytes::new()))))
            as fn(Request<()>) -> _,
    )
}

/// What one task does per request.
#[derive(Clone)]
enum Kind {
    Bare,
    Raw(Arc<(jsonwebtoken::DecodingKey, jsonwebtoken::Validation)>),
    Layer(Auth),
}

struct Fixture {
    /// `Bearer <token>` header values, `'static` so cloning one is free.
    headers: Arc<Vec<HeaderValue>>,
    variants: Vec<(&'static str, Kind)>,
}

fn fixture() -> Fixture {
    let secret = [7u8; 32];
    let jwt = Jwt::builder()
        .signing_key(Key::hmac("k1", Algorithm::HS256, secret).unwrap())
        .issuer("bench")
        .audience("api")
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let users = Arc::new(MemoryUsers::<uuid::Uuid, ()>::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut headers = Vec::with_capacity(SESSIONS);
    let sessions: Sessions<_> = Sessions::new(jwt.clone(), store.clone(), users.clone());
    for _ in 0..SESSIONS {
        let id = uuid::Uuid::new_v4();
        users.insert(id, ());
        let pair = rt
            .block_on(sessions.login(&id, &NoCustomClaims, None))
            .unwrap();
        let value: &'static str = Box::leak(format!("Bearer {}", pair.access).into_boxed_str());
        headers.push(HeaderValue::from_static(value));
    }
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_issuer(&["bench"]);
    validation.set_audience(&["api"]);
    let decoding = jsonwebtoken::DecodingKey::from_secret(&secret).unwrap();
    let cache = || TokenCache::<NoCustomClaims>::new(10_000, 16 << 20);
    let layer = |l: JwtAuthLayer| Kind::Layer(l.layer(bare_service()));
    let variants = vec![
        ("bare service", Kind::Bare),
        (
            "raw jsonwebtoken::decode",
            Kind::Raw(Arc::new((decoding, validation))),
        ),
        ("behind JwtAuthLayer", layer(JwtAuthLayer::new(jwt.clone()))),
        (
            "layer + revocation check",
            layer(JwtAuthLayer::new(jwt.clone()).revocation_check(store.clone())),
        ),
        (
            "layer + cache (hit)",
            layer(JwtAuthLayer::new(jwt.clone()).cache(cache())),
        ),
        (
            "layer + cache + revocation (staleness 0)",
            layer(
                JwtAuthLayer::new(jwt.clone())
                    .revocation_check(store.clone())
                    .cache(cache()),
            ),
        ),
        (
            "layer + cache + revocation (staleness 1 s)",
            layer(
                JwtAuthLayer::new(jwt.clone())
                    .revocation_check(store.clone())
                    .cache(cache().revocation_staleness(Duration::from_secs(1))),
            ),
        ),
    ];
    Fixture {
        headers: Arc::new(headers),
        variants,
    }
}

/// One task: `n` requests with the tokens `first`, `first + TASKS`, ...
async fn task(kind: Kind, headers: Arc<Vec<HeaderValue>>, first: usize, n: usize) {
    let mut bare = bare_service();
    let mut kind = kind;
    let mut i = first;
    for _ in 0..n {
        let header = headers[i % headers.len()].clone();
        i += TASKS;
        let req = Request::get("/")
            .header(http::header::AUTHORIZATION, header)
            .body(())
            .unwrap();
        let status = match &mut kind {
            Kind::Bare => bare.call(req).await.unwrap().status(),
            Kind::Raw(k) => {
                let token = req.headers()[http::header::AUTHORIZATION]
                    .to_str()
                    .unwrap()
                    .strip_prefix("Bearer ")
                    .unwrap();
                let claims = jsonwebtoken::decode::<RawClaims>(token, &k.0, &k.1).unwrap();
                let mut req = req;
                req.extensions_mut().insert(claims.claims);
                bare.call(req).await.unwrap().status()
            }
            Kind::Layer(svc) => svc.ready().await.unwrap().call(req).await.unwrap().status(),
        };
        assert_eq!(status, 200);
    }
}

/// `total` requests spread over `TASKS` tasks on `rt`; the wall time.
fn run(rt: &Runtime, kind: &Kind, headers: &Arc<Vec<HeaderValue>>, total: u64) -> Duration {
    let per = (total as usize).div_ceil(TASKS);
    rt.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..TASKS)
            .map(|t| tokio::spawn(task(kind.clone(), headers.clone(), t, per)))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        start.elapsed()
    })
}

fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .unwrap()
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let f = fixture();
    let one = runtime(1);
    let all = runtime(cores);

    // Interleaved: every round, each variant with 1 worker then with `cores`.
    let rounds: usize = std::env::var("THROUGHPUT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(21);
    // Requests per measurement: about 20 ms of one worker's work.
    let sizes: Vec<u64> = f
        .variants
        .iter()
        .map(|(_, kind)| {
            run(&one, kind, &f.headers, 2048); // warm up (and fill the caches)
            let t = run(&one, kind, &f.headers, 4096);
            ((4096.0 * 0.020 / t.as_secs_f64()) as u64).max(TASKS as u64)
        })
        .collect();
    let k = f.variants.len();
    let mut rps = vec![[Vec::new(), Vec::new()]; k];
    for round in 0..rounds {
        for j in 0..k {
            let i = (round + j) % k;
            let kind = &f.variants[i].1;
            for (w, rt) in [&one, &all].into_iter().enumerate() {
                let t = run(rt, kind, &f.headers, sizes[i]);
                rps[i][w].push(sizes[i] as f64 / t.as_secs_f64());
            }
        }
    }
    let raw = 1;
    println!(
        "Throughput, HS256, {TASKS} tasks, {SESSIONS} sessions; interleaved, {rounds} rounds, medians ({cores} cores)"
    );
    println!();
    println!(
        "| variant | requests/s, 1 worker | requests/s, {cores} workers | scaling ({cores} / 1) | scaling / raw decode's |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (i, (label, _)) in f.variants.iter().enumerate() {
        let scaling: Vec<f64> = (0..rounds).map(|r| rps[i][1][r] / rps[i][0][r]).collect();
        let relative: Vec<f64> = (0..rounds)
            .map(|r| (rps[i][1][r] / rps[i][0][r]) / (rps[raw][1][r] / rps[raw][0][r]))
            .collect();
        println!(
            "| {label} | {:.0} | {:.0} | {:.2}x | {:.2} |",
            median(rps[i][0].clone()),
            median(rps[i][1].clone()),
            median(scaling),
            median(relative),
        );
    }
    println!();

    let mut c = Criterion::default().configure_from_args();
    for (w, rt) in [(1, &one), (cores, &all)] {
        let mut g = c.benchmark_group(format!("throughput_{w}_workers"));
        g.throughput(Throughput::Elements(1));
        for (label, kind) in &f.variants {
            let id: String = label
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            g.bench_function(id, |b| {
                b.iter_custom(|iters| run(rt, kind, &f.headers, iters.max(TASKS as u64)))
            });
        }
        g.finish();
    }
    c.final_summary();
}
