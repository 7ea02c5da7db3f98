//! The Redis store's revocation log: a stream (`P:rev`). Stream ids are in
//! append order with no gaps to wait for; a reader blocks on `XREAD` on a
//! connection of its own (a blocking read on the store's shared connection
//! would hold up every other call), so a logout reaches the other instances at
//! once. Expired entries are deleted by the purge, never the newest.
//!
//! # Logged first, then applied
//!
//! The log is one key, and on a Redis Cluster one slot, while each user's
//! keys live in a slot of their own: no script can append to the log in the
//! step that revokes. So the store appends the entry first and then runs the
//! revoke script, on a single node as on a cluster (one protocol). A
//! revocation the store applied is therefore always in the log, whatever
//! fails when: views never miss one. The other way round fails closed: when
//! the revoke step fails after the append (Redis away, a timeout), the caller
//! got a 503 and the views already refuse the session, which the store still
//! holds live until the client's retry revokes it for good.

use std::time::Duration;

use ::redis::Value;
use async_trait::async_trait;
use uuid::Uuid;

use super::connection::Connection;
use super::records::expire_at;
use super::redis_err;
use super::store::RedisStore;
use crate::error::StoreError;
use crate::store::log::{Revocation, RevocationLog, Revoked};
use crate::store::state;

/// Sequence numbers per millisecond of a stream id (`ms-n` is `ms * this + n`).
const PER_MS: u64 = 1_000_000;

fn seq_of(id: &str) -> Option<u64> {
    let (ms, n) = id.split_once('-')?;
    ms.parse::<u64>()
        .ok()?
        .checked_mul(PER_MS)?
        .checked_add(n.parse::<u64>().ok()?)
}

fn id_of(seq: u64) -> String {
    format!("{}-{}", seq / PER_MS, seq % PER_MS)
}

/// Where revocation views' blocking reads connect: the store's node, or its
/// cluster.
pub(crate) enum LogSource {
    /// One node.
    Node(::redis::Client),
    /// A cluster.
    #[cfg(feature = "redis-cluster")]
    Cluster(Box<::redis::cluster::ClusterClient>),
}

impl LogSource {
    /// A connection of its own, whose answers may take `timeout` (a blocking read).
    async fn connect(&self, timeout: Duration) -> Result<Connection, StoreError> {
        let slack = timeout + Duration::from_secs(1);
        match self {
            LogSource::Node(client) => {
                let config = ::redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(slack));
                let con = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(redis_err)?;
                Ok(Connection::Reader(con))
            }
            #[cfg(feature = "redis-cluster")]
            LogSource::Cluster(client) => {
                let config = ::redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(slack);
                let con = client
                    .get_async_connection_with_config(config)
                    .await
                    .map_err(redis_err)?;
                Ok(Connection::Cluster(con))
            }
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The entries of an `XRANGE` reply: id and fields.
fn entries(reply: &Value) -> Vec<(String, Vec<(String, String)>)> {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else {
                return None;
            };
            let id = text(pair.first()?)?;
            let fields = match pair.get(1)? {
                Value::Array(kv) => kv
                    .chunks(2)
                    .filter_map(|c| Some((text(c.first()?)?, text(c.get(1)?)?)))
                    .collect(),
                Value::Map(kv) => kv
                    .iter()
                    .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
                    .collect(),
                _ => Vec::new(),
            };
            Some((id, fields))
        })
        .collect()
}

/// One stream entry as a log entry; `None` for a shape this version does not write.
fn revocation(id: &str, fields: &[(String, String)]) -> Option<Revocation> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let expires_at = field("e")?.parse().ok()?;
    let revoked = match (field("s"), field("u"), field("c")) {
        (Some(s), _, _) => Revoked::Session {
            session_id: Uuid::try_parse(s).ok()?,
            expires_at,
        },
        (None, Some(user_id), Some(cutoff)) => Revoked::User {
            user_id: user_id.to_owned(),
            cutoff_ms: cutoff.parse().ok()?,
            expires_at,
        },
        _ => return None,
    };
    Some(Revocation::new(seq_of(id)?, revoked))
}

impl RedisStore {
    /// Appends a session's revocation to the log, before it is applied.
    pub(super) async fn log_session(
        &self,
        con: &mut Connection,
        session_id: Uuid,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let mut cmd = ::redis::cmd("XADD");
        cmd.arg(self.keys.revocations())
            .arg("*")
            .arg("s")
            .arg(session_id.as_hyphenated().to_string())
            .arg("e")
            .arg(expires_at);
        let _: String = self.write(con, &cmd).await?;
        Ok(())
    }

    /// Appends a revoke-all of `user_id` at `now_ms` to the log, before it is
    /// applied, unless it would not raise the user's cutoff
    /// ([`state::next_cutoff`]): each cutoff is logged once. The entry matters
    /// as long as the cutoff key will live: no shorter than the user's set or
    /// the cutoff already there, as the revoke-user script sets it.
    ///
    /// [`state::next_cutoff`]: crate::store::state::next_cutoff
    pub(super) async fn log_user(
        &self,
        con: &mut Connection,
        user_id: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let cutoff_key = self.keys.cutoff(user_id);
        let mut pipe = ::redis::pipe();
        pipe.cmd("GET")
            .arg(&cutoff_key)
            .cmd("PTTL")
            .arg(&cutoff_key)
            .cmd("PTTL")
            .arg(self.keys.user(user_id));
        let (old, cutoff_ttl, set_ttl): (Option<String>, i64, i64) =
            self.call(pipe.query_async(con)).await?;
        let old = old.and_then(|v| v.parse::<u64>().ok());
        let cutoff = state::next_cutoff(old, now_ms);
        if Some(cutoff) == old {
            return Ok(());
        }
        let lives_until = [cutoff_ttl, set_ttl]
            .into_iter()
            .filter_map(|ttl| u64::try_from(ttl).ok())
            .map(|ttl| (now_ms + ttl).div_ceil(1000))
            .fold(expire_at(now_ms / 1000), u64::max);
        let mut cmd = ::redis::cmd("XADD");
        cmd.arg(self.keys.revocations())
            .arg("*")
            .arg("u")
            .arg(user_id)
            .arg("c")
            .arg(cutoff)
            .arg("e")
            .arg(lives_until);
        let _: String = self.write(con, &cmd).await?;
        Ok(())
    }

    /// Deletes the log entries that stopped mattering (never the newest), a
    /// page at a time.
    pub(super) async fn purge_revocations(&self, now: u64) -> Result<(), StoreError> {
        let key = self.keys.revocations();
        let mut con = self.con.get();
        let mut after = "-".to_owned();
        loop {
            let reply: Value = self
                .call(
                    ::redis::cmd("XRANGE")
                        .arg(&key)
                        .arg(&after)
                        .arg("+")
                        .arg("COUNT")
                        .arg(500)
                        .query_async(&mut con),
                )
                .await?;
            let page = entries(&reply);
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            let last = last.clone();
            let full = page.len() == 500;
            let expired: Vec<&str> = page
                .iter()
                .filter(|(id, fields)| {
                    // The newest entry stays: ids must never go back.
                    (full || *id != last)
                        && fields
                            .iter()
                            .find(|(k, _)| k == "e")
                            .and_then(|(_, v)| v.parse::<u64>().ok())
                            .is_some_and(|e| e <= now)
                })
                .map(|(id, _)| id.as_str())
                .collect();
            if !expired.is_empty() {
                let _: i64 = self
                    .call(
                        ::redis::cmd("XDEL")
                            .arg(&key)
                            .arg(&expired)
                            .query_async(&mut con),
                    )
                    .await?;
            }
            if !full {
                return Ok(());
            }
            after = format!("({last}");
        }
    }
}

#[async_trait]
impl RevocationLog for RedisStore {
    /// Stream ids are assigned by the script's `XADD`, in its atomic step.
    fn ordered_at_commit(&self) -> bool {
        true
    }

    async fn revocations_after(
        &self,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<Revocation>, StoreError> {
        let start = if seq == 0 {
            "-".to_owned()
        } else {
            format!("({}", id_of(seq))
        };
        let mut con = self.con.get();
        let reply: Value = self
            .call(
                ::redis::cmd("XRANGE")
                    .arg(self.keys.revocations())
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit)
                    .query_async(&mut con),
            )
            .await?;
        Ok(entries(&reply)
            .iter()
            .filter_map(|(id, fields)| revocation(id, fields))
            .collect())
    }

    async fn wait_for_revocations(&self, seq: u64, timeout: Duration) -> Result<(), StoreError> {
        let Some(source) = &self.log_source else {
            tokio::time::sleep(timeout).await;
            return Ok(());
        };
        let mut slot = self.log_reader.lock().await;
        if slot.is_none() {
            *slot = Some(source.connect(timeout).await?);
        }
        let Some(con) = slot.as_mut() else {
            return Ok(());
        };
        let from = if seq == 0 {
            "0-0".to_owned()
        } else {
            id_of(seq)
        };
        let block = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let read: Result<Value, _> = ::redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block)
            .arg("STREAMS")
            .arg(self.keys.revocations())
            .arg(from)
            .query_async(con)
            .await;
        match read {
            Ok(_) => Ok(()),
            Err(e) => {
                // A new connection next time; the caller reads the log now.
                *slot = None;
                Err(redis_err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_and_sequence_numbers_map_both_ways() {
        for id in ["1700000000000-0", "1700000000000-7", "0-1"] {
            assert_eq!(id_of(seq_of(id).unwrap()), id);
        }
        assert!(seq_of("1700000000000-0").unwrap() < seq_of("1700000000000-1").unwrap());
        assert!(seq_of("1700000000000-999").unwrap() < seq_of("1700000000001-0").unwrap());
        assert_eq!(seq_of("nonsense"), None);
    }
}
