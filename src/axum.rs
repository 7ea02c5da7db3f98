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
//!
//! # When an extractor finds no claims
//!
//! - Behind an [`optional`](crate::JwtAuthLayer::optional) layer, a request
//!   without a token is anonymous: `Option<Authenticated<C>>` is `None`, and
//!   `Authenticated<C>` answers 401 with the layer's realm. A request whose
//!   token is expired or revoked never gets here: the layer answers 401 itself
//!   (a client that sends a token believes it is signed in, and must learn to
//!   refresh; see [`JwtAuthLayer::optional`](crate::JwtAuthLayer::optional)).
//! - Behind a layer made for another claims type (`JwtAuthLayer::new` is
//!   `NoCustomClaims`; use [`JwtAuthLayer::with_claims`](crate::JwtAuthLayer::with_claims)
//!   or [`JwtAuthLayer::for_sessions`](crate::JwtAuthLayer::for_sessions)),
//!   both extractors answer 500 and log (with the `tracing` feature) which
//!   types disagree: a setup mistake fails loudly, never as a silent 401 or an
//!   anonymous request.
//! - With no layer in front of the route, `Authenticated<C>` answers 401 and
//!   `Option<Authenticated<C>>` is `None`, with a `tracing` warning.

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::auth::LayerContext;
use crate::error::AuthError;
use crate::jwt::{Claims, NoCustomClaims};
use crate::wire::response::{DEFAULT_REALM, error_response};

/// The validated claims of the request's access token.
#[derive(Debug, Clone)]
pub struct Authenticated<C = NoCustomClaims>(pub Claims<C>);

/// The validated claims of the request's access token, which meet the
/// requirement `Q`: a request whose token lacks it gets 403
/// `insufficient_scope` naming [`Requirement::SCOPE`] (RFC 6750 §3.1), one
/// without a token 401, as [`Authenticated`] answers.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_jwt_auth::{Claims, Jwt, JwtAuthLayer, Key, Algorithm};
/// use tower_jwt_auth::axum::{Authorized, Requirement};
///
/// /// Tokens that grant the `admin` scope.
/// struct Admin;
/// impl Requirement for Admin {
///     const SCOPE: &'static str = "admin";
///     fn allows(claims: &Claims) -> bool {
///         claims.has_scope("admin")
///     }
/// }
///
/// async fn admin(auth: Authorized<Admin>) -> String {
///     format!("hello, admin {}", auth.claims.user_id())
/// }
///
/// # let jwt = Jwt::builder().signing_key(Key::hmac("k", Algorithm::HS256, [5u8; 32]).unwrap()).build().unwrap();
/// let app: Router = Router::new()
///     .route("/admin", get(admin))
///     .layer(JwtAuthLayer::new(jwt));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Authorized<Q, C = NoCustomClaims> {
    /// The claims, which meet `Q`.
    pub claims: Claims<C>,
    requirement: std::marker::PhantomData<fn() -> Q>,
}

/// A requirement on the claims, named by a type, for [`Authorized`] (for a
/// whole router, see [`RequireClaims`](crate::RequireClaims)).
pub trait Requirement<C = NoCustomClaims>: 'static {
    /// What a refused client lacks, named in the challenge's `scope`.
    const SCOPE: &'static str;
    /// Whether `claims` meet the requirement.
    fn allows(claims: &Claims<C>) -> bool;
}

/// The user the layer resolved (with [`JwtAuthLayer::resolve_user`](crate::JwtAuthLayer::resolve_user)).
#[derive(Debug, Clone)]
pub struct CurrentUser<U>(pub U);

/// Why an extractor found nothing: the route is not behind the layer, the
/// layer let an anonymous request through (401 with a Bearer challenge in the
/// layer's realm), or the layer makes another claims type (500).
#[derive(Debug)]
#[non_exhaustive]
pub struct AuthRejection {
    error: AuthError,
    realm: std::sync::Arc<str>,
}

impl AuthRejection {
    fn new(error: AuthError, context: Option<&LayerContext>) -> Self {
        AuthRejection {
            error,
            realm: context.map_or_else(|| DEFAULT_REALM.into(), |c| c.realm.clone()),
        }
    }

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
        match &self.error {
            AuthError::Misconfigured(why) => tracing::error!(%why, "rejecting request"),
            _ => {
                tracing::trace!(status = %self.status(), "rejecting request: no authentication in extensions")
            }
        }
        error_response(&self.error, &self.realm)
    }
}

/// The claims of type `C` the layer put into the request: `Ok(None)` for an
/// anonymous request (optional layer, or no layer), `Err` when the layer makes
/// another claims type.
fn claims_of<C: Clone + Send + Sync + 'static>(
    parts: &Parts,
) -> Result<Option<Claims<C>>, AuthRejection> {
    let context = parts.extensions.get::<LayerContext>();
    if let Some(claims) = parts.extensions.get::<Claims<C>>() {
        return Ok(Some(claims.clone()));
    }
    match context {
        Some(ctx) if !ctx.is::<C>() => Err(AuthRejection::new(
            AuthError::Misconfigured(format!(
                "the handler asks for Claims<{}> but the JwtAuthLayer in front of it makes Claims<{}>",
                std::any::type_name::<C>(),
                ctx.claims_name
            )),
            context,
        )),
        Some(_) => Ok(None),
        None => {
            #[cfg(feature = "tracing")]
            tracing::warn!(
                "an Authenticated extractor runs on a route with no JwtAuthLayer in front of it"
            );
            Ok(None)
        }
    }
}

impl<S: Send + Sync, C: Clone + Send + Sync + 'static> FromRequestParts<S> for Authenticated<C> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match claims_of::<C>(parts)? {
            Some(claims) => Ok(Authenticated(claims)),
            None => Err(AuthRejection::new(
                AuthError::MissingToken,
                parts.extensions.get::<LayerContext>(),
            )),
        }
    }
}

impl<S: Send + Sync, C: Clone + Send + Sync + 'static> OptionalFromRequestParts<S>
    for Authenticated<C>
{
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(claims_of::<C>(parts)?.map(Authenticated))
    }
}

impl<S, Q, C> FromRequestParts<S> for Authorized<Q, C>
where
    S: Send + Sync,
    Q: Requirement<C>,
    C: Clone + Send + Sync + 'static,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) =
            <Authenticated<C> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        if Q::allows(&claims) {
            Ok(Authorized {
                claims,
                requirement: std::marker::PhantomData,
            })
        } else {
            Err(AuthRejection::new(
                AuthError::InsufficientScope(Q::SCOPE.to_owned()),
                parts.extensions.get::<LayerContext>(),
            ))
        }
    }
}

impl<S: Send + Sync, U: Clone + Send + Sync + 'static> FromRequestParts<S> for CurrentUser<U> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let context = parts.extensions.get::<LayerContext>();
        parts
            .extensions
            .get::<U>()
            .cloned()
            .map(CurrentUser)
            .ok_or_else(|| AuthRejection::new(AuthError::MissingToken, context))
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

/// [`AuthError`] as an axum response, for handlers that call [`Sessions`](crate::Sessions)
/// directly; challenges name the default realm `api`.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        error_response(&self, DEFAULT_REALM)
    }
}
