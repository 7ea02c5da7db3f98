#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
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

pub mod purge;
pub mod sessions;

pub mod auth;
pub mod endpoints;
mod wire;

#[cfg(feature = "axum")]
pub mod axum;

#[cfg(feature = "test-util")]
pub mod conformance;

pub use auth::{JsonRejection, JwtAuth, JwtAuthLayer, OnRejection, TokenSource};
pub use cache::TokenCache;
pub use clock::Clock;
pub use endpoints::{
    DecoyHash, JwksEndpoint, LoggedIn, LoginEndpoint, LoginError, LoginRequest, RefreshCookie,
    SessionEndpoint, SlidingEndpoint,
};
pub use error::{AuthError, ConfigError, StoreError, TokenError};
pub use events::{SessionEvent, SessionEvents};
pub use jsonwebtoken::Algorithm;
/// The JWT library the crate uses (its `jwk` types for JWKS documents).
pub use jsonwebtoken;
/// The SQL toolkit the SQL stores use (pools and connect options).
#[cfg(feature = "sql")]
pub use sqlx;
pub use jwt::{
    Claims, IssueError, Jwt, JwtBuilder, Key, NoCustomClaims, TokenKind, TokenPair,
    verify_signature,
};
pub use purge::PurgeTask;
pub use sessions::{
    ClaimsContext, ClaimsError, ClaimsFuture, CustomClaims, Sessions, SlidingToken, SlidingTokens,
};
pub use store::{MemoryStore, TokenStore, rotation};
pub use user::{MemoryUsers, UserLookup, UserResolver};
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
