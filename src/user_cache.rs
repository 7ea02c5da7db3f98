//! [`UserCache`]: a [`UserResolver`] that remembers answers for a while, so
//! a layer that resolves users does not ask the database on every request.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;

use crate::error::StoreError;
use crate::user::{UserLookup, UserResolver};

/// Remembers what a [`UserResolver`] answered, each answer for at most `ttl`,
/// keyed by the id value as the token carries it.
///
/// Opt-in, for [`JwtAuthLayer::resolve_user`](crate::JwtAuthLayer::resolve_user)
/// (and [`Sessions`](crate::Sessions), which resolves at each refresh). The
/// price is staleness: a user deactivated, deleted or changed in the database
/// is seen as before for up to `ttl`, unless the app says so: call
/// [`UserCache::invalidate`] where it changes a user (clones share the
/// entries). Active, inactive and missing answers are all remembered; errors
/// (a database that is down) never are. At most `capacity` entries are kept
/// (default 100 000): past it, expired entries go, then arbitrary ones.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tower_jwt_auth::{MemoryUsers, UserCache, UserLookup, UserResolver};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let users = Arc::new(MemoryUsers::<u64, &str>::new());
/// users.insert(7, "ada");
/// let cached = UserCache::new(users.clone(), Duration::from_secs(30));
/// assert_eq!(cached.resolve(&7).await.unwrap(), UserLookup::Active("ada"));
/// users.set_active(&7, false);
/// // Remembered for up to 30 s...
/// assert_eq!(cached.resolve(&7).await.unwrap(), UserLookup::Active("ada"));
/// // ...unless the app says the user changed.
/// cached.invalidate(&7);
/// assert_eq!(cached.resolve(&7).await.unwrap(), UserLookup::Inactive);
/// # }
/// ```
pub struct UserCache<R: UserResolver> {
    shared: Arc<Shared<R>>,
}

struct Shared<R: UserResolver> {
    resolver: Arc<R>,
    ttl: Duration,
    capacity: usize,
    entries: DashMap<String, (Instant, UserLookup<R::User>)>,
}

impl<R: UserResolver> Clone for UserCache<R> {
    fn clone(&self) -> Self {
        UserCache {
            shared: self.shared.clone(),
        }
    }
}

impl<R: UserResolver> fmt::Debug for UserCache<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCache")
            .field("ttl", &self.shared.ttl)
            .field("entries", &self.shared.entries.len())
            .finish_non_exhaustive()
    }
}

impl<R: UserResolver> UserCache<R> {
    /// Remembers `resolver`'s answers for `ttl` each.
    pub fn new(resolver: Arc<R>, ttl: Duration) -> Self {
        UserCache {
            shared: Arc::new(Shared {
                resolver,
                ttl,
                capacity: 100_000,
                entries: DashMap::new(),
            }),
        }
    }

    /// At most `entries` users remembered (default 100 000). Call before
    /// cloning: clones made earlier keep the old bound.
    pub fn capacity(self, entries: usize) -> Self {
        let shared = &self.shared;
        UserCache {
            shared: Arc::new(Shared {
                resolver: shared.resolver.clone(),
                ttl: shared.ttl,
                capacity: entries.max(1),
                entries: DashMap::new(),
            }),
        }
    }

    /// Forgets what was remembered of the user `id` (deactivated, deleted,
    /// roles changed): the next lookup asks the resolver.
    pub fn invalidate(&self, id: &R::Id) {
        self.shared.entries.remove(&id.to_string());
    }

    /// [`UserCache::invalidate`] by the id's value as tokens carry it (what
    /// a [`RevocationView`](crate::RevocationView)'s `on_user_revoked` hook
    /// is given).
    pub fn invalidate_value(&self, id_value: &str) {
        self.shared.entries.remove(id_value);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.shared.entries.clear();
    }

    /// How many users are remembered now (expired entries included until
    /// they are looked up or evicted).
    pub fn len(&self) -> usize {
        self.shared.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.shared.entries.is_empty()
    }

    /// Room for one more entry: expired entries go first, then arbitrary ones.
    fn make_room(&self) {
        let entries = &self.shared.entries;
        if entries.len() < self.shared.capacity {
            return;
        }
        let ttl = self.shared.ttl;
        entries.retain(|_, (at, _)| at.elapsed() < ttl);
        while entries.len() >= self.shared.capacity {
            let Some(victim) = entries.iter().next().map(|e| e.key().clone()) else {
                break;
            };
            entries.remove(&victim);
        }
    }
}

#[async_trait]
impl<R: UserResolver> UserResolver for UserCache<R> {
    type Id = R::Id;
    type User = R::User;

    async fn resolve(&self, id: &R::Id) -> Result<UserLookup<R::User>, StoreError> {
        let key = id.to_string();
        if let Some(entry) = self.shared.entries.get(&key)
            && entry.0.elapsed() < self.shared.ttl
        {
            crate::metrics::user_lookup(true);
            return Ok(entry.1.clone());
        }
        crate::metrics::user_lookup(false);
        let started = Instant::now();
        let lookup = self.shared.resolver.resolve(id).await?;
        self.make_room();
        // Stamped with when the lookup started: an invalidation racing it
        // leaves an entry no fresher than the database read.
        self.shared.entries.insert(key, (started, lookup.clone()));
        Ok(lookup)
    }
}
