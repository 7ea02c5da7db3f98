//! [`MySqlStore`]: the token store on MySQL 8 or MariaDB 10.5+ (feature
//! `mysql`), and the MySQL `Dialect`: its statements (`?` placeholders),
//! retryable errors, migration lock and pool.

use std::time::Duration;

use sqlx::SqlStr;
use sqlx::error::DatabaseError;
use sqlx::mysql::{MySql, MySqlConnection, MySqlDatabaseError, MySqlPool, MySqlQueryResult};

use super::dialect::Dialect;
use super::driver::{RowsAffected, trusted};
use super::statements::{Differing, Quoted, Statements, cutoff_purgeable};
use super::store::{SqlStore, TxError, server_pool};
use super::tx::TxSql;
use crate::error::StoreError;

/// A [`TokenStore`](crate::TokenStore) in MySQL or MariaDB, shared by every instance of an app.
///
/// Rotations lock the session row and read the token with locking reads
/// (`SELECT ... FOR UPDATE`, which see the latest committed rows under InnoDB's
/// `REPEATABLE READ`), so concurrent refreshes of one token queue on that row and
/// exactly one wins; there is no `RETURNING`, the row counts of the conditional
/// writes are checked instead. Deadlocks and lock wait timeouts are retried.
/// Each transaction bounds its lock waits (`innodb_lock_wait_timeout`), its
/// statements (`max_statement_time` on MariaDB, `max_execution_time` on MySQL)
/// and how long it may sit idle (`idle_transaction_timeout` on MariaDB,
/// `wait_timeout` on MySQL) by the operation timeout, restoring the
/// connection's own values at its commit. User ids are stored as bytes
/// (`VARBINARY`) and compared exactly: `'bob'` is not `'bob '`, which every
/// `PAD SPACE` collation (`utf8mb4_bin` included) would make equal. Call
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
    const LOCAL: bool = false;
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("migrations/mysql/0001_initial.sql")),
        (2, include_str!("migrations/mysql/0002_rotation_v2.sql")),
        (3, include_str!("migrations/mysql/0003_revocation_log.sql")),
    ];
    const SCHEMA: &'static str = include_str!("migrations/mysql/schema.sql");
    const QUOTE: char = '`';

    /// Row locks, and reads that lock too, because MySQL's plain `SELECT`
    /// reads the transaction's snapshot while a locking read sees the latest
    /// committed row; user ids read back from their bytes.
    fn statements(n: &Quoted, purge_batch: u32) -> Statements {
        let (s, t, c) = (&n.sessions, &n.tokens, &n.cutoffs);
        let differing = Differing {
            table_exists: "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
            lock_session: " FOR UPDATE",
            lock_token: " FOR UPDATE",
            lock_picked: " FOR UPDATE",
            // A row to lock: a missing key's gap lock would let two creations
            // through, and deadlock with the revoke-all's insert.
            ensure_cutoff: Some(format!(
                "INSERT INTO {c} (user_id, cutoff) VALUES (?, 0) \
                 ON DUPLICATE KEY UPDATE cutoff = cutoff"
            )),
            lock_cutoff: format!("SELECT cutoff FROM {c} WHERE user_id = ? FOR UPDATE"),
            // state::next_cutoff: the cutoff only moves forward.
            upsert_cutoff: format!(
                "INSERT INTO {c} (user_id, cutoff) VALUES (?, ?) \
                 ON DUPLICATE KEY UPDATE cutoff = GREATEST(cutoff, VALUES(cutoff))"
            ),
            // state::token_purgeable: unused, and now >= expires_at.
            purge_tokens: format!(
                "DELETE FROM {t} WHERE used_at IS NULL AND expires_at <= ? LIMIT ?"
            ),
            purge_cutoffs: format!("DELETE FROM {c} WHERE {} LIMIT ?", cutoff_purgeable(c, s)),
            user_id: |column| format!("CONVERT({column} USING utf8mb4)"),
            numbered: false,
            notify: None,
        };
        Statements::new(n, purge_batch, differing)
    }

    /// The bounds as session variables, set before `BEGIN` and restored after
    /// `COMMIT` (each in the same round trip): MariaDB and MySQL name them
    /// differently, so the server is asked which it is, once.
    async fn transaction_sql(
        conn: &mut MySqlConnection,
        timeout: Duration,
    ) -> Result<TxSql, sqlx::Error> {
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&mut *conn)
            .await?;
        let secs = timeout.as_secs_f64().ceil().max(1.0) as u64;
        let bounds: [(&str, String); 3] = if version.contains("MariaDB") {
            [
                ("innodb_lock_wait_timeout", secs.to_string()),
                (
                    "max_statement_time",
                    format!("{:.3}", timeout.as_secs_f64()),
                ),
                ("idle_transaction_timeout", secs.to_string()),
            ]
        } else {
            [
                ("innodb_lock_wait_timeout", secs.to_string()),
                ("max_execution_time", timeout.as_millis().max(1).to_string()),
                ("wait_timeout", secs.to_string()),
            ]
        };
        let join = |each: &dyn Fn(&str, &str) -> String| {
            let items: Vec<String> = bounds.iter().map(|(n, v)| each(n, v)).collect();
            items.join(", ")
        };
        let save = join(&|name, _| format!("@tower_jwt_auth_{name} = @@SESSION.{name}"));
        let set = join(&|name, value| format!("SESSION {name} = {value}"));
        let restore = join(&|name, _| format!("SESSION {name} = @tower_jwt_auth_{name}"));
        Ok(TxSql {
            begin: trusted(format!("SET {save}; SET {set}; BEGIN")),
            commit: trusted(format!("COMMIT; SET {restore}")),
        })
    }

    /// ER_DUP_FIELDNAME: the column was added by an interrupted run of the
    /// same migration (MySQL's DDL commits statement by statement).
    fn already_applied(err: &dyn DatabaseError) -> bool {
        number(err) == Some(1060)
    }

    fn is_retryable(err: &dyn DatabaseError) -> bool {
        // ER_LOCK_DEADLOCK (SQLSTATE 40001), and ER_LOCK_WAIT_TIMEOUT (1205),
        // which rolls back only the statement: the transaction is abandoned and
        // run again.
        err.code().as_deref() == Some("40001") || number(err) == Some(1205)
    }

    async fn open(url: &str) -> Result<MySqlPool, StoreError> {
        server_pool(url, "MySQL", |options| options).await
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

/// The server's error number of `err`.
fn number(err: &dyn DatabaseError) -> Option<u16> {
    err.try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number)
}

impl RowsAffected for MySqlQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}
