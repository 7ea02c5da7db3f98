//! The SQL store's revocation log (schema version 3): appended in the
//! transaction that revokes, read by [`RevocationView`](crate::RevocationView)s
//! in order. PostgreSQL wakes its readers at commit (`NOTIFY` on the store's
//! channel, `LISTEN` on a connection of the view's own); MySQL and SQLite are
//! polled. Either way the log itself is the truth: a lost notification only
//! delays a reader to its next poll.

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::dialect::SqlDatabase;
use super::driver::{Bind as _, Get as _, RowsAffected as _, query};
use super::store::SqlStore;
use super::{from_db, to_db};
use crate::error::StoreError;
use crate::store::log::{Revocation, RevocationLog, Revoked};
use crate::store::state;

impl<DB: SqlDatabase> SqlStore<DB> {
    /// The `NOTIFY` channel of this store's log (PostgreSQL): named after
    /// its table (FNV-1a of the name, as a channel name is at most 63 bytes),
    /// the same in every instance.
    pub fn revocation_channel(&self) -> String {
        let hash = self
            .tables
            .revocations
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        format!("tower_jwt_auth_{hash:016x}")
    }

    /// Logs session `session_id`'s revocation, inside the revoking transaction.
    pub(super) async fn log_session(
        &self,
        conn: &mut DB::Connection,
        session_id: Uuid,
    ) -> Result<(), sqlx::Error> {
        query::<DB>(&self.sql.log.session)
            .arg(session_id)
            .execute(DB::conn(conn))
            .await?;
        self.notify(conn).await
    }

    /// Logs a revoke-all of `user_id` at `cutoff_ms`, inside its transaction.
    pub(super) async fn log_user(
        &self,
        conn: &mut DB::Connection,
        user_id: &str,
        cutoff_ms: u64,
    ) -> Result<(), sqlx::Error> {
        let end = query::<DB>(&self.sql.log.sessions_end)
            .arg(user_id.to_owned())
            .fetch_one(DB::conn(conn))
            .await?
            .col::<Option<i64>>(0)?
            .map(from_db);
        query::<DB>(&self.sql.log.user)
            .arg(user_id.to_owned())
            .arg(to_db(cutoff_ms))
            .arg(to_db(state::cutoff_relevant_until(cutoff_ms, end)))
            .execute(DB::conn(conn))
            .await?;
        self.notify(conn).await
    }

    /// Wakes the log's readers when the transaction commits (PostgreSQL).
    async fn notify(&self, conn: &mut DB::Connection) -> Result<(), sqlx::Error> {
        if let Some(notify) = &self.sql.log.notify {
            query::<DB>(notify)
                .arg(self.revocation_channel())
                .fetch_all(DB::conn(conn))
                .await?;
        }
        Ok(())
    }

    /// Removes the log entries that stopped mattering (never the newest).
    pub(super) async fn purge_revocations(&self, now: u64) -> Result<u64, StoreError> {
        self.run("purge_revocations", || async {
            let mut conn = self.acquire().await?;
            let n = query::<DB>(&self.sql.log.purge)
                .arg(to_db(now))
                .execute(DB::conn(&mut conn))
                .await?
                .rows_affected();
            conn.release();
            Ok(n)
        })
        .await
    }
}

#[async_trait]
impl<DB: SqlDatabase> RevocationLog for SqlStore<DB> {
    /// SQLite has one writer at a time; a server's sequence is taken before
    /// its transaction commits.
    fn ordered_at_commit(&self) -> bool {
        DB::ONE_WRITER
    }

    async fn revocations_after(
        &self,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<Revocation>, StoreError> {
        self.run("revocations_after", || async {
            let mut conn = self.acquire().await?;
            let rows = query::<DB>(&self.sql.log.after)
                .arg(to_db(seq))
                .arg(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(DB::conn(&mut conn))
                .await?;
            conn.release();
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let seq = from_db(row.col::<i64>(0)?);
                let expires_at = from_db(row.col::<i64>(4)?);
                let revoked = match (
                    row.col::<Option<Uuid>>(1)?,
                    row.col::<Option<String>>(2)?,
                    row.col::<Option<i64>>(3)?,
                ) {
                    (Some(session_id), _, _) => Revoked::Session {
                        session_id,
                        expires_at,
                    },
                    (None, Some(user_id), Some(cutoff)) => Revoked::User {
                        user_id,
                        cutoff_ms: from_db(cutoff),
                        expires_at,
                    },
                    // Not an entry this version writes: skipped, its place kept.
                    _ => continue,
                };
                out.push(Revocation::new(seq, revoked));
            }
            Ok(out)
        })
        .await
    }

    async fn wait_for_revocations(&self, seq: u64, timeout: Duration) -> Result<(), StoreError> {
        let _ = seq;
        DB::wait_for_revocations(self, timeout).await
    }
}
