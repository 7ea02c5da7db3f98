//! [`SqliteStore`]: the token store on an embedded SQLite database (feature `sqlite`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::clock::system_secs;
use crate::error::{ConfigError, StoreError};
use crate::store::sql::{
    Core, Dialect, SqlStoreOptions, TableNames, TxError, impl_sql_token_store,
};

/// A [`TokenStore`](crate::TokenStore) in SQLite, for single-host apps.
///
/// Rotations take SQLite's write lock first (`BEGIN IMMEDIATE`), so concurrent
/// refreshes of one token, from any number of connections, queue and exactly one
/// wins. Call [`SqliteStore::migrate`] once at start-up.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_jwt_auth::{SqliteStore, TokenStore};
/// let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
/// store.migrate().await.unwrap();
/// assert!(store.is_revoked(uuid::Uuid::new_v4(), "alice", 0).await.unwrap(), "unknown sessions are revoked");
/// # }
/// ```
pub struct SqliteStore {
    pool: SqlitePool,
    core: Core,
    /// SQLite has one writer at a time: this process's writers queue here
    /// instead of polling the database's busy handler (other processes still
    /// meet the busy timeout).
    writers: tokio::sync::Mutex<()>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("tables", &self.core.tables)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// A store on `pool` with the default options (tables prefixed `jwt_auth_`).
    ///
    /// The pool should enable foreign keys (sqlx's default) and a busy timeout;
    /// [`SqliteStore::connect`] builds one with WAL and sensible limits.
    pub fn new(pool: SqlitePool) -> Self {
        SqliteStore {
            pool,
            core: Core::new(Dialect::Sqlite, SqlStoreOptions::default()),
            writers: Default::default(),
        }
    }

    /// A store on `pool` with `options`; an invalid table prefix or limit is an error.
    pub fn with_options(pool: SqlitePool, options: SqlStoreOptions) -> Result<Self, ConfigError> {
        Ok(SqliteStore {
            pool,
            core: Core::checked(Dialect::Sqlite, options)?,
            writers: Default::default(),
        })
    }

    /// Opens (creating if missing) the database at `url` (`sqlite://path.db`,
    /// `sqlite::memory:`, `sqlite:file:name?mode=memory&cache=shared`) with a pool
    /// of 8 connections, WAL journaling, a 5 s busy timeout and foreign keys on.
    /// The tables are not created: call [`SqliteStore::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, SqlStoreOptions::default()).await
    }

    /// [`SqliteStore::connect`] with options.
    pub async fn connect_with(url: &str, options: SqlStoreOptions) -> Result<Self, StoreError> {
        let core = Core::checked(Dialect::Sqlite, options)
            .map_err(|e| StoreError::with_source("invalid SQL store options", e))?;
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::with_source("invalid SQLite URL", e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        // Switch the file to WAL on one connection first: the switch needs an
        // exclusive lock, and a pool opening several fresh connections at once
        // lets them race for it (SQLITE_BUSY, "database is locked"). The mode is
        // stored in the file, so the pool's connections find it set.
        // An in-memory database lives as long as one of its connections: this
        // one is kept until the pool has its own.
        let first = sqlx::ConnectOptions::connect(&connect)
            .await
            .map_err(|e| StoreError::with_source("cannot open the SQLite database", e))?;
        // No idle timeout or lifetime: an in-memory database lives only as long
        // as one of its connections.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::with_source("cannot open the SQLite database", e))?;
        let _ = sqlx::Connection::close(first).await;
        Ok(SqliteStore {
            pool,
            core,
            writers: Default::default(),
        })
    }

    /// Creates or upgrades the store's tables; idempotent, and safe to run from
    /// several processes at once (one transaction holding the write lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let core = &self.core;
        let q = &core.q;
        let migrations = core.migrations();
        core.run("migrate", || async {
            let mut tx = self.pool.begin_with(q.begin).await?;
            sqlx::raw_sql(Core::sql(&q.create_versions))
                .execute(&mut *tx)
                .await?;
            let applied: Vec<i64> = sqlx::query_scalar(Core::sql(&q.applied_versions))
                .fetch_all(&mut *tx)
                .await?;
            for (version, statements) in &migrations {
                if applied.contains(version) {
                    continue;
                }
                for statement in statements {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(Core::sql(&q.record_version))
                    .bind(*version)
                    .bind(crate::store::sql::to_db(system_secs()))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, TxError>(())
        })
        .await
    }

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Held across a write transaction: one writer of this process at a time.
    async fn writer(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writers.lock().await
    }

    /// The store's table names.
    pub fn table_names(&self) -> &TableNames {
        &self.core.tables
    }
}

impl_sql_token_store!(SqliteStore);
