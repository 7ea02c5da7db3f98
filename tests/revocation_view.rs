//! The revocation view on `MemoryStore`'s log: a logout through one
//! instance's sessions refused by another instance's layer without a store
//! round trip, revoke-alls, a view behind its bound (store fallback or 503,
//! never a stale accept), recovery and catch-up, a restart that loads what
//! was revoked before, and the user cache told of revoke-alls.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};
use tower_jwt_auth::conformance::sessions_for;
use tower_jwt_auth::store::Revocation;
use tower_jwt_auth::{
    JwtAuthLayer, MemoryStore, NoCustomClaims, RevocationLog, RevocationView, StoreError,
    TokenStore, UserCache, UserResolver, ViewAnswer,
};

type Body = Full<Bytes>;

/// A log whose reads can be made to fail, and which counts them.
#[derive(Debug)]
struct Flaky {
    inner: Arc<MemoryStore>,
    down: AtomicBool,
    reads: AtomicUsize,
}

#[async_trait]
impl RevocationLog for Flaky {
    async fn revocations_after(
        &self,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<Revocation>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::new("the log is unreachable"));
        }
        self.inner.revocations_after(seq, limit).await
    }
    async fn wait_for_revocations(&self, seq: u64, timeout: Duration) -> Result<(), StoreError> {
        self.inner.wait_for_revocations(seq, timeout).await
    }
}

async fn status(
    svc: &(impl tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone),
    token: &str,
) -> StatusCode {
    let req = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::default())
        .unwrap();
    svc.clone().oneshot(req).await.unwrap().status()
}

fn ok()
-> impl tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send {
    service_fn(|_req: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::default())) })
}

#[tokio::test]
async fn a_logout_is_refused_by_another_instance_without_a_store_call() {
    let store = Arc::new(MemoryStore::new());
    let (sessions, _, id) = sessions_for(store.clone());
    let view = RevocationView::builder(store.clone()).start();
    view.ready(Duration::from_secs(2)).await.unwrap();
    // Instance B: the view alone (no store for the layer at all).
    let b = JwtAuthLayer::new(sessions.jwt().clone())
        .revocation_view(view.clone())
        .layer(ok());

    let mut worst = Duration::ZERO;
    for _ in 0..100 {
        let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        assert_eq!(status(&b, &pair.access).await, StatusCode::OK);
        // Instance A logs out.
        sessions.logout(&pair.refresh).await.unwrap();
        let start = Instant::now();
        while view.check(pair.session_id, &id.to_string(), 0) != ViewAnswer::Revoked {
            assert!(start.elapsed() < Duration::from_secs(1), "not propagated");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        worst = worst.max(start.elapsed());
        assert_eq!(status(&b, &pair.access).await, StatusCode::UNAUTHORIZED);
    }
    assert!(
        worst < Duration::from_millis(100),
        "worst propagation {worst:?}"
    );
    assert_eq!(view.revoked_sessions(), 100);
}

#[tokio::test]
async fn a_revoke_all_refuses_every_earlier_token() {
    let store = Arc::new(MemoryStore::new());
    let (sessions, _, id) = sessions_for(store.clone());
    let view = RevocationView::builder(store.clone()).start();
    view.ready(Duration::from_secs(2)).await.unwrap();
    let b = JwtAuthLayer::new(sessions.jwt().clone())
        .revocation_view(view.clone())
        .revocation_check(store.clone())
        .layer(ok());
    let first = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let second = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    sessions.revoke_user(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(view.users_with_cutoff(), 1);
    assert_eq!(status(&b, &first.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&b, &second.access).await, StatusCode::UNAUTHORIZED);
    // A login after the revoke-all (the next second, so the view decides alone).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let later = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    assert_eq!(status(&b, &later.access).await, StatusCode::OK);
}

#[tokio::test]
async fn a_view_behind_its_bound_never_accepts_on_stale_data() {
    let store = Arc::new(MemoryStore::new());
    let (sessions, _, id) = sessions_for(store.clone());
    let flaky = Arc::new(Flaky {
        inner: store.clone(),
        down: AtomicBool::new(false),
        reads: AtomicUsize::new(0),
    });
    let view = RevocationView::builder(flaky.clone())
        .poll_interval(Duration::from_millis(50))
        .max_lag(Duration::from_millis(300))
        .start();
    view.ready(Duration::from_secs(2)).await.unwrap();
    let alone = JwtAuthLayer::new(sessions.jwt().clone())
        .revocation_view(view.clone())
        .layer(ok());
    let with_store = JwtAuthLayer::new(sessions.jwt().clone())
        .revocation_view(view.clone())
        .revocation_check(store.clone())
        .layer(ok());
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let other = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    assert_eq!(status(&alone, &pair.access).await, StatusCode::OK);

    // The feed goes down; a logout happens meanwhile.
    flaky.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    sessions.logout(&pair.refresh).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!view.is_fresh());
    // Past the bound: the store decides, or 503; the logged-out token is never accepted.
    assert_eq!(
        status(&with_store, &pair.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(&with_store, &other.access).await, StatusCode::OK);
    assert_eq!(
        status(&alone, &pair.access).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(&alone, &other.access).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // The feed comes back by itself and catches up with the logout made while it was down.
    flaky.down.store(false, Ordering::SeqCst);
    view.ready(Duration::from_secs(2)).await.unwrap();
    assert_eq!(status(&alone, &pair.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&alone, &other.access).await, StatusCode::OK);
}

#[tokio::test]
async fn a_restart_loads_what_was_revoked_before_and_expired_entries_are_gone() {
    let store = Arc::new(MemoryStore::new());
    let (sessions, _, id) = sessions_for(store.clone());
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    sessions.logout(&pair.refresh).await.unwrap();
    // A view started after the logout (an instance restarted) knows it.
    let view = RevocationView::builder(store.clone()).start();
    view.ready(Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        view.check(pair.session_id, &id.to_string(), 0),
        ViewAnswer::Revoked
    );

    // Once the sessions have expired, the store purges them from the log (all
    // but the newest entry, which a view past its expiry ignores).
    let second = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    sessions.logout(&second.refresh).await.unwrap();
    let far = sessions.jwt().clock().now_secs() + 400 * 86_400;
    store.purge_expired(far).await.unwrap();
    assert_eq!(store.revocations_after(0, 100).await.unwrap().len(), 1);
    let later = RevocationView::builder(store.clone())
        .clock(tower_jwt_auth::Clock::manual(far))
        .start();
    later.ready(Duration::from_secs(2)).await.unwrap();
    assert_eq!(later.revoked_sessions(), 0);
}

#[tokio::test]
async fn a_revoke_all_drops_the_user_from_the_user_cache() {
    let store = Arc::new(MemoryStore::new());
    let (sessions, users, id) = sessions_for(store.clone());
    let cache = UserCache::new(users.clone(), Duration::from_secs(3600));
    let hook = cache.clone();
    let view = RevocationView::builder(store.clone())
        .on_user_revoked(move |user| hook.invalidate_value(user))
        .start();
    view.ready(Duration::from_secs(2)).await.unwrap();
    cache.resolve(&id).await.unwrap();
    assert_eq!(cache.len(), 1);
    sessions.revoke_user(&id).await.unwrap();
    let start = Instant::now();
    while !cache.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
