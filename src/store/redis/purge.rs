//! The purge: `SCAN` the prefix's user sets in batches (on each master of a
//! cluster) and run the purge script over each user's sessions, a bounded
//! amount of work per call and every key of one user (one slot); then `SCAN`
//! the cutoff keys and drop the ones no stored session falls under.

use uuid::Uuid;

use super::connection::{Connection, ScanNode};
use super::records::{self, parse_opt_u64};
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

/// The reply of the purge script: token records removed, how many of the
/// sessions are done, and the `HSCAN` cursor into the next one.
type PurgeReply = (u64, usize, String);

impl RedisStore {
    /// [`TokenStore::purge_expired`]: every user set of this prefix, on every
    /// node that holds keys, its sessions through the purge script; then the
    /// cutoffs. The token records removed.
    ///
    /// [`TokenStore::purge_expired`]: crate::store::TokenStore::purge_expired
    pub(super) async fn purge(&self, now: u64) -> Result<u64, StoreError> {
        let mut con = self.con.get();
        let nodes = self.call(con.scan_nodes()).await?;
        let mut removed: u64 = 0;
        for node in &nodes {
            for key in self.scan_node(&mut con, node, "u").await? {
                if let Some(user) = self.keys.user_in(&key, "u") {
                    removed += self.purge_user(&mut con, user, now).await?;
                }
            }
        }
        for node in &nodes {
            for key in self.scan_node(&mut con, node, "cut").await? {
                if let Some(user) = self.keys.user_in(&key, "cut") {
                    self.purge_cutoff(&mut con, &key, user).await?;
                }
            }
        }
        Ok(removed)
    }

    /// Every key of this prefix's `kind` (`u` user sets, `cut` cutoffs) on
    /// one node, `SCAN`ned in batches.
    async fn scan_node(
        &self,
        con: &mut Connection,
        node: &ScanNode,
        kind: &str,
    ) -> Result<Vec<String>, StoreError> {
        let pattern = self.keys.pattern(kind);
        let (mut cursor, mut found) = (0u64, Vec::new());
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .call(con.query_on(node, scan("SCAN", None, cursor, &pattern)))
                .await?;
            found.extend(keys);
            if next == 0 {
                return Ok(found);
            }
            cursor = next;
        }
    }

    /// One user's sessions through the purge script, a page of the user's set
    /// (`SSCAN`) at a time: the token records removed. The script deletes a
    /// session as `state::session_purgeable` says and a token as
    /// `state::token_purgeable` says, and drops deleted (or already expired)
    /// sessions from the set (an emptied set is deleted by Redis).
    async fn purge_user(
        &self,
        con: &mut Connection,
        user: &str,
        now: u64,
    ) -> Result<u64, StoreError> {
        let set = self.keys.user(user);
        let (mut cursor, mut removed) = (0u64, 0u64);
        loop {
            let (next, members): (u64, Vec<String>) = self
                .call(scan("SSCAN", Some(&set), cursor, "*").query_async(con))
                .await?;
            let ids: Vec<Uuid> = members
                .iter()
                .filter_map(|m| Uuid::parse_str(m).ok())
                .collect();
            removed += self.purge_sessions(con, (user, &set), &ids, now).await?;
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    /// Runs the purge script over sessions `ids` of `user`, as many calls as
    /// its budget needs, each resuming where the last stopped.
    async fn purge_sessions(
        &self,
        con: &mut Connection,
        (user, set): (&str, &str),
        ids: &[Uuid],
        now: u64,
    ) -> Result<u64, StoreError> {
        let (mut start, mut cursor, mut removed) = (0, "0".to_owned(), 0);
        while start < ids.len() {
            let rest = &ids[start..];
            let mut invocation = self.scripts.purge.key(set);
            for id in rest {
                invocation.key(self.keys.session(user, *id));
            }
            invocation.arg(now).arg(PURGE_BUDGET).arg(&cursor);
            for id in rest {
                invocation.arg(id.as_hyphenated().to_string());
            }
            let (count, done, next): PurgeReply = self.call(invocation.invoke_async(con)).await?;
            removed += count;
            // The script always makes progress: a session done, or a cursor moved.
            start += done.min(rest.len());
            cursor = next;
        }
        Ok(removed)
    }

    /// Drops one user's cutoff when no stored session of theirs was created
    /// before it. The user's set is read in `SSCAN` steps, each with one
    /// pipelined `HMGET` per member (no long call); the cutoff is then deleted
    /// only if it is still the value read (`scripts/purge_cutoff.lua`). A
    /// session created meanwhile under the cutoff was recorded revoked when it
    /// was created, so it needs the cutoff no more.
    async fn purge_cutoff(
        &self,
        con: &mut Connection,
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
        con: &mut Connection,
        user: &str,
    ) -> Result<Option<u64>, StoreError> {
        let user_key = self.keys.user(user);
        let (mut cursor, mut oldest) = (0u64, None::<u64>);
        loop {
            let (next, members): (u64, Vec<String>) = self
                .call(scan("SSCAN", Some(&user_key), cursor, "*").query_async(con))
                .await?;
            let ids: Vec<_> = members
                .iter()
                .filter_map(|m| Uuid::parse_str(m).ok())
                .collect();
            for created in self
                .created_at_ms_of(con, user, &ids)
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
        con: &mut Connection,
        user: &str,
        ids: &[Uuid],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.keys.session(user, *id))
                .arg(&records::CHECK_FIELDS);
        }
        let rows: Vec<Vec<Option<String>>> = self.call(pipe.query_async(con)).await?;
        rows.iter()
            .map(|row| Ok(records::session_check(row)?.map(|s| s.created_at_ms)))
            .collect()
    }
}

/// One `SCAN`-family step (`SCAN`, or `SSCAN` of `key`) at `cursor`.
fn scan(command: &str, key: Option<&str>, cursor: u64, pattern: &str) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd(command);
    if let Some(key) = key {
        cmd.arg(key);
    }
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(PURGE_BATCH);
    cmd
}

/// Whether a failed call is Redis's `WRONGTYPE`.
fn is_wrong_type(e: &StoreError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<::redis::RedisError>())
        .is_some_and(|r| r.code() == Some("WRONGTYPE"))
}
