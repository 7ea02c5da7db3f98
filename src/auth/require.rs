//! [`RequireClaims`]: authorization after authentication. A request whose
//! claims fail the requirement gets 403 with the RFC 6750 `insufficient_scope`
//! challenge (naming the scope it lacks) and the JSON error body; 401 stays for
//! a missing or bad token, which [`JwtAuthLayer`](crate::JwtAuthLayer) answers
//! before this layer runs.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::future::ResponseFuture;
use super::rejection::{JsonRejection, OnRejection};
use crate::error::AuthError;
use crate::jwt::{Claims, NoCustomClaims};

type Predicate<C> = Arc<dyn Fn(&Claims<C>) -> bool + Send + Sync>;

/// A tower layer that lets a request through only when its [`Claims`] meet a
/// requirement: a predicate on the claims (a role in the custom claims, a
/// scope, an issuer...), named by the scope a client would need.
///
/// Put it inside a [`JwtAuthLayer`](crate::JwtAuthLayer) of the same claims
/// type (with axum: `route_layer(require)` before `route_layer(auth)`, so the
/// authentication runs first); [`JwtAuthLayer::require`](crate::JwtAuthLayer::require)
/// makes one of the layer's own claims type. A refused request gets 403
/// `insufficient_scope` with `WWW-Authenticate: Bearer realm="api",
/// error="insufficient_scope", scope="<scope>"`; a request without claims (an
/// anonymous one behind an optional layer, or no layer in front) gets 401, and
/// with the `axum` feature a layer of another claims type in front gets 500:
/// never through.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use bytes::Bytes;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_jwt_auth::{Algorithm, Jwt, JwtAuthLayer, Key, RequireClaims};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct AppClaims { role: String }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [9u8; 32]).unwrap()).build().unwrap();
/// let admins = RequireClaims::<AppClaims>::new("admin", |c| c.custom().role == "admin");
/// let svc = ServiceBuilder::new()
///     .layer(JwtAuthLayer::<AppClaims>::with_claims(jwt.clone()))
///     .layer(admins)
///     .service(service_fn(|_req: Request<Full<Bytes>>| async {
///         Ok::<_, Infallible>(Response::new(Full::<Bytes>::from("welcome")))
///     }));
///
/// let user = AppClaims { role: "user".into() };
/// let (token, _) = jwt.issue_access("42", uuid::Uuid::new_v4(), &user).unwrap();
/// let req = Request::get("/").header("authorization", format!("Bearer {token}")).body(Full::default()).unwrap();
/// let res = svc.oneshot(req).await.unwrap();
/// assert_eq!(res.status(), StatusCode::FORBIDDEN);
/// assert_eq!(
///     res.headers()["www-authenticate"],
///     "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"admin\""
/// );
/// # }
/// ```
pub struct RequireClaims<C = NoCustomClaims, R = JsonRejection> {
    scope: Arc<str>,
    predicate: Predicate<C>,
    rejection: R,
}

impl<C, R: Clone> Clone for RequireClaims<C, R> {
    fn clone(&self) -> Self {
        RequireClaims {
            scope: self.scope.clone(),
            predicate: self.predicate.clone(),
            rejection: self.rejection.clone(),
        }
    }
}

impl<C, R: fmt::Debug> fmt::Debug for RequireClaims<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireClaims")
            .field("scope", &self.scope)
            .field("rejection", &self.rejection)
            .finish_non_exhaustive()
    }
}

impl<C: Send + Sync + 'static> RequireClaims<C> {
    /// Requires `predicate`; a request that fails it is told it lacks
    /// `scope` (what the client would need: a scope, a role's name).
    /// Characters that cannot stand in the challenge are dropped there.
    pub fn new(
        scope: &str,
        predicate: impl Fn(&Claims<C>) -> bool + Send + Sync + 'static,
    ) -> Self {
        RequireClaims {
            scope: scope.into(),
            predicate: Arc::new(predicate),
            rejection: JsonRejection::default(),
        }
    }

    /// Any of `scopes` among the token's [`Claims::scopes`] (`scope` or
    /// `scp`); the challenge names them all, space-separated.
    pub fn any_scope(scopes: &[&str]) -> Self {
        Self::listed(scopes, Need::Any, Claims::scopes)
    }

    /// All of `scopes` among the token's [`Claims::scopes`].
    pub fn all_scopes(scopes: &[&str]) -> Self {
        Self::listed(scopes, Need::All, Claims::scopes)
    }

    /// Any of `roles` among the token's [`Claims::roles`] (a trusted issuer's
    /// [`roles_claim`](crate::TrustedIssuerBuilder::roles_claim)).
    pub fn any_role(roles: &[&str]) -> Self {
        Self::listed(roles, Need::Any, Claims::roles)
    }

    /// All of `roles` among the token's [`Claims::roles`].
    pub fn all_roles(roles: &[&str]) -> Self {
        Self::listed(roles, Need::All, Claims::roles)
    }

    /// `wanted` among the strings `held` names in the claims, without copying them.
    fn listed(wanted: &[&str], need: Need, held: fn(&Claims<C>) -> &[String]) -> Self {
        Self::holding(wanted, need, move |claims, w| {
            held(claims).iter().any(|h| h == w)
        })
    }

    /// Any of `roles` among the values `roles_of` reads from the claims (a
    /// custom claim holding a list, for instance); the challenge names them
    /// all, space-separated.
    pub fn any_of<F, I, S>(roles: &[&str], roles_of: F) -> Self
    where
        F: Fn(&Claims<C>) -> I + Send + Sync + 'static,
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::holding(roles, Need::Any, move |claims, w| {
            roles_of(claims).into_iter().any(|h| h.as_ref() == w)
        })
    }

    /// All of `roles` among the values `roles_of` reads from the claims.
    pub fn all_of<F, I, S>(roles: &[&str], roles_of: F) -> Self
    where
        F: Fn(&Claims<C>) -> I + Send + Sync + 'static,
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::holding(roles, Need::All, move |claims, w| {
            roles_of(claims).into_iter().any(|h| h.as_ref() == w)
        })
    }

    /// Any or all of `wanted`, each judged by `holds(claims, value)`; the
    /// challenge names them all, space-separated.
    fn holding(
        wanted: &[&str],
        need: Need,
        holds: impl Fn(&Claims<C>, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        let wanted: Vec<String> = wanted.iter().map(|w| (*w).to_owned()).collect();
        let scope = wanted.join(" ");
        Self::new(&scope, move |claims| {
            let has = |w: &String| holds(claims, w);
            match need {
                Need::Any => wanted.iter().any(has),
                Need::All => wanted.iter().all(has),
            }
        })
    }
}

impl<C, R> RequireClaims<C, R> {
    /// Answers refusals with `rejection` (default: the JSON body and the
    /// challenge of realm `api`), as [`JwtAuthLayer::on_rejection`](crate::JwtAuthLayer::on_rejection) does.
    pub fn on_rejection<R2>(self, rejection: R2) -> RequireClaims<C, R2> {
        RequireClaims {
            scope: self.scope,
            predicate: self.predicate,
            rejection,
        }
    }
}

impl<S, C, R: Clone> Layer<S> for RequireClaims<C, R> {
    type Service = RequireClaimsService<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireClaimsService {
            inner,
            require: self.clone(),
            _claims: PhantomData,
        }
    }
}

/// The service of a [`RequireClaims`] layer.
pub struct RequireClaimsService<S, C, R> {
    inner: S,
    require: RequireClaims<C, R>,
    _claims: PhantomData<fn() -> C>,
}

impl<S: Clone, C, R: Clone> Clone for RequireClaimsService<S, C, R> {
    fn clone(&self) -> Self {
        RequireClaimsService {
            inner: self.inner.clone(),
            require: self.require.clone(),
            _claims: PhantomData,
        }
    }
}

impl<S: fmt::Debug, C, R: fmt::Debug> fmt::Debug for RequireClaimsService<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireClaimsService")
            .field("inner", &self.inner)
            .field("require", &self.require)
            .finish()
    }
}

impl<S, C, R, ReqB, ResB> Service<Request<ReqB>> for RequireClaimsService<S, C, R>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    C: Send + Sync + 'static,
    R: OnRejection<ResB>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let refusal = match req.extensions().get::<Claims<C>>() {
            Some(claims) if (self.require.predicate)(claims) => None,
            Some(_) => Some(AuthError::InsufficientScope(self.require.scope.to_string())),
            None => Some(no_claims::<C, _>(&req)),
        };
        match refusal {
            None => ResponseFuture::inner(self.inner.call(req)),
            Some(e) => {
                crate::metrics::validation_refused(&e);
                ResponseFuture::rejected(Ok(self.require.rejection.on_rejection(&e)))
            }
        }
    }
}

/// Whether any or all of the listed values are needed.
#[derive(Clone, Copy)]
enum Need {
    Any,
    All,
}

/// Why a request reached the requirement without `Claims<C>`: anonymous (an
/// optional layer let it through without a token: 401), or, where the layer
/// says which claims type it produces (the `axum` feature), a layer of another
/// claims type in front (500, the server is set up wrong). Never through.
#[cfg_attr(not(feature = "axum"), allow(clippy::extra_unused_type_parameters))]
fn no_claims<C: 'static, B>(req: &Request<B>) -> AuthError {
    #[cfg(feature = "axum")]
    if let Some(context) = req.extensions().get::<super::context::LayerContext>()
        && !context.is::<C>()
    {
        return AuthError::Misconfigured(format!(
            "RequireClaims<{}> behind a JwtAuthLayer of claims {}",
            std::any::type_name::<C>(),
            context.claims_name
        ));
    }
    let _ = req;
    AuthError::MissingToken
}
