//! The layer's cost per request when the app has custom claims (a role, a
//! tenant, a plan and three scopes beside the registered claims), next to raw
//! `jsonwebtoken::decode` of the same claims into one struct, HS256, in one run:
//!
//! ```text
//! cargo bench --bench custom_claims
//! ```
//!
//! Interleaved rounds (see `support/mod.rs`); `LAYER_ROUNDS` sets their number
//! (default 101). The figure to compare is the layer's cost over the bare
//! service divided by raw decode's time, and `Jwt::validate`'s over raw decode.

mod support;

use std::convert::Infallible;
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use serde::{Deserialize, Serialize};
use support::{Variant, interleaved, ready};
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::{Algorithm, Claims, Jwt, JwtAuthLayer, Key, TokenKind};

/// The app's own claims.
#[derive(Serialize, Deserialize, Clone)]
struct AppClaims {
    role: String,
    tenant: String,
    plan: String,
    perms: Vec<String>,
}

/// What raw decode reads: the same registered claims the layer reads, and the
/// app's claims beside them, in one struct (as an app using jsonwebtoken
/// alone would write it; `#[serde(flatten)]` would buffer the payload and
/// slow raw decode down).
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
    role: String,
    tenant: String,
    plan: String,
    perms: Vec<String>,
}

const BARE: &str = "bare service";
const LAYER: &str = "behind JwtAuthLayer<AppClaims>";
const VALIDATE: &str = "Jwt::validate::<AppClaims>";
const RAW: &str = "raw jsonwebtoken::decode";

fn main() {
    let secret = [7u8; 32];
    let jwt = Jwt::builder()
        .signing_key(Key::hmac("k1", Algorithm::HS256, secret).unwrap())
        .issuer("bench")
        .audience("api")
        .build()
        .unwrap();
    let claims = AppClaims {
        role: "editor".into(),
        tenant: "0b7f6a52-3c1e-4f0a-9d2b-6e8c4a1f2d3e".into(),
        plan: "team".into(),
        perms: vec!["read".into(), "write".into(), "share".into()],
    };
    let pair = jwt
        .issue_pair("3f2b6c4e-8a61-4c43-9d1e-2a6f0b7c9e11", &claims)
        .unwrap();
    let token = pair.access.as_str();
    let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let req = || {
        Request::get("/")
            .header(http::header::AUTHORIZATION, header.clone())
            .body(())
            .unwrap()
    };
    let bare = service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(bytes::Bytes::new()))
    });
    // The inner service reads the claims, so the layer's work cannot be skipped.
    let reading = service_fn(|req: Request<()>| async move {
        let role = req
            .extensions()
            .get::<Claims<AppClaims>>()
            .map(|c| c.custom().role.len());
        assert_eq!(role, Some(6));
        Ok::<_, Infallible>(Response::new(bytes::Bytes::new()))
    });
    let layered = JwtAuthLayer::<AppClaims>::with_claims(jwt.clone()).layer(reading);

    let decoding = jsonwebtoken::DecodingKey::from_secret(&secret).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.leeway = 0;
    validation.set_issuer(&["bench"]);
    validation.set_audience(&["api"]);
    assert!(jsonwebtoken::decode::<RawClaims>(token, &decoding, &validation).is_ok());
    assert_eq!(ready(layered.clone().call(req())).unwrap().status(), 200);

    let mut variants = vec![
        Variant::new(BARE, {
            let mut bare = bare;
            move || assert!(ready(bare.call(req())).is_ok())
        }),
        Variant::new(LAYER, {
            let mut layered = layered;
            move || assert_eq!(ready(layered.call(req())).unwrap().status(), 200)
        }),
        Variant::new(VALIDATE, {
            let jwt = jwt.clone();
            move || {
                let claims = jwt.validate::<AppClaims>(token, TokenKind::Access).unwrap();
                assert_eq!(claims.custom().perms.len(), 3);
            }
        }),
        Variant::new(RAW, move || {
            let data = jsonwebtoken::decode::<RawClaims>(token, &decoding, &validation).unwrap();
            assert_eq!(data.claims.perms.len(), 3);
        }),
    ];
    let rounds: usize = std::env::var("LAYER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(101);
    let r = interleaved(&mut variants, rounds, Duration::from_millis(1));
    r.print_medians(&format!(
        "HS256, custom claims, token {} bytes",
        token.len()
    ));
    println!(
        "  layer cost (layer - bare) / raw decode:  {:.3}x",
        r.added_ratio(LAYER, BARE, RAW)
    );
    println!(
        "  Jwt::validate / raw decode:              {:.3}x",
        r.ratio(VALIDATE, RAW)
    );
}
