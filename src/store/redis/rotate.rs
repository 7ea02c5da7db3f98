//! Rotation with optimistic concurrency: read the session and its user's
//! cutoff (one round trip), ask [`rotation::decide`], and apply the decision
//! with one script that first checks the session's version and the cutoff are
//! still the ones read; when another writer got there first, pause (jittered)
//! and go again, at most [`RedisStoreBuilder::max_rotation_attempts`] times.
//! A re-delivery and a refusal write nothing: they stand on the read.
//!
//! [`RedisStoreBuilder::max_rotation_attempts`]: super::RedisStoreBuilder::max_rotation_attempts

use std::time::Duration;

use super::connection::Connection;
use super::records::{self, Snapshot, expire_at};
use super::store::RedisStore;
use crate::error::StoreError;
use crate::store::backoff;
use crate::store::rotation::{self, Decision, SessionState};
use crate::store::{RotateOutcome, RotateRequest};

impl RedisStore {
    /// Rotates one refresh token: read, decide, apply at the state read, or
    /// read again. A transport error or a timeout is never retried here: it is
    /// the error (a 503). A script whose answer was lost may have run; the
    /// client's retry with the same token then finds it used, and its successor
    /// live, and within the reuse window gets that successor again.
    pub(super) async fn rotate_optimistic(
        &self,
        req: &RotateRequest,
    ) -> Result<RotateOutcome, StoreError> {
        let key = self.keys.session(&req.user_id, req.session_id);
        let cutoff_key = self.keys.cutoff(&req.user_id);
        let mut con = self.con.get();
        let mut logged = false;
        for attempt in 0..self.max_attempts {
            let snap = self.snapshot(&mut con, &key, &cutoff_key, req).await?;
            let session = snap.session.as_ref();
            let decision = rotation::decide(session, snap.token.as_ref(), req);
            if let (Decision::Revoke(_), Some(session), false) = (decision, session, logged) {
                // Logged before it is applied (see `log.rs`), once.
                self.log_session(&mut con, req.session_id, session.expires_at)
                    .await?;
                logged = true;
            }
            let target = Target {
                key: &key,
                cutoff_key: &cutoff_key,
                snap: &snap,
            };
            if self.apply(&mut con, &target, decision, req).await? {
                return Ok(rotation::outcome(decision, session, req));
            }
            pause(attempt).await;
        }
        Err(StoreError::new(
            "rotation kept conflicting with concurrent writes to its session",
        ))
    }

    /// Reads what a rotation decides on, in one round trip: the session's state
    /// and version and the presented token (one `HMGET`, one key: consistent),
    /// and the cutoff of the request's user (a session of another user is
    /// refused whatever its user's cutoff). The two need not be read at one
    /// instant: the script that applies the decision checks both are unchanged.
    async fn snapshot(
        &self,
        con: &mut Connection,
        key: &str,
        cutoff_key: &str,
        req: &RotateRequest,
    ) -> Result<Snapshot, StoreError> {
        let mut pipe = ::redis::pipe();
        pipe.add_command(records::snapshot_args(key, req.jti))
            .cmd("GET")
            .arg(cutoff_key);
        let (session, cutoff): (Vec<Option<String>>, Option<String>) =
            self.call(pipe.query_async(con)).await?;
        records::snapshot(session, cutoff)
    }

    /// Applies a rotation `decision` made on `target.snap`, if the session and
    /// the cutoff are still as read: whether it was applied (a decision that
    /// writes nothing always is).
    async fn apply(
        &self,
        con: &mut Connection,
        target: &Target<'_>,
        decision: Decision,
        req: &RotateRequest,
    ) -> Result<bool, StoreError> {
        let Some(session) = target.snap.session.as_ref() else {
            return Ok(true);
        };
        let snap = target.snap;
        match decision {
            Decision::Refuse(_) | Decision::Redeliver { .. } => Ok(true),
            Decision::Rotate => self.apply_rotation(con, target, session, req).await,
            Decision::Revoke(_) => {
                let at = (
                    target.cutoff_key,
                    snap.version.as_str(),
                    snap.cutoff.as_str(),
                );
                let session = (target.key, req.user_id.as_str());
                Ok(self.revoke_at(con, session, Some(at), req.now).await? == 1)
            }
        }
    }

    /// Runs the rotate script: the presented token used, the successor live.
    async fn apply_rotation(
        &self,
        con: &mut Connection,
        target: &Target<'_>,
        session: &SessionState,
        req: &RotateRequest,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.scripts.rotate.key(target.key);
        invocation
            .key(target.cutoff_key)
            .arg(&target.snap.version)
            .arg(&target.snap.cutoff)
            .arg(req.jti.as_hyphenated().to_string())
            .arg(req.successor_jti.as_hyphenated().to_string())
            .arg(rotation::successor_expiry(session, req))
            .arg(req.now)
            .arg(expire_at(session.expires_at));
        let applied: i64 = self.write_script(con, &invocation).await?;
        Ok(applied == 1)
    }
}

/// Where a decision applies: the session's key, its user's cutoff key, and
/// what was read of them.
struct Target<'a> {
    key: &'a str,
    cutoff_key: &'a str,
    snap: &'a Snapshot,
}

/// A random pause between rotation attempts, so conflicting writers spread out:
/// none before the second, then up to 1, 2, 4, 8, 16, then 32 ms (Tokio's timer
/// ticks in milliseconds). Only writers of one and the same session ever wait
/// here, and few: of concurrent refreshes of one token one rotates, and the
/// others find it used and either get its successor again (no write) or revoke
/// the session; a race is settled in a few rounds.
async fn pause(attempt: u32) {
    if attempt == 0 {
        tokio::task::yield_now().await;
        return;
    }
    tokio::time::sleep(backoff::jittered(attempt, Duration::from_millis(1), 5)).await;
}
