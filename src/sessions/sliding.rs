//! Sliding tokens, SimpleJWT's third mode: one token that is both the access
//! token and the means to renew it.
//!
//! A sliding token is an access token (header `typ: at+jwt`, `token_type:
//! access`), so [`JwtAuthLayer`](crate::JwtAuthLayer) accepts it as one until its
//! `exp`. It also carries `refresh_exp`: until then, even after its `exp`, it can
//! be renewed at a [`SlidingEndpoint`](crate::SlidingEndpoint) for a new one. Unlike SimpleJWT's, a
//! sliding session lives in the [`TokenStore`](crate::TokenStore) like any other
//! session, so everything the store does applies:
//!
//! - each renewal is a rotation: the renewed token is spent, and renewing with it
//!   again is reuse, which revokes the session (set a reuse grace window with
//!   [`Sessions::with_reuse_grace`] if several tabs may renew at once);
//! - `refresh_exp` slides: each renewal moves it to one renewal window from now,
//!   never past the session's absolute lifetime ([`Jwt::session_max_age`](crate::Jwt::session_max_age));
//! - logout ([`Sessions::revoke_session_of`]), log out everywhere, a missing or
//!   inactive user, and the claims-refresh hook work as for refresh tokens; the
//!   layer's revocation check refuses the token of a revoked session;
//! - sliding sessions show in [`Sessions::list_sessions`].
//!
//! The mode is off until [`Sessions::with_sliding`] turns it on; until then
//! [`Sessions::login_sliding`] and renewals are refused (400).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tower_jwt_auth::{Algorithm, Jwt, Key, MemoryStore, MemoryUsers, NoCustomClaims, Sessions, SlidingTokens};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [6u8; 32]).unwrap()).build().unwrap();
//! let users = Arc::new(MemoryUsers::<u64, ()>::new());
//! users.insert(7, ());
//! let sessions: Sessions<_> = Sessions::new(jwt, Arc::new(MemoryStore::new()), users)
//!     .with_sliding(
//!         SlidingTokens::new()
//!             .lifetime(Duration::from_secs(300))          // works as an access token for 5 minutes
//!             .renewal_window(Duration::from_secs(86_400)), // renewable for a day after each renewal
//!     );
//!
//! let token = sessions.login_sliding(&7, &NoCustomClaims, Some("cli".into())).await.unwrap();
//! sessions.check_access(&token.token).await.unwrap(); // an access token
//! let renewed = sessions.renew_sliding(&token.token).await.unwrap();
//! assert_eq!(renewed.session_id, token.session_id);
//! let later = sessions.renew_sliding(&renewed.token).await.unwrap();
//! // The first token is spent, and so is its successor: renewing with it
//! // again is reuse (within the reuse window, before its successor was used,
//! // it would have got that successor again).
//! assert!(sessions.renew_sliding(&token.token).await.is_err());
//! assert!(sessions.renew_sliding(&later.token).await.is_err());
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AuthError, TokenError};
use crate::events::EventKind;
use crate::jwt::{Claims, Mint, TokenKind};
use crate::metrics::{self, Rotation, StoreOp};
use crate::store::{NewSession, new_store_id};
use crate::user::UserResolver;

use super::{CustomClaims, Failed, Sessions, counted, issue_failed};

/// The claim that says until when a sliding token can be renewed (SimpleJWT's name).
pub const REFRESH_EXP_CLAIM: &str = "refresh_exp";

/// The sliding-token switch and its lifetimes, for [`Sessions::with_sliding`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use]
pub struct SlidingTokens {
    lifetime: Option<Duration>,
    renewal_window: Option<Duration>,
}

impl SlidingTokens {
    /// Sliding tokens with the [`Jwt`](crate::Jwt)'s lifetimes: a token works as
    /// an access token for the access-token lifetime, and can be renewed for the
    /// refresh-token lifetime after its last renewal.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long one token works as an access token (its `exp`).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// How long after it was issued a token can still be renewed (its
    /// `refresh_exp`); capped by the session's absolute lifetime.
    pub fn renewal_window(mut self, window: Duration) -> Self {
        self.renewal_window = Some(window);
        self
    }
}

/// A sliding token and its times.
///
/// `Debug` shows the session and times, never the token.
#[derive(Clone)]
pub struct SlidingToken {
    /// The token: send it as `Authorization: Bearer`, and renew it with it.
    pub token: String,
    /// The session it belongs to.
    pub session_id: Uuid,
    /// When it stops working as an access token (`exp`).
    pub expires_at: u64,
    /// Until when it can be renewed (`refresh_exp`).
    pub renew_until: u64,
}

impl fmt::Debug for SlidingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingToken")
            .field("token", &"[redacted]")
            .field("session_id", &self.session_id)
            .field("expires_at", &self.expires_at)
            .field("renew_until", &self.renew_until)
            .finish()
    }
}

/// The payload beside the registered claims: `refresh_exp` and the app's claims.
#[derive(Serialize, Deserialize)]
struct SlidingClaims<C> {
    #[serde(default)]
    refresh_exp: Option<u64>,
    #[serde(flatten)]
    custom: C,
}

#[derive(Deserialize)]
struct IssuedAt {
    iat: u64,
}

const NOT_ENABLED: AuthError = AuthError::InvalidRequest("sliding tokens are not enabled");

impl<R: UserResolver, C: CustomClaims> Sessions<R, C> {
    /// Turns sliding tokens on ([`Sessions::login_sliding`], [`Sessions::renew_sliding`],
    /// [`SlidingEndpoint`](crate::SlidingEndpoint)). See the [module docs](crate::sessions::sliding).
    pub fn with_sliding(mut self, sliding: SlidingTokens) -> Self {
        self.sliding = Some(sliding);
        self
    }

    fn sliding_times(&self, sliding: SlidingTokens) -> (u64, u64) {
        let s = self.jwt.settings();
        let lifetime = sliding
            .lifetime
            .map_or(s.access_ttl, |d| d.as_secs())
            .max(1);
        let window = sliding
            .renewal_window
            .map_or(s.refresh_ttl, |d| d.as_secs())
            .max(1);
        (lifetime, window)
    }

    /// Starts a sliding session for a user the app has authenticated, and
    /// answers its first token. `label` is shown in session lists.
    pub async fn login_sliding(
        &self,
        user_id: &R::Id,
        custom: &C,
        label: Option<String>,
    ) -> Result<SlidingToken, AuthError> {
        let sliding = self.sliding.ok_or(NOT_ENABLED)?;
        let (lifetime, window) = self.sliding_times(sliding);
        let now_ms = self.jwt.clock().now_millis();
        let now = now_ms / 1000;
        let max_age = self.jwt.settings().session_max_age;
        let session = NewSession::new(
            new_store_id(),
            user_id.to_string(),
            new_store_id(),
            now,
            now + window.min(max_age),
            now + max_age,
        )
        .with_created_at_ms(now_ms)
        .with_label(label);
        let token = self
            .mint_sliding(
                &session.user_id,
                session.session_id,
                session.jti,
                now,
                lifetime,
                session.token_expires_at,
                custom,
            )
            .map_err(|f| f.error)?;
        metrics::timed(StoreOp::CreateSession, self.store.create_session(&session)).await?;
        self.emit(
            EventKind::SlidingIssued,
            &session.user_id,
            Some(session.session_id),
        );
        Ok(token)
    }

    /// Renews a sliding token: it must be signed by us, of this issuer and
    /// audience, carry `refresh_exp` in the future (its `exp` may have passed),
    /// and be its session's live token in the store. The user is resolved and
    /// the claims-refresh hook runs, as for a refresh.
    pub async fn renew_sliding(&self, token: &str) -> Result<SlidingToken, AuthError> {
        counted(self.renew_counted(token).await)
    }

    async fn renew_counted(&self, token: &str) -> Result<(SlidingToken, Rotation), Failed> {
        let sliding = self
            .sliding
            .ok_or(Failed::new(Rotation::InvalidToken, NOT_ENABLED))?;
        let now = self.now();
        let claims = self
            .validate_sliding(token, now)
            .map_err(|e| Failed::new(Rotation::InvalidToken, e))?;
        let (lifetime, window) = self.sliding_times(sliding);
        let custom = self
            .claims_for_rotation(&claims.user_id, claims.session_id, claims.custom.custom)
            .await?;
        // Minting cannot fail for claims that serialized before; a hook's new
        // claims are checked by minting a probe before the token is spent.
        if self.claims_refresh.is_some() {
            self.mint_sliding(
                &claims.user_id,
                claims.session_id,
                new_store_id(),
                now,
                lifetime,
                now + window,
                &custom,
            )?;
        }
        let (next, outcome) = self
            .rotate(&claims.user_id, claims.session_id, claims.jti, window, true)
            .await?;
        // `renew_until` is the stored token's expiry, capped by the session's:
        // the token's `exp` never passes it.
        let token = self.mint_sliding(
            &claims.user_id,
            claims.session_id,
            next.jti,
            self.now(),
            lifetime,
            next.expires_at,
            &custom,
        )?;
        Ok((token, outcome))
    }

    /// Logs a sliding session out with its token. The token may be past its
    /// `exp` while still inside its renewal window (it is still a credential).
    /// A session already revoked, or a spent token's session that reuse revoked,
    /// is refused, as logging out twice is.
    pub async fn logout_sliding(&self, token: &str) -> Result<(), AuthError> {
        if self.sliding.is_none() {
            return Err(NOT_ENABLED);
        }
        let claims = self.validate_sliding(token, self.now())?;
        if self.revoke_one(&claims.user_id, claims.session_id).await? {
            Ok(())
        } else {
            Err(TokenError::Revoked.into())
        }
    }

    /// Validates a sliding token for renewal: everything but `exp`, which may have
    /// passed; `refresh_exp` must not have.
    fn validate_sliding(
        &self,
        token: &str,
        now: u64,
    ) -> Result<Claims<SlidingClaims<C>>, TokenError> {
        let claims = match self
            .jwt
            .validate_at::<SlidingClaims<C>>(token, TokenKind::Access, now)
        {
            Ok(c) => c,
            // `Expired` is only reported once the signature has been verified: the
            // payload can be read, and the rest is checked at its own `iat`.
            Err(TokenError::Expired) => {
                let iat = issued_at(token)?;
                if iat > now.saturating_add(self.jwt.settings().leeway) {
                    return Err(TokenError::IssuedInFuture);
                }
                self.jwt
                    .validate_at::<SlidingClaims<C>>(token, TokenKind::Access, iat)?
            }
            Err(e) => return Err(e),
        };
        match claims.custom.refresh_exp {
            // A plain access token is not a sliding token.
            None => Err(TokenError::WrongType),
            Some(until) if now >= until => Err(TokenError::Expired),
            Some(_) => Ok(claims),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn mint_sliding(
        &self,
        user_id: &str,
        session_id: Uuid,
        jti: Uuid,
        now: u64,
        lifetime: u64,
        renew_until: u64,
        custom: &C,
    ) -> Result<SlidingToken, Failed> {
        // Never usable past the end of its renewal window (the session's end).
        let expires_at = now.saturating_add(lifetime).min(renew_until);
        let payload = SlidingClaims {
            refresh_exp: Some(renew_until),
            custom,
        };
        let m = Mint {
            kind: TokenKind::Access,
            user_id,
            jti,
            session_id,
            issued_at: now,
            expires_at,
        };
        let token = self.jwt.mint(m, &payload).map_err(issue_failed)?;
        Ok(SlidingToken {
            token,
            session_id,
            expires_at,
            renew_until,
        })
    }
}

/// The `iat` of a token whose signature has been verified.
fn issued_at(token: &str) -> Result<u64, TokenError> {
    let payload = token.split('.').nth(1).ok_or(TokenError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Base64)?;
    serde_json::from_slice::<IssuedAt>(&bytes)
        .map(|p| p.iat)
        .map_err(|_| TokenError::MissingClaim)
}
