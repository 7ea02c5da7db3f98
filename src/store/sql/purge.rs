//! The SQL store's purge: bulk deletes in batches of
//! [`SqlStoreOptions::purge_batch_size`](super::SqlStoreOptions::purge_batch_size)
//! rows, one short transaction each, so that it never holds a lock on the tables
//! for long. Their `WHERE` clauses translate
//! [`state::session_purgeable`](crate::store::state::session_purgeable),
//! [`state::token_purgeable`](crate::store::state::token_purgeable) and
//! [`state::cutoff_purgeable`](crate::store::state::cutoff_purgeable) (see each
//! dialect's statements).

use std::future::Future;

use uuid::Uuid;

use super::dialect::SqlDatabase;
use super::driver::{Bind as _, Get as _, RowsAffected as _, query};
use super::store::{SqlStore, TxError};
use super::to_db;
use crate::error::StoreError;

/// What one purge transaction did.
struct Batch {
    /// The rows it counts: token rows (of whole sessions, or alone), or cutoffs.
    rows: u64,
    /// Whether it was a full batch: there may be more to delete.
    full: bool,
}

impl<DB: SqlDatabase> SqlStore<DB> {
    /// Sessions past their absolute expiry, with all their rows. Returns the
    /// token rows removed.
    pub(super) async fn purge_sessions(&self, now: u64) -> Result<u64, StoreError> {
        self.in_batches(|| self.purge_session_batch(now)).await
    }

    /// Unused tokens past their own expiry in live sessions (used rows stay
    /// until their session expires, so a late replay is still reuse). Returns
    /// the rows removed.
    pub(super) async fn purge_tokens(&self, now: u64) -> Result<u64, StoreError> {
        self.in_batches(|| self.purge_token_batch(now)).await
    }

    /// Revoke-all cutoffs no stored session of their user falls under (the
    /// rows session creation leaves at 0 included). Returns the rows removed.
    pub(super) async fn purge_cutoffs(&self) -> Result<u64, StoreError> {
        self.in_batches(|| self.purge_cutoff_batch()).await
    }

    /// Runs `batch` (one transaction, retried as any) until one is short,
    /// yielding between batches; returns the rows they counted.
    async fn in_batches<F, Fut>(&self, mut batch: F) -> Result<u64, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Batch, TxError>>,
    {
        let mut removed = 0;
        loop {
            let done = self.run("purge_expired", &mut batch).await?;
            removed += done.rows;
            if !done.full {
                return Ok(removed);
            }
            tokio::task::yield_now().await;
        }
    }

    /// One batch of expired sessions: their rows are locked first (the order
    /// rotation locks in), then their tokens and they are deleted.
    async fn purge_session_batch(&self, now: u64) -> Result<Batch, TxError> {
        let size = self.options.get_purge_batch_size();
        let _writer = self.writer().await;
        let mut tx = self.begin().await?;
        let ids = query::<DB>(&self.sql.purge_pick_sessions)
            .arg(to_db(now))
            .arg(i64::from(size))
            .fetch_all(DB::conn(&mut tx))
            .await?
            .iter()
            .map(|row| row.col(0))
            .collect::<Result<Vec<Uuid>, _>>()?;
        let Some(&last) = ids.last() else {
            self.commit(tx).await?;
            return Ok(Batch {
                rows: 0,
                full: false,
            });
        };
        // As many ids as the statements have parameters: a short batch repeats
        // one, so that each statement is prepared once per connection.
        let padded = || (0..size as usize).map(|i| ids.get(i).copied().unwrap_or(last));
        let tokens = padded()
            .fold(query::<DB>(&self.sql.purge_tokens_of), |q, id| q.arg(id))
            .execute(DB::conn(&mut tx))
            .await?
            .rows_affected();
        padded()
            .fold(query::<DB>(&self.sql.purge_sessions), |q, id| q.arg(id))
            .execute(DB::conn(&mut tx))
            .await?;
        self.commit(tx).await?;
        Ok(Batch {
            rows: tokens,
            full: ids.len() >= size as usize,
        })
    }

    /// One batch of expired unused tokens: a single bounded delete.
    async fn purge_token_batch(&self, now: u64) -> Result<Batch, TxError> {
        let size = self.options.get_purge_batch_size();
        let _writer = self.writer().await;
        let mut tx = self.begin().await?;
        let tokens = query::<DB>(&self.sql.purge_tokens)
            .arg(to_db(now))
            .arg(i64::from(size))
            .execute(DB::conn(&mut tx))
            .await?
            .rows_affected();
        self.commit(tx).await?;
        Ok(Batch {
            rows: tokens,
            full: tokens >= u64::from(size),
        })
    }

    /// One batch of purgeable cutoffs: a single bounded delete.
    async fn purge_cutoff_batch(&self) -> Result<Batch, TxError> {
        let size = self.options.get_purge_batch_size();
        let _writer = self.writer().await;
        let mut tx = self.begin().await?;
        let cutoffs = query::<DB>(&self.sql.purge_cutoffs)
            .arg(i64::from(size))
            .execute(DB::conn(&mut tx))
            .await?
            .rows_affected();
        self.commit(tx).await?;
        Ok(Batch {
            rows: cutoffs,
            full: cutoffs >= u64::from(size),
        })
    }
}
