//! The state rules every backend applies, written once: when a token counts as
//! revoked, which sessions a user sees listed, what a purge may delete, how a
//! token's expiry is capped by its session's, and how a revoke-all cutoff moves.
//!
//! Backends that read state into Rust call these functions. A backend that must
//! apply a rule inside its database (a purge that deletes in bulk) writes the
//! rule's translation once, next to a comment naming the function here, and the
//! conformance suite checks that both agree.

use crate::store::rotation::{SessionState, TokenState};

/// What the revocation check reads of a session: its owner, whether it was
/// revoked, and when it was created. `None` when the store has no record of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCheck<'a> {
    /// The user the session belongs to.
    pub user_id: &'a str,
    /// Whether the session was revoked (logout, reuse, revoke-all).
    pub revoked: bool,
    /// When the session was created, in milliseconds since the epoch.
    pub created_at_ms: u64,
}

/// Whether a token of a session, issued at `issued_at` (seconds, the JWT's
/// `iat`) to `user_id`, is revoked: its session is unknown, revoked or another
/// user's, or the user revoked everything before `cutoff_ms` (log out
/// everywhere): a session created before the cutoff, or a token issued in an
/// earlier second. A token issued in the cutoff's own second stands or falls
/// with its session, whose creation time is known to the millisecond.
pub fn is_revoked(
    session: Option<SessionCheck<'_>>,
    user_id: &str,
    issued_at: u64,
    cutoff_ms: Option<u64>,
) -> bool {
    match session {
        Some(s) if !s.revoked && s.user_id == user_id => {
            predates_cutoff(s.created_at_ms, cutoff_ms)
                || cutoff_ms.is_some_and(|c| issued_at < c / 1000)
        }
        _ => true,
    }
}

/// How long a revoke-all's log entry matters: until the last session of the
/// user it found expires (`sessions_end`; no token issued before the cutoff
/// outlives its session), and at least an hour past the cutoff, for a session
/// created in the same instant the revoke-all ran (its creation sees the
/// cutoff and is recorded revoked, but its first access token was minted).
pub fn cutoff_relevant_until(cutoff_ms: u64, sessions_end: Option<u64>) -> u64 {
    let floor = cutoff_ms / 1000 + 3600;
    sessions_end.map_or(floor, |end| end.max(floor))
}

/// Whether a session created at `created_at_ms` falls under the user's
/// revoke-all cutoff: it was created before it. Checked inside the atomic step
/// of session creation and of rotation, so a login racing a revoke-all never
/// survives it. Instances' clocks are compared here: see docs/ARCHITECTURE.md
/// on clock skew.
pub fn predates_cutoff(created_at_ms: u64, cutoff_ms: Option<u64>) -> bool {
    cutoff_ms.is_some_and(|c| created_at_ms < c)
}

/// Whether a purge may delete a user's cutoff: no session the store still
/// holds for that user was created before it (a session purged later is
/// unknown, which the revocation check refuses anyway).
pub fn cutoff_purgeable(cutoff_ms: u64, oldest_session_created_at_ms: Option<u64>) -> bool {
    oldest_session_created_at_ms.is_none_or(|oldest| oldest >= cutoff_ms)
}

/// Whether a session shows in the owner's session list: not revoked, not past
/// its absolute expiry, and its live token unused and not expired.
pub fn is_listable(session: &SessionState, live_token: Option<&TokenState>, now: u64) -> bool {
    !session.revoked
        && now < session.expires_at
        && live_token.is_some_and(|t| t.used_at.is_none() && now < t.expires_at)
}

/// Whether a purge deletes a whole session (and every token of it): it is past
/// its absolute expiry, so no token of it can be presented successfully again.
pub fn session_purgeable(session_expires_at: u64, now: u64) -> bool {
    now >= session_expires_at
}

/// Whether a purge deletes one token of a live session: unused and past its own
/// expiry. Used tokens stay until their session expires, so a late replay is
/// still recognised as reuse.
pub fn token_purgeable(token: &TokenState, now: u64) -> bool {
    token.used_at.is_none() && now >= token.expires_at
}

/// A token's expiry, capped by its session's absolute expiry: no token outlives
/// its session.
pub fn capped_expiry(token_expires_at: u64, session_expires_at: u64) -> u64 {
    token_expires_at.min(session_expires_at)
}

/// A user's revoke-all cutoff after a revoke-all at `now_ms`: it only moves
/// forward (two instances revoking at once, or a clock behind another's, never
/// reopen tokens a later cutoff revoked).
pub fn next_cutoff(current_ms: Option<u64>, now_ms: u64) -> u64 {
    current_ms.map_or(now_ms, |c| c.max(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(revoked: bool) -> SessionState {
        SessionState::new("u", revoked, 100, None, None)
    }

    #[test]
    fn revocation() {
        let live = SessionCheck {
            user_id: "u",
            revoked: false,
            created_at_ms: 10_500,
        };
        assert!(!is_revoked(Some(live), "u", 10, None));
        assert!(is_revoked(None, "u", 10, None));
        assert!(is_revoked(Some(live), "v", 10, None));
        assert!(is_revoked(
            Some(SessionCheck {
                revoked: true,
                ..live
            }),
            "u",
            10,
            None
        ));
        // Revoke-all at 10.700 s: the session was created before it.
        assert!(is_revoked(Some(live), "u", 10, Some(10_700)));
        // Revoke-all at 10.400 s: a later login in the same second survives it.
        assert!(!is_revoked(Some(live), "u", 10, Some(10_400)));
        assert!(!is_revoked(Some(live), "u", 11, Some(10_400)));
        assert!(cutoff_purgeable(10, None) && cutoff_purgeable(10, Some(10)));
        assert!(!cutoff_purgeable(10, Some(9)));
    }

    #[test]
    fn listing_and_purging() {
        let unused = TokenState {
            used_at: None,
            expires_at: 50,
        };
        let used = TokenState {
            used_at: Some(5),
            expires_at: 50,
        };
        assert!(is_listable(&session(false), Some(&unused), 49));
        assert!(!is_listable(&session(false), Some(&unused), 50));
        assert!(!is_listable(&session(false), Some(&used), 10));
        assert!(!is_listable(&session(true), Some(&unused), 10));
        assert!(!is_listable(&session(false), None, 10));
        assert!(session_purgeable(100, 100) && !session_purgeable(100, 99));
        assert!(token_purgeable(&unused, 50) && !token_purgeable(&unused, 49));
        assert!(!token_purgeable(&used, 99));
        assert_eq!(capped_expiry(200, 100), 100);
        assert_eq!(next_cutoff(Some(20), 10), 20);
        assert_eq!(next_cutoff(None, 10), 10);
    }
}
