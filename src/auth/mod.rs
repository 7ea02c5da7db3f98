//! [`JwtAuthLayer`]: validates the access token of every request before the inner
//! service sees it.
//!
//! A refused request never reaches the inner service: it gets 401 with a
//! `WWW-Authenticate: Bearer` challenge and a JSON body (400 for a malformed
//! request, 503 when the opt-in revocation check cannot reach the store). An
//! accepted request carries its [`Claims`](crate::Claims) in its extensions (and,
//! when asked, the resolved user).
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_jwt_auth::{Algorithm, Claims, Jwt, JwtAuthLayer, Key, NoCustomClaims};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [9u8; 32]).unwrap()).build().unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(JwtAuthLayer::new(jwt.clone()))
//!     .service(service_fn(|req: Request<Full<Bytes>>| async move {
//!         let claims = req.extensions().get::<Claims>().unwrap();
//!         Ok::<_, Infallible>(Response::new(Full::<Bytes>::from(format!("hello {}", claims.user_id()))))
//!     }));
//!
//! let (token, _) = jwt.issue_access("42", uuid::Uuid::new_v4(), &NoCustomClaims).unwrap();
//! let req = Request::get("/").header("authorization", format!("Bearer {token}")).body(Full::default()).unwrap();
//! assert_eq!(svc.clone().oneshot(req).await.unwrap().status(), StatusCode::OK);
//!
//! let req = Request::get("/").body(Full::default()).unwrap();
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
//! # }
//! ```

mod context;
pub(crate) mod future;
mod layer;
mod rejection;
mod require;
mod service;
pub(crate) mod source;

#[cfg(feature = "axum")]
pub(crate) use context::LayerContext;
pub use future::ResponseFuture;
pub use layer::JwtAuthLayer;
pub use rejection::{JsonRejection, OnRejection};
pub use require::{RequireClaims, RequireClaimsService};
pub use service::JwtAuth;
pub use source::TokenSource;
