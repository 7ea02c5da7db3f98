//! Where refresh-token families live: the [`TokenStore`] trait and its backends.
//!
//! A backend only keeps state and makes each rotation one atomic step; *what* a
//! rotation does is decided by [`rotation::decide`], and the state rules
//! (revoked, listed, purged, expiry cap) by [`state`], both written once for
//! every backend. No backend stores token text: only `jti`s, session ids, the
//! user id value and times, so a leaked store signs nobody in.
//!
//! # The backend contract
//!
//! [`TokenStore`] is what another crate implements to add a backend. The types it
//! receives and builds are `#[non_exhaustive]`, with constructors, so a field
//! added in a later release does not break a backend: [`NewSession`],
//! [`RotateRequest`], [`RotateOutcome`], [`SessionInfo`],
//! [`rotation::SessionState`] and [`rotation::TokenState`]. One enum is kept
//! exhaustive on purpose: [`rotation::Decision`], because a backend must apply
//! every decision, and a new one must fail to compile rather than be ignored.
//! Every backend runs the conformance suite (feature `test-util`).

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::StoreError;

#[cfg(any(feature = "redis", feature = "sql"))]
pub(crate) mod backoff;
pub mod log;
pub mod memory;
pub mod rotation;
pub mod state;

pub use log::{Revocation, RevocationLog, Revoked};
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

/// A new id for a session or a stored refresh token: a UUIDv7, whose time-ordered
/// prefix keeps the stores' indexes append-mostly (inserts and purges touch few
/// pages) while its 74 random bits keep ids unguessable. Ids are never secrets:
/// tokens are signed.
pub fn new_store_id() -> Uuid {
    Uuid::now_v7()
}

/// A new session (refresh-token family) and its first refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewSession {
    /// The session (family) id, the `sid` claim.
    pub session_id: Uuid,
    /// The user id value (the configured id field, as a string).
    pub user_id: String,
    /// The first refresh token's `jti`.
    pub jti: Uuid,
    /// When the session started (seconds since the epoch).
    pub created_at: u64,
    /// When the session started, in milliseconds: what the user's revoke-all
    /// cutoff is compared with ([`state::predates_cutoff`]).
    pub created_at_ms: u64,
    /// When the first refresh token expires.
    pub token_expires_at: u64,
    /// The session's absolute expiry: no rotation extends it.
    pub session_expires_at: u64,
    /// A label the app set at login (a user agent, a device name).
    pub label: Option<String>,
}

impl NewSession {
    /// A session of `user_id` started at `created_at`, whose first token `jti`
    /// dies at `token_expires_at` (capped by the session's absolute expiry,
    /// [`state::capped_expiry`]) and which ends at `session_expires_at`.
    pub fn new(
        session_id: Uuid,
        user_id: impl Into<String>,
        jti: Uuid,
        created_at: u64,
        token_expires_at: u64,
        session_expires_at: u64,
    ) -> Self {
        NewSession {
            session_id,
            user_id: user_id.into(),
            jti,
            created_at,
            created_at_ms: created_at.saturating_mul(1000),
            token_expires_at: state::capped_expiry(token_expires_at, session_expires_at),
            session_expires_at,
            label: None,
        }
    }

    /// The label shown in session lists.
    pub fn with_label(mut self, label: Option<String>) -> Self {
        self.label = label;
        self
    }

    /// The creation time to the millisecond (by default `created_at` × 1000).
    pub fn with_created_at_ms(mut self, created_at_ms: u64) -> Self {
        self.created_at_ms = created_at_ms;
        self
    }
}

/// One rotation: exchange `jti` for `successor_jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Now, in milliseconds.
    pub now_ms: u64,
    /// The refresh-token lifetime; the successor's expiry is capped by the session's.
    pub refresh_ttl: u64,
    /// The reuse window in seconds (0: strict single use): how long after a
    /// token's use it may be presented again and get its (unused) successor
    /// again.
    pub grace: u64,
}

impl RotateRequest {
    /// Exchange token `jti` of `session_id` (of `user_id`) for `successor_jti` at
    /// `now`; the successor lives `refresh_ttl` seconds (capped by the session),
    /// with no reuse grace window (see [`RotateRequest::with_grace`]).
    pub fn new(
        session_id: Uuid,
        user_id: impl Into<String>,
        jti: Uuid,
        successor_jti: Uuid,
        now: u64,
        refresh_ttl: u64,
    ) -> Self {
        RotateRequest {
            session_id,
            user_id: user_id.into(),
            jti,
            successor_jti,
            now,
            now_ms: now.saturating_mul(1000),
            refresh_ttl,
            grace: 0,
        }
    }

    /// The reuse window in seconds (see [`rotation::decide`]).
    pub fn with_grace(mut self, grace: u64) -> Self {
        self.grace = grace;
        self
    }

    /// Now to the millisecond (by default `now` × 1000).
    pub fn with_now_ms(mut self, now_ms: u64) -> Self {
        self.now_ms = now_ms;
        self
    }
}

/// What a rotation did. Store failures are never an outcome: they are a [`StoreError`].
///
/// Backends build it with [`rotation::outcome`]; callers match it with a
/// wildcard arm (`#[non_exhaustive]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateOutcome {
    /// The token was live: it is now used, and the successor is the session's live token.
    #[non_exhaustive]
    Rotated {
        /// The successor's expiry (capped by the session's absolute expiry).
        expires_at: u64,
        /// The session's absolute expiry: no token outlives it.
        session_expires_at: u64,
    },
    /// The token was used within the reuse window, and its successor was never
    /// used: the successor is answered again (nothing changed in the store).
    #[non_exhaustive]
    Redelivered {
        /// The successor's `jti`.
        jti: Uuid,
        /// The successor's expiry.
        expires_at: u64,
        /// The session's absolute expiry.
        session_expires_at: u64,
    },
    /// The token was used before: the whole session is now revoked (committed).
    ReuseDetected,
    /// The session was revoked before this request (or by a revoke-all it raced).
    Revoked,
    /// The token or the session is past its expiry.
    Expired,
    /// The store does not know this token, or it belongs to another user.
    Unknown,
}

/// A session as [`TokenStore::list_sessions`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

impl SessionInfo {
    /// A listed session; `last_rotated_at` starts at `created_at`, `label` empty.
    pub fn new(
        session_id: Uuid,
        user_id: impl Into<String>,
        created_at: u64,
        expires_at: u64,
    ) -> Self {
        SessionInfo {
            session_id,
            user_id: user_id.into(),
            created_at,
            last_rotated_at: created_at,
            expires_at,
            label: None,
        }
    }

    /// When it last rotated.
    pub fn with_last_rotated_at(mut self, at: u64) -> Self {
        self.last_rotated_at = at;
        self
    }

    /// The label set at login.
    pub fn with_label(mut self, label: Option<String>) -> Self {
        self.label = label;
        self
    }
}

/// The state rotation needs: async, object safe, usable as `Arc<dyn TokenStore>`.
///
/// Implementations make [`TokenStore::rotate`] one atomic step (an entry lock, a
/// transaction, a script) around [`rotation::decide`] and
/// [`rotation::successor_expiry`], apply the [`state`] rules for the other
/// calls, and pass the shared conformance suite (`test-util` feature). `Debug`
/// must not print credentials (a connection URL's password, say).
#[async_trait]
pub trait TokenStore: std::fmt::Debug + Send + Sync + 'static {
    /// Records a new session and its first refresh token. In the same atomic
    /// step it reads the user's revoke-all cutoff: a session created before it
    /// ([`state::predates_cutoff`]) is recorded revoked.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;

    /// Rotates one refresh token atomically; see [`RotateOutcome`].
    async fn rotate(&self, request: &RotateRequest) -> Result<RotateOutcome, StoreError>;

    /// Revokes a session of `user_id` (logout). `false` when it was unknown,
    /// another user's, or already revoked. The user is part of the address: a
    /// store may keep a user's sessions together (on one Redis Cluster slot, say).
    async fn revoke_session(
        &self,
        session_id: Uuid,
        user_id: &str,
        now: u64,
    ) -> Result<bool, StoreError>;

    /// Revokes every session of a user (log out everywhere): moves the user's
    /// cutoff to `now_ms` (milliseconds; [`state::next_cutoff`]) and revokes the
    /// sessions created before it. The cutoff is written before the sessions
    /// are listed, and session creation and rotation check it in their atomic
    /// step ([`state::predates_cutoff`]), so a login racing this call never
    /// survives it. Returns how many sessions were live.
    async fn revoke_user(&self, user_id: &str, now_ms: u64) -> Result<u64, StoreError>;

    /// Whether a token of `session_id` issued at `issued_at` (seconds) to
    /// `user_id` is revoked: [`state::is_revoked`] over the session and the
    /// user's cutoff.
    async fn is_revoked(
        &self,
        session_id: Uuid,
        user_id: &str,
        issued_at: u64,
    ) -> Result<bool, StoreError>;

    /// The live (not revoked, not expired) sessions of a user.
    async fn list_sessions(&self, user_id: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError>;

    /// Removes what has expired: whole sessions past their absolute expiry
    /// ([`state::session_purgeable`]), unused tokens past their own
    /// ([`state::token_purgeable`]), and cutoffs no stored session falls under
    /// ([`state::cutoff_purgeable`]). Used tokens stay until their session
    /// expires, so a late replay is still recognised as reuse. Returns the
    /// token rows removed.
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError>;
}
