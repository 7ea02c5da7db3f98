//! Checks the SQL stores' tests share: a database outage mid-run and purging
//! while rotations go on. Included with `#[path]` by each store test.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tower_jwt_auth::conformance::sessions_for;
use tower_jwt_auth::store::{NewSession, RotateOutcome, RotateRequest};
use tower_jwt_auth::{AuthError, NoCustomClaims, TokenStore};
use uuid::Uuid;

use crate::proxy::Proxy;

pub fn session(user: &str, now: u64) -> NewSession {
    NewSession::new(
        Uuid::new_v4(),
        user,
        Uuid::new_v4(),
        now,
        now + 100,
        now + 1000,
    )
    .with_label(None)
}
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
/// The database goes away mid-run (through `proxy`) and comes back: 503s while it
/// is away, recovery without a restart, and every rotation that answered success
/// is in the store (`exists` asks the database directly).
pub async fn outage<S, F, Fut>(store: Arc<S>, proxy: &Proxy, exists: F)
where
    S: TokenStore,
    F: Fn(Uuid) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = bool> + Send,
{
    // Through Sessions: 503s while down, recovery after.
    let (sessions, _, id) = sessions_for(store.clone());
    let p = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    proxy.cut();
    let refresh = sessions.refresh(&p.refresh).await;
    assert!(
        matches!(refresh, Err(AuthError::StoreUnavailable(_))),
        "{refresh:?}"
    );
    let check = sessions.check_access(&p.access).await;
    assert!(
        matches!(check, Err(AuthError::StoreUnavailable(_))),
        "{check:?}"
    );
    proxy.restore();
    let next = sessions
        .refresh(&p.refresh)
        .await
        .expect("recovered without a restart; the outage was not reuse");
    sessions.check_access(&next.access).await.unwrap();

    // 8 clients rotating while the database goes away and comes back.
    let now = now();
    let ok: Arc<Mutex<Vec<(Uuid, Uuid)>>> = Arc::default();
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = session("outage-user", now);
        store.create_session(&s).await.unwrap();
        let (store, ok, errors, stop, exists) = (
            store.clone(),
            ok.clone(),
            errors.clone(),
            stop.clone(),
            exists.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut jti = s.jti;
            while !stop.load(Ordering::SeqCst) {
                let r = RotateRequest::new(
                    s.session_id,
                    s.user_id.clone(),
                    jti,
                    Uuid::new_v4(),
                    now,
                    600,
                )
                .with_grace(0);
                match store.rotate(&r).await {
                    Ok(RotateOutcome::Rotated { .. }) => {
                        ok.lock().await.push((r.jti, r.successor_jti));
                        jti = r.successor_jti;
                    }
                    Ok(other) => panic!("a rotation gave {other:?}"),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::SeqCst);
                        // A commit whose answer was lost with the connection: the
                        // client saw a 503; continue from what the store holds.
                        while !stop.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            if let Ok(known) = tokio::time::timeout(
                                Duration::from_secs(1),
                                exists(r.successor_jti),
                            )
                            .await
                            {
                                if known {
                                    jti = r.successor_jti;
                                }
                                break;
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_cut = ok.lock().await.len();
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // While down: the revocation check is a 503 too.
    assert!(store.is_revoked(Uuid::new_v4(), "x", 0).await.is_err());
    proxy.restore();
    let restored_at = ok.lock().await.len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let ok = ok.lock().await.clone();
    assert!(before_cut > 0, "rotations ran before the cut");
    assert!(
        ok.len() > restored_at,
        "rotations resumed after the database came back"
    );
    assert!(errors.load(Ordering::SeqCst) > 0, "the cut was seen");
    for (_, successor) in &ok {
        assert!(
            exists(*successor).await,
            "a rotation that answered success is missing"
        );
    }
    eprintln!(
        "outage: {} rotations succeeded ({before_cut} before the cut, {} after it), {} answered 503",
        ok.len(),
        ok.len() - restored_at,
        errors.load(Ordering::SeqCst)
    );
}
/// Purges while another task rotates a live session: the slowest rotation seen
/// (how long purge held anything a request needs), the rows removed, the time taken.
pub async fn purge_while_rotating<S: TokenStore>(
    store: Arc<S>,
    now: u64,
) -> (Duration, u64, Duration) {
    let mut s = session("live-user", now);
    s.token_expires_at = now + 3600;
    s.session_expires_at = now + 7200;
    store.create_session(&s).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let rotator = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let (mut jti, mut max) = (s.jti, Duration::ZERO);
            while !done.load(Ordering::SeqCst) {
                let r = RotateRequest::new(
                    s.session_id,
                    s.user_id.clone(),
                    jti,
                    Uuid::new_v4(),
                    now,
                    3600,
                )
                .with_grace(0);
                let t = Instant::now();
                assert!(matches!(
                    store.rotate(&r).await.unwrap(),
                    RotateOutcome::Rotated { .. }
                ));
                max = max.max(t.elapsed());
                jti = r.successor_jti;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            max
        })
    };
    let t = Instant::now();
    let removed = store.purge_expired(now).await.unwrap();
    let took = t.elapsed();
    done.store(true, Ordering::SeqCst);
    (rotator.await.unwrap(), removed, took)
}
