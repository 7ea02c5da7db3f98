//! The revocation log: what a store tells the instances' revocation views
//! (see [`RevocationView`](crate::RevocationView)). Every revocation a store
//! commits (a logout, a session revoked by id, reuse detected, a refused user,
//! a revoke-all) is appended, in the same atomic step, as an entry with a
//! sequence number; entries leave the log when what they revoke has expired.
//! Optional for a backend: a store without a log is checked by the store
//! itself ([`JwtAuthLayer::revocation_check`](crate::JwtAuthLayer::revocation_check)).

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::StoreError;

/// One entry of a store's revocation log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Revocation {
    /// Its place in the log: increasing in the order entries were appended
    /// (a backend whose sequence can commit out of order, such as a
    /// database sequence, may show a gap for a while; readers wait for it).
    pub seq: u64,
    /// What was revoked.
    pub revoked: Revoked,
}

impl Revocation {
    /// An entry at `seq`.
    pub fn new(seq: u64, revoked: Revoked) -> Self {
        Revocation { seq, revoked }
    }
}

/// What a log entry revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoked {
    /// A session, until it expires (`expires_at`, seconds since the epoch).
    Session {
        /// The session id.
        session_id: Uuid,
        /// The session's absolute expiry: no token of it outlives it.
        expires_at: u64,
    },
    /// Every session of a user created before `cutoff_ms`, and every token
    /// issued before it (a revoke-all).
    User {
        /// The user id value.
        user_id: String,
        /// The cutoff, milliseconds since the epoch.
        cutoff_ms: u64,
        /// When the entry stops mattering: no token issued before the cutoff
        /// lives past it (seconds since the epoch).
        expires_at: u64,
    },
}

impl Revoked {
    /// When the entry stops mattering (seconds since the epoch).
    pub fn expires_at(&self) -> u64 {
        match self {
            Revoked::Session { expires_at, .. } | Revoked::User { expires_at, .. } => *expires_at,
        }
    }
}

/// A store's revocation log, read by [`RevocationView`](crate::RevocationView)s.
#[async_trait]
pub trait RevocationLog: std::fmt::Debug + Send + Sync + 'static {
    /// The entries after `seq` still in the log, in `seq` order, at most
    /// `limit` of them. `after(0, ..)` is the whole log: every revocation
    /// that still matters.
    async fn revocations_after(
        &self,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<Revocation>, StoreError>;

    /// Whether entries become visible in sequence order: none can appear
    /// later below one already read (one writer at a time, or a sequence
    /// assigned inside the atomic step: memory, Redis streams, SQLite). When
    /// `false` (a database sequence taken before commit: PostgreSQL, MySQL),
    /// readers wait for a gap below the newest entry to fill, for a while.
    fn ordered_at_commit(&self) -> bool {
        false
    }

    /// Returns when an entry after `seq` may have been appended, or after
    /// `timeout`, whichever comes first. A store that can push (PostgreSQL's
    /// `LISTEN`, Redis's blocking stream reads, memory) wakes the reader at
    /// once; the default polls: it sleeps `timeout`.
    async fn wait_for_revocations(&self, seq: u64, timeout: Duration) -> Result<(), StoreError> {
        let _ = seq;
        tokio::time::sleep(timeout).await;
        Ok(())
    }
}
