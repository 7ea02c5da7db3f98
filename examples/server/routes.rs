//! The routes, in SimpleJWT's default URL layout:
//!
//! | route | body | success |
//! | --- | --- | --- |
//! | `POST /api/users/` | `{"username","password"}` | 201 `{"id"}` |
//! | `POST /api/token/` | `{"username","password"}` | 200 `{"access","refresh"}` ([`LoginEndpoint`](tower_jwt_auth::LoginEndpoint)) |
//! | `POST /api/token/refresh/` | `{"refresh"}` | 200 `{"access","refresh"}` |
//! | `POST /api/token/verify/` | `{"token"}` | 200 `{}` |
//! | `POST /api/token/blacklist/` | `{"refresh"}` | 200 `{}` |
//! | `POST /api/token/revoke-all/` | Bearer access | 200 `{}` |
//! | `GET /api/me/` | Bearer access | 200 `{"id","username"}` |
//! | `GET /api/sessions/` | Bearer access | 200 `[{"id","created_at","last_rotated_at","expires_at","label","current"}]` |
//! | `DELETE /api/sessions/{id}/` | Bearer access | 200 `{}`; 404 unless it is one of the caller's live sessions |
//! | `GET /.well-known/jwks.json` | | 200 JWKS |
//!
//! Browser mode's page at `/` and its cookie routes are in `browser.rs`;
//! `/api/claims/` and `/api/admin/`, which accept an outside provider's tokens
//! too, in `outside.rs`.
//!
//! Bodies are JSON, or HTML-form fields as DRF also takes them (see
//! [`form_as_json`]). The token routes are the crate's [`SessionEndpoint`] services;
//! `/api/me/` and `/api/sessions/` sit behind [`JwtAuthLayer`] with the revocation
//! check answered by a [`RevocationView`] (a logged-out session's access token
//! is refused at once here, and on other instances as soon as the store's log
//! reaches them; the store is asked when the view cannot tell) and the user
//! resolved by its UUID through a 5-second [`UserCache`] (a deactivated user is
//! refused within 5 s; a revoke-all drops the user from the cache at once).
//!
//! The session list is the caller's own live sessions, newest first, times in
//! seconds since the Unix epoch, `label` the login's `User-Agent` (its first 200
//! characters) and `current` marking the session of the token in the request.
//! Revoking one by id ends it as a logout does: its access and refresh tokens
//! are refused at once. Only the caller's own sessions can be revoked: another
//! user's session id, an unknown one and a malformed one are all the same 404.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_jwt_auth::axum::{Authenticated, CurrentUser};
use tower_jwt_auth::{
    JwksEndpoint, JwtAuthLayer, NoCustomClaims, RefreshCookie, RevocationView, SessionEndpoint,
    Sessions, UserCache,
};
use tracing::Level;
use uuid::Uuid;

use crate::body::{BODY_LIMIT, JsonObject, form_as_json, limit_declared_body};
use crate::errors::{ApiError, json_errors, method_not_allowed, not_found, panic_response};
use crate::users::{CreateError, Passwords, Profiles, User, Users};
use crate::{browser, login};

/// How long a request may take, body included, before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest password accepted: Argon2 takes any length, but its cost should
/// not be the client's to choose.
pub const MAX_PASSWORD: usize = 1024;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Sessions over the token store and the users table.
    pub sessions: Sessions<Users>,
    /// The users table.
    pub users: Users,
    /// Password hashing.
    pub passwords: Passwords,
    /// The revocation view: revocation checks without a store call.
    pub view: RevocationView,
    /// `/api/me/`'s users, remembered for a few seconds.
    pub user_cache: UserCache<Profiles>,
}

/// The whole application: routes (and, outside the form-to-JSON rewrite, the
/// page and cookie routes of browser mode, in `cookie`), then request logging,
/// panics caught, JSON errors, a timeout and a body limit around every route.
pub fn app(state: AppState, cookie: RefreshCookie, outside: Router) -> Router {
    let sessions = state.sessions.clone();
    // The view answers revocation checks in memory (the store when the view
    // cannot tell); users come from a short-lived cache.
    let me_auth = JwtAuthLayer::new(sessions.jwt().clone())
        .revocation_view(state.view.clone())
        .revocation_check(sessions.store().clone())
        .resolve_user(Arc::new(state.user_cache.clone()));
    let endpoint = |e: SessionEndpoint<Users, NoCustomClaims>| e.body_limit(BODY_LIMIT);

    let routes = Router::new()
        .route(
            "/api/users/",
            post(register).fallback(|| async { method_not_allowed("POST") }),
        )
        .route_service("/api/token/", login::endpoint(&state))
        .route_service(
            "/api/token/refresh/",
            endpoint(SessionEndpoint::refresh(sessions.clone())),
        )
        .route_service(
            "/api/token/verify/",
            endpoint(SessionEndpoint::verify(sessions.clone())),
        )
        .route_service(
            "/api/token/blacklist/",
            endpoint(SessionEndpoint::logout(sessions.clone())),
        )
        .route_service(
            "/api/token/revoke-all/",
            endpoint(SessionEndpoint::revoke_all(sessions.clone())),
        )
        .route(
            "/api/me/",
            get(me)
                .route_layer(me_auth.clone())
                .fallback(|| async { method_not_allowed("GET, HEAD") }),
        )
        .route(
            "/api/sessions/",
            get(list_sessions)
                .route_layer(me_auth.clone())
                .fallback(|| async { method_not_allowed("GET, HEAD") }),
        )
        .route(
            "/api/sessions/{id}/",
            delete(revoke_session)
                .route_layer(me_auth)
                .fallback(|| async { method_not_allowed("DELETE") }),
        )
        .route_service(
            "/.well-known/jwks.json",
            JwksEndpoint::new(sessions.jwt().clone()),
        )
        .fallback(not_found)
        .with_state(state.clone())
        .merge(outside);

    let routes = routes
        .layer(axum::middleware::map_request(form_as_json))
        .merge(browser::routes(&state, cookie));
    routes.layer(
        ServiceBuilder::new()
            // Only the method and the path are logged: never headers, bodies or the
            // query string, where a careless client may have put a token.
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &axum::http::Request<_>| {
                        tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
                    })
                    .on_request(())
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(axum::middleware::map_response(json_errors))
            .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
            // A safety net above the routes' own 16 KiB limit: a body declared
            // larger is discarded (so the client reads the 413) and refused.
            .layer(axum::middleware::map_request(limit_declared_body)),
    )
}

/// Django's rule for usernames: up to 150 letters, digits and `@.+-_`.
fn check_username(username: &str) -> Result<(), ApiError> {
    if username.chars().count() > 150 {
        return Err(ApiError::bad_request(
            "the username has more than 150 characters",
        ));
    }
    if !username
        .chars()
        .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
    {
        return Err(ApiError::bad_request(
            "the username may contain only letters, digits and @/./+/-/_",
        ));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < 8 {
        return Err(ApiError::bad_request(
            "the password must have at least 8 characters",
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(ApiError::bad_request(
            "the password is longer than 1024 bytes",
        ));
    }
    Ok(())
}

/// `POST /api/users/`: 201 `{"id"}`, 400 bad input, 409 taken.
async fn register(State(state): State<AppState>, body: JsonObject) -> Result<Response, ApiError> {
    let username = body.string("username")?;
    let password = body.string("password")?;
    check_username(username)?;
    check_password(password)?;
    let hash = state
        .passwords
        .hash(password.to_owned())
        .await
        .ok_or_else(ApiError::unavailable)?;
    match state.users.create(username, &hash).await {
        Ok(user) => {
            tracing::info!(user = %user.id, "user registered");
            Ok((
                StatusCode::CREATED,
                no_store(),
                Json(json!({ "id": user.id })),
            )
                .into_response())
        }
        Err(CreateError::Taken) => Err(ApiError::taken()),
        Err(CreateError::Store(e)) => {
            tracing::warn!(error = %e, "registration failed: users table unavailable");
            Err(ApiError::unavailable())
        }
    }
}

/// `GET /api/me/`: the user the access token names. The layer has checked that
/// the session is live and the user active; a user deleted since is a 401.
async fn me(CurrentUser(user): CurrentUser<User>) -> Response {
    (
        no_store(),
        Json(json!({ "id": user.id, "username": user.username })),
    )
        .into_response()
}

/// `GET /api/sessions/`: the caller's live sessions, newest first.
async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Response, ApiError> {
    let mut list = state.sessions.list_sessions(claims.user_id()).await?;
    list.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(a.session_id.cmp(&b.session_id))
    });
    let current = claims.session_id();
    let items: Vec<_> = list
        .iter()
        .map(|s| {
            json!({
                "id": s.session_id,
                "created_at": s.created_at,
                "last_rotated_at": s.last_rotated_at,
                "expires_at": s.expires_at,
                "label": s.label,
                "current": s.session_id == current,
            })
        })
        .collect();
    Ok((no_store(), Json(items)).into_response())
}

/// `DELETE /api/sessions/{id}/`: revokes one of the caller's own sessions (the
/// current one included: that is a logout with the access token). Anything else
/// is a 404, so that the answer tells nothing about other users' sessions.
async fn revoke_session(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let no_such_session = || ApiError::not_found("no such session");
    let session_id = Uuid::try_parse(&id).map_err(|_| no_such_session())?;
    if state
        .sessions
        .revoke_session_of(claims.user_id(), session_id)
        .await?
    {
        tracing::info!(user = %claims.user_id(), session = %session_id, "session revoked by id");
        Ok((no_store(), Json(json!({}))).into_response())
    } else {
        Err(no_such_session())
    }
}

fn no_store() -> [(axum::http::HeaderName, HeaderValue); 1] {
    [(CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}
