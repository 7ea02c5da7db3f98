//! The sessions-level suite: a store under [`Sessions`], as an app uses it.
//!
//! Login, refresh, logout and revoke-all through [`Sessions`], with reuse
//! detection, races and the grace window, users that go away, expired tokens,
//! and store failures. Each case runs on a fresh store and a manual [`Clock`]
//! starting at the system's time, which it moves instead of sleeping; the
//! sessions pass that clock's `now` to the store. Adding a case here (inside
//! `cases!`) runs it on every backend.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::clock::Clock;
use crate::error::{AuthError, TokenError};
use crate::store::TokenStore;
use crate::{Algorithm, Jwt, Key, NoCustomClaims, Sessions, TokenPair};

use super::FailingStore;
use super::fixtures::{Users, sessions_on, test_jwt_on, token_err};

/// Sessions over `store` with one active user, on a manual clock at the
/// system's time: the sessions, the users, the user's id and the clock.
fn on_manual_clock(store: Arc<dyn TokenStore>) -> (Sessions<Users>, Arc<Users>, Uuid, Clock) {
    let clock = Clock::manual_now();
    let (sessions, users, id) = sessions_on(store, clock.clone());
    (sessions, users, id, clock)
}

/// How many rounds of [`race_exactly_one_winner`] race at once, each on its own
/// session (20 is a multiple of it). The rotations of one round queue behind
/// one another in the store; a few rounds at once keep a networked store's
/// connections and the machine's cores busy meanwhile (measured on PostgreSQL,
/// MariaDB, Redis and SQLite: about 1.5x faster than one at a time), and no
/// rotation waits behind more than a few hundred others, well inside the
/// stores' operation timeouts.
pub const ROUNDS_AT_ONCE: usize = 4;
const _: () = assert!(20 % ROUNDS_AT_ONCE == 0);

/// `tasks` tasks refresh `token` at once (behind a barrier); every answer.
async fn race(
    sessions: &Sessions<Users>,
    token: &str,
    tasks: usize,
) -> Vec<Result<TokenPair, AuthError>> {
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

/// The refused answers of `sessions.refresh` and `sessions.check_access` for a
/// pair whose session is revoked.
async fn assert_pair_revoked(sessions: &Sessions<Users>, p: &TokenPair) {
    assert_eq!(
        token_err(sessions.check_access(&p.access).await),
        TokenError::Revoked
    );
    assert_eq!(
        token_err(sessions.refresh(&p.refresh).await),
        TokenError::Revoked
    );
}

cases! {
    /// Every sessions-level case, in the order they are written: the slowest
    /// first, as the runner makes their stores in this order.
    pub const SESSION_CASES;

    /// 64 tasks refresh one token at once, 20 times over: exactly one wins each time
    /// (grace 0); every loser is refused as reuse or revoked, never a store error.
    /// The rounds run [`ROUNDS_AT_ONCE`] at a time, each on its own session.
    pub async fn race_exactly_one_winner(store: Arc<dyn TokenStore>) {
        let (sessions, _, id, _) = on_manual_clock(store);
        // Window 0: strict single use, as without a reuse window.
        let sessions = sessions.with_reuse_grace(Duration::ZERO).unwrap();
        for wave in (0..20).step_by(ROUNDS_AT_ONCE) {
            let rounds: Vec<_> = (wave..wave + ROUNDS_AT_ONCE)
                .map(|round| {
                    let sessions = sessions.clone();
                    tokio::spawn(async move {
                        let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
                        (round, race(&sessions, &pair.refresh, 64).await)
                    })
                })
                .collect();
            for handle in rounds {
                let (round, results) = handle.await.expect("round panicked");
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
    }

    /// 64 concurrent refreshes of one token with a window: every 200 carries the
    /// same successor, and the chain goes on from it.
    pub async fn race_with_window_answers_one_successor(store: Arc<dyn TokenStore>) {
        let (sessions, _, id, _) = on_manual_clock(store);
        let sessions = sessions.with_reuse_grace(Duration::from_secs(10)).unwrap();
        for round in 0..5 {
            let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
            let results = race(&sessions, &pair.refresh, 64).await;
            let mut successors = std::collections::HashSet::new();
            for r in results {
                match r {
                    Ok(p) => {
                        successors.insert(p.refresh_jti);
                    }
                    Err(e) => panic!("round {round}: a racing refresh was refused: {e:?}"),
                }
            }
            assert_eq!(successors.len(), 1, "round {round}: one successor per generation");
            let live = successors.into_iter().next().unwrap();
            // The winners' token (all the same) rotates on.
            let any = race(&sessions, &pair.refresh, 1).await.remove(0).unwrap();
            assert_eq!(any.refresh_jti, live);
            sessions.refresh(&any.refresh).await.unwrap();
        }
    }

    /// Logins racing a revoke-all never survive it, even in the same second and
    /// from an instance whose clock is behind: a session created before the
    /// cutoff (to the millisecond) is revoked, whichever committed first; a
    /// login after it, in the same second, lives.
    pub async fn logins_racing_revoke_all_never_survive(store: Arc<dyn TokenStore>) {
        // Two app instances on one store: A logs in at t.300, B revokes all at t.700.
        let t = Clock::manual_now().now_secs();
        let clock_a = Clock::manual(t);
        clock_a.advance(Duration::from_millis(300));
        let clock_b = Clock::manual(t);
        clock_b.advance(Duration::from_millis(700));
        let (a, users, id) = sessions_on(store.clone(), clock_a);
        let b = Sessions::new(test_jwt_on(clock_b.clone()), store, users);
        for round in 0..5 {
            let barrier = Arc::new(tokio::sync::Barrier::new(17));
            let mut logins = Vec::new();
            for _ in 0..16 {
                let (a, barrier) = (a.clone(), barrier.clone());
                logins.push(tokio::spawn(async move {
                    barrier.wait().await;
                    a.login(&id, &NoCustomClaims, None).await.unwrap()
                }));
            }
            let revoke = {
                let b = b.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    b.revoke_user(&id).await.unwrap()
                })
            };
            revoke.await.unwrap();
            for l in logins {
                let p = l.await.unwrap();
                assert_eq!(
                    token_err(a.check_access(&p.access).await),
                    TokenError::Revoked,
                    "round {round}: a login from before the revoke-all survived it"
                );
                assert_eq!(
                    token_err(a.refresh(&p.refresh).await),
                    TokenError::Revoked,
                    "round {round}"
                );
            }
            // The next round races a new revoke-all, a second later on both.
            a.jwt().clock().advance(Duration::from_secs(1));
            clock_b.advance(Duration::from_secs(1));
        }
        // In the revoke-all's own second, a login after it lives.
        clock_b.advance(Duration::from_millis(100) + Duration::from_secs(0));
        let _ = b.revoke_user(&id).await.unwrap();
        clock_b.advance(Duration::from_millis(100));
        let after = b.login(&id, &NoCustomClaims, None).await.unwrap();
        b.check_access(&after.access).await.unwrap();
        b.refresh(&after.refresh).await.unwrap();
    }

    /// Ten chained rotations with a UUID user id; each spent token is refused after use
    /// (and that refusal, being reuse, ends the session: so it is checked on a copy).
    pub async fn chain_of_ten_rotations(store: Arc<dyn TokenStore>) {
        let (sessions, _, id, _) = on_manual_clock(store);
        // Strict single use: a replay right after a rotation is reuse.
        let sessions = sessions.with_reuse_grace(Duration::ZERO).unwrap();
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

    /// With a reuse window, every winner of a race gets the one successor (the
    /// same refresh `jti`: no second branch), and a replay after the window
    /// revokes the session.
    pub async fn race_with_grace(store: Arc<dyn TokenStore>) {
        let (sessions, _, id, clock) = on_manual_clock(store);
        let sessions = sessions.with_reuse_grace(Duration::from_secs(2)).unwrap();
        let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        let results = race(&sessions, &pair.refresh, 64).await;
        let winners: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
        assert!(!winners.is_empty());
        for w in &winners {
            assert_eq!(
                w.session_id, pair.session_id,
                "extra winners stay in the session"
            );
            assert_eq!(w.refresh_jti, winners[0].refresh_jti, "one successor");
        }
        // Past the window.
        clock.advance(Duration::from_millis(3100));
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

    /// Replaying a used token revokes the session: the newest successor is refused, and
    /// the session's access tokens fail the revocation check.
    pub async fn reuse_revokes_session(store: Arc<dyn TokenStore>) {
        let (sessions, _, id, _) = on_manual_clock(store);
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

    /// Grace covers only the immediate predecessor of the live token.
    pub async fn second_to_last_never_gets_grace(store: Arc<dyn TokenStore>) {
        let (sessions, _, id, _) = on_manual_clock(store);
        let sessions = sessions.with_reuse_grace(Duration::from_secs(60)).unwrap();
        let p0 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        let p1 = sessions.refresh(&p0.refresh).await.unwrap();
        let p2 = sessions.refresh(&p1.refresh).await.unwrap();
        // p1 is the immediate predecessor of the live token: grace applies.
        let p2b = sessions.refresh(&p1.refresh).await.unwrap();
        assert_eq!(p2b.session_id, p2.session_id);
        assert_eq!(p2b.refresh_jti, p2.refresh_jti, "the same successor again");
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
        let (sessions, _, id, _) = on_manual_clock(store);
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
        let (sessions, users, id, clock) = on_manual_clock(store);
        let bob = Uuid::new_v4();
        users.insert(bob, "bob".into());
        let a1 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        let a2 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        let b1 = sessions.login(&bob, &NoCustomClaims, None).await.unwrap();
        assert_eq!(sessions.revoke_all(&a1.access).await.unwrap(), 2);
        for p in [&a1, &a2] {
            assert_pair_revoked(&sessions, p).await;
        }
        sessions.check_access(&b1.access).await.unwrap();
        sessions.refresh(&b1.refresh).await.unwrap();
        // The next second: tokens of the revocation's own second are judged by
        // their session alone, and a fresh login must work.
        clock.advance(Duration::from_secs(1));
        let again = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        sessions.check_access(&again.access).await.unwrap();
        sessions.refresh(&again.refresh).await.unwrap();
    }

    /// A user deleted, or made inactive, after login: refresh is refused and the
    /// session revoked.
    pub async fn user_deleted_or_inactive(store: Arc<dyn TokenStore>) {
        let (sessions, users, id, _) = on_manual_clock(store);
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

    /// Expired tokens through [`Sessions`]: a 1-second refresh lifetime, then the
    /// clock moves past it.
    pub async fn expired_refresh_token(store: Arc<dyn TokenStore>) {
        let users = Arc::new(Users::new());
        let id = Uuid::new_v4();
        users.insert(id, "alice".into());
        let clock = Clock::manual_now();
        let jwt = Jwt::builder()
            .signing_key(Key::hmac("test", Algorithm::HS256, [42u8; 32]).unwrap())
            .refresh_ttl(Duration::from_secs(1))
            .clock(clock.clone())
            .build()
            .unwrap();
        let sessions: Sessions<Users> = Sessions::new(jwt, store, users);
        let p = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        clock.advance(Duration::from_millis(2100));
        assert_eq!(
            token_err(sessions.refresh(&p.refresh).await),
            TokenError::Expired
        );
    }

    /// A store that errors gives `StoreUnavailable` (503), never a token outcome, and
    /// is not counted as reuse: once it is back, the same token rotates.
    pub async fn store_errors_are_not_token_outcomes(store: Arc<dyn TokenStore>) {
        let failing = Arc::new(FailingStore::new(store));
        let (sessions, _, id) = sessions_on(failing.clone(), Clock::manual_now());
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

    /// The live sessions of a user, with labels; revoked ones disappear; a user
    /// can revoke only their own.
    pub async fn list_sessions(store: Arc<dyn TokenStore>) {
        let (sessions, _, id, _) = on_manual_clock(store);
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

    /// The reuse window (issue 17): a replay of a used token within the window,
    /// before its successor was used, answers that successor again (same jti,
    /// same expiry, a fresh access token); after the window it is reuse.
    pub async fn replay_within_window_gets_the_successor_again(store: Arc<dyn TokenStore>) {
        let (sessions, _, id, clock) = on_manual_clock(store);
        let sessions = sessions.with_reuse_grace(Duration::from_secs(10)).unwrap();
        let p0 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        let p1 = sessions.refresh(&p0.refresh).await.unwrap();
        clock.advance(Duration::from_secs(9));
        let again = sessions.refresh(&p0.refresh).await.unwrap();
        assert_eq!(again.refresh_jti, p1.refresh_jti, "the same successor");
        assert_eq!(again.refresh_expires_at, p1.refresh_expires_at);
        assert_eq!(again.session_id, p1.session_id);
        sessions.check_access(&again.access).await.unwrap();
        // Past the window: reuse, and the session is revoked.
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            token_err(sessions.refresh(&p0.refresh).await),
            TokenError::Reused
        );
        assert_pair_revoked(&sessions, &again).await;
    }

    /// Once the successor was used, a replay of its parent is reuse even within
    /// the window: the chain never forks.
    pub async fn replay_after_the_successor_was_used_is_reuse(store: Arc<dyn TokenStore>) {
        let (sessions, _, id, _) = on_manual_clock(store);
        let sessions = sessions.with_reuse_grace(Duration::from_secs(10)).unwrap();
        let p0 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        let p1 = sessions.refresh(&p0.refresh).await.unwrap();
        let p2 = sessions.refresh(&p1.refresh).await.unwrap();
        assert_eq!(
            token_err(sessions.refresh(&p0.refresh).await),
            TokenError::Reused
        );
        assert_pair_revoked(&sessions, &p2).await;
    }

    /// No access token outlives its session's absolute expiry, at login or
    /// after a refresh.
    pub async fn access_tokens_never_outlive_the_session(store: Arc<dyn TokenStore>) {
        let clock = Clock::manual_now();
        let jwt = Jwt::builder()
            .signing_key(Key::hmac("test", Algorithm::HS256, [42u8; 32]).expect("valid key"))
            .access_ttl(Duration::from_secs(300))
            .refresh_ttl(Duration::from_secs(300))
            .session_max_age(Duration::from_secs(100))
            .clock(clock.clone())
            .build()
            .expect("valid config");
        let users = Arc::new(Users::new());
        let id = Uuid::new_v4();
        users.insert(id, "alice".into());
        let sessions: Sessions<Users> = Sessions::new(jwt, store, users);
        let start = clock.now_secs();
        let p0 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        assert!(p0.access_expires_at <= start + 100, "{} > {}", p0.access_expires_at, start + 100);
        clock.advance(Duration::from_secs(60));
        let p1 = sessions.refresh(&p0.refresh).await.unwrap();
        assert!(p1.access_expires_at <= start + 100);
        assert!(p1.refresh_expires_at <= start + 100);
    }
}
