//! The conformance suite on a Redis Cluster (3 masters, 3 replicas, started by
//! the tests: see `common/redis_cluster.rs`), and what only a cluster does: a
//! user's keys in one slot, the purge on every master, a store built before
//! the cluster answers.
//!
//! Each case uses its own key prefix; the keys go with the test's cluster (an
//! external one, `TEST_REDIS_CLUSTER_URLS`, expires them on its own).

mod common;

use std::sync::Arc;

use tower_jwt_auth::conformance::{FreshStore, Unavailable};
use tower_jwt_auth::store::NewSession;
use tower_jwt_auth::{RedisStore, TokenStore};
use uuid::Uuid;

async fn store(prefix: &str) -> Option<RedisStore> {
    let cluster = common::redis_cluster::cluster()?;
    let store = RedisStore::builder()
        .cluster_urls(cluster.urls.clone())
        .key_prefix(prefix)
        .build()
        .await
        .expect("a store on the test cluster");
    Some(store)
}

async fn case_store() -> Result<FreshStore, Unavailable> {
    let prefix = common::unique_name("tjwt_cluster");
    match store(&prefix).await {
        Some(store) => Ok(FreshStore::new(store)),
        None => Err(Unavailable::new("Redis Cluster", "not started")),
    }
}

tower_jwt_auth::token_store_conformance!(case_store);

#[tokio::test]
async fn conformance_revocation_log() {
    let Some(store) = store(&common::unique_name("tjwt_cluster")).await else {
        return;
    };
    tower_jwt_auth::conformance::revocation_log_conformance(Arc::new(store)).await;
}

/// The slot of `key`, as the cluster computes it.
fn slot(key: &str) -> String {
    let port = common::redis_cluster::cluster().unwrap().ports()[0];
    common::redis_cluster::cli(port, &["CLUSTER", "KEYSLOT", key]).unwrap()
}

/// Every key of one user is in one slot; users spread over the slots.
#[tokio::test]
async fn a_users_keys_share_a_slot() {
    let Some(store) = store("tjwt_slots").await else {
        return;
    };
    let mut slots = std::collections::HashSet::new();
    for i in 0..50 {
        let user = format!("user-{i}");
        let one = slot(&store.user_sessions_key(&user));
        assert_eq!(slot(&store.cutoff_key(&user)), one);
        assert_eq!(slot(&store.session_key(&user, Uuid::new_v4())), one);
        slots.insert(one);
    }
    assert!(slots.len() > 40, "50 users in {} slots", slots.len());
}

/// The purge visits every master: sessions of 60 users (on all three)
/// past their expiry are all removed, with their users' sets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_reaches_every_master() {
    let Some(store) = store(&common::unique_name("tjwt_purge")).await else {
        return;
    };
    let now = 1_900_000_000;
    let mut users = Vec::new();
    for i in 0..60 {
        let user = format!("user-{i}");
        let s = NewSession::new(
            Uuid::new_v4(),
            user.clone(),
            Uuid::new_v4(),
            now,
            now + 50,
            now + 100,
        )
        .with_created_at_ms(now * 1000);
        store.create_session(&s).await.unwrap();
        users.push(user);
    }
    let masters = masters();
    let holders: std::collections::HashSet<u16> = users
        .iter()
        .filter_map(|u| holder(&masters, &store.user_sessions_key(u)))
        .collect();
    assert_eq!(holders.len(), 3, "the users' keys are on every master");
    assert_eq!(store.purge_expired(now + 100).await.unwrap(), 60);
    for user in &users {
        assert!(store.list_sessions(user, now).await.unwrap().is_empty());
        let key = store.user_sessions_key(user);
        assert_eq!(holder(&masters, &key), None, "{user}'s set is gone");
    }
}

/// The ports of the masters.
fn masters() -> Vec<u16> {
    let ports = common::redis_cluster::cluster().unwrap().ports();
    ports
        .into_iter()
        .filter(|p| {
            common::redis_cluster::cli(*p, &["ROLE"]).is_ok_and(|r| r.starts_with("master"))
        })
        .collect()
}

/// The master that holds `key`, if one does.
fn holder(masters: &[u16], key: &str) -> Option<u16> {
    masters
        .iter()
        .copied()
        .find(|p| common::redis_cluster::cli(*p, &["EXISTS", key]).is_ok_and(|n| n == "1"))
}

/// A store built lazily connects on first use.
#[tokio::test]
async fn a_lazy_store_connects_on_first_use() {
    let Some(cluster) = common::redis_cluster::cluster() else {
        return;
    };
    let store = RedisStore::builder()
        .cluster_urls(cluster.urls.clone())
        .key_prefix(common::unique_name("tjwt_lazy"))
        .build_lazy()
        .unwrap();
    assert!(store.is_cluster());
    assert!(store.connection_manager().is_none());
    assert!(store.list_sessions("nobody", 0).await.unwrap().is_empty());
    let debug = format!("{store:?}");
    assert!(debug.contains("cluster: true"), "{debug}");
}

/// Neither `Debug` nor a failed build shows a seed URL's password.
#[tokio::test]
async fn seed_passwords_stay_hidden() {
    let builder = RedisStore::builder().cluster_urls(["redis://:hunter2hunter2@127.0.0.1:1/"]);
    assert!(!format!("{builder:?}").contains("hunter2"));
    let err = builder.build().await.unwrap_err();
    assert!(!format!("{err:?} {err}").contains("hunter2"));
}
