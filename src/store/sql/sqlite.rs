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
use super::driver::{RowsAffected, trusted};
use super::statements::{Differing, Quoted, Statements};
use super::store::{SqlStore, TxError};
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
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("migrations/sqlite/0001_initial.sql")),
        (2, include_str!("migrations/sqlite/0002_cutoff_ms.sql")),
    ];
    const QUOTE: char = '"';

    /// The text SQLite shares with MySQL, and its own: no row locks (the write
    /// lock taken by `BEGIN IMMEDIATE` orders every writer) and no `LIMIT` on
    /// `DELETE`.
    fn statements(n: &Quoted, purge_batch: u32) -> Statements {
        let (s, t, c) = (&n.sessions, &n.tokens, &n.cutoffs);
        let differing = Differing {
            lock_session: trusted(format!(
                "SELECT s.user_id, s.revoked_at, s.expires_at, s.live_jti, s.live_parent, s.created_at_ms, \
                 (SELECT c.cutoff FROM {c} c WHERE c.user_id = s.user_id) \
                 FROM {s} s WHERE s.session_id = ?"
            )),
            read_token: trusted(format!(
                "SELECT used_at, expires_at FROM {t} WHERE jti = ? AND session_id = ?"
            )),
            // state::next_cutoff: the cutoff only moves forward.
            upsert_cutoff: trusted(format!(
                "INSERT INTO {c} (user_id, cutoff) VALUES (?, ?) \
                 ON CONFLICT (user_id) DO UPDATE SET cutoff = MAX(cutoff, excluded.cutoff)"
            )),
            ensure_cutoff: trusted(format!(
                "INSERT OR IGNORE INTO {c} (user_id, cutoff) VALUES (?, 0)"
            )),
            // BEGIN IMMEDIATE already holds the write lock: no row lock needed.
            lock_cutoff: trusted(format!("SELECT cutoff FROM {c} WHERE user_id = ?")),
            // state::session_purgeable: now >= expires_at.
            purge_pick_sessions: trusted(format!(
                "SELECT session_id FROM {s} WHERE expires_at <= ? LIMIT ?"
            )),
            // state::token_purgeable: unused, and now >= expires_at.
            purge_tokens: trusted(format!(
                "DELETE FROM {t} WHERE jti IN \
                 (SELECT jti FROM {t} WHERE used_at IS NULL AND expires_at <= ? LIMIT ?)"
            )),
        };
        Statements::positional(n, purge_batch, differing)
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
