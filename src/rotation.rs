//! The rotation rules, written once for every backend (shared/DESIGN.md
//! "Rotation, exactly"). Backends read a session's state inside their atomic step,
//! ask [`decide`], and apply the answer before the step ends.

use uuid::Uuid;

use crate::store::{RotateOutcome, RotateRequest};

/// A session's state as rotation reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A refresh token's state as rotation reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    /// When it was used (rotated, or superseded by a grace successor).
    pub used_at: Option<u64>,
    /// Its own expiry.
    pub expires_at: u64,
}

/// What the backend must do, in the same atomic step.
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
    req.now
        .saturating_add(req.refresh_ttl)
        .min(session.expires_at)
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
        RotateRequest {
            session_id: Uuid::nil(),
            user_id: "u".into(),
            jti,
            successor_jti: Uuid::new_v4(),
            now,
            refresh_ttl: 100,
            grace,
        }
    }

    #[test]
    fn rules() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let s = SessionState {
            user_id: "u".into(),
            revoked: false,
            expires_at: 1000,
            live_jti: Some(b),
            live_parent: Some(a),
        };
        let live = TokenState {
            used_at: None,
            expires_at: 500,
        };
        let used = TokenState {
            used_at: Some(10),
            expires_at: 500,
        };
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
