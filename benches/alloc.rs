//! Heap figures, counted by a counting global allocator (no timing noise):
//! - heap bytes per outstanding session (one refresh token) in `MemoryStore`, and
//!   per extra token record after rotations;
//! - heap allocations per validated request, for HS256, ES256, EdDSA and RS256:
//!   `JwtAuthLayer` (without and with the revocation check, without and with the
//!   verified-token cache) vs raw `jsonwebtoken::decode` of the same token;
//! - heap bytes per `TokenCache` entry, measured next to the cache's own estimate
//!   and its byte bound.
//!
//! `cargo bench --bench alloc`

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use serde::Deserialize;
use support::ready;
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::store::NewSession;
use tower_jwt_auth::store::RotateRequest;
use tower_jwt_auth::{
    Algorithm, Jwt, JwtAuthLayer, Key, MemoryStore, MemoryUsers, NoCustomClaims, Sessions,
    TokenCache, TokenKind, TokenStore,
};

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

fn memory_store() {
    let store = MemoryStore::new();
    let n = 100_000u64;
    let now = 1_000_000u64;
    let before = LIVE.load(Ordering::Relaxed);
    let mut sessions = Vec::with_capacity(n as usize);
    for i in 0..n {
        let s = NewSession::new(
            uuid::Uuid::new_v4(),
            format!("{:08}-0000-4000-8000-000000000000", i % 10_000),
            uuid::Uuid::new_v4(),
            now,
            now + 86_400,
            now + 30 * 86_400,
        )
        .with_label(None);
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
        let r = RotateRequest::new(
            *sid,
            user.clone(),
            *jti,
            uuid::Uuid::new_v4(),
            now + 1,
            86_400,
        )
        .with_grace(0);
        ready(store.rotate(&r)).unwrap();
    }
    let after_rotate = LIVE.load(Ordering::Relaxed);
    let per_rotation = (after_rotate - after_create) as f64 / n as f64;
    println!("MemoryStore, {n} sessions of 10,000 users (UUID user ids):");
    println!("  heap per outstanding session with one refresh token: {per_session:.0} bytes");
    println!("  heap per extra (used) token record after one rotation: {per_rotation:.0} bytes");
}

/// Allocations per call of `f`, over 1000 calls after a warm-up call.
fn count(f: &mut dyn FnMut()) -> f64 {
    f();
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        f();
    }
    (ALLOCS.load(Ordering::Relaxed) - before) as f64 / 1000.0
}

fn allocations_per_request(name: &str, key: Key, decoding: jsonwebtoken::DecodingKey) {
    let alg = key.algorithm();
    let jwt = Jwt::builder()
        .signing_key(key)
        .issuer("bench")
        .audience("api")
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let users = Arc::new(MemoryUsers::<uuid::Uuid, ()>::new());
    let id = uuid::Uuid::new_v4();
    users.insert(id, ());
    let sessions: Sessions<_> = Sessions::new(jwt.clone(), store.clone(), users);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let token = rt
        .block_on(sessions.login(&id, &NoCustomClaims, None))
        .unwrap()
        .access;
    let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let bare = service_fn(|_r: Request<()>| async {
        Ok::<_, Infallible>(Response::new(bytes::Bytes::new()))
    });
    let cache = || TokenCache::<NoCustomClaims>::new(1000, 1 << 20);
    let mut layered = JwtAuthLayer::new(jwt.clone()).layer(bare);
    let mut checked = JwtAuthLayer::new(jwt.clone())
        .revocation_check(store.clone())
        .layer(bare);
    let mut cached = JwtAuthLayer::new(jwt.clone()).cache(cache()).layer(bare);
    let mut cached_checked = JwtAuthLayer::new(jwt.clone())
        .revocation_check(store.clone())
        .cache(cache())
        .layer(bare);
    let mut cached_stale = JwtAuthLayer::new(jwt.clone())
        .revocation_check(store)
        .cache(cache().revocation_staleness(Duration::from_secs(60)))
        .layer(bare);
    let alone = cache();
    let mut bare = bare;
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.leeway = 0;
    validation.set_issuer(&["bench"]);
    validation.set_audience(&["api"]);
    let mk = || {
        Request::get("/")
            .header(http::header::AUTHORIZATION, header.clone())
            .body(())
            .unwrap()
    };
    let bare_allocs = count(&mut || assert!(ready(bare.call(mk())).is_ok()));
    let through = |svc: &mut dyn FnMut(Request<()>) -> u16| {
        count(&mut || assert_eq!(svc(mk()), 200)) - bare_allocs
    };
    let layer = through(&mut |r| ready(layered.call(r)).unwrap().status().as_u16());
    let revocation = through(&mut |r| ready(checked.call(r)).unwrap().status().as_u16());
    let hit = through(&mut |r| ready(cached.call(r)).unwrap().status().as_u16());
    let hit_checked = through(&mut |r| ready(cached_checked.call(r)).unwrap().status().as_u16());
    let hit_stale = through(&mut |r| ready(cached_stale.call(r)).unwrap().status().as_u16());
    let cache_alone =
        count(&mut || assert!(alone.validate(&jwt, &token, TokenKind::Access).is_ok()));
    let validate = count(&mut || {
        assert!(
            jwt.validate::<NoCustomClaims>(&token, TokenKind::Access)
                .is_ok()
        )
    });
    let raw = count(&mut || {
        assert!(jsonwebtoken::decode::<RawClaims>(&token, &decoding, &validation).is_ok())
    });
    println!(
        "| {name} | {bare_allocs:.1} | {layer:.1} | {revocation:.1} | {hit:.1} | {hit_checked:.1} | {hit_stale:.1} | {cache_alone:.1} | {validate:.1} | {raw:.1} |"
    );
}

/// App claims for the cache-memory rows: a role and a few scopes.
#[derive(Clone, serde::Serialize, Deserialize)]
struct AppClaims {
    role: String,
    scopes: Vec<String>,
}

/// Fills a cache with distinct tokens and compares its real heap (counted by
/// the allocator) with its own estimate and its bound.
fn cache_memory() {
    let jwt = Jwt::builder()
        .signing_key(Key::hmac("k1", Algorithm::HS256, [7u8; 32]).unwrap())
        .issuer("bench")
        .audience("api")
        .build()
        .unwrap();
    println!();
    println!(
        "TokenCache memory: 10,000 distinct HS256 access tokens, UUID user ids, one issuer and one audience:"
    );
    println!(
        "| claims type | token bytes | max entries | max bytes | entries held | real heap | real per entry | estimate (`approx_bytes`) | real / bound |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    fill::<NoCustomClaims>(&jwt, "`NoCustomClaims`", &NoCustomClaims);
    let app = AppClaims {
        role: "editor".into(),
        scopes: vec![
            "read:posts".into(),
            "write:posts".into(),
            "read:users".into(),
        ],
    };
    fill::<AppClaims>(&jwt, "role + 3 scopes", &app);
}

fn fill<C>(jwt: &Jwt, label: &str, custom: &C)
where
    C: serde::Serialize + serde::de::DeserializeOwned + Clone,
{
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let n = 10_000usize;
    let tokens: Vec<String> = (0..n)
        .map(|i| {
            jwt.issue_access(
                &format!("3f2b6c4e-8a61-4c43-9d1e-{i:012}"),
                uuid::Uuid::new_v4(),
                custom,
            )
            .unwrap()
            .0
        })
        .collect();
    for (max_entries, max_bytes) in [(n, 64 << 20), (n, 1 << 20), (1000, 64 << 20)] {
        let before = LIVE.load(Ordering::Relaxed);
        let cache = TokenCache::<C>::new(max_entries, max_bytes);
        for token in &tokens {
            cache.validate_at(jwt, token, TokenKind::Access, t).unwrap();
        }
        let real = LIVE.load(Ordering::Relaxed) - before;
        let held = cache.len();
        println!(
            "| {label} | {} | {max_entries} | {max_bytes} | {held} | {real} | {:.0} | {} | {:.2} |",
            tokens[0].len(),
            real as f64 / held as f64,
            cache.approx_bytes(),
            real as f64 / max_bytes as f64
        );
        drop(cache);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    memory_store();
    println!();
    println!("Heap allocations per request (the layer's own: the count minus the bare service's):");
    println!(
        "| alg | bare service (request + response) | layer | layer + revocation check | layer + cache (hit) | cached + revocation (staleness 0) | cached + revocation (staleness 60 s) | `TokenCache::validate` (hit) | `Jwt::validate` | raw `jsonwebtoken::decode` |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let secret = [7u8; 32];
    allocations_per_request(
        "HS256",
        Key::hmac("k1", Algorithm::HS256, secret).unwrap(),
        jsonwebtoken::DecodingKey::from_secret(&secret).unwrap(),
    );
    allocations_per_request(
        "ES256",
        Key::from_private_pem(
            "k1",
            Algorithm::ES256,
            include_str!("../tests/keys/es256.pem"),
        )
        .unwrap(),
        jsonwebtoken::DecodingKey::from_ec_pem(include_bytes!("../tests/keys/es256.pub.pem"))
            .unwrap(),
    );
    allocations_per_request(
        "EdDSA",
        Key::from_private_pem(
            "k1",
            Algorithm::EdDSA,
            include_str!("../tests/keys/ed25519.pem"),
        )
        .unwrap(),
        jsonwebtoken::DecodingKey::from_ed_pem(include_bytes!("../tests/keys/ed25519.pub.pem"))
            .unwrap(),
    );
    allocations_per_request(
        "RS256",
        Key::from_private_pem(
            "k1",
            Algorithm::RS256,
            include_str!("../tests/keys/rs256.pem"),
        )
        .unwrap(),
        jsonwebtoken::DecodingKey::from_rsa_pem(include_bytes!("../tests/keys/rs256.pub.pem"))
            .unwrap(),
    );
    outside_allocations();
    cache_memory();
}

/// A Keycloak-shaped ES256 access token (with `realm_access.roles` and the
/// usual claims the layer does not read) through a layer that trusts its
/// issuer and reads its roles: allocations per request, minus the bare
/// service's.
fn outside_allocations() {
    const ISS: &str = "https://sso.example.com/realms/acme";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "exp": now + 3600, "iat": now, "auth_time": now, "jti": "onrtac:3e1b7c2a-1f4d",
        "iss": ISS, "aud": "orders-api", "sub": "f3a1c9e2-5b7d-4e2a-8c1f-9d0e6b4a2c11",
        "typ": "Bearer", "azp": "orders-web", "sid": "5b1d2c3e-0a4f-4e6b-9c8d-7e6f5a4b3c2d",
        "acr": "1", "allowed-origins": ["https://orders.example.com"],
        "realm_access": {"roles": ["offline_access", "uma_authorization", "user"]},
        "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
        "scope": "openid orders:read profile email", "email_verified": true,
        "name": "Alice Example", "preferred_username": "alice", "given_name": "Alice",
        "family_name": "Example", "email": "alice@example.com", "client_id": "orders-web",
    });
    let pem = include_str!("../tests/keys/es256.pem");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("kc-1".into());
    let encoding = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    let issuer = tower_jwt_auth::TrustedIssuer::with_keys(
        ISS,
        [Key::from_private_pem("kc-1", Algorithm::ES256, pem).unwrap()],
    )
    .audience("orders-api")
    .roles_claim("realm_access.roles")
    .build()
    .unwrap();
    let bare = service_fn(|_r: Request<()>| async {
        Ok::<_, Infallible>(Response::new(bytes::Bytes::new()))
    });
    let mut layered = JwtAuthLayer::<NoCustomClaims>::trusting(issuer).layer(bare);
    let mut bare = bare;
    let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let mk = || {
        Request::get("/")
            .header(http::header::AUTHORIZATION, header.clone())
            .body(())
            .unwrap()
    };
    let bare_allocs = count(&mut || assert!(ready(bare.call(mk())).is_ok()));
    let layer =
        count(&mut || assert_eq!(ready(layered.call(mk())).unwrap().status(), 200)) - bare_allocs;
    println!();
    println!(
        "Outside token (Keycloak-shaped ES256, {} bytes, roles read from realm_access.roles), the layer's own allocations per request: {layer:.1}",
        token.len()
    );
}
