//! Rotation with optimistic concurrency: read the session (one `HMGET`), ask
//! [`rotation::decide`], apply the decision with one script that first checks
//! the session's version; when another writer got there first, pause (jittered)
//! and go again, at most [`RedisStoreBuilder::max_rotation_attempts`] times.
//!
//! [`RedisStoreBuilder::max_rotation_attempts`]: super::RedisStoreBuilder::max_rotation_attempts

use std::time::Duration;

use ::redis::aio::ConnectionManager;
use uuid::Uuid;

use super::records::{self, Snapshot, expire_at};
use super::redis_err;
use super::store::RedisStore;
use crate::error::StoreError;
use crate::store::backoff;
use crate::store::rotation::{self, Decision};
use crate::store::{RotateOutcome, RotateRequest};

impl RedisStore {
    /// Rotates one refresh token: read, decide, apply at the version read, or
    /// read again. A transport error is never retried (a reply lost after the
    /// script ran would be read back as reuse): it is the error.
    pub(super) async fn rotate_optimistic(
        &self,
        req: &RotateRequest,
    ) -> Result<RotateOutcome, StoreError> {
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
