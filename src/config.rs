//! The configuration builder, and [`Jwt`]: the built, cheaply cloned handle that
//! issues and validates tokens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use jsonwebtoken::jwk::JwkSet;
use serde::Serialize;
use uuid::Uuid;

use crate::claims::TokenKind;
use crate::error::ConfigError;
use crate::keys::{Key, KeySet};
use crate::token::{IssueError, Mint, TokenPair, now_secs};

/// Settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) issuer: Option<String>,
    pub(crate) audience: Vec<String>,
    pub(crate) leeway: u64,
    pub(crate) access_ttl: u64,
    pub(crate) refresh_ttl: u64,
    pub(crate) session_max_age: u64,
    pub(crate) user_id_claim: String,
    pub(crate) max_token_size: usize,
}

struct Inner {
    keys: ArcSwap<KeySet>,
    /// Serializes key changes (read, modify, store) so two concurrent changes
    /// cannot lose one another; readers never take it.
    key_change: std::sync::Mutex<()>,
    settings: Settings,
}

/// Issues and validates tokens. Built by [`Jwt::builder`]; clones share one key set,
/// so a key rotation through any clone takes effect in all of them at once.
///
/// `Debug` prints the key ids and settings, never key material.
#[derive(Clone)]
pub struct Jwt {
    inner: Arc<Inner>,
}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys();
        f.debug_struct("Jwt")
            .field("signing_kid", &keys.signing().kid())
            .field("kids", &keys.kids())
            .field("settings", &self.inner.settings)
            .finish()
    }
}

impl Jwt {
    /// Starts a configuration.
    pub fn builder() -> JwtBuilder {
        JwtBuilder::default()
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn keys(&self) -> Guard<Arc<KeySet>> {
        self.inner.keys.load()
    }

    /// Access-token lifetime.
    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.inner.settings.access_ttl)
    }

    /// Refresh-token lifetime (each token; the session is capped by [`Jwt::session_max_age`]).
    pub fn refresh_ttl(&self) -> Duration {
        Duration::from_secs(self.inner.settings.refresh_ttl)
    }

    /// The absolute lifetime of a session: rotation never extends a session past it.
    pub fn session_max_age(&self) -> Duration {
        Duration::from_secs(self.inner.settings.session_max_age)
    }

    /// The name of the claim that carries the user id.
    pub fn user_id_claim(&self) -> &str {
        &self.inner.settings.user_id_claim
    }

    /// The `kid` of the key that signs new tokens.
    pub fn signing_kid(&self) -> String {
        self.keys().signing().kid().to_owned()
    }

    /// Makes `next` the signing key. The previous signing key keeps verifying the
    /// tokens it signed until [`Jwt::retire_key`] removes it, so nobody is logged out.
    pub fn rotate_signing_key(&self, next: Key) -> Result<(), ConfigError> {
        let _change = self.lock_key_change();
        let set = self.keys().rotated(next)?;
        self.inner.keys.store(Arc::new(set));
        Ok(())
    }

    /// Adds a verification-only key (e.g. another service's public key).
    pub fn add_verification_key(&self, key: Key) -> Result<(), ConfigError> {
        let _change = self.lock_key_change();
        let cur = self.keys();
        let mut others: Vec<Key> = cur
            .kids()
            .iter()
            .filter_map(|k| cur.find(k).cloned())
            .collect();
        others.retain(|k| k.kid() != cur.signing().kid());
        others.push(key);
        let set = KeySet::new(cur.signing().clone(), others)?;
        self.inner.keys.store(Arc::new(set));
        Ok(())
    }

    /// Removes a verification key: tokens under its `kid` are refused from now on.
    /// Returns `false` for an unknown `kid` or the current signing key.
    pub fn retire_key(&self, kid: &str) -> bool {
        let _change = self.lock_key_change();
        match self.keys().retired(kid) {
            Some(set) => {
                self.inner.keys.store(Arc::new(set));
                true
            }
            None => false,
        }
    }

    fn lock_key_change(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic elsewhere cannot leave it inconsistent.
        self.inner
            .key_change
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The public verification keys as a JWKS document (`kid`, `alg`, `use: sig`).
    /// HMAC secrets never appear in it.
    pub fn jwks(&self) -> JwkSet {
        self.keys().jwks()
    }

    /// Mints an access token for an existing session.
    pub fn issue_access<C: Serialize>(
        &self,
        user_id: &str,
        session_id: Uuid,
        custom: &C,
    ) -> Result<(String, u64), IssueError> {
        let now = now_secs();
        let exp = now + self.inner.settings.access_ttl;
        let m = Mint {
            kind: TokenKind::Access,
            user_id,
            jti: Uuid::new_v4(),
            session_id,
            issued_at: now,
            expires_at: exp,
        };
        Ok((self.mint(m, custom)?, exp))
    }

    /// Mints a refresh token with a given `jti` and expiry.
    pub(crate) fn issue_refresh<C: Serialize>(
        &self,
        user_id: &str,
        session_id: Uuid,
        jti: Uuid,
        expires_at: u64,
        custom: &C,
    ) -> Result<String, IssueError> {
        let m = Mint {
            kind: TokenKind::Refresh,
            user_id,
            jti,
            session_id,
            issued_at: now_secs(),
            expires_at,
        };
        self.mint(m, custom)
    }

    /// Mints an access/refresh pair for a new session, without recording it
    /// anywhere: for stateless use. Apps with rotation use
    /// [`Sessions::login`](crate::Sessions::login), which records the session first.
    pub fn issue_pair<C: Serialize>(
        &self,
        user_id: &str,
        custom: &C,
    ) -> Result<TokenPair, IssueError> {
        let session_id = Uuid::new_v4();
        let refresh_jti = Uuid::new_v4();
        let refresh_expires_at = now_secs()
            + self
                .inner
                .settings
                .refresh_ttl
                .min(self.inner.settings.session_max_age);
        self.pair(user_id, session_id, refresh_jti, refresh_expires_at, custom)
    }

    pub(crate) fn pair<C: Serialize>(
        &self,
        user_id: &str,
        session_id: Uuid,
        refresh_jti: Uuid,
        refresh_expires_at: u64,
        custom: &C,
    ) -> Result<TokenPair, IssueError> {
        let (access, access_expires_at) = self.issue_access(user_id, session_id, custom)?;
        let refresh =
            self.issue_refresh(user_id, session_id, refresh_jti, refresh_expires_at, custom)?;
        Ok(TokenPair {
            access,
            refresh,
            session_id,
            refresh_jti,
            access_expires_at,
            refresh_expires_at,
        })
    }
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

    /// Checks the configuration and builds the [`Jwt`].
    pub fn build(self) -> Result<Jwt, ConfigError> {
        crate::crypto::ensure_provider()?;
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
            || crate::claims::REGISTERED
                .iter()
                .any(|r| *r == claim && *r != "sub")
        {
            return Err(ConfigError::BadName(claim.clone()));
        }
        if self.issuer.as_deref() == Some("") || self.audience.iter().any(String::is_empty) {
            return Err(ConfigError::BadName("empty issuer or audience".into()));
        }
        let settings = Settings {
            issuer: self.issuer,
            audience: self.audience,
            leeway: secs(self.leeway),
            access_ttl: secs(self.access_ttl),
            refresh_ttl: secs(self.refresh_ttl),
            session_max_age: secs(session_max_age),
            user_id_claim: self.user_id_claim,
            max_token_size: self.max_token_size,
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
