//! JWT authentication for any tower, hyper or axum service, with refresh-token
//! rotation done right.
//!
//! - [`JwtAuthLayer`] validates the access token of every request (a pinned
//!   algorithm per key, `exp`/`nbf`/`iat`, issuer, audience, explicit token
//!   types, no key taken from a token header, a size cap) and hands the
//!   [`Claims`], and if asked the user, to the inner service. Refusals are RFC
//!   6750 answers: 401 with `WWW-Authenticate: Bearer ...` and a JSON body.
//! - [`Sessions`] rotates refresh tokens through a [`TokenStore`]: a session is
//!   a linear chain, one atomic step per rotation in every backend; a replay
//!   within the reuse window gets the same successor again (two tabs, a lost
//!   answer), any other replay revokes the whole session. A store that is
//!   down answers 503 with `Retry-After`, never "invalid token".
//! - Stores: [`MemoryStore`]; SQLite, PostgreSQL and MySQL/MariaDB through
//!   sqlx; Redis for many instances. Users are found by the id field the
//!   tokens carry (a UUID column beside an integer key works).
//! - HTTP endpoints as tower services: [`LoginEndpoint`], [`SessionEndpoint`]
//!   (refresh, logout, revoke-all, verify), [`JwksEndpoint`]; browser mode keeps
//!   the refresh token in an HttpOnly cookie with forgery checks
//!   ([`RefreshCookie`]).
//!
//! # A protected axum app
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use tower_jwt_auth::axum::Authenticated;
//! use tower_jwt_auth::{
//!     Algorithm, Jwt, JwtAuthLayer, Key, LoggedIn, LoginEndpoint, LoginError, MemoryStore,
//!     MemoryUsers, SessionEndpoint, Sessions,
//! };
//!
//! async fn me(Authenticated(claims): Authenticated) -> String {
//!     format!("hello {}", claims.user_id())
//! }
//!
//! let jwt = Jwt::builder()
//!     .signing_key(Key::hmac("2026-12", Algorithm::HS256, [7u8; 32]).unwrap())
//!     .build()
//!     .unwrap();
//! let store = Arc::new(MemoryStore::new());
//! let users = Arc::new(MemoryUsers::<u64, ()>::new());
//! let sessions: Sessions<_> = Sessions::new(jwt.clone(), store.clone(), users);
//! let login = LoginEndpoint::new(sessions.clone(), |req| async move {
//!     // Look the user up and check the password (see `DecoyHash`).
//!     match (req.username.as_str(), req.password.as_str()) {
//!         ("ada", "correct horse") => Ok(LoggedIn::user(7)),
//!         _ => Err(LoginError::BadCredentials),
//!     }
//! });
//! let app: Router = Router::new()
//!     .route("/api/me/", get(me))
//!     .layer(JwtAuthLayer::for_sessions(&sessions).revocation_check(store))
//!     .route_service("/api/token/", login)
//!     .route_service("/api/token/refresh/", SessionEndpoint::refresh(sessions.clone()))
//!     .route_service("/api/token/blacklist/", SessionEndpoint::logout(sessions));
//! # }
//! ```
//!
//! # Where to start
//!
//! | you want | look at |
//! | --- | --- |
//! | keys, lifetimes, issuer, audience | [`JwtBuilder`], [`Key`] |
//! | protect routes | [`JwtAuthLayer`], the `axum` module's extractors (feature `axum`) |
//! | accept tokens of Auth0, Keycloak, Okta... | [`TrustedIssuer`], [`JwtAuthLayer::trust`], [`issuers`] |
//! | require scopes or roles (403 `insufficient_scope`) | [`RequireClaims`], the `axum` module's `Authorized` |
//! | logout seen by every instance, no store call per request | [`RevocationView`], [`UserCache`] |
//! | login, refresh, logout, revoke-all, session lists | [`Sessions`], [`endpoints`] |
//! | a store | [`MemoryStore`], `PgStore`, `MySqlStore`, `SqliteStore`, `RedisStore` (features) |
//! | the rotation rules | [`rotation`] |
//! | write your own store | [`TokenStore`], and the `conformance` suite (feature `test-util`) |
//! | events, metrics | [`events`], [`metrics`] |
//!
//! Keys in PEM: PKCS#8 for EC and Ed25519, PKCS#1 or PKCS#8 for RSA. A key
//! from `openssl ecparam -genkey` (SEC1, `BEGIN EC PRIVATE KEY`) is accepted
//! too; `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` and
//! `openssl genpkey -algorithm ed25519` make PKCS#8 keys directly.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `aws-lc-rs` | yes | jsonwebtoken's aws-lc-rs crypto backend |
//! | `rust-crypto` | | jsonwebtoken's RustCrypto backend (with both on, aws-lc-rs is used) |
//! | `axum` | | extractors `Authenticated`, `CurrentUser` (also as `Option<_>`), `Authorized`, `AuthError: IntoResponse` |
//! | `remote-keys` | | trusted issuers' keys by OpenID Connect discovery or a JWKS URL (reqwest, rustls) |
//! | `sqlite`, `postgres`, `mysql` | | SQL token stores and a SQL user resolver (sqlx 0.9; Rust 1.94) |
//! | `redis` | | the Redis token store, for many app instances |
//! | `tracing` | | `tracing` events (never a token or a secret) |
//! | `metrics` | | counters and histograms through the `metrics` facade |
//! | `test-util` | | the backend conformance suite and a failing-store wrapper |
//!
//! The crate re-exports [`jsonwebtoken`] (its `jwk` types among them) and,
//! with a SQL feature, `sqlx`, so an app uses the versions the crate uses.
//!
//! The repository's guides: [quick start](https://github.com/tower-jwt-auth/tower-jwt-auth/blob/main/docs/quickstart.md),
//! [architecture](https://github.com/tower-jwt-auth/tower-jwt-auth/blob/main/docs/ARCHITECTURE.md),
//! [Redis](https://github.com/tower-jwt-auth/tower-jwt-auth/blob/main/docs/redis.md).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
// No input from the network may panic: outside tests, the library has no
// `unwrap`, `expect`, `panic!`, `todo!` or `unreachable!` but the few allowed
// by name below, none of them reachable from a request (CI's clippy denies
// warnings, so a new one fails the build).
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented,
        clippy::unreachable
    )
)]

// Dependencies point one way (docs/ARCHITECTURE.md):
// jwt <- store <- sessions <- auth / endpoints <- axum.
pub mod clock;
mod error;
pub mod jwt;

pub mod cache;
pub mod events;
pub mod metrics;
pub mod store;
mod user;
mod user_cache;

pub mod purge;
pub mod sessions;

pub mod auth;
pub mod endpoints;
pub mod issuers;
pub mod revocations;
mod wire;

#[cfg(feature = "axum")]
pub mod axum;

#[cfg(feature = "test-util")]
pub mod conformance;

pub use auth::{JsonRejection, JwtAuth, JwtAuthLayer, OnRejection, RequireClaims, TokenSource};
pub use cache::TokenCache;
pub use clock::Clock;
pub use endpoints::{
    DecoyHash, JwksEndpoint, LoggedIn, LoginEndpoint, LoginError, LoginRequest, RefreshCookie,
    SessionEndpoint, SlidingEndpoint,
};
pub use error::{AuthError, ConfigError, StoreError, TokenError};
pub use events::{SessionEvent, SessionEvents};
pub use issuers::{TrustedIssuer, TrustedIssuerBuilder};
/// The JWT library the crate uses (its `jwk` types for JWKS documents).
pub use jsonwebtoken;
pub use jsonwebtoken::Algorithm;
pub use jwt::{
    Claims, IssueError, Jwt, JwtBuilder, Key, NoCustomClaims, TokenKind, TokenPair,
    verify_signature,
};
pub use purge::PurgeTask;
pub use revocations::{RevocationView, RevocationViewBuilder, ViewAnswer};
pub use sessions::{
    ClaimsContext, ClaimsError, ClaimsFuture, CustomClaims, Sessions, SlidingToken, SlidingTokens,
};
/// The SQL toolkit the SQL stores use (pools and connect options).
#[cfg(feature = "sql")]
pub use sqlx;
pub use store::{MemoryStore, RevocationLog, TokenStore, rotation};
pub use user::{MemoryUsers, UserLookup, UserResolver};
pub use user_cache::UserCache;
pub use wire::response::error_response;

// Backends added by their own modules (keep one line each):
#[cfg(feature = "mysql")]
pub use store::MySqlStore;
#[cfg(feature = "postgres")]
pub use store::PgStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
#[cfg(feature = "sql")]
pub use store::sql::{SqlStoreOptions, SqlUsers};
#[cfg(feature = "redis")]
pub use store::{RedisStore, RedisStoreBuilder};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
