//! The layer's cost per request, next to raw `jsonwebtoken::decode` of the same
//! token, for HS256, ES256, EdDSA and RS256, each comparison in one run:
//!
//! - a bare service (building the request and the response: the baseline);
//! - the same behind `JwtAuthLayer`; with the revocation check on `MemoryStore`;
//! - with the verified-token cache (a hit): alone, with the revocation check
//!   asked on every request (staleness 0), and with a 1 s staleness bound;
//! - `TokenCache::validate` (a hit) and `Jwt::validate` on their own;
//! - raw `jsonwebtoken::decode` of the same token, same issuer and audience.
//!
//! ```text
//! cargo bench --bench layer -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! First the interleaved measurement (see `support/mod.rs`), whose per-round
//! ratios are the figures to compare, then criterion's own per-variant numbers.
//! `LAYER_ROUNDS` sets the rounds (default 101); `LAYER_ONLY=HS256` limits the
//! run to one algorithm.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use http::{HeaderValue, Request, Response};
use serde::Deserialize;
use support::{Rounds, Variant, interleaved, ready};
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::{
    Algorithm, Jwt, JwtAuthLayer, Key, MemoryStore, MemoryUsers, NoCustomClaims, Sessions,
    TokenCache, TokenKind,
};

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

const BARE: &str = "bare service";
const LAYER: &str = "behind JwtAuthLayer";
const CHECKED: &str = "layer + revocation check";
const CACHED: &str = "layer + cache (hit)";
const CACHED_CHECKED: &str = "layer + cache + revocation check (staleness 0)";
const CACHED_STALE: &str = "layer + cache + revocation check (staleness 1 s)";
const CACHE_ALONE: &str = "TokenCache::validate (hit)";
const VALIDATE: &str = "Jwt::validate";
const RAW: &str = "raw jsonwebtoken::decode";

struct Summary {
    alg: &'static str,
    rounds: Rounds,
    scans: Rounds,
    token_len: usize,
}

fn bench_alg(
    c: &mut Criterion,
    name: &'static str,
    key: Key,
    decoding: jsonwebtoken::DecodingKey,
) -> Summary {
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
    let cache = || TokenCache::<NoCustomClaims>::new(10_000, 16 << 20);
    let layered = JwtAuthLayer::new(jwt.clone()).layer(bare);
    let checked = JwtAuthLayer::new(jwt.clone())
        .revocation_check(store.clone())
        .layer(bare);
    let cached = JwtAuthLayer::new(jwt.clone()).cache(cache()).layer(bare);
    let cached_checked = JwtAuthLayer::new(jwt.clone())
        .revocation_check(store.clone())
        .cache(cache())
        .layer(bare);
    let cached_stale = JwtAuthLayer::new(jwt.clone())
        .revocation_check(store)
        .cache(cache().revocation_staleness(Duration::from_secs(1)))
        .layer(bare);
    let alone = cache();

    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.leeway = 0;
    validation.set_issuer(&["bench"]);
    validation.set_audience(&["api"]);
    // Sanity: every path accepts the token.
    assert!(jsonwebtoken::decode::<RawClaims>(&pair.access, &decoding, &validation).is_ok());
    for svc in [&layered, &checked, &cached, &cached_checked, &cached_stale] {
        assert_eq!(ready(svc.clone().call(req())).unwrap().status(), 200);
    }

    let token = pair.access.as_str();
    let serve = |svc| serve(svc, req);
    let mut variants = vec![
        Variant::new(BARE, {
            let mut bare = bare;
            move || assert!(ready(bare.call(req())).is_ok())
        }),
        Variant::new(LAYER, serve(layered)),
        Variant::new(CHECKED, serve(checked)),
        Variant::new(CACHED, serve(cached)),
        Variant::new(CACHED_CHECKED, serve(cached_checked)),
        Variant::new(CACHED_STALE, serve(cached_stale)),
        Variant::new(CACHE_ALONE, {
            let jwt = jwt.clone();
            move || assert!(alone.validate(&jwt, token, TokenKind::Access).is_ok())
        }),
        Variant::new(VALIDATE, {
            let jwt = jwt.clone();
            move || {
                assert!(
                    jwt.validate::<NoCustomClaims>(token, TokenKind::Access)
                        .is_ok()
                )
            }
        }),
        Variant::new(RAW, {
            let (decoding, validation) = (decoding.clone(), validation.clone());
            move || {
                assert!(jsonwebtoken::decode::<RawClaims>(token, &decoding, &validation).is_ok())
            }
        }),
    ];
    let rounds: usize = std::env::var("LAYER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(101);
    let r = interleaved(&mut variants, rounds, Duration::from_millis(1));
    r.print_medians(name);
    println!(
        "  layer cost (layer - bare) / raw decode:          {:.3}x",
        r.added_ratio(LAYER, BARE, RAW)
    );
    println!(
        "  cached layer cost (cached - bare) / raw decode:  {:.3}x",
        r.added_ratio(CACHED, BARE, RAW)
    );

    let scans = byte_scans(token);

    let mut g = c.benchmark_group(name);
    for v in variants.iter_mut() {
        let id: String = v
            .label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        g.bench_function(id, |b| b.iter(|| (v.run)()));
    }
    g.finish();
    Summary {
        alg: name,
        rounds: r,
        scans,
        token_len: token.len(),
    }
}

/// The two per-byte scans the layer makes over the token before any decoding,
/// copied from `src/auth/source.rs` (`bearer`: no space, comma or tab in the
/// token) and `src/token.rs` (`split`: base64url characters and dots only),
/// next to the same checks written as a branch-free fold over the bytes,
/// which the compiler vectorizes. Same inputs, same answers; interleaved.
fn byte_scans(token: &str) -> Rounds {
    let mut variants = vec![
        Variant::new("bearer check, as in source.rs", move || {
            assert!(!std::hint::black_box(token).contains([' ', ',', '\t']))
        }),
        Variant::new("bearer check, byte fold", move || {
            let t = std::hint::black_box(token).as_bytes();
            let bad = t.iter().fold(0u8, |a, &b| {
                a | u8::from((b == b' ') | (b == b',') | (b == b'\t'))
            });
            assert_eq!(bad, 0)
        }),
        Variant::new("split check, as in token.rs", move || {
            assert!(
                std::hint::black_box(token)
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            )
        }),
        Variant::new("split check, byte fold", move || {
            let t = std::hint::black_box(token).as_bytes();
            let bad = t.iter().fold(0u8, |a, &b| {
                a | u8::from(!(b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_') | (b == b'.')))
            });
            assert_eq!(bad, 0)
        }),
    ];
    interleaved(&mut variants, 41, Duration::from_millis(1))
}

/// One request through `svc`, which must accept it.
fn serve<'a, S>(mut svc: S, req: impl Fn() -> Request<()> + 'a) -> impl FnMut() + 'a
where
    S: Service<Request<()>, Response = Response<bytes::Bytes>> + 'a,
    S::Error: std::fmt::Debug,
{
    move || assert_eq!(ready(svc.call(req())).unwrap().status(), 200)
}

fn print_summary(all: &[Summary]) {
    println!();
    println!("Summary (interleaved medians; ratios are medians of per-round ratios)");
    println!();
    println!(
        "| alg | raw decode | layer − bare | layer / raw | + revocation / raw | cached / raw | cached + revocation (0) / raw | cached + revocation (1 s) / raw | `TokenCache::validate` / raw | `Jwt::validate` / raw |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for s in all {
        let r = &s.rounds;
        let (lo, hi) = r.added_ratio_iqr(LAYER, BARE, RAW);
        let (clo, chi) = r.added_ratio_iqr(CACHED, BARE, RAW);
        println!(
            "| {} | {:.0} ns | {:.0} ns | **{:.3}x** ({:.3}–{:.3}) | {:.3}x | **{:.3}x** ({:.3}–{:.3}) | {:.3}x | {:.3}x | {:.3}x | {:.3}x |",
            s.alg,
            r.median_ns(RAW),
            r.median_of(|t| t(LAYER) - t(BARE)),
            r.added_ratio(LAYER, BARE, RAW),
            lo,
            hi,
            r.added_ratio(CHECKED, BARE, RAW),
            r.added_ratio(CACHED, BARE, RAW),
            clo,
            chi,
            r.added_ratio(CACHED_CHECKED, BARE, RAW),
            r.added_ratio(CACHED_STALE, BARE, RAW),
            r.ratio(CACHE_ALONE, RAW),
            r.ratio(VALIDATE, RAW),
        );
    }
    println!();
    println!(
        "| alg | bare | layer | + revocation | cached | cached + rev (0) | cached + rev (1 s) | TokenCache::validate | Jwt::validate | raw decode |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for s in all {
        let r = &s.rounds;
        let ns = |l| format!("{:.0} ns", r.median_ns(l));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.alg,
            ns(BARE),
            ns(LAYER),
            ns(CHECKED),
            ns(CACHED),
            ns(CACHED_CHECKED),
            ns(CACHED_STALE),
            ns(CACHE_ALONE),
            ns(VALIDATE),
            ns(RAW)
        );
    }
}

fn print_scans(all: &[Summary]) {
    println!();
    println!("Per-byte scans of the token before decoding (interleaved medians, ns per token)");
    println!();
    println!(
        "| alg | token bytes | bearer check, as in source.rs | byte fold | split check, as in token.rs | byte fold |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for s in all {
        let r = &s.scans;
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            s.alg,
            s.token_len,
            r.median_ns("bearer check, as in source.rs"),
            r.median_ns("bearer check, byte fold"),
            r.median_ns("split check, as in token.rs"),
            r.median_ns("split check, byte fold"),
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let only = std::env::var("LAYER_ONLY").ok();
    let want = |name: &str| only.as_deref().is_none_or(|o| o.eq_ignore_ascii_case(name));
    let mut all = Vec::new();
    let secret = [7u8; 32];
    if want("HS256") {
        all.push(bench_alg(
            &mut c,
            "HS256",
            Key::hmac("k1", Algorithm::HS256, secret).unwrap(),
            jsonwebtoken::DecodingKey::from_secret(&secret).unwrap(),
        ));
    }
    type Pem = (
        &'static str,
        Algorithm,
        &'static str,
        &'static str,
        fn(&[u8]) -> jsonwebtoken::errors::Result<jsonwebtoken::DecodingKey>,
    );
    let asymmetric: [Pem; 3] = [
        (
            "ES256",
            Algorithm::ES256,
            include_str!("../tests/keys/es256.pem"),
            include_str!("../tests/keys/es256.pub.pem"),
            jsonwebtoken::DecodingKey::from_ec_pem,
        ),
        (
            "EdDSA",
            Algorithm::EdDSA,
            include_str!("../tests/keys/ed25519.pem"),
            include_str!("../tests/keys/ed25519.pub.pem"),
            jsonwebtoken::DecodingKey::from_ed_pem,
        ),
        (
            "RS256",
            Algorithm::RS256,
            include_str!("../tests/keys/rs256.pem"),
            include_str!("../tests/keys/rs256.pub.pem"),
            jsonwebtoken::DecodingKey::from_rsa_pem,
        ),
    ];
    for (name, alg, private, public, decoding) in asymmetric {
        if want(name) {
            all.push(bench_alg(
                &mut c,
                name,
                Key::from_private_pem("k1", alg, private).unwrap(),
                decoding(public.as_bytes()).unwrap(),
            ));
        }
    }
    print_summary(&all);
    print_scans(&all);
    c.final_summary();
}
