//! [`SessionEndpoint`]: refresh, logout, revoke-all and verify over HTTP.

use std::fmt;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use serde::{Deserialize, Serialize};

use super::body::{self, DEFAULT_BODY_LIMIT};
use super::cookie::RefreshCookie;
use super::service::{Endpoint, Route};
use crate::error::AuthError;
use crate::jwt::TokenPair;
use crate::sessions::{CustomClaims, Sessions};
use crate::user::UserResolver;
use crate::wire::BoxFuture;
use crate::wire::credentials::bearer;
use crate::wire::response::json;

/// One of the session endpoints, as a tower `Service`. See the
/// [module docs](crate::endpoints).
pub type SessionEndpoint<R, C> = Endpoint<SessionRoute<R, C>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Refresh,
    Logout,
    RevokeAll,
    Verify,
}

/// What a [`SessionEndpoint`] does: the [`Sessions`] it serves, which action,
/// the body limit and the optional refresh cookie.
pub struct SessionRoute<R: UserResolver, C> {
    sessions: Sessions<R, C>,
    action: Action,
    body_limit: usize,
    cookie: Option<RefreshCookie>,
}

impl<R: UserResolver, C> Clone for SessionRoute<R, C> {
    fn clone(&self) -> Self {
        SessionRoute {
            sessions: self.sessions.clone(),
            action: self.action,
            body_limit: self.body_limit,
            cookie: self.cookie.clone(),
        }
    }
}

impl<R: UserResolver, C> fmt::Debug for SessionRoute<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRoute")
            .field("action", &self.action)
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

/// The 200 answer carrying a new pair: `{"access","refresh"}`, or, in browser
/// mode, `{"access"}` and the refresh token in `cookie`, set at `now`.
pub(super) fn pair_response<B: From<Bytes>>(
    pair: &TokenPair,
    cookie: Option<&RefreshCookie>,
    now: u64,
) -> Response<B> {
    let body = PairBody {
        access: &pair.access,
        refresh: cookie.is_none().then_some(pair.refresh.as_str()),
    };
    let mut res = json(StatusCode::OK, &body);
    if let Some(v) = cookie.and_then(|c| c.set(pair, now)) {
        res.headers_mut().append(http::header::SET_COOKIE, v);
    }
    res
}

impl<R: UserResolver, C: CustomClaims> SessionEndpoint<R, C> {
    fn with_action(sessions: Sessions<R, C>, action: Action) -> Self {
        Endpoint::from_route(SessionRoute {
            sessions,
            action,
            body_limit: DEFAULT_BODY_LIMIT,
            cookie: None,
        })
    }

    /// `POST {"refresh"}` → 200 `{"access","refresh"}`: rotates the refresh token.
    pub fn refresh(sessions: Sessions<R, C>) -> Self {
        Self::with_action(sessions, Action::Refresh)
    }

    /// `POST {"refresh"}` → 200 `{}`: revokes that session (logout).
    pub fn logout(sessions: Sessions<R, C>) -> Self {
        Self::with_action(sessions, Action::Logout)
    }

    /// `POST` with `Authorization: Bearer <access>` → 200 `{}`: revokes every session of its user.
    pub fn revoke_all(sessions: Sessions<R, C>) -> Self {
        Self::with_action(sessions, Action::RevokeAll)
    }

    /// `POST {"token"}` → 200 `{}` or 401.
    pub fn verify(sessions: Sessions<R, C>) -> Self {
        Self::with_action(sessions, Action::Verify)
    }

    /// The body size limit (default 16 KiB); larger bodies get 413.
    pub fn body_limit(self, bytes: usize) -> Self {
        self.map_route(|r| r.body_limit = bytes)
    }

    /// Browser mode: the refresh token travels in an HttpOnly cookie instead of
    /// the JSON body (read from the cookie when the body has none; set on success;
    /// cleared on logout).
    pub fn refresh_cookie(self, cookie: RefreshCookie) -> Self {
        self.map_route(|r| r.cookie = Some(cookie))
    }

    /// The 200 response for a new pair, as the refresh endpoint answers it (the
    /// refresh token in the body, or in a cookie in browser mode). For the app's
    /// own login route.
    pub fn pair_response<B: From<Bytes>>(&self, pair: &TokenPair) -> Response<B> {
        self.route.pair_response(pair)
    }
}

impl<R: UserResolver, C: CustomClaims> SessionRoute<R, C> {
    fn pair_response<B: From<Bytes>>(&self, pair: &TokenPair) -> Response<B> {
        pair_response(pair, self.cookie.as_ref(), self.sessions.now())
    }

    /// The refresh token of a refresh or logout request: the body's `refresh`
    /// field, else (browser mode) the cookie.
    async fn refresh_token<B>(&self, req: Request<B>) -> Result<String, AuthError>
    where
        B: Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let (parts, body) = req.into_parts();
        if let Some(cookie) = &self.cookie {
            cookie.check_request(&parts)?;
        }
        let bytes = body::read_body(&parts.headers, body, self.body_limit).await?;
        let from_cookie = match &self.cookie {
            Some(c) => c.read(&parts.headers)?,
            None => None,
        };
        let b: RefreshBody = body::parse_json(&parts.headers, &bytes, from_cookie.is_some())?;
        b.refresh
            .or(from_cookie.map(str::to_owned))
            .ok_or(AuthError::InvalidRequest("the field `refresh` is required"))
    }

    async fn serve<B>(self, req: Request<B>) -> Result<Response<Full<Bytes>>, AuthError>
    where
        B: Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        body::check_method(req.method())?;
        match self.action {
            Action::RevokeAll => {
                let token = bearer(req.headers())?.ok_or(AuthError::MissingToken)?;
                self.sessions.revoke_all(token).await?;
                Ok(json(StatusCode::OK, &Empty {}))
            }
            Action::Verify => {
                let (parts, body) = req.into_parts();
                let bytes = body::read_body(&parts.headers, body, self.body_limit).await?;
                let b: VerifyBody = body::parse_json(&parts.headers, &bytes, false)?;
                self.sessions.verify(&b.token).await?;
                Ok(json(StatusCode::OK, &Empty {}))
            }
            Action::Refresh => {
                let token = self.refresh_token(req).await?;
                let pair = self.sessions.refresh(&token).await?;
                Ok(self.pair_response(&pair))
            }
            Action::Logout => {
                let token = self.refresh_token(req).await?;
                self.sessions.logout(&token).await?;
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

impl<R: UserResolver, C: CustomClaims> Route for SessionRoute<R, C> {
    fn handle<B>(self, req: Request<B>) -> BoxFuture<Result<Response<Full<Bytes>>, AuthError>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        Box::pin(self.serve(req))
    }
}
