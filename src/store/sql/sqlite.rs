//! [`SqliteStore`]: the token store on an embedded SQLite database (feature
//! `sqlite`), and the SQLite `Dialect`: its statements (`?` placeholders),
//! retryable errors, write lock and pool.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlStr;
use sqlx::error::DatabaseError;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteQueryResult,
};

use super::dialect::Dialect;
use super::driver::RowsAffected;
use super::statements::{
    Differing, Quoted, Statements, purge_cutoffs_by_subquery, purge_tokens_by_subquery,
};
use super::store::{SqlStore, TxError};
use super::tx::TxSql;
use crate::error::StoreError;

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
pub type SqliteStore = SqlStore<Sqlite>;

impl Dialect for Sqlite {
    const STORE: &'static str = "SqliteStore";
    const BEGIN: SqlStr = SqlStr::from_static("BEGIN IMMEDIATE");
    const ONE_WRITER: bool = true;
    const NATIVE_UUID: bool = false;
    const LOCAL: bool = true;
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("migrations/sqlite/0001_initial.sql")),
        (2, include_str!("migrations/sqlite/0002_rotation_v2.sql")),
        (3, include_str!("migrations/sqlite/0003_revocation_log.sql")),
    ];
    const SCHEMA: &'static str = include_str!("migrations/sqlite/schema.sql");
    const QUOTE: char = '"';

    /// No row locks (the write lock taken by `BEGIN IMMEDIATE` orders every
    /// writer, so the cutoff needs no row to lock) and no `LIMIT` on `DELETE`.
    fn statements(n: &Quoted, purge_batch: u32) -> Statements {
        let (s, t, c) = (&n.sessions, &n.tokens, &n.cutoffs);
        let differing = Differing {
            table_exists: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            lock_session: "",
            lock_token: "",
            lock_picked: "",
            ensure_cutoff: None,
            lock_cutoff: format!("SELECT cutoff FROM {c} WHERE user_id = ?"),
            // state::next_cutoff: the cutoff only moves forward.
            upsert_cutoff: format!(
                "INSERT INTO {c} (user_id, cutoff) VALUES (?, ?) \
                 ON CONFLICT (user_id) DO UPDATE SET cutoff = MAX(cutoff, excluded.cutoff)"
            ),
            purge_tokens: purge_tokens_by_subquery(t),
            purge_cutoffs: purge_cutoffs_by_subquery(c, s),
            user_id: str::to_owned,
            numbered: false,
            notify: None,
        };
        Statements::new(n, purge_batch, differing)
    }

    /// `BEGIN IMMEDIATE` (the write lock at once); the busy timeout bounds the
    /// wait for it. Nothing to bound beyond: the database is in process.
    async fn transaction_sql(_: &mut SqliteConnection, _: Duration) -> Result<TxSql, sqlx::Error> {
        Ok(TxSql {
            begin: Self::BEGIN,
            commit: SqlStr::from_static("COMMIT"),
        })
    }

    fn is_retryable(err: &dyn DatabaseError) -> bool {
        // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes
        err.code()
            .and_then(|code| code.parse::<i64>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6))
    }

    async fn open(url: &str) -> Result<SqlitePool, StoreError> {
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
        Ok(pool)
    }

    /// None: `BEGIN IMMEDIATE` holds the database's write lock until the
    /// migration transaction ends.
    async fn lock_migrations(_: &mut SqliteConnection, _: &str) -> Result<(), TxError> {
        Ok(())
    }
}

impl RowsAffected for SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}
