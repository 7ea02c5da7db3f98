//! The HTTP endpoints of [`Sessions`]: refresh, logout, revoke-all and verify, as
//! tower services generic over the request body (usable from axum and hyper).
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

pub(crate) mod body;
mod cookie;

use std::convert::Infallible;
use std::fmt;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use tower_service::Service;

pub use body::DEFAULT_BODY_LIMIT;
pub use cookie::{RefreshCookie, SameSite};

use crate::auth::future::BoxFuture;
use crate::auth::source::bearer;
use crate::error::AuthError;
use crate::response::{error_response, json};
use crate::sessions::{CustomClaims, Sessions};
use crate::token::TokenPair;
use crate::user::UserResolver;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Refresh,
    Logout,
    RevokeAll,
    Verify,
}

/// One of the session endpoints, as a tower `Service`. See the [module docs](self).
pub struct SessionEndpoint<R: UserResolver, C> {
    sessions: Sessions<R, C>,
    endpoint: Endpoint,
    body_limit: usize,
    cookie: Option<RefreshCookie>,
    realm: std::sync::Arc<str>,
}

impl<R: UserResolver, C> Clone for SessionEndpoint<R, C> {
    fn clone(&self) -> Self {
        SessionEndpoint {
            sessions: self.sessions.clone(),
            endpoint: self.endpoint,
            body_limit: self.body_limit,
            cookie: self.cookie.clone(),
            realm: self.realm.clone(),
        }
    }
}

impl<R: UserResolver, C> fmt::Debug for SessionEndpoint<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEndpoint")
            .field("endpoint", &self.endpoint)
            .field("body_limit", &self.body_limit)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh: Option<String>,
}

#[derive(Deserialize)]
struct VerifyBody {
    token: String,
}

#[derive(Serialize)]
struct PairBody<'a> {
    access: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh: Option<&'a str>,
}

#[derive(Serialize)]
struct Empty {}

impl<R: UserResolver, C: CustomClaims> SessionEndpoint<R, C> {
    fn new(sessions: Sessions<R, C>, endpoint: Endpoint) -> Self {
        SessionEndpoint {
            sessions,
            endpoint,
            body_limit: DEFAULT_BODY_LIMIT,
            cookie: None,
            realm: "api".into(),
        }
    }

    /// `POST {"refresh"}` → 200 `{"access","refresh"}`: rotates the refresh token.
    pub fn refresh(sessions: Sessions<R, C>) -> Self {
        Self::new(sessions, Endpoint::Refresh)
    }

    /// `POST {"refresh"}` → 200 `{}`: revokes that session (logout).
    pub fn logout(sessions: Sessions<R, C>) -> Self {
        Self::new(sessions, Endpoint::Logout)
    }

    /// `POST` with `Authorization: Bearer <access>` → 200 `{}`: revokes every session of its user.
    pub fn revoke_all(sessions: Sessions<R, C>) -> Self {
        Self::new(sessions, Endpoint::RevokeAll)
    }

    /// `POST {"token"}` → 200 `{}` or 401.
    pub fn verify(sessions: Sessions<R, C>) -> Self {
        Self::new(sessions, Endpoint::Verify)
    }

    /// The body size limit (default 16 KiB); larger bodies get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Browser mode: the refresh token travels in an HttpOnly cookie instead of
    /// the JSON body (read from the cookie when the body has none; set on success;
    /// cleared on logout).
    pub fn refresh_cookie(mut self, cookie: RefreshCookie) -> Self {
        self.cookie = Some(cookie);
        self
    }

    /// The realm named in `WWW-Authenticate` challenges (default `api`).
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = crate::response::challenge_realm(realm);
        self
    }

    /// The 200 response for a new pair, as the refresh endpoint answers it (the
    /// refresh token in the body, or in a cookie in browser mode). For the app's
    /// own login route.
    pub fn pair_response<B: From<Bytes>>(&self, pair: &TokenPair) -> Response<B> {
        pair_response(pair, self.cookie.as_ref())
    }

    async fn handle<B>(self, req: Request<B>) -> Result<Response<Full<Bytes>>, AuthError>
    where
        B: Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        body::check_method(req.method())?;
        let (parts, body) = req.into_parts();
        match self.endpoint {
            Endpoint::RevokeAll => {
                let token = bearer(&parts.headers)?.ok_or(AuthError::MissingToken)?;
                self.sessions.revoke_all(token).await?;
                Ok(json(StatusCode::OK, &Empty {}))
            }
            Endpoint::Verify => {
                let bytes = body::read_limited(&parts.headers, body, self.body_limit).await?;
                let b: VerifyBody = body::parse_json(&parts.headers, &bytes, false)?;
                self.sessions.verify(&b.token).await?;
                Ok(json(StatusCode::OK, &Empty {}))
            }
            Endpoint::Refresh | Endpoint::Logout => {
                let bytes = body::read_limited(&parts.headers, body, self.body_limit).await?;
                let from_cookie = match &self.cookie {
                    Some(c) => c.read(&parts.headers)?,
                    None => None,
                };
                let b: RefreshBody =
                    body::parse_json(&parts.headers, &bytes, from_cookie.is_some())?;
                let token = b
                    .refresh
                    .as_deref()
                    .or(from_cookie)
                    .ok_or(AuthError::InvalidRequest("the field `refresh` is required"))?;
                if self.endpoint == Endpoint::Refresh {
                    let pair = self.sessions.refresh(token).await?;
                    Ok(pair_response(&pair, self.cookie.as_ref()))
                } else {
                    self.sessions.logout(token).await?;
                    let mut res = json(StatusCode::OK, &Empty {});
                    if let Some(c) = &self.cookie {
                        res.headers_mut()
                            .append(http::header::SET_COOKIE, c.clear());
                    }
                    Ok(res)
                }
            }
        }
    }
}

fn pair_response<B: From<Bytes>>(pair: &TokenPair, cookie: Option<&RefreshCookie>) -> Response<B> {
    let body = PairBody {
        access: &pair.access,
        refresh: cookie.is_none().then_some(pair.refresh.as_str()),
    };
    let mut res = json(StatusCode::OK, &body);
    if let Some(v) = cookie.and_then(|c| c.set(pair)) {
        res.headers_mut().append(http::header::SET_COOKIE, v);
    }
    res
}

impl<R, C, B> Service<Request<B>> for SessionEndpoint<R, C>
where
    R: UserResolver,
    C: CustomClaims,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let realm = this.realm.clone();
            Ok(this
                .handle(req)
                .await
                .unwrap_or_else(|e| error_response(&e, &realm)))
        })
    }
}
