//! [`Dialect`]: everything the SQL store does differently on PostgreSQL, MySQL
//! and SQLite, as one trait implemented in `postgres.rs`, `mysql.rs` and
//! `sqlite.rs`; and [`SqlDatabase`], its public, sealed name.
//!
//! The store's logic (transactions, rotation, purge, migrations) is written once,
//! generic over the dialect, in `store.rs`, `token_store.rs` and `migrate.rs`;
//! a dialect only supplies text, constants and the few calls that have no
//! common form (a pool's settings, a migration lock, a retryable error code).

// Sealed: public in name only, so that the public `SqlDatabase` can extend it.
#![allow(unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::{Pool, SqlStr};
use uuid::Uuid;

use super::driver::{Column, Driver};
use super::statements::{Quoted, Statements};
use super::store::TxError;
use super::tx::TxSql;
use crate::error::StoreError;

/// What differs between the databases the SQL store runs on; and the value
/// types each binds and reads back: ids, optional ids, times, optional times,
/// user ids, labels and "active" flags.
pub trait Dialect:
    Driver
    + Column<Uuid>
    + Column<Option<Uuid>>
    + Column<i64>
    + Column<Option<i64>>
    + Column<String>
    + Column<Option<String>>
    + Column<Option<bool>>
    + Sync
{
    /// The store's name, as its `Debug` output shows it.
    const STORE: &'static str;

    /// The statement that opens a migration's transaction. SQLite takes its
    /// write lock at once (`BEGIN IMMEDIATE`), so two writers never both read
    /// before one writes.
    const BEGIN: SqlStr;

    /// Whether the database runs in this process (SQLite): a transaction
    /// abandoned on one of its connections is rolled back there, by sqlx, and
    /// the connection goes back to the pool. A server's connection is closed
    /// instead (see `tx.rs`).
    const LOCAL: bool;

    /// Whether this process's writers queue on one lock before they open a
    /// transaction: SQLite has one writer at a time, and a queue beats polling
    /// the busy handler. Databases with row locks order writers themselves.
    const ONE_WRITER: bool;

    /// Whether a UUID id column of the app's users table is a native UUID
    /// (PostgreSQL) rather than the UUID's hyphenated text.
    const NATIVE_UUID: bool;

    /// The schema migrations, by version; `{p}` stands for the table prefix.
    const MIGRATIONS: &'static [(i64, &'static str)];

    /// The latest schema whole, for an empty database (one step instead of
    /// every migration in turn); `{p}` stands for the table prefix.
    const SCHEMA: &'static str;

    /// The character that quotes identifiers.
    const QUOTE: char;

    /// The store's statements on the tables `n`, with purge batches of
    /// `purge_batch` rows.
    fn statements(n: &Quoted, purge_batch: u32) -> Statements;

    /// The statements that open and commit each store transaction, with the
    /// server-side bounds derived from the operation `timeout` (lock waits,
    /// statements, an open transaction left idle), so that the database itself
    /// ends what a client abandons. Asked once per store, on its first
    /// connection (`conn`), which may be asked what server it is.
    fn transaction_sql(
        conn: &mut Self::Connection,
        timeout: Duration,
    ) -> impl Future<Output = Result<TxSql, sqlx::Error>> + Send;

    /// The [`SqlUsers`](super::SqlUsers) lookup: `id` bound; selects whether the
    /// user is active (`active`'s value), or 1 when there is no such column.
    /// This is the text MySQL and SQLite share; PostgreSQL has its own.
    fn user_lookup(table: &str, id: &str, active: Option<&str>) -> String {
        match active {
            Some(a) => format!("SELECT ({a} <> 0) FROM {table} WHERE {id} = ?"),
            None => format!("SELECT 1 FROM {table} WHERE {id} = ?"),
        }
    }

    /// Whether a transaction that failed with `err` lost a race (serialization
    /// failure, deadlock, busy database) and may simply run again.
    fn is_retryable(err: &dyn DatabaseError) -> bool;

    /// Returns when the store's revocation log may have a new entry, or after
    /// `timeout`: polling (sleeps `timeout`) unless the database can push.
    fn wait_for_revocations(
        store: &super::SqlStore<Self>,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send
    where
        Self: Sized,
    {
        let _ = store;
        async move {
            tokio::time::sleep(timeout).await;
            Ok(())
        }
    }

    /// Whether a migration statement failed with `err` only because it had
    /// already run (a column added by an earlier attempt): on a database whose
    /// DDL is not transactional, a migration interrupted halfway runs again
    /// from its start. Never, where DDL is transactional.
    fn already_applied(err: &dyn DatabaseError) -> bool {
        let _ = err;
        false
    }

    /// A pool on `url`, with the settings [`SqlStore::connect`](super::SqlStore::connect)
    /// documents.
    fn open(url: &str) -> impl Future<Output = Result<Pool<Self>, StoreError>> + Send;

    /// Takes the migration lock, first thing in the migration transaction: only
    /// one instance migrates at a time.
    fn lock_migrations(
        conn: &mut Self::Connection,
        key: &str,
    ) -> impl Future<Output = Result<(), TxError>> + Send;

    /// Releases the migration lock if it outlives the transaction (once the
    /// transaction ended, committed or not). Nothing to do unless a dialect
    /// says so: a lock taken in the transaction ended with it.
    fn unlock_migrations(
        conn: &mut Self::Connection,
        key: &str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        let _ = (conn, key);
        std::future::ready(Ok(()))
    }

    /// Quotes a name already checked by [`validate_ident`](super::validate_ident).
    fn quote(ident: &str) -> String {
        let q = Self::QUOTE;
        format!("{q}{ident}{q}")
    }
}

/// A database a [`SqlStore`](super::SqlStore) runs on: sqlx's
/// `Postgres` (feature `postgres`), `MySql`
/// (`mysql`, MySQL 8 and MariaDB 10.5+) or `Sqlite` (`sqlite`).
///
/// Sealed: implemented by the crate for those three only.
pub trait SqlDatabase: Dialect {}

impl<DB: Dialect> SqlDatabase for DB {}
