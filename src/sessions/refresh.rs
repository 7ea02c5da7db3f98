//! The refresh flow: validate the refresh token, resolve the user, recompute
//! the claims (hook), mint the access token, rotate in the store, mint the
//! successor. Nothing is spent before the store's atomic step.

use uuid::Uuid;

use crate::error::AuthError;
use crate::error::{StoreError, TokenError};
use crate::events::{EventKind, RefusalReason};
use crate::jwt::{Claims, TokenKind, TokenPair};
use crate::metrics::{self, Rotation, StoreOp};
use crate::store::{RotateOutcome, RotateRequest, new_store_id};
use crate::user::{UserLookup, UserResolver};

use super::hooks::call_hook;

/// The refresh token a rotation answers: the successor, or the live token again.
pub(crate) struct Next {
    pub(crate) jti: Uuid,
    pub(crate) expires_at: u64,
    pub(crate) session_expires_at: u64,
}
use super::{ClaimsContext, ClaimsError, CustomClaims, Failed, Sessions, counted, issue_failed};

impl<R: UserResolver, C: CustomClaims> Sessions<R, C> {
    /// Exchanges a refresh token for a new pair (rotation). See [`RotateOutcome`]
    /// for what can happen; store failures are [`AuthError::StoreUnavailable`].
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        counted(self.refresh_counted(refresh_token).await)
    }

    async fn refresh_counted(&self, refresh_token: &str) -> Result<(TokenPair, Rotation), Failed> {
        let claims: Claims<C> = self
            .jwt
            .validate(refresh_token, TokenKind::Refresh)
            .map_err(|e| Failed::new(Rotation::InvalidToken, e))?;
        let custom = self
            .claims_for_rotation(&claims.user_id, claims.session_id, claims.custom)
            .await?;
        // The access token is minted before the rotation: custom claims that cannot
        // go into a token fail here, with the presented token still unspent.
        let (access, access_expires_at) = self
            .jwt
            .issue_access(&claims.user_id, claims.session_id, &custom)
            .map_err(issue_failed)?;
        let (next, outcome) = self
            .rotate(
                &claims.user_id,
                claims.session_id,
                claims.jti,
                self.jwt.settings().refresh_ttl,
                false,
            )
            .await?;
        // No access token outlives its session: minted again, capped, in the
        // rare case the session ends before the usual lifetime does.
        let (access, access_expires_at) = if access_expires_at > next.session_expires_at {
            self.jwt
                .issue_access_until(
                    &claims.user_id,
                    claims.session_id,
                    &custom,
                    next.session_expires_at,
                )
                .map_err(issue_failed)?
        } else {
            (access, access_expires_at)
        };
        let refresh = self
            .jwt
            .issue_refresh(
                &claims.user_id,
                claims.session_id,
                next.jti,
                next.expires_at,
                &custom,
            )
            .map_err(issue_failed)?;
        let pair = TokenPair {
            access,
            refresh,
            session_id: claims.session_id,
            refresh_jti: next.jti,
            access_expires_at,
            refresh_expires_at: next.expires_at,
        };
        Ok((pair, outcome))
    }

    /// Resolves the user, then recomputes the claims when a hook is set. Runs
    /// before the store rotation.
    pub(crate) async fn claims_for_rotation(
        &self,
        user_id: &str,
        session_id: Uuid,
        old: C,
    ) -> Result<C, Failed> {
        let user = self.check_user(user_id, session_id).await?;
        let Some(hook) = &self.claims_refresh else {
            return Ok(old);
        };
        let ctx = ClaimsContext {
            user_id: user_id.to_owned(),
            user,
            session_id,
            claims: old,
        };
        match call_hook(hook.as_ref(), ctx).await {
            Some(Ok(custom)) => Ok(custom),
            Some(Err(ClaimsError::Refused)) => {
                self.refuse_user(user_id, session_id, RefusalReason::ClaimsRefused)
                    .await?;
                Err(Failed::new(
                    Rotation::ClaimsRefused,
                    TokenError::UserInactive,
                ))
            }
            Some(Err(ClaimsError::Unavailable(message))) => Err(Failed::new(
                Rotation::ClaimsUnavailable,
                StoreError::new(format!("the claims-refresh hook failed: {message}")),
            )),
            None => Err(Failed::new(
                Rotation::ClaimsUnavailable,
                StoreError::new("the claims-refresh hook panicked"),
            )),
        }
    }

    /// Rotates token `jti` of the session in the store (or gets its successor
    /// again, within the reuse window), reports the event, and answers the
    /// token to mint.
    pub(crate) async fn rotate(
        &self,
        user_id: &str,
        session_id: Uuid,
        jti: Uuid,
        ttl: u64,
        sliding: bool,
    ) -> Result<(Next, Rotation), Failed> {
        let now_ms = self.jwt.clock().now_millis();
        let req = RotateRequest::new(session_id, user_id, jti, new_store_id(), now_ms / 1000, ttl)
            .with_now_ms(now_ms)
            .with_grace(self.grace);
        let outcome = metrics::timed(StoreOp::Rotate, self.store.rotate(&req)).await?;
        let (next, redelivered) = match outcome {
            RotateOutcome::Rotated {
                expires_at,
                session_expires_at,
                ..
            } => (
                Next {
                    jti: req.successor_jti,
                    expires_at,
                    session_expires_at,
                },
                false,
            ),
            RotateOutcome::Redelivered {
                jti,
                expires_at,
                session_expires_at,
                ..
            } => (
                Next {
                    jti,
                    expires_at,
                    session_expires_at,
                },
                true,
            ),
            refused => return Err(self.refused(refused, user_id, session_id)),
        };
        let kind = if sliding {
            EventKind::SlidingRenewed { redelivered }
        } else {
            EventKind::Rotated { redelivered }
        };
        self.emit(kind, user_id, Some(session_id));
        let counted = if redelivered {
            Rotation::Redelivered
        } else {
            Rotation::Rotated
        };
        Ok((next, counted))
    }

    /// A refusal from the store, as the caller's error (reuse is reported).
    fn refused(&self, outcome: RotateOutcome, user_id: &str, session_id: Uuid) -> Failed {
        match outcome {
            RotateOutcome::ReuseDetected => {
                self.note_session(session_id);
                self.emit(EventKind::ReuseDetected, user_id, Some(session_id));
                Failed::new(Rotation::ReuseDetected, TokenError::Reused)
            }
            RotateOutcome::Revoked => Failed::new(Rotation::Revoked, TokenError::Revoked),
            RotateOutcome::Expired => Failed::new(Rotation::Expired, TokenError::Expired),
            _ => Failed::new(Rotation::Unknown, TokenError::Unknown),
        }
    }

    /// Resolves the token's user; a missing or inactive user revokes the session.
    async fn check_user(&self, user_id: &str, session_id: Uuid) -> Result<R::User, Failed> {
        let id: R::Id = user_id
            .parse()
            .map_err(|_| Failed::new(Rotation::InvalidToken, TokenError::UserId))?;
        let reason = match self.users.resolve(&id).await? {
            UserLookup::Active(u) => return Ok(u),
            UserLookup::Inactive => RefusalReason::Inactive,
            UserLookup::Missing => RefusalReason::Missing,
        };
        self.refuse_user(user_id, session_id, reason).await?;
        Err(Failed::new(Rotation::UserRefused, TokenError::UserInactive))
    }

    /// Revokes the session of a refused user, then reports it.
    async fn refuse_user(
        &self,
        user_id: &str,
        session_id: Uuid,
        reason: RefusalReason,
    ) -> Result<(), StoreError> {
        metrics::timed(
            StoreOp::RevokeSession,
            self.store.revoke_session(session_id, user_id, self.now()),
        )
        .await?;
        self.note_session(session_id);
        self.emit(EventKind::UserRefused { reason }, user_id, Some(session_id));
        Ok(())
    }
}
