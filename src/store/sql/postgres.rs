//! [`PgStore`]: the token store on PostgreSQL (feature `postgres`), and the
//! PostgreSQL `Dialect`: its statements (`$1` placeholders), retryable errors,
//! migration lock and pool.

use std::time::Duration;

use sqlx::SqlStr;
use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgQueryResult, Postgres};

use super::dialect::Dialect;
use super::driver::{RowsAffected, trusted};
use super::statements::{
    Differing, Quoted, Statements, purge_cutoffs_by_subquery, purge_tokens_by_subquery,
};
use super::store::{SqlStore, TxError, server_pool};
use super::tx::TxSql;
use crate::error::StoreError;

/// A [`TokenStore`](crate::TokenStore) in PostgreSQL, shared by every instance of an app.
///
/// Rotations lock the session row (`SELECT ... FOR UPDATE`) in a `READ COMMITTED`
/// transaction, so concurrent refreshes of one token, from any number of
/// connections or app instances, queue on that row and exactly one wins. Each
/// transaction sets its own `lock_timeout`, `statement_timeout` and
/// `idle_in_transaction_session_timeout` (`SET LOCAL`, to the operation
/// timeout), so a transaction its client abandoned ends on the server too, also
/// on a pool the app built. A pool the store opens itself
/// ([`PgStore::connect`]) also has the server probe idle connections (TCP
/// keepalive after 30 s, every 10 s, 3 times), so the backend of a client that
/// vanished ends in about a minute; for a pool the app builds, set
/// `tcp_keepalives_idle` and its siblings with `PgConnectOptions::options`.
/// Call [`PgStore::migrate`] once at start-up.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_jwt_auth::PgStore;
/// let store = PgStore::connect("postgres://app@localhost/app").await.unwrap();
/// store.migrate().await.unwrap();
/// # }
/// ```
pub type PgStore = SqlStore<Postgres>;

impl Dialect for Postgres {
    const STORE: &'static str = "PgStore";
    const BEGIN: SqlStr = SqlStr::from_static("BEGIN");
    const ONE_WRITER: bool = false;
    const NATIVE_UUID: bool = true;
    const LOCAL: bool = false;
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("migrations/postgres/0001_initial.sql")),
        (2, include_str!("migrations/postgres/0002_rotation_v2.sql")),
        (
            3,
            include_str!("migrations/postgres/0003_revocation_log.sql"),
        ),
    ];
    const SCHEMA: &'static str = include_str!("migrations/postgres/schema.sql");
    const QUOTE: char = '"';

    fn statements(n: &Quoted, purge_batch: u32) -> Statements {
        let (s, t, c) = (&n.sessions, &n.tokens, &n.cutoffs);
        let differing = Differing {
            table_exists: "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?",
            lock_session: " FOR UPDATE OF s",
            // No lock: READ COMMITTED takes each statement's snapshot, and this
            // one's is taken after the session lock was granted.
            lock_token: "",
            lock_picked: " FOR UPDATE",
            // One statement creates the row if missing and locks it: the
            // conflicting row is locked, and its latest version returned.
            ensure_cutoff: None,
            lock_cutoff: format!(
                "INSERT INTO {c} (user_id, cutoff) VALUES (?, 0) \
                 ON CONFLICT (user_id) DO UPDATE SET cutoff = {c}.cutoff RETURNING cutoff"
            ),
            // state::next_cutoff: the cutoff only moves forward.
            upsert_cutoff: format!(
                "INSERT INTO {c} (user_id, cutoff) VALUES (?, ?) \
                 ON CONFLICT (user_id) DO UPDATE SET cutoff = GREATEST({c}.cutoff, EXCLUDED.cutoff)"
            ),
            purge_tokens: purge_tokens_by_subquery(t),
            purge_cutoffs: purge_cutoffs_by_subquery(c, s),
            user_id: str::to_owned,
            numbered: true,
            notify: Some("SELECT pg_notify(?, '')"),
        };
        Statements::new(n, purge_batch, differing)
    }

    /// `BEGIN`, then the transaction's own bounds (`SET LOCAL`, undone at its
    /// end): lock waits, each statement, and the time it may sit idle (its
    /// client gone without closing) are limited to the operation timeout.
    async fn transaction_sql(
        _: &mut PgConnection,
        timeout: Duration,
    ) -> Result<TxSql, sqlx::Error> {
        let ms = timeout.as_millis().max(1);
        Ok(TxSql {
            begin: trusted(format!(
                "BEGIN; SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}; \
                 SET LOCAL idle_in_transaction_session_timeout = {ms}"
            )),
            commit: SqlStr::from_static("COMMIT"),
        })
    }

    fn user_lookup(table: &str, id: &str, active: Option<&str>) -> String {
        match active {
            Some(a) => format!("SELECT (CAST({a} AS INTEGER) <> 0) FROM {table} WHERE {id} = $1"),
            None => format!("SELECT 1 FROM {table} WHERE {id} = $1"),
        }
    }

    /// `LISTEN` on the store's channel, on a connection of its own, probed
    /// while silent and replaced when lost or hung (`pg_listen.rs`): the
    /// revoking transaction's `NOTIFY` wakes the reader at its commit.
    #[allow(clippy::manual_async_fn)] // the trait's `Send` bound, spelled out
    fn wait_for_revocations(
        store: &SqlStore<Self>,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        super::pg_listen::wait(store, timeout)
    }

    fn is_retryable(err: &dyn DatabaseError) -> bool {
        // serialization_failure, deadlock_detected, lock_not_available
        matches!(err.code().as_deref(), Some("40001" | "40P01" | "55P03"))
    }

    /// The server probes an idle connection after 30 s, every 10 s, 3 times
    /// (`tcp_keepalives_*`, ignored on a Unix socket): a client that vanished
    /// without closing (a host gone, a network cut) has its backend ended in
    /// about a minute, not the system's two hours. What the settings of the
    /// URL's `options` say wins.
    async fn open(url: &str) -> Result<PgPool, StoreError> {
        server_pool(url, "PostgreSQL", |options: PgConnectOptions| {
            let mut keepalive = vec![
                ("tcp_keepalives_idle", "30"),
                ("tcp_keepalives_interval", "10"),
                ("tcp_keepalives_count", "3"),
            ];
            let given = options.get_options().unwrap_or_default().to_owned();
            keepalive.retain(|(name, _)| !given.contains(name));
            options.options(keepalive)
        })
        .await
    }

    /// An advisory lock, released when the transaction ends (PostgreSQL's DDL
    /// is transactional: the whole migration commits or none of it).
    async fn lock_migrations(conn: &mut PgConnection, key: &str) -> Result<(), TxError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_id(key))
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// A stable 64-bit advisory lock id for `key` (FNV-1a).
fn lock_id(key: &str) -> i64 {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

impl RowsAffected for PgQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}
