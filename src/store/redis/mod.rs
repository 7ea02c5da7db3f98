//! [`RedisStore`]: a [`TokenStore`] in Redis, shared by every instance of an app
//! (feature `redis`).
//!
//! # Layout
//!
//! Under a configurable key prefix `P` (several apps can share one Redis):
//!
//! Every key of one user carries the user's hash tag `{T}` (16 hex digits of a
//! hash of the user id): on a Redis Cluster they share one slot, so every
//! script touches keys of one slot only.
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `P:{T}:s:{session}` | hash | the session: user, revoked flag, absolute expiry, live token, its parent and its expiry, a `v` version counter, label, times (creation also in milliseconds), and one `t:{jti}` field per refresh token (its expiry, and when it was used) |
//! | `P:{T}:u:{user}` | set | the user's session ids |
//! | `P:{T}:cut:{user}` | string | the user's revoke-all cutoff, in milliseconds: sessions created before it are revoked |
//! | `P:rev` | stream | the revocation log: one entry per revoked session (`s`, its expiry `e`) or revoke-all (`u`, cutoff `c`, `e`), appended just before the revocation is applied (see `log.rs`); what [`RevocationView`](crate::RevocationView)s follow |
//!
//! No token text is stored. Every session key expires (`EXPIREAT`) at the
//! session's absolute expiry plus [`EXPIRY_MARGIN_SECS`], so Redis purges itself;
//! the user set lives as long as the user's longest session, and a user's cutoff
//! at least as long as every session it could cover.
//!
//! # Rotation
//!
//! The rules live once, in [`rotation::decide`]; this backend applies them with
//! optimistic concurrency. In one round trip it reads the session's state and
//! the presented token (one `HMGET`, one key: consistent) and the user's cutoff
//! (another key), asks [`rotation::decide`] in Rust, and applies the decision:
//!
//! - `Rotate` and `Revoke` with one Lua script each, which first checks that
//!   the session's version and the cutoff are still the ones read, and in the
//!   same atomic step marks the presented token used, writes the successor and
//!   moves the live pointer (or revokes the session). When another writer got
//!   there first (or a revoke-all moved the cutoff), it reads again and decides
//!   again (at most [`RedisStoreBuilder::max_rotation_attempts`] times);
//! - `Redeliver` and `Refuse` write nothing: the answer stands on the read.
//!
//! A session is a linear chain: of many concurrent refreshes of one token one
//! rotates, and the others, within the reuse window, get the same successor.
//! Scripts are sent by hash (`EVALSHA`) and loaded again after `NOSCRIPT` (a
//! Redis restart, `SCRIPT FLUSH`).
//!
//! A transport error or a timeout is never retried inside a rotation: it is a
//! [`StoreError`] (503). Its script may have run; the client's retry with the
//! same token then gets the same successor, within the reuse window.
//! Every request to Redis is bounded by the store's
//! [response timeout](RedisStoreBuilder::response_timeout).
//!
//! The other state rules (revoked, listed, expiry cap) come from [`state`] too:
//! the store reads a record into Rust and asks the rule. Only the rules that
//! must run inside one atomic step, the revoke-all cutoff at creation and the
//! purge, are translated into Lua, each next to a comment naming the function it
//! translates. The purge does a bounded amount of work per script call.
//!
//! # Deployments
//!
//! A single Redis, a Sentinel-managed primary behind one address, or (feature
//! `redis-cluster`, `RedisStoreBuilder::cluster_urls`) a Redis Cluster: the
//! cluster connection routes each request by its key's slot and follows
//! `MOVED`/`ASK` redirections and failovers; during a failover's gap calls
//! fail with a [`StoreError`] (503) and the store recovers by itself. The purge
//! scans every master. Replication is asynchronous: see `docs/redis.md` for what
//! a failover can lose and when to choose SQL instead.
//!
//! # Files
//!
//! `builder.rs` makes a store (connection, settings, URL redaction);
//! `connection.rs` is the one connection type over a node or a cluster;
//! `records.rs` names the keys and reads the hash fields; `scripts.rs` holds the
//! Lua scripts (`scripts/*.lua`); `store.rs` is the [`TokenStore`] impl, with the
//! rotation loop in `rotate.rs` and the bounded purge in `purge.rs`.
//!
//! [`rotation::decide`]: crate::store::rotation::decide
//! [`state`]: crate::store::state
//! [`TokenStore`]: crate::store::TokenStore
//! [`StoreError`]: crate::StoreError

use ::redis::RedisError;

use crate::error::StoreError;

mod builder;
mod connection;
mod durability;
mod link;
mod log;
mod purge;
mod records;
mod rotate;
mod scripts;
mod store;

/// The `redis` crate this store is built on (1.x), re-exported so apps build a
/// [`ConnectionManager`] or a [`ConnectionManagerConfig`] of the same version.
///
/// [`ConnectionManager`]: ::redis::aio::ConnectionManager
/// [`ConnectionManagerConfig`]: ::redis::aio::ConnectionManagerConfig
pub use ::redis;

pub use self::builder::{DEFAULT_RESPONSE_TIMEOUT, RedisStoreBuilder, default_connection_config};
pub use self::store::RedisStore;

/// Seconds added to a session's absolute expiry before Redis deletes its keys:
/// room for clock skew between the app and Redis, so a late replay of a token of a
/// just-expired session is still answered as expired rather than unknown.
pub const EXPIRY_MARGIN_SECS: u64 = 60;

/// The default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "tower-jwt-auth";

/// A failed Redis request, as every call of this store reports it.
fn redis_err(e: RedisError) -> StoreError {
    StoreError::with_source("Redis request failed", e)
}
