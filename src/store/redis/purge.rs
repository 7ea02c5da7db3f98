//! The purge: `SCAN` the prefix's session keys in batches and run the purge
//! script over each batch, a bounded amount of work per call; then `SCAN` the
//! cutoff keys and drop the ones no stored session falls under.

use ::redis::aio::ConnectionManager;

use uuid::Uuid;

use super::records::{self, corrupt, parse_opt_u64};
use super::store::RedisStore;
use crate::error::StoreError;
use crate::store::state;

/// How many keys one `SCAN` (or `SSCAN`) step of the purge asks for.
const PURGE_BATCH: usize = 256;

/// How many token fields one call of the purge script visits, about (its
/// `HSCAN` steps are of at most 128, and each step counts one more): what
/// bounds the time Redis spends in one call, whatever the size of the
/// sessions. Measured in `docs/redis.md`: about a millisecond a call.
const PURGE_BUDGET: usize = 256;

/// The reply of the purge script: token records removed, how many of the keys
/// are done, the `HSCAN` cursor into the next one, and the positions (1-based)
/// and users of the sessions it deleted.
type PurgeReply = (u64, usize, String, Vec<usize>, Vec<String>);

impl RedisStore {
    /// [`TokenStore::purge_expired`]: every batch of this prefix's session keys
    /// through the purge script, then the cutoffs; the token records removed.
    ///
    /// [`TokenStore::purge_expired`]: crate::store::TokenStore::purge_expired
    pub(super) async fn purge(&self, now: u64) -> Result<u64, StoreError> {
        let mut con = self.con.clone();
        let pattern = self.keys.session_pattern();
        let mut cursor: u64 = 0;
        let mut removed: u64 = 0;
        loop {
            let (next, keys) = self.scan(&mut con, "SCAN", None, cursor, &pattern).await?;
            // Only this prefix's session keys: another prefix that starts with this
            // one plus `:s:` would match the pattern too.
            let sessions: Vec<(&str, &str)> = keys
                .iter()
                .filter_map(|k| Some((k.as_str(), self.keys.session_id_in(k)?)))
                .collect();
            removed += self.purge_batch(&mut con, &sessions, now).await?;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        self.purge_cutoffs(&mut con).await?;
        Ok(removed)
    }

    /// One `SCAN`-family step (`SCAN`, or `SSCAN` of `key`) at `cursor`: the
    /// next cursor and the keys or members.
    async fn scan(
        &self,
        con: &mut ConnectionManager,
        command: &str,
        key: Option<&str>,
        cursor: u64,
        pattern: &str,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let mut cmd = ::redis::cmd(command);
        if let Some(key) = key {
            cmd.arg(key);
        }
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(PURGE_BATCH);
        self.call(cmd.query_async(con)).await
    }

    /// Runs the purge script over one batch of `(key, session id)`s, as many
    /// calls as its budget needs, each resuming where the last stopped: the
    /// token records removed. It deletes a session as `state::session_purgeable`
    /// says and a token as `state::token_purgeable` says; the deleted sessions
    /// are then dropped from their users' sets (an emptied set is deleted by
    /// Redis).
    async fn purge_batch(
        &self,
        con: &mut ConnectionManager,
        sessions: &[(&str, &str)],
        now: u64,
    ) -> Result<u64, StoreError> {
        let (mut start, mut cursor, mut removed) = (0, "0".to_owned(), 0);
        while start < sessions.len() {
            let rest = &sessions[start..];
            let mut invocation = self.scripts.purge.prepare_invoke();
            for (key, _) in rest {
                invocation.key(*key);
            }
            invocation.arg(now).arg(PURGE_BUDGET).arg(&cursor);
            let (count, done, next, gone, users): PurgeReply =
                self.call(invocation.invoke_async(con)).await?;
            removed += count;
            self.forget_purged(con, rest, &gone, &users).await?;
            // The script always makes progress: a key done, or a cursor moved.
            start += done.min(rest.len());
            cursor = next;
        }
        Ok(removed)
    }

    /// Drops the sessions the purge script deleted (positions in `sessions`,
    /// 1-based, and their users) from their users' sets.
    async fn forget_purged(
        &self,
        con: &mut ConnectionManager,
        sessions: &[(&str, &str)],
        gone: &[usize],
        users: &[String],
    ) -> Result<(), StoreError> {
        if gone.is_empty() {
            return Ok(());
        }
        let mut srem = ::redis::pipe();
        for (n, user) in gone.iter().zip(users) {
            let (_, sid) = sessions.get(n.wrapping_sub(1)).ok_or_else(corrupt)?;
            srem.cmd("SREM")
                .arg(self.keys.user(user))
                .arg(*sid)
                .ignore();
        }
        self.call(srem.exec_async(con)).await
    }

    /// Drops every cutoff of this prefix that no stored session falls under
    /// ([`state::cutoff_purgeable`]).
    async fn purge_cutoffs(&self, con: &mut ConnectionManager) -> Result<(), StoreError> {
        let pattern = self.keys.cutoff_pattern();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys) = self.scan(con, "SCAN", None, cursor, &pattern).await?;
            for key in &keys {
                if let Some(user) = self.keys.user_of_cutoff(key) {
                    self.purge_cutoff(con, key, user).await?;
                }
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Drops one user's cutoff when no stored session of theirs was created
    /// before it. The user's set is read in `SSCAN` steps, each with one
    /// pipelined `HMGET` per member (no long call); the cutoff is then deleted
    /// only if it is still the value read (`scripts/purge_cutoff.lua`). A
    /// session created meanwhile under the cutoff was recorded revoked when it
    /// was created, so it needs the cutoff no more.
    async fn purge_cutoff(
        &self,
        con: &mut ConnectionManager,
        key: &str,
        user: &str,
    ) -> Result<(), StoreError> {
        let value: Option<String> = match self
            .call(::redis::cmd("GET").arg(key).query_async(con))
            .await
        {
            Ok(v) => v,
            // Not a string: not a cutoff of this store (another prefix's key).
            Err(e) if is_wrong_type(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(value) = value else { return Ok(()) };
        let Ok(Some(cutoff)) = parse_opt_u64(Some(&value)) else {
            return Ok(());
        };
        let oldest = self.oldest_session(con, user).await?;
        if state::cutoff_purgeable(cutoff, oldest) {
            let mut invocation = self.scripts.purge_cutoff.key(key);
            invocation.arg(&value);
            let _: i64 = self.call(invocation.invoke_async(con)).await?;
        }
        Ok(())
    }

    /// When the oldest stored session in a user's set was created, in
    /// milliseconds (`None` when it holds none).
    async fn oldest_session(
        &self,
        con: &mut ConnectionManager,
        user: &str,
    ) -> Result<Option<u64>, StoreError> {
        let user_key = self.keys.user(user);
        let (mut cursor, mut oldest) = (0u64, None::<u64>);
        loop {
            let (next, members) = self
                .scan(con, "SSCAN", Some(&user_key), cursor, "*")
                .await?;
            let ids: Vec<_> = members
                .iter()
                .filter_map(|m| Uuid::parse_str(m).ok())
                .collect();
            for created in self
                .created_at_ms_of(con, &ids)
                .await?
                .into_iter()
                .flatten()
            {
                oldest = Some(oldest.map_or(created, |o| o.min(created)));
            }
            if next == 0 {
                return Ok(oldest);
            }
            cursor = next;
        }
    }
}

impl RedisStore {
    /// When each of the sessions `ids` was created, in milliseconds (`None`
    /// for one Redis no longer holds), in one pipelined round trip.
    async fn created_at_ms_of(
        &self,
        con: &mut ConnectionManager,
        ids: &[Uuid],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.keys.session(*id))
                .arg(&records::CHECK_FIELDS);
        }
        let rows: Vec<Vec<Option<String>>> = self.call(pipe.query_async(con)).await?;
        rows.iter()
            .map(|row| Ok(records::session_check(row)?.map(|s| s.created_at_ms)))
            .collect()
    }
}

/// Whether a failed call is Redis's `WRONGTYPE`.
fn is_wrong_type(e: &StoreError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<::redis::RedisError>())
        .is_some_and(|r| r.code() == Some("WRONGTYPE"))
}
