//! Browser mode: the page at `/`, and the cookie routes it calls, where the
//! refresh token lives in an HttpOnly cookie that JavaScript never sees.
//!
//! | route | body | success |
//! | --- | --- | --- |
//! | `GET /` | | the page (HTML, no outside assets) |
//! | `POST /api/cookie/token/` | `{"username","password"}` | 200 `{"access"}`, sets the cookie |
//! | `POST /api/cookie/refresh/` | `{}` or none | 200 `{"access"}`, sets the next cookie |
//! | `POST /api/cookie/logout/` | `{}` or none | 200 `{}`, revokes the session, clears the cookie |
//!
//! The cookie is `HttpOnly; Secure; SameSite=Strict; Path=/api/cookie/`
//! (browsers treat loopback as secure). The routes refuse forged requests with
//! 403 (see [`RefreshCookie`]): a cross-site `Sec-Fetch-Site`, an `Origin` (or
//! `Referer`) other than `PUBLIC_ORIGIN` (default: the origin the request was
//! sent to), a body that is not JSON. They take no HTML-form bodies.

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_jwt_auth::{ConfigError, RefreshCookie, SessionEndpoint};

use crate::body::BODY_LIMIT;
use crate::errors::method_not_allowed;
use crate::login;
use crate::routes::AppState;

/// The page: plain HTML and JavaScript.
const PAGE: &str = include_str!("page/index.html");

/// What the page may load and do: its own inline script and style, requests
/// to its own origin, nothing else.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self' 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// The refresh cookie of the cookie routes; `public_origin` replaces the
/// same-origin rule when set.
pub fn cookie(public_origin: Option<&str>) -> Result<RefreshCookie, ConfigError> {
    let cookie = RefreshCookie::new().path("/api/cookie/");
    match public_origin {
        Some(origin) => cookie.allowed_origins([origin]),
        None => Ok(cookie),
    }
}

/// `/` and the cookie routes.
pub fn routes(state: &AppState, cookie: RefreshCookie) -> Router {
    let sessions = state.sessions.clone();
    Router::new()
        .route(
            "/",
            get(page).fallback(|| async { method_not_allowed("GET, HEAD") }),
        )
        .route_service(
            "/api/cookie/token/",
            login::endpoint(state).refresh_cookie(cookie.clone()),
        )
        .route_service(
            "/api/cookie/refresh/",
            SessionEndpoint::refresh(sessions.clone())
                .body_limit(BODY_LIMIT)
                .refresh_cookie(cookie.clone()),
        )
        .route_service(
            "/api/cookie/logout/",
            SessionEndpoint::logout(sessions)
                .body_limit(BODY_LIMIT)
                .refresh_cookie(cookie),
        )
}

/// `GET /`: the page, with a policy that keeps it to its own origin.
async fn page() -> impl IntoResponse {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_POLICY),
            ),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (REFERRER_POLICY, HeaderValue::from_static("same-origin")),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        PAGE,
    )
}
