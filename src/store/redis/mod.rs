//! [`RedisStore`]: a [`TokenStore`] in Redis, shared by every instance of an app
//! (feature `redis`).
//!
//! # Layout
//!
//! Under a configurable key prefix `P` (several apps can share one Redis):
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `P:s:{session}` | hash | the session: user, revoked flag, absolute expiry, live token and its parent, a `v` version counter, label, times, and one `t:{jti}` field per refresh token (its expiry, and when it was used) |
//! | `P:u:{user}` | set | the user's session ids |
//! | `P:cut:{user}` | string | the user's revocation cutoff: tokens issued before it are revoked |
//!
//! No token text is stored. Every session key expires (`EXPIREAT`) at the
//! session's absolute expiry plus [`EXPIRY_MARGIN_SECS`], so Redis purges itself;
//! the user set lives as long as the user's longest session, and a user's cutoff
//! at least as long as every session it could cover.
//!
//! # Rotation
//!
//! The rules live once, in [`rotation::decide`]; this backend applies them with
//! optimistic concurrency. It reads the session's state and the presented token
//! (one `HMGET`, consistent), asks [`rotation::decide`] in Rust, and applies the
//! decision with one Lua script that first checks the session's version is still
//! the one it read, and in the same atomic step marks the old live token used,
//! writes the successor and moves the live pointer (or revokes the session). When
//! another writer got there first, it reads again and decides again (at most
//! [`RedisStoreBuilder::max_rotation_attempts`] times). Of many concurrent
//! rotations of one token, exactly one wins. Scripts are sent by hash
//! (`EVALSHA`) and loaded again after `NOSCRIPT` (a Redis restart, `SCRIPT FLUSH`).
//!
//! A transport error is never retried inside a rotation: a reply lost after the
//! script ran would otherwise be read back as reuse. It is a [`StoreError`] (503).
//!
//! # Limits
//!
//! Standalone Redis or a Sentinel-managed primary; not Redis Cluster (the scripts
//! touch keys of one user in different slots). Replication is asynchronous: see
//! `docs/redis.md` for what a failover can lose and when to choose SQL instead.

use std::fmt;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError};
use async_trait::async_trait;
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::backoff;
use crate::store::rotation::{self, Decision};
use crate::store::{NewSession, RotateOutcome, RotateRequest, SessionInfo, TokenStore, state};

mod records;
mod scripts;
use self::records::{Keys, Snapshot, corrupt, expire_at};
use self::scripts::Scripts;

/// The `redis` crate this store is built on (1.x), re-exported so apps build a
/// [`ConnectionManager`] or a [`ConnectionManagerConfig`] of the same version.
pub use ::redis;

/// Seconds added to a session's absolute expiry before Redis deletes its keys:
/// room for clock skew between the app and Redis, so a late replay of a token of a
/// just-expired session is still answered as expired rather than unknown.
pub const EXPIRY_MARGIN_SECS: u64 = 60;

/// The default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "tower-jwt-auth";

/// How many keys one `SCAN` step of [`TokenStore::purge_expired`] asks for.
const PURGE_BATCH: usize = 256;

/// The default bound on read-decide-write rounds of one rotation.
const DEFAULT_MAX_ATTEMPTS: u32 = 24;

/// A [`TokenStore`] in Redis, for apps with several instances. See the
/// [module docs](self) for the layout and the rotation protocol, and
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
    con: ConnectionManager,
    keys: Keys,
    url: Option<String>,
    max_attempts: u32,
    scripts: Scripts,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("prefix", &self.keys.prefix())
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

enum Source {
    None,
    Url(String),
    Manager(ConnectionManager),
}

/// Builds a [`RedisStore`]: from a URL or an existing [`ConnectionManager`], with a
/// key prefix.
#[must_use]
pub struct RedisStoreBuilder {
    source: Source,
    prefix: String,
    config: Option<ConnectionManagerConfig>,
    max_attempts: u32,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::None => "none".to_owned(),
            Source::Url(u) => redact_url(u),
            Source::Manager(_) => "connection manager".to_owned(),
        };
        f.debug_struct("RedisStoreBuilder")
            .field("source", &source)
            .field("prefix", &self.prefix)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        RedisStoreBuilder {
            source: Source::None,
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            config: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// The connection manager's settings when none are given: fail fast while Redis
/// is away (a request gets a 503 within about a second instead of hanging), and
/// keep reconnecting in the background on the next requests.
pub fn default_connection_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
}

impl RedisStoreBuilder {
    /// Connect to this URL (`redis://[:password@]host:port/db`, `rediss://` needs
    /// the `redis` crate's TLS features). The password never shows in `Debug`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.source = Source::Url(url.into());
        self
    }

    /// Use an existing connection manager (its own reconnect settings apply).
    pub fn connection_manager(mut self, manager: ConnectionManager) -> Self {
        self.source = Source::Manager(manager);
        self
    }

    /// The key prefix (default [`DEFAULT_KEY_PREFIX`]), so several apps can share
    /// one Redis. Give each app its own; one prefix should not be another followed
    /// by `:`. Must be 1 to 128 bytes, without whitespace or the glob characters
    /// `* ? [ ] \`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Reconnect and timeout settings for a store built from a URL (default:
    /// [`default_connection_config`]).
    pub fn connection_config(mut self, config: ConnectionManagerConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// How many read-decide-write rounds one rotation may take when concurrent
    /// writers keep changing its session (default 24, at least 1). Running out is a
    /// [`StoreError`], never a token outcome.
    pub fn max_rotation_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    fn client(url: &str) -> Result<Client, StoreError> {
        // The parse error could quote the URL: keep it out of the error.
        Client::open(url).map_err(|_| StoreError::new("invalid Redis URL"))
    }

    fn finish(self, keys: Keys, con: ConnectionManager, url: Option<String>) -> RedisStore {
        RedisStore {
            con,
            keys,
            url,
            max_attempts: self.max_attempts,
            scripts: Scripts::new(),
        }
    }

    /// Connects now and loads the scripts (`SCRIPT LOAD`): an unreachable Redis
    /// is an error here. Later calls send only the scripts' hashes.
    pub async fn build(mut self) -> Result<RedisStore, StoreError> {
        let keys = Keys::new(&self.prefix)?;
        let store = match std::mem::replace(&mut self.source, Source::None) {
            Source::None => {
                return Err(StoreError::new(
                    "no Redis URL or connection manager configured",
                ));
            }
            Source::Manager(m) => self.finish(keys, m, None),
            Source::Url(url) => {
                let client = Self::client(&url)?;
                let config = self.config.take().unwrap_or_else(default_connection_config);
                let con = ConnectionManager::new_with_config(client, config)
                    .await
                    .map_err(redis_err)?;
                self.finish(keys, con, Some(url))
            }
        };
        store.load_scripts().await?;
        Ok(store)
    }

    /// Builds without connecting: the connection is made on first use, so an app
    /// can start while Redis is still away (its requests get 503 until it is back).
    /// Needs a Tokio runtime.
    pub fn build_lazy(mut self) -> Result<RedisStore, StoreError> {
        let keys = Keys::new(&self.prefix)?;
        match std::mem::replace(&mut self.source, Source::None) {
            Source::None => Err(StoreError::new(
                "no Redis URL or connection manager configured",
            )),
            Source::Manager(m) => Ok(self.finish(keys, m, None)),
            Source::Url(url) => {
                let client = Self::client(&url)?;
                let config = self.config.take().unwrap_or_else(default_connection_config);
                let con =
                    ConnectionManager::new_lazy_with_config(client, config).map_err(redis_err)?;
                Ok(self.finish(keys, con, Some(url)))
            }
        }
    }
}

/// The URL with its password (userinfo or `password=` query parameter) replaced by `***`.
fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let at = rest + at;
            if let Some(colon) = out[rest..at].find(':') {
                out.replace_range(rest + colon + 1..at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("pass") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

fn redis_err(e: RedisError) -> StoreError {
    StoreError::with_source("Redis request failed", e)
}

/// A random pause between rotation attempts, so conflicting writers spread out:
/// none before the second, then up to 1, 2, 4, 8, 16, then 32 ms (Tokio's timer
/// ticks in milliseconds). Only writers of one and the same session ever wait here:
/// with no grace window a race is settled in at most three rounds (one rotation,
/// one revocation for reuse, then every reader sees the revocation); with one,
/// every concurrent refresh is a write, and 64 of them at once need up to a dozen.
async fn pause(attempt: u32) {
    if attempt == 0 {
        tokio::task::yield_now().await;
        return;
    }
    tokio::time::sleep(backoff::jittered(attempt, Duration::from_millis(1), 5)).await;
}

impl RedisStore {
    /// A builder; give it a URL or a connection manager.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects to `url` with the default key prefix and settings.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().url(url).build().await
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// Loads every script into Redis's script cache. Not needed for correctness:
    /// a script missing from the cache (`NOSCRIPT`, after a restart or a
    /// `SCRIPT FLUSH`) is loaded again on its next call.
    pub async fn load_scripts(&self) -> Result<(), StoreError> {
        let mut con = self.con.clone();
        for script in self.scripts.all() {
            script.load_async(&mut con).await.map_err(redis_err)?;
        }
        Ok(())
    }

    /// A clone of the connection manager (cheap; it shares the connection).
    pub fn connection_manager(&self) -> ConnectionManager {
        self.con.clone()
    }

    /// Reads what a rotation decides on: the session's state and version, and
    /// the presented token, in one `HMGET`.
    async fn snapshot(
        &self,
        con: &mut ConnectionManager,
        key: &str,
        jti: Uuid,
    ) -> Result<Snapshot, StoreError> {
        let reply: Vec<Option<String>> = ::redis::cmd("HMGET")
            .arg(key)
            .arg(&records::SNAPSHOT_FIELDS)
            .arg(records::token_field(jti))
            .query_async(con)
            .await
            .map_err(redis_err)?;
        records::snapshot(reply)
    }

    /// The ids in a user's session set (members that are not ids are skipped).
    async fn session_ids(
        &self,
        con: &mut ConnectionManager,
        user_key: &str,
    ) -> Result<Vec<Uuid>, StoreError> {
        let members: Vec<String> = ::redis::cmd("SMEMBERS")
            .arg(user_key)
            .query_async(con)
            .await
            .map_err(redis_err)?;
        Ok(members
            .iter()
            .filter_map(|m| Uuid::parse_str(m).ok())
            .collect())
    }

    /// Drops sessions Redis (or a purge) removed from their user's set.
    async fn forget_sessions(
        &self,
        con: &mut ConnectionManager,
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
        let _: i64 = ::redis::cmd("SREM")
            .arg(user_key)
            .arg(&gone)
            .query_async(con)
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    /// Runs the revoke script on one session, at `version` only (`""`: at any).
    /// 1 revoked, 0 the version changed, -1 unknown, -2 already revoked.
    async fn revoke_at(
        &self,
        con: &mut ConnectionManager,
        key: &str,
        version: &str,
        now: u64,
    ) -> Result<i64, StoreError> {
        self.scripts
            .revoke
            .key(key)
            .arg(version)
            .arg(now)
            .invoke_async(con)
            .await
            .map_err(redis_err)
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        let mut con = self.con.clone();
        let created: i64 = self
            .scripts
            .create
            .key(self.keys.session(s.session_id))
            .key(self.keys.user(&s.user_id))
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
            .invoke_async(&mut con)
            .await
            .map_err(redis_err)?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::new("session id already exists"))
        }
    }

    async fn rotate(&self, req: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        let key = self.keys.session(req.session_id);
        let mut con = self.con.clone();
        for attempt in 0..self.max_attempts {
            let snap = self.snapshot(&mut con, &key, req.jti).await?;
            let decision = rotation::decide(snap.session.as_ref(), snap.token.as_ref(), req);
            let Some(session) = snap.session.as_ref() else {
                return Ok(rotation::outcome(decision, 0));
            };
            let expires_at = rotation::successor_expiry(session, req);
            if self
                .apply(&mut con, &key, &snap, decision, req, expires_at)
                .await?
            {
                return Ok(rotation::outcome(decision, expires_at));
            }
            pause(attempt).await;
        }
        Err(StoreError::new(
            "rotation kept conflicting with concurrent writes to its session",
        ))
    }

    async fn revoke_session(&self, session_id: Uuid, now: u64) -> Result<bool, StoreError> {
        let mut con = self.con.clone();
        let key = self.keys.session(session_id);
        Ok(self.revoke_at(&mut con, &key, "", now).await? == 1)
    }

    async fn revoke_user(&self, user_id: &str, now: u64) -> Result<u64, StoreError> {
        let mut con = self.con.clone();
        let user_key = self.keys.user(user_id);
        let ids = self.session_ids(&mut con, &user_key).await?;
        let mut invocation = self.scripts.revoke_user.key(self.keys.cutoff(user_id));
        invocation.key(&user_key);
        for id in ids {
            invocation.key(self.keys.session(id));
        }
        // Sessions created after the set was read were issued at or after `now`'s
        // second, or are covered by the cutoff; the cutoff lives at least as long
        // as the user's set, which lives as long as the user's longest session.
        // The script moves the cutoff as `state::next_cutoff` does.
        let n: i64 = invocation
            .arg(now)
            .arg(expire_at(now))
            .invoke_async(&mut con)
            .await
            .map_err(redis_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn is_revoked(
        &self,
        session_id: Uuid,
        user_id: &str,
        issued_at: u64,
    ) -> Result<bool, StoreError> {
        let mut con = self.con.clone();
        let (session, cutoff): (Vec<Option<String>>, Option<String>) = ::redis::pipe()
            .cmd("HMGET")
            .arg(self.keys.session(session_id))
            .arg(&records::CHECK_FIELDS)
            .cmd("GET")
            .arg(self.keys.cutoff(user_id))
            .query_async(&mut con)
            .await
            .map_err(redis_err)?;
        let cutoff = records::parse_opt_u64(cutoff.as_deref())?;
        Ok(state::is_revoked(
            records::session_check(&session),
            user_id,
            issued_at,
            cutoff,
        ))
    }

    async fn list_sessions(&self, user_id: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError> {
        let mut con = self.con.clone();
        let user_key = self.keys.user(user_id);
        let ids = self.session_ids(&mut con, &user_key).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET")
                .arg(self.keys.session(*id))
                .arg(&records::LISTED_FIELDS);
        }
        let rows: Vec<Vec<Option<String>>> = pipe.query_async(&mut con).await.map_err(redis_err)?;
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
    /// expiry (plus [`EXPIRY_MARGIN_SECS`]); this removes, relative to `now`, what
    /// has not gone yet: sessions past their expiry and unused tokens past theirs.
    /// It scans the prefix's session keys in batches (`SCAN`); the count covers
    /// only what this call removed, not what Redis expired on its own.
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        let mut con = self.con.clone();
        let pattern = self.keys.session_pattern();
        let mut cursor: u64 = 0;
        let mut removed: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(PURGE_BATCH)
                .query_async(&mut con)
                .await
                .map_err(redis_err)?;
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
}

impl RedisStore {
    /// Applies a rotation `decision` made on `snap`, if the session is still at
    /// the version it was made on: whether it was applied (a refusal always is).
    async fn apply(
        &self,
        con: &mut ConnectionManager,
        key: &str,
        snap: &Snapshot,
        decision: Decision,
        req: &RotateRequest,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        let Some(session) = snap.session.as_ref() else {
            return Ok(true);
        };
        match decision {
            Decision::Refuse(_) => Ok(true),
            Decision::Rotate | Decision::RotateWithinGrace => {
                let old_live = session
                    .live_jti
                    .map(|j| j.as_hyphenated().to_string())
                    .unwrap_or_default();
                let r: i64 = self
                    .scripts
                    .rotate
                    .key(key)
                    .arg(&snap.version)
                    .arg(old_live)
                    .arg(req.jti.as_hyphenated().to_string())
                    .arg(req.successor_jti.as_hyphenated().to_string())
                    .arg(expires_at)
                    .arg(req.now)
                    .arg(expire_at(session.expires_at))
                    .invoke_async(con)
                    .await
                    .map_err(redis_err)?;
                Ok(r == 1)
            }
            Decision::RevokeForReuse => {
                Ok(self.revoke_at(con, key, &snap.version, req.now).await? == 1)
            }
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
        let reply: Vec<String> = invocation
            .arg(now)
            .invoke_async(con)
            .await
            .map_err(redis_err)?;
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
            srem.exec_async(con).await.map_err(redis_err)?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("redis://user:s3cret@host/"),
            "redis://user:***@host/"
        );
        assert_eq!(redact_url("redis://host:6379/"), "redis://host:6379/");
        assert_eq!(redact_url("redis://user@host/"), "redis://user@host/");
        assert_eq!(
            redact_url("redis://host/?password=s3cret&db=1"),
            "redis://host/?password=***&db=1"
        );
        assert_eq!(redact_url("redis://a:b:c@d@host/"), "redis://a:***@host/");
    }

    #[test]
    fn debug_hides_the_password() {
        let b = RedisStore::builder().url("redis://:hunter2hunter2@localhost/");
        assert!(!format!("{b:?}").contains("hunter2"));
    }
}
