//! The conformance suite on Redis, plus what only Redis does: the server going
//! away and coming back, and its script cache being flushed.
//!
//! Needs a Redis at `TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`); skipped
//! when there is none, except under CI. Each case uses its own key prefix.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::sync::Arc;
use std::time::Duration;

use proxy::Proxy;
use tower_jwt_auth::conformance::{FreshStore, Unavailable, sessions_for, test_jwt};
use tower_jwt_auth::store::redis::redis;
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
    let con = store.connection_manager();
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
    let url = redis_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:6379")
    }
}

/// The test URL with its host and port replaced by the proxy's.
fn url_via(proxy: &Proxy) -> String {
    redis_url().replacen(&redis_host_port(), &proxy.addr().to_string(), 1)
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
    let store: Arc<dyn TokenStore> = Arc::new(store);
    let (sessions, _, id) = sessions_for(store.clone());
    // A rotation whose reply is lost in the cut did happen in Redis; the client saw
    // a 503 and retries with the same token. Without a grace window that retry is
    // reuse (indistinguishable from theft) and ends the session; a short window is
    // the documented remedy, and what this test runs with.
    let sessions = sessions.with_reuse_grace(Duration::from_secs(30));

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
        let key = format!("{prefix}:s:{}", last.session_id.as_hyphenated());
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
            .revoke_user(&id.to_string(), tower_jwt_auth_now())
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
    let (a, b): (Arc<dyn TokenStore>, Arc<dyn TokenStore>) = (Arc::new(a), Arc::new(b));
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
    let key = format!("{pa}:s:{}", p.session_id.as_hyphenated());
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
        .arg(format!("{pa}:cut:{id}"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(cut >= at, "cutoff {cut} must outlive the session key {at}");
    // A foreign key under a longer prefix is never purged by the shorter one.
    let foreign = format!("{pa}:s:{}:x", Uuid::new_v4());
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
        .arg(format!("{pa}:u:{id}"))
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

/// With a grace window every one of 64 concurrent refreshes of one token is a
/// winner, each a separate write to the same session: the optimistic retries must
/// carry all of them through, none may run out of attempts (a 503).
/// (The default bound, 32, is below 64: conflicting writers spread out, so a task
/// rarely loses more than a few rounds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grace_race_never_runs_out_of_attempts() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let (sessions, _, id) = sessions_for(store);
    let sessions = sessions.with_reuse_grace(Duration::from_secs(30));
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
        // They all stay in the session, each its own token.
        let mut jtis: Vec<_> = winners.iter().map(|w| w.refresh_jti).collect();
        jtis.sort();
        jtis.dedup();
        assert_eq!(jtis.len(), 64);
        assert!(winners.iter().all(|w| w.session_id == pair.session_id));
    }
}
