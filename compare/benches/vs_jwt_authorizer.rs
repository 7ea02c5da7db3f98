//! `JwtAuthLayer` next to jwt-authorizer's layer (0.15, the current release)
//! and raw `jsonwebtoken::decode`, on the same token, in the same run, for
//! HS256, ES256, EdDSA and RS256:
//!
//! - a bare service (building the request and the response: the baseline);
//! - the same behind `JwtAuthLayer` (signature, `exp`, issuer, audience, token
//!   type, claims into the request);
//! - the same behind jwt-authorizer's `AuthorizationLayer` with the same
//!   checks it offers (signature, `exp`, issuer, audience; claims into the
//!   request);
//! - raw `jsonwebtoken::decode` of the token with those checks (version 12,
//!   aws-lc-rs, what this crate uses), and the same with jsonwebtoken 9
//!   (ring), the version jwt-authorizer pins: its layer's own baseline.
//!
//! ```text
//! cd compare && cargo bench --bench vs_jwt_authorizer
//! ```
//!
//! Every request future is driven by one current-thread runtime's
//! `block_on` (jwt-authorizer's is not ready on its first poll), the same for
//! every variant, so the bare service carries that cost and the layer costs
//! subtract it. Ratios come from the interleaved measurement of
//! `benches/support/mod.rs`. `COMPARE_ROUNDS` sets the rounds (default 101).

#[path = "../../benches/support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum07::body::Body;
use http::{HeaderValue, Request, Response};
use jwt_authorizer::{AuthorizerBuilder, IntoLayer, Validation};
use serde::Deserialize;
use support::{Rounds, Variant, interleaved};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, Jwt, JwtAuthLayer, Key, MemoryStore, MemoryUsers, NoCustomClaims, Sessions,
};

/// The claims both layers and raw decode read.
#[derive(Clone, Debug, Deserialize)]
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
const OURS: &str = "behind JwtAuthLayer";
const THEIRS: &str = "behind jwt-authorizer";
const RAW: &str = "raw jsonwebtoken::decode";
const RAW9: &str = "raw jsonwebtoken 9 decode (jwt-authorizer's)";

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/keys");

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{KEYS}/{file}")).unwrap()
}

/// One algorithm: our key, jwt-authorizer's builder for the same key, and
/// the decoding key for raw decode.
struct Case {
    name: &'static str,
    key: Key,
    theirs: AuthorizerBuilder<RawClaims>,
    decoding: jsonwebtoken::DecodingKey,
    decoding9: jsonwebtoken9::DecodingKey,
    alg9: jsonwebtoken9::Algorithm,
}

fn cases() -> Vec<Case> {
    const SECRET: &str = "a benchmark secret of at least thirty-two bytes";
    let pem = |alg, private: &str, public: &str| {
        let public_pem = read(public);
        let decoding = match alg {
            Algorithm::ES256 => jsonwebtoken::DecodingKey::from_ec_pem(public_pem.as_bytes()),
            Algorithm::EdDSA => jsonwebtoken::DecodingKey::from_ed_pem(public_pem.as_bytes()),
            _ => jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()),
        }
        .unwrap();
        let theirs = match alg {
            Algorithm::ES256 => AuthorizerBuilder::from_ec_pem_text(&public_pem),
            Algorithm::EdDSA => AuthorizerBuilder::from_ed_pem_text(&public_pem),
            _ => AuthorizerBuilder::from_rsa_pem_text(&public_pem),
        };
        let decoding9 = match alg {
            Algorithm::ES256 => jsonwebtoken9::DecodingKey::from_ec_pem(public_pem.as_bytes()),
            Algorithm::EdDSA => jsonwebtoken9::DecodingKey::from_ed_pem(public_pem.as_bytes()),
            _ => jsonwebtoken9::DecodingKey::from_rsa_pem(public_pem.as_bytes()),
        }
        .unwrap();
        let key = Key::from_private_pem("k1", alg, read(private)).unwrap();
        (key, theirs, decoding, decoding9)
    };
    let (es, es_theirs, es_dec, es9) = pem(Algorithm::ES256, "es256.pem", "es256.pub.pem");
    let (ed, ed_theirs, ed_dec, ed9) = pem(Algorithm::EdDSA, "ed25519.pem", "ed25519.pub.pem");
    let (rs, rs_theirs, rs_dec, rs9) = pem(Algorithm::RS256, "rs256.pem", "rs256.pub.pem");
    use jsonwebtoken9::Algorithm as A9;
    vec![
        Case {
            name: "HS256",
            key: Key::hmac("k1", Algorithm::HS256, SECRET).unwrap(),
            theirs: AuthorizerBuilder::from_secret(SECRET),
            decoding: jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()).unwrap(),
            decoding9: jsonwebtoken9::DecodingKey::from_secret(SECRET.as_bytes()),
            alg9: A9::HS256,
        },
        Case {
            name: "ES256",
            key: es,
            theirs: es_theirs,
            decoding: es_dec,
            decoding9: es9,
            alg9: A9::ES256,
        },
        Case {
            name: "EdDSA",
            key: ed,
            theirs: ed_theirs,
            decoding: ed_dec,
            decoding9: ed9,
            alg9: A9::EdDSA,
        },
        Case {
            name: "RS256",
            key: rs,
            theirs: rs_theirs,
            decoding: rs_dec,
            decoding9: rs9,
            alg9: A9::RS256,
        },
    ]
}

/// A variant that sends one request through `svc` and checks the 200.
fn serve<'a, S>(
    rt: &'a tokio::runtime::Runtime,
    mut svc: S,
    req: impl Fn() -> Request<Body> + 'a,
) -> impl FnMut() + 'a
where
    S: Service<Request<Body>, Response = Response<Body>> + 'a,
    S::Error: std::fmt::Debug,
{
    move || {
        let res = rt.block_on(async { svc.ready().await.unwrap().call(req()).await });
        assert_eq!(res.unwrap().status(), 200);
    }
}

fn bench(case: Case, rounds: usize) -> (&'static str, Rounds) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let alg = case.key.algorithm();
    let jwt = Jwt::builder()
        .signing_key(case.key)
        .issuer("bench")
        .audience("api")
        .build()
        .unwrap();
    let users = Arc::new(MemoryUsers::<uuid::Uuid, ()>::new());
    let id = uuid::Uuid::new_v4();
    users.insert(id, ());
    let sessions: Sessions<_> = Sessions::new(jwt.clone(), Arc::new(MemoryStore::new()), users);
    let pair = rt
        .block_on(sessions.login(&id, &NoCustomClaims, None))
        .unwrap();
    let header = HeaderValue::from_str(&format!("Bearer {}", pair.access)).unwrap();
    let req = || {
        Request::get("/")
            .header(http::header::AUTHORIZATION, header.clone())
            .body(Body::empty())
            .unwrap()
    };

    let bare = service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    let ours = JwtAuthLayer::new(jwt).layer(bare);
    let validation = Validation::new().iss(&["bench"]).aud(&["api"]).leeway(0);
    let authorizer = rt
        .block_on(case.theirs.validation(validation).build())
        .unwrap();
    let theirs = vec![authorizer].into_layer().layer(bare);
    let mut raw_validation = jsonwebtoken::Validation::new(alg);
    raw_validation.leeway = 0;
    raw_validation.set_issuer(&["bench"]);
    raw_validation.set_audience(&["api"]);
    assert!(
        jsonwebtoken::decode::<RawClaims>(&pair.access, &case.decoding, &raw_validation).is_ok()
    );

    let mut validation9 = jsonwebtoken9::Validation::new(case.alg9);
    validation9.leeway = 0;
    validation9.set_issuer(&["bench"]);
    validation9.set_audience(&["api"]);
    let token9 = pair.access.clone();
    let token = pair.access.clone();
    let mut variants = vec![
        Variant::new(BARE, serve(&rt, bare, req)),
        Variant::new(OURS, serve(&rt, ours, req)),
        Variant::new(THEIRS, serve(&rt, theirs, req)),
        Variant::new(RAW, move || {
            let decoded =
                jsonwebtoken::decode::<RawClaims>(&token, &case.decoding, &raw_validation);
            assert!(decoded.is_ok());
        }),
        Variant::new(RAW9, move || {
            let decoded =
                jsonwebtoken9::decode::<RawClaims>(&token9, &case.decoding9, &validation9);
            assert!(decoded.is_ok());
        }),
    ];
    let r = interleaved(&mut variants, rounds, Duration::from_millis(1));
    r.print_medians(case.name);
    println!(
        "  JwtAuthLayer cost (layer - bare) / raw decode:   {:.3}x",
        r.added_ratio(OURS, BARE, RAW)
    );
    println!(
        "  jwt-authorizer cost (layer - bare) / raw decode: {:.3}x",
        r.added_ratio(THEIRS, BARE, RAW)
    );
    println!(
        "  jwt-authorizer cost / its own raw decode (v9):   {:.3}x",
        r.added_ratio(THEIRS, BARE, RAW9)
    );
    (case.name, r)
}

fn main() {
    let rounds: usize = std::env::var("COMPARE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(101);
    let all: Vec<_> = cases().into_iter().map(|c| bench(c, rounds)).collect();
    println!();
    println!(
        "| alg | JwtAuthLayer cost (IQR) | jwt-authorizer cost (IQR) | jwt-authorizer / its raw v9 decode | ours / theirs, ns per request |"
    );
    println!("| --- | ---: | ---: | ---: | --- |");
    for (name, r) in &all {
        let (ours_lo, ours_hi) = r.added_ratio_iqr(OURS, BARE, RAW);
        let (theirs_lo, theirs_hi) = r.added_ratio_iqr(THEIRS, BARE, RAW);
        println!(
            "| {name} | {:.3}x ({ours_lo:.3}–{ours_hi:.3}) | {:.3}x ({theirs_lo:.3}–{theirs_hi:.3}) | {:.3}x | {:.0} / {:.0} |",
            r.added_ratio(OURS, BARE, RAW),
            r.added_ratio(THEIRS, BARE, RAW),
            r.added_ratio(THEIRS, BARE, RAW9),
            r.median_ns(OURS),
            r.median_ns(THEIRS),
        );
    }
}
