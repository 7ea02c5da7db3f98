//! The store-level suite: the [`TokenStore`] contract, called directly.
//!
//! Every case calls the store's methods with explicit `now` values (seconds
//! since the epoch, starting at the system's time so that stores which expire
//! keys on their own keep them), and checks the answers against the rules of
//! [`rotation::decide`](crate::store::rotation::decide) and
//! [`state`](crate::store::state): refusals, purge, listing, revoke-all
//! cutoffs, the grace window, and concurrent rotations of one token. Adding a
//! case here (inside `cases!`) runs it on every backend.

use std::sync::Arc;

use uuid::Uuid;

use crate::clock::system_secs;
use crate::store::{NewSession, RotateOutcome, RotateRequest, SessionInfo, TokenStore};

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

/// A user id no other case uses.
fn unique_user(what: &str) -> String {
    format!("{what}-{}", Uuid::new_v4())
}

/// Revocation is final and answers `Revoked`; unknown sessions, and sessions of
/// another user, count as revoked. Part of [`refusals`].
async fn revocation_refusals(store: &dyn TokenStore, s: &NewSession, now: u64) {
    let t = new_session("u-refusals", now, 50, 120);
    store.create_session(&t).await.unwrap();
    assert!(
        !store
            .revoke_session(t.session_id, "u-someone-else", now)
            .await
            .unwrap(),
        "another user's session is not revoked"
    );
    assert!(
        !store
            .is_revoked(t.session_id, &t.user_id, now)
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_session(t.session_id, &t.user_id, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_session(t.session_id, &t.user_id, now)
            .await
            .unwrap()
    );
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

/// Rotates `jti` of `s` at `now` with `grace`: the outcome, and the successor's `jti`.
async fn rotate_with_grace(
    store: &dyn TokenStore,
    s: &NewSession,
    jti: Uuid,
    now: u64,
    grace: u64,
) -> (RotateOutcome, Uuid) {
    let r = rotate_req(s, jti, now).with_grace(grace);
    (store.rotate(&r).await.unwrap(), r.successor_jti)
}

/// `tasks` tasks rotate the first token of `s` at once (behind a barrier); every
/// outcome. A store error fails the case: a race is never a store failure.
async fn rotation_race(
    store: &Arc<dyn TokenStore>,
    s: &NewSession,
    now: u64,
    tasks: usize,
) -> Vec<(RotateOutcome, Uuid)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (store, barrier, r) = (store.clone(), barrier.clone(), rotate_req(s, s.jti, now));
            tokio::spawn(async move {
                barrier.wait().await;
                let outcome = store.rotate(&r).await;
                (
                    outcome.expect("a race is never a store error"),
                    r.successor_jti,
                )
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks);
    for h in handles {
        out.push(h.await.expect("task panicked"));
    }
    out
}

cases! {
    /// Every store-level case, in the order they are written: the slowest
    /// first, as the runner makes their stores in this order.
    pub const STORE_CASES;

    /// 64 concurrent rotations of one token, 5 times over, through
    /// [`TokenStore::rotate`] (grace 0): exactly one is `Rotated`, the others are
    /// reuse (at least one, which revokes the session) or `Revoked`; never a
    /// store error. The five rounds run at once, each on its own session.
    pub async fn rotation_races(store: Arc<dyn TokenStore>) {
        let now = system_secs();
        let user = unique_user("race");
        let rounds: Vec<_> = (0..5)
            .map(|round| {
                let (store, s) = (store.clone(), new_session(&user, now, 500, 1000));
                tokio::spawn(async move {
                    store.create_session(&s).await.unwrap();
                    let outcomes = rotation_race(&store, &s, now, 64).await;
                    (round, outcomes, s)
                })
            })
            .collect();
        for handle in rounds {
            let (round, outcomes, s) = handle.await.expect("round panicked");
            let winners: Vec<Uuid> = outcomes
                .iter()
                .filter(|(o, _)| matches!(o, RotateOutcome::Rotated { .. }))
                .map(|(_, successor)| *successor)
                .collect();
            assert_eq!(winners.len(), 1, "round {round}: {} winners", winners.len());
            let reuse = outcomes
                .iter()
                .filter(|(o, _)| *o == RotateOutcome::ReuseDetected)
                .count();
            assert!(reuse >= 1, "round {round}: no loser saw reuse");
            for (o, _) in &outcomes {
                assert!(
                    matches!(
                        o,
                        RotateOutcome::Rotated { .. }
                            | RotateOutcome::ReuseDetected
                            | RotateOutcome::Revoked
                    ),
                    "round {round}: {o:?}"
                );
            }
            assert!(store.is_revoked(s.session_id, &user, now).await.unwrap());
            assert_eq!(
                store
                    .rotate(&rotate_req(&s, winners[0], now))
                    .await
                    .unwrap(),
                RotateOutcome::Revoked,
                "round {round}: the winner's successor"
            );
        }
    }

    /// Revoke-all (at a time in milliseconds) revokes every session of the user
    /// (counting the live ones) and every token of theirs issued before it;
    /// tokens of that very second are judged by their session alone, and the
    /// cutoff never moves back.
    pub async fn revoke_user_cutoff(store: Arc<dyn TokenStore>) {
        let now = system_secs();
        let (user, other) = (unique_user("cutoff"), unique_user("cutoff-other"));
        let (s1, s2) = (
            new_session(&user, now, 100, 1000),
            new_session(&user, now, 100, 1000),
        );
        let theirs = new_session(&other, now, 100, 1000);
        for s in [&s1, &s2, &theirs] {
            store.create_session(s).await.unwrap();
        }
        assert!(store.revoke_session(s2.session_id, &s2.user_id, now).await.unwrap());
        assert_eq!(
            store.revoke_user(&user, (now + 5) * 1000).await.unwrap(),
            1,
            "one was live"
        );
        assert!(
            store
                .is_revoked(s1.session_id, &user, now + 5)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .rotate(&rotate_req(&s1, s1.jti, now + 5))
                .await
                .unwrap(),
            RotateOutcome::Revoked
        );
        assert!(
            !store
                .is_revoked(theirs.session_id, &other, now)
                .await
                .unwrap(),
            "another user's"
        );
        // A session started after the revoke-all: its tokens of the cutoff's second
        // stand; a token claiming an earlier issue time does not.
        let s3 = new_session(&user, now + 5, 100, 1000);
        store.create_session(&s3).await.unwrap();
        assert!(
            !store
                .is_revoked(s3.session_id, &user, now + 5)
                .await
                .unwrap()
        );
        assert!(
            store
                .is_revoked(s3.session_id, &user, now + 4)
                .await
                .unwrap()
        );
        // An earlier revoke-all (a clock behind) revokes s3 but keeps the cutoff at now+5.
        assert_eq!(store.revoke_user(&user, (now + 2) * 1000).await.unwrap(), 1);
        let s4 = new_session(&user, now + 6, 100, 1000);
        store.create_session(&s4).await.unwrap();
        assert!(
            store
                .is_revoked(s4.session_id, &user, now + 4)
                .await
                .unwrap()
        );
        assert!(
            !store
                .is_revoked(s4.session_id, &user, now + 5)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .revoke_user(&unique_user("nobody"), now * 1000)
                .await
                .unwrap(),
            0
        );
    }

    /// The window covers only the live token's parent, and only while the live
    /// token is unused: never a token two generations back, never after the
    /// successor was used. A re-delivery makes no second branch: the token it
    /// answers is the one live token, which rotates on.
    pub async fn reuse_window_only_for_the_parent(store: Arc<dyn TokenStore>) {
        let now = system_secs();
        let user = unique_user("window-parent");
        let (chain, again) = (
            new_session(&user, now, 500, 1000),
            new_session(&user, now, 500, 1000),
        );
        for s in [&chain, &again] {
            store.create_session(s).await.unwrap();
        }
        let (first, j1) = rotate_with_grace(&*store, &chain, chain.jti, now, 60).await;
        assert!(matches!(first, RotateOutcome::Rotated { .. }), "{first:?}");
        let (second, j2) = rotate_with_grace(&*store, &chain, j1, now, 60).await;
        assert!(
            matches!(second, RotateOutcome::Rotated { .. }),
            "{second:?}"
        );
        let (old, _) = rotate_with_grace(&*store, &chain, chain.jti, now, 60).await;
        assert_eq!(old, RotateOutcome::ReuseDetected, "two generations back");
        let (live, _) = rotate_with_grace(&*store, &chain, j2, now, 60).await;
        assert_eq!(live, RotateOutcome::Revoked);

        let (first, j1) = rotate_with_grace(&*store, &again, again.jti, now, 60).await;
        assert!(matches!(first, RotateOutcome::Rotated { .. }), "{first:?}");
        let (redelivered, _) = rotate_with_grace(&*store, &again, again.jti, now, 60).await;
        assert!(
            matches!(redelivered, RotateOutcome::Redelivered { jti, .. } if jti == j1),
            "{redelivered:?}"
        );
        let (on, _) = rotate_with_grace(&*store, &again, j1, now + 1, 60).await;
        assert!(matches!(on, RotateOutcome::Rotated { .. }), "{on:?}");
        let (used, _) = rotate_with_grace(&*store, &again, again.jti, now + 1, 60).await;
        assert_eq!(
            used,
            RotateOutcome::ReuseDetected,
            "its successor was used since"
        );
    }

    /// A cutoff no stored session falls under is purged; one that still covers
    /// a stored session stays (its session stays revoked either way).
    pub async fn purge_drops_idle_cutoffs(store: Arc<dyn TokenStore>) {
        let now = system_secs();
        let (idle, busy) = (unique_user("cutoff-idle"), unique_user("cutoff-busy"));
        let old = new_session(&busy, now, 100, 1000);
        store.create_session(&old).await.unwrap();
        store.revoke_user(&idle, now * 1000 + 500).await.unwrap();
        store.revoke_user(&busy, now * 1000 + 500).await.unwrap();
        store.purge_expired(now).await.unwrap();
        // The idle user's cutoff is gone: a session stamped before it now lives.
        let late = new_session(&idle, now, 100, 1000).with_created_at_ms(now * 1000 + 100);
        store.create_session(&late).await.unwrap();
        assert!(!store.is_revoked(late.session_id, &idle, now).await.unwrap());
        // The busy user's cutoff stayed: the same holds it back.
        let late = new_session(&busy, now, 100, 1000).with_created_at_ms(now * 1000 + 100);
        store.create_session(&late).await.unwrap();
        assert!(store.is_revoked(late.session_id, &busy, now).await.unwrap());
        assert!(store.is_revoked(old.session_id, &busy, now).await.unwrap());
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
                expires_at: now + 120,
                session_expires_at: now + 120
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

    /// A user's list shows exactly their listable sessions
    /// ([`state::is_listable`](crate::store::state::is_listable)), with their
    /// times and labels: not revoked, not past the session's lifetime, and the
    /// live token unused and not expired.
    pub async fn list_sessions_rules(store: Arc<dyn TokenStore>) {
        let now = system_secs();
        let (user, other) = (unique_user("list"), unique_user("list-other"));
        let a = new_session(&user, now, 100, 1000).with_label(Some("firefox".into()));
        let b = new_session(&user, now, 100, 1000);
        // Its token dies unused at now+10, the session at now+20.
        let short = new_session(&user, now, 10, 20);
        let elsewhere = new_session(&other, now, 100, 1000);
        for s in [&a, &b, &short, &elsewhere] {
            store.create_session(s).await.unwrap();
        }
        let listed = async |at: u64| {
            let mut list = store.list_sessions(&user, at).await.unwrap();
            list.sort_by_key(|s| s.session_id);
            list
        };
        let info = |s: &NewSession| {
            SessionInfo::new(s.session_id, &user, now, s.session_expires_at)
                .with_label(s.label.clone())
        };
        let mut expected = vec![info(&a), info(&b), info(&short)];
        expected.sort_by_key(|s| s.session_id);
        assert_eq!(listed(now + 1).await, expected);
        // A rotation moves `last_rotated_at`.
        let r = rotate_req(&a, a.jti, now + 5);
        assert!(matches!(
            store.rotate(&r).await.unwrap(),
            RotateOutcome::Rotated { .. }
        ));
        assert!(store.revoke_session(b.session_id, &b.user_id, now + 6).await.unwrap());
        // `short`'s live token has expired (its session has not): not listed.
        assert_eq!(
            listed(now + 10).await,
            [info(&a).with_last_rotated_at(now + 5)]
        );
        assert_eq!(
            listed(now + 20).await,
            [info(&a).with_last_rotated_at(now + 5)]
        );
        assert!(
            listed(now + 1000).await.is_empty(),
            "past the session's lifetime"
        );
        let theirs = store.list_sessions(&other, now + 1).await.unwrap();
        assert_eq!(
            theirs,
            [SessionInfo::new(
                elsewhere.session_id,
                &other,
                now,
                now + 1000
            )]
        );
        assert!(
            store
                .list_sessions(&unique_user("nobody"), now)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// The reuse window ([`rotation::decide`](crate::store::rotation::decide)):
    /// the live token's parent, presented again within the window (its last
    /// second included) before the live token was used, gets the live token
    /// again (`Redelivered`, nothing written: the chain goes on from it); after
    /// the window it is reuse, and reuse revokes the session.
    pub async fn reuse_window(store: Arc<dyn TokenStore>) {
        let now = system_secs();
        let user = unique_user("window");
        let (within, after) = (
            new_session(&user, now, 500, 1000),
            new_session(&user, now, 500, 1000),
        );
        let mut live = Vec::new();
        for s in [&within, &after] {
            store.create_session(s).await.unwrap();
            let (first, j1) = rotate_with_grace(&*store, s, s.jti, now, 10).await;
            assert_eq!(
                first,
                RotateOutcome::Rotated {
                    expires_at: now + 100,
                    session_expires_at: now + 1000
                }
            );
            live.push(j1);
        }
        let (again, _) = rotate_with_grace(&*store, &within, within.jti, now + 10, 10).await;
        assert_eq!(
            again,
            RotateOutcome::Redelivered {
                jti: live[0],
                expires_at: now + 100,
                session_expires_at: now + 1000
            }
        );
        let (next, _) = rotate_with_grace(&*store, &within, live[0], now + 10, 10).await;
        assert_eq!(
            next,
            RotateOutcome::Rotated {
                expires_at: now + 110,
                session_expires_at: now + 1000
            }
        );
        assert!(
            !store
                .is_revoked(within.session_id, &user, now + 10)
                .await
                .unwrap()
        );

        let (late, _) = rotate_with_grace(&*store, &after, after.jti, now + 11, 10).await;
        assert_eq!(late, RotateOutcome::ReuseDetected);
        assert!(
            store
                .is_revoked(after.session_id, &user, now + 11)
                .await
                .unwrap()
        );
        let (parent_again, _) = rotate_with_grace(&*store, &after, after.jti, now + 11, 10).await;
        assert_eq!(parent_again, RotateOutcome::Revoked, "revocation is final");
    }

    /// A session created before the user's revoke-all cutoff (to the
    /// millisecond, in the same second) is recorded revoked and never rotates;
    /// one created at or after the cutoff lives.
    pub async fn creation_checks_the_cutoff(store: Arc<dyn TokenStore>) {
        let now = system_secs();
        let user = unique_user("cutoff-race");
        assert_eq!(store.revoke_user(&user, now * 1000 + 700).await.unwrap(), 0);
        let before = new_session(&user, now, 100, 1000).with_created_at_ms(now * 1000 + 699);
        let after = new_session(&user, now, 100, 1000).with_created_at_ms(now * 1000 + 700);
        for s in [&before, &after] {
            store.create_session(s).await.unwrap();
        }
        assert!(store.is_revoked(before.session_id, &user, now).await.unwrap());
        assert_eq!(
            store
                .rotate(&rotate_req(&before, before.jti, now))
                .await
                .unwrap(),
            RotateOutcome::Revoked
        );
        assert!(!store.is_revoked(after.session_id, &user, now).await.unwrap());
        assert!(matches!(
            store.rotate(&rotate_req(&after, after.jti, now)).await.unwrap(),
            RotateOutcome::Rotated { .. }
        ));
        let listed = store.list_sessions(&user, now).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].session_id, after.session_id);
    }

    /// User ids compare exactly, byte for byte: `bob`, `bob ` (a trailing
    /// space) and `Bob` are three users, for listing, revoke-all and the owner
    /// check of a rotation (no PAD SPACE or case-folding collation).
    pub async fn user_ids_compare_exactly(store: Arc<dyn TokenStore>) {
        let now = system_secs();
        let bob = unique_user("bob");
        let others = [format!("{bob} "), bob.to_uppercase(), format!(" {bob}")];
        let mine = new_session(&bob, now, 500, 1000);
        store.create_session(&mine).await.unwrap();
        let mut theirs = Vec::new();
        for other in &others {
            let s = new_session(other, now, 500, 1000);
            store.create_session(&s).await.unwrap();
            theirs.push(s);
        }
        let listed = store.list_sessions(&bob, now).await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].session_id, mine.session_id);
        for (other, s) in others.iter().zip(&theirs) {
            let listed = store.list_sessions(other, now).await.unwrap();
            assert_eq!(listed.len(), 1, "{other:?}: {listed:?}");
            assert_eq!(listed[0].session_id, s.session_id, "{other:?}");
            // Another user's id on this session's token is refused, unchanged.
            let mut wrong = rotate_req(&mine, mine.jti, now + 1);
            wrong.user_id = other.clone();
            assert_ne!(
                store.rotate(&wrong).await.unwrap(),
                RotateOutcome::Rotated {
                    expires_at: now + 101,
                    session_expires_at: now + 1000
                },
                "{other:?} rotated bob's session"
            );
        }
        store.revoke_user(&bob, now * 1000 + 5).await.unwrap();
        assert!(store.is_revoked(mine.session_id, &bob, now + 1).await.unwrap());
        for (other, s) in others.iter().zip(&theirs) {
            assert!(
                !store.is_revoked(s.session_id, other, now + 1).await.unwrap(),
                "revoking {bob:?} revoked {other:?}"
            );
            assert!(matches!(
                store.rotate(&rotate_req(s, s.jti, now + 1)).await.unwrap(),
                RotateOutcome::Rotated { .. }
            ));
        }
    }

    /// A live token purged once it expired unused: its session lives on, and
    /// the token is refused as unknown (its record is gone: never a store
    /// error, never a rotation) on every backend; the session is no longer
    /// listed, and can still be revoked.
    pub async fn purged_live_token_is_unknown(store: Arc<dyn TokenStore>) {
        let now = system_secs();
        let user = unique_user("purged");
        let s = new_session(&user, now, 50, 1000);
        store.create_session(&s).await.unwrap();
        assert_eq!(store.purge_expired(now + 100).await.unwrap(), 1);
        assert_eq!(
            store.rotate(&rotate_req(&s, s.jti, now + 100)).await.unwrap(),
            RotateOutcome::Unknown
        );
        assert!(store.list_sessions(&user, now + 100).await.unwrap().is_empty());
        assert!(store.revoke_session(s.session_id, &s.user_id, now + 101).await.unwrap());
        assert!(store.is_revoked(s.session_id, &user, now + 101).await.unwrap());
    }
}
