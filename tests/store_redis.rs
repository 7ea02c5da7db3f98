//! The conformance suite on Redis, plus what only Redis does: the server going
//! away and coming back, and its script cache being flushed.
//!
//! Needs a Redis at `TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`); skipped
//! when there is none, except under CI. Each case uses its own key prefix.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::sync::Arc;
use std::time::{Duration, Instant};

use proxy::Proxy;
use tower_jwt_auth::conformance::{FreshStore, Unavailable, sessions_for, test_jwt};
use tower_jwt_auth::store::redis::redis;
use tower_jwt_auth::store::{NewSession, RotateOutcome, RotateRequest};
use tower_jwt_auth::{AuthError, NoCustomClaims, RedisStore, TokenStore};
use uuid::Uuid;

fn redis_url() -> String {
    common::service_url(common::REDIS_URL.0, common::REDIS_URL.1)
}

async fn store_at(url: &str, prefix: &str) -> Option<RedisStore> {
    match RedisStore::builder()
        .url(url)
        .key_prefix(prefix)
        .build()
        .await
    {
        Ok(s) => Some(s),
        Err(e) => common::unavailable("Redis", e),
    }
}

async fn fresh_store() -> Option<Arc<dyn TokenStore>> {
    let store = store_at(&redis_url(), &common::unique_name("tjwt_test")).await?;
    Some(Arc::new(store) as Arc<dyn TokenStore>)
}

/// A conformance case's store under its own key prefix. The cleanup deletes
/// every key under that prefix.
async fn case_store() -> Result<FreshStore, Unavailable> {
    let prefix = common::unique_name("tjwt_test");
    let store = RedisStore::builder()
        .url(redis_url())
        .key_prefix(&prefix)
        .build()
        .await
        .map_err(|e| Unavailable::new("Redis", e))?;
    let con = store.connection_manager().expect("a single-node store");
    Ok(FreshStore::new(store).with_cleanup(async move || delete_keys(con, &prefix).await))
}

/// Deletes every key under `prefix` (`SCAN` + `UNLINK`).
async fn delete_keys(mut con: redis::aio::ConnectionManager, prefix: &str) {
    let pattern = format!("{prefix}:*");
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await
            .expect("scan the case's keys");
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut con)
                .await
                .expect("delete the case's keys");
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

tower_jwt_auth::token_store_conformance!(case_store);

/// `host:port` of the test Redis, for the proxy.
fn redis_host_port() -> String {
    proxy::redis_host_port(&redis_url())
}

/// The test URL with its host and port replaced by the proxy's.
fn url_via(proxy: &Proxy) -> String {
    proxy::redis_url_via(&redis_url(), proxy)
}

/// Redis goes away mid-run (every connection cut, new ones refused): refresh and
/// the revocation check give `StoreUnavailable`, never a token outcome; once it is
/// back, the same store recovers on its own, and every rotation that answered Ok
/// is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_mid_run_then_recovers() {
    if fresh_store().await.is_none() {
        return;
    }
    let proxy = Proxy::start(redis_host_port()).await;
    let prefix = common::unique_name("tjwt_down");
    let Some(store) = store_at(&url_via(&proxy), &prefix).await else {
        return;
    };
    let named = Arc::new(store);
    let store: Arc<dyn TokenStore> = named.clone();
    let (sessions, _, id) = sessions_for(store.clone());
    // A rotation whose reply is lost in the cut did happen in Redis; the client saw
    // a 503 and retries with the same token. Without a reuse window that retry is
    // reuse (indistinguishable from theft) and ends the session; within the
    // window it gets the same successor again, which is what this test runs with.
    let sessions = sessions.with_reuse_grace(Duration::from_secs(30)).unwrap();

    // Rotations under load, while the proxy is cut and restored underneath them.
    let mut pairs = Vec::new();
    for _ in 0..8 {
        pairs.push(sessions.login(&id, &NoCustomClaims, None).await.unwrap());
    }
    let mut tasks = Vec::new();
    for pair in pairs {
        let s = sessions.clone();
        tasks.push(tokio::spawn(async move {
            // Each task keeps its chain: the last token that answered Ok, and every
            // jti that answered Ok.
            let mut current = pair;
            let mut ok = vec![current.refresh_jti];
            let mut unavailable = 0;
            for _ in 0..60 {
                match s.refresh(&current.refresh).await {
                    Ok(next) => {
                        ok.push(next.refresh_jti);
                        current = next;
                    }
                    Err(AuthError::StoreUnavailable(_)) => unavailable += 1,
                    Err(e) => panic!("an outage must never be a token outcome: {e:?}"),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (current, ok, unavailable)
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    proxy.cut();
    // While it is down, both the refresh and the revocation check are 503s.
    let probe = sessions.login(&id, &NoCustomClaims, None).await;
    assert!(
        matches!(probe, Err(AuthError::StoreUnavailable(_))),
        "{probe:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();

    let mut total_unavailable = 0;
    let mut chains = Vec::new();
    for t in tasks {
        let (last, ok, unavailable) = t.await.expect("task panicked");
        total_unavailable += unavailable;
        chains.push((last, ok));
    }
    assert!(total_unavailable > 0, "the cut was not noticed");

    // Recovered without rebuilding the store: every chain's last token rotates,
    // and its access token passes the revocation check.
    for (last, ok) in &chains {
        sessions
            .check_access(&last.access)
            .await
            .expect("recovered");
        let next = sessions
            .refresh(&last.refresh)
            .await
            .expect("the live token of each chain still rotates");
        assert_eq!(next.session_id, last.session_id);
        // Every rotation that answered Ok is recorded (the used tokens are all
        // there, and the last one was live).
        let mut con = redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let key = named.session_key(&id.to_string(), last.session_id);
        for jti in ok {
            let field = format!("t:{}", jti.as_hyphenated());
            let v: Option<String> = redis::cmd("HGET")
                .arg(&key)
                .arg(&field)
                .query_async(&mut con)
                .await
                .unwrap();
            let v = v.expect("a rotation that answered Ok is missing");
            assert!(v.contains(':'), "every Ok token is now used: {v}");
        }
    }

    // The outage itself: cut again, and check the revocation check directly.
    let live = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    proxy.cut();
    let r = sessions.check_access(&live.access).await;
    assert!(matches!(r, Err(AuthError::StoreUnavailable(_))), "{r:?}");
    let r = sessions.refresh(&live.refresh).await;
    assert!(matches!(r, Err(AuthError::StoreUnavailable(_))), "{r:?}");
    proxy.restore();
    // The manager reconnects on the next requests; give it a few tries.
    let mut recovered = None;
    for _ in 0..50 {
        match sessions.refresh(&live.refresh).await {
            Ok(p) => {
                recovered = Some(p);
                break;
            }
            Err(AuthError::StoreUnavailable(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    let next = recovered.expect("the store recovered after the restore");
    sessions.check_access(&next.access).await.unwrap();
}

/// `SCRIPT FLUSH` (what a Redis restart does to the script cache): the next
/// rotation gets `NOSCRIPT`, loads the script again, and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_flush_mid_run() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let (sessions, _, id) = sessions_for(store.clone());
    let mut pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    pair = sessions.refresh(&pair.refresh).await.unwrap();
    let mut con = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for _ in 0..3 {
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut con)
            .await
            .unwrap();
        pair = sessions
            .refresh(&pair.refresh)
            .await
            .expect("rotation reloads its script");
        sessions
            .logout(
                &sessions
                    .login(&id, &NoCustomClaims, None)
                    .await
                    .unwrap()
                    .refresh,
            )
            .await
            .unwrap();
    }
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        store
            .revoke_user(&id.to_string(), tower_jwt_auth_now() * 1000)
            .await
            .unwrap(),
        1
    );
}

fn tower_jwt_auth_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Two apps on one Redis with different prefixes see nothing of each other, and
/// keys expire with their session's absolute lifetime.
#[tokio::test]
async fn prefixes_isolate_and_keys_expire() {
    let url = redis_url();
    let (pa, pb) = (common::unique_name("tjwt_a"), common::unique_name("tjwt_b"));
    let Some(a) = store_at(&url, &pa).await else {
        return;
    };
    let Some(b) = store_at(&url, &pb).await else {
        return;
    };
    let named_a = Arc::new(a);
    let (a, b): (Arc<dyn TokenStore>, Arc<dyn TokenStore>) = (named_a.clone(), Arc::new(b));
    let (sa, _, id) = sessions_for(a.clone());
    let p = sa
        .login(&id, &NoCustomClaims, Some("a".into()))
        .await
        .unwrap();
    assert!(
        b.is_revoked(p.session_id, &id.to_string(), tower_jwt_auth_now())
            .await
            .unwrap()
    );
    assert!(
        b.list_sessions(&id.to_string(), tower_jwt_auth_now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.purge_expired(u64::MAX / 2).await.unwrap(), 0);
    assert_eq!(sa.list_sessions(&id.to_string()).await.unwrap().len(), 1);

    let mut con = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = named_a.session_key(&id.to_string(), p.session_id);
    let at: i64 = redis::cmd("EXPIRETIME")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap();
    let session_max_age = test_jwt().session_max_age().as_secs();
    let expected = p.refresh_expires_at.max(tower_jwt_auth_now()) as i64;
    assert!(at > 0, "session keys expire");
    assert!(
        at >= expected && at <= tower_jwt_auth_now() as i64 + session_max_age as i64 + 60 + 2,
        "expires with the session's absolute lifetime: {at}"
    );
    // The user's cutoff outlives the user's sessions.
    sa.revoke_user(&id).await.unwrap();
    let cut: i64 = redis::cmd("EXPIRETIME")
        .arg(named_a.cutoff_key(&id.to_string()))
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(cut >= at, "cutoff {cut} must outlive the session key {at}");
    // A foreign key that matches the purge's pattern (another prefix's, or
    // not the store's) is never purged.
    let foreign = format!("{}:x", named_a.user_sessions_key("f"));
    let _: () = redis::cmd("HSET")
        .arg(&foreign)
        .arg("exp")
        .arg(1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(a.purge_expired(u64::MAX / 2).await.unwrap(), 1);
    // Purge dropped the session from its user's set, and so the emptied set.
    let set_exists: i64 = redis::cmd("EXISTS")
        .arg(named_a.user_sessions_key(&id.to_string()))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(set_exists, 0);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&foreign)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(exists, 1);
    let _: () = redis::cmd("DEL")
        .arg(&foreign)
        .query_async(&mut con)
        .await
        .unwrap();
}

/// Neither `Debug` of the store nor its errors show the password.
#[tokio::test]
async fn debug_hides_the_password() {
    let store = RedisStore::builder()
        .url("redis://:hunter2-secret@127.0.0.1:1/")
        .build_lazy()
        .unwrap();
    assert!(!format!("{store:?}").contains("hunter2"));
    let err = RedisStore::builder()
        .url("redis://:hunter2-secret@127.0.0.1:1/")
        .build()
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
}

/// With a reuse window every one of 64 concurrent refreshes of one token
/// succeeds: one rotates, and the 63 others, whether they read before or after
/// that write, get its successor again: the optimistic retries must carry all of
/// them through, none may run out of attempts (a 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grace_race_never_runs_out_of_attempts() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let (sessions, _, id) = sessions_for(store);
    let sessions = sessions.with_reuse_grace(Duration::from_secs(30)).unwrap();
    for _ in 0..5 {
        let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let mut handles = Vec::new();
        for _ in 0..64 {
            let (s, b, t) = (sessions.clone(), barrier.clone(), pair.refresh.clone());
            handles.push(tokio::spawn(async move {
                b.wait().await;
                s.refresh(&t).await
            }));
        }
        let mut winners = Vec::new();
        for h in handles {
            match h.await.unwrap() {
                Ok(p) => winners.push(p),
                Err(e) => panic!("every refresh within the grace window wins: {e:?}"),
            }
        }
        // They all stay in the session, with one and the same successor (a
        // linear chain: no second branch).
        let mut jtis: Vec<_> = winners.iter().map(|w| w.refresh_jti).collect();
        jtis.sort();
        jtis.dedup();
        assert_eq!(jtis.len(), 1);
        assert!(winners.iter().all(|w| w.session_id == pair.session_id));
    }
}

/// A new session of `user` starting at `now_ms`, whose first token lives
/// `ttl` seconds and the session `max_age`.
fn new_session(user: &str, now_ms: u64, ttl: u64, max_age: u64) -> NewSession {
    let now = now_ms / 1000;
    NewSession::new(
        Uuid::new_v4(),
        user,
        Uuid::new_v4(),
        now,
        now + ttl,
        now + max_age,
    )
    .with_created_at_ms(now_ms)
}

/// Rotates `jti` of `s` at `now` with a reuse window of `grace` seconds.
fn rotation(s: &NewSession, jti: Uuid, now: u64, grace: u64) -> RotateRequest {
    RotateRequest::new(
        s.session_id,
        s.user_id.clone(),
        jti,
        Uuid::new_v4(),
        now,
        3600,
    )
    .with_now_ms(now * 1000)
    .with_grace(grace)
}

async fn direct_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A reply lost after the rotate script ran: the retry with the same token, in
/// the reuse window, gets the same successor, and writes nothing; after the
/// window it is reuse.
#[tokio::test]
async fn a_lost_reply_is_redelivered_without_a_write() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let now = tower_jwt_auth_now();
    let s = new_session("u-lost", now * 1000, 600, 3600);
    store.create_session(&s).await.unwrap();
    let first = rotation(&s, s.jti, now, 10);
    let RotateOutcome::Rotated { expires_at, .. } = store.rotate(&first).await.unwrap() else {
        panic!("the live token rotates");
    };
    // The answer never reached the client: it retries, with a new successor jti.
    let retry = rotation(&s, s.jti, now + 3, 10);
    let RotateOutcome::Redelivered {
        jti,
        expires_at: again,
        session_expires_at,
        ..
    } = store.rotate(&retry).await.unwrap()
    else {
        panic!("the retry within the window gets the successor again");
    };
    assert_eq!(
        (jti, again, session_expires_at),
        (first.successor_jti, expires_at, s.session_expires_at)
    );
    // Nothing was written: the successor rotates as the live token.
    let next = rotation(&s, first.successor_jti, now + 4, 10);
    assert!(matches!(
        store.rotate(&next).await.unwrap(),
        RotateOutcome::Rotated { .. }
    ));
    // Two generations back is reuse, and ends the session.
    assert_eq!(
        store
            .rotate(&rotation(&s, s.jti, now + 5, 10))
            .await
            .unwrap(),
        RotateOutcome::ReuseDetected
    );
    assert_eq!(
        store
            .rotate(&rotation(&s, next.successor_jti, now + 5, 10))
            .await
            .unwrap(),
        RotateOutcome::Revoked
    );
}

/// A login that races a revoke-all: a session created before the cutoff (to
/// the millisecond, in the same second) is recorded revoked; one created at
/// the cutoff lives. A session written before `crm` existed counts as created
/// at `cr` × 1000.
#[tokio::test]
async fn sessions_created_before_the_cutoff_are_revoked() {
    let prefix = common::unique_name("tjwt_cut");
    let Some(store) = store_at(&redis_url(), &prefix).await else {
        return;
    };
    let user = format!("u-{}", Uuid::new_v4());
    let at = (tower_jwt_auth_now() * 1000) + 500;
    assert_eq!(store.revoke_user(&user, at).await.unwrap(), 0);
    let raced = new_session(&user, at - 1, 600, 3600);
    let after = new_session(&user, at, 600, 3600);
    store.create_session(&raced).await.unwrap();
    store.create_session(&after).await.unwrap();
    let iat = at / 1000;
    assert!(
        store
            .is_revoked(raced.session_id, &user, iat)
            .await
            .unwrap()
    );
    assert!(
        !store
            .is_revoked(after.session_id, &user, iat)
            .await
            .unwrap()
    );
    let now = at / 1000;
    assert_eq!(
        store
            .rotate(&rotation(&raced, raced.jti, now, 10))
            .await
            .unwrap(),
        RotateOutcome::Revoked
    );
    assert!(matches!(
        store
            .rotate(&rotation(&after, after.jti, now, 10))
            .await
            .unwrap(),
        RotateOutcome::Rotated { .. }
    ));
    let listed = store.list_sessions(&user, now).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].session_id, after.session_id);

    // An older record, without `crm`: created at `cr` seconds, so a cutoff
    // later in that second covers it.
    let old = new_session(&user, (now + 2) * 1000 + 900, 600, 3600);
    store.create_session(&old).await.unwrap();
    let mut con = direct_connection().await;
    let key = store.session_key(&user, old.session_id);
    let _: i64 = redis::cmd("HDEL")
        .arg(&key)
        .arg("crm")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(store.cutoff_key(&user))
        .arg((now + 2) * 1000 + 1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        store
            .is_revoked(old.session_id, &user, now + 3)
            .await
            .unwrap()
    );
}

/// The purge drops a cutoff once no stored session falls under it, and only then.
#[tokio::test]
async fn purge_drops_cutoffs_no_session_falls_under() {
    let prefix = common::unique_name("tjwt_pcut");
    let Some(store) = store_at(&redis_url(), &prefix).await else {
        return;
    };
    let (with, without) = (
        format!("u-{}", Uuid::new_v4()),
        format!("u-{}", Uuid::new_v4()),
    );
    let now = tower_jwt_auth_now();
    let s = new_session(&with, now * 1000, 100, 200);
    store.create_session(&s).await.unwrap();
    assert_eq!(store.revoke_user(&with, now * 1000 + 1).await.unwrap(), 1);
    assert_eq!(store.revoke_user(&without, now * 1000).await.unwrap(), 0);
    let con = direct_connection().await;
    let exists = |user: String| {
        let mut con = con.clone();
        let key = store.cutoff_key(&user);
        async move {
            let n: i64 = redis::cmd("EXISTS")
                .arg(key)
                .query_async(&mut con)
                .await
                .unwrap();
            n == 1
        }
    };
    store.purge_expired(now).await.unwrap();
    assert!(exists(with.clone()).await, "a session falls under it");
    assert!(!exists(without.clone()).await, "no session falls under it");
    // Once the session is purged, its user's cutoff goes too.
    assert_eq!(store.purge_expired(now + 200).await.unwrap(), 1);
    assert!(!exists(with.clone()).await);
}

/// A connection manager the caller built without any timeout, to a server that
/// accepts and never answers: every call still fails within the store's
/// response timeout, as a store error.
#[tokio::test]
async fn the_response_timeout_bounds_a_callers_connection_manager() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(None);
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let manager = redis::aio::ConnectionManager::new_lazy_with_config(client, config).unwrap();
    let store = RedisStore::builder()
        .connection_manager(manager)
        .response_timeout(Duration::from_millis(300))
        .build_lazy()
        .unwrap();
    let now = tower_jwt_auth_now();
    let s = new_session("u-silent", now * 1000, 100, 200);
    let started = std::time::Instant::now();
    assert!(store.create_session(&s).await.is_err());
    assert!(store.rotate(&rotation(&s, s.jti, now, 10)).await.is_err());
    assert!(
        store
            .is_revoked(s.session_id, "u-silent", now)
            .await
            .is_err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        RedisStore::builder()
            .url(redis_url())
            .response_timeout(Duration::ZERO)
            .build_lazy()
            .is_err()
    );
}

/// How long one purge script call keeps Redis busy with a session of 10,000
/// used tokens: measured with `SLOWLOG` (this prefix's script calls, when the
/// Redis logs them: run it against one with `slowlog-log-slower-than 100`, as
/// docs/redis.md shows), and, always, as the longest answer to a `PING` sent
/// every millisecond meanwhile.
/// The purge must keep the session (used tokens stay until it expires), then
/// remove all of it at its expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_is_bounded_per_script_call() {
    const USED: usize = 10_000;
    let prefix = common::unique_name("tjwt_big");
    let Some(store) = store_at(&redis_url(), &prefix).await else {
        return;
    };
    let now = tower_jwt_auth_now();
    let s = new_session("u-big", now * 1000, 3600, 7200);
    store.create_session(&s).await.unwrap();
    let mut live = s.jti;
    for _ in 0..USED {
        let r = rotation(&s, live, now, 0);
        assert!(matches!(
            store.rotate(&r).await.unwrap(),
            RotateOutcome::Rotated { .. }
        ));
        live = r.successor_jti;
    }
    let mut con = direct_connection().await;
    let last_id: Vec<(u64,)> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(1)
        .query_async::<Vec<redis::Value>>(&mut con)
        .await
        .map(|v| slowlog_ids(&v))
        .unwrap_or_default();
    let baseline = last_id.first().map_or(0, |(id,)| *id);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = {
        let (mut con, stop) = (con.clone(), stop.clone());
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let t = std::time::Instant::now();
                let _: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
                worst = worst.max(t.elapsed());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            worst
        })
    };
    let started = std::time::Instant::now();
    assert_eq!(
        store.purge_expired(now).await.unwrap(),
        0,
        "used tokens stay"
    );
    let keep = started.elapsed();
    assert_eq!(
        store.rotate(&rotation(&s, s.jti, now, 0)).await.unwrap(),
        RotateOutcome::ReuseDetected,
        "the first token is still known as used"
    );
    let started = std::time::Instant::now();
    assert_eq!(
        store.purge_expired(s.session_expires_at).await.unwrap(),
        USED as u64 + 1
    );
    let drop = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let worst_ping = probe.await.unwrap();

    let logged: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(1_000)
        .query_async(&mut con)
        .await
        .unwrap();
    let calls = slowlog_script_calls(&logged, baseline, &prefix);
    let threshold: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("slowlog-log-slower-than")
        .query_async(&mut con)
        .await
        .unwrap_or_default();
    println!(
        "purge of a session with {USED} used tokens: keeping it took {keep:?}, deleting it \
         {drop:?}; script calls in SLOWLOG: {} logged, median {} µs, longest {} µs \
         (slowlog-log-slower-than {}); longest PING meanwhile: {worst_ping:?}",
        calls.len(),
        calls.get(calls.len() / 2).copied().unwrap_or(0),
        calls.last().copied().unwrap_or(0),
        threshold.get(1).map_or("?", String::as_str),
    );
    assert!(worst_ping < Duration::from_millis(250), "{worst_ping:?}");
}

/// The ids of `SLOWLOG GET` entries.
fn slowlog_ids(entries: &[redis::Value]) -> Vec<(u64,)> {
    entries
        .iter()
        .filter_map(|e| match e {
            redis::Value::Array(fields) => match fields.first() {
                Some(redis::Value::Int(id)) => Some((*id as u64,)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The durations (µs, sorted) of the `SLOWLOG GET` entries after `baseline`
/// that are script calls naming a key under `prefix`.
fn slowlog_script_calls(entries: &[redis::Value], baseline: u64, prefix: &str) -> Vec<u64> {
    let mut calls: Vec<u64> = entries
        .iter()
        .filter_map(|e| {
            let redis::Value::Array(fields) = e else {
                return None;
            };
            let (
                Some(redis::Value::Int(id)),
                Some(redis::Value::Int(us)),
                Some(redis::Value::Array(args)),
            ) = (fields.first(), fields.get(2), fields.get(3))
            else {
                return None;
            };
            let ours = args.iter().any(|a| {
                matches!(a, redis::Value::BulkString(b) if String::from_utf8_lossy(b).starts_with(prefix))
            });
            let script = matches!(args.first(), Some(redis::Value::BulkString(b)) if b.eq_ignore_ascii_case(b"evalsha") || b.eq_ignore_ascii_case(b"eval"));
            (*id as u64 > baseline && ours && script).then_some(*us as u64)
        })
        .collect();
    calls.sort_unstable();
    calls
}

#[tokio::test]
async fn conformance_revocation_log() {
    let prefix = common::unique_name("tjwt_test");
    let Some(store) = store_at(&redis_url(), &prefix).await else {
        return;
    };
    let con = store.connection_manager().expect("a single-node store");
    tower_jwt_auth::conformance::revocation_log_conformance(std::sync::Arc::new(store)).await;
    delete_keys(con, &prefix).await;
}

/// The store's connection frozen by the proxy (open, silent for good: a flow a
/// firewall or NAT dropped without a word, which TCP does not notice for
/// hours): requests answer 503 within the response timeout, the store replaces
/// the connection by itself, and requests succeed again within seconds, with
/// every session still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_dropped_without_a_word_is_replaced() {
    if fresh_store().await.is_none() {
        return;
    }
    let proxy = Proxy::start(redis_host_port()).await;
    let store = RedisStore::builder()
        .url(url_via(&proxy))
        .key_prefix(common::unique_name("tjwt_frozen"))
        .response_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(store);
    let (sessions, _, id) = sessions_for(store.clone());
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let user = id.to_string();
    assert!(!store.is_revoked(pair.session_id, &user, 0).await.unwrap());

    proxy.freeze();
    let start = Instant::now();
    let mut unavailable = 0;
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "still failing after 15 s ({unavailable} answers 503)"
        );
        match store.is_revoked(pair.session_id, &user, 0).await {
            Ok(revoked) => {
                assert!(!revoked, "the session survived");
                break;
            }
            Err(_) => unavailable += 1,
        }
    }
    eprintln!(
        "back {:?} after the freeze, {unavailable} answers 503 meanwhile",
        start.elapsed()
    );
    let next = sessions.refresh(&pair.refresh).await.unwrap();
    assert_ne!(next.refresh, pair.refresh);
}
