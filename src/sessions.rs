//! [`Sessions`]: login, refresh, logout, revoke-all and verify, above any
//! [`TokenStore`] and [`UserResolver`]. The HTTP services in [`refresh`](crate::refresh)
//! are thin wrappers around it; apps can call it directly too.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::claims::{Claims, NoCustomClaims, TokenKind};
use crate::config::Jwt;
use crate::error::{AuthError, TokenError};
use crate::store::{NewSession, RotateOutcome, RotateRequest, SessionInfo, TokenStore};
use crate::token::{TokenPair, now_secs};
use crate::user::{UserLookup, UserResolver};

/// The custom-claims bound: what the app puts into tokens and gets back.
pub trait CustomClaims: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> CustomClaims for T {}

/// Sessions with refresh-token rotation: the rules of shared/DESIGN.md
/// "Rotation, exactly", once, for every backend.
///
/// ```
/// use std::sync::Arc;
/// use tower_jwt_auth::{Jwt, Key, Algorithm, MemoryStore, MemoryUsers, Sessions, NoCustomClaims};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [1u8; 32]).unwrap()).build().unwrap();
/// let users = Arc::new(MemoryUsers::<uuid::Uuid, ()>::new());
/// let id = uuid::Uuid::new_v4();
/// users.insert(id, ());
/// let sessions: Sessions<_> = Sessions::new(jwt, Arc::new(MemoryStore::new()), users);
///
/// let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
/// let next = sessions.refresh(&pair.refresh).await.unwrap();
/// // The old refresh token is spent: using it again revokes the session...
/// assert!(sessions.refresh(&pair.refresh).await.is_err());
/// // ...so its successor is refused too.
/// assert!(sessions.refresh(&next.refresh).await.is_err());
/// # }
/// ```
pub struct Sessions<R: UserResolver, C = NoCustomClaims> {
    jwt: Jwt,
    store: Arc<dyn TokenStore>,
    users: Arc<R>,
    grace: u64,
    _claims: PhantomData<fn() -> C>,
}

impl<R: UserResolver, C> Clone for Sessions<R, C> {
    fn clone(&self) -> Self {
        Sessions {
            jwt: self.jwt.clone(),
            store: self.store.clone(),
            users: self.users.clone(),
            grace: self.grace,
            _claims: PhantomData,
        }
    }
}

impl<R: UserResolver, C> fmt::Debug for Sessions<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("jwt", &self.jwt)
            .field("grace_secs", &self.grace)
            .finish_non_exhaustive()
    }
}

impl<R: UserResolver, C: CustomClaims> Sessions<R, C> {
    /// Sessions on a store and a user resolver, with no reuse grace window.
    pub fn new(jwt: Jwt, store: Arc<dyn TokenStore>, users: Arc<R>) -> Self {
        Sessions {
            jwt,
            store,
            users,
            grace: 0,
            _claims: PhantomData,
        }
    }

    /// A reuse grace window (default 0: no second winner). Within it, the immediate
    /// predecessor of the live token may be exchanged again (a browser that
    /// refreshed twice at once); older tokens never get grace.
    pub fn with_reuse_grace(mut self, grace: Duration) -> Self {
        self.grace = grace.as_secs();
        self
    }

    /// The token configuration.
    pub fn jwt(&self) -> &Jwt {
        &self.jwt
    }

    /// The token store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    /// The user resolver.
    pub fn users(&self) -> &Arc<R> {
        &self.users
    }

    /// Starts a session for a user the app has authenticated (password checked):
    /// records it in the store, then mints the pair. `label` is shown in session lists.
    pub async fn login(
        &self,
        user_id: &R::Id,
        custom: &C,
        label: Option<String>,
    ) -> Result<TokenPair, AuthError> {
        let user_id = user_id.to_string();
        let now = now_secs();
        let s = self.jwt.settings();
        let session = NewSession {
            session_id: Uuid::new_v4(),
            user_id,
            jti: Uuid::new_v4(),
            created_at: now,
            token_expires_at: now + s.refresh_ttl.min(s.session_max_age),
            session_expires_at: now + s.session_max_age,
            label,
        };
        self.store.create_session(&session).await?;
        self.jwt
            .pair(
                &session.user_id,
                session.session_id,
                session.jti,
                session.token_expires_at,
                custom,
            )
            .map_err(|_| AuthError::InvalidRequest("the custom claims cannot be put into a token"))
    }

    /// Exchanges a refresh token for a new pair (rotation). See [`RotateOutcome`]
    /// for what can happen; store failures are [`AuthError::StoreUnavailable`].
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        let claims: Claims<C> = self.jwt.validate(refresh_token, TokenKind::Refresh)?;
        self.check_user(&claims).await?;
        let now = now_secs();
        let req = RotateRequest {
            session_id: claims.session_id,
            user_id: claims.user_id.clone(),
            jti: claims.jti,
            successor_jti: Uuid::new_v4(),
            now,
            refresh_ttl: self.jwt.settings().refresh_ttl,
            grace: self.grace,
        };
        let expires_at = match self.store.rotate(&req).await? {
            RotateOutcome::Rotated { expires_at }
            | RotateOutcome::RotatedWithinGrace { expires_at } => expires_at,
            RotateOutcome::ReuseDetected => return Err(TokenError::Reused.into()),
            RotateOutcome::Revoked => return Err(TokenError::Revoked.into()),
            RotateOutcome::Expired => return Err(TokenError::Expired.into()),
            RotateOutcome::Unknown => return Err(TokenError::Unknown.into()),
        };
        self.jwt
            .pair(
                &claims.user_id,
                claims.session_id,
                req.successor_jti,
                expires_at,
                &claims.custom,
            )
            .map_err(|_| AuthError::InvalidRequest("the custom claims cannot be put into a token"))
    }

    /// Resolves the token's user; a missing or inactive user revokes the session.
    async fn check_user(&self, claims: &Claims<C>) -> Result<R::User, AuthError> {
        let id: R::Id = claims.user_id.parse().map_err(|_| TokenError::UserId)?;
        match self.users.resolve(&id).await? {
            UserLookup::Active(u) => Ok(u),
            UserLookup::Inactive | UserLookup::Missing => {
                self.store
                    .revoke_session(claims.session_id, now_secs())
                    .await?;
                Err(TokenError::UserInactive.into())
            }
        }
    }

    /// Logs a session out with its refresh token. A token of a session already
    /// revoked (or unknown) is refused, as SimpleJWT's blacklist refuses twice.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), AuthError> {
        let claims: Claims<C> = self.jwt.validate(refresh_token, TokenKind::Refresh)?;
        if self
            .store
            .revoke_session(claims.session_id, now_secs())
            .await?
        {
            Ok(())
        } else {
            Err(TokenError::Revoked.into())
        }
    }

    /// Revokes every session of the user an access token names (log out everywhere).
    /// Returns how many sessions were live.
    pub async fn revoke_all(&self, access_token: &str) -> Result<u64, AuthError> {
        let claims = self.check_access(access_token).await?;
        Ok(self.store.revoke_user(&claims.user_id, now_secs()).await?)
    }

    /// Revokes every session of a user by id (after a password change, say).
    pub async fn revoke_user(&self, user_id: &R::Id) -> Result<u64, AuthError> {
        Ok(self
            .store
            .revoke_user(&user_id.to_string(), now_secs())
            .await?)
    }

    /// Validates an access token and checks it against the store's revocations.
    pub async fn check_access(&self, access_token: &str) -> Result<Claims<C>, AuthError> {
        let claims: Claims<C> = self.jwt.validate(access_token, TokenKind::Access)?;
        if self
            .store
            .is_revoked(claims.session_id, &claims.user_id, claims.issued_at)
            .await?
        {
            return Err(TokenError::Revoked.into());
        }
        Ok(claims)
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
        if self
            .store
            .is_revoked(claims.session_id, &claims.user_id, claims.issued_at)
            .await?
        {
            return Err(TokenError::Revoked.into());
        }
        Ok(())
    }

    /// The live sessions of a user.
    pub async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>, AuthError> {
        Ok(self.store.list_sessions(user_id, now_secs()).await?)
    }

    /// Revokes one session of `user_id` by id. `false` (nothing done) when the
    /// session is not one of that user's live sessions.
    pub async fn revoke_session_of(
        &self,
        user_id: &str,
        session_id: Uuid,
    ) -> Result<bool, AuthError> {
        let own = self.store.list_sessions(user_id, now_secs()).await?;
        if !own.iter().any(|s| s.session_id == session_id) {
            return Ok(false);
        }
        Ok(self.store.revoke_session(session_id, now_secs()).await?)
    }
}
