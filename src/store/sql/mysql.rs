//! [`MySqlStore`]: the token store on MySQL 8 or MariaDB 10.5+ (feature
//! `mysql`), and the MySQL `Dialect`: its statements (`?` placeholders),
//! retryable errors, migration lock and pool.

use sqlx::SqlStr;
use sqlx::error::DatabaseError;
use sqlx::mysql::{MySql, MySqlConnection, MySqlDatabaseError, MySqlPool, MySqlQueryResult};

use super::dialect::Dialect;
use super::driver::{RowsAffected, trusted};
use super::statements::{Differing, Quoted, Statements};
use super::store::{SqlStore, TxError, server_pool};
use crate::error::StoreError;

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
pub type MySqlStore = SqlStore<MySql>;

impl Dialect for MySql {
    const STORE: &'static str = "MySqlStore";
    const BEGIN: SqlStr = SqlStr::from_static("BEGIN");
    const ONE_WRITER: bool = false;
    const NATIVE_UUID: bool = false;
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("migrations/mysql/0001_initial.sql")),
        (2, include_str!("migrations/mysql/0002_cutoff_ms.sql")),
    ];
    const QUOTE: char = '`';

    /// The text MySQL shares with SQLite, and its own: row locks, and reads
    /// that lock too, because MySQL's plain `SELECT` reads the transaction's
    /// snapshot while a locking read sees the latest committed row.
    fn statements(n: &Quoted, purge_batch: u32) -> Statements {
        let (s, t, c) = (&n.sessions, &n.tokens, &n.cutoffs);
        let differing = Differing {
            lock_session: trusted(format!(
                "SELECT s.user_id, s.revoked_at, s.expires_at, s.live_jti, s.live_parent, s.created_at_ms, \
                 (SELECT c.cutoff FROM {c} c WHERE c.user_id = s.user_id) \
                 FROM {s} s WHERE s.session_id = ? FOR UPDATE"
            )),
            read_token: trusted(format!(
                "SELECT used_at, expires_at FROM {t} WHERE jti = ? AND session_id = ? FOR UPDATE"
            )),
            // state::next_cutoff: the cutoff only moves forward.
            upsert_cutoff: trusted(format!(
                "INSERT INTO {c} (user_id, cutoff) VALUES (?, ?) \
                 ON DUPLICATE KEY UPDATE cutoff = GREATEST(cutoff, VALUES(cutoff))"
            )),
            ensure_cutoff: trusted(format!(
                "INSERT IGNORE INTO {c} (user_id, cutoff) VALUES (?, 0)"
            )),
            lock_cutoff: trusted(format!(
                "SELECT cutoff FROM {c} WHERE user_id = ? FOR UPDATE"
            )),
            // state::session_purgeable: now >= expires_at.
            purge_pick_sessions: trusted(format!(
                "SELECT session_id FROM {s} WHERE expires_at <= ? LIMIT ? FOR UPDATE"
            )),
            // state::token_purgeable: unused, and now >= expires_at.
            purge_tokens: trusted(format!(
                "DELETE FROM {t} WHERE used_at IS NULL AND expires_at <= ? LIMIT ?"
            )),
        };
        Statements::positional(n, purge_batch, differing)
    }

    fn is_retryable(err: &dyn DatabaseError) -> bool {
        // ER_LOCK_DEADLOCK (SQLSTATE 40001), and ER_LOCK_WAIT_TIMEOUT (1205),
        // which rolls back only the statement: the transaction is abandoned and
        // run again.
        err.code().as_deref() == Some("40001")
            || err
                .try_downcast_ref::<MySqlDatabaseError>()
                .is_some_and(|e| e.number() == 1205)
    }

    async fn open(url: &str) -> Result<MySqlPool, StoreError> {
        server_pool(url, "MySQL").await
    }

    /// A named lock, held by the connection until released: MySQL's DDL is not
    /// transactional (each `CREATE` commits at once), so the lock, not the
    /// transaction, keeps two instances from migrating together.
    async fn lock_migrations(conn: &mut MySqlConnection, key: &str) -> Result<(), TxError> {
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 30)")
            .bind(key)
            .fetch_one(conn)
            .await?;
        if got == Some(1) {
            Ok(())
        } else {
            Err(TxError::Conflict(
                "another instance holds the migration lock",
            ))
        }
    }

    async fn unlock_migrations(conn: &mut MySqlConnection, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(key)
            .execute(conn)
            .await?;
        Ok(())
    }
}

impl RowsAffected for MySqlQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}
