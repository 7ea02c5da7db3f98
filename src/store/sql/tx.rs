//! How the SQL store holds a pooled connection for one operation, so that
//! nothing it abandons stays open: [`Held`], and the transactions opened on it.
//!
//! An operation can stop anywhere: its timeout fires, the request is dropped,
//! the connection breaks mid-statement. sqlx would hand such a connection back
//! to its pool and roll the transaction back later, after waiting (without a
//! bound) for whatever statement was still running; meanwhile the transaction
//! holds its row locks, and every rotation of that session queues behind it.
//! So a server's connection that is dropped while a transaction is open on it,
//! or while a statement is in flight, is closed instead: the server rolls the
//! transaction back when the connection ends. And the server bounds what a
//! client abandons without closing (a partition, a hung process): each
//! transaction opens with lock-wait, statement and idle-in-transaction limits
//! derived from the operation timeout ([`TxSql`], written by each dialect).
//!
//! SQLite runs in process: a transaction abandoned there is rolled back on its
//! connection by sqlx, and the connection stays in the pool (closing them could
//! end an in-memory database).

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{SqlStr, Transaction};

use super::dialect::SqlDatabase;
use super::store::SqlStore;

/// The statements that open and commit a store transaction on one database,
/// with its server-side bounds ([`Dialect::transaction_sql`](super::dialect::Dialect::transaction_sql)).
#[derive(Debug, Clone)]
#[allow(unreachable_pub)] // in the sealed `Dialect` trait: public in name only
pub struct TxSql {
    /// Opens the transaction and sets its bounds (one round trip).
    pub(crate) begin: SqlStr,
    /// Commits it and restores what `begin` changed beyond the transaction.
    pub(crate) commit: SqlStr,
}

/// A pooled connection held for one store operation. While `open` (a
/// transaction begun and not committed, or a statement in flight), dropping it
/// closes a server's connection rather than handing it back to the pool.
pub(super) struct Held<DB: SqlDatabase> {
    inner: Inner<DB>,
    open: bool,
}

enum Inner<DB: SqlDatabase> {
    /// A connection; on a server, a transaction on it is opened and committed
    /// with [`TxSql`].
    Conn(PoolConnection<DB>),
    /// An in-process database's transaction: dropped open, sqlx rolls it back.
    /// `None` only while it commits.
    Local(Option<Transaction<'static, DB>>),
}

impl<DB: SqlDatabase> SqlStore<DB> {
    /// A connection for statements outside a transaction: call
    /// [`Held::release`] once they succeeded.
    pub(super) async fn acquire(&self) -> Result<Held<DB>, sqlx::Error> {
        Ok(Held {
            inner: Inner::Conn(self.pool.acquire().await?),
            open: true,
        })
    }

    /// Opens a write transaction with the database's bounds: end it with
    /// [`Held::commit`]. Dropped before that, it is rolled back (the
    /// connection closed, on a server).
    pub(super) async fn begin(&self) -> Result<Held<DB>, sqlx::Error> {
        if DB::LOCAL {
            let tx = self.pool.begin_with(DB::BEGIN).await?;
            return Ok(Held {
                inner: Inner::Local(Some(tx)),
                open: true,
            });
        }
        let mut held = self.acquire().await?;
        let timeout = self.options.get_operation_timeout();
        let sql = self
            .tx_sql
            .get_or_try_init(|| DB::transaction_sql(&mut held, timeout))
            .await?
            .clone();
        sqlx::raw_sql(sql.begin)
            .execute(DB::conn(&mut held))
            .await?;
        Ok(held)
    }

    /// Commits the transaction `held` (from [`SqlStore::begin`]): the
    /// connection goes back to the pool once the commit was acknowledged.
    pub(super) async fn commit(&self, mut held: Held<DB>) -> Result<(), sqlx::Error> {
        match &mut held.inner {
            Inner::Local(tx) => {
                if let Some(tx) = tx.take() {
                    tx.commit().await?;
                }
            }
            Inner::Conn(conn) => {
                // Set by `begin` on this same store.
                if let Some(sql) = self.tx_sql.get() {
                    sqlx::raw_sql(sql.commit.clone())
                        .execute(DB::conn(conn))
                        .await?;
                }
            }
        }
        held.open = false;
        Ok(())
    }
}

impl<DB: SqlDatabase> Held<DB> {
    /// Done with a connection on which no transaction is open: back to the pool.
    pub(super) fn release(mut self) {
        self.open = false;
    }
}

impl<DB: SqlDatabase> Deref for Held<DB> {
    type Target = DB::Connection;

    // `None` only inside `commit`, which owns `self` and drops it after
    // taking the transaction: no deref can see it.
    #[allow(clippy::expect_used)]
    fn deref(&self) -> &DB::Connection {
        match &self.inner {
            Inner::Conn(conn) => conn,
            Inner::Local(tx) => tx.as_ref().expect("a transaction being committed"),
        }
    }
}

impl<DB: SqlDatabase> DerefMut for Held<DB> {
    // `None` only inside `commit`, which owns `self` and drops it after
    // taking the transaction: no deref can see it.
    #[allow(clippy::expect_used)]
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match &mut self.inner {
            Inner::Conn(conn) => conn,
            Inner::Local(tx) => tx.as_mut().expect("a transaction being committed"),
        }
    }
}

impl<DB: SqlDatabase> Drop for Held<DB> {
    fn drop(&mut self) {
        if let (true, false, Inner::Conn(conn)) = (self.open, DB::LOCAL, &mut self.inner) {
            conn.close_on_drop();
        }
    }
}
