//! The refresh endpoint's body parsing: arbitrary bodies and content types never
//! panic and always get a 4xx JSON answer.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower::Service;
use tower_jwt_auth::{MemoryStore, MemoryUsers, NoCustomClaims, SessionEndpoint, Sessions};

type Endpoint = SessionEndpoint<MemoryUsers<uuid::Uuid, ()>, NoCustomClaims>;
static EP: OnceLock<(Endpoint, Endpoint)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (refresh, verify) = EP.get_or_init(|| {
        let sessions: Sessions<MemoryUsers<uuid::Uuid, ()>> = Sessions::new(
            common::jwt(),
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryUsers::new()),
        );
        (
            SessionEndpoint::refresh(sessions.clone()).body_limit(4096),
            SessionEndpoint::verify(sessions),
        )
    });
    let (ct, body) = match data.split_first() {
        Some((b, rest)) if b % 4 == 0 => ("text/plain", rest),
        Some((b, rest)) if b % 4 == 1 => ("application/json; charset=utf-8", rest),
        Some((_, rest)) => ("application/json", rest),
        None => ("application/json", data),
    };
    for ep in [refresh, verify] {
        let req = Request::post("/api/token/refresh/")
            .header("content-type", ct)
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("request");
        let res = common::ready(ep.clone().call(req)).expect("infallible");
        assert!(res.status().is_client_error(), "status {}", res.status());
    }
});
