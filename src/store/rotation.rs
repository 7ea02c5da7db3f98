//! The rotation rules, written once for every backend (shared/DESIGN.md
//! "Rotation, exactly"). Backends read a session's state inside their atomic step,
//! ask [`decide`], and apply the answer before the step ends.

use uuid::Uuid;

use crate::store::state::capped_expiry;
use crate::store::{RotateOutcome, RotateRequest};

/// A session's state as rotation reads it.
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
    /// The `jti` the live token replaced: the only token that may get grace.
    pub live_parent: Option<Uuid>,
}

impl SessionState {
    /// A session of `user_id` ending at `expires_at`, whose live token is
    /// `live_jti`, which replaced `live_parent`.
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
        }
    }
}

/// A refresh token's state as rotation reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenState {
    /// When it was used (rotated, or superseded by a grace successor).
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
    /// Mark the token used at `now`, insert the successor (expiry from
    /// [`successor_expiry`], parent = the token), make it live.
    Rotate,
    /// Mark the current live token used at `now` (superseded), insert the successor
    /// (parent = the presented token), make it live. The session keeps one live token.
    RotateWithinGrace,
    /// Revoke the session at `now`, then answer [`RotateOutcome::ReuseDetected`].
    RevokeForReuse,
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
        None => Decision::RevokeForReuse,
        Some(used_at)
            if req.grace > 0
                && session.live_parent == Some(req.jti)
                && req.now <= used_at.saturating_add(req.grace) =>
        {
            Decision::RotateWithinGrace
        }
        Some(_) => Decision::RevokeForReuse,
    }
}

/// The successor's expiry: one refresh lifetime from now, never past the session's
/// absolute expiry.
pub fn successor_expiry(session: &SessionState, req: &RotateRequest) -> u64 {
    capped_expiry(req.now.saturating_add(req.refresh_ttl), session.expires_at)
}

/// The outcome a backend answers after applying `decision`.
pub fn outcome(decision: Decision, successor_expires_at: u64) -> RotateOutcome {
    match decision {
        Decision::Rotate => RotateOutcome::Rotated {
            expires_at: successor_expires_at,
        },
        Decision::RotateWithinGrace => RotateOutcome::RotatedWithinGrace {
            expires_at: successor_expires_at,
        },
        Decision::RevokeForReuse => RotateOutcome::ReuseDetected,
        Decision::Refuse(o) => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(jti: Uuid, now: u64, grace: u64) -> RotateRequest {
        RotateRequest::new(Uuid::nil(), "u", jti, Uuid::new_v4(), now, 100).with_grace(grace)
    }

    #[test]
    fn rules() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let s = SessionState::new("u", false, 1000, Some(b), Some(a));
        let live = TokenState::new(None, 500);
        let used = TokenState::new(Some(10), 500);
        assert_eq!(
            decide(Some(&s), Some(&live), &req(b, 20, 0)),
            Decision::Rotate
        );
        assert_eq!(
            decide(Some(&s), Some(&live), &req(b, 500, 0)),
            Decision::Refuse(RotateOutcome::Expired)
        );
        assert_eq!(
            decide(Some(&s), Some(&used), &req(a, 20, 0)),
            Decision::RevokeForReuse
        );
        assert_eq!(
            decide(Some(&s), Some(&used), &req(a, 20, 10)),
            Decision::RotateWithinGrace
        );
        assert_eq!(
            decide(Some(&s), Some(&used), &req(a, 21, 10)),
            Decision::RevokeForReuse
        );
        // Only the immediate predecessor gets grace.
        assert_eq!(
            decide(Some(&s), Some(&used), &req(Uuid::new_v4(), 20, 10)),
            Decision::RevokeForReuse
        );
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
            decide(Some(&revoked), Some(&used), &req(a, 20, 10)),
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
        assert_eq!(
            decide(Some(&s), Some(&live), &req(b, 1000, 0)),
            Decision::Refuse(RotateOutcome::Expired)
        );
        assert_eq!(successor_expiry(&s, &req(b, 950, 0)), 1000);
    }
}
