//! The verified-token cache (`TokenCache`): a cached token is never accepted
//! once it has expired, been revoked (past the staleness bound) or lost its key;
//! tampered variants miss; the bounds hold under a flood; many threads at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_jwt_auth::store::{NewSession, RotateOutcome, RotateRequest, SessionInfo};
use tower_jwt_auth::{
    Algorithm, Claims, Jwt, JwtAuthLayer, Key, MemoryStore, MemoryUsers, NoCustomClaims, Sessions,
    StoreError, TokenCache, TokenError, TokenKind, TokenStore,
};
use uuid::Uuid;

type Body = Full<Bytes>;

const SECRET: [u8; 32] = [7u8; 32];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hs256(kid: &str) -> Key {
    Key::hmac(kid, Algorithm::HS256, SECRET).unwrap()
}

fn jwt_with(leeway: u64) -> Jwt {
    Jwt::builder()
        .signing_key(hs256("k1"))
        .leeway(Duration::from_secs(leeway))
        .build()
        .unwrap()
}

fn access(jwt: &Jwt, user: &str) -> String {
    jwt.issue_access(user, Uuid::new_v4(), &NoCustomClaims)
        .unwrap()
        .0
}

/// A token signed by hand with `key`, with any registered times.
fn crafted(key: &Key, iat: u64, exp: u64, nbf: Option<u64>) -> String {
    let header = serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": key.kid()});
    let mut payload = serde_json::json!({
        "sub": "crafted",
        "token_type": "access",
        "jti": Uuid::new_v4().to_string(),
        "sid": Uuid::new_v4().to_string(),
        "iat": iat,
        "exp": exp,
    });
    if let Some(nbf) = nbf {
        payload["nbf"] = nbf.into();
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap())
    );
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

type Cache = TokenCache<NoCustomClaims>;

fn cached(cache: &Cache, jwt: &Jwt, token: &str, at: u64) -> Result<Claims, TokenError> {
    cache.validate_at(jwt, token, TokenKind::Access, at)
}

#[test]
fn a_cached_token_is_refused_at_exp_exactly_as_without_the_cache() {
    for leeway in [0, 30] {
        let jwt = jwt_with(leeway);
        let cache = Cache::new(100, 1 << 20);
        let token = access(&jwt, "u1");
        let exp = jwt
            .validate::<NoCustomClaims>(&token, TokenKind::Access)
            .unwrap()
            .expires_at();
        // Cached while valid.
        cached(&cache, &jwt, &token, now()).unwrap();
        assert_eq!(cache.len(), 1);
        // Around the expiry (and long after) the cache answers what a full
        // validation answers at the same instant, and never accepts after it.
        for at in (exp - 3)..(exp + leeway + 5) {
            let want = jwt.validate_at::<NoCustomClaims>(&token, TokenKind::Access, at);
            let got = cached(&cache, &jwt, &token, at);
            assert_eq!(
                got.is_ok(),
                want.is_ok(),
                "leeway {leeway}, at exp{:+}",
                at as i64 - exp as i64
            );
            if at >= exp + leeway {
                assert_eq!(got.unwrap_err(), TokenError::Expired);
            }
        }
        assert_eq!(
            cached(&cache, &jwt, &token, exp + leeway + 86_400).unwrap_err(),
            TokenError::Expired
        );
        // Still cached, still refused: the entry never outlives its token.
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cached(&cache, &jwt, &token, exp + leeway).unwrap_err(),
            TokenError::Expired
        );
    }
}

#[test]
fn nbf_and_a_future_iat_are_checked_on_every_hit() {
    let jwt = jwt_with(0);
    let key = hs256("k1");
    let t = now();
    // nbf 100 s ahead: refused before, accepted (and cached) after, refused
    // again from the cache when the clock given is before nbf.
    let token = crafted(&key, t, t + 1000, Some(t + 100));
    // Room for both tokens whatever shards they fall in (see
    // `a_retired_key_refuses_its_cached_tokens_at_once`).
    let cache = Cache::new(64 * 100, 1 << 24);
    assert_eq!(
        cached(&cache, &jwt, &token, t).unwrap_err(),
        TokenError::NotYetValid
    );
    assert!(cache.is_empty(), "a token that failed is never cached");
    cached(&cache, &jwt, &token, t + 100).unwrap();
    assert_eq!(cache.len(), 1);
    assert_eq!(
        cached(&cache, &jwt, &token, t + 99).unwrap_err(),
        TokenError::NotYetValid
    );
    // iat ahead of the clock: the same.
    let token = crafted(&key, t + 50, t + 1000, None);
    cached(&cache, &jwt, &token, t + 60).unwrap();
    assert_eq!(cache.len(), 2);
    assert_eq!(
        cached(&cache, &jwt, &token, t + 10).unwrap_err(),
        TokenError::IssuedInFuture
    );
}

#[tokio::test]
async fn the_layer_refuses_a_cached_token_once_it_expires() {
    let jwt = Jwt::builder()
        .signing_key(hs256("k1"))
        .access_ttl(Duration::from_secs(1))
        .build()
        .unwrap();
    let cache = Cache::new(100, 1 << 20);
    let svc = JwtAuthLayer::new(jwt.clone())
        .cache(cache.clone())
        .layer(ok_service());
    let (token, exp) = jwt
        .issue_access("u1", Uuid::new_v4(), &NoCustomClaims)
        .unwrap();
    assert_eq!(call(&svc, &token).await, StatusCode::OK);
    assert_eq!(call(&svc, &token).await, StatusCode::OK);
    assert_eq!(cache.len(), 1);
    while now() < exp {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(call(&svc, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        cache.len(),
        1,
        "refused from the cache, not evicted and re-validated"
    );
}

fn ok_service()
-> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send {
    service_fn(|req: Request<Body>| async move {
        let who = req
            .extensions()
            .get::<Claims>()
            .map(|c| c.user_id().to_owned())
            .unwrap_or_default();
        Ok::<_, Infallible>(Response::new(Body::from(who)))
    })
}

async fn call<S>(svc: &S, token: &str) -> StatusCode
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let req = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::default())
        .unwrap();
    svc.clone().oneshot(req).await.unwrap().status()
}

/// `MemoryStore`, counting the revocation checks.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    checks: AtomicUsize,
}

#[async_trait]
impl TokenStore for Counting {
    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        self.inner.create_session(s).await
    }
    async fn rotate(&self, r: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        self.inner.rotate(r).await
    }
    async fn revoke_session(&self, id: Uuid, user: &str, now: u64) -> Result<bool, StoreError> {
        self.inner.revoke_session(id, user, now).await
    }
    async fn revoke_user(&self, user: &str, now: u64) -> Result<u64, StoreError> {
        self.inner.revoke_user(user, now).await
    }
    async fn is_revoked(&self, id: Uuid, user: &str, iat: u64) -> Result<bool, StoreError> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        self.inner.is_revoked(id, user, iat).await
    }
    async fn list_sessions(&self, user: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError> {
        self.inner.list_sessions(user, now).await
    }
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }
}

async fn session_setup() -> (Jwt, Arc<Counting>, Sessions<MemoryUsers<Uuid, ()>>, Uuid) {
    let jwt = jwt_with(0);
    let store = Arc::new(Counting::default());
    let users = Arc::new(MemoryUsers::<Uuid, ()>::new());
    let id = Uuid::new_v4();
    users.insert(id, ());
    let sessions = Sessions::new(jwt.clone(), store.clone(), users);
    (jwt, store, sessions, id)
}

#[tokio::test]
async fn with_zero_staleness_a_revocation_refuses_the_cached_token_at_once() {
    let (jwt, store, sessions, id) = session_setup().await;
    let cache = Cache::new(100, 1 << 20);
    let svc = JwtAuthLayer::new(jwt)
        .revocation_check(store.clone())
        .cache(cache.clone())
        .layer(ok_service());
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    for _ in 0..3 {
        assert_eq!(call(&svc, &pair.access).await, StatusCode::OK);
    }
    assert_eq!(cache.len(), 1);
    // Zero staleness: the store is asked on every request, cached or not.
    assert_eq!(store.checks.load(Ordering::SeqCst), 3);
    sessions.logout(&pair.refresh).await.unwrap();
    assert_eq!(call(&svc, &pair.access).await, StatusCode::UNAUTHORIZED);
    // Final: refused from the cache without asking the store again.
    let checks = store.checks.load(Ordering::SeqCst);
    assert_eq!(call(&svc, &pair.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(store.checks.load(Ordering::SeqCst), checks);
}

#[tokio::test]
async fn with_a_staleness_bound_a_revocation_takes_effect_within_it() {
    let bound = Duration::from_secs(1);
    let (jwt, store, sessions, id) = session_setup().await;
    let cache = Cache::new(100, 1 << 20).revocation_staleness(bound);
    let svc = JwtAuthLayer::new(jwt)
        .revocation_check(store.clone())
        .cache(cache.clone())
        .layer(ok_service());

    // Session logout.
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    assert_eq!(call(&svc, &pair.access).await, StatusCode::OK);
    assert_eq!(store.checks.load(Ordering::SeqCst), 1);
    // Within the bound the store's answer is reused.
    assert_eq!(call(&svc, &pair.access).await, StatusCode::OK);
    assert_eq!(store.checks.load(Ordering::SeqCst), 1);
    sessions.logout(&pair.refresh).await.unwrap();
    // The store's last answer predates the logout: one bound after it, that
    // answer is stale whatever the timing, and the store refuses.
    tokio::time::sleep(bound).await;
    assert_eq!(call(&svc, &pair.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(store.checks.load(Ordering::SeqCst), 2);
    // From then on: refused at once, without the store.
    assert_eq!(call(&svc, &pair.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(store.checks.load(Ordering::SeqCst), 2);

    // Revoke every session of the user (a cutoff, not a session flag).
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    assert_eq!(call(&svc, &pair.access).await, StatusCode::OK);
    // The cutoff is in whole seconds: a token issued in the same second as the
    // revocation would survive it, cached or not.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call(&svc, &pair.access).await, StatusCode::OK);
    sessions.revoke_user(&id).await.unwrap();
    tokio::time::sleep(bound + Duration::from_millis(50)).await;
    assert_eq!(call(&svc, &pair.access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_cached_without_a_revocation_check_is_checked_by_a_layer_that_has_one() {
    // Two layers sharing one cache: the one without a check never vouches for
    // revocation on behalf of the other.
    let (jwt, store, sessions, id) = session_setup().await;
    let cache = Cache::new(100, 1 << 20).revocation_staleness(Duration::from_secs(3600));
    let plain = JwtAuthLayer::new(jwt.clone())
        .cache(cache.clone())
        .layer(ok_service());
    let checked = JwtAuthLayer::new(jwt)
        .revocation_check(store.clone())
        .cache(cache.clone())
        .layer(ok_service());
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    assert_eq!(call(&plain, &pair.access).await, StatusCode::OK);
    sessions.logout(&pair.refresh).await.unwrap();
    assert_eq!(call(&checked, &pair.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(store.checks.load(Ordering::SeqCst), 1);
}

#[test]
fn a_retired_key_refuses_its_cached_tokens_at_once() {
    let es256 = include_str!("keys/es256.pem");
    let es256_b = include_str!("keys/es256-b.pem");
    let jwt = Jwt::builder()
        .signing_key(Key::from_private_pem("old", Algorithm::ES256, es256).unwrap())
        .build()
        .unwrap();
    // Room for many entries per shard: with 100 entries over 64 shards each
    // shard holds one, and two tokens falling in one shard (1 run in 64)
    // would evict each other.
    let cache = Cache::new(64 * 100, 1 << 24);
    let old = access(&jwt, "u-old");
    cached(&cache, &jwt, &old, now()).unwrap();
    cached(&cache, &jwt, &old, now()).unwrap();

    // Rotation: the old key still verifies, so its tokens are still accepted
    // (verified once more, then cached again).
    jwt.rotate_signing_key(Key::from_private_pem("new", Algorithm::ES256, es256_b).unwrap())
        .unwrap();
    let new = access(&jwt, "u-new");
    cached(&cache, &jwt, &old, now()).unwrap();
    cached(&cache, &jwt, &new, now()).unwrap();
    assert_eq!(cache.len(), 2);

    // Retirement: the old key's token is refused on its very next use.
    assert!(jwt.retire_key("old"));
    assert_eq!(
        cached(&cache, &jwt, &old, now()).unwrap_err(),
        TokenError::UnknownKey
    );
    assert_eq!(
        cached(&cache, &jwt, &old, now()).unwrap_err(),
        TokenError::UnknownKey
    );
    assert_eq!(
        cached(&cache, &jwt, &new, now()).unwrap().user_id(),
        "u-new"
    );
}

#[tokio::test]
async fn the_layer_refuses_a_retired_keys_cached_token_at_once() {
    let jwt = Jwt::builder().signing_key(hs256("old")).build().unwrap();
    let svc = JwtAuthLayer::new(jwt.clone())
        .cache(Cache::new(100, 1 << 20))
        .layer(ok_service());
    let token = access(&jwt, "u1");
    assert_eq!(call(&svc, &token).await, StatusCode::OK);
    assert_eq!(call(&svc, &token).await, StatusCode::OK);
    jwt.rotate_signing_key(Key::hmac("new", Algorithm::HS256, [8u8; 32]).unwrap())
        .unwrap();
    assert_eq!(call(&svc, &token).await, StatusCode::OK);
    assert!(jwt.retire_key("old"));
    assert_eq!(call(&svc, &token).await, StatusCode::UNAUTHORIZED);
}

#[test]
fn another_jwt_never_accepts_a_token_cached_by_the_first() {
    // Same key, different audience: the entry names the key set that verified
    // it, and the second Jwt's is another.
    let a = Jwt::builder()
        .signing_key(hs256("k1"))
        .audience("a")
        .build()
        .unwrap();
    let b = Jwt::builder()
        .signing_key(hs256("k1"))
        .audience("b")
        .build()
        .unwrap();
    let cache = Cache::new(100, 1 << 20);
    let token = access(&a, "u1");
    cached(&cache, &a, &token, now()).unwrap();
    assert_eq!(
        cached(&cache, &b, &token, now()).unwrap_err(),
        TokenError::Audience
    );
    cached(&cache, &a, &token, now()).unwrap();
}

#[test]
fn a_cached_token_answers_only_for_its_own_kind() {
    let jwt = jwt_with(0);
    let cache = Cache::new(100, 1 << 20);
    let pair = jwt.issue_pair("u1", &NoCustomClaims).unwrap();
    cache
        .validate(&jwt, &pair.refresh, TokenKind::Refresh)
        .unwrap();
    assert_eq!(
        cache
            .validate(&jwt, &pair.refresh, TokenKind::Access)
            .unwrap_err(),
        TokenError::WrongType
    );
}

#[test]
fn tampered_variants_of_a_cached_token_are_refused() {
    let jwt = jwt_with(0);
    let cache = Cache::new(1000, 1 << 22);
    let token = access(&jwt, "u1");
    cached(&cache, &jwt, &token, now()).unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut variants = Vec::new();
    for (i, b) in token.bytes().enumerate() {
        if b == b'.' {
            continue;
        }
        // Two substitutions per position, from the base64url alphabet.
        for s in [alphabet[(i * 7 + 1) % 64], alphabet[(i * 13 + 5) % 64]] {
            if s != b {
                let mut v = token.clone().into_bytes();
                v[i] = s;
                variants.push(String::from_utf8(v).unwrap());
            }
        }
    }
    variants.push(format!("{token}A"));
    variants.push(token[..token.len() - 1].to_owned());
    variants.push(format!("{token}."));
    variants.push(format!(" {token}"));
    variants.push(token.to_ascii_uppercase());
    let mut refused = 0;
    for v in &variants {
        match cached(&cache, &jwt, v, now()) {
            Err(_) => refused += 1,
            // A last-character change that only flips base64 padding bits is
            // refused too (canonical base64): nothing else may pass.
            Ok(_) => panic!("a tampered variant was accepted: {v}"),
        }
    }
    assert_eq!(refused, variants.len());
    assert_eq!(cache.len(), 1, "failed tokens are never cached");
    cached(&cache, &jwt, &token, now()).unwrap();
}

#[test]
fn the_entry_bound_holds_under_a_flood_of_distinct_valid_tokens() {
    let jwt = jwt_with(0);
    let cache = Cache::new(1000, 64 << 20);
    let hot = access(&jwt, "hot");
    // A fixed clock a little ahead: no token minted during the test is from its future.
    let t = now() + 60;
    for i in 0..100_000u32 {
        let token = access(&jwt, &format!("user-{i}"));
        assert_eq!(
            cached(&cache, &jwt, &token, t).unwrap().user_id(),
            format!("user-{i}")
        );
        if i % 10 == 0 {
            // A token in use all along.
            assert_eq!(cached(&cache, &jwt, &hot, t).unwrap().user_id(), "hot");
        }
        if i % 1000 == 999 {
            assert!(cache.len() <= 1000, "{} entries", cache.len());
        }
    }
    let len = cache.len();
    assert!(len <= 1000 && len > 500, "{len} entries");
    assert!(cache.approx_bytes() <= cache.max_bytes());
}

#[test]
fn the_byte_bound_holds_under_a_flood_of_distinct_valid_tokens() {
    let jwt = jwt_with(0);
    let max_bytes = 64 << 10;
    let cache = Cache::new(1_000_000, max_bytes);
    let t = now() + 60;
    let mut peak = 0;
    for i in 0..20_000u32 {
        let token = access(&jwt, &format!("user-{i}"));
        cached(&cache, &jwt, &token, t).unwrap();
        peak = peak.max(cache.approx_bytes());
    }
    assert!(peak <= max_bytes, "{peak} > {max_bytes}");
    assert!(cache.len() > 50, "{} entries", cache.len());
    // A cache that cannot hold anything still validates.
    for cache in [
        Cache::new(0, 1 << 20),
        Cache::new(1000, 0),
        Cache::new(1000, 64),
    ] {
        let token = access(&jwt, "u1");
        cached(&cache, &jwt, &token, t).unwrap();
        cached(&cache, &jwt, &token, t).unwrap();
        assert!(cache.is_empty());
    }
}

#[test]
fn many_threads_at_once_each_get_their_own_tokens_claims() {
    let jwt = jwt_with(0);
    // Small, so inserts evict while other threads hit.
    let cache = Cache::new(64, 1 << 20);
    let tokens: Arc<Vec<(String, String)>> = Arc::new(
        (0..256)
            .map(|i| {
                let user = format!("user-{i}");
                (access(&jwt, &user), user)
            })
            .collect(),
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (jwt, cache, tokens) = (jwt.clone(), cache.clone(), tokens.clone());
            std::thread::spawn(move || {
                let at = now();
                for round in 0..2000usize {
                    // Half the lookups on 16 shared hot tokens, half spread.
                    let i = if round % 2 == 0 {
                        (round / 2 + t) % 16
                    } else {
                        (round * 31 + t * 7) % 256
                    };
                    let (token, user) = &tokens[i];
                    let claims = cached(&cache, &jwt, token, at).unwrap();
                    assert_eq!(claims.user_id(), user);
                    assert!(cache.len() <= 64);
                }
            })
        })
        .collect();
    // Meanwhile: a key change, which makes every entry stale at once.
    jwt.add_verification_key(Key::hmac("k2", Algorithm::HS256, [9u8; 32]).unwrap())
        .unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert!(cache.len() <= 64);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Role {
    role: String,
}

#[tokio::test]
async fn the_layer_puts_the_cached_custom_claims_into_extensions() {
    let jwt = jwt_with(0);
    let cache = TokenCache::<Role>::new(100, 1 << 20);
    let svc = JwtAuthLayer::<Role>::with_claims(jwt.clone())
        .cache(cache.clone())
        .layer(service_fn(|req: Request<Body>| async move {
            let claims = req.extensions().get::<Claims<Role>>().cloned();
            Ok::<_, Infallible>(Response::new(Body::from(
                claims
                    .map(|c| format!("{}:{}", c.user_id(), c.custom().role))
                    .unwrap_or_default(),
            )))
        }));
    let admin = jwt
        .issue_access(
            "u1",
            Uuid::new_v4(),
            &Role {
                role: "admin".into(),
            },
        )
        .unwrap()
        .0;
    for _ in 0..3 {
        let req = Request::get("/")
            .header("authorization", format!("Bearer {admin}"))
            .body(Body::default())
            .unwrap();
        let res = svc.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"u1:admin");
    }
    assert_eq!(cache.len(), 1);
}
