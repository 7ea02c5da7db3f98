#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

mod claims;
mod config;
mod crypto;
mod error;
mod keys;
mod token;

pub use claims::{Claims, NoCustomClaims, TokenKind};
pub use config::{Jwt, JwtBuilder};
pub use error::{AuthError, ConfigError, StoreError, TokenError};
pub use jsonwebtoken::Algorithm;
pub use keys::Key;
pub use token::{IssueError, TokenPair, verify_signature};

pub mod rotation;
pub mod store;
mod user;

pub use store::{MemoryStore, TokenStore};
pub use user::{MemoryUsers, UserLookup, UserResolver};
pub mod auth;
#[cfg(feature = "axum")]
pub mod axum;
pub mod refresh;
mod response;
mod sessions;
pub use auth::{JsonRejection, JwtAuth, JwtAuthLayer, OnRejection, TokenSource};
pub mod cache;
pub use cache::TokenCache;
pub use refresh::{RefreshCookie, SessionEndpoint};
pub use response::error_response;
pub use sessions::{ClaimsContext, ClaimsError, ClaimsFuture, CustomClaims, Sessions};
pub mod events;
pub mod metrics;
pub mod purge;
pub mod sliding;
pub use events::{SessionEvent, SessionEvents};
pub use purge::PurgeTask;
pub use sliding::{SlidingEndpoint, SlidingToken, SlidingTokens};
#[cfg(feature = "test-util")]
pub mod conformance;

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
