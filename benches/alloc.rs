//! Heap figures, counted by a counting global allocator (no timing noise):
//! - heap bytes per outstanding session (one refresh token) in `MemoryStore`, and
//!   per extra token record after rotations;
//! - heap allocations per validated request: `JwtAuthLayer` vs raw `jsonwebtoken::decode`.
//!
//! `cargo bench --bench alloc`

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use http::{HeaderValue, Request, Response};
use serde::Deserialize;
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::store::NewSession;
use tower_jwt_auth::store::RotateRequest;
use tower_jwt_auth::{Algorithm, Jwt, JwtAuthLayer, Key, MemoryStore, NoCustomClaims, TokenStore};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("not ready"),
    }
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct RawClaims {
    sub: String,
    exp: u64,
    iat: u64,
    jti: String,
    sid: String,
    token_type: String,
}

fn memory_store() {
    let store = MemoryStore::new();
    let n = 100_000u64;
    let now = 1_000_000u64;
    let before = LIVE.load(Ordering::Relaxed);
    let mut sessions = Vec::with_capacity(n as usize);
    for i in 0..n {
        let s = NewSession {
            session_id: uuid::Uuid::new_v4(),
            user_id: format!("{:08}-0000-4000-8000-000000000000", i % 10_000),
            jti: uuid::Uuid::new_v4(),
            created_at: now,
            token_expires_at: now + 86_400,
            session_expires_at: now + 30 * 86_400,
            label: None,
        };
        ready(store.create_session(&s)).unwrap();
        sessions.push((s.session_id, s.user_id, s.jti));
    }
    let list_bytes = (sessions.capacity() * std::mem::size_of::<(uuid::Uuid, String, uuid::Uuid)>())
        as isize
        + sessions
            .iter()
            .map(|s| s.1.capacity() as isize)
            .sum::<isize>();
    let after_create = LIVE.load(Ordering::Relaxed);
    let per_session = (after_create - before - list_bytes) as f64 / n as f64;
    for (sid, user, jti) in &sessions {
        let r = RotateRequest {
            session_id: *sid,
            user_id: user.clone(),
            jti: *jti,
            successor_jti: uuid::Uuid::new_v4(),
            now: now + 1,
            refresh_ttl: 86_400,
            grace: 0,
        };
        ready(store.rotate(&r)).unwrap();
    }
    let after_rotate = LIVE.load(Ordering::Relaxed);
    let per_rotation = (after_rotate - after_create) as f64 / n as f64;
    println!("MemoryStore, {n} sessions of 10,000 users (UUID user ids):");
    println!("  heap per outstanding session with one refresh token: {per_session:.0} bytes");
    println!("  heap per extra (used) token record after one rotation: {per_rotation:.0} bytes");
}

fn allocations_per_request() {
    let secret = [7u8; 32];
    let jwt = Jwt::builder()
        .signing_key(Key::hmac("k1", Algorithm::HS256, secret).unwrap())
        .build()
        .unwrap();
    let (token, _) = jwt
        .issue_access(
            "3f2b6c4e-8a61-4c43-9d1e-2a6f0b7c9e11",
            uuid::Uuid::new_v4(),
            &NoCustomClaims,
        )
        .unwrap();
    let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let bare = service_fn(|_r: Request<()>| async {
        Ok::<_, Infallible>(Response::new(bytes::Bytes::new()))
    });
    let mut layered = JwtAuthLayer::new(jwt).layer(bare);
    let mut bare = bare;
    let decoding = jsonwebtoken::DecodingKey::from_secret(&secret).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_aud = false;
    let count = |f: &mut dyn FnMut()| {
        f(); // warm up
        let before = ALLOCS.load(Ordering::Relaxed);
        for _ in 0..1000 {
            f();
        }
        (ALLOCS.load(Ordering::Relaxed) - before) as f64 / 1000.0
    };
    let mk = || {
        Request::get("/")
            .header(http::header::AUTHORIZATION, header.clone())
            .body(())
            .unwrap()
    };
    let bare_allocs = count(&mut || {
        let r = ready(bare.call(mk()));
        assert!(r.is_ok());
    });
    let layer_allocs = count(&mut || {
        let r = ready(layered.call(mk())).unwrap();
        assert_eq!(r.status(), 200);
    });
    let decode_allocs = count(&mut || {
        jsonwebtoken::decode::<RawClaims>(&token, &decoding, &validation).unwrap();
    });
    println!("Heap allocations per request (HS256):");
    println!("  bare service (request + response): {bare_allocs:.1}");
    println!(
        "  behind JwtAuthLayer:               {layer_allocs:.1}  (layer's own: {:.1})",
        layer_allocs - bare_allocs
    );
    println!("  raw jsonwebtoken::decode:          {decode_allocs:.1}");
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    memory_store();
    allocations_per_request();
    let _ = Arc::new(());
}
