//! The claims-refresh hook: the app recomputes a session's custom claims at
//! each refresh. A panicking hook answers 503; it never takes the server down.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::Poll;

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// The custom-claims bound: what the app puts into tokens and gets back.
pub trait CustomClaims: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> CustomClaims for T {}

/// What the claims-refresh hook gets: who is refreshing, and the claims the
/// presented token carries. See [`Sessions::with_claims_refresh`](crate::Sessions::with_claims_refresh).
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

pub(crate) type ClaimsFn<U, C> = dyn Fn(ClaimsContext<U, C>) -> ClaimsFuture<C> + Send + Sync;

/// Calls the claims hook; `None` when it panicked (while called or polled).
pub(crate) async fn call_hook<U, C>(
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
