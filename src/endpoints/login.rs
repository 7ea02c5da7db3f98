//! [`LoginEndpoint`]: the login route, answering as the refresh endpoint does,
//! and [`DecoyHash`], so unknown users take as long as wrong passwords.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::header::USER_AGENT;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use serde::Deserialize;

use super::body::{self, DEFAULT_BODY_LIMIT};
use super::cookie::RefreshCookie;
use super::service::{Endpoint, Route};
use super::session::pair_response;
use crate::error::{AuthError, StoreError};
use crate::jwt::NoCustomClaims;
use crate::sessions::{CustomClaims, Sessions};
use crate::user::UserResolver;
use crate::wire::BoxFuture;

/// The login route as a tower `Service`: `POST {"username","password"}` → 200
/// with the same body, headers (`Cache-Control: no-store`) and, in browser
/// mode, the same cookie as [`SessionEndpoint::refresh`](crate::SessionEndpoint::refresh).
///
/// The app says who the credentials belong to, with an async check given to
/// [`LoginEndpoint::new`]; the endpoint reads and validates the body (400 JSON
/// for a malformed one, 413 over the limit, 405 for another method), starts the
/// session ([`Sessions::login`]) labelled with the `User-Agent`, and answers.
/// A [`LoginError::BadCredentials`] is 401 `invalid_grant`, the same answer for
/// an unknown user, a wrong password and an inactive account; a
/// [`LoginError::Unavailable`] is 503 with `Retry-After`.
///
/// ```
/// use std::sync::Arc;
/// use http::{Request, StatusCode};
/// use http_body_util::{BodyExt, Full};
/// use bytes::Bytes;
/// use tower::ServiceExt;
/// use tower_jwt_auth::endpoints::{DecoyHash, LoggedIn, LoginEndpoint, LoginError};
/// use tower_jwt_auth::{Algorithm, Jwt, Key, MemoryStore, MemoryUsers, Sessions};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [3u8; 32]).unwrap()).build().unwrap();
/// let users = Arc::new(MemoryUsers::<u64, ()>::new());
/// users.insert(7, ());
/// let sessions: Sessions<_> = Sessions::new(jwt, Arc::new(MemoryStore::new()), users);
///
/// // The app's own table and password hashing (here: one user, plain text).
/// let decoy = DecoyHash::new("decoy-hash");
/// let login = LoginEndpoint::new(sessions, move |req| {
///     let decoy = decoy.clone();
///     async move {
///         let (id, hash) = match req.username.as_str() {
///             "ada" => (Some(7), Some("s3cret".to_owned())),
///             _ => (None, None),
///         };
///         let password = req.password.clone();
///         // An unknown user's password is checked against the decoy: same time.
///         let matches = decoy.verify(hash, |hash| async move { hash == password }).await;
///         match id {
///             Some(id) if matches => Ok(LoggedIn::user(id)),
///             _ => Err(LoginError::BadCredentials),
///         }
///     }
/// });
///
/// let post = |body: &'static str| {
///     Request::post("/api/token/")
///         .header("content-type", "application/json")
///         .body(Full::new(Bytes::from(body)))
///         .unwrap()
/// };
/// let res = login.clone().oneshot(post(r#"{"username":"ada","password":"s3cret"}"#)).await.unwrap();
/// assert_eq!(res.status(), StatusCode::OK);
/// assert_eq!(res.headers()["cache-control"], "no-store");
/// let body = res.into_body().collect().await.unwrap().to_bytes();
/// let pair: serde_json::Value = serde_json::from_slice(&body).unwrap();
/// assert!(pair["access"].is_string() && pair["refresh"].is_string());
///
/// let res = login.oneshot(post(r#"{"username":"ada","password":"guess"}"#)).await.unwrap();
/// assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
/// # }
/// ```
pub type LoginEndpoint<R, C = NoCustomClaims> = Endpoint<LoginRoute<R, C>>;

/// The app's credential check, boxed.
type Check<Id, C> =
    Arc<dyn Fn(LoginRequest) -> BoxFuture<Result<LoggedIn<Id, C>, LoginError>> + Send + Sync>;

/// What a [`LoginEndpoint`] does: the [`Sessions`] it starts sessions in, the
/// app's credential check, the body limit and the optional refresh cookie.
pub struct LoginRoute<R: UserResolver, C> {
    sessions: Sessions<R, C>,
    check: Check<R::Id, C>,
    body_limit: usize,
    cookie: Option<RefreshCookie>,
}

impl<R: UserResolver, C> Clone for LoginRoute<R, C> {
    fn clone(&self) -> Self {
        LoginRoute {
            sessions: self.sessions.clone(),
            check: self.check.clone(),
            body_limit: self.body_limit,
            cookie: self.cookie.clone(),
        }
    }
}

impl<R: UserResolver, C> fmt::Debug for LoginRoute<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRoute")
            .field("body_limit", &self.body_limit)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

/// What the login endpoint read from the request, for the app's check.
#[non_exhaustive]
pub struct LoginRequest {
    /// The `username` field.
    pub username: String,
    /// The `password` field (never printed by `Debug`).
    pub password: String,
    /// The `User-Agent` header, up to [`LABEL_CHARS`] characters: the
    /// session's label unless the check sets another.
    pub user_agent: Option<String>,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

/// How many characters of the `User-Agent` a session label keeps.
pub const LABEL_CHARS: usize = 200;

/// Whom the app's check found: the user id (the configured id field), the
/// custom claims of the session's tokens, and the session's label.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoggedIn<Id, C = NoCustomClaims> {
    /// The user, by the id field the [`UserResolver`] reads.
    pub user_id: Id,
    /// The custom claims the tokens carry.
    pub claims: C,
    /// The label shown in session lists; `None` keeps the `User-Agent`.
    pub label: Option<String>,
}

impl<Id> LoggedIn<Id, NoCustomClaims> {
    /// The user `user_id`, without custom claims.
    pub fn user(user_id: Id) -> Self {
        LoggedIn {
            user_id,
            claims: NoCustomClaims,
            label: None,
        }
    }
}

impl<Id, C> LoggedIn<Id, C> {
    /// The same user, with `claims` in the tokens.
    pub fn with_claims<C2>(self, claims: C2) -> LoggedIn<Id, C2> {
        LoggedIn {
            user_id: self.user_id,
            claims,
            label: self.label,
        }
    }

    /// The session's label in session lists, instead of the `User-Agent`.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// Why the app's check refused a login.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Unknown user, wrong password or an inactive account: 401
    /// `invalid_grant`, one answer for all three (no user enumeration).
    #[error("no active account found with the given credentials")]
    BadCredentials,
    /// The users table (or the password service) is unreachable: 503 with
    /// `Retry-After`.
    #[error("the users table is unavailable")]
    Unavailable(#[source] StoreError),
}

impl From<StoreError> for LoginError {
    fn from(e: StoreError) -> Self {
        LoginError::Unavailable(e)
    }
}

impl From<LoginError> for AuthError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::BadCredentials => AuthError::BadCredentials,
            LoginError::Unavailable(e) => AuthError::StoreUnavailable(e),
        }
    }
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

impl<R: UserResolver, C: CustomClaims> LoginEndpoint<R, C> {
    /// The login route of `sessions`; `check` says whose the credentials are.
    ///
    /// `check` runs once a login with a well-formed body. Look the user up by
    /// username, verify the password (with a [`DecoyHash`] when there is no
    /// such user), refuse inactive accounts, and answer [`LoggedIn`].
    pub fn new<F, Fut>(sessions: Sessions<R, C>, check: F) -> Self
    where
        F: Fn(LoginRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<LoggedIn<R::Id, C>, LoginError>> + Send + 'static,
    {
        Endpoint::from_route(LoginRoute {
            sessions,
            check: Arc::new(move |req| Box::pin(check(req))),
            body_limit: DEFAULT_BODY_LIMIT,
            cookie: None,
        })
    }

    /// The body size limit (default 16 KiB); larger bodies get 413.
    pub fn body_limit(self, bytes: usize) -> Self {
        self.map_route(|r| r.body_limit = bytes)
    }

    /// Browser mode: the refresh token is set in this HttpOnly cookie and the
    /// body carries only `{"access"}`, as the refresh endpoint in browser mode.
    pub fn refresh_cookie(self, cookie: RefreshCookie) -> Self {
        self.map_route(|r| r.cookie = Some(cookie))
    }
}

impl<R: UserResolver, C: CustomClaims> LoginRoute<R, C> {
    async fn serve<B>(self, req: Request<B>) -> Result<Response<Full<Bytes>>, AuthError>
    where
        B: Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        body::check_method(req.method())?;
        let (parts, body) = req.into_parts();
        if let Some(cookie) = &self.cookie {
            cookie.check_request(&parts)?;
        }
        let bytes = body::read_body(&parts.headers, body, self.body_limit).await?;
        let LoginBody { username, password } = body::parse_json(&parts.headers, &bytes, false)?;
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(LABEL_CHARS).collect::<String>());
        let found = (self.check)(LoginRequest {
            username,
            password,
            user_agent: user_agent.clone(),
        })
        .await?;
        let label = found.label.or(user_agent);
        let pair = self
            .sessions
            .login(&found.user_id, &found.claims, label)
            .await?;
        Ok(pair_response(
            &pair,
            self.cookie.as_ref(),
            self.sessions.now(),
        ))
    }
}

impl<R: UserResolver, C: CustomClaims> Route for LoginRoute<R, C> {
    fn handle<B>(self, req: Request<B>) -> BoxFuture<Result<Response<Full<Bytes>>, AuthError>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        Box::pin(self.serve(req))
    }
}

/// A password hash to check an unknown user's password against, so a login
/// for a user who does not exist takes as long as one with a wrong password:
/// response times do not tell which usernames exist.
///
/// Make it once at start-up with the app's own hasher and parameters (the hash
/// of a random password), so it costs what a real check costs.
#[derive(Clone)]
pub struct DecoyHash(Arc<str>);

impl fmt::Debug for DecoyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DecoyHash([redacted])")
    }
}

impl DecoyHash {
    /// A decoy from a hash the app's hasher made.
    pub fn new(hash: impl Into<String>) -> Self {
        DecoyHash(hash.into().into())
    }

    /// Runs `verify` on the user's `stored` hash, or on the decoy when the user
    /// has none (unknown): true only when a stored hash verified, never for
    /// the decoy, whatever `verify` says of it.
    pub async fn verify<F, Fut>(&self, stored: Option<String>, verify: F) -> bool
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = bool>,
    {
        match stored {
            Some(hash) => verify(hash).await,
            None => {
                let _ = verify(self.0.to_string()).await;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// A slow check (a password hash) costs the same for an unknown user, and
    /// the decoy never logs anyone in.
    #[tokio::test]
    async fn the_decoy_costs_a_check_and_never_passes() {
        let decoy = DecoyHash::new("decoy");
        let slow = |_: String| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            true
        };
        let started = Instant::now();
        assert!(!decoy.verify(None, slow).await);
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(decoy.verify(Some("real".into()), slow).await);
        let seen = decoy
            .verify(None, |hash| async move { hash == "decoy" })
            .await;
        assert!(!seen, "the decoy matched, yet nobody logs in");
        assert_eq!(format!("{decoy:?}"), "DecoyHash([redacted])");
    }

    #[test]
    fn the_password_is_not_printed() {
        let req = LoginRequest {
            username: "ada".into(),
            password: "hunter2".into(),
            user_agent: None,
        };
        assert!(!format!("{req:?}").contains("hunter2"));
    }
}
