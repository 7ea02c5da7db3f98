//! The store-level suite: the [`TokenStore`] contract, called directly.
//!
//! Every case calls the store's methods with explicit `now` values (seconds
//! since the epoch, starting at the system's time so that stores which expire
//! keys on their own keep them), and checks the answers against the rules of
//! [`rotation::decide`](crate::store::rotation::decide) and
//! [`state`](crate::store::state): refusals and purge. Adding a case here
//! (inside `cases!`) runs it on every backend.

use std::sync::Arc;

use uuid::Uuid;

use crate::clock::system_secs;
use crate::store::{NewSession, RotateOutcome, RotateRequest, TokenStore};

/// A session of `user` created at `now`, whose first token lives `token_ttl`
/// seconds and which ends `max_age` seconds after `now`.
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

/// Rotates `jti` of session `s` at `now` to a new successor living 100 s, grace 0.
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

/// Revocation is final and answers `Revoked`; unknown sessions, and sessions of
/// another user, count as revoked. Part of [`refusals`].
async fn revocation_refusals(store: &dyn TokenStore, s: &NewSession, now: u64) {
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

cases! {
    /// Every store-level case, in the order they are written.
    pub const STORE_CASES;

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
        revocation_refusals(&*store, &s, now).await;
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
}
