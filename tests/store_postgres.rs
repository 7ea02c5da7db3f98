//! PgStore: the conformance suite (a fresh table prefix per case, pools of 8
//! connections), migrations, the schema's guarantees, the database going away
//! mid-run (through a TCP proxy), and (ignored, run by hand) purging 1,000,000
//! expired rows.
//!
//! PostgreSQL at `TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/test);
//! skipped when unreachable, except under `CI`.

mod common;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/store_checks.rs"]
mod store_checks;

use store_checks::{now, outage, purge_while_rotating, session};

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tower_jwt_auth::conformance::{FreshStore, Unavailable};
use tower_jwt_auth::store::sql::SqlStoreOptions;
use tower_jwt_auth::{PgStore, TokenStore};
use uuid::Uuid;

fn url() -> String {
    common::service_url(common::POSTGRES_URL.0, common::POSTGRES_URL.1)
}

/// A pool of `max` connections to the test database.
async fn connect(max: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url())
        .await
}

async fn pool(max: u32) -> Option<PgPool> {
    match connect(max).await {
        Ok(p) => Some(p),
        Err(e) => common::unavailable("PostgreSQL", e),
    }
}

/// A store on `pool` with its own table prefix, migrated.
async fn prefixed_store(pool: PgPool) -> PgStore {
    let prefix = format!("{}_", common::unique_name("t"));
    let store = PgStore::with_options(pool, SqlStoreOptions::new().table_prefix(prefix))
        .expect("valid prefix");
    store.migrate().await.expect("migrate");
    store
}

/// A store with its own table prefix, migrated, on a pool of 8 connections.
async fn fresh_store() -> Option<PgStore> {
    Some(prefixed_store(pool(8).await?).await)
}

/// A conformance case's store: its own table prefix on its own pool of 8
/// connections. Between cases the suite empties
/// the tables (reset); the cleanup drops them and closes the pool.
///
/// Its connections commit without waiting for the WAL flush
/// (`synchronous_commit=off`): what a commit makes visible, and when, is the
/// same; only a server crash could lose the last commits, which no case
/// checks, and the suite runs several times faster.
async fn case_store() -> Result<FreshStore, Unavailable> {
    let options = PgConnectOptions::from_str(&url())
        .expect("a valid TEST_POSTGRES_URL")
        .options([("synchronous_commit", "off")]);
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| Unavailable::new("PostgreSQL", e))?;
    let store = prefixed_store(pool.clone()).await;
    let t = store.table_names().clone();
    // Reset: every row goes (tokens first: they reference sessions); the
    // tables stay for the next case.
    let empty = format!(
        "DELETE FROM \"{}\"; DELETE FROM \"{}\"; DELETE FROM \"{}\"",
        t.refresh_tokens, t.sessions, t.user_cutoffs
    );
    let reset_pool = pool.clone();
    let reset = move || {
        let (pool, empty) = (reset_pool.clone(), empty.clone());
        async move {
            sqlx::raw_sql(sqlx::AssertSqlSafe(empty))
                .execute(&pool)
                .await
                .expect("empty the case's tables");
        }
    };
    Ok(FreshStore::new(store)
        .with_reset(reset)
        .with_cleanup(async move || {
            // Tokens first: they reference sessions.
            let drop = format!(
                "DROP TABLE IF EXISTS \"{}\", \"{}\", \"{}\", \"{}\"",
                t.refresh_tokens, t.sessions, t.user_cutoffs, t.schema_versions
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                .execute(&pool)
                .await
                .expect("drop the case's tables");
            pool.close().await;
        }))
}

tower_jwt_auth::token_store_conformance!(case_store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_under_concurrency() {
    let Some(pool) = pool(8).await else { return };
    let prefix = format!("{}_", common::unique_name("m"));
    let stores: Vec<Arc<PgStore>> = (0..4)
        .map(|_| {
            Arc::new(
                PgStore::with_options(
                    pool.clone(),
                    SqlStoreOptions::new().table_prefix(prefix.clone()),
                )
                .unwrap(),
            )
        })
        .collect();
    let handles: Vec<_> = stores
        .iter()
        .cloned()
        .map(|s| tokio::spawn(async move { s.migrate().await }))
        .collect();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    stores[0].migrate().await.unwrap();
    let versions: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{prefix}schema_versions\""
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(versions, [1, 2, 3]);
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename LIKE $1")
        .bind(format!("{prefix}%"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tables, 5);
}

#[tokio::test]
async fn schema_keeps_one_live_token_per_session() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let t = store.table_names().refresh_tokens.clone();
    let s = session("u", now());
    store.create_session(&s).await.unwrap();
    let fork = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{t}\" (jti, session_id, issued_at, expires_at) VALUES ($1, $2, 1, 2)"
    )))
    .bind(Uuid::new_v4())
    .bind(s.session_id)
    .execute(store.pool())
    .await;
    assert!(fork.is_err_and(|e| {
        e.as_database_error()
            .is_some_and(|d| d.is_unique_violation())
    }));
    // The lookups use indexes: the rotation's and revoke-all's statements.
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN SELECT used_at FROM \"{t}\" WHERE jti = '{}' AND session_id = '{}'",
        s.jti, s.session_id
    )))
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(plan.iter().any(|l| l.contains("Index")), "{plan:?}");
}

/// The database goes away mid-run (every connection cut, new ones refused) while
/// 8 clients rotate: refresh and the revocation check answer 503 while it is
/// away, the same store recovers when it is back, and every rotation that
/// answered success is in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_down_mid_run() {
    let Some(direct) = fresh_store().await else {
        return;
    };
    let options = PgConnectOptions::from_str(&url()).unwrap();
    let proxy = proxy::Proxy::start(format!("{}:{}", options.get_host(), options.get_port())).await;
    let proxied_pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(1))
        .connect_with(options.host("127.0.0.1").port(proxy.addr().port()))
        .await
        .unwrap();
    let prefix = direct
        .table_names()
        .sessions
        .trim_end_matches("sessions")
        .to_owned();
    let store = Arc::new(
        PgStore::with_options(
            proxied_pool,
            SqlStoreOptions::new()
                .table_prefix(prefix)
                .operation_timeout(Duration::from_secs(2)),
        )
        .unwrap(),
    );
    let tokens = direct.table_names().refresh_tokens.clone();
    let direct_pool = direct.pool().clone();
    let exists = move |jti: Uuid| {
        let (pool, tokens) = (direct_pool.clone(), tokens.clone());
        async move {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM \"{tokens}\" WHERE jti = $1"
            )))
            .bind(jti)
            .fetch_one(&pool)
            .await
            .unwrap();
            n == 1
        }
    };
    outage(store, &proxy, exists).await;
}

/// The purge batch size to measure: `PURGE_BATCH`, or the default.
fn purge_batch() -> u32 {
    std::env::var("PURGE_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| SqlStoreOptions::new().get_purge_batch_size())
}

/// Purging 1,000,000 expired rows (`PURGE_BATCH` rows a batch): run by hand with
/// `cargo test --release --test store_postgres -- --ignored --nocapture purge_one_million`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: a measurement, run by hand"]
async fn purge_one_million_expired_rows() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let prefix = store
        .table_names()
        .sessions
        .trim_end_matches("sessions")
        .to_owned();
    let options = SqlStoreOptions::new()
        .table_prefix(prefix)
        .purge_batch_size(purge_batch());
    let store = Arc::new(PgStore::with_options(store.pool().clone(), options).unwrap());
    let (s, t) = (
        store.table_names().sessions.clone(),
        store.table_names().refresh_tokens.clone(),
    );
    let started = Instant::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{s}\" (session_id, user_id, created_at, last_rotated_at, expires_at, live_jti) \
         SELECT gen_random_uuid(), 'user-' || (i % 1000), 1, 1, 2, gen_random_uuid() FROM generate_series(1, 1000000) i;
         INSERT INTO \"{t}\" (jti, session_id, issued_at, expires_at) SELECT live_jti, session_id, 1, 2 FROM \"{s}\";
         ANALYZE \"{s}\"; ANALYZE \"{t}\";"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    eprintln!(
        "inserted 1,000,000 expired sessions and tokens in {:?}",
        started.elapsed()
    );
    let (max_pause, removed, took) = purge_while_rotating(store.clone(), now()).await;
    assert_eq!(removed, 1_000_000);
    eprintln!(
        "PostgreSQL: purged {removed} expired token rows (and their sessions) in {took:?}, batches of {}; \
         slowest concurrent rotation {max_pause:?}",
        purge_batch()
    );
}

/// A store that opens its own pool asks the server to probe idle connections
/// (TCP keepalive every 30 s, then 10 s, 3 times), so a vanished client's
/// backend ends in about a minute; the URL's own `options` win.
#[tokio::test]
async fn own_pool_has_server_side_keepalive() {
    if pool(1).await.is_none() {
        return;
    }
    let show = async |store: &PgStore| -> Vec<String> {
        let mut values = Vec::new();
        for name in ["idle", "interval", "count"] {
            let v: String =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW tcp_keepalives_{name}")))
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
            values.push(v);
        }
        values
    };
    let store = PgStore::connect(&url()).await.unwrap();
    assert_eq!(show(&store).await, ["30", "10", "3"]);
    let sep = if url().contains('?') { '&' } else { '?' };
    let own = format!("{}{sep}options=-c%20tcp_keepalives_idle%3D45", url());
    let store = PgStore::connect(&own).await.unwrap();
    assert_eq!(show(&store).await, ["45", "10", "3"]);
}

#[tokio::test]
async fn conformance_revocation_log() {
    let Some(store) = fresh_store().await else {
        return;
    };
    tower_jwt_auth::conformance::revocation_log_conformance(std::sync::Arc::new(store)).await;
}
