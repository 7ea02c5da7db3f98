//! `UserCache`: the resolver asked once per TTL, a deactivated user refused
//! within the TTL through the layer and at once when invalidated, errors never
//! remembered, a bounded size.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};
use tower_jwt_auth::conformance::test_jwt;
use tower_jwt_auth::{
    JwtAuthLayer, MemoryUsers, NoCustomClaims, StoreError, UserCache, UserLookup, UserResolver,
};
use uuid::Uuid;

/// Counts lookups; fails while `down`.
struct Counting {
    users: MemoryUsers<u64, String>,
    calls: AtomicUsize,
    down: AtomicBool,
}

#[async_trait]
impl UserResolver for Counting {
    type Id = u64;
    type User = String;
    async fn resolve(&self, id: &u64) -> Result<UserLookup<String>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::new("down"));
        }
        self.users.resolve(id).await
    }
}

fn counting() -> Arc<Counting> {
    let users = MemoryUsers::new();
    users.insert(7, "ada".to_owned());
    users.insert(8, "bob".to_owned());
    Arc::new(Counting {
        users,
        calls: AtomicUsize::new(0),
        down: AtomicBool::new(false),
    })
}

#[tokio::test]
async fn the_resolver_is_asked_once_per_ttl() {
    let inner = counting();
    let cache = UserCache::new(inner.clone(), Duration::from_millis(200));
    for _ in 0..100 {
        assert_eq!(
            cache.resolve(&7).await.unwrap(),
            UserLookup::Active("ada".into())
        );
    }
    assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.resolve(&9).await.unwrap(), UserLookup::Missing);
    assert_eq!(cache.resolve(&9).await.unwrap(), UserLookup::Missing);
    assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    cache.resolve(&7).await.unwrap();
    assert_eq!(
        inner.calls.load(Ordering::SeqCst),
        3,
        "asked again after the TTL"
    );
}

#[tokio::test]
async fn errors_are_never_remembered() {
    let inner = counting();
    let cache = UserCache::new(inner.clone(), Duration::from_secs(60));
    inner.down.store(true, Ordering::SeqCst);
    assert!(cache.resolve(&7).await.is_err());
    inner.down.store(false, Ordering::SeqCst);
    assert_eq!(
        cache.resolve(&7).await.unwrap(),
        UserLookup::Active("ada".into())
    );
    assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_size_is_bounded() {
    let inner = counting();
    let cache = UserCache::new(inner.clone(), Duration::from_secs(60)).capacity(10);
    for id in 0..100u64 {
        cache.resolve(&id).await.unwrap();
    }
    assert!(cache.len() <= 10, "{} entries", cache.len());
}

#[tokio::test]
async fn through_the_layer_a_deactivated_user_is_refused_within_the_ttl_or_at_once_when_invalidated()
 {
    let inner = counting();
    let cache = UserCache::new(inner.clone(), Duration::from_millis(300));
    let jwt = test_jwt();
    let svc = JwtAuthLayer::new(jwt.clone())
        .resolve_user(Arc::new(cache.clone()))
        .layer(service_fn(|req: Request<Full<Bytes>>| async move {
            let name = req
                .extensions()
                .get::<String>()
                .cloned()
                .unwrap_or_default();
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::from(name)))
        }));
    let status = |user: &str| {
        let (token, _) = jwt
            .issue_access(user, Uuid::new_v4(), &NoCustomClaims)
            .unwrap();
        let svc = svc.clone();
        async move {
            let req = Request::get("/")
                .header("authorization", format!("Bearer {token}"))
                .body(Full::default())
                .unwrap();
            svc.oneshot(req).await.unwrap().status()
        }
    };
    assert_eq!(status("7").await, StatusCode::OK);
    assert_eq!(status("8").await, StatusCode::OK);

    // Deactivated in the database: remembered as active until the TTL...
    inner.users.set_active(&7, false);
    inner.users.set_active(&8, false);
    assert_eq!(status("7").await, StatusCode::OK);
    // ...or at once when the app says so.
    cache.invalidate(&8);
    assert_eq!(status("8").await, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(status("7").await, StatusCode::UNAUTHORIZED, "past the TTL");
}
