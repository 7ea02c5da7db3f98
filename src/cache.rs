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

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::error::TokenError;
use crate::jwt::Jwt;
use crate::jwt::KeySet;
use crate::jwt::validate::{self, Times};
use crate::jwt::{Claims, TokenKind};

/// The most shards a cache is split into.
const MAX_SHARDS: usize = 64;

/// `revocation` state of an entry: never checked against the store.
const NEVER_CHECKED: u64 = 0;
/// `revocation` state of an entry: the store said revoked (final).
const REVOKED: u64 = u64::MAX;

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
    shared: Arc<Shared<C>>,
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
            .field("shards", &self.shared.shards.len())
            .field("revocation_staleness", &self.staleness)
            .field("len", &self.len())
            .finish()
    }
}

struct Shared<C> {
    shards: Box<[Padded<RwLock<Shard<C>>>]>,
    /// `shards.len() - 1` (a power of two).
    mask: usize,
    max_entries: usize,
    max_bytes: usize,
    shard_entries: usize,
    shard_bytes: usize,
    /// The origin of the millisecond clock of revocation checks.
    epoch: Instant,
}

/// One shard on its own cache lines: a read lock taken on one shard does not
/// bounce the line of its neighbour.
#[repr(align(128))]
struct Padded<T>(T);

/// Entries are boxed and the table is keyed by 8 bytes of the digest: a table
/// slot is 16 bytes, so the hash table's growth slack (under churn a table can
/// reach about 4.6 slots per entry) stays small and can be counted in full.
struct Shard<C> {
    map: HashMap<u64, Box<Entry<C>>, BuildHasherDefault<KeyHasher>>,
    /// CLOCK queue: every key of `map` exactly once, oldest first.
    order: VecDeque<u64>,
    bytes: usize,
}

impl<C> Shard<C> {
    fn clear(&mut self) {
        self.map = HashMap::default();
        self.order = VecDeque::new();
        self.bytes = 0;
    }
}

struct Entry<C> {
    /// The whole digest: the table key is only 8 bytes of it.
    digest: Digest,
    claims: Claims<C>,
    /// The key set that verified the token; the entry is stale once the `Jwt`
    /// holds another. A `Weak` keeps the old set's allocation (not its keys)
    /// alive, so its address cannot be reused by a later set.
    keys: Weak<KeySet>,
    bytes: usize,
    /// Used since the last CLOCK sweep.
    visited: AtomicBool,
    /// [`NEVER_CHECKED`], [`REVOKED`], or 1 + the millisecond (since `epoch`) at
    /// which the last store check that found the token live started.
    revocation: AtomicU64,
}

/// SHA-256 of a whole token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Digest([u8; 32]);

impl Digest {
    /// The digest of `token`; `None` only in a build without a crypto backend
    /// (where no token validates anyway).
    fn of(token: &str) -> Option<Digest> {
        #[cfg(feature = "aws-lc-rs")]
        {
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            <[u8; 32]>::try_from(d.as_ref()).ok().map(Digest)
        }
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
        {
            use sha2::Digest as _;
            let d: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
            Some(Digest(d))
        }
        #[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
        {
            let _ = token;
            None
        }
    }

    /// Bytes 0..8: pick the shard.
    fn shard_bits(&self) -> usize {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        u64::from_le_bytes([a, b, c, d, e, f, g, h]) as usize
    }

    /// Bytes 8..16: the key in the shard's table (a digest is already uniform,
    /// there is nothing to gain from hashing it again). Two digests that share
    /// these 8 bytes share a slot: the later one replaces the earlier, and a
    /// lookup compares the whole digest.
    fn table_key(&self) -> u64 {
        let [_, _, _, _, _, _, _, _, a, b, c, d, e, f, g, h, ..] = self.0;
        u64::from_le_bytes([a, b, c, d, e, f, g, h])
    }
}

/// Passes a `u64` key through as its own hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not reached by `u64` keys (they call `write_u64`); kept total anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
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

enum Lookup<C> {
    /// A live entry: its claims and its revocation state.
    Hit(Claims<C>, u64),
    /// A cached token that must be refused now.
    Refused(TokenError),
    /// Not cached, or cached under an older key set or another kind.
    Miss,
}

impl<C> TokenCache<C> {
    /// A cache of at most `max_entries` tokens and about `max_bytes` bytes (see
    /// [Bounds](crate::cache#bounds)). Either bound at 0 makes a cache that stores nothing.
    ///
    /// The revocation staleness starts at zero: with the layer's revocation
    /// check on, the store is asked on every request.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        let mut n = 1;
        while n * 2 <= max_entries.min(MAX_SHARDS) {
            n *= 2;
        }
        let shards = (0..n)
            .map(|_| {
                Padded(RwLock::new(Shard {
                    map: HashMap::default(),
                    order: VecDeque::new(),
                    bytes: 0,
                }))
            })
            .collect();
        TokenCache {
            shared: Arc::new(Shared {
                shards,
                mask: n - 1,
                max_entries,
                max_bytes,
                shard_entries: max_entries / n,
                shard_bytes: max_bytes / n,
                epoch: Instant::now(),
            }),
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
        self.shared
            .shards
            .iter()
            .map(|s| read(&s.0).map_or(0, |s| s.map.len()))
            .sum()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The estimated bytes held by the cached tokens (see [Bounds](crate::cache#bounds)).
    pub fn approx_bytes(&self) -> usize {
        self.shared
            .shards
            .iter()
            .map(|s| read(&s.0).map_or(0, |s| s.bytes))
            .sum()
    }

    /// Forgets every cached token.
    pub fn clear(&self) {
        for s in self.shared.shards.iter() {
            write(&s.0).clear();
        }
    }

    fn enabled(&self) -> bool {
        self.shared.shard_entries > 0 && self.shared.shard_bytes > 0
    }

    fn shard(&self, d: &Digest) -> &RwLock<Shard<C>> {
        // `mask` is `len - 1`: the index is always in range.
        let i = d.shard_bits() & self.shared.mask;
        &self.shared.shards[i].0
    }

    /// Milliseconds since the cache was made.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.shared.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Records that the store found the token live in a check that started at
    /// `started_ms` (from [`TokenCache::check_started`]).
    pub(crate) fn revocation_checked(&self, d: &Digest, started_ms: u64) {
        if let Some(shard) = read(self.shard(d))
            && let Some(e) = shard.map.get(&d.table_key())
            && e.digest == *d
        {
            // `fetch_max`: a later answer wins, and `REVOKED` is never undone.
            e.revocation
                .fetch_max(started_ms.saturating_add(1), Ordering::Relaxed);
        }
    }

    /// Records that the store found the token revoked.
    pub(crate) fn revoked(&self, d: &Digest) {
        if let Some(shard) = read(self.shard(d))
            && let Some(e) = shard.map.get(&d.table_key())
            && e.digest == *d
        {
            e.revocation.store(REVOKED, Ordering::Relaxed);
        }
    }

    /// The clock reading to pass to [`TokenCache::revocation_checked`], taken
    /// before the store call.
    pub(crate) fn check_started(&self) -> u64 {
        self.now_ms()
    }
}

impl<C: Clone> TokenCache<C> {
    fn lookup(&self, jwt: &Jwt, d: &Digest, kind: TokenKind, now: u64) -> Lookup<C> {
        let Some(shard) = read(self.shard(d)) else {
            return Lookup::Miss;
        };
        let Some(e) = shard.map.get(&d.table_key()) else {
            return Lookup::Miss;
        };
        if e.digest != *d
            || !std::ptr::eq(e.keys.as_ptr(), Arc::as_ptr(&jwt.keys()))
            || e.claims.kind != kind
        {
            return Lookup::Miss;
        }
        if let Err(err) = check_times(&e.claims, jwt.settings().leeway, now) {
            return Lookup::Refused(err);
        }
        let revocation = e.revocation.load(Ordering::Relaxed);
        if revocation == REVOKED {
            return Lookup::Refused(TokenError::Revoked);
        }
        if !e.visited.load(Ordering::Relaxed) {
            e.visited.store(true, Ordering::Relaxed);
        }
        Lookup::Hit(e.claims.clone(), revocation)
    }

    /// Inserts a token that just validated under `keys` (loaded before the
    /// validation started, so a key change during it leaves the entry stale).
    fn insert(
        &self,
        d: Digest,
        claims: &Claims<C>,
        keys: &Arc<KeySet>,
        payload_len: usize,
        now: u64,
        leeway: u64,
    ) {
        let bytes = entry_bytes(claims, payload_len);
        let cap_bytes = self.shared.shard_bytes;
        let cap_entries = self.shared.shard_entries;
        if bytes > cap_bytes || cap_entries == 0 {
            return;
        }
        let entry = Box::new(Entry {
            digest: d,
            claims: claims.clone(),
            keys: Arc::downgrade(keys),
            bytes,
            visited: AtomicBool::new(false),
            revocation: AtomicU64::new(NEVER_CHECKED),
        });
        let key = d.table_key();
        let mut shard = write(self.shard(&d));
        let shard = &mut *shard;
        if let Some(old) = shard.map.get_mut(&key) {
            // Re-validated after a key change (or, once in 2^64, another digest
            // with the same table key): replace in place, already queued.
            shard.bytes = shard.bytes.saturating_sub(old.bytes).saturating_add(bytes);
            *old = entry;
        } else {
            while shard.map.len() >= cap_entries || shard.bytes.saturating_add(bytes) > cap_bytes {
                if !evict_one(shard, now, leeway) {
                    break;
                }
            }
            if shard.map.len() >= cap_entries || shard.bytes.saturating_add(bytes) > cap_bytes {
                return;
            }
            shard.bytes = shard.bytes.saturating_add(bytes);
            shard.map.insert(key, entry);
            shard.order.push_back(key);
        }
        // Replacing an old entry may have made the shard too big for its bytes.
        while shard.bytes > cap_bytes {
            if !evict_one(shard, now, leeway) {
                break;
            }
        }
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
                self.now_ms() < (state - 1).saturating_add(staleness)
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
        if !self.enabled() || token.len() > jwt.settings().max_token_size {
            return jwt
                .validate_at(token, kind, now)
                .map(|c| (c, None, NEVER_CHECKED));
        }
        let Some(d) = Digest::of(token) else {
            return jwt
                .validate_at(token, kind, now)
                .map(|c| (c, None, NEVER_CHECKED));
        };
        match self.lookup(jwt, &d, kind, now) {
            Lookup::Hit(claims, state) => Ok((claims, Some(d), state)),
            Lookup::Refused(e) => Err(e),
            Lookup::Miss => {
                let keys = jwt.keys();
                let claims = jwt.validate_at::<C>(token, kind, now)?;
                let payload_len = token.split('.').nth(1).map_or(0, str::len);
                self.insert(d, &claims, &keys, payload_len, now, jwt.settings().leeway);
                Ok((claims, Some(d), NEVER_CHECKED))
            }
        }
    }
}

/// `exp`, `nbf` and `iat` against `now`, with the same rules as `Jwt::validate_at`.
fn check_times<C>(c: &Claims<C>, leeway: u64, now: u64) -> Result<(), TokenError> {
    let times = Times {
        issued_at: c.issued_at,
        not_before: c.not_before,
        expires_at: c.expires_at,
    };
    validate::check_times(times, leeway, now)
}

/// The estimated size of one entry (see [Bounds](crate::cache#bounds)).
fn entry_bytes<C>(c: &Claims<C>, payload_b64_len: usize) -> usize {
    // The boxed entry; its table slot (and control byte) five times over, the
    // most a hashbrown table holds per entry under insert/remove churn (it
    // rehashes in place only below half load, so up to 16/7 slots per entry,
    // rounded up to a power of two); its queue slot twice (a `VecDeque` doubles).
    let boxed = std::mem::size_of::<Entry<C>>();
    let slot = 5 * (std::mem::size_of::<(u64, Box<Entry<C>>)>() + 1);
    let queue = 2 * std::mem::size_of::<u64>();
    let registered = c.user_id.capacity()
        + c.issuer.as_ref().map_or(0, String::capacity)
        + c.audience.capacity() * std::mem::size_of::<String>()
        + c.audience.iter().map(String::capacity).sum::<usize>();
    // A zero-sized claims type (`NoCustomClaims`) can own no heap.
    let custom = if std::mem::size_of::<C>() == 0 {
        0
    } else {
        payload_b64_len / 4 * 3 + 2
    };
    boxed + slot + queue + registered + custom
}

/// Evicts one entry by CLOCK; `false` when the shard is empty.
fn evict_one<C>(shard: &mut Shard<C>, now: u64, leeway: u64) -> bool {
    // Each entry is passed over at most once (its `visited` bit is cleared),
    // so this ends within two turns of the queue.
    while let Some(d) = shard.order.pop_front() {
        let Some(e) = shard.map.get(&d) else {
            continue;
        };
        let dead = now >= e.claims.expires_at.saturating_add(leeway);
        if !dead && e.visited.swap(false, Ordering::Relaxed) {
            shard.order.push_back(d);
            continue;
        }
        if let Some(e) = shard.map.remove(&d) {
            shard.bytes = shard.bytes.saturating_sub(e.bytes);
        }
        return true;
    }
    false
}

/// A shard's read lock; `None` when poisoned (treated as a miss: the next
/// writer repairs the shard).
fn read<T>(lock: &RwLock<T>) -> Option<RwLockReadGuard<'_, T>> {
    lock.read().ok()
}

/// A shard's write lock. A panic while it was held (a custom claims type's
/// `Drop`, say) may have left the shard half-updated: it is emptied and used on.
fn write<C>(lock: &RwLock<Shard<C>>) -> RwLockWriteGuard<'_, Shard<C>> {
    match lock.write() {
        Ok(guard) => guard,
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            guard.clear();
            lock.clear_poison();
            guard
        }
    }
}
