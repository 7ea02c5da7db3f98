//! [`SqlStore`]: the SQL token store, one type for every database, built on a
//! pool with its options; and how each of its operations runs (one transaction,
//! retried when it lost a race, within the operation timeout).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use sqlx::Connection;
use sqlx::Pool;
use sqlx::pool::PoolOptions;
use tokio::sync::{Mutex, MutexGuard, OnceCell};

use super::dialect::SqlDatabase;
use super::statements::{Quoted, Statements};
use super::tx::TxSql;
use super::{SqlStoreOptions, TableNames};
use crate::error::{ConfigError, StoreError};
use crate::store::backoff;

/// A [`TokenStore`](crate::TokenStore) in a SQL database, shared by every
/// instance of an app: [`PgStore`], [`MySqlStore`] and [`SqliteStore`] are
/// this type on each database.
///
/// Rotations are one transaction each around the session row's lock (see the
/// [module docs](super)); call `migrate()` once at start-up.
///
#[cfg_attr(feature = "sqlite", doc = "[`SqliteStore`]: crate::SqliteStore")]
#[cfg_attr(
    not(feature = "sqlite"),
    doc = "[`SqliteStore`]: https://docs.rs/tower-jwt-auth/latest/tower_jwt_auth/type.SqliteStore.html"
)]
#[cfg_attr(feature = "postgres", doc = "[`PgStore`]: crate::PgStore")]
#[cfg_attr(
    not(feature = "postgres"),
    doc = "[`PgStore`]: https://docs.rs/tower-jwt-auth/latest/tower_jwt_auth/type.PgStore.html"
)]
#[cfg_attr(feature = "mysql", doc = "[`MySqlStore`]: crate::MySqlStore")]
#[cfg_attr(
    not(feature = "mysql"),
    doc = "[`MySqlStore`]: https://docs.rs/tower-jwt-auth/latest/tower_jwt_auth/type.MySqlStore.html"
)]
pub struct SqlStore<DB: SqlDatabase> {
    pub(super) pool: Pool<DB>,
    pub(super) sql: Statements,
    pub(super) tables: TableNames,
    pub(super) options: SqlStoreOptions,
    /// Where this process's writers queue when the database has one writer at
    /// a time ([`Dialect::ONE_WRITER`](super::dialect::Dialect::ONE_WRITER)),
    /// instead of polling its busy handler (other processes still meet the
    /// busy timeout).
    writers: Mutex<()>,
    /// How a transaction opens and commits on this database, with its bounds:
    /// written on the first connection (the server is asked its kind).
    pub(super) tx_sql: OnceCell<TxSql>,
    /// A database's own way to wait for the revocation log (PostgreSQL's
    /// `LISTEN` connection), made on first use.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(super) log_waiter: tokio::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl<DB: SqlDatabase> fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(DB::STORE)
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

impl<DB: SqlDatabase> SqlStore<DB> {
    /// A store on `pool` with the default options (tables prefixed `jwt_auth_`).
    ///
    /// A SQLite pool should enable foreign keys (sqlx's default) and a busy
    /// timeout; [`SqlStore::connect`] builds one with WAL and sensible limits.
    pub fn new(pool: Pool<DB>) -> Self {
        Self::build(pool, SqlStoreOptions::default())
    }

    /// A store on `pool` with `options`; an invalid table prefix or limit is an error.
    pub fn with_options(pool: Pool<DB>, options: SqlStoreOptions) -> Result<Self, ConfigError> {
        options.validate()?;
        Ok(Self::build(pool, options))
    }

    /// Connects to `url`; the tables are not created: call `migrate()`.
    ///
    /// - PostgreSQL and MySQL: a pool of up to 16 connections and a 3 s acquire
    ///   timeout (a database that is down answers 503 quickly).
    /// - SQLite: opens, creating it if missing, the database at `url`
    ///   (`sqlite://path.db`, `sqlite::memory:`,
    ///   `sqlite:file:name?mode=memory&cache=shared`) with a pool of 8
    ///   connections, WAL journaling, a 5 s busy timeout and foreign keys on.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, SqlStoreOptions::default()).await
    }

    /// [`SqlStore::connect`] with options.
    pub async fn connect_with(url: &str, options: SqlStoreOptions) -> Result<Self, StoreError> {
        options
            .validate()
            .map_err(|e| StoreError::with_source("invalid SQL store options", e))?;
        let pool = DB::open(url).await?;
        Ok(Self::build(pool, options))
    }

    /// Writes the statements for the tables; `options` passed validation (the
    /// defaults always do).
    fn build(pool: Pool<DB>, options: SqlStoreOptions) -> Self {
        let tables = TableNames::new(options.get_table_prefix());
        let sql = DB::statements(&Quoted::new::<DB>(&tables), options.get_purge_batch_size());
        SqlStore {
            pool,
            sql,
            tables,
            options,
            writers: Mutex::new(()),
            tx_sql: OnceCell::new(),
            log_waiter: tokio::sync::Mutex::new(None),
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// The store's table names.
    pub fn table_names(&self) -> &TableNames {
        &self.tables
    }

    /// Held across a write transaction: one writer of this process at a time
    /// where the database has one writer; nothing elsewhere.
    pub(super) async fn writer(&self) -> Option<MutexGuard<'_, ()>> {
        if DB::ONE_WRITER {
            Some(self.writers.lock().await)
        } else {
            None
        }
    }

    /// Runs `op` (one transaction), retrying it when it lost a race, within the
    /// operation timeout. Every failure becomes a [`StoreError`] (503); none is
    /// ever reported as a token outcome. When the timeout fires mid-transaction,
    /// the connection is closed, never handed back open (see `tx.rs`).
    pub(super) async fn run<T, F, Fut>(
        &self,
        what: &'static str,
        mut op: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TxError>>,
    {
        let attempts = async {
            let mut attempt = 0u32;
            loop {
                let err = match op().await {
                    Ok(v) => return Ok(v),
                    Err(e) => e,
                };
                let retry = match &err {
                    TxError::Db(e) => e.as_database_error().is_some_and(DB::is_retryable),
                    TxError::Conflict(_) => true,
                };
                if !retry || attempt >= self.options.get_max_retries() {
                    return Err(match err {
                        TxError::Db(e) => StoreError::with_source(format!("{what} failed"), e),
                        TxError::Conflict(why) => StoreError::new(format!("{what} failed: {why}")),
                    });
                }
                attempt += 1;
                tokio::time::sleep(backoff::jittered(attempt, BACKOFF_UNIT, BACKOFF_DOUBLINGS))
                    .await;
            }
        };
        match tokio::time::timeout(self.options.get_operation_timeout(), attempts).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::new(format!("{what} timed out"))),
        }
    }
}

/// What a store transaction can fail with.
#[derive(Debug)]
#[allow(unreachable_pub)] // in the sealed `Dialect` trait: public in name only
pub enum TxError {
    /// The database said no.
    Db(sqlx::Error),
    /// A conditional write changed an unexpected number of rows: the state moved
    /// under the transaction. Rolled back and retried.
    Conflict(&'static str),
}

impl From<sqlx::Error> for TxError {
    fn from(e: sqlx::Error) -> Self {
        TxError::Db(e)
    }
}

/// A conditional write's row count checked: exactly one row, or the state moved
/// under the transaction (`why`).
pub(super) fn one_row(rows: u64, why: &'static str) -> Result<(), TxError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(TxError::Conflict(why))
    }
}

/// The unit of the pause before a retry ([`backoff::jittered`]): up to 2, 4,
/// 8, 16, 32, then 64 ms.
const BACKOFF_UNIT: Duration = Duration::from_millis(2);

/// How many times the longest pause before a retry doubles.
const BACKOFF_DOUBLINGS: u32 = 5;

/// The pool of a database server (PostgreSQL, MySQL) at `url`: up to 16
/// connections, a 3 s acquire timeout. `database` names it in errors.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(super) async fn server_pool<DB: SqlDatabase>(
    url: &str,
    database: &str,
    tune: impl FnOnce(
        <DB::Connection as Connection>::Options,
    ) -> <DB::Connection as Connection>::Options,
) -> Result<Pool<DB>, StoreError> {
    let connect: <DB::Connection as Connection>::Options = url
        .parse()
        .map_err(|e| StoreError::with_source(format!("invalid {database} URL"), e))?;
    let connect = tune(connect);
    PoolOptions::<DB>::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(connect)
        .await
        .map_err(|e| StoreError::with_source(format!("cannot connect to {database}"), e))
}
