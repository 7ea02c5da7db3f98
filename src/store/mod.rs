//! Where refresh-token families live: the [`TokenStore`] trait and its backends.
//!
//! A backend only keeps state and makes each rotation one atomic step; *what* a
//! rotation does is decided by [`rotation::decide`](crate::rotation::decide),
//! written once for every backend. No backend stores token text: only `jti`s,
//! session ids, the user id value and times, so a leaked store signs nobody in.

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::StoreError;

pub mod memory;

pub use memory::MemoryStore;

#[cfg(feature = "sql")]
pub mod sql;
#[cfg(feature = "mysql")]
pub use self::sql::MySqlStore;
#[cfg(feature = "postgres")]
pub use self::sql::PgStore;
#[cfg(feature = "sqlite")]
pub use self::sql::SqliteStore;

#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};

impl std::fmt::Debug for dyn TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn TokenStore")
    }
}

/// A new id for a session or a stored refresh token: a UUIDv7, whose time-ordered
/// prefix keeps the stores' indexes append-mostly (inserts and purges touch few
/// pages) while its 74 random bits keep ids unguessable. Ids are never secrets:
/// tokens are signed.
pub fn new_store_id() -> Uuid {
    Uuid::now_v7()
}

/// A new session (refresh-token family) and its first refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The session (family) id, the `sid` claim.
    pub session_id: Uuid,
    /// The user id value (the configured id field, as a string).
    pub user_id: String,
    /// The first refresh token's `jti`.
    pub jti: Uuid,
    /// When the session started (seconds since the epoch).
    pub created_at: u64,
    /// When the first refresh token expires.
    pub token_expires_at: u64,
    /// The session's absolute expiry: no rotation extends it.
    pub session_expires_at: u64,
    /// A label the app set at login (a user agent, a device name).
    pub label: Option<String>,
}

/// One rotation: exchange `jti` for `successor_jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateRequest {
    /// The session named by the presented token.
    pub session_id: Uuid,
    /// The user named by the presented token; a session of another user is unknown.
    pub user_id: String,
    /// The presented token's `jti`.
    pub jti: Uuid,
    /// The `jti` of the token to issue.
    pub successor_jti: Uuid,
    /// Now (seconds since the epoch).
    pub now: u64,
    /// The refresh-token lifetime; the successor's expiry is capped by the session's.
    pub refresh_ttl: u64,
    /// The reuse grace window in seconds (0: none).
    pub grace: u64,
}

/// What a rotation did. Store failures are never an outcome: they are a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The token was live: it is now used, and the successor is the session's live token.
    Rotated {
        /// The successor's expiry (capped by the session's absolute expiry).
        expires_at: u64,
    },
    /// The token was the immediate predecessor of the live token, used within the
    /// grace window: another successor was recorded in the session.
    RotatedWithinGrace {
        /// The successor's expiry.
        expires_at: u64,
    },
    /// The token was used before: the whole session is now revoked (committed).
    ReuseDetected,
    /// The session was revoked before this request.
    Revoked,
    /// The token or the session is past its expiry.
    Expired,
    /// The store does not know this token, or it belongs to another user.
    Unknown,
}

/// A session as [`TokenStore::list_sessions`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id.
    pub session_id: Uuid,
    /// The user id value.
    pub user_id: String,
    /// When the session started.
    pub created_at: u64,
    /// When it last rotated (`created_at` if never).
    pub last_rotated_at: u64,
    /// Its absolute expiry.
    pub expires_at: u64,
    /// The label set at login.
    pub label: Option<String>,
}

/// The state rotation needs: async, object safe, usable as `Arc<dyn TokenStore>`.
///
/// Implementations make [`TokenStore::rotate`] one atomic step (an entry lock, a
/// transaction, a script) around [`rotation::decide`](crate::rotation::decide) and
/// [`rotation::successor_expiry`](crate::rotation::successor_expiry), and pass the
/// shared conformance suite (`test-util` feature).
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Records a new session and its first refresh token.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;

    /// Rotates one refresh token atomically; see [`RotateOutcome`].
    async fn rotate(&self, request: &RotateRequest) -> Result<RotateOutcome, StoreError>;

    /// Revokes a session (logout). `false` when it was unknown or already revoked.
    async fn revoke_session(&self, session_id: Uuid, now: u64) -> Result<bool, StoreError>;

    /// Revokes every session of a user, and every token of theirs issued before
    /// `now`. Returns how many sessions were live.
    async fn revoke_user(&self, user_id: &str, now: u64) -> Result<u64, StoreError>;

    /// Whether a token of `session_id` issued at `issued_at` to `user_id` is
    /// revoked: its session is revoked or unknown, or all the user's tokens issued
    /// before `issued_at` were revoked.
    async fn is_revoked(
        &self,
        session_id: Uuid,
        user_id: &str,
        issued_at: u64,
    ) -> Result<bool, StoreError>;

    /// The live (not revoked, not expired) sessions of a user.
    async fn list_sessions(&self, user_id: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError>;

    /// Removes what has expired: whole sessions past their absolute expiry, and
    /// unused tokens past their own. Used tokens stay until their session expires,
    /// so a late replay is still recognised as reuse. Returns the token rows removed.
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError>;
}
