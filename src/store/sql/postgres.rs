//! [`PgStore`]: the token store on PostgreSQL (feature `postgres`), and the
//! PostgreSQL `Dialect`: its statements (`$1` placeholders), retryable errors,
//! migration lock and pool.

use sqlx::SqlStr;
use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnection, PgPool, PgQueryResult, Postgres};

use super::dialect::Dialect;
use super::driver::{RowsAffected, trusted};
use super::statements::{Quoted, Statements};
use super::store::{SqlStore, TxError, server_pool};
use crate::error::StoreError;

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
pub type PgStore = SqlStore<Postgres>;

impl Dialect for Postgres {
    const STORE: &'static str = "PgStore";
    const BEGIN: SqlStr = SqlStr::from_static("BEGIN");
    const ONE_WRITER: bool = false;
    const NATIVE_UUID: bool = true;
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("migrations/postgres/0001_initial.sql")),
        (2, include_str!("migrations/postgres/0002_cutoff_ms.sql")),
    ];
    const QUOTE: char = '"';

    /// `lock_timeout` and `statement_timeout` at the operation timeout, and
    /// `idle_in_transaction_session_timeout` at twice it, for this transaction
    /// only (`set_config(.., true)` is `SET LOCAL`): a backend whose client went
    /// away mid-transaction lets its row locks go by itself, whoever built the
    /// pool.
    fn transaction_bounds(operation_timeout: std::time::Duration) -> Option<String> {
        let ms = operation_timeout.as_millis().max(1);
        Some(format!(
            "SELECT set_config('lock_timeout', '{ms}ms', true), \
             set_config('statement_timeout', '{ms}ms', true), \
             set_config('idle_in_transaction_session_timeout', '{}ms', true)",
            ms * 2
        ))
    }

    fn statements(n: &Quoted, purge_batch: u32) -> Statements {
        let (s, t, c, v) = (&n.sessions, &n.tokens, &n.cutoffs, &n.versions);
        let ids = (1..=purge_batch)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        Statements {
            insert_session: trusted(format!(
                "INSERT INTO {s} (session_id, user_id, created_at, last_rotated_at, expires_at, live_jti, label, created_at_ms, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            )),
            insert_token: trusted(format!(
                "INSERT INTO {t} (jti, session_id, parent_jti, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)"
            )),
            lock_session: trusted(format!(
                "SELECT s.user_id, s.revoked_at, s.expires_at, s.live_jti, s.live_parent, s.created_at_ms, \
                 (SELECT c.cutoff FROM {c} c WHERE c.user_id = s.user_id) \
                 FROM {s} s WHERE s.session_id = $1 FOR UPDATE OF s"
            )),
            // No lock of its own: READ COMMITTED takes each statement's snapshot,
            // and this one's is taken after the session lock was granted.
            read_token: trusted(format!(
                "SELECT used_at, expires_at FROM {t} WHERE jti = $1 AND session_id = $2"
            )),
            mark_used: trusted(format!(
                "UPDATE {t} SET used_at = $1, successor_jti = $2 \
                 WHERE jti = $3 AND session_id = $4 AND used_at IS NULL"
            )),
            move_live: trusted(format!(
                "UPDATE {s} SET live_jti = $1, live_parent = $2, last_rotated_at = $3 \
                 WHERE session_id = $4 AND revoked_at IS NULL"
            )),
            revoke_session: trusted(format!(
                "UPDATE {s} SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL"
            )),
            // state::next_cutoff: the cutoff only moves forward.
            upsert_cutoff: trusted(format!(
                "INSERT INTO {c} (user_id, cutoff) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET cutoff = GREATEST({c}.cutoff, EXCLUDED.cutoff)"
            )),
            // Creation locks the user's cutoff row (made if missing) so that a
            // revoke-all and a login of the same user serialize.
            ensure_cutoff: trusted(format!(
                "INSERT INTO {c} (user_id, cutoff) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING"
            )),
            lock_cutoff: trusted(format!(
                "SELECT cutoff FROM {c} WHERE user_id = $1 FOR UPDATE"
            )),
            // state::cutoff_purgeable: no stored session was created before it.
            purge_cutoffs: trusted(format!(
                "DELETE FROM {c} WHERE NOT EXISTS \
                 (SELECT 1 FROM {s} WHERE {s}.user_id = {c}.user_id AND {s}.created_at_ms < {c}.cutoff)"
            )),
            revoke_user: trusted(format!(
                "UPDATE {s} SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL"
            )),
            read_revocation: trusted(format!(
                "SELECT s.user_id, s.revoked_at, c.cutoff, s.created_at_ms FROM {s} s \
                 LEFT JOIN {c} c ON c.user_id = s.user_id WHERE s.session_id = $1"
            )),
            list_sessions: trusted(format!(
                "SELECT s.user_id, s.revoked_at, s.expires_at, s.live_jti, s.live_parent, \
                 t.used_at, t.expires_at, s.session_id, s.created_at, s.last_rotated_at, s.label \
                 FROM {s} s LEFT JOIN {t} t ON t.jti = s.live_jti \
                 WHERE s.user_id = $1 ORDER BY s.created_at, s.session_id"
            )),
            // state::session_purgeable: now >= expires_at.
            purge_pick_sessions: trusted(format!(
                "SELECT session_id FROM {s} WHERE expires_at <= $1 LIMIT $2 FOR UPDATE"
            )),
            purge_tokens_of: trusted(format!("DELETE FROM {t} WHERE session_id IN ({ids})")),
            purge_sessions: trusted(format!("DELETE FROM {s} WHERE session_id IN ({ids})")),
            // state::token_purgeable: unused, and now >= expires_at.
            purge_tokens: trusted(format!(
                "DELETE FROM {t} WHERE jti IN \
                 (SELECT jti FROM {t} WHERE used_at IS NULL AND expires_at <= $1 LIMIT $2)"
            )),
            create_versions: trusted(format!(
                "CREATE TABLE IF NOT EXISTS {v} (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)"
            )),
            applied_versions: trusted(format!("SELECT version FROM {v}")),
            record_version: trusted(format!(
                "INSERT INTO {v} (version, applied_at) VALUES ($1, $2)"
            )),
        }
    }

    fn user_lookup(table: &str, id: &str, active: Option<&str>) -> String {
        match active {
            Some(a) => format!("SELECT (CAST({a} AS INTEGER) <> 0) FROM {table} WHERE {id} = $1"),
            None => format!("SELECT 1 FROM {table} WHERE {id} = $1"),
        }
    }

    fn is_retryable(err: &dyn DatabaseError) -> bool {
        // serialization_failure, deadlock_detected, lock_not_available
        matches!(err.code().as_deref(), Some("40001" | "40P01" | "55P03"))
    }

    async fn open(url: &str) -> Result<PgPool, StoreError> {
        server_pool(url, "PostgreSQL").await
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
