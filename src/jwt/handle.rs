//! [`Jwt`]: the built, cheaply cloned handle that issues and validates tokens,
//! and changes its key set at run time (rotation without logging anyone out).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use jsonwebtoken::jwk::JwkSet;

use super::builder::{JwtBuilder, Settings};
use super::keys::{Key, KeySet};
use crate::clock::Clock;
use crate::error::ConfigError;

pub(super) struct Inner {
    pub(super) keys: ArcSwap<KeySet>,
    /// Serializes key changes (read, modify, store) so two concurrent changes
    /// cannot lose one another; readers never take it.
    pub(super) key_change: std::sync::Mutex<()>,
    pub(super) settings: Settings,
}

/// Issues and validates tokens. Built by [`Jwt::builder`]; clones share one key set,
/// so a key rotation through any clone takes effect in all of them at once.
///
/// `Debug` prints the key ids and settings, never key material.
#[derive(Clone)]
pub struct Jwt {
    pub(super) inner: Arc<Inner>,
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

    /// A `Jwt` whose own tokens nobody can make: a random HMAC secret that
    /// never leaves this value. For layers that accept only outside issuers'
    /// tokens ([`JwtAuthLayer::trusting`](crate::JwtAuthLayer::trusting)).
    // Made when a layer is built, never per request; the two `expect`s
    // cannot fail in a build that compiles a crypto backend.
    #[allow(clippy::expect_used)]
    pub(crate) fn accepting_none() -> Jwt {
        let mut secret = [0u8; 32];
        secret[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        // Fails only without a crypto backend, where no key of any kind can
        // be made: a build without `aws-lc-rs` or `rust-crypto`, at start-up.
        let key = super::Key::hmac("unused", jsonwebtoken::Algorithm::HS256, secret)
            .expect("tower-jwt-auth needs the aws-lc-rs or rust-crypto feature");
        Jwt::builder()
            .signing_key(key)
            .build()
            .expect("the default settings with a valid key are valid")
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The clock every time check of this `Jwt` (and what is built on it) reads.
    pub fn clock(&self) -> &Clock {
        &self.inner.settings.clock
    }

    /// Now, in seconds since the Unix epoch, on [`Jwt::clock`].
    pub(crate) fn now(&self) -> u64 {
        self.inner.settings.clock.now_secs()
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
}
