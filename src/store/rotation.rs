//! The rotation rules, written once for every backend. Backends read a session's state inside their atomic step,
//! ask [`decide`], and apply the answer before the step ends.
//!
//! A session is a linear chain: each refresh token has at most one successor,
//! ever. A token presented again after it was used gets its successor again
//! ([`Decision::Redeliver`]) when the successor was never used, is still live,
//! and the request comes within the reuse window of the first use: that one
//! rule serves two tabs that refreshed at once and a client retrying after a
//! lost answer (a 503 that hid a committed rotation, a cut connection). Any
//! other replay is reuse, and revokes the session.

use uuid::Uuid;

use crate::store::state::{capped_expiry, predates_cutoff};
use crate::store::{RotateOutcome, RotateRequest};

/// A session's state as rotation reads it, inside the backend's atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionState {
    /// The user the session belongs to.
    pub user_id: String,
    /// Revoked sessions never reopen.
    pub revoked: bool,
    /// Absolute expiry.
    pub expires_at: u64,
    /// The live token's `jti`.
    pub live_jti: Option<Uuid>,
    /// The `jti` the live token replaced: the only used token that may be
    /// answered with the live token again.
    pub live_parent: Option<Uuid>,
    /// The live token's own expiry: what a re-delivery mints again.
    pub live_expires_at: Option<u64>,
    /// When the session was created, in milliseconds since the epoch.
    pub created_at_ms: u64,
    /// The user's revoke-all cutoff in milliseconds, read in the same atomic
    /// step: a session created before it is revoked.
    pub user_cutoff_ms: Option<u64>,
}

impl SessionState {
    /// A session of `user_id` ending at `expires_at`, whose live token is
    /// `live_jti`, which replaced `live_parent`. The live token's expiry, the
    /// creation time and the user's cutoff start unknown (`None`, 0, `None`):
    /// see the `with_` methods.
    pub fn new(
        user_id: impl Into<String>,
        revoked: bool,
        expires_at: u64,
        live_jti: Option<Uuid>,
        live_parent: Option<Uuid>,
    ) -> Self {
        SessionState {
            user_id: user_id.into(),
            revoked,
            expires_at,
            live_jti,
            live_parent,
            live_expires_at: None,
            created_at_ms: 0,
            user_cutoff_ms: None,
        }
    }

    /// The live token's own expiry.
    pub fn with_live_expires_at(mut self, expires_at: Option<u64>) -> Self {
        self.live_expires_at = expires_at;
        self
    }

    /// When the session was created, in milliseconds since the epoch.
    pub fn with_created_at_ms(mut self, created_at_ms: u64) -> Self {
        self.created_at_ms = created_at_ms;
        self
    }

    /// The user's revoke-all cutoff, in milliseconds since the epoch.
    pub fn with_user_cutoff_ms(mut self, cutoff_ms: Option<u64>) -> Self {
        self.user_cutoff_ms = cutoff_ms;
        self
    }
}

/// A refresh token's state as rotation reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenState {
    /// When it was used (rotated).
    pub used_at: Option<u64>,
    /// Its own expiry.
    pub expires_at: u64,
}

impl TokenState {
    /// A token dying at `expires_at`, used at `used_at` if it was.
    pub fn new(used_at: Option<u64>, expires_at: u64) -> Self {
        TokenState {
            used_at,
            expires_at,
        }
    }
}

/// What the backend must do, in the same atomic step.
///
/// Exhaustive on purpose: a backend must apply every decision, so a decision
/// added in a later release is a compile error in each backend, not a silent gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Mark the presented token used at `now`, insert the successor
    /// (`successor_jti`, expiry from [`successor_expiry`], parent = the
    /// presented token) and make it the live token.
    Rotate,
    /// Change nothing: answer the live token (`jti`, `expires_at`) again.
    Redeliver {
        /// The live token's `jti`.
        jti: Uuid,
        /// The live token's expiry.
        expires_at: u64,
    },
    /// Revoke the session at `now` (commit it), then answer this outcome:
    /// [`RotateOutcome::ReuseDetected`], or [`RotateOutcome::Revoked`] for a
    /// session created before the user's revoke-all cutoff.
    Revoke(RotateOutcome),
    /// Change nothing; answer this outcome.
    Refuse(RotateOutcome),
}

/// Decides one rotation. `session`/`token` are `None` when the store has no record.
pub fn decide(
    session: Option<&SessionState>,
    token: Option<&TokenState>,
    req: &RotateRequest,
) -> Decision {
    let Some(session) = session else {
        return Decision::Refuse(RotateOutcome::Unknown);
    };
    if session.user_id != req.user_id {
        return Decision::Refuse(RotateOutcome::Unknown);
    }
    // Revocation is final: nothing below may reopen a revoked session.
    if session.revoked {
        return Decision::Refuse(RotateOutcome::Revoked);
    }
    // A revoke-all that raced this session's creation: it never survives it.
    if predates_cutoff(session.created_at_ms, session.user_cutoff_ms) {
        return Decision::Revoke(RotateOutcome::Revoked);
    }
    if req.now >= session.expires_at {
        return Decision::Refuse(RotateOutcome::Expired);
    }
    let Some(token) = token else {
        return Decision::Refuse(RotateOutcome::Unknown);
    };
    match token.used_at {
        None if req.now >= token.expires_at => Decision::Refuse(RotateOutcome::Expired),
        None if session.live_jti == Some(req.jti) => Decision::Rotate,
        // An unused token that is not live cannot exist unless a session forked:
        // treat it as theft rather than let two chains live.
        None => Decision::Revoke(RotateOutcome::ReuseDetected),
        Some(used_at) => match redelivery(session, req, used_at) {
            Some(d) => d,
            None => Decision::Revoke(RotateOutcome::ReuseDetected),
        },
    }
}

/// The live token again, when the presented (used) token is its parent, the
/// live token is unexpired (being live, it was never used), and the request
/// is within the reuse window of the parent's use.
fn redelivery(session: &SessionState, req: &RotateRequest, used_at: u64) -> Option<Decision> {
    let jti = session.live_jti?;
    let expires_at = session.live_expires_at?;
    let within_window = req.grace > 0 && req.now <= used_at.saturating_add(req.grace);
    (within_window && session.live_parent == Some(req.jti) && req.now < expires_at)
        .then_some(Decision::Redeliver { jti, expires_at })
}

/// The successor's expiry: one refresh lifetime from now, never past the session's
/// absolute expiry.
pub fn successor_expiry(session: &SessionState, req: &RotateRequest) -> u64 {
    capped_expiry(req.now.saturating_add(req.refresh_ttl), session.expires_at)
}

/// The outcome a backend answers after applying `decision` to `session` (as
/// read before the step; `None` when the store had no record of it).
pub fn outcome(
    decision: Decision,
    session: Option<&SessionState>,
    req: &RotateRequest,
) -> RotateOutcome {
    let session_expires_at = session.map_or(0, |s| s.expires_at);
    match decision {
        Decision::Rotate => RotateOutcome::Rotated {
            expires_at: session.map_or(0, |s| successor_expiry(s, req)),
            session_expires_at,
        },
        Decision::Redeliver { jti, expires_at } => RotateOutcome::Redelivered {
            jti,
            expires_at,
            session_expires_at,
        },
        Decision::Revoke(o) | Decision::Refuse(o) => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(jti: Uuid, now: u64, grace: u64) -> RotateRequest {
        RotateRequest::new(Uuid::nil(), "u", jti, Uuid::new_v4(), now, 100).with_grace(grace)
    }

    fn session(live: Uuid, parent: Uuid) -> SessionState {
        SessionState::new("u", false, 1000, Some(live), Some(parent))
            .with_live_expires_at(Some(500))
            .with_created_at_ms(5_000)
    }

    #[test]
    fn the_live_token_rotates_and_expired_or_forked_ones_do_not() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let s = session(b, a);
        let live = TokenState::new(None, 500);
        assert_eq!(
            decide(Some(&s), Some(&live), &req(b, 20, 0)),
            Decision::Rotate
        );
        assert_eq!(
            decide(Some(&s), Some(&live), &req(b, 500, 0)),
            Decision::Refuse(RotateOutcome::Expired)
        );
        // An unused token that is not live: a fork, treated as theft.
        assert_eq!(
            decide(Some(&s), Some(&live), &req(Uuid::new_v4(), 20, 10)),
            Decision::Revoke(RotateOutcome::ReuseDetected)
        );
        assert_eq!(
            decide(Some(&s), Some(&live), &req(b, 1000, 0)),
            Decision::Refuse(RotateOutcome::Expired)
        );
        assert_eq!(successor_expiry(&s, &req(b, 950, 0)), 1000);
    }

    #[test]
    fn a_replay_within_the_window_gets_the_live_successor_again() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let s = session(b, a);
        let used = TokenState::new(Some(10), 500);
        let again = Decision::Redeliver {
            jti: b,
            expires_at: 500,
        };
        assert_eq!(decide(Some(&s), Some(&used), &req(a, 20, 10)), again);
        // Window 0: strict single use.
        assert_eq!(
            decide(Some(&s), Some(&used), &req(a, 10, 0)),
            Decision::Revoke(RotateOutcome::ReuseDetected)
        );
        // After the window.
        assert_eq!(
            decide(Some(&s), Some(&used), &req(a, 21, 10)),
            Decision::Revoke(RotateOutcome::ReuseDetected)
        );
        // Only the parent of the live token: two generations back is reuse.
        assert_eq!(
            decide(Some(&s), Some(&used), &req(Uuid::new_v4(), 20, 10)),
            Decision::Revoke(RotateOutcome::ReuseDetected)
        );
        // A live token past its expiry is not handed out again.
        let dead = session(b, a).with_live_expires_at(Some(15));
        assert_eq!(
            decide(Some(&dead), Some(&used), &req(a, 16, 10)),
            Decision::Revoke(RotateOutcome::ReuseDetected)
        );
        let r = req(a, 20, 10);
        assert_eq!(
            outcome(again, Some(&s), &r),
            RotateOutcome::Redelivered {
                jti: b,
                expires_at: 500,
                session_expires_at: 1000
            }
        );
    }

    #[test]
    fn refusals_and_the_revoke_all_cutoff() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let s = session(b, a);
        let live = TokenState::new(None, 500);
        let mut other = req(b, 20, 0);
        other.user_id = "v".into();
        assert_eq!(
            decide(Some(&s), Some(&live), &other),
            Decision::Refuse(RotateOutcome::Unknown)
        );
        let revoked = SessionState {
            revoked: true,
            ..s.clone()
        };
        assert_eq!(
            decide(Some(&revoked), Some(&live), &req(b, 20, 10)),
            Decision::Refuse(RotateOutcome::Revoked)
        );
        assert_eq!(
            decide(Some(&s), None, &req(b, 20, 0)),
            Decision::Refuse(RotateOutcome::Unknown)
        );
        assert_eq!(
            decide(None, None, &req(b, 20, 0)),
            Decision::Refuse(RotateOutcome::Unknown)
        );
        // Created 1 ms before the user's revoke-all: revoked, in the same second.
        let raced = s.clone().with_user_cutoff_ms(Some(5_001));
        assert_eq!(
            decide(Some(&raced), Some(&live), &req(b, 20, 0)),
            Decision::Revoke(RotateOutcome::Revoked)
        );
        let after = s.with_user_cutoff_ms(Some(5_000));
        assert_eq!(
            decide(Some(&after), Some(&live), &req(b, 20, 0)),
            Decision::Rotate
        );
    }
}
