//! The cache's insides: shards with their own locks, entries keyed by the
//! token's SHA-256, CLOCK eviction, and the byte accounting of
//! [Bounds](crate::cache#bounds). Nothing here is public.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Instant;

use crate::error::TokenError;
use crate::jwt::validate::{Times, check_times, expired};
use crate::jwt::{Claims, Jwt, KeySet, TokenKind};

/// The most shards a cache is split into.
const MAX_SHARDS: usize = 64;

/// `revocation` state of an entry: never checked against the store.
pub(super) const NEVER_CHECKED: u64 = 0;
/// `revocation` state of an entry: the store said revoked (final).
pub(super) const REVOKED: u64 = u64::MAX;

/// Every shard of one cache, and its bounds.
pub(super) struct Shards<C> {
    shards: Box<[Padded<RwLock<Shard<C>>>]>,
    /// `shards.len() - 1` (a power of two).
    mask: usize,
    pub(super) max_entries: usize,
    pub(super) max_bytes: usize,
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
    pub(super) fn of(token: &str) -> Option<Digest> {
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

pub(super) enum Lookup<C> {
    /// A live entry: its claims and its revocation state.
    Hit(Claims<C>, u64),
    /// A cached token that must be refused now.
    Refused(TokenError),
    /// Not cached, or cached under an older key set or another kind.
    Miss,
}

impl<C> Shards<C> {
    /// Shards for at most `max_entries` tokens and about `max_bytes` bytes.
    pub(super) fn new(max_entries: usize, max_bytes: usize) -> Self {
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
        Shards {
            shards,
            mask: n - 1,
            max_entries,
            max_bytes,
            shard_entries: max_entries / n,
            shard_bytes: max_bytes / n,
            epoch: Instant::now(),
        }
    }

    /// How many tokens are cached now (a sum over the shards, not a snapshot).
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| read(&s.0).map_or(0, |s| s.map.len()))
            .sum()
    }

    /// The estimated bytes held by the cached tokens.
    pub(super) fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| read(&s.0).map_or(0, |s| s.bytes))
            .sum()
    }

    /// Forgets every cached token.
    pub(super) fn clear(&self) {
        for s in self.shards.iter() {
            write(&s.0).clear();
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.shard_entries > 0 && self.shard_bytes > 0
    }

    fn shard(&self, d: &Digest) -> &RwLock<Shard<C>> {
        // `mask` is `len - 1`: the index is always in range.
        let i = d.shard_bits() & self.mask;
        &self.shards[i].0
    }

    /// Milliseconds since the cache was made.
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Records that the store found the token live in a check that started at
    /// `started_ms` (from [`TokenCache::check_started`]).
    pub(super) fn revocation_checked(&self, d: &Digest, started_ms: u64) {
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
    pub(super) fn revoked(&self, d: &Digest) {
        if let Some(shard) = read(self.shard(d))
            && let Some(e) = shard.map.get(&d.table_key())
            && e.digest == *d
        {
            e.revocation.store(REVOKED, Ordering::Relaxed);
        }
    }

    /// How many shards there are.
    pub(super) fn shard_count(&self) -> usize {
        self.shards.len()
    }
}

impl<C: Clone> Shards<C> {
    pub(super) fn lookup(&self, jwt: &Jwt, d: &Digest, kind: TokenKind, now: u64) -> Lookup<C> {
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
        if let Err(err) = check_entry_times(&e.claims, jwt.settings().leeway, now) {
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
    pub(super) fn insert(
        &self,
        d: Digest,
        claims: &Claims<C>,
        keys: &Arc<KeySet>,
        payload_len: usize,
        now: u64,
        leeway: u64,
    ) {
        let bytes = entry_bytes(claims, payload_len);
        let cap_bytes = self.shard_bytes;
        let cap_entries = self.shard_entries;
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

/// `exp`, `nbf` and `iat` against `now`, with the same rules as `Jwt::validate_at`.
fn check_entry_times<C>(c: &Claims<C>, leeway: u64, now: u64) -> Result<(), TokenError> {
    let times = Times {
        issued_at: c.issued_at,
        not_before: c.not_before,
        expires_at: c.expires_at,
    };
    check_times(times, leeway, now)
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
        // Issuer and audience are usually shared with the settings; counted
        // as if owned, so the estimate stays above the real heap.
        + c.issuer.as_ref().map_or(0, |i| i.len() + 16)
        + c.audience.as_ref().map_or(0, |a| {
            16 + a.len() * std::mem::size_of::<String>()
                + a.iter().map(String::capacity).sum::<usize>()
        });
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
        let dead = expired(e.claims.expires_at, leeway, now);
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
