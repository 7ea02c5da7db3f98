//! [`Sessions`]: login, refresh, logout, revoke-all and verify, above any
//! [`TokenStore`] and [`UserResolver`]. The HTTP services in [`refresh`](crate::refresh)
//! are thin wrappers around it; apps can call it directly too.
//!
//! Beside the rotation rules it carries the app's hooks: session events
//! ([`Sessions::with_events`]), claims recomputed at each refresh
//! ([`Sessions::with_claims_refresh`]) and sliding tokens
//! ([`Sessions::with_sliding`]).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::claims::{Claims, NoCustomClaims, TokenKind};
use crate::config::Jwt;
use crate::error::{AuthError, StoreError, TokenError};
use crate::events::{Dispatcher, EventKind, RefusalReason, SessionEvent, SessionEvents};
use crate::metrics::{self, Rotation, StoreOp};
use crate::sliding::SlidingTokens;
use crate::store::{
    NewSession, RotateOutcome, RotateRequest, SessionInfo, TokenStore, new_store_id,
};
use crate::token::{TokenPair, now_secs};
use crate::user::{UserLookup, UserResolver};

/// The custom-claims bound: what the app puts into tokens and gets back.
pub trait CustomClaims: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> CustomClaims for T {}

/// What the claims-refresh hook gets: who is refreshing, and the claims the
/// presented token carries. See [`Sessions::with_claims_refresh`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClaimsContext<U, C> {
    /// The user id value (the configured id field, as a string).
    pub user_id: String,
    /// The user as the resolver found them (active) for this refresh.
    pub user: U,
    /// The session being refreshed.
    pub session_id: Uuid,
    /// The custom claims of the presented token (what SimpleJWT would copy).
    pub claims: C,
}

/// Why the claims-refresh hook could not give new claims.
///
/// Either way the presented refresh token is not spent: the hook runs before
/// the store rotates it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// The claims cannot be computed now (the database holding roles is down):
    /// the refresh answers 503 with `Retry-After`, and the same token may be
    /// presented again. The message is logged, never sent to the client.
    #[error("the claims could not be recomputed: {0}")]
    Unavailable(String),
    /// The user may no longer hold tokens: the session is revoked and the refresh
    /// answers 401, as for an inactive user.
    #[error("the user may no longer hold tokens")]
    Refused,
}

impl ClaimsError {
    /// [`ClaimsError::Unavailable`] with a message (no secrets: it is logged).
    pub fn unavailable(message: impl Into<String>) -> Self {
        ClaimsError::Unavailable(message.into())
    }
}

/// The boxed future a claims-refresh hook returns.
pub type ClaimsFuture<C> = Pin<Box<dyn Future<Output = Result<C, ClaimsError>> + Send + 'static>>;

type ClaimsFn<U, C> = dyn Fn(ClaimsContext<U, C>) -> ClaimsFuture<C> + Send + Sync;

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
    pub(crate) jwt: Jwt,
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) users: Arc<R>,
    pub(crate) grace: u64,
    pub(crate) events: Option<Arc<Dispatcher>>,
    pub(crate) claims_refresh: Option<Arc<ClaimsFn<R::User, C>>>,
    pub(crate) sliding: Option<SlidingTokens>,
    _claims: PhantomData<fn() -> C>,
}

impl<R: UserResolver, C> Clone for Sessions<R, C> {
    fn clone(&self) -> Self {
        Sessions {
            jwt: self.jwt.clone(),
            store: self.store.clone(),
            users: self.users.clone(),
            grace: self.grace,
            events: self.events.clone(),
            claims_refresh: self.claims_refresh.clone(),
            sliding: self.sliding,
            _claims: PhantomData,
        }
    }
}

impl<R: UserResolver, C> fmt::Debug for Sessions<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("jwt", &self.jwt)
            .field("grace_secs", &self.grace)
            .field("events", &self.events.is_some())
            .field("claims_refresh", &self.claims_refresh.is_some())
            .field("sliding", &self.sliding)
            .finish_non_exhaustive()
    }
}

/// A refresh or renewal that failed, and how it counts in the metrics.
pub(crate) struct Failed {
    pub(crate) outcome: Rotation,
    pub(crate) error: AuthError,
}

impl Failed {
    pub(crate) fn new(outcome: Rotation, error: impl Into<AuthError>) -> Self {
        Failed {
            outcome,
            error: error.into(),
        }
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::new(Rotation::StoreUnavailable, e)
    }
}

/// Counts the outcome of a rotation-shaped call and hands back its result.
pub(crate) fn counted<T>(r: Result<(T, Rotation), Failed>) -> Result<T, AuthError> {
    match r {
        Ok((v, outcome)) => {
            metrics::rotation(outcome);
            Ok(v)
        }
        Err(f) => {
            metrics::rotation(f.outcome);
            Err(f.error)
        }
    }
}

pub(crate) fn issue_failed<E>(_: E) -> Failed {
    Failed::new(
        Rotation::IssueFailed,
        AuthError::InvalidRequest("the custom claims cannot be put into a token"),
    )
}

impl<R: UserResolver, C: CustomClaims> Sessions<R, C> {
    /// Sessions on a store and a user resolver, with no reuse grace window.
    pub fn new(jwt: Jwt, store: Arc<dyn TokenStore>, users: Arc<R>) -> Self {
        Sessions {
            jwt,
            store,
            users,
            grace: 0,
            events: None,
            claims_refresh: None,
            sliding: None,
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

    /// Registers the session-event hook: pair issued, rotated, reuse detected,
    /// session revoked, all sessions revoked, user refused (and the sliding-token
    /// events). It is called after the store commits, off the request's path: a
    /// slow or panicking hook neither delays nor fails a response. See
    /// [`events`](crate::events) for the details and an example.
    pub fn with_events(mut self, hook: impl SessionEvents) -> Self {
        self.events = Some(Arc::new(Dispatcher::new(Arc::new(hook))));
        self
    }

    /// Recomputes the custom claims at each refresh instead of copying the old
    /// ones (SimpleJWT copies them forever, its issue #705): a user who lost a
    /// role loses it at the next refresh, not at the next login.
    ///
    /// The hook runs after the user is resolved and before the store rotates the
    /// token, so a failure spends nothing: [`ClaimsError::Unavailable`] (or a
    /// panic inside the hook) answers 503 and the same token can be retried;
    /// [`ClaimsError::Refused`] revokes the session and answers 401. Without a
    /// hook the claims are kept.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use serde::{Deserialize, Serialize};
    /// use tower_jwt_auth::{Algorithm, ClaimsContext, ClaimsError, Jwt, Key, MemoryStore, MemoryUsers, Sessions, TokenKind};
    ///
    /// #[derive(Clone, Serialize, Deserialize)]
    /// struct Roles { admin: bool }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [4u8; 32]).unwrap()).build().unwrap();
    /// // The user record says whether they are an admin now.
    /// let users = Arc::new(MemoryUsers::<u64, bool>::new());
    /// users.insert(1, true);
    /// let sessions: Sessions<_, Roles> = Sessions::new(jwt.clone(), Arc::new(MemoryStore::new()), users.clone())
    ///     .with_claims_refresh(|ctx: ClaimsContext<bool, Roles>| async move {
    ///         Ok::<_, ClaimsError>(Roles { admin: ctx.user })
    ///     });
    ///
    /// let pair = sessions.login(&1, &Roles { admin: true }, None).await.unwrap();
    /// users.insert(1, false); // demoted
    /// let next = sessions.refresh(&pair.refresh).await.unwrap();
    /// let claims = jwt.validate::<Roles>(&next.access, TokenKind::Access).unwrap();
    /// assert!(!claims.custom().admin);
    /// # }
    /// ```
    pub fn with_claims_refresh<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(ClaimsContext<R::User, C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, ClaimsError>> + Send + 'static,
    {
        self.claims_refresh = Some(Arc::new(move |ctx| Box::pin(hook(ctx)) as ClaimsFuture<C>));
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

    /// Reports an event the store has committed: `tracing` at its level, then the
    /// app's hook (off the request path).
    pub(crate) fn emit(&self, kind: EventKind, user_id: &str, session_id: Option<Uuid>) {
        #[cfg(feature = "tracing")]
        crate::events::trace(&kind, user_id, session_id);
        if let Some(events) = &self.events {
            events.dispatch(SessionEvent::new(kind, user_id, session_id, now_secs()));
        }
    }

    /// Starts a session for a user the app has authenticated (password checked):
    /// mints the pair, records the session in the store, and answers the pair.
    /// `label` is shown in session lists ([`Sessions::list_sessions`]).
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
            session_id: new_store_id(),
            user_id,
            jti: new_store_id(),
            created_at: now,
            token_expires_at: now + s.refresh_ttl.min(s.session_max_age),
            session_expires_at: now + s.session_max_age,
            label,
        };
        // Minted first: claims that cannot go into a token leave no session behind.
        let pair = self
            .jwt
            .pair(
                &session.user_id,
                session.session_id,
                session.jti,
                session.token_expires_at,
                custom,
            )
            .map_err(|_| {
                AuthError::InvalidRequest("the custom claims cannot be put into a token")
            })?;
        metrics::timed(StoreOp::CreateSession, self.store.create_session(&session)).await?;
        self.emit(
            EventKind::PairIssued,
            &session.user_id,
            Some(session.session_id),
        );
        Ok(pair)
    }

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
        let successor = new_store_id();
        let (expires_at, outcome) = self
            .rotate(
                &claims.user_id,
                claims.session_id,
                claims.jti,
                successor,
                self.jwt.settings().refresh_ttl,
                false,
            )
            .await?;
        let refresh = self
            .jwt
            .issue_refresh(
                &claims.user_id,
                claims.session_id,
                successor,
                expires_at,
                &custom,
            )
            .map_err(issue_failed)?;
        let pair = TokenPair {
            access,
            refresh,
            session_id: claims.session_id,
            refresh_jti: successor,
            access_expires_at,
            refresh_expires_at: expires_at,
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

    /// Rotates token `jti` of the session in the store, reports the event, and
    /// answers the successor's expiry.
    pub(crate) async fn rotate(
        &self,
        user_id: &str,
        session_id: Uuid,
        jti: Uuid,
        successor: Uuid,
        ttl: u64,
        sliding: bool,
    ) -> Result<(u64, Rotation), Failed> {
        let req = RotateRequest {
            session_id,
            user_id: user_id.to_owned(),
            jti,
            successor_jti: successor,
            now: now_secs(),
            refresh_ttl: ttl,
            grace: self.grace,
        };
        let outcome = metrics::timed(StoreOp::Rotate, self.store.rotate(&req)).await?;
        let (expires_at, within_grace) = match outcome {
            RotateOutcome::Rotated { expires_at } => (expires_at, false),
            RotateOutcome::RotatedWithinGrace { expires_at } => (expires_at, true),
            RotateOutcome::ReuseDetected => {
                self.emit(EventKind::ReuseDetected, user_id, Some(session_id));
                return Err(Failed::new(Rotation::ReuseDetected, TokenError::Reused));
            }
            RotateOutcome::Revoked => {
                return Err(Failed::new(Rotation::Revoked, TokenError::Revoked));
            }
            RotateOutcome::Expired => {
                return Err(Failed::new(Rotation::Expired, TokenError::Expired));
            }
            RotateOutcome::Unknown => {
                return Err(Failed::new(Rotation::Unknown, TokenError::Unknown));
            }
        };
        let kind = if sliding {
            EventKind::SlidingRenewed { within_grace }
        } else {
            EventKind::Rotated { within_grace }
        };
        self.emit(kind, user_id, Some(session_id));
        let counted = if within_grace {
            Rotation::RotatedWithinGrace
        } else {
            Rotation::Rotated
        };
        Ok((expires_at, counted))
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
            self.store.revoke_session(session_id, now_secs()),
        )
        .await?;
        self.emit(EventKind::UserRefused { reason }, user_id, Some(session_id));
        Ok(())
    }

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
            self.store.revoke_session(session_id, now_secs()),
        )
        .await?;
        if revoked {
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
        let n = metrics::timed(
            StoreOp::RevokeUser,
            self.store.revoke_user(user_id, now_secs()),
        )
        .await?;
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
            self.store.list_sessions(user_id, now_secs()),
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

/// Calls the claims hook; `None` when it panicked (while called or polled).
async fn call_hook<U, C>(
    hook: &ClaimsFn<U, C>,
    ctx: ClaimsContext<U, C>,
) -> Option<Result<C, ClaimsError>> {
    let mut fut = catch_unwind(AssertUnwindSafe(|| hook(ctx))).ok()?;
    std::future::poll_fn(move |cx| {
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(r)) => Poll::Ready(Some(r)),
            Ok(Poll::Pending) => Poll::Pending,
            // The future is not polled again after a panic.
            Err(_) => Poll::Ready(None),
        }
    })
    .await
}
