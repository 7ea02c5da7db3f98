//! The HTTP endpoints of [`Sessions`](crate::Sessions): refresh, logout,
//! revoke-all and verify ([`SessionEndpoint`]), and the sliding-token routes
//! ([`SlidingEndpoint`]), as tower services generic over the request body
//! (usable from axum and hyper). They share one `Service` impl ([`Endpoint`]),
//! the body and cookie parsing, and the error responses.
//!
//! | endpoint | request | success |
//! | --- | --- | --- |
//! | [`SessionEndpoint::refresh`] | `POST {"refresh": "..."}` | 200 `{"access","refresh"}` |
//! | [`SessionEndpoint::logout`] | `POST {"refresh": "..."}` | 200 `{}` (the session is revoked) |
//! | [`SessionEndpoint::revoke_all`] | `POST`, `Authorization: Bearer <access>` | 200 `{}` (every session of the user) |
//! | [`SessionEndpoint::verify`] | `POST {"token": "..."}` | 200 `{}` |
//!
//! Errors are JSON `{"error","error_description"}`: 400 `invalid_request` (wrong
//! content type, malformed JSON, a missing field), 401 `invalid_token`, 405 for a
//! method other than POST, 413 for a body over the limit (16 KiB by default; refused
//! before it is read whole), 503 with `Retry-After` when the store is down.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use bytes::Bytes;
//! use tower::ServiceExt;
//! use tower_jwt_auth::{Algorithm, Jwt, Key, MemoryStore, MemoryUsers, NoCustomClaims, Sessions, SessionEndpoint};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [3u8; 32]).unwrap()).build().unwrap();
//! let users = Arc::new(MemoryUsers::<u64, ()>::new());
//! users.insert(7, ());
//! let sessions: Sessions<_> = Sessions::new(jwt, Arc::new(MemoryStore::new()), users);
//! let pair = sessions.login(&7, &NoCustomClaims, None).await.unwrap();
//!
//! let body = format!(r#"{{"refresh": "{}"}}"#, pair.refresh);
//! let req = Request::post("/api/token/refresh/")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from(body)))
//!     .unwrap();
//! let res = SessionEndpoint::refresh(sessions).oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! let json: serde_json::Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
//! assert!(json["access"].is_string() && json["refresh"].is_string());
//! # }
//! ```

mod body;
mod cookie;
mod csrf;
mod jwks;
mod login;
mod service;
mod session;
mod sliding;

pub use body::{DEFAULT_BODY_LIMIT, MAX_DISCARD_BYTES, MAX_DISCARD_TIME, discard_body, read_body};
pub use cookie::{RefreshCookie, SameSite};
pub use jwks::{JwksEndpoint, JwksRoute};
pub use login::{
    DecoyHash, LABEL_CHARS, LoggedIn, LoginEndpoint, LoginError, LoginRequest, LoginRoute,
};
pub use service::{Endpoint, Route};
pub use session::{SessionEndpoint, SessionRoute};
pub use sliding::{SlidingEndpoint, SlidingRoute};
