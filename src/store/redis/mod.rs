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
//! The other state rules (revoked, listed, expiry cap) come from [`state`] too:
//! the store reads a record into Rust and asks the rule. Only the two rules that
//! must run inside one atomic step, the revoke-all cutoff and the purge, are
//! translated into Lua, each next to a comment naming the function it translates.
//!
//! # Limits
//!
//! Standalone Redis or a Sentinel-managed primary; not Redis Cluster (the scripts
//! touch keys of one user in different slots). Replication is asynchronous: see
//! `docs/redis.md` for what a failover can lose and when to choose SQL instead.
//!
//! # Files
//!
//! `builder.rs` makes a store (connection, settings, URL redaction);
//! `records.rs` names the keys and reads the hash fields; `scripts.rs` holds the
//! Lua scripts (`scripts/*.lua`); `store.rs` is the [`TokenStore`] impl, with the
//! rotation loop in `rotate.rs` and the `SCAN` purge in `purge.rs`.
//!
//! [`rotation::decide`]: crate::store::rotation::decide
//! [`state`]: crate::store::state
//! [`TokenStore`]: crate::store::TokenStore
//! [`StoreError`]: crate::StoreError

use ::redis::RedisError;

use crate::error::StoreError;

mod builder;
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
