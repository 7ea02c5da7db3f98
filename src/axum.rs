//! axum extractors (feature `axum`) for what [`JwtAuthLayer`](crate::JwtAuthLayer)
//! put into the request: the claims and, when the layer resolves users, the user.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower_jwt_auth::{Jwt, JwtAuthLayer, Key, Algorithm};
//! use tower_jwt_auth::axum::{Authenticated, AuthRejection};
//!
//! async fn me(Authenticated(claims): Authenticated) -> String {
//!     format!("you are {}", claims.user_id())
//! }
//!
//! async fn maybe(auth: Option<Authenticated>) -> &'static str {
//!     if auth.is_some() { "signed in" } else { "anonymous" }
//! }
//!
//! # let jwt = Jwt::builder().signing_key(Key::hmac("k", Algorithm::HS256, [5u8; 32]).unwrap()).build().unwrap();
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/maybe", get(maybe))
//!     .layer(JwtAuthLayer::new(jwt).optional());
//! ```

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::error::AuthError;
use crate::jwt::{Claims, NoCustomClaims};

/// The validated claims of the request's access token.
#[derive(Debug, Clone)]
pub struct Authenticated<C = NoCustomClaims>(pub Claims<C>);

/// The user the layer resolved (with [`JwtAuthLayer::resolve_user`](crate::JwtAuthLayer::resolve_user)).
#[derive(Debug, Clone)]
pub struct CurrentUser<U>(pub U);

/// Why an extractor found nothing: the route is not behind the layer, or the
/// layer let an anonymous request through. Answers 401 with a Bearer challenge.
#[derive(Debug)]
#[non_exhaustive]
pub struct AuthRejection {
    error: AuthError,
}

impl AuthRejection {
    /// The status it answers with.
    pub fn status(&self) -> http::StatusCode {
        self.error.status()
    }

    /// The error's text.
    pub fn body_text(&self) -> String {
        self.error.description()
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        #[cfg(feature = "tracing")]
        tracing::trace!(status = %self.status(), "rejecting request: no authentication in extensions");
        crate::wire::response::error_response(&self.error, "api")
    }
}

impl<S: Send + Sync, C: Clone + Send + Sync + 'static> FromRequestParts<S> for Authenticated<C> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Claims<C>>()
            .cloned()
            .map(Authenticated)
            .ok_or(AuthRejection {
                error: AuthError::MissingToken,
            })
    }
}

impl<S: Send + Sync, C: Clone + Send + Sync + 'static> OptionalFromRequestParts<S>
    for Authenticated<C>
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Claims<C>>()
            .cloned()
            .map(Authenticated))
    }
}

impl<S: Send + Sync, U: Clone + Send + Sync + 'static> FromRequestParts<S> for CurrentUser<U> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<U>()
            .cloned()
            .map(CurrentUser)
            .ok_or(AuthRejection {
                error: AuthError::MissingToken,
            })
    }
}

impl<S: Send + Sync, U: Clone + Send + Sync + 'static> OptionalFromRequestParts<S>
    for CurrentUser<U>
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<U>().cloned().map(CurrentUser))
    }
}

/// [`AuthError`] as an axum response, for handlers that call [`Sessions`](crate::Sessions) directly.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        crate::wire::response::error_response(&self, "api")
    }
}
