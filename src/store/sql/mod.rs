//! SQL token stores on [sqlx](https://docs.rs/sqlx): [`SqliteStore`] (feature
//! `sqlite`), [`PgStore`] (`postgres`) and [`MySqlStore`] (`mysql`, MySQL 8 and
//! MariaDB), and the SQL user resolver [`SqlUsers`].
//!
//! # Tables
//!
//! The stores keep four tables beside the app's own, each named with a
//! configurable prefix ([`SqlStoreOptions::table_prefix`], `jwt_auth_` by
//! default): `{prefix}sessions`, `{prefix}refresh_tokens`,
//! `{prefix}user_cutoffs` and `{prefix}schema_versions`. They are created by the
//! migrations shipped with the crate, applied when the app calls `migrate()` on
//! the store (idempotent, safe to call from several instances at once).
//!
//! No token text is stored: `jti`s, session ids, the user id value and times
//! (integer seconds since the epoch). Users are keyed by the value of the app's
//! configured id field, as a string; the stores never refer to the app's users
//! table, so a UUID id field beside an integer primary key works like any other.
//!
//! # Rotation
//!
//! Each rotation is one transaction: the session row is locked
//! (`SELECT ... FOR UPDATE`; on SQLite the write lock is taken by
//! `BEGIN IMMEDIATE`), the presented token is read,
//! [`rotation::decide`](crate::store::rotation::decide) rules, and the decision is
//! applied with conditional writes whose row counts are checked
//! (`UPDATE ... WHERE jti = ? AND used_at IS NULL`). A unique index holds at most
//! one unused refresh token per session, so even a bug cannot fork a session
//! silently. Serialization failures, deadlocks and busy databases are retried a
//! bounded number of times ([`SqlStoreOptions::max_retries`]); after that, and
//! on any connection failure, the store answers a [`StoreError`] (503). An
//! outcome is answered only after its transaction committed.
//!
//! # Purge
//!
//! [`TokenStore::purge_expired`](crate::TokenStore::purge_expired) deletes in
//! batches of [`SqlStoreOptions::purge_batch_size`] rows, one short transaction
//! each, so it never holds a lock on the tables for long.

#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports, unused_macros)
)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::AssertSqlSafe;

use crate::error::{ConfigError, StoreError};

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod users;

#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use users::{IdType, SqlUserId, SqlUsers, SqlUsersBuilder};

/// The default table prefix.
pub const DEFAULT_TABLE_PREFIX: &str = "jwt_auth_";

/// The longest table-name suffix the stores append to the prefix.
const LONGEST_SUFFIX: usize = "schema_versions".len();

/// The longest identifier every supported database accepts (PostgreSQL: 63 bytes).
const MAX_IDENT: usize = 63;

/// Settings shared by the SQL token stores: table prefix, retries, timeouts and
/// purge batch size.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::store::sql::SqlStoreOptions;
/// let options = SqlStoreOptions::new()
///     .table_prefix("auth_")
///     .max_retries(5)
///     .operation_timeout(Duration::from_secs(5))
///     .purge_batch_size(1000);
/// assert_eq!(options.get_table_prefix(), "auth_");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStoreOptions {
    table_prefix: String,
    max_retries: u32,
    operation_timeout: Duration,
    purge_batch_size: u32,
}

impl Default for SqlStoreOptions {
    fn default() -> Self {
        SqlStoreOptions {
            table_prefix: DEFAULT_TABLE_PREFIX.to_owned(),
            max_retries: 5,
            operation_timeout: Duration::from_secs(5),
            purge_batch_size: 1000,
        }
    }
}

impl SqlStoreOptions {
    /// The defaults: prefix `jwt_auth_`, 5 retries, a 5 s operation timeout,
    /// purge batches of 1000 rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// The prefix of the store's table names: ASCII letters, digits and `_`,
    /// not starting with a digit, at most 48 bytes (may be empty). Checked when
    /// the store is built.
    pub fn table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.table_prefix = prefix.into();
        self
    }

    /// How many times a transaction that lost to a concurrent one (serialization
    /// failure, deadlock, busy database) is retried before the store gives up
    /// with a [`StoreError`] (503).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest one store operation (retries included) may take before it
    /// fails with a [`StoreError`]: a database that stopped answering gives a 503,
    /// not a hung request.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How many rows (sessions, or tokens) one purge transaction deletes.
    pub fn purge_batch_size(mut self, rows: u32) -> Self {
        self.purge_batch_size = rows;
        self
    }

    /// The table prefix.
    pub fn get_table_prefix(&self) -> &str {
        &self.table_prefix
    }

    /// The retry bound.
    pub fn get_max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The operation timeout.
    pub fn get_operation_timeout(&self) -> Duration {
        self.operation_timeout
    }

    /// The purge batch size.
    pub fn get_purge_batch_size(&self) -> u32 {
        self.purge_batch_size
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.table_prefix;
        let ok_chars = p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let ok_start = p.bytes().next().is_none_or(|b| !b.is_ascii_digit());
        if !ok_chars || !ok_start || p.len() + LONGEST_SUFFIX > MAX_IDENT {
            return Err(ConfigError::BadName(p.clone()));
        }
        if self.operation_timeout.is_zero() {
            return Err(ConfigError::BadLifetime(
                "the SQL store's operation timeout must not be zero",
            ));
        }
        if self.purge_batch_size == 0 || self.purge_batch_size > 10_000 {
            return Err(ConfigError::BadLifetime(
                "the purge batch size must be between 1 and 10000",
            ));
        }
        Ok(())
    }
}

/// The names of a store's tables (with the prefix, unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// One row a session (token family): user id value, times, the live token.
    pub sessions: String,
    /// One row a refresh token: `jti`, session, parent, times; no token text.
    pub refresh_tokens: String,
    /// Per user: tokens issued before the cutoff are revoked (revoke-all).
    pub user_cutoffs: String,
    /// The migrations applied.
    pub schema_versions: String,
}

impl TableNames {
    fn new(prefix: &str) -> Self {
        TableNames {
            sessions: format!("{prefix}sessions"),
            refresh_tokens: format!("{prefix}refresh_tokens"),
            user_cutoffs: format!("{prefix}user_cutoffs"),
            schema_versions: format!("{prefix}schema_versions"),
        }
    }
}

/// Checks that `name` is a plain SQL identifier: ASCII letters, digits and `_`,
/// not starting with a digit, 1 to 63 bytes. Such a name can be quoted and put
/// into SQL text without any escaping.
pub(crate) fn validate_ident(name: &str) -> Result<(), ConfigError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_IDENT
        && !bytes.first().is_some_and(u8::is_ascii_digit)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadName(name.to_owned()))
    }
}

/// The SQL dialects the stores speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    MySql,
}

impl Dialect {
    /// Quotes a name already checked by [`validate_ident`].
    pub(crate) fn quote(self, ident: &str) -> String {
        match self {
            Dialect::MySql => format!("`{ident}`"),
            Dialect::Sqlite | Dialect::Postgres => format!("\"{ident}\""),
        }
    }

    /// Rewrites `$1`, `$2`... into the dialect's placeholders. MySQL's `?` are
    /// positional, so templates use each parameter once, in order.
    pub(crate) fn placeholders(self, sql: &str) -> String {
        match self {
            Dialect::Postgres => sql.to_owned(),
            Dialect::Sqlite | Dialect::MySql => {
                let mut out = String::with_capacity(sql.len());
                let mut chars = sql.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                        out.push('?');
                        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                            if self == Dialect::Sqlite {
                                out.push(d);
                            }
                            chars.next();
                        }
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// The statement that opens a write transaction. SQLite takes its write lock
    /// at once, so two rotations never both read before one writes.
    pub(crate) fn begin(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres | Dialect::MySql => "BEGIN",
        }
    }

    /// Whether a failed transaction lost a race and may simply run again.
    pub(crate) fn is_retryable(self, err: &sqlx::Error) -> bool {
        let Some(db) = err.as_database_error() else {
            return false;
        };
        let code = db.code();
        let code = code.as_deref().unwrap_or("");
        match self {
            // serialization_failure, deadlock_detected, lock_not_available
            Dialect::Postgres => matches!(code, "40001" | "40P01" | "55P03"),
            // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes
            Dialect::Sqlite => code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)),
            // ER_LOCK_DEADLOCK (SQLSTATE 40001) and ER_LOCK_WAIT_TIMEOUT
            Dialect::MySql => code == "40001" || mysql_lock_wait_timeout(db),
        }
    }

    fn migrations(self) -> &'static [(i64, &'static str)] {
        match self {
            Dialect::Sqlite => &[(1, include_str!("migrations/sqlite/0001_initial.sql"))],
            Dialect::Postgres => &[(1, include_str!("migrations/postgres/0001_initial.sql"))],
            Dialect::MySql => &[(1, include_str!("migrations/mysql/0001_initial.sql"))],
        }
    }
}

/// MySQL's lock wait timeout (1205), which rolls back only the statement: the
/// transaction is abandoned and run again.
fn mysql_lock_wait_timeout(db: &dyn sqlx::error::DatabaseError) -> bool {
    #[cfg(feature = "mysql")]
    {
        db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|e| e.number() == 1205)
    }
    #[cfg(not(feature = "mysql"))]
    {
        let _ = db;
        false
    }
}

/// The statements of every store operation, rendered once for a dialect and a
/// table prefix.
#[derive(Debug)]
pub(crate) struct Queries {
    pub(crate) begin: &'static str,
    pub(crate) insert_session: Arc<str>,
    pub(crate) insert_token: Arc<str>,
    pub(crate) lock_session: Arc<str>,
    pub(crate) read_token: Arc<str>,
    pub(crate) mark_used: Arc<str>,
    pub(crate) move_live: Arc<str>,
    pub(crate) revoke_session: Arc<str>,
    pub(crate) upsert_cutoff: Arc<str>,
    pub(crate) revoke_user: Arc<str>,
    pub(crate) is_revoked: Arc<str>,
    pub(crate) list_sessions: Arc<str>,
    pub(crate) purge_pick_sessions: Arc<str>,
    pub(crate) purge_tokens_of: Arc<str>,
    pub(crate) purge_sessions: Arc<str>,
    pub(crate) purge_tokens: Arc<str>,
    pub(crate) create_versions: Arc<str>,
    pub(crate) applied_versions: Arc<str>,
    pub(crate) record_version: Arc<str>,
}

impl Queries {
    fn new(d: Dialect, tables: &TableNames, purge_batch: u32) -> Self {
        let s = d.quote(&tables.sessions);
        let t = d.quote(&tables.refresh_tokens);
        let c = d.quote(&tables.user_cutoffs);
        let v = d.quote(&tables.schema_versions);
        let render = |sql: &str| -> Arc<str> {
            d.placeholders(
                &sql.replace("{s}", &s)
                    .replace("{t}", &t)
                    .replace("{c}", &c)
                    .replace("{v}", &v),
            )
            .into()
        };
        // Row locks: SQLite has none (its write lock is taken by BEGIN IMMEDIATE).
        let for_update = if d == Dialect::Sqlite {
            ""
        } else {
            " FOR UPDATE"
        };
        // MySQL's plain SELECT reads the transaction's snapshot; a locking read
        // sees the latest committed row. PostgreSQL's READ COMMITTED statement
        // snapshot is taken after the session lock was granted, so it is current.
        let token_lock = if d == Dialect::MySql {
            " FOR UPDATE"
        } else {
            ""
        };
        let upsert_cutoff = match d {
            Dialect::Postgres => {
                "INSERT INTO {c} (user_id, cutoff) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET cutoff = GREATEST({c}.cutoff, EXCLUDED.cutoff)"
            }
            Dialect::Sqlite => {
                "INSERT INTO {c} (user_id, cutoff) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET cutoff = MAX(cutoff, excluded.cutoff)"
            }
            Dialect::MySql => {
                "INSERT INTO {c} (user_id, cutoff) VALUES ($1, $2) \
                 ON DUPLICATE KEY UPDATE cutoff = GREATEST(cutoff, VALUES(cutoff))"
            }
        };
        let purge_tokens = match d {
            Dialect::MySql => "DELETE FROM {t} WHERE used_at IS NULL AND expires_at <= $1 LIMIT $2",
            Dialect::Postgres | Dialect::Sqlite => {
                "DELETE FROM {t} WHERE jti IN \
                 (SELECT jti FROM {t} WHERE used_at IS NULL AND expires_at <= $1 LIMIT $2)"
            }
        };
        // A fixed number of parameters (the batch size; short batches repeat an
        // id), so the statement is prepared once per connection.
        let in_list = (1..=purge_batch)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        Queries {
            begin: d.begin(),
            insert_session: render(
                "INSERT INTO {s} (session_id, user_id, created_at, last_rotated_at, expires_at, live_jti, label) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            ),
            insert_token: render(
                "INSERT INTO {t} (jti, session_id, parent_jti, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            ),
            lock_session: render(&format!(
                "SELECT user_id, revoked_at, expires_at, live_jti, live_parent FROM {{s}} \
                 WHERE session_id = $1{for_update}"
            )),
            read_token: render(&format!(
                "SELECT used_at, expires_at FROM {{t}} WHERE jti = $1 AND session_id = $2{token_lock}"
            )),
            mark_used: render(
                "UPDATE {t} SET used_at = $1, successor_jti = $2 \
                 WHERE jti = $3 AND session_id = $4 AND used_at IS NULL",
            ),
            move_live: render(
                "UPDATE {s} SET live_jti = $1, live_parent = $2, last_rotated_at = $3 \
                 WHERE session_id = $4 AND revoked_at IS NULL",
            ),
            revoke_session: render(
                "UPDATE {s} SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL",
            ),
            upsert_cutoff: render(upsert_cutoff),
            revoke_user: render(
                "UPDATE {s} SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            ),
            is_revoked: render(
                "SELECT s.user_id, s.revoked_at, c.cutoff FROM {s} s \
                 LEFT JOIN {c} c ON c.user_id = s.user_id WHERE s.session_id = $1",
            ),
            list_sessions: render(
                "SELECT s.session_id, s.user_id, s.created_at, s.last_rotated_at, s.expires_at, s.label \
                 FROM {s} s JOIN {t} t ON t.jti = s.live_jti \
                 WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
                 AND t.used_at IS NULL AND t.expires_at > $3 \
                 ORDER BY s.created_at, s.session_id",
            ),
            purge_pick_sessions: render(&format!(
                "SELECT session_id FROM {{s}} WHERE expires_at <= $1 LIMIT $2{for_update}"
            )),
            purge_tokens_of: render(&format!(
                "DELETE FROM {{t}} WHERE session_id IN ({in_list})"
            )),
            purge_sessions: render(&format!(
                "DELETE FROM {{s}} WHERE session_id IN ({in_list})"
            )),
            purge_tokens: render(purge_tokens),
            create_versions: render(
                "CREATE TABLE IF NOT EXISTS {v} (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)",
            ),
            applied_versions: render("SELECT version FROM {v}"),
            record_version: render("INSERT INTO {v} (version, applied_at) VALUES ($1, $2)"),
        }
    }
}

/// What a store transaction can fail with.
#[derive(Debug)]
pub(crate) enum TxError {
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

/// What every SQL store shares: dialect, rendered statements, options.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) dialect: Dialect,
    pub(crate) q: Queries,
    pub(crate) tables: TableNames,
    pub(crate) options: SqlStoreOptions,
}

impl Core {
    /// Renders the statements; `options` must have passed validation (the
    /// defaults always do).
    pub(crate) fn new(dialect: Dialect, options: SqlStoreOptions) -> Self {
        let tables = TableNames::new(&options.table_prefix);
        let q = Queries::new(dialect, &tables, options.purge_batch_size);
        Core {
            dialect,
            q,
            tables,
            options,
        }
    }

    /// Validates `options`, then renders.
    pub(crate) fn checked(dialect: Dialect, options: SqlStoreOptions) -> Result<Self, ConfigError> {
        options.validate()?;
        Ok(Self::new(dialect, options))
    }

    /// The statement `sql` as sqlx takes it. Every statement was rendered from
    /// the crate's own templates and identifiers checked by [`validate_ident`].
    pub(crate) fn sql(sql: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
        AssertSqlSafe(sql.clone())
    }

    /// The migration statements, rendered for this store's prefix, by version.
    pub(crate) fn migrations(&self) -> Vec<(i64, Vec<String>)> {
        self.dialect
            .migrations()
            .iter()
            .map(|(version, text)| {
                let text = text.replace("{p}", &self.options.table_prefix);
                let statements = text
                    .split(';')
                    .map(|s| {
                        s.lines()
                            .filter(|l| !l.trim_start().starts_with("--"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                (*version, statements)
            })
            .collect()
    }

    /// A key naming this store's tables, for the databases' migration locks.
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    pub(crate) fn lock_key(&self) -> String {
        format!("tower_jwt_auth:{}", self.options.table_prefix)
    }

    /// Runs `op` (one transaction), retrying it when it lost a race, within the
    /// operation timeout. Every failure becomes a [`StoreError`] (503); none is
    /// ever reported as a token outcome.
    pub(crate) async fn run<T, F, Fut>(
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
                    TxError::Db(e) => self.dialect.is_retryable(e),
                    TxError::Conflict(_) => true,
                };
                if !retry || attempt >= self.options.max_retries {
                    return Err(match err {
                        TxError::Db(e) => StoreError::with_source(format!("{what} failed"), e),
                        TxError::Conflict(why) => StoreError::new(format!("{what} failed: {why}")),
                    });
                }
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
        };
        match tokio::time::timeout(self.options.operation_timeout, attempts).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::new(format!("{what} timed out"))),
        }
    }
}

/// A short, jittered, growing pause before retry `attempt` (1-based): about
/// 2, 4, 8, 16, 32 ms, each plus up to as much again at random.
fn backoff(attempt: u32) -> Duration {
    let base_us = 1000u64 << attempt.min(8);
    let jitter = (uuid::Uuid::new_v4().as_u128() as u64) % base_us;
    Duration::from_micros(base_us + jitter)
}

/// Seconds as the databases keep them (BIGINT). Seconds since the epoch fit;
/// anything past `i64::MAX` is clamped rather than wrapped.
pub(crate) fn to_db(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Seconds read back; a negative value (never written by the store) reads as 0.
pub(crate) fn from_db(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0)
}

/// Implements [`TokenStore`](crate::TokenStore) for a SQL store: the one
/// transaction flow every database runs. The store type has a `pool` field
/// (`sqlx::Pool<DB>`), a `core` field ([`Core`]) and an `async fn writer(&self)`
/// whose guard, held across a write transaction, queues the process's writers
/// (SQLite) or is `None` (databases with row locks); the database's `Uuid`,
/// `i64`, `Option<i64>`, `String` and `Option<String>` mappings do the rest.
macro_rules! impl_sql_token_store {
    ($store:ty) => {
        #[::async_trait::async_trait]
        impl $crate::store::TokenStore for $store {
            async fn create_session(
                &self,
                s: &$crate::store::NewSession,
            ) -> ::std::result::Result<(), $crate::error::StoreError> {
                use $crate::store::sql::{Core, to_db};
                let q = &self.core.q;
                let token_expires_at = s.token_expires_at.min(s.session_expires_at);
                self.core
                    .run("create_session", || async {
                        let _writer = self.writer().await;
                        let mut tx = self.pool.begin_with(q.begin).await?;
                        ::sqlx::query(Core::sql(&q.insert_session))
                            .bind(s.session_id)
                            .bind(s.user_id.as_str())
                            .bind(to_db(s.created_at))
                            .bind(to_db(s.created_at))
                            .bind(to_db(s.session_expires_at))
                            .bind(s.jti)
                            .bind(s.label.as_deref())
                            .execute(&mut *tx)
                            .await?;
                        ::sqlx::query(Core::sql(&q.insert_token))
                            .bind(s.jti)
                            .bind(s.session_id)
                            .bind(None::<::uuid::Uuid>)
                            .bind(to_db(s.created_at))
                            .bind(to_db(token_expires_at))
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        Ok(())
                    })
                    .await
            }

            async fn rotate(
                &self,
                req: &$crate::store::RotateRequest,
            ) -> ::std::result::Result<$crate::store::RotateOutcome, $crate::error::StoreError>
            {
                use ::sqlx::Row as _;
                use $crate::store::rotation::{self, Decision, SessionState, TokenState};
                use $crate::store::sql::{Core, TxError, from_db, to_db};
                let q = &self.core.q;
                self.core
                    .run("rotate", || async {
                        let _writer = self.writer().await;
                        let mut tx = self.pool.begin_with(q.begin).await?;
                        // The session row is locked first: every rotation of this
                        // session queues here, so the read below is current.
                        let row = ::sqlx::query(Core::sql(&q.lock_session))
                            .bind(req.session_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                        let Some(row) = row else {
                            tx.rollback().await?;
                            return Ok(rotation::outcome(rotation::decide(None, None, req), None, req));
                        };
                        let mut session = SessionState::new(
                            row.try_get::<String, _>(0)?,
                            row.try_get::<Option<i64>, _>(1)?.is_some(),
                            from_db(row.try_get(2)?),
                            row.try_get(3)?,
                            row.try_get(4)?,
                        );
                        if let Some(live) = session.live_jti {
                            session.live_expires_at = ::sqlx::query(Core::sql(&q.read_token))
                                .bind(live)
                                .bind(req.session_id)
                                .fetch_optional(&mut *tx)
                                .await?
                                .map(|t| t.try_get::<i64, _>(1).map(from_db))
                                .transpose()?;
                        }
                        let token = if session.user_id == req.user_id {
                            ::sqlx::query(Core::sql(&q.read_token))
                                .bind(req.jti)
                                .bind(req.session_id)
                                .fetch_optional(&mut *tx)
                                .await?
                                .map(|t| -> ::std::result::Result<TokenState, ::sqlx::Error> {
                                    Ok(TokenState::new(
                                        t.try_get::<Option<i64>, _>(0)?.map(from_db),
                                        from_db(t.try_get(1)?),
                                    ))
                                })
                                .transpose()?
                        } else {
                            None
                        };
                        let decision = rotation::decide(Some(&session), token.as_ref(), req);
                        let expires_at = rotation::successor_expiry(&session, req);
                        match decision {
                            Decision::Rotate => {
                                // Only one caller can make this write succeed.
                                if let Some(live) = session.live_jti {
                                    let n = ::sqlx::query(Core::sql(&q.mark_used))
                                        .bind(to_db(req.now))
                                        .bind(req.successor_jti)
                                        .bind(live)
                                        .bind(req.session_id)
                                        .execute(&mut *tx)
                                        .await?
                                        .rows_affected();
                                    if n != 1 {
                                        return Err(TxError::Conflict(
                                            "the live token was already used",
                                        ));
                                    }
                                }
                                ::sqlx::query(Core::sql(&q.insert_token))
                                    .bind(req.successor_jti)
                                    .bind(req.session_id)
                                    .bind(Some(req.jti))
                                    .bind(to_db(req.now))
                                    .bind(to_db(expires_at))
                                    .execute(&mut *tx)
                                    .await?;
                                let n = ::sqlx::query(Core::sql(&q.move_live))
                                    .bind(req.successor_jti)
                                    .bind(req.jti)
                                    .bind(to_db(req.now))
                                    .bind(req.session_id)
                                    .execute(&mut *tx)
                                    .await?
                                    .rows_affected();
                                if n != 1 {
                                    return Err(TxError::Conflict(
                                        "the session changed under its lock",
                                    ));
                                }
                            }
                            Decision::Revoke(_) => {
                                let n = ::sqlx::query(Core::sql(&q.revoke_session))
                                    .bind(to_db(req.now))
                                    .bind(req.session_id)
                                    .execute(&mut *tx)
                                    .await?
                                    .rows_affected();
                                if n != 1 {
                                    return Err(TxError::Conflict(
                                        "the session changed under its lock",
                                    ));
                                }
                            }
                            Decision::Redeliver { .. } | Decision::Refuse(_) => {}
                        }
                        // The outcome (a revocation included) is answered only once
                        // it is committed.
                        tx.commit().await?;
                        Ok(rotation::outcome(decision, Some(&session), req))
                    })
                    .await
            }

            async fn revoke_session(
                &self,
                session_id: ::uuid::Uuid,
                now: u64,
            ) -> ::std::result::Result<bool, $crate::error::StoreError> {
                use $crate::store::sql::{Core, to_db};
                let q = &self.core.q;
                self.core
                    .run("revoke_session", || async {
                        let _writer = self.writer().await;
                        let n = ::sqlx::query(Core::sql(&q.revoke_session))
                            .bind(to_db(now))
                            .bind(session_id)
                            .execute(&self.pool)
                            .await?
                            .rows_affected();
                        Ok(n > 0)
                    })
                    .await
            }

            async fn revoke_user(
                &self,
                user_id: &str,
                now: u64,
            ) -> ::std::result::Result<u64, $crate::error::StoreError> {
                use $crate::store::sql::{Core, to_db};
                let q = &self.core.q;
                self.core
                    .run("revoke_user", || async {
                        let _writer = self.writer().await;
                        let mut tx = self.pool.begin_with(q.begin).await?;
                        // The cutoff first: no older token of the user passes the
                        // revocation check once this commits.
                        ::sqlx::query(Core::sql(&q.upsert_cutoff))
                            .bind(user_id)
                            .bind(to_db(now))
                            .execute(&mut *tx)
                            .await?;
                        let n = ::sqlx::query(Core::sql(&q.revoke_user))
                            .bind(to_db(now))
                            .bind(user_id)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        tx.commit().await?;
                        Ok(n)
                    })
                    .await
            }

            async fn is_revoked(
                &self,
                session_id: ::uuid::Uuid,
                user_id: &str,
                issued_at: u64,
            ) -> ::std::result::Result<bool, $crate::error::StoreError> {
                use ::sqlx::Row as _;
                use $crate::store::sql::{Core, from_db};
                let q = &self.core.q;
                self.core
                    .run("is_revoked", || async {
                        let row = ::sqlx::query(Core::sql(&q.is_revoked))
                            .bind(session_id)
                            .fetch_optional(&self.pool)
                            .await?;
                        // An unknown session is revoked.
                        let Some(row) = row else { return Ok(true) };
                        let owner: String = row.try_get(0)?;
                        let revoked_at: Option<i64> = row.try_get(1)?;
                        let cutoff: Option<i64> = row.try_get(2)?;
                        Ok(revoked_at.is_some()
                            || owner != user_id
                            || cutoff.is_some_and(|c| issued_at < from_db(c)))
                    })
                    .await
            }

            async fn list_sessions(
                &self,
                user_id: &str,
                now: u64,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::store::SessionInfo>,
                $crate::error::StoreError,
            > {
                use ::sqlx::Row as _;
                use $crate::store::sql::{Core, from_db, to_db};
                let q = &self.core.q;
                self.core
                    .run("list_sessions", || async {
                        let rows = ::sqlx::query(Core::sql(&q.list_sessions))
                            .bind(user_id)
                            .bind(to_db(now))
                            .bind(to_db(now))
                            .fetch_all(&self.pool)
                            .await?;
                        let mut out = ::std::vec::Vec::with_capacity(rows.len());
                        for r in rows {
                            out.push($crate::store::SessionInfo {
                                session_id: r.try_get(0)?,
                                user_id: r.try_get(1)?,
                                created_at: from_db(r.try_get(2)?),
                                last_rotated_at: from_db(r.try_get(3)?),
                                expires_at: from_db(r.try_get(4)?),
                                label: r.try_get(5)?,
                            });
                        }
                        Ok(out)
                    })
                    .await
            }

            async fn purge_expired(
                &self,
                now: u64,
            ) -> ::std::result::Result<u64, $crate::error::StoreError> {
                use ::sqlx::Row as _;
                use $crate::store::sql::{Core, to_db};
                let q = &self.core.q;
                let batch = self.core.options.get_purge_batch_size();
                let mut removed = 0u64;
                // Sessions past their absolute expiry, with all their rows: one
                // short transaction a batch, the session rows locked first (the
                // order rotation locks in).
                loop {
                    let (tokens, sessions) = self
                        .core
                        .run("purge_expired", || async {
                            let _writer = self.writer().await;
                            let mut tx = self.pool.begin_with(q.begin).await?;
                            let ids: ::std::vec::Vec<::uuid::Uuid> =
                                ::sqlx::query(Core::sql(&q.purge_pick_sessions))
                                    .bind(to_db(now))
                                    .bind(i64::from(batch))
                                    .fetch_all(&mut *tx)
                                    .await?
                                    .iter()
                                    .map(|r| r.try_get(0))
                                    .collect::<::std::result::Result<_, _>>()?;
                            let Some(last) = ids.last().copied() else {
                                tx.rollback().await?;
                                return Ok((0, 0));
                            };
                            let padded =
                                || (0..batch as usize).map(|i| ids.get(i).copied().unwrap_or(last));
                            let mut del = ::sqlx::query(Core::sql(&q.purge_tokens_of));
                            for id in padded() {
                                del = del.bind(id);
                            }
                            let tokens = del.execute(&mut *tx).await?.rows_affected();
                            let mut del = ::sqlx::query(Core::sql(&q.purge_sessions));
                            for id in padded() {
                                del = del.bind(id);
                            }
                            del.execute(&mut *tx).await?;
                            tx.commit().await?;
                            Ok((tokens, ids.len()))
                        })
                        .await?;
                    removed += tokens;
                    if sessions < batch as usize {
                        break;
                    }
                    ::tokio::task::yield_now().await;
                }
                // Unused tokens past their own expiry in live sessions (used rows
                // stay until their session expires, so a late replay is reuse).
                loop {
                    let n = self
                        .core
                        .run("purge_expired", || async {
                            let _writer = self.writer().await;
                            Ok(::sqlx::query(Core::sql(&q.purge_tokens))
                                .bind(to_db(now))
                                .bind(i64::from(batch))
                                .execute(&self.pool)
                                .await?
                                .rows_affected())
                        })
                        .await?;
                    removed += n;
                    if n < u64::from(batch) {
                        break;
                    }
                    ::tokio::task::yield_now().await;
                }
                Ok(removed)
            }
        }
    };
}
pub(crate) use impl_sql_token_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_per_dialect() {
        let sql = "UPDATE t SET a = $1, b = $2 WHERE c = $10 AND d = '$x'";
        assert_eq!(Dialect::Postgres.placeholders(sql), sql);
        assert_eq!(
            Dialect::Sqlite.placeholders(sql),
            "UPDATE t SET a = ?1, b = ?2 WHERE c = ?10 AND d = '$x'"
        );
        assert_eq!(
            Dialect::MySql.placeholders(sql),
            "UPDATE t SET a = ?, b = ? WHERE c = ? AND d = '$x'"
        );
    }

    #[test]
    fn identifiers() {
        for ok in ["users", "Users_2", "_x", &"a".repeat(63)] {
            assert!(validate_ident(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "a-b",
            "a b",
            "a;b",
            "a\"b",
            "a`b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(validate_ident(bad).is_err(), "{bad}");
        }
        assert_eq!(Dialect::MySql.quote("users"), "`users`");
        assert_eq!(Dialect::Postgres.quote("users"), "\"users\"");
    }

    #[test]
    fn options_are_validated() {
        assert!(SqlStoreOptions::new().validate().is_ok());
        assert!(SqlStoreOptions::new().table_prefix("").validate().is_ok());
        assert!(
            SqlStoreOptions::new()
                .table_prefix("a".repeat(48))
                .validate()
                .is_ok()
        );
        assert!(
            SqlStoreOptions::new()
                .table_prefix("a".repeat(49))
                .validate()
                .is_err()
        );
        assert!(
            SqlStoreOptions::new()
                .table_prefix("x;")
                .validate()
                .is_err()
        );
        assert!(
            SqlStoreOptions::new()
                .purge_batch_size(10_001)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn migrations_render_for_the_prefix() {
        for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql] {
            let core = Core::new(d, SqlStoreOptions::new().table_prefix("app_"));
            let migrations = core.migrations();
            assert_eq!(migrations.len(), 1);
            let statements = &migrations[0].1;
            assert!(statements.len() >= 3, "{d:?}");
            for s in statements {
                assert!(!s.contains("{p}") && !s.contains("--"), "{d:?}: {s}");
                assert!(s.starts_with("CREATE "), "{d:?}: {s}");
            }
            assert!(statements.iter().any(|s| s.contains("app_refresh_tokens")));
            // Every rendered statement names this prefix's tables only.
            assert!(core.q.is_revoked.contains("app_sessions"));
            assert!(!core.q.lock_session.contains('$') || d == Dialect::Postgres);
        }
    }

    #[test]
    fn time_conversions_clamp() {
        assert_eq!(to_db(u64::MAX), i64::MAX);
        assert_eq!(from_db(-5), 0);
        assert_eq!(from_db(to_db(1_700_000_000)), 1_700_000_000);
    }
}
