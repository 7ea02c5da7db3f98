//! [`RedisStore`] and its [`TokenStore`] impl: each call is one or two Redis
//! round trips, its writes one Lua script. Rotation's optimistic loop is in
//! `rotate.rs`, the `SCAN` purge in `purge.rs`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use ::redis::RedisResult;
use ::redis::aio::ConnectionManager;
use async_trait::async_trait;
use uuid::Uuid;

use super::connection::Connection;
use super::durability::ReplicaAcks;
use super::link::Link;
use super::log::LogSource;
use super::records::{self, Keys, expire_at};
use super::redis_err;
use super::scripts::Scripts;
use crate::error::StoreError;
use crate::store::{NewSession, RotateOutcome, RotateRequest, SessionInfo, TokenStore, state};

/// A [`TokenStore`] in Redis, for apps with several instances. See the
/// [module docs](super) for the layout and the rotation protocol, and
/// `docs/redis.md` for its limits.
///
/// ```no_run
/// # async fn demo() -> Result<(), tower_jwt_auth::StoreError> {
/// use tower_jwt_auth::RedisStore;
/// let store = RedisStore::builder()
///     .url("redis://127.0.0.1:6379/")
///     .key_prefix("myapp:auth")
///     .build()
///     .await?;
/// # let _ = store; Ok(()) }
/// ```
pub struct RedisStore {
    /// The connection requests go to, replaced when it stops answering.
    pub(super) con: Link,
    pub(super) keys: Keys,
    /// The URL (or the cluster's seed URLs), passwords redacted: only for `Debug`.
    redacted_url: Option<String>,
    pub(super) max_attempts: u32,
    /// How long each request waits for Redis's answer.
    pub(super) response_timeout: Duration,
    /// How many replicas must have each write before it is answered.
    pub(super) replica_acks: Option<ReplicaAcks>,
    pub(super) scripts: Scripts,
    /// Where revocation views' blocking reads of the log connect, when the
    /// store opened its own connection (a connection of their own: a blocking
    /// read on the shared one would hold up every other call).
    pub(super) log_source: Option<LogSource>,
    /// That connection, made on first use.
    pub(super) log_reader: tokio::sync::Mutex<Option<Connection>>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.redacted_url)
            .field("cluster", &self.con.get().is_cluster())
            .field("prefix", &self.keys.prefix())
            .field("max_attempts", &self.max_attempts)
            .field("response_timeout", &self.response_timeout)
            .field("replica_acks", &self.replica_acks)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `con` (the builder makes it).
    pub(super) fn new(
        con: Link,
        keys: Keys,
        redacted_url: Option<String>,
        max_attempts: u32,
        response_timeout: Duration,
        log_source: Option<LogSource>,
    ) -> Self {
        RedisStore {
            con,
            keys,
            redacted_url,
            max_attempts,
            response_timeout,
            replica_acks: None,
            scripts: Scripts::new(),
            log_source,
            log_reader: tokio::sync::Mutex::new(None),
        }
    }

    /// One request to Redis, bounded by the response timeout: its failure, or
    /// no answer in time, is a [`StoreError`] (503), never retried here. A
    /// request that timed out may still run in Redis.
    pub(super) async fn call<T>(
        &self,
        request: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.response_timeout, request).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                if e.is_timeout() {
                    self.con.timed_out(self.response_timeout);
                }
                Err(redis_err(e))
            }
            Err(_) => {
                self.con.timed_out(self.response_timeout);
                Err(StoreError::new(
                    "Redis did not answer within the response timeout",
                ))
            }
        }
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// Loads every script into Redis's script cache. Not needed for correctness:
    /// a script missing from the cache (`NOSCRIPT`, after a restart or a
    /// `SCRIPT FLUSH`) is loaded again on its next call.
    pub async fn load_scripts(&self) -> Result<(), StoreError> {
        let mut con = self.con.get();
        for script in self.scripts.all() {
            self.call(script.load_async(&mut con)).await?;
        }
        Ok(())
    }

    /// A clone of the connection manager (cheap; it shares the connection);
    /// `None` for a store on a cluster.
    pub fn connection_manager(&self) -> Option<ConnectionManager> {
        match self.con.get() {
            Connection::Node(con) => Some(con),
            _ => None,
        }
    }

    /// The key of a session's hash (for operators and tests: see the
    /// [module docs](super) for the layout).
    pub fn session_key(&self, user_id: &str, session_id: Uuid) -> String {
        self.keys.session(user_id, session_id)
    }

    /// The key of a user's set of session ids.
    pub fn user_sessions_key(&self, user_id: &str) -> String {
        self.keys.user(user_id)
    }

    /// The key of a user's revoke-all cutoff.
    pub fn cutoff_key(&self, user_id: &str) -> String {
        self.keys.cutoff(user_id)
    }

    /// Whether the store runs on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.con.get().is_cluster()
    }

    /// The ids in a user's session set (members that are not ids are skipped).
    async fn session_ids(
        &self,
        con: &mut Connection,
        user_key: &str,
    ) -> Result<Vec<Uuid>, StoreError> {
        let members: Vec<String> = self
            .call(::redis::cmd("SMEMBERS").arg(user_key).query_async(con))
            .await?;
        Ok(members
            .iter()
            .filter_map(|m| Uuid::parse_str(m).ok())
            .collect())
    }

    /// Drops sessions Redis (or a purge) removed from their user's set.
    async fn forget_sessions(
        &self,
        con: &mut Connection,
        user_key: &str,
        gone: &[Uuid],
    ) -> Result<(), StoreError> {
        if gone.is_empty() {
            return Ok(());
        }
        let gone: Vec<String> = gone
            .iter()
            .map(|id| id.as_hyphenated().to_string())
            .collect();
        let _: i64 = self
            .call(
                ::redis::cmd("SREM")
                    .arg(user_key)
                    .arg(&gone)
                    .query_async(con),
            )
            .await?;
        Ok(())
    }

    /// Runs the revoke-user script: raises `user_id`'s cutoff to `now_ms` (as
    /// `state::next_cutoff` does) and revokes the sessions `ids`; how many were
    /// not revoked before. The cutoff lives at least as long as the user's set,
    /// which lives as long as the user's longest session.
    async fn revoke_listed(
        &self,
        con: &mut Connection,
        user_id: &str,
        user_key: &str,
        ids: &[Uuid],
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        let mut invocation = self.scripts.revoke_user.key(self.keys.cutoff(user_id));
        invocation.key(user_key);
        for id in ids {
            invocation.key(self.keys.session(user_id, *id));
        }
        let now = now_ms / 1000;
        invocation.arg(now_ms).arg(now).arg(expire_at(now));
        let n: i64 = self.write_script(con, &invocation).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Runs the revoke script on one session of `user_id`: for a logout at
    /// any version (`at` is `None`), for a rotation's decision only at the
    /// version and with the cutoff it read (`at`: `(cutoff key, version,
    /// cutoff as read)`). 1 revoked, 0 changed since the read, -1 unknown (or
    /// another user's), -2 already revoked. The caller has logged it.
    pub(super) async fn revoke_at(
        &self,
        con: &mut Connection,
        (key, user_id): (&str, &str),
        at: Option<(&str, &str, &str)>,
        now: u64,
    ) -> Result<i64, StoreError> {
        let mut invocation = self.scripts.revoke.key(key);
        let (version, cutoff) = match at {
            Some((cutoff_key, version, cutoff)) => {
                invocation.key(cutoff_key);
                (version, cutoff)
            }
            None => ("", ""),
        };
        invocation.arg(version).arg(now).arg(cutoff).arg(user_id);
        self.write_script(con, &invocation).await
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        let mut con = self.con.get();
        let mut invocation = self
            .scripts
            .create
            .key(self.keys.session(&s.user_id, s.session_id));
        invocation
            .key(self.keys.user(&s.user_id))
            .key(self.keys.cutoff(&s.user_id))
            .arg(s.session_id.as_hyphenated().to_string())
            .arg(&s.user_id)
            .arg(s.jti.as_hyphenated().to_string())
            .arg(s.created_at)
            .arg(state::capped_expiry(
                s.token_expires_at,
                s.session_expires_at,
            ))
            .arg(s.session_expires_at)
            .arg(expire_at(s.session_expires_at))
            .arg(if s.label.is_some() { "1" } else { "0" })
            .arg(s.label.as_deref().unwrap_or(""))
            .arg(s.created_at_ms);
        let created: i64 = self.write_script(&mut con, &invocation).await?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::new("session id already exists"))
        }
    }

    async fn rotate(&self, req: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        self.rotate_optimistic(req).await
    }

    /// Reads the session first: an unknown, another user's or an already
    /// revoked session is answered `false` without a write. Otherwise the
    /// revocation is logged, then applied (see `log.rs` for why in this order).
    async fn revoke_session(
        &self,
        session_id: Uuid,
        user_id: &str,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut con = self.con.get();
        let key = self.keys.session(user_id, session_id);
        let row: Vec<Option<String>> = self
            .call(
                ::redis::cmd("HMGET")
                    .arg(&key)
                    .arg(&["user", "rev", "exp"])
                    .query_async(&mut con),
            )
            .await?;
        let expires_at = match row.as_slice() {
            [Some(user), rev, Some(exp)] if user == user_id && rev.as_deref() != Some("1") => {
                exp.parse::<u64>().map_err(|_| records::corrupt())?
            }
            _ => return Ok(false),
        };
        self.log_session(&mut con, session_id, expires_at).await?;
        Ok(self.revoke_at(&mut con, (&key, user_id), None, now).await? == 1)
    }

    async fn revoke_user(&self, user_id: &str, now_ms: u64) -> Result<u64, StoreError> {
        let mut con = self.con.get();
        let user_key = self.keys.user(user_id);
        // Logged first (see `log.rs`), then the cutoff: a session created from
        // then on is recorded revoked if it predates it (the create script
        // reads it), and every session created before is in the set read
        // next. So no login racing this call survives it, nor shows in the
        // user's list.
        self.log_user(&mut con, user_id, now_ms).await?;
        self.revoke_listed(&mut con, user_id, &user_key, &[], now_ms)
            .await?;
        let ids = self.session_ids(&mut con, &user_key).await?;
        self.revoke_listed(&mut con, user_id, &user_key, &ids, now_ms)
            .await
    }

    async fn is_revoked(
        &self,
        session_id: Uuid,
        user_id: &str,
        issued_at: u64,
    ) -> Result<bool, StoreError> {
        let mut con = self.con.get();
        let mut pipe = ::redis::pipe();
        pipe.cmd("HMGET")
            .arg(self.keys.session(user_id, session_id))
            .arg(&records::CHECK_FIELDS)
            .cmd("GET")
            .arg(self.keys.cutoff(user_id));
        let (session, cutoff): (Vec<Option<String>>, Option<String>) =
            self.call(pipe.query_async(&mut con)).await?;
        let cutoff = records::parse_opt_u64(cutoff.as_deref())?;
        Ok(state::is_revoked(
            records::session_check(&session)?,
            user_id,
            issued_at,
            cutoff,
        ))
    }

    async fn list_sessions(&self, user_id: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError> {
        let mut con = self.con.get();
        let user_key = self.keys.user(user_id);
        let ids = self.session_ids(&mut con, &user_key).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in &ids {
            pipe.add_command(records::listed_args(&self.keys.session(user_id, *id)));
        }
        let rows: Vec<Vec<Option<String>>> = self.call(pipe.query_async(&mut con)).await?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (id, row) in ids.into_iter().zip(rows) {
            match records::listed(id, row)? {
                None => gone.push(id),
                // The owner is checked again: the user's set could be stale.
                Some(s)
                    if s.state.user_id == user_id
                        && state::is_listable(&s.state, s.live.as_ref(), now) =>
                {
                    out.push(s.info);
                }
                Some(_) => {}
            }
        }
        self.forget_sessions(&mut con, &user_key, &gone).await?;
        out.sort_by_key(|s| (s.created_at, s.session_id));
        Ok(out)
    }

    /// Redis deletes every session's keys by itself at the session's absolute
    /// expiry (plus [`EXPIRY_MARGIN_SECS`](super::EXPIRY_MARGIN_SECS)); this
    /// removes, relative to `now`, what has not gone yet: sessions past their
    /// expiry, unused tokens past theirs, and cutoffs no stored session falls
    /// under. It scans the prefix's user sets in batches (`SCAN`, on every
    /// master of a cluster), and no script call does more than a bounded amount
    /// of work (see `docs/redis.md`); the count covers only what this call
    /// removed, not what Redis expired on its own.
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        let removed = self.purge(now).await?;
        self.purge_revocations(now).await?;
        Ok(removed)
    }
}
