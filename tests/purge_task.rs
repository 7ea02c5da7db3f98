//! The purge task on MemoryStore and SQLite: it removes expired rows while
//! requests run (synthetic short lifetimes), leaves live ones, survives a store
//! outage, and stops cleanly (by `stop` or by drop).

mod backends;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backends::Backend;
use tower_jwt_auth::conformance::{FailingStore, Users, test_jwt};
use tower_jwt_auth::store::{NewSession, RotateOutcome, RotateRequest, SessionInfo};
use tower_jwt_auth::{
    Algorithm, Jwt, Key, MemoryStore, NoCustomClaims, PurgeTask, Sessions, StoreError, TokenStore,
};
use uuid::Uuid;

fn short_jwt() -> Jwt {
    Jwt::builder()
        .signing_key(Key::hmac("test", Algorithm::HS256, [42u8; 32]).unwrap())
        .issuer("tower-jwt-auth-tests")
        .audience("tests")
        .refresh_ttl(Duration::from_secs(1))
        .session_max_age(Duration::from_secs(1))
        .build()
        .unwrap()
}

fn users() -> (Arc<Users>, Uuid) {
    let users = Arc::new(Users::new());
    let id = Uuid::new_v4();
    users.insert(id, "alice".into());
    (users, id)
}

async fn wait_until(what: &str, limit: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Short sessions (1 s) expire and vanish while a steady stream of logins,
/// refreshes and access checks on long sessions runs against the same store;
/// every request succeeds and the long sessions stay.
async fn purges_while_requests_run(b: Backend) {
    let store = b.store();
    let (u, id) = users();
    let long: Sessions<Users> = Sessions::new(test_jwt(), store.clone(), u.clone());
    let short: Sessions<Users> = Sessions::new(short_jwt(), store.clone(), u);
    let purge = PurgeTask::start(store.clone(), Duration::from_millis(100));
    assert_eq!(purge.interval(), Duration::from_millis(100));

    // Requests, all the time the test runs.
    let running = Arc::new(AtomicBool::new(true));
    let served = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (long, running, served) = (long.clone(), running.clone(), served.clone());
        workers.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            while running.load(Ordering::SeqCst) {
                let p = long.login(&id, &NoCustomClaims, None).await.unwrap();
                let q = long.refresh(&p.refresh).await.unwrap();
                long.check_access(&q.access).await.unwrap();
                served.fetch_add(3, Ordering::SeqCst);
                kept.push(q);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            kept
        }));
    }

    let mut short_ids = Vec::new();
    for _ in 0..20 {
        let p = short.login(&id, &NoCustomClaims, None).await.unwrap();
        let q = short.refresh(&p.refresh).await.unwrap();
        short_ids.push((p.session_id, q));
    }
    let before = b.rows().await;
    // All 20 short sessions, with 2 rows each, are there now; they expire within
    // 1-2 s and the task removes them without being asked.
    assert!(before.0 >= 20 && before.1 >= 40, "{before:?}");
    let listed = |s: &Sessions<Users>| {
        let s = s.clone();
        async move { s.list_sessions(&id.to_string()).await.unwrap() }
    };
    assert!(listed(&short).await.len() >= 20);
    wait_until(
        "the short sessions to be purged",
        Duration::from_secs(8),
        async || purge.stats().rows >= 40,
    )
    .await;
    running.store(false, Ordering::SeqCst);
    let mut kept = Vec::new();
    for w in workers {
        kept.extend(w.await.unwrap());
    }
    let stats = purge.stop().await;
    eprintln!(
        "purge: {stats:?}; {} requests served meanwhile; rows {before:?} -> {:?}",
        served.load(Ordering::SeqCst),
        b.rows().await
    );
    assert!(
        stats.runs >= 2 && stats.rows >= 40 && stats.errors == 0,
        "{stats:?}"
    );
    assert!(
        served.load(Ordering::SeqCst) >= 30,
        "requests ran meanwhile"
    );

    // What is left is exactly the long sessions (one used + one live row each).
    let after = b.rows().await;
    assert_eq!(
        after,
        (kept.len() as u64, 2 * kept.len() as u64),
        "{before:?} -> {after:?}"
    );
    for q in kept.iter().take(5) {
        long.refresh(&q.refresh).await.unwrap();
    }
    for (_, q) in short_ids.iter().take(3) {
        assert!(short.refresh(&q.refresh).await.is_err());
    }
}

/// After `stop`, nothing more is purged.
async fn stop_is_final(b: Backend) {
    let store = b.store();
    let purge = PurgeTask::start(store.clone(), Duration::from_millis(50));
    wait_until("a first run", Duration::from_secs(5), async || {
        purge.stats().runs >= 1
    })
    .await;
    let stats = purge.stop().await;
    assert_eq!(stats.errors, 0);
    // An already expired session, created after the stop, stays.
    let now = now();
    store
        .create_session(
            &NewSession::new(
                Uuid::new_v4(),
                "u",
                Uuid::new_v4(),
                now - 10,
                now - 5,
                now - 5,
            )
            .with_label(None),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.rows().await, (1, 1));
    // A purge by hand removes it: it was the task that was stopped, not the store.
    assert_eq!(store.purge_expired(now).await.unwrap(), 1);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A store that is down makes purges fail (counted, not fatal); once it is back,
/// the next tick purges.
async fn survives_an_outage(b: Backend) {
    let failing = Arc::new(FailingStore::new(b.store()));
    failing.set_down(true);
    let now = now();
    let purge = PurgeTask::start(failing.clone(), Duration::from_millis(50));
    wait_until("failed runs", Duration::from_secs(5), async || {
        purge.stats().errors >= 3
    })
    .await;
    failing.set_down(false);
    b.store()
        .create_session(
            &NewSession::new(
                Uuid::new_v4(),
                "u",
                Uuid::new_v4(),
                now - 10,
                now - 5,
                now - 5,
            )
            .with_label(None),
        )
        .await
        .unwrap();
    wait_until(
        "a purge after the outage",
        Duration::from_secs(5),
        async || purge.stats().rows >= 1,
    )
    .await;
    let stats = purge.stop().await;
    assert!(stats.errors >= 3 && stats.runs >= 1, "{stats:?}");
    assert_eq!(b.rows().await, (0, 0));
}

for_each_backend!(purges_while_requests_run, stop_is_final, survives_an_outage);

/// Counts purge calls, and can make each one slow.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    purges: AtomicU64,
    slow: AtomicBool,
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
        self.inner.is_revoked(id, user, iat).await
    }
    async fn list_sessions(&self, user: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError> {
        self.inner.list_sessions(user, now).await
    }
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let n = self.inner.purge_expired(now).await;
        self.purges.fetch_add(1, Ordering::SeqCst);
        n
    }
}

/// Dropping the handle ends the task too.
#[tokio::test]
async fn drop_stops_the_task() {
    let store = Arc::new(Counting::default());
    let purge = PurgeTask::start(store.clone(), Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(purge);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let n = store.purges.load(Ordering::SeqCst);
    assert!(n >= 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.purges.load(Ordering::SeqCst), n);
}

/// `stop` lets a purge in progress finish (a transaction is not cut), then ends.
#[tokio::test]
async fn stop_waits_for_the_purge_in_progress() {
    let store = Arc::new(Counting::default());
    store.slow.store(true, Ordering::SeqCst);
    let purge = PurgeTask::start(store.clone(), Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(50)).await; // the first run is under way
    let start = Instant::now();
    let stats = purge.stop().await;
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(stats.runs, 1);
    assert_eq!(store.purges.load(Ordering::SeqCst), 1);
}

/// A zero interval is raised to the minimum instead of panicking; a runtime
/// handle may be given explicitly.
#[test]
fn zero_interval_and_explicit_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let store = Arc::new(Counting::default());
    let purge = PurgeTask::start_on(rt.handle(), store.clone(), Duration::ZERO);
    assert_eq!(purge.interval(), tower_jwt_auth::purge::MIN_INTERVAL);
    rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = purge.stop().await;
        assert!(stats.runs >= 2, "{stats:?}");
    });
}
