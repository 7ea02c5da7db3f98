//! The revocation view on the Redis store's log (a stream): two instances
//! (each its own connection), 100 logouts on A refused by B's view at once
//! (a blocking read on a connection of the view's own: p99 under 100 ms with a
//! 1 s poll), a revoke-all, a restart that loads the log, and the purge that
//! drops expired entries but never the newest. The same on a Redis Cluster
//! (the log is one key, so one slot; the view reads it on a cluster connection
//! of its own). And the view's connection cut by the tests' TCP proxy: past
//! the bound the layer answers 503 or asks the store, never a stale accept, and
//! the view catches up by itself.

mod common;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/view_cut.rs"]
mod view_cut;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_jwt_auth::conformance::sessions_for;
use tower_jwt_auth::{
    NoCustomClaims, RedisStore, RevocationLog, RevocationView, TokenStore, ViewAnswer,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pushes_logouts_to_other_instances() {
    let url = common::service_url(common::REDIS_URL.0, common::REDIS_URL.1);
    let prefix = common::unique_name("view");
    let store = || {
        RedisStore::builder()
            .url(url.clone())
            .key_prefix(prefix.clone())
            .build()
    };
    match (store().await, store().await) {
        (Ok(a), Ok(b)) => pushes_logouts("Redis", Arc::new(a), Arc::new(b)).await,
        (Err(e), _) | (_, Err(e)) => common::unavailable("Redis", e).unwrap_or(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_pushes_logouts_to_other_instances() {
    let Some(cluster) = common::redis_cluster::cluster() else {
        return;
    };
    let prefix = common::unique_name("view");
    let store = || {
        RedisStore::builder()
            .cluster_urls(cluster.urls.clone())
            .key_prefix(prefix.clone())
            .build()
    };
    let (a, b) = (store().await.unwrap(), store().await.unwrap());
    assert!(a.is_cluster());
    pushes_logouts("Redis Cluster", Arc::new(a), Arc::new(b)).await;
}

/// A Redis store reached directly and one under the same prefix reached
/// through a new proxy (1 s response timeout); `None` (skipped) when Redis is
/// away.
async fn redis_behind_proxy(
    name: &str,
) -> Option<(Arc<RedisStore>, Arc<RedisStore>, proxy::Proxy)> {
    let url = common::service_url(common::REDIS_URL.0, common::REDIS_URL.1);
    let prefix = common::unique_name(name);
    let direct = match RedisStore::builder()
        .url(url.clone())
        .key_prefix(prefix.clone())
        .build()
        .await
    {
        Ok(store) => store,
        Err(e) => return common::unavailable("Redis", e),
    };
    let proxy = proxy::Proxy::start(proxy::redis_host_port(&url)).await;
    let via_proxy = RedisStore::builder()
        .url(proxy::redis_url_via(&url, &proxy))
        .key_prefix(prefix)
        .response_timeout(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    Some((Arc::new(direct), Arc::new(via_proxy), proxy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_view_cut_off_by_the_proxy_never_accepts_stale_and_catches_up() {
    if let Some((direct, via_proxy, proxy)) = redis_behind_proxy("viewcut").await {
        view_cut::never_stale_and_catches_up(direct, via_proxy, &proxy).await;
    }
}

/// The view's connection frozen by the proxy (open, silent for good): its
/// blocking read times out, the connection is replaced, and logouts are pushed
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_hung_feed_is_replaced() {
    if let Some((direct, via_proxy, proxy)) = redis_behind_proxy("viewhung").await {
        view_cut::hung_feed_is_replaced(direct, via_proxy, &proxy).await;
    }
}

/// 100 logouts on `a` seen by a view on `b`, a revoke-all, a restart, the purge.
async fn pushes_logouts(what: &str, a: Arc<RedisStore>, b: Arc<RedisStore>) {
    let (sessions, _, id) = sessions_for(a.clone());
    let view = RevocationView::builder(b.clone())
        .poll_interval(Duration::from_secs(1))
        .start();
    view.ready(Duration::from_secs(5)).await.unwrap();
    let mut times = Vec::new();
    for _ in 0..100 {
        let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        assert_eq!(
            view.check(pair.session_id, &id.to_string(), 0),
            ViewAnswer::NotRevoked
        );
        sessions.logout(&pair.refresh).await.unwrap();
        let start = Instant::now();
        while view.check(pair.session_id, &id.to_string(), 0) != ViewAnswer::Revoked {
            assert!(start.elapsed() < Duration::from_secs(5), "not propagated");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(start.elapsed());
    }
    times.sort();
    eprintln!(
        "{what}: propagation of 100 logouts: median {:?}, p99 {:?}, max {:?} (poll interval 1 s)",
        times[50], times[98], times[99]
    );
    assert!(
        times[98] < Duration::from_millis(100),
        "p99 {:?}",
        times[98]
    );

    // A revoke-all on A.
    let older = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    sessions.revoke_user(&id).await.unwrap();
    let start = Instant::now();
    while view.check(older.session_id, &id.to_string(), 0) != ViewAnswer::Revoked {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "revoke-all not propagated"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    // A restarted instance loads it all.
    let restarted = RevocationView::builder(b.clone()).start();
    restarted.ready(Duration::from_secs(5)).await.unwrap();
    assert!(restarted.revoked_sessions() >= 100);
    assert_eq!(restarted.users_with_cutoff(), 1);

    // Past every expiry, the purge empties the log but for its newest entry.
    let far = sessions.jwt().clock().now_secs() + 400 * 86_400;
    a.purge_expired(far).await.unwrap();
    let left = b.revocations_after(0, 1000).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
}
