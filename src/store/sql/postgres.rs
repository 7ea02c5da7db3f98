//! [`PgStore`]: the token store on PostgreSQL (feature `postgres`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::clock::system_secs;
use crate::error::{ConfigError, StoreError};
use crate::store::sql::{
    Core, Dialect, SqlStoreOptions, TableNames, TxError, impl_sql_token_store,
};

/// A [`TokenStore`](crate::TokenStore) in PostgreSQL, shared by every instance of an app.
///
/// Rotations lock the session row (`SELECT ... FOR UPDATE`) in a `READ COMMITTED`
/// transaction, so concurrent refreshes of one token, from any number of
/// connections or app instances, queue on that row and exactly one wins. Call
/// [`PgStore::migrate`] once at start-up.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_jwt_auth::PgStore;
/// let store = PgStore::connect("postgres://app@localhost/app").await.unwrap();
/// store.migrate().await.unwrap();
/// # }
/// ```
pub struct PgStore {
    pool: PgPool,
    core: Core,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("tables", &self.core.tables)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// A store on `pool` with the default options (tables prefixed `jwt_auth_`).
    pub fn new(pool: PgPool) -> Self {
        PgStore {
            pool,
            core: Core::new(Dialect::Postgres, SqlStoreOptions::default()),
        }
    }

    /// A store on `pool` with `options`; an invalid table prefix or limit is an error.
    pub fn with_options(pool: PgPool, options: SqlStoreOptions) -> Result<Self, ConfigError> {
        Ok(PgStore {
            pool,
            core: Core::checked(Dialect::Postgres, options)?,
        })
    }

    /// Connects to `url` with a pool of up to 16 connections and a 3 s acquire
    /// timeout (a database that is down answers 503 quickly). The tables are not
    /// created: call [`PgStore::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, SqlStoreOptions::default()).await
    }

    /// [`PgStore::connect`] with options.
    pub async fn connect_with(url: &str, options: SqlStoreOptions) -> Result<Self, StoreError> {
        let core = Core::checked(Dialect::Postgres, options)
            .map_err(|e| StoreError::with_source("invalid SQL store options", e))?;
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::with_source("invalid PostgreSQL URL", e))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::with_source("cannot connect to PostgreSQL", e))?;
        Ok(PgStore { pool, core })
    }

    /// Creates or upgrades the store's tables; idempotent, and safe to run from
    /// several instances at once (one transaction under an advisory lock named
    /// after the table prefix; PostgreSQL's DDL is transactional).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let core = &self.core;
        let q = &core.q;
        let migrations = core.migrations();
        let lock = lock_id(&core.lock_key());
        core.run("migrate", || async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock)
                .execute(&mut *tx)
                .await?;
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
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Writers need no queue here: row locks order them.
    async fn writer(&self) {}

    /// The store's table names.
    pub fn table_names(&self) -> &TableNames {
        &self.core.tables
    }
}

/// A stable 64-bit advisory lock id for `key` (FNV-1a).
fn lock_id(key: &str) -> i64 {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

impl_sql_token_store!(PgStore);
