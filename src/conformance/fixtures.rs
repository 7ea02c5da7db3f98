//! What the cases (and other tests) build on: a test [`Jwt`], [`Sessions`] with
//! one active user, and the check that an answer is a refused token.

use std::sync::Arc;

use uuid::Uuid;

use crate::clock::Clock;
use crate::error::{AuthError, TokenError};
use crate::store::TokenStore;
use crate::{Algorithm, Jwt, Key, MemoryUsers, Sessions};

/// The user store the suite uses: UUID ids, as in the case this crate exists for.
pub type Users = MemoryUsers<Uuid, String>;

/// A [`Jwt`] for tests: HS256, a fixed secret, default lifetimes, the system clock.
pub fn test_jwt() -> Jwt {
    test_jwt_on(Clock::system())
}

/// [`test_jwt`] on `clock`: pass a [`Clock::manual`] and move it instead of sleeping.
pub fn test_jwt_on(clock: Clock) -> Jwt {
    Jwt::builder()
        .signing_key(Key::hmac("test", Algorithm::HS256, [42u8; 32]).expect("valid key"))
        .issuer("tower-jwt-auth-tests")
        .audience("tests")
        .clock(clock)
        .build()
        .expect("valid config")
}

/// Sessions over `store` with one active user, on the system clock; returns them
/// and the user's id.
pub fn sessions_for(store: Arc<dyn TokenStore>) -> (Sessions<Users>, Arc<Users>, Uuid) {
    sessions_on(store, Clock::system())
}

/// [`sessions_for`] on `clock` (the sessions read it through their [`Jwt`]:
/// `sessions.jwt().clock()`).
pub fn sessions_on(
    store: Arc<dyn TokenStore>,
    clock: Clock,
) -> (Sessions<Users>, Arc<Users>, Uuid) {
    let users = Arc::new(Users::new());
    let id = Uuid::new_v4();
    users.insert(id, "alice".into());
    (
        Sessions::new(test_jwt_on(clock), store, users.clone()),
        users,
        id,
    )
}

/// The token error of a refusal; panics on success or on any other error (a
/// store error is never a token outcome).
pub(crate) fn token_err(r: Result<impl std::fmt::Debug, AuthError>) -> TokenError {
    match r {
        Err(AuthError::InvalidToken(e)) => e,
        other => panic!("expected a refused token, got {other:?}"),
    }
}
