//! [`MySqlStore`]: the token store on MySQL 8 or MariaDB 10.5+ (feature `mysql`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

use crate::clock::system_secs;
use crate::error::{ConfigError, StoreError};
use crate::store::sql::{
    Core, Dialect, SqlStoreOptions, TableNames, TxError, impl_sql_token_store,
};

/// A [`TokenStore`](crate::TokenStore) in MySQL or MariaDB, shared by every instance of an app.
///
/// Rotations lock the session row and read the token with locking reads
/// (`SELECT ... FOR UPDATE`, which see the latest committed rows under InnoDB's
/// `REPEATABLE READ`), so concurrent refreshes of one token queue on that row and
/// exactly one wins; there is no `RETURNING`, the row counts of the conditional
/// writes are checked instead. Deadlocks and lock wait timeouts are retried. Call
/// [`MySqlStore::migrate`] once at start-up.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_jwt_auth::MySqlStore;
/// let store = MySqlStore::connect("mysql://app@localhost/app").await.unwrap();
/// store.migrate().await.unwrap();
/// # }
/// ```
pub struct MySqlStore {
    pool: MySqlPool,
    core: Core,
}

impl fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlStore")
            .field("tables", &self.core.tables)
            .finish_non_exhaustive()
    }
}

impl MySqlStore {
    /// A store on `pool` with the default options (tables prefixed `jwt_auth_`).
    pub fn new(pool: MySqlPool) -> Self {
        MySqlStore {
            pool,
            core: Core::new(Dialect::MySql, SqlStoreOptions::default()),
        }
    }

    /// A store on `pool` with `options`; an invalid table prefix or limit is an error.
    pub fn with_options(pool: MySqlPool, options: SqlStoreOptions) -> Result<Self, ConfigError> {
        Ok(MySqlStore {
            pool,
            core: Core::checked(Dialect::MySql, options)?,
        })
    }

    /// Connects to `url` with a pool of up to 16 connections and a 3 s acquire
    /// timeout (a database that is down answers 503 quickly). The tables are not
    /// created: call [`MySqlStore::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, SqlStoreOptions::default()).await
    }

    /// [`MySqlStore::connect`] with options.
    pub async fn connect_with(url: &str, options: SqlStoreOptions) -> Result<Self, StoreError> {
        let core = Core::checked(Dialect::MySql, options)
            .map_err(|e| StoreError::with_source("invalid SQL store options", e))?;
        let connect = MySqlConnectOptions::from_str(url)
            .map_err(|e| StoreError::with_source("invalid MySQL URL", e))?;
        let pool = MySqlPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::with_source("cannot connect to MySQL", e))?;
        Ok(MySqlStore { pool, core })
    }

    /// Creates or upgrades the store's tables; idempotent (`CREATE TABLE IF NOT
    /// EXISTS`, versions recorded), and safe to run from several instances at once
    /// (a named lock, `GET_LOCK`, held on one connection while it runs; MySQL's
    /// DDL is not transactional).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let core = &self.core;
        let q = &core.q;
        let migrations = core.migrations();
        let lock = core.lock_key();
        core.run("migrate", || async {
            let mut conn = self.pool.acquire().await?;
            let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 30)")
                .bind(&lock)
                .fetch_one(&mut *conn)
                .await?;
            if got != Some(1) {
                return Err(TxError::Conflict(
                    "another instance holds the migration lock",
                ));
            }
            let result = async {
                sqlx::raw_sql(Core::sql(&q.create_versions))
                    .execute(&mut *conn)
                    .await?;
                let applied: Vec<i64> = sqlx::query_scalar(Core::sql(&q.applied_versions))
                    .fetch_all(&mut *conn)
                    .await?;
                for (version, statements) in &migrations {
                    if applied.contains(version) {
                        continue;
                    }
                    for statement in statements {
                        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
                            .execute(&mut *conn)
                            .await?;
                    }
                    sqlx::query(Core::sql(&q.record_version))
                        .bind(*version)
                        .bind(crate::store::sql::to_db(system_secs()))
                        .execute(&mut *conn)
                        .await?;
                }
                Ok::<_, sqlx::Error>(())
            }
            .await;
            let released = sqlx::query("SELECT RELEASE_LOCK(?)")
                .bind(&lock)
                .execute(&mut *conn)
                .await;
            if released.is_err() {
                // The lock lives as long as the connection: end it rather than
                // hand a locked connection back to the pool.
                let _ = conn.detach().close().await;
            }
            result?;
            Ok(())
        })
        .await
    }

    /// The connection pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Writers need no queue here: row locks order them.
    async fn writer(&self) {}

    /// The store's table names.
    pub fn table_names(&self) -> &TableNames {
        &self.core.tables
    }
}

impl_sql_token_store!(MySqlStore);
