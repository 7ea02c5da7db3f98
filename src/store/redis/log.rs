//! The Redis store's revocation log: a stream (`P:rev`), appended by the
//! revoke scripts in their atomic step. Stream ids are in append order with
//! no gaps to wait for; a reader blocks on `XREAD` on a connection of its own
//! (a blocking read on the store's shared connection would hold up every
//! other call), so a logout reaches the other instances at once. Expired
//! entries are deleted by the purge, never the newest.

use std::time::Duration;

use ::redis::Value;
use async_trait::async_trait;
use uuid::Uuid;

use super::redis_err;
use super::store::RedisStore;
use crate::error::StoreError;
use crate::store::log::{Revocation, RevocationLog, Revoked};

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
    /// Deletes the log entries that stopped mattering (never the newest), a
    /// page at a time.
    pub(super) async fn purge_revocations(&self, now: u64) -> Result<(), StoreError> {
        let key = self.keys.revocations();
        let mut con = self.con.clone();
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
        let mut con = self.con.clone();
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
        let Some(client) = &self.client else {
            tokio::time::sleep(timeout).await;
            return Ok(());
        };
        let mut slot = self.log_reader.lock().await;
        if slot.is_none() {
            let config = ::redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout + Duration::from_secs(1)));
            let con = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(redis_err)?;
            *slot = Some(con);
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
