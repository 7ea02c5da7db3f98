//! The conformance suite every [`TokenStore`] backend runs (feature `test-util`).
//!
//! Each case takes a fresh, empty store. [`token_store_conformance!`](crate::token_store_conformance)
//! turns the whole suite into `#[tokio::test]`s for one backend:
//!
//! ```ignore
//! tower_jwt_auth::token_store_conformance!(async || Some(my_fresh_store().await));
//! ```
//!
//! The factory returns `None` to skip (a service that is not running on a laptop);
//! it should panic instead when the `CI` environment variable is set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::clock::system_secs;
use crate::error::{AuthError, StoreError, TokenError};
use crate::store::{NewSession, RotateOutcome, RotateRequest, SessionInfo, TokenStore};
use crate::{Algorithm, Jwt, Key, MemoryUsers, NoCustomClaims, Sessions};

/// The user store the suite uses: UUID ids, as in the case this crate exists for.
pub type Users = MemoryUsers<Uuid, String>;

/// A [`Jwt`] for tests: HS256, a fixed secret, default lifetimes.
pub fn test_jwt() -> Jwt {
    Jwt::builder()
        .signing_key(Key::hmac("test", Algorithm::HS256, [42u8; 32]).expect("valid key"))
        .issuer("tower-jwt-auth-tests")
        .audience("tests")
        .build()
        .expect("valid config")
}

/// Sessions over `store` with one active user; returns them and the user's id.
pub fn sessions_for(store: Arc<dyn TokenStore>) -> (Sessions<Users>, Arc<Users>, Uuid) {
    let users = Arc::new(Users::new());
    let id = Uuid::new_v4();
    users.insert(id, "alice".into());
    (Sessions::new(test_jwt(), store, users.clone()), users, id)
}

fn token_err(r: Result<impl std::fmt::Debug, AuthError>) -> TokenError {
    match r {
        Err(AuthError::InvalidToken(e)) => e,
        other => panic!("expected a refused token, got {other:?}"),
    }
}

/// Ten chained rotations with a UUID user id; each spent token is refused after use
/// (and that refusal, being reuse, ends the session: so it is checked on a copy).
pub async fn chain_of_ten_rotations(store: Arc<dyn TokenStore>) {
    let (sessions, _, id) = sessions_for(store);
    let mut pair = sessions
        .login(&id, &NoCustomClaims, Some("test".into()))
        .await
        .unwrap();
    let first_session = pair.session_id;
    for _ in 0..10 {
        let next = sessions.refresh(&pair.refresh).await.unwrap();
        assert_eq!(
            next.session_id, first_session,
            "rotation stays in the session"
        );
        assert_ne!(next.refresh_jti, pair.refresh_jti);
        assert!(
            next.refresh_expires_at
                <= pair.refresh_expires_at + sessions.jwt().refresh_ttl().as_secs()
        );
        let claims = sessions.check_access(&next.access).await.unwrap();
        assert_eq!(claims.user_id(), id.to_string());
        pair = next;
    }
    // The live token still works; then the previous one is reuse.
    let last = sessions.refresh(&pair.refresh).await.unwrap();
    assert_eq!(
        token_err(sessions.refresh(&pair.refresh).await),
        TokenError::Reused
    );
    assert_eq!(
        token_err(sessions.refresh(&last.refresh).await),
        TokenError::Revoked
    );
}

/// Replaying a used token revokes the session: the newest successor is refused, and
/// the session's access tokens fail the revocation check.
pub async fn reuse_revokes_session(store: Arc<dyn TokenStore>) {
    let (sessions, _, id) = sessions_for(store);
    let p0 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let p1 = sessions.refresh(&p0.refresh).await.unwrap();
    let p2 = sessions.refresh(&p1.refresh).await.unwrap();
    sessions.check_access(&p2.access).await.unwrap();
    assert_eq!(
        token_err(sessions.refresh(&p0.refresh).await),
        TokenError::Reused
    );
    assert_eq!(
        token_err(sessions.refresh(&p2.refresh).await),
        TokenError::Revoked
    );
    assert_eq!(
        token_err(sessions.check_access(&p2.access).await),
        TokenError::Revoked
    );
    assert_eq!(
        token_err(sessions.check_access(&p1.access).await),
        TokenError::Revoked
    );
    // Another session of the same user is untouched.
    let other = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    sessions.refresh(&other.refresh).await.unwrap();
}

async fn race(
    sessions: &Sessions<Users>,
    token: &str,
    tasks: usize,
) -> Vec<Result<crate::TokenPair, AuthError>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (s, b, t) = (sessions.clone(), barrier.clone(), token.to_owned());
        handles.push(tokio::spawn(async move {
            b.wait().await;
            s.refresh(&t).await
        }));
    }
    let mut out = Vec::with_capacity(tasks);
    for h in handles {
        out.push(h.await.expect("task panicked"));
    }
    out
}

/// 64 tasks refresh one token at once, 20 times over: exactly one wins each time
/// (grace 0); every loser is refused as reuse or revoked, never a store error.
pub async fn race_exactly_one_winner(store: Arc<dyn TokenStore>) {
    let (sessions, _, id) = sessions_for(store);
    for round in 0..20 {
        let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        let results = race(&sessions, &pair.refresh, 64).await;
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "round {round}: {winners} winners");
        for r in results.into_iter().filter(|r| r.is_err()) {
            let e = token_err(r);
            assert!(
                matches!(e, TokenError::Reused | TokenError::Revoked),
                "round {round}: {e:?}"
            );
        }
    }
}

/// With a grace window, every extra winner of a race is recorded in the session,
/// and a replay after the window revokes all of it.
pub async fn race_with_grace(store: Arc<dyn TokenStore>) {
    let (sessions, _, id) = sessions_for(store);
    let sessions = sessions.with_reuse_grace(Duration::from_secs(2));
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let results = race(&sessions, &pair.refresh, 64).await;
    let winners: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
    assert!(!winners.is_empty());
    for w in &winners {
        assert_eq!(
            w.session_id, pair.session_id,
            "extra winners stay in the session"
        );
    }
    // The last winner holds the live token.
    let live = winners.iter().max_by_key(|w| w.refresh_expires_at).unwrap();
    let _ = live;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        token_err(sessions.refresh(&pair.refresh).await),
        TokenError::Reused
    );
    for w in &winners {
        let e = token_err(sessions.refresh(&w.refresh).await);
        assert!(matches!(e, TokenError::Revoked), "{e:?}");
        assert_eq!(
            token_err(sessions.check_access(&w.access).await),
            TokenError::Revoked
        );
    }
}

/// Grace covers only the immediate predecessor of the live token.
pub async fn second_to_last_never_gets_grace(store: Arc<dyn TokenStore>) {
    let (sessions, _, id) = sessions_for(store);
    let sessions = sessions.with_reuse_grace(Duration::from_secs(60));
    let p0 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let p1 = sessions.refresh(&p0.refresh).await.unwrap();
    let p2 = sessions.refresh(&p1.refresh).await.unwrap();
    // p1 is the immediate predecessor of the live token: grace applies.
    let p2b = sessions.refresh(&p1.refresh).await.unwrap();
    assert_eq!(p2b.session_id, p2.session_id);
    // p0 is two generations back: reuse, and the session dies.
    assert_eq!(
        token_err(sessions.refresh(&p0.refresh).await),
        TokenError::Reused
    );
    assert_eq!(
        token_err(sessions.refresh(&p2b.refresh).await),
        TokenError::Revoked
    );
}

/// Logout revokes the session: refresh and the access token are refused; a second
/// logout is refused.
pub async fn logout(store: Arc<dyn TokenStore>) {
    let (sessions, _, id) = sessions_for(store);
    let p = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let keep = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    sessions.logout(&p.refresh).await.unwrap();
    assert_eq!(
        token_err(sessions.refresh(&p.refresh).await),
        TokenError::Revoked
    );
    assert_eq!(
        token_err(sessions.check_access(&p.access).await),
        TokenError::Revoked
    );
    assert_eq!(
        token_err(sessions.logout(&p.refresh).await),
        TokenError::Revoked
    );
    sessions.check_access(&keep.access).await.unwrap();
    sessions.refresh(&keep.refresh).await.unwrap();
}

/// Revoke-all ends every session of the user, and only theirs; a new login works.
pub async fn revoke_all(store: Arc<dyn TokenStore>) {
    let (sessions, users, id) = sessions_for(store);
    let bob = Uuid::new_v4();
    users.insert(bob, "bob".into());
    let a1 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let a2 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let b1 = sessions.login(&bob, &NoCustomClaims, None).await.unwrap();
    assert_eq!(sessions.revoke_all(&a1.access).await.unwrap(), 2);
    for p in [&a1, &a2] {
        assert_eq!(
            token_err(sessions.check_access(&p.access).await),
            TokenError::Revoked
        );
        assert_eq!(
            token_err(sessions.refresh(&p.refresh).await),
            TokenError::Revoked
        );
    }
    sessions.check_access(&b1.access).await.unwrap();
    sessions.refresh(&b1.refresh).await.unwrap();
    // Wait for the next second: tokens of the revocation's own second are judged
    // by their session alone, and a fresh login must work.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let again = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    sessions.check_access(&again.access).await.unwrap();
    sessions.refresh(&again.refresh).await.unwrap();
}

/// A user deleted, or made inactive, after login: refresh is refused and the
/// session revoked.
pub async fn user_deleted_or_inactive(store: Arc<dyn TokenStore>) {
    let (sessions, users, id) = sessions_for(store);
    let p = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    users.set_active(&id, false);
    assert_eq!(
        token_err(sessions.refresh(&p.refresh).await),
        TokenError::UserInactive
    );
    users.set_active(&id, true);
    assert_eq!(
        token_err(sessions.refresh(&p.refresh).await),
        TokenError::Revoked,
        "the session stays revoked"
    );
    let q = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    users.remove(&id);
    assert_eq!(
        token_err(sessions.refresh(&q.refresh).await),
        TokenError::UserInactive
    );
    assert_eq!(
        token_err(sessions.check_access(&q.access).await),
        TokenError::Revoked
    );
}

fn new_session(user: &str, now: u64, token_ttl: u64, max_age: u64) -> NewSession {
    NewSession::new(
        Uuid::new_v4(),
        user,
        Uuid::new_v4(),
        now,
        now + token_ttl,
        now + max_age,
    )
    .with_label(None)
}

fn rotate_req(s: &NewSession, jti: Uuid, now: u64) -> RotateRequest {
    RotateRequest::new(
        s.session_id,
        s.user_id.clone(),
        jti,
        Uuid::new_v4(),
        now,
        100,
    )
    .with_grace(0)
}

/// Expired token, session past its absolute lifetime, unknown `jti`, another
/// user's session: each is refused with its own outcome, and none changes state.
pub async fn refusals(store: Arc<dyn TokenStore>) {
    let now = system_secs();
    let s = new_session("u-refusals", now, 50, 120);
    store.create_session(&s).await.unwrap();
    assert_eq!(
        store
            .rotate(&rotate_req(&s, s.jti, now + 50))
            .await
            .unwrap(),
        RotateOutcome::Expired
    );
    assert_eq!(
        store
            .rotate(&rotate_req(&s, Uuid::new_v4(), now))
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );
    let mut other_user = rotate_req(&s, s.jti, now);
    other_user.user_id = "someone-else".into();
    assert_eq!(
        store.rotate(&other_user).await.unwrap(),
        RotateOutcome::Unknown
    );
    let mut unknown_session = rotate_req(&s, s.jti, now);
    unknown_session.session_id = Uuid::new_v4();
    assert_eq!(
        store.rotate(&unknown_session).await.unwrap(),
        RotateOutcome::Unknown
    );
    // None of that hurt the session: the token still rotates, and the successor's
    // expiry is capped by the session's absolute lifetime (now + 120).
    let r = rotate_req(&s, s.jti, now + 40);
    assert_eq!(
        store.rotate(&r).await.unwrap(),
        RotateOutcome::Rotated {
            expires_at: now + 120
        }
    );
    // Past the absolute lifetime the successor is refused, though its own ttl is not over.
    assert_eq!(
        store
            .rotate(&rotate_req(&s, r.successor_jti, now + 120))
            .await
            .unwrap(),
        RotateOutcome::Expired
    );
    // Revocation is final and answers `Revoked`.
    let t = new_session("u-refusals", now, 50, 120);
    store.create_session(&t).await.unwrap();
    assert!(store.revoke_session(t.session_id, now).await.unwrap());
    assert!(!store.revoke_session(t.session_id, now).await.unwrap());
    assert_eq!(
        store.rotate(&rotate_req(&t, t.jti, now)).await.unwrap(),
        RotateOutcome::Revoked
    );
    assert!(
        store
            .is_revoked(t.session_id, "u-refusals", now)
            .await
            .unwrap()
    );
    assert!(
        store
            .is_revoked(Uuid::new_v4(), "u-refusals", now)
            .await
            .unwrap(),
        "unknown sessions are revoked"
    );
    assert!(
        !store
            .is_revoked(s.session_id, "u-refusals", now)
            .await
            .unwrap()
    );
    assert!(
        store
            .is_revoked(s.session_id, "someone-else", now)
            .await
            .unwrap()
    );
}

/// Expired tokens through [`Sessions`]: a 1-second refresh lifetime, then a wait.
pub async fn expired_refresh_token(store: Arc<dyn TokenStore>) {
    let users = Arc::new(Users::new());
    let id = Uuid::new_v4();
    users.insert(id, "alice".into());
    let jwt = Jwt::builder()
        .signing_key(Key::hmac("test", Algorithm::HS256, [42u8; 32]).unwrap())
        .refresh_ttl(Duration::from_secs(1))
        .build()
        .unwrap();
    let sessions: Sessions<Users> = Sessions::new(jwt, store, users);
    let p = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        token_err(sessions.refresh(&p.refresh).await),
        TokenError::Expired
    );
}

/// A store wrapper that fails every call while switched off: the suite's stand-in
/// for a database that went away. Public so backends can test their own wiring.
#[derive(Debug)]
pub struct FailingStore {
    inner: Arc<dyn TokenStore>,
    down: AtomicBool,
}

impl FailingStore {
    /// Wraps a store; it starts up.
    pub fn new(inner: Arc<dyn TokenStore>) -> Self {
        FailingStore {
            inner,
            down: AtomicBool::new(false),
        }
    }

    /// Takes the store down (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::new("store is down"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl TokenStore for FailingStore {
    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        self.check()?;
        self.inner.create_session(s).await
    }
    async fn rotate(&self, r: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        self.check()?;
        self.inner.rotate(r).await
    }
    async fn revoke_session(&self, id: Uuid, now: u64) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.revoke_session(id, now).await
    }
    async fn revoke_user(&self, user: &str, now: u64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.revoke_user(user, now).await
    }
    async fn is_revoked(&self, id: Uuid, user: &str, iat: u64) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.is_revoked(id, user, iat).await
    }
    async fn list_sessions(&self, user: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError> {
        self.check()?;
        self.inner.list_sessions(user, now).await
    }
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge_expired(now).await
    }
}

/// A store that errors gives `StoreUnavailable` (503), never a token outcome, and
/// is not counted as reuse: once it is back, the same token rotates.
pub async fn store_errors_are_not_token_outcomes(store: Arc<dyn TokenStore>) {
    let failing = Arc::new(FailingStore::new(store));
    let (sessions, _, id) = sessions_for(failing.clone());
    let p = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    failing.set_down(true);
    for r in [
        sessions.refresh(&p.refresh).await.map(|_| ()),
        sessions.check_access(&p.access).await.map(|_| ()),
        sessions.logout(&p.refresh).await,
        sessions.login(&id, &NoCustomClaims, None).await.map(|_| ()),
    ] {
        assert!(matches!(r, Err(AuthError::StoreUnavailable(_))), "{r:?}");
    }
    failing.set_down(false);
    let next = sessions
        .refresh(&p.refresh)
        .await
        .expect("the outage did not count as reuse");
    sessions.check_access(&next.access).await.unwrap();
}

/// Purge removes exactly the expired rows and keeps used rows until their session expires.
pub async fn purge(store: Arc<dyn TokenStore>) {
    let now = system_secs();
    let user = format!("purge-{}", Uuid::new_v4());
    // Two sessions whose absolute lifetime ends at now+100: every row goes.
    let dead: Vec<NewSession> = (0..2).map(|_| new_session(&user, now, 50, 100)).collect();
    // Four live sessions (max age 1000); one rotated twice (two used rows + live).
    let live: Vec<NewSession> = (0..4).map(|_| new_session(&user, now, 500, 1000)).collect();
    for s in dead.iter().chain(&live) {
        store.create_session(s).await.unwrap();
    }
    let mut r1 = rotate_req(&live[0], live[0].jti, now + 1);
    r1.refresh_ttl = 900;
    assert!(matches!(
        store.rotate(&r1).await.unwrap(),
        RotateOutcome::Rotated { .. }
    ));
    let mut r2 = rotate_req(&live[0], r1.successor_jti, now + 2);
    r2.refresh_ttl = 900;
    assert!(matches!(
        store.rotate(&r2).await.unwrap(),
        RotateOutcome::Rotated { .. }
    ));
    // A session rotated once, whose live token (ttl 100 from now+1) expires unused
    // at now+101 while the session lives on: that one row goes, the used one stays.
    let r3 = rotate_req(&live[1], live[1].jti, now + 1);
    assert!(matches!(
        store.rotate(&r3).await.unwrap(),
        RotateOutcome::Rotated { .. }
    ));
    // Nothing has expired yet.
    assert_eq!(store.purge_expired(now + 1).await.unwrap(), 0);
    // At now+200: the two dead sessions (1 row each) and live[1]'s expired live
    // token (expired unused at now+101) go: 3 rows. live[0]'s used rows stay.
    assert_eq!(store.purge_expired(now + 200).await.unwrap(), 3);
    assert_eq!(
        store.purge_expired(now + 200).await.unwrap(),
        0,
        "purge is idempotent"
    );
    // The used rows still answer as reuse.
    assert_eq!(
        store
            .rotate(&rotate_req(&live[0], live[0].jti, now + 300))
            .await
            .unwrap(),
        RotateOutcome::ReuseDetected
    );
    // At the end of the live sessions' lifetime, everything goes:
    // live[0]: 3 rows, live[1]: 1 used row, live[2], live[3]: 1 each.
    assert_eq!(store.purge_expired(now + 1000).await.unwrap(), 6);
}

/// The live sessions of a user, with labels; revoked ones disappear.
pub async fn list_sessions(store: Arc<dyn TokenStore>) {
    let (sessions, _, id) = sessions_for(store);
    let a = sessions
        .login(&id, &NoCustomClaims, Some("firefox".into()))
        .await
        .unwrap();
    let b = sessions
        .login(&id, &NoCustomClaims, Some("curl".into()))
        .await
        .unwrap();
    let list = sessions.list_sessions(&id.to_string()).await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .any(|s| s.session_id == a.session_id && s.label.as_deref() == Some("firefox"))
    );
    sessions.logout(&b.refresh).await.unwrap();
    let list = sessions.list_sessions(&id.to_string()).await.unwrap();
    assert_eq!(
        list.iter().map(|s| s.session_id).collect::<Vec<_>>(),
        vec![a.session_id]
    );
    assert!(
        !sessions
            .revoke_session_of("someone-else", a.session_id)
            .await
            .unwrap()
    );
    assert!(
        sessions
            .revoke_session_of(&id.to_string(), a.session_id)
            .await
            .unwrap()
    );
    assert!(
        sessions
            .list_sessions(&id.to_string())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Generates one `#[tokio::test]` per conformance case for a backend.
///
/// The argument is an async closure returning `Option<Arc<dyn TokenStore>>`, a
/// fresh empty store per call (its own database or key prefix), or `None` to skip.
#[macro_export]
macro_rules! token_store_conformance {
    ($make:expr) => {
        $crate::token_store_conformance!(@case $make;
            chain_of_ten_rotations, reuse_revokes_session, race_exactly_one_winner,
            race_with_grace, second_to_last_never_gets_grace, logout, revoke_all,
            user_deleted_or_inactive, refusals, expired_refresh_token,
            store_errors_are_not_token_outcomes, purge, list_sessions);
    };
    (@case $make:expr; $($case:ident),*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let make = $make;
                match make().await {
                    Some(store) => $crate::conformance::$case(store).await,
                    None => eprintln!("skipped: backend not available"),
                }
            }
        )*
    };
}
