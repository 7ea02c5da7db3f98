//! [`Sessions`]: login, refresh, logout, revoke-all and verify, above any
//! [`TokenStore`] and [`UserResolver`]. The HTTP services in
//! [`endpoints`](crate::endpoints) are thin wrappers around it; apps can call it
//! directly too.
//!
//! Beside the rotation flow it carries the app's hooks: session events
//! ([`Sessions::with_events`]), claims recomputed at each refresh
//! ([`Sessions::with_claims_refresh`]) and sliding tokens
//! ([`Sessions::with_sliding`]).
//!
//! | file | what it holds |
//! | --- | --- |
//! | `login.rs` | starting a session |
//! | `refresh.rs` | the refresh flow: user check, claims hook, store rotation |
//! | `revoke.rs` | logout, revoke-all, the revocation check, session lists |
//! | `sliding.rs` | sliding tokens |
//! | `hooks.rs` | the claims-refresh hook |
//! | `outcome.rs` | how a refresh's outcome is counted |

mod hooks;
mod login;
mod outcome;
mod refresh;
mod revoke;
pub mod sliding;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::error::ConfigError;
use crate::events::{Dispatcher, EventKind, SessionEvent, SessionEvents};
use crate::jwt::{Jwt, NoCustomClaims};
use crate::revocations::RevocationView;
use crate::store::TokenStore;
use crate::user::UserResolver;

pub(crate) use hooks::ClaimsFn;
pub use hooks::{ClaimsContext, ClaimsError, ClaimsFuture, CustomClaims};
pub(crate) use outcome::{Failed, counted, issue_failed};
pub use sliding::{REFRESH_EXP_CLAIM, SlidingToken, SlidingTokens};

/// The default reuse window: 10 seconds. Long enough for a client to retry a
/// refresh whose answer it lost after the SQL stores' operation timeout (5 s)
/// and the `Retry-After` of the 503 (1 s), with room for the network; short
/// enough that a replayed stolen token is reuse a few seconds later. See
/// [`Sessions::with_reuse_grace`].
pub const DEFAULT_REUSE_WINDOW: Duration = Duration::from_secs(10);

/// Sessions with refresh-token rotation: the rules of [`rotation`](crate::rotation),
/// once, for every backend.
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
/// // A retry moments later (its answer was lost): the same successor again.
/// let again = sessions.refresh(&pair.refresh).await.unwrap();
/// assert_eq!(again.refresh_jti, next.refresh_jti);
/// let third = sessions.refresh(&next.refresh).await.unwrap();
/// // Once the successor was used, the old token is spent: using it again
/// // revokes the session...
/// assert!(sessions.refresh(&pair.refresh).await.is_err());
/// // ...so the live token is refused too.
/// assert!(sessions.refresh(&third.refresh).await.is_err());
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
    /// This instance's revocation view, told of each revocation made here at
    /// once (the store's log reaches the other instances).
    pub(crate) view: Option<RevocationView>,
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
            view: self.view.clone(),
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

impl<R: UserResolver, C: CustomClaims> Sessions<R, C> {
    /// Sessions on a store and a user resolver, with the default reuse window
    /// ([`DEFAULT_REUSE_WINDOW`], see [`Sessions::with_reuse_grace`]).
    pub fn new(jwt: Jwt, store: Arc<dyn TokenStore>, users: Arc<R>) -> Self {
        Sessions {
            jwt,
            store,
            users,
            grace: DEFAULT_REUSE_WINDOW.as_secs(),
            events: None,
            claims_refresh: None,
            sliding: None,
            view: None,
            _claims: PhantomData,
        }
    }

    /// The reuse window (default [`DEFAULT_REUSE_WINDOW`], 10 s): for this long
    /// after a refresh token was used, presenting it again answers its
    /// successor again (the same `jti`, session and expiry, minted anew, with
    /// a fresh access token), as long as that successor was never used. It
    /// keeps a session alive when a client never got the answer to a refresh
    /// that committed (a cut connection, a 503 from a timeout that hid a
    /// commit) and retries, and when two tabs refresh at once. It never makes a
    /// second branch: one successor per token, ever. A replay after the
    /// successor was used, or after the window, is reuse and revokes the
    /// session.
    ///
    /// `Duration::ZERO` keeps strict single use: then a lost answer ends the
    /// session (the retry is indistinguishable from a replay). Within the
    /// window, whoever holds a just-used token gets its successor too: that is
    /// the price of surviving lost answers, and why the window is short.
    ///
    /// Whole seconds only (the store keeps seconds): a window with a fraction
    /// of a second is refused rather than silently truncated.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// # use tower_jwt_auth::{Algorithm, Jwt, Key, MemoryStore, MemoryUsers, Sessions};
    /// # let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [1u8; 32]).unwrap()).build().unwrap();
    /// # let users = Arc::new(MemoryUsers::<u64, ()>::new());
    /// let sessions: Sessions<_> = Sessions::new(jwt, Arc::new(MemoryStore::new()), users);
    /// let strict = sessions.clone().with_reuse_grace(Duration::ZERO).unwrap();
    /// assert!(sessions.with_reuse_grace(Duration::from_millis(1500)).is_err());
    /// ```
    pub fn with_reuse_grace(mut self, window: Duration) -> Result<Self, ConfigError> {
        if window.subsec_nanos() != 0 {
            return Err(ConfigError::BadLifetime(
                "the reuse window is whole seconds: the store keeps times in seconds",
            ));
        }
        self.grace = window.as_secs();
        Ok(self)
    }

    /// The reuse window.
    pub fn reuse_window(&self) -> Duration {
        Duration::from_secs(self.grace)
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

    /// Now, on the [`Jwt`]'s clock.
    pub(crate) fn now(&self) -> u64 {
        self.jwt.now()
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

    /// Tells this instance's revocation view of each revocation made through
    /// these sessions, as soon as the store has committed it: a logout here
    /// is refused here at once, before the view reads the store's log (which
    /// carries it to the other instances).
    pub fn with_revocation_view(mut self, view: RevocationView) -> Self {
        self.view = Some(view);
        self
    }

    /// A committed revocation of `session_id`, told to the local view.
    pub(crate) fn note_session(&self, session_id: Uuid) {
        if let Some(view) = &self.view {
            let until = self
                .now()
                .saturating_add(self.jwt.session_max_age().as_secs());
            view.note(crate::store::Revoked::Session {
                session_id,
                expires_at: until,
            });
        }
    }

    /// A committed revoke-all of `user_id` at `cutoff_ms`, told to the local view.
    pub(crate) fn note_user(&self, user_id: &str, cutoff_ms: u64) {
        if let Some(view) = &self.view {
            let until = crate::store::state::cutoff_relevant_until(
                cutoff_ms,
                Some(
                    self.now()
                        .saturating_add(self.jwt.session_max_age().as_secs()),
                ),
            );
            view.note(crate::store::Revoked::User {
                user_id: user_id.to_owned(),
                cutoff_ms,
                expires_at: until,
            });
        }
    }

    /// Reports an event the store has committed: `tracing` at its level, then the
    /// app's hook (off the request path).
    pub(crate) fn emit(&self, kind: EventKind, user_id: &str, session_id: Option<Uuid>) {
        #[cfg(feature = "tracing")]
        crate::events::trace(&kind, user_id, session_id);
        if let Some(events) = &self.events {
            events.dispatch(SessionEvent::new(kind, user_id, session_id, self.now()));
        }
    }
}
