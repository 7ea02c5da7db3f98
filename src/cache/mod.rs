//! [`TokenCache`]: an optional, bounded cache of verified access tokens.
//!
//! A token that fully validated once is remembered under the SHA-256 digest of
//! its whole text. When the same token comes back, the signature check and the
//! JSON decoding are skipped; everything that can change with time is checked
//! again on every request:
//!
//! - `exp`, `nbf` and `iat` against the clock, with the [`Jwt`]'s leeway, exactly
//!   as [`Jwt::validate`] does: a token is dead *at* `exp`, cached or not;
//! - the key set: an entry remembers the key set that verified it, and any key
//!   change ([`Jwt::rotate_signing_key`], [`Jwt::add_verification_key`],
//!   [`Jwt::retire_key`]) makes every entry stale at once, so a retired key's
//!   tokens are refused on their very next request (the others are verified
//!   again once and cached anew);
//! - the token kind: an entry answers only for the kind it was validated as;
//! - with the layer's revocation check on: see
//!   [`TokenCache::revocation_staleness`].
//!
//! Only tokens that passed the whole validation are inserted. A different
//! token text, a tampered one included, has a different digest and goes through
//! full validation; a collision of SHA-256 is what it would take to reach
//! another token's entry. Revocation stays keyed on the session and user, never
//! on these digests.
//!
//! ## Bounds
//!
//! The cache holds at most `max_entries` entries and about `max_bytes` bytes.
//! It is split into shards (a power of two, at most 64, never more than
//! `max_entries`), each with its own lock and an equal share of both bounds, so
//! the bounds hold exactly whatever the spread of digests. A full shard evicts
//! by CLOCK (second chance): an entry used since the queue last passed it is
//! kept once more, an unused or expired one is evicted. A flood of distinct
//! valid tokens therefore cannot grow the cache: each insertion into a full
//! shard evicts, and tokens in steady use survive it.
//!
//! An entry's size is counted as the heap it takes: the boxed entry, its table
//! slot five times over and its queue slot twice (the most the hash table and
//! the queue hold per entry, growth slack and all), the heap of the registered
//! claims (user id, issuer, audience) and the decoded payload's length as a
//! stand-in for the heap of the application's own claims (nothing for a
//! zero-sized claims type such as `NoCustomClaims`). With claims types
//! whose heap is no larger than their JSON, the real heap stays under
//! `max_bytes` (the allocator's own per-allocation overhead aside). An entry
//! larger than a shard's byte share is never cached.
//!
//! ## Cost
//!
//! A hit is one SHA-256 of the token, a read lock on one shard, a few
//! comparisons and a clone of the claims. No lock or counter is shared by all
//! requests: two requests contend only when their tokens fall in the same shard
//! (and then only on that shard's read lock).

mod shards;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::TokenError;
use crate::jwt::{Claims, Jwt, TokenKind};
pub(crate) use shards::Digest;
use shards::Lookup;
use shards::{NEVER_CHECKED, REVOKED, Shards};

/// A bounded cache of verified access tokens, for
/// [`JwtAuthLayer::cache`](crate::JwtAuthLayer::cache) (see the [module
/// docs](crate::cache) for what is checked on a hit).
///
/// `C` is the layer's custom-claims type: the cache stores the decoded
/// [`Claims<C>`]. Clones share one cache, so a clone kept aside can watch its
/// size or [`clear`](TokenCache::clear) it. Share one cache only between layers
/// that validate with the same [`Jwt`] and check revocation against the same
/// store (an entry verified by one `Jwt` is never accepted by another: it names
/// the key set that verified it).
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::{Algorithm, Jwt, JwtAuthLayer, Key, TokenCache};
/// # let jwt = Jwt::builder().signing_key(Key::hmac("k", Algorithm::HS256, [1u8; 32]).unwrap()).build().unwrap();
/// // At most 10 000 tokens and about 8 MiB; with a revocation check, ask the
/// // store again when its last answer for a token is older than 5 seconds.
/// let cache = TokenCache::new(10_000, 8 << 20).revocation_staleness(Duration::from_secs(5));
/// let layer = JwtAuthLayer::new(jwt).cache(cache.clone());
/// assert!(cache.is_empty());
/// ```
pub struct TokenCache<C = crate::jwt::NoCustomClaims> {
    shared: Arc<Shards<C>>,
    staleness: Duration,
}

impl<C> Clone for TokenCache<C> {
    fn clone(&self) -> Self {
        TokenCache {
            shared: self.shared.clone(),
            staleness: self.staleness,
        }
    }
}

impl<C> fmt::Debug for TokenCache<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("max_entries", &self.shared.max_entries)
            .field("max_bytes", &self.shared.max_bytes)
            .field("shards", &self.shared.shard_count())
            .field("revocation_staleness", &self.staleness)
            .field("len", &self.len())
            .finish()
    }
}

/// What the layer gets back from a cached validation.
pub(crate) struct Cached<C> {
    pub(crate) claims: Claims<C>,
    /// The token's digest, for recording the revocation check's answer.
    pub(crate) digest: Option<Digest>,
    /// The store found this token live less than the staleness bound ago: the
    /// revocation check can be skipped.
    pub(crate) revocation_fresh: bool,
}

impl<C> TokenCache<C> {
    /// A cache of at most `max_entries` tokens and about `max_bytes` bytes (see
    /// [Bounds](crate::cache#bounds)). Either bound at 0 makes a cache that stores nothing.
    ///
    /// The revocation staleness starts at zero: with the layer's revocation
    /// check on, the store is asked on every request.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        TokenCache {
            shared: Arc::new(Shards::new(max_entries, max_bytes)),
            staleness: Duration::ZERO,
        }
    }

    /// How long the revocation check's answer for a cached token is trusted.
    ///
    /// Applies only when the layer has a
    /// [revocation check](crate::JwtAuthLayer::revocation_check). Zero (the
    /// default): the store is asked on every request, cached or not; the cache
    /// then saves the signature check and the decoding only. Above zero: a
    /// cached token the store found live less than `staleness` ago skips the
    /// store; older answers are asked again. A revocation therefore takes effect
    /// within `staleness` (plus the store call's own duration). A token the
    /// store once found revoked is refused from the cache at once ever after:
    /// revocation is final.
    pub fn revocation_staleness(mut self, staleness: Duration) -> Self {
        self.staleness = staleness;
        self
    }

    /// The configured revocation staleness.
    pub fn staleness(&self) -> Duration {
        self.staleness
    }

    /// The entry bound.
    pub fn max_entries(&self) -> usize {
        self.shared.max_entries
    }

    /// The approximate byte bound.
    pub fn max_bytes(&self) -> usize {
        self.shared.max_bytes
    }

    /// How many tokens are cached now (a sum over the shards, not a snapshot).
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The estimated bytes held by the cached tokens (see [Bounds](crate::cache#bounds)).
    pub fn approx_bytes(&self) -> usize {
        self.shared.bytes()
    }

    /// Forgets every cached token.
    pub fn clear(&self) {
        self.shared.clear();
    }

    /// Records that the store found the token live in a check that started at
    /// `started_ms` (from [`TokenCache::check_started`]).
    pub(crate) fn revocation_checked(&self, d: &Digest, started_ms: u64) {
        self.shared.revocation_checked(d, started_ms);
    }

    /// Records that the store found the token revoked.
    pub(crate) fn revoked(&self, d: &Digest) {
        self.shared.revoked(d);
    }

    /// The clock reading to pass to [`TokenCache::revocation_checked`], taken
    /// before the store call.
    pub(crate) fn check_started(&self) -> u64 {
        self.shared.now_ms()
    }
}

impl<C: DeserializeOwned + Clone> TokenCache<C> {
    /// [`Jwt::validate`] through the cache: a token seen before (and still
    /// valid, see the [module docs](crate::cache)) skips the signature check and the
    /// decoding; a token that fully validates is cached. Revocation is not
    /// checked here: that is the layer's [revocation
    /// check](crate::JwtAuthLayer::revocation_check), or the caller's.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, Jwt, Key, NoCustomClaims, TokenCache, TokenKind};
    /// let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [7u8; 32]).unwrap()).build().unwrap();
    /// let cache = TokenCache::<NoCustomClaims>::new(1_000, 1 << 20);
    /// let pair = jwt.issue_pair("42", &NoCustomClaims).unwrap();
    /// let first = cache.validate(&jwt, &pair.access, TokenKind::Access).unwrap();
    /// let again = cache.validate(&jwt, &pair.access, TokenKind::Access).unwrap();
    /// assert_eq!(first, again);
    /// assert_eq!(cache.len(), 1);
    /// ```
    pub fn validate(
        &self,
        jwt: &Jwt,
        token: &str,
        kind: TokenKind,
    ) -> Result<Claims<C>, TokenError> {
        self.validate_at(jwt, token, kind, jwt.now())
    }

    /// [`TokenCache::validate`] with the clock given (seconds since the Unix
    /// epoch), as [`Jwt::validate_at`]. A hit is checked against `now` like a
    /// fresh validation would be: an entry never outlives its token.
    pub fn validate_at(
        &self,
        jwt: &Jwt,
        token: &str,
        kind: TokenKind,
        now: u64,
    ) -> Result<Claims<C>, TokenError> {
        self.validate_inner(jwt, token, kind, now)
            .map(|(c, _, _)| c)
    }

    /// The layer's entry point: the claims, the digest, and whether the
    /// revocation check may be skipped.
    pub(crate) fn layer_validate(
        &self,
        jwt: &Jwt,
        token: &str,
        revocation_check: bool,
    ) -> Result<Cached<C>, TokenError> {
        let (claims, digest, state) =
            self.validate_inner(jwt, token, TokenKind::Access, jwt.now())?;
        let revocation_fresh = revocation_check
            && !self.staleness.is_zero()
            && state != NEVER_CHECKED
            && state != REVOKED
            && {
                let staleness = u64::try_from(self.staleness.as_millis()).unwrap_or(u64::MAX);
                // `state` is 1 + the check's start: fresh while now < start + staleness.
                self.shared.now_ms() < (state - 1).saturating_add(staleness)
            };
        Ok(Cached {
            claims,
            digest,
            revocation_fresh,
        })
    }

    fn validate_inner(
        &self,
        jwt: &Jwt,
        token: &str,
        kind: TokenKind,
        now: u64,
    ) -> Result<(Claims<C>, Option<Digest>, u64), TokenError> {
        // Oversized tokens are refused by validation before any work; they are
        // not hashed either.
        if !self.shared.enabled() || token.len() > jwt.settings().max_token_size {
            return jwt
                .validate_at(token, kind, now)
                .map(|c| (c, None, NEVER_CHECKED));
        }
        let Some(d) = Digest::of(token) else {
            return jwt
                .validate_at(token, kind, now)
                .map(|c| (c, None, NEVER_CHECKED));
        };
        match self.shared.lookup(jwt, &d, kind, now) {
            Lookup::Hit(claims, state) => Ok((claims, Some(d), state)),
            Lookup::Refused(e) => Err(e),
            Lookup::Miss => {
                let keys = jwt.keys();
                let claims = jwt.validate_at::<C>(token, kind, now)?;
                let payload_len = token.split('.').nth(1).map_or(0, str::len);
                self.shared
                    .insert(d, &claims, &keys, payload_len, now, jwt.settings().leeway);
                Ok((claims, Some(d), NEVER_CHECKED))
            }
        }
    }
}
