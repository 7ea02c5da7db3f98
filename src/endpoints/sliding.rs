//! [`SlidingEndpoint`]: renewing and logging out sliding tokens over HTTP.

use std::fmt;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use serde::{Deserialize, Serialize};

use super::body::{self, DEFAULT_BODY_LIMIT};
use super::service::{Endpoint, Route};
use crate::error::AuthError;
use crate::sessions::{CustomClaims, Sessions, SlidingToken};
use crate::user::UserResolver;
use crate::wire::BoxFuture;
use crate::wire::response::json;

/// The sliding-token endpoints as tower `Service`s:
///
/// | endpoint | request | success |
/// | --- | --- | --- |
/// | [`SlidingEndpoint::renew`] | `POST {"token"}` | 200 `{"token"}` (SimpleJWT's `TokenRefreshSlidingView` shapes) |
/// | [`SlidingEndpoint::logout`] | `POST {"token"}` | 200 `{}` (the session is revoked) |
///
/// Errors as the [session endpoints](crate::endpoints): 400 `invalid_request`
/// (wrong content type, malformed JSON, a missing field, sliding tokens not
/// enabled), 401 `invalid_token`, 405, 413 over the body limit, 503 with
/// `Retry-After` when the store is down.
///
/// ```
/// use std::sync::Arc;
/// use http::{Request, StatusCode};
/// use http_body_util::{BodyExt, Full};
/// use bytes::Bytes;
/// use tower::ServiceExt;
/// use tower_jwt_auth::{Algorithm, Jwt, Key, MemoryStore, MemoryUsers, NoCustomClaims, Sessions, SlidingEndpoint, SlidingTokens};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [6u8; 32]).unwrap()).build().unwrap();
/// let users = Arc::new(MemoryUsers::<u64, ()>::new());
/// users.insert(7, ());
/// let sessions: Sessions<_> = Sessions::new(jwt, Arc::new(MemoryStore::new()), users)
///     .with_sliding(SlidingTokens::new());
/// let first = sessions.login_sliding(&7, &NoCustomClaims, None).await.unwrap();
///
/// let req = Request::post("/api/token/refresh/")
///     .header("content-type", "application/json")
///     .body(Full::new(Bytes::from(format!(r#"{{"token": "{}"}}"#, first.token))))
///     .unwrap();
/// let res = SlidingEndpoint::renew(sessions).oneshot(req).await.unwrap();
/// assert_eq!(res.status(), StatusCode::OK);
/// let body: serde_json::Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
/// assert!(body["token"].is_string());
/// # }
/// ```
pub type SlidingEndpoint<R, C> = Endpoint<SlidingRoute<R, C>>;

/// What a [`SlidingEndpoint`] does: the [`Sessions`] it serves, renew or
/// logout, and the body limit.
pub struct SlidingRoute<R: UserResolver, C> {
    sessions: Sessions<R, C>,
    logout: bool,
    body_limit: usize,
}

impl<R: UserResolver, C> Clone for SlidingRoute<R, C> {
    fn clone(&self) -> Self {
        SlidingRoute {
            sessions: self.sessions.clone(),
            logout: self.logout,
            body_limit: self.body_limit,
        }
    }
}

impl<R: UserResolver, C> fmt::Debug for SlidingRoute<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingRoute")
            .field("logout", &self.logout)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

#[derive(Serialize)]
struct TokenOut<'a> {
    token: &'a str,
}

impl<R: UserResolver, C: CustomClaims> SlidingEndpoint<R, C> {
    /// `POST {"token"}` → 200 `{"token"}`: renews a sliding token.
    pub fn renew(sessions: Sessions<R, C>) -> Self {
        Endpoint::from_route(SlidingRoute {
            sessions,
            logout: false,
            body_limit: DEFAULT_BODY_LIMIT,
        })
    }

    /// `POST {"token"}` → 200 `{}`: revokes the sliding token's session.
    pub fn logout(sessions: Sessions<R, C>) -> Self {
        Self::renew(sessions).map_route(|r| r.logout = true)
    }

    /// The body size limit (default 16 KiB); larger bodies get 413.
    pub fn body_limit(self, bytes: usize) -> Self {
        self.map_route(|r| r.body_limit = bytes)
    }

    /// The 200 response `{"token"}` for a sliding token, as this endpoint answers
    /// it. For the app's own login route.
    pub fn token_response<B: From<Bytes>>(token: &SlidingToken) -> Response<B> {
        json(
            StatusCode::OK,
            &TokenOut {
                token: &token.token,
            },
        )
    }
}

impl<R: UserResolver, C: CustomClaims> SlidingRoute<R, C> {
    async fn serve<B>(self, req: Request<B>) -> Result<Response<Full<Bytes>>, AuthError>
    where
        B: Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        body::check_method(req.method())?;
        let (parts, body) = req.into_parts();
        let bytes = body::read_body(&parts.headers, body, self.body_limit).await?;
        let b: TokenBody = body::parse_json(&parts.headers, &bytes, false)?;
        if self.logout {
            self.sessions.logout_sliding(&b.token).await?;
            return Ok(json(StatusCode::OK, &serde_json::json!({})));
        }
        let token = self.sessions.renew_sliding(&b.token).await?;
        Ok(SlidingEndpoint::<R, C>::token_response(&token))
    }
}

impl<R: UserResolver, C: CustomClaims> Route for SlidingRoute<R, C> {
    fn handle<B>(self, req: Request<B>) -> BoxFuture<Result<Response<Full<Bytes>>, AuthError>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        Box::pin(self.serve(req))
    }
}
