//! [`JwtBuilder`]: every setting of a [`Jwt`], checked once at `build()`.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::handle::{Inner, Jwt};
use super::keys::{Key, KeySet};
use crate::clock::Clock;
use crate::error::ConfigError;

/// Settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) issuer: Option<Arc<str>>,
    pub(crate) audience: Arc<[String]>,
    pub(crate) leeway: u64,
    pub(crate) access_ttl: u64,
    pub(crate) refresh_ttl: u64,
    pub(crate) session_max_age: u64,
    pub(crate) user_id_claim: String,
    pub(crate) max_token_size: usize,
    pub(crate) clock: Clock,
}

/// Builds a [`Jwt`]. Consuming (`self -> Self`); every mistake is reported by
/// [`JwtBuilder::build`], nothing panics.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::{Jwt, Key, Algorithm};
/// let jwt = Jwt::builder()
///     .signing_key(Key::hmac("2026-11", Algorithm::HS256, b"0123456789abcdef0123456789abcdef").unwrap())
///     .issuer("https://auth.example.com")
///     .audience("api")
///     .access_ttl(Duration::from_secs(300))
///     .refresh_ttl(Duration::from_secs(86_400))
///     .build()
///     .unwrap();
/// assert_eq!(jwt.signing_kid(), "2026-11");
///
/// // A short secret is an error at build time, not a panic.
/// assert!(Key::hmac("k", Algorithm::HS256, b"short").is_err());
/// ```
#[derive(Debug)]
#[must_use]
pub struct JwtBuilder {
    signing: Option<Result<Key, ConfigError>>,
    verifying: Vec<Result<Key, ConfigError>>,
    issuer: Option<String>,
    audience: Vec<String>,
    leeway: Duration,
    access_ttl: Duration,
    refresh_ttl: Duration,
    session_max_age: Option<Duration>,
    user_id_claim: String,
    max_token_size: usize,
    clock: Clock,
}

impl Default for JwtBuilder {
    fn default() -> Self {
        JwtBuilder {
            signing: None,
            verifying: Vec::new(),
            issuer: None,
            audience: Vec::new(),
            leeway: Duration::ZERO,
            access_ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(86_400),
            session_max_age: None,
            user_id_claim: "sub".into(),
            max_token_size: 8 * 1024,
            clock: Clock::system(),
        }
    }
}

impl JwtBuilder {
    /// The key that signs new tokens (it verifies them too).
    pub fn signing_key(mut self, key: Key) -> Self {
        self.signing = Some(Ok(key));
        self
    }

    /// Shorthand for an HS256 signing key; a secret under 32 bytes fails at `build()`.
    pub fn hs256(mut self, kid: impl Into<String>, secret: impl AsRef<[u8]>) -> Self {
        self.signing = Some(Key::hmac(kid, jsonwebtoken::Algorithm::HS256, secret));
        self
    }

    /// A key that only verifies: a retired signing key, or another issuer's public key.
    pub fn verification_key(mut self, key: Key) -> Self {
        self.verifying.push(Ok(key));
        self
    }

    /// The issuer written into `iss` and required on every token.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = Some(iss.into());
        self
    }

    /// An audience: written into `aud`; a token must name at least one configured audience.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience.push(aud.into());
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 0).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Access-token lifetime (default 5 minutes).
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Refresh-token lifetime (default 1 day).
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// The absolute lifetime of a session (default 30 days). Rotation never extends it.
    pub fn session_max_age(mut self, age: Duration) -> Self {
        self.session_max_age = Some(age);
        self
    }

    /// The claim that carries the user id (default `sub`).
    pub fn user_id_claim(mut self, name: impl Into<String>) -> Self {
        self.user_id_claim = name.into();
        self
    }

    /// Tokens longer than this are refused before any decoding (default 8 KiB).
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.max_token_size = bytes;
        self
    }

    /// The clock every time check reads (default: the system clock). Tests pass
    /// a [`Clock::manual`] and move it instead of sleeping.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the configuration and builds the [`Jwt`].
    pub fn build(self) -> Result<Jwt, ConfigError> {
        super::crypto::ensure_provider()?;
        let signing = self.signing.ok_or(ConfigError::NoSigningKey)??;
        let verifying = self.verifying.into_iter().collect::<Result<Vec<_>, _>>()?;
        let keys = KeySet::new(signing, verifying)?;
        let secs = |d: Duration| d.as_secs();
        if secs(self.access_ttl) == 0 {
            return Err(ConfigError::BadLifetime(
                "the access-token lifetime must be at least one second",
            ));
        }
        if secs(self.refresh_ttl) == 0 {
            return Err(ConfigError::BadLifetime(
                "the refresh-token lifetime must be at least one second",
            ));
        }
        let session_max_age = self
            .session_max_age
            .unwrap_or(Duration::from_secs(30 * 86_400));
        if secs(session_max_age) == 0 {
            return Err(ConfigError::BadLifetime(
                "the session max age must be at least one second",
            ));
        }
        if self.max_token_size < 64 {
            return Err(ConfigError::BadLifetime(
                "the token size cap must be at least 64 bytes",
            ));
        }
        let claim = &self.user_id_claim;
        if claim.is_empty()
            || claim.len() > 64
            || super::claims::REGISTERED
                .iter()
                .any(|r| *r == claim && *r != "sub")
        {
            return Err(ConfigError::BadName(claim.clone()));
        }
        if self.issuer.as_deref() == Some("") || self.audience.iter().any(String::is_empty) {
            return Err(ConfigError::BadName("empty issuer or audience".into()));
        }
        let settings = Settings {
            issuer: self.issuer.map(Arc::from),
            audience: Arc::from(self.audience),
            leeway: secs(self.leeway),
            access_ttl: secs(self.access_ttl),
            refresh_ttl: secs(self.refresh_ttl),
            session_max_age: secs(session_max_age),
            user_id_claim: self.user_id_claim,
            max_token_size: self.max_token_size,
            clock: self.clock,
        };
        Ok(Jwt {
            inner: Arc::new(Inner {
                keys: ArcSwap::from_pointee(keys),
                key_change: std::sync::Mutex::new(()),
                settings,
            }),
        })
    }
}
