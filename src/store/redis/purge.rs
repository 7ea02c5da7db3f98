//! The purge: `SCAN` the prefix's session keys in batches, and run the purge
//! script on each batch.

use ::redis::aio::ConnectionManager;

use super::records::corrupt;
use super::store::RedisStore;
use crate::error::StoreError;

/// How many keys one `SCAN` step of the purge asks for.
const PURGE_BATCH: usize = 256;

impl RedisStore {
    /// [`TokenStore::purge_expired`]: every batch of this prefix's session keys
    /// through the purge script; the token records removed.
    ///
    /// [`TokenStore::purge_expired`]: crate::store::TokenStore::purge_expired
    pub(super) async fn purge(&self, now: u64) -> Result<u64, StoreError> {
        let mut con = self.con.clone();
        let pattern = self.keys.session_pattern();
        let mut cursor: u64 = 0;
        let mut removed: u64 = 0;
        loop {
            let mut scan = ::redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(PURGE_BATCH);
            let (next, keys): (u64, Vec<String>) = self.call(scan.query_async(&mut con)).await?;
            // Only this prefix's session keys: another prefix that starts with this
            // one plus `:s:` would match the pattern too.
            let sessions: Vec<(&str, &str)> = keys
                .iter()
                .filter_map(|k| Some((k.as_str(), self.keys.session_id_in(k)?)))
                .collect();
            if !sessions.is_empty() {
                removed += self.purge_batch(&mut con, &sessions, now).await?;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    /// Runs the purge script on one batch of `(key, session id)`s: the token
    /// records it removed. It deletes a session as `state::session_purgeable`
    /// says and a token as `state::token_purgeable` says; the deleted sessions
    /// are then dropped from their users' sets (an emptied set is deleted by Redis).
    async fn purge_batch(
        &self,
        con: &mut ConnectionManager,
        sessions: &[(&str, &str)],
        now: u64,
    ) -> Result<u64, StoreError> {
        let mut invocation = self.scripts.purge.prepare_invoke();
        for (key, _) in sessions {
            invocation.key(*key);
        }
        invocation.arg(now);
        let reply: Vec<String> = self.call(invocation.invoke_async(con)).await?;
        let (count, gone) = reply.split_first().ok_or_else(corrupt)?;
        let removed = count.parse::<u64>().map_err(|_| corrupt())?;
        let mut srem = ::redis::pipe();
        for pair in gone.chunks_exact(2) {
            let (_, sid) = pair[0]
                .parse::<usize>()
                .ok()
                .and_then(|i| sessions.get(i.wrapping_sub(1)))
                .ok_or_else(corrupt)?;
            srem.cmd("SREM")
                .arg(self.keys.user(&pair[1]))
                .arg(*sid)
                .ignore();
        }
        if !gone.is_empty() {
            self.call(srem.exec_async(con)).await?;
        }
        Ok(removed)
    }
}
