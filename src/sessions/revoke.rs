//! Ending sessions (logout, revoke-all, one session by id), the revocation
//! check, and the session list.

use uuid::Uuid;

use crate::error::{AuthError, StoreError, TokenError};
use crate::events::EventKind;
use crate::jwt::{Claims, TokenKind};
use crate::metrics::{self, StoreOp};
use crate::store::SessionInfo;
use crate::user::UserResolver;

use super::{CustomClaims, Sessions};

impl<R: UserResolver, C: CustomClaims> Sessions<R, C> {
    /// Logs a session out with its refresh token. A token of a session already
    /// revoked (or unknown) is refused, as SimpleJWT's blacklist refuses twice.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), AuthError> {
        let claims: Claims<C> = self.jwt.validate(refresh_token, TokenKind::Refresh)?;
        if self.revoke_one(&claims.user_id, claims.session_id).await? {
            Ok(())
        } else {
            Err(TokenError::Revoked.into())
        }
    }

    pub(crate) async fn revoke_one(
        &self,
        user_id: &str,
        session_id: Uuid,
    ) -> Result<bool, StoreError> {
        let revoked = metrics::timed(
            StoreOp::RevokeSession,
            self.store.revoke_session(session_id, user_id, self.now()),
        )
        .await?;
        if revoked {
            self.note_session(session_id);
            self.emit(EventKind::SessionRevoked, user_id, Some(session_id));
        }
        Ok(revoked)
    }

    /// Revokes every session of the user an access token names (log out everywhere).
    /// Returns how many sessions were live.
    pub async fn revoke_all(&self, access_token: &str) -> Result<u64, AuthError> {
        let claims = self.check_access(access_token).await?;
        Ok(self.revoke_every(&claims.user_id).await?)
    }

    /// Revokes every session of a user by id (after a password change, say).
    pub async fn revoke_user(&self, user_id: &R::Id) -> Result<u64, AuthError> {
        Ok(self.revoke_every(&user_id.to_string()).await?)
    }

    async fn revoke_every(&self, user_id: &str) -> Result<u64, StoreError> {
        let cutoff_ms = self.jwt.clock().now_millis();
        let n = metrics::timed(
            StoreOp::RevokeUser,
            self.store.revoke_user(user_id, cutoff_ms),
        )
        .await?;
        // The store keeps the later of this and an earlier cutoff; the view too.
        self.note_user(user_id, cutoff_ms);
        self.emit(EventKind::AllSessionsRevoked { sessions: n }, user_id, None);
        Ok(n)
    }

    /// Validates an access token and checks it against the store's revocations.
    pub async fn check_access(&self, access_token: &str) -> Result<Claims<C>, AuthError> {
        let claims: Claims<C> = self.jwt.validate(access_token, TokenKind::Access)?;
        self.check_not_revoked(&claims).await?;
        Ok(claims)
    }

    async fn check_not_revoked<X>(&self, claims: &Claims<X>) -> Result<(), AuthError> {
        let revoked = metrics::timed(
            StoreOp::IsRevoked,
            self.store
                .is_revoked(claims.session_id, &claims.user_id, claims.issued_at),
        )
        .await?;
        if revoked {
            Err(TokenError::Revoked.into())
        } else {
            Ok(())
        }
    }

    /// Verifies a token of either kind: signature, claims, and that its session is
    /// not revoked. A spent refresh token of a live session still verifies (it is
    /// well-formed); the refresh endpoint is where it is refused.
    pub async fn verify(&self, token: &str) -> Result<(), AuthError> {
        let claims: Claims<C> = match self.jwt.validate(token, TokenKind::Access) {
            Ok(c) => c,
            Err(TokenError::WrongType) => self.jwt.validate(token, TokenKind::Refresh)?,
            Err(e) => return Err(e.into()),
        };
        self.check_not_revoked(&claims).await
    }

    /// The live sessions of a user (id, created, last rotated, absolute expiry,
    /// the label set at login), for a "your devices" page.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tower_jwt_auth::{Jwt, Key, Algorithm, MemoryStore, MemoryUsers, Sessions, NoCustomClaims};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [1u8; 32]).unwrap()).build().unwrap();
    /// # let users = Arc::new(MemoryUsers::<u64, ()>::new());
    /// # users.insert(7, ());
    /// # let sessions: Sessions<_> = Sessions::new(jwt, Arc::new(MemoryStore::new()), users);
    /// let phone = sessions.login(&7, &NoCustomClaims, Some("Firefox on Android".into())).await.unwrap();
    /// let list = sessions.list_sessions("7").await.unwrap();
    /// assert_eq!(list[0].label.as_deref(), Some("Firefox on Android"));
    /// // "Sign out that device": only the caller's own sessions can be revoked.
    /// assert!(!sessions.revoke_session_of("8", phone.session_id).await.unwrap());
    /// assert!(sessions.revoke_session_of("7", phone.session_id).await.unwrap());
    /// assert!(sessions.list_sessions("7").await.unwrap().is_empty());
    /// # }
    /// ```
    pub async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>, AuthError> {
        Ok(metrics::timed(
            StoreOp::ListSessions,
            self.store.list_sessions(user_id, self.now()),
        )
        .await?)
    }

    /// Revokes one session of `user_id` by id. `false` (nothing done) when the
    /// session is not one of that user's live sessions: a route should answer
    /// 404 then, whether the id is unknown or another user's.
    pub async fn revoke_session_of(
        &self,
        user_id: &str,
        session_id: Uuid,
    ) -> Result<bool, AuthError> {
        let own = self.list_sessions(user_id).await?;
        if !own.iter().any(|s| s.session_id == session_id) {
            return Ok(false);
        }
        Ok(self.revoke_one(user_id, session_id).await?)
    }
}
