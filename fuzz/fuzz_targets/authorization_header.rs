//! The `Authorization` (and `Cookie`) header parsing of `JwtAuthLayer`, through the
//! layer itself: arbitrary header bytes never panic and never reach the inner
//! service without a valid token.
#![no_main]

#[path = "common.rs"]
mod common;

use std::convert::Infallible;
use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::{Jwt, JwtAuthLayer, TokenSource};

static JWT: OnceLock<Jwt> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let jwt = JWT.get_or_init(common::jwt).clone();
    let inner = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::from("inner")))
    });
    // Split the input into up to three header values.
    let values: Vec<&[u8]> = data.splitn(3, |b| *b == b'\n').collect();
    for (source, name) in [
        (TokenSource::Bearer, "authorization"),
        (TokenSource::Cookie("access".into()), "cookie"),
    ] {
        let mut svc = JwtAuthLayer::new(jwt.clone())
            .token_source(source)
            .layer(inner);
        let mut req = Request::get("/");
        for v in &values {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                req = req.header(name, v);
            }
        }
        let Ok(req) = req.body(Full::default()) else {
            return;
        };
        let res = common::ready(svc.call(req)).expect("infallible");
        // The fuzzer cannot produce a valid HS256 token, so the inner service never answers.
        assert!(res.status().is_client_error(), "status {}", res.status());
    }
});
