//! SqliteStore: the conformance suite on a file database and on a shared in-memory
//! database (pools of 8 connections), the schema's guarantees, migrations, a
//! closed pool, and (ignored, run by hand) purging 1,000,000 expired rows.

mod common;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/store_checks.rs"]
mod store_checks;

use store_checks::{now, purge_while_rotating, session};

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tower_jwt_auth::conformance::{FreshStore, Unavailable, sessions_for};
use tower_jwt_auth::store::sql::SqlStoreOptions;
use tower_jwt_auth::store::{RotateOutcome, RotateRequest};
use tower_jwt_auth::{AuthError, NoCustomClaims, SqliteStore, TokenStore};
use uuid::Uuid;

/// A database file no other test uses, under the target directory.
fn new_db_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}.db", common::unique_name("store")))
}

/// A fresh database file at `path`, migrated.
async fn file_store_at(path: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open SQLite file");
    store.migrate().await.expect("migrate");
    store
}

/// A fresh database file under the target directory, migrated.
async fn file_store() -> SqliteStore {
    file_store_at(&new_db_path()).await
}

/// A fresh named in-memory database, shared by the pool's 8 connections, migrated.
async fn memory_store() -> SqliteStore {
    let url = format!(
        "sqlite:file:{}?mode=memory&cache=shared",
        common::unique_name("mem")
    );
    let store = SqliteStore::connect(&url)
        .await
        .expect("open SQLite memory");
    assert_eq!(store.pool().options().get_max_connections(), 8);
    store.migrate().await.expect("migrate");
    store
}

/// A conformance case's store on its own database file; the cleanup closes the
/// pool and deletes the file (with its WAL and shared-memory files).
async fn conformance_file_store() -> Result<FreshStore, Unavailable> {
    let path = new_db_path();
    let store = file_store_at(&path).await;
    let pool = store.pool().clone();
    Ok(FreshStore::new(store).with_cleanup(async move || {
        pool.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }))
}

/// A conformance case's store on its own in-memory database, which goes with
/// its last connection: the cleanup closes the pool.
async fn conformance_memory_store() -> Result<FreshStore, Unavailable> {
    let store = memory_store().await;
    let pool = store.pool().clone();
    Ok(FreshStore::new(store).with_cleanup(async move || pool.close().await))
}

mod file {
    tower_jwt_auth::token_store_conformance!(super::conformance_file_store);
}

mod memory {
    tower_jwt_auth::token_store_conformance!(super::conformance_memory_store);
}

#[tokio::test]
async fn migrate_is_idempotent_and_prefixed() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}.db", common::unique_name("mig")));
    let url = format!("sqlite://{}", path.display());
    let a = SqliteStore::connect_with(&url, SqlStoreOptions::new().table_prefix("app_auth_"))
        .await
        .unwrap();
    let b = SqliteStore::connect_with(&url, SqlStoreOptions::new().table_prefix("app_auth_"))
        .await
        .unwrap();
    // Two instances at once, then again.
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    a.migrate().await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(a.pool())
            .await
            .unwrap();
    assert_eq!(
        tables,
        [
            "app_auth_refresh_tokens",
            "app_auth_revocations",
            "app_auth_schema_versions",
            "app_auth_sessions",
            "app_auth_user_cutoffs",
            // AUTOINCREMENT's own table (the revocation log's sequence)
            "sqlite_sequence",
        ]
    );
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM app_auth_schema_versions")
        .fetch_all(a.pool())
        .await
        .unwrap();
    assert_eq!(versions, [1, 2, 3]);
    // An app table of the same database is untouched, and a second prefix lives beside.
    let c = SqliteStore::with_options(
        a.pool().clone(),
        SqlStoreOptions::new().table_prefix("other_"),
    )
    .unwrap();
    c.migrate().await.unwrap();
    let now = 1_000_000;
    c.create_session(&session("u", now)).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app_auth_sessions")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn table_prefix_is_validated() {
    let pool = SqlitePoolOptions::new()
        .connect_lazy("sqlite::memory:")
        .unwrap();
    for bad in [
        "a-b",
        "x; DROP TABLE users; --",
        "1abc",
        "tab\"le",
        &"p".repeat(49),
    ] {
        assert!(
            SqliteStore::with_options(pool.clone(), SqlStoreOptions::new().table_prefix(bad))
                .is_err(),
            "{bad:?} accepted"
        );
    }
    assert!(
        SqliteStore::with_options(pool.clone(), SqlStoreOptions::new().table_prefix("")).is_ok()
    );
    assert!(
        SqliteStore::with_options(pool.clone(), SqlStoreOptions::new().purge_batch_size(0))
            .is_err()
    );
    assert!(
        SqliteStore::with_options(
            pool,
            SqlStoreOptions::new().operation_timeout(Duration::ZERO)
        )
        .is_err()
    );
}

#[tokio::test]
async fn schema_keeps_one_live_token_per_session_and_no_token_text() {
    let store = file_store().await;
    let now = 1_000_000;
    let s = session("u", now);
    store.create_session(&s).await.unwrap();
    // A second unused token in the same session is refused by the schema itself.
    let fork = sqlx::query(
        "INSERT INTO jwt_auth_refresh_tokens (jti, session_id, issued_at, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(Uuid::new_v4())
    .bind(s.session_id)
    .bind(now as i64)
    .bind(now as i64 + 100)
    .execute(store.pool())
    .await;
    assert!(fork.is_err_and(|e| {
        e.as_database_error()
            .is_some_and(|d| d.is_unique_violation())
    }));
    // After a rotation: one used row, one live row.
    let r =
        RotateRequest::new(s.session_id, "u", s.jti, Uuid::new_v4(), now + 1, 100).with_grace(0);
    assert!(matches!(
        store.rotate(&r).await.unwrap(),
        RotateOutcome::Rotated { .. }
    ));
    let live: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jwt_auth_refresh_tokens WHERE used_at IS NULL")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(live, 1);
    // The used row names its successor.
    let successor: Option<Uuid> =
        sqlx::query_scalar("SELECT successor_jti FROM jwt_auth_refresh_tokens WHERE jti = ?")
            .bind(s.jti)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(successor, Some(r.successor_jti));
    // No column can hold a token: only ids, the user id value, times and the label.
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM pragma_table_info('jwt_auth_refresh_tokens') UNION ALL \
         SELECT name FROM pragma_table_info('jwt_auth_sessions')",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(
        columns
            .iter()
            .all(|c| !c.contains("token") && c != "refresh" && c != "access"),
        "{columns:?}"
    );
}

#[tokio::test]
async fn closed_pool_is_unavailable_not_invalid() {
    let store = Arc::new(file_store().await);
    let (sessions, _, id) = sessions_for(store.clone());
    let p = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    store.pool().close().await;
    let refresh = sessions.refresh(&p.refresh).await;
    assert!(
        matches!(refresh, Err(AuthError::StoreUnavailable(_))),
        "{refresh:?}"
    );
    let check = sessions.check_access(&p.access).await;
    assert!(
        matches!(check, Err(AuthError::StoreUnavailable(_))),
        "{check:?}"
    );
    assert_eq!(
        check.unwrap_err().status(),
        http::StatusCode::SERVICE_UNAVAILABLE
    );
}

/// The purge batch size to measure: `PURGE_BATCH`, or the default.
fn purge_batch() -> u32 {
    std::env::var("PURGE_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| SqlStoreOptions::new().get_purge_batch_size())
}

/// Purging 1,000,000 expired rows (`PURGE_BATCH` rows a batch): run by hand with
/// `cargo test --release --test store_sqlite -- --ignored --nocapture purge_one_million`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: a measurement, run by hand"]
async fn purge_one_million_expired_rows() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}.db", common::unique_name("purge")));
    let connect = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap();
    let options = SqlStoreOptions::new().purge_batch_size(purge_batch());
    let store = Arc::new(SqliteStore::with_options(pool.clone(), options).unwrap());
    store.migrate().await.unwrap();
    let now = now();
    // 1,000,000 expired sessions with one token each, inserted in one statement each.
    let t = Instant::now();
    sqlx::raw_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) \
         INSERT INTO jwt_auth_sessions (session_id, user_id, created_at, last_rotated_at, expires_at, live_jti) \
         SELECT randomblob(16), 'user-' || (i % 1000), 1, 1, 2, randomblob(16) FROM n",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::raw_sql(
        "INSERT INTO jwt_auth_refresh_tokens (jti, session_id, issued_at, expires_at) \
         SELECT live_jti, session_id, 1, 2 FROM jwt_auth_sessions",
    )
    .execute(&pool)
    .await
    .unwrap();
    eprintln!(
        "inserted 1,000,000 expired sessions and tokens in {:?}",
        t.elapsed()
    );
    let (max_pause, removed, took) = purge_while_rotating(store.clone(), now).await;
    assert_eq!(removed, 1_000_000);
    eprintln!(
        "SQLite: purged {removed} expired token rows (and their sessions) in {took:?}, batches of {}; \
         slowest concurrent rotation {max_pause:?}",
        purge_batch()
    );
}

#[tokio::test]
async fn conformance_revocation_log() {
    tower_jwt_auth::conformance::revocation_log_conformance(std::sync::Arc::new(
        memory_store().await,
    ))
    .await;
}
