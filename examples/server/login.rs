//! `POST /api/token/` and `POST /api/cookie/token/`: the crate's
//! [`LoginEndpoint`] over the users table and Argon2. Unknown users, wrong
//! passwords and deactivated accounts get the same 401, in about the same time.

use tower_jwt_auth::{LoggedIn, LoginEndpoint, LoginError, LoginRequest};

use crate::body::BODY_LIMIT;
use crate::routes::{AppState, MAX_PASSWORD};
use crate::users::Users;

/// The login route of the app's sessions (JSON body mode; browser mode adds
/// the cookie with `refresh_cookie`).
pub fn endpoint(state: &AppState) -> LoginEndpoint<Users> {
    let (users, passwords) = (state.users.clone(), state.passwords.clone());
    LoginEndpoint::new(state.sessions.clone(), move |req: LoginRequest| {
        let (users, passwords) = (users.clone(), passwords.clone());
        async move {
            if req.password.len() > MAX_PASSWORD {
                return Err(LoginError::BadCredentials);
            }
            let found = users.by_username(&req.username).await.map_err(|e| {
                tracing::warn!(error = %e, "login failed: users table unavailable");
                LoginError::Unavailable(e)
            })?;
            let (user, hash, active) = match found {
                Some(c) => (Some(c.user), Some(c.password_hash), c.active),
                None => (None, None, false),
            };
            // An unknown user's password is checked against a decoy hash.
            let matches = passwords.verify(req.password, hash).await;
            match user {
                Some(user) if matches && active => {
                    tracing::info!(user = %user.id, "login accepted");
                    Ok(LoggedIn::user(user.id))
                }
                _ => {
                    tracing::info!("login refused: bad credentials");
                    Err(LoginError::BadCredentials)
                }
            }
        }
    })
    .body_limit(BODY_LIMIT)
}
