//! Session events on MemoryStore and SQLite: each kind fires once, after the
//! store committed, with the user and session and no token; a hook that sleeps
//! or panics neither delays nor fails a response; the `tracing` events have
//! their levels and carry no token.

mod backends;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backends::Backend;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::sync::mpsc;
use tower::ServiceExt;
use tower_jwt_auth::conformance::{Users, test_jwt};
use tower_jwt_auth::events::{EventKind, RefusalReason, SessionEvent};
use tower_jwt_auth::{
    AuthError, NoCustomClaims, SessionEndpoint, Sessions, TokenError, TokenStore,
};
use uuid::Uuid;

fn sessions(store: Arc<dyn TokenStore>) -> (Sessions<Users>, Arc<Users>, Uuid) {
    let users = Arc::new(Users::new());
    let id = Uuid::new_v4();
    users.insert(id, "alice".into());
    // Strict single use: the cases below replay a token to see reuse reported.
    let sessions = Sessions::new(test_jwt(), store, users.clone())
        .with_reuse_grace(Duration::ZERO)
        .unwrap();
    (sessions, users, id)
}

/// Waits for the next event (hooks run off the request path, so not at once).
async fn next(rx: &mut mpsc::UnboundedReceiver<SessionEvent>) -> SessionEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event within 5 s")
        .expect("the hook is alive")
}

/// Asserts nothing more arrives for a short while.
async fn none_more(rx: &mut mpsc::UnboundedReceiver<SessionEvent>) {
    let extra = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await;
    assert!(extra.is_err(), "unexpected event: {extra:?}");
}

fn token_err<T: std::fmt::Debug>(r: Result<T, AuthError>) -> TokenError {
    match r {
        Err(AuthError::InvalidToken(e)) => e,
        other => panic!("expected a refused token, got {other:?}"),
    }
}

/// Every kind, in request order (each request waits for its event).
async fn every_kind_once(b: Backend) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (s, users, id) = sessions(b.store());
    let s = s
        .with_events(tx)
        .with_reuse_grace(Duration::from_secs(30))
        .unwrap();
    let uid = id.to_string();
    let mut secrets: Vec<String> = Vec::new();

    let p0 = s
        .login(&id, &NoCustomClaims, Some("firefox".into()))
        .await
        .unwrap();
    let e = next(&mut rx).await;
    assert_eq!(e.kind, EventKind::PairIssued);
    assert_eq!(
        (e.user_id.as_str(), e.session_id),
        (uid.as_str(), Some(p0.session_id))
    );
    assert!(e.at > 0);

    let p1 = s.refresh(&p0.refresh).await.unwrap();
    assert_eq!(
        next(&mut rx).await.kind,
        EventKind::Rotated { redelivered: false }
    );
    // Within the grace window, the predecessor once more.
    let p1b = s.refresh(&p0.refresh).await.unwrap();
    assert_eq!(
        next(&mut rx).await.kind,
        EventKind::Rotated { redelivered: true }
    );
    // An older generation: reuse, the session is revoked.
    let p2 = s.refresh(&p1b.refresh).await.unwrap();
    assert_eq!(
        next(&mut rx).await.kind,
        EventKind::Rotated { redelivered: false }
    );
    let _ = s.refresh(&p2.refresh).await.unwrap();
    assert_eq!(
        next(&mut rx).await.kind,
        EventKind::Rotated { redelivered: false }
    );
    assert_eq!(token_err(s.refresh(&p1.refresh).await), TokenError::Reused);
    let e = next(&mut rx).await;
    assert_eq!(e.kind, EventKind::ReuseDetected);
    assert_eq!(
        (e.user_id.as_str(), e.session_id),
        (uid.as_str(), Some(p0.session_id))
    );
    // Refusals that change nothing report nothing.
    assert_eq!(token_err(s.refresh(&p2.refresh).await), TokenError::Revoked);
    none_more(&mut rx).await;

    let a = s.login(&id, &NoCustomClaims, None).await.unwrap();
    next(&mut rx).await;
    s.logout(&a.refresh).await.unwrap();
    let e = next(&mut rx).await;
    assert_eq!(
        (e.kind, e.session_id),
        (EventKind::SessionRevoked, Some(a.session_id))
    );
    assert!(s.logout(&a.refresh).await.is_err(), "twice is refused");
    none_more(&mut rx).await;

    let b1 = s.login(&id, &NoCustomClaims, None).await.unwrap();
    next(&mut rx).await;
    assert!(
        !s.revoke_session_of("someone-else", b1.session_id)
            .await
            .unwrap()
    );
    none_more(&mut rx).await;
    assert!(s.revoke_session_of(&uid, b1.session_id).await.unwrap());
    let e = next(&mut rx).await;
    assert_eq!(
        (e.kind, e.session_id),
        (EventKind::SessionRevoked, Some(b1.session_id))
    );

    let c1 = s.login(&id, &NoCustomClaims, None).await.unwrap();
    let c2 = s.login(&id, &NoCustomClaims, None).await.unwrap();
    next(&mut rx).await;
    next(&mut rx).await;
    assert_eq!(s.revoke_all(&c1.access).await.unwrap(), 2);
    let e = next(&mut rx).await;
    assert_eq!(e.kind, EventKind::AllSessionsRevoked { sessions: 2 });
    assert_eq!((e.user_id.as_str(), e.session_id), (uid.as_str(), None));

    let d = s.login(&id, &NoCustomClaims, None).await.unwrap();
    next(&mut rx).await;
    users.set_active(&id, false);
    assert_eq!(
        token_err(s.refresh(&d.refresh).await),
        TokenError::UserInactive
    );
    let e = next(&mut rx).await;
    assert_eq!(
        (e.kind, e.session_id),
        (
            EventKind::UserRefused {
                reason: RefusalReason::Inactive
            },
            Some(d.session_id)
        )
    );
    users.set_active(&id, true);
    let f = s.login(&id, &NoCustomClaims, None).await.unwrap();
    next(&mut rx).await;
    users.remove(&id);
    assert_eq!(
        token_err(s.refresh(&f.refresh).await),
        TokenError::UserInactive
    );
    assert_eq!(
        next(&mut rx).await.kind,
        EventKind::UserRefused {
            reason: RefusalReason::Missing
        }
    );
    none_more(&mut rx).await;

    // No event's text holds a token or a jti.
    for p in [&p0, &p1, &p1b, &p2, &a, &b1, &c1, &c2, &d, &f] {
        secrets.extend([
            p.access.clone(),
            p.refresh.clone(),
            p.refresh_jti.to_string(),
        ]);
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (s, _, id) = sessions(b.store());
    let s = s.with_events(tx);
    let g = s.login(&id, &NoCustomClaims, None).await.unwrap();
    let h = s.refresh(&g.refresh).await.unwrap();
    let _ = s.refresh(&g.refresh).await;
    secrets.extend([
        g.access,
        g.refresh,
        g.refresh_jti.to_string(),
        h.access,
        h.refresh,
    ]);
    for _ in 0..3 {
        let text = format!("{:?}", next(&mut rx).await);
        assert!(!secrets.iter().any(|t| text.contains(t.as_str())), "{text}");
    }
}

/// The hook runs after the commit: what it reads in the store already shows the
/// change. (Each request waits for its hook, so later requests cannot interfere.)
async fn hook_sees_the_committed_state(b: Backend) {
    let store = b.store();
    let (tx, mut rx) = mpsc::unbounded_channel::<(EventKind, bool)>();
    let (s, _, id) = sessions(store.clone());
    let hook_store = store.clone();
    let s = s.with_events(move |e: &SessionEvent| {
        // The hook runs on tokio's blocking pool: it may block on the store.
        let handle = tokio::runtime::Handle::current();
        let sid = e.session_id.unwrap_or_default();
        let committed = handle.block_on(async {
            let live = hook_store
                .list_sessions(&e.user_id, now())
                .await
                .unwrap()
                .iter()
                .any(|i| i.session_id == sid);
            let revoked = hook_store.is_revoked(sid, &e.user_id, now()).await.unwrap();
            match e.kind {
                EventKind::PairIssued => live && !revoked,
                EventKind::ReuseDetected | EventKind::SessionRevoked => !live && revoked,
                _ => live,
            }
        });
        tx.send((e.kind, committed)).unwrap();
    });
    let mut wait = async || {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap()
    };
    let p = s.login(&id, &NoCustomClaims, None).await.unwrap();
    assert_eq!(wait().await, (EventKind::PairIssued, true));
    s.refresh(&p.refresh).await.unwrap();
    assert_eq!(
        wait().await,
        (EventKind::Rotated { redelivered: false }, true)
    );
    let _ = s.refresh(&p.refresh).await;
    assert_eq!(wait().await, (EventKind::ReuseDetected, true));
    let q = s.login(&id, &NoCustomClaims, None).await.unwrap();
    assert_eq!(wait().await, (EventKind::PairIssued, true));
    s.logout(&q.refresh).await.unwrap();
    assert_eq!(wait().await, (EventKind::SessionRevoked, true));
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A hook that sleeps 2 s: every request still answers at once, on a
/// multi-thread runtime (this test) and on a current-thread one (below).
async fn slow_hook_does_not_delay(b: Backend) {
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    let (s, _, id) = sessions(b.store());
    let s = s.with_events(move |_: &SessionEvent| {
        std::thread::sleep(Duration::from_secs(2));
        *c.lock().unwrap() += 1;
    });
    let start = Instant::now();
    let p = s.login(&id, &NoCustomClaims, None).await.unwrap();
    let q = s.refresh(&p.refresh).await.unwrap();
    assert_eq!(token_err(s.refresh(&p.refresh).await), TokenError::Reused);
    assert!(s.refresh(&q.refresh).await.is_err());
    let elapsed = start.elapsed();
    eprintln!("4 requests with a 2 s hook took {elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(1000),
        "4 requests took {elapsed:?}"
    );
    assert_eq!(*calls.lock().unwrap(), 0, "the hooks are still sleeping");
    // They do run.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(*calls.lock().unwrap(), 3);
}

/// A hook that panics on every event: the calls succeed, over HTTP too, and
/// keep succeeding.
async fn panicking_hook_does_not_fail(b: Backend) {
    let (s, _, id) = sessions(b.store());
    let s = s.with_events(|e: &SessionEvent| panic!("hook failure on {}", e.kind.name()));
    for _ in 0..3 {
        let p = s.login(&id, &NoCustomClaims, None).await.unwrap();
        let q = s.refresh(&p.refresh).await.unwrap();
        assert_eq!(token_err(s.refresh(&p.refresh).await), TokenError::Reused);
        let r = s.login(&id, &NoCustomClaims, None).await.unwrap();
        let body = format!(r#"{{"refresh": "{}"}}"#, r.refresh);
        let req = Request::post("/api/token/refresh/")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let res = SessionEndpoint::refresh(s.clone())
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        s.logout(&q.refresh).await.unwrap_err();
    }
}

for_each_backend!(
    every_kind_once,
    hook_sees_the_committed_state,
    slow_hook_does_not_delay,
    panicking_hook_does_not_fail,
);

/// On a current-thread runtime a blocking hook would stall the only worker if
/// it ran there: it does not.
#[tokio::test(flavor = "current_thread")]
async fn slow_hook_on_a_current_thread_runtime() {
    let (s, _, id) = sessions(Arc::new(tower_jwt_auth::MemoryStore::new()));
    let s = s.with_events(|_: &SessionEvent| std::thread::sleep(Duration::from_secs(2)));
    let start = Instant::now();
    for _ in 0..5 {
        let p = s.login(&id, &NoCustomClaims, None).await.unwrap();
        s.refresh(&p.refresh).await.unwrap();
    }
    let elapsed = start.elapsed();
    eprintln!("10 requests with a 2 s hook on a current-thread runtime took {elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(1000),
        "10 requests took {elapsed:?}"
    );
}

/// A bounded channel as the hook: a full channel drops the event, never waits.
#[tokio::test(flavor = "current_thread")]
async fn full_channel_drops_instead_of_waiting() {
    let (tx, mut rx) = mpsc::channel(1);
    let (s, _, id) = sessions(Arc::new(tower_jwt_auth::MemoryStore::new()));
    let s = s.with_events(tx);
    let start = Instant::now();
    for _ in 0..5 {
        s.login(&id, &NoCustomClaims, None).await.unwrap();
    }
    assert!(start.elapsed() < Duration::from_millis(1000));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.recv().await.is_some());
    assert!(
        rx.try_recv().is_err(),
        "one fitted, the others were dropped"
    );
}

/// The `tracing` events: reuse at WARN, a refused user at INFO, the rest at
/// DEBUG; user and session ids, never a token.
#[tokio::test(flavor = "current_thread")]
async fn tracing_levels_and_no_tokens() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (s, users, id) = sessions(Arc::new(tower_jwt_auth::MemoryStore::new()));
    let p = s.login(&id, &NoCustomClaims, None).await.unwrap();
    let q = s.refresh(&p.refresh).await.unwrap();
    let _ = s.refresh(&p.refresh).await;
    let r = s.login(&id, &NoCustomClaims, None).await.unwrap();
    users.set_active(&id, false);
    let _ = s.refresh(&r.refresh).await;

    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{out}"))
            .to_owned()
    };
    let reuse = line("reuse detected");
    assert!(reuse.contains("WARN"), "{reuse}");
    assert!(reuse.contains(&id.to_string()) && reuse.contains(&p.session_id.to_string()));
    assert!(line("refresh refused for a user").contains("INFO"));
    assert!(line("session started").contains("DEBUG"));
    assert!(line("refresh token rotated").contains("DEBUG"));
    for secret in [&p.access, &p.refresh, &q.access, &q.refresh, &r.refresh] {
        assert!(!out.contains(secret.as_str()));
    }
    assert!(!out.contains(&q.refresh_jti.to_string()));
}
