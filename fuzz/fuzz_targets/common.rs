//! Shared by the targets: a fixed configuration, and a future polled to completion
//! (every service here is ready at once: no runtime needed).
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tower_jwt_auth::{Algorithm, Jwt, Key};

pub fn jwt() -> Jwt {
    Jwt::builder()
        .signing_key(Key::hmac("fuzz", Algorithm::HS256, [42u8; 32]).expect("key"))
        .issuer("fuzz")
        .audience("fuzz")
        .build()
        .expect("config")
}

pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return out;
        }
    }
}
