//! SQL token stores on [sqlx](https://docs.rs/sqlx): [`SqliteStore`] (feature
//! `sqlite`), [`PgStore`] (`postgres`) and [`MySqlStore`] (`mysql`, MySQL 8 and
//! MariaDB), and the SQL user resolver [`SqlUsers`].
//!
//! The three stores are one type, [`SqlStore`], on three databases
//! ([`SqlDatabase`]): the transactions, rotation, purge and migrations are
//! written once; each database's file holds only what differs there (its
//! statements, written out in its own placeholder syntax, its locks, its
//! retryable errors, its pool).
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
//! on any connection failure, the store answers a
//! [`StoreError`](crate::StoreError) (503). An outcome is answered only after
//! its transaction committed.
//!
//! # Purge
//!
//! [`TokenStore::purge_expired`](crate::TokenStore::purge_expired) deletes in
//! batches of [`SqlStoreOptions::purge_batch_size`] rows, one short transaction
//! each, so it never holds a lock on the tables for long. The deletes stay in
//! SQL, in bulk; their `WHERE` clauses are the translations of
//! [`state::session_purgeable`](crate::store::state::session_purgeable) and
//! [`state::token_purgeable`](crate::store::state::token_purgeable). Everything
//! else the stores read comes back to Rust and is judged by
//! [`state`](crate::store::state) and [`rotation`](crate::store::rotation).
//!
#![cfg_attr(feature = "sqlite", doc = "[`SqliteStore`]: crate::SqliteStore")]
#![cfg_attr(
    not(feature = "sqlite"),
    doc = "[`SqliteStore`]: https://docs.rs/tower-jwt-auth/latest/tower_jwt_auth/type.SqliteStore.html"
)]
#![cfg_attr(feature = "postgres", doc = "[`PgStore`]: crate::PgStore")]
#![cfg_attr(
    not(feature = "postgres"),
    doc = "[`PgStore`]: https://docs.rs/tower-jwt-auth/latest/tower_jwt_auth/type.PgStore.html"
)]
#![cfg_attr(feature = "mysql", doc = "[`MySqlStore`]: crate::MySqlStore")]
#![cfg_attr(
    not(feature = "mysql"),
    doc = "[`MySqlStore`]: https://docs.rs/tower-jwt-auth/latest/tower_jwt_auth/type.MySqlStore.html"
)]
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports)
)]

// The store, written once for every database: `store` (the type, how an
// operation runs), `tx` (the connection an operation holds, its transaction),
// `token_store` (the `TokenStore` calls), `purge`, `migrate`.
// What differs per database: `dialect` (the trait), `statements` (what each
// statement binds), `postgres`, `mysql`, `sqlite`. sqlx's bounds: `driver`.
mod dialect;
mod driver;
mod log;
mod migrate;
#[cfg(feature = "postgres")]
mod pg_listen;
mod purge;
mod statements;
mod store;
mod token_store;
mod tx;

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod users;

pub use dialect::SqlDatabase;
#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::SqlStore;
pub use users::{IdType, SqlUserId, SqlUsers, SqlUsersBuilder};

use std::time::Duration;

use crate::error::ConfigError;

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
    listen_probe_interval: Duration,
}

impl Default for SqlStoreOptions {
    fn default() -> Self {
        SqlStoreOptions {
            table_prefix: DEFAULT_TABLE_PREFIX.to_owned(),
            max_retries: 5,
            operation_timeout: Duration::from_secs(5),
            purge_batch_size: 1000,
            listen_probe_interval: Duration::from_secs(30),
        }
    }
}

impl SqlStoreOptions {
    /// The defaults: prefix `jwt_auth_`, 5 retries, a 5 s operation timeout,
    /// purge batches of 1000 rows, the `LISTEN` connection probed after 30 s
    /// of silence.
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
    /// with a [`StoreError`](crate::StoreError) (503).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest one store operation (retries included) may take before it
    /// fails with a [`StoreError`](crate::StoreError): a database that stopped
    /// answering gives a 503, not a hung request.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How many rows (sessions, or tokens) one purge transaction deletes.
    pub fn purge_batch_size(mut self, rows: u32) -> Self {
        self.purge_batch_size = rows;
        self
    }

    /// PostgreSQL: how long the revocation view's `LISTEN` connection may be
    /// silent before it is sent a `NOTIFY` on a channel of its own; one that
    /// has not heard it within the same time again is taken for hung (a flow
    /// dropped by a firewall or NAT without a word) and replaced, so the view
    /// gets its push back. Until then it reads the log every poll interval:
    /// nothing is missed, only later. Other databases ignore it.
    pub fn listen_probe_interval(mut self, interval: Duration) -> Self {
        self.listen_probe_interval = interval;
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

    /// The `LISTEN` probe interval.
    pub fn get_listen_probe_interval(&self) -> Duration {
        self.listen_probe_interval
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.table_prefix;
        let ok_chars = p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let ok_start = p.bytes().next().is_none_or(|b| !b.is_ascii_digit());
        if !ok_chars || !ok_start || p.len() + LONGEST_SUFFIX > MAX_IDENT {
            return Err(ConfigError::BadName(p.clone()));
        }
        if self.listen_probe_interval.is_zero() {
            return Err(ConfigError::BadLifetime(
                "the LISTEN probe interval must not be zero",
            ));
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
    /// The revocation log, in order (schema version 3): what the instances'
    /// revocation views follow.
    pub revocations: String,
}

impl TableNames {
    fn new(prefix: &str) -> Self {
        TableNames {
            sessions: format!("{prefix}sessions"),
            refresh_tokens: format!("{prefix}refresh_tokens"),
            user_cutoffs: format!("{prefix}user_cutoffs"),
            schema_versions: format!("{prefix}schema_versions"),
            revocations: format!("{prefix}revocations"),
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

/// Seconds as the databases keep them (BIGINT). Seconds since the epoch fit;
/// anything past `i64::MAX` is clamped rather than wrapped.
pub(crate) fn to_db(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Seconds read back; a negative value (never written by the store) reads as 0.
pub(crate) fn from_db(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::dialect::Dialect;
    use super::statements::Quoted;
    use super::*;

    /// Every statement of `DB`, on the tables of prefix `app_`.
    fn statements_of<DB: Dialect>() -> Vec<String> {
        let tables = TableNames::new("app_");
        let sql = DB::statements(&Quoted::new::<DB>(&tables), 3);
        sql.all().iter().map(|s| s.as_str().to_owned()).collect()
    }

    /// Each database's statements are written in its own placeholder syntax,
    /// and name this prefix's tables.
    fn placeholders_of<DB: Dialect>(own: &str, foreign: &str) {
        let statements = statements_of::<DB>();
        assert!(statements.iter().any(|s| s.contains(own)));
        for s in &statements {
            assert!(!s.contains(foreign), "{s}");
            assert!(!s.contains("{"), "{s}");
        }
        assert!(statements.iter().any(|s| s.contains("app_sessions")));
        assert!(statements.iter().any(|s| s.contains("app_refresh_tokens")));
    }

    #[test]
    fn placeholders_per_dialect() {
        #[cfg(feature = "postgres")]
        placeholders_of::<sqlx::Postgres>("$1", "?");
        #[cfg(feature = "sqlite")]
        placeholders_of::<sqlx::Sqlite>("?", "$");
        #[cfg(feature = "mysql")]
        placeholders_of::<sqlx::MySql>("?", "$");
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
        #[cfg(feature = "mysql")]
        assert_eq!(<sqlx::MySql as Dialect>::quote("users"), "`users`");
        #[cfg(feature = "postgres")]
        assert_eq!(<sqlx::Postgres as Dialect>::quote("users"), "\"users\"");
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
        for zero in [
            SqlStoreOptions::new().operation_timeout(Duration::ZERO),
            SqlStoreOptions::new().listen_probe_interval(Duration::ZERO),
        ] {
            assert!(zero.validate().is_err(), "{zero:?}");
        }
    }

    fn migrations_render_for<DB: Dialect>() {
        let migrations = migrate::render(DB::MIGRATIONS, "app_");
        let versions: Vec<i64> = migrations.iter().map(|m| m.0).collect();
        assert_eq!(versions, [1, 2, 3], "{}", DB::STORE);
        for (version, statements) in &migrations {
            assert!(statements.len() >= 3, "{} v{version}", DB::STORE);
            for s in statements {
                let s = s.as_str();
                assert!(
                    !s.contains("{p}") && !s.contains("--"),
                    "{}: {s}",
                    DB::STORE
                );
                // Version 1 creates, version 2 alters and converts, version 3
                // creates the revocation log and fills it.
                let verbs: &[&str] = match *version {
                    1 => &["CREATE "],
                    2 => &["ALTER TABLE ", "UPDATE "],
                    _ => &["CREATE ", "INSERT INTO "],
                };
                assert!(verbs.iter().any(|v| s.starts_with(v)), "{}: {s}", DB::STORE);
                assert!(s.contains("app_"), "{}: {s}", DB::STORE);
            }
        }
    }

    /// The whole schema renders to creations only, for the prefix.
    fn schema_renders_for<DB: Dialect>() {
        let schema = migrate::render(&[(0, DB::SCHEMA)], "app_");
        assert!(schema[0].1.len() >= 3, "{}", DB::STORE);
        for s in &schema[0].1 {
            let s = s.as_str();
            assert!(
                !s.contains("{p}") && !s.contains("--"),
                "{}: {s}",
                DB::STORE
            );
            assert!(
                s.starts_with("CREATE ") && s.contains("app_"),
                "{}: {s}",
                DB::STORE
            );
        }
    }

    #[test]
    fn migrations_render_for_the_prefix() {
        #[cfg(feature = "sqlite")]
        migrations_render_for::<sqlx::Sqlite>();
        #[cfg(feature = "postgres")]
        migrations_render_for::<sqlx::Postgres>();
        #[cfg(feature = "mysql")]
        migrations_render_for::<sqlx::MySql>();
        #[cfg(feature = "sqlite")]
        schema_renders_for::<sqlx::Sqlite>();
        #[cfg(feature = "postgres")]
        schema_renders_for::<sqlx::Postgres>();
        #[cfg(feature = "mysql")]
        schema_renders_for::<sqlx::MySql>();
    }

    #[test]
    fn postgres_placeholders_are_numbered_in_order() {
        #[cfg(feature = "postgres")]
        {
            let statements = statements_of::<sqlx::Postgres>();
            let insert = statements
                .iter()
                .find(|s| s.starts_with("INSERT INTO \"app_sessions\""))
                .unwrap();
            assert!(insert.ends_with("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"));
            let purge = statements
                .iter()
                .find(|s| s.starts_with("DELETE FROM \"app_sessions\" WHERE session_id IN"))
                .unwrap();
            assert!(purge.ends_with("($1, $2, $3)"), "{purge}");
        }
    }

    #[test]
    fn time_conversions_clamp() {
        assert_eq!(to_db(u64::MAX), i64::MAX);
        assert_eq!(from_db(-5), 0);
        assert_eq!(from_db(to_db(1_700_000_000)), 1_700_000_000);
    }
}
