//! An issuer's remote keys: fetched (discovery, then the JWKS), cached, read
//! without a lock on every request, refreshed in the background when due and
//! at once for an unknown `kid`, one fetch at a time and at most one per
//! interval for requests; the last good keys serve for a bounded time while
//! the provider cannot be reached.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwapOption, Guard};
use jsonwebtoken::Algorithm;

use super::fetch::Fetcher;
use super::issuer::KeysUnavailable;
use super::jwks::usable_keys;
use super::policy::FetchPolicy;
use crate::jwt::Key;

/// Where the JWKS is.
#[derive(Debug, Clone)]
pub(crate) enum RemoteSource {
    /// The `jwks_uri` of the issuer's OpenID Connect discovery document.
    Discovery,
    /// This URL.
    Jwks(String),
}

/// The keys of one successful fetch.
pub(crate) struct Snapshot {
    pub(crate) keys: Vec<Key>,
    /// The background refresh is due from here on.
    refresh_at: Instant,
    /// Not used past this instant (the provider has been unreachable too long).
    usable_until: Instant,
}

impl Snapshot {
    fn usable(&self, now: Instant) -> bool {
        now < self.usable_until
    }
}

/// What the fetches share, behind the single-flight lock.
#[derive(Default)]
struct FetchState {
    /// The discovered JWKS URL, once discovery succeeded.
    jwks_uri: Option<String>,
    /// The last fetch failed (to tell its recovery).
    failing: bool,
}

pub(crate) struct RemoteKeys {
    issuer: String,
    source: RemoteSource,
    policy: FetchPolicy,
    algorithms: Vec<Algorithm>,
    fetcher: Fetcher,
    current: ArcSwapOption<Snapshot>,
    state: tokio::sync::Mutex<FetchState>,
    /// When the last fetch started, in ms since `epoch` plus one (0: never).
    last_attempt: AtomicU64,
    epoch: Instant,
    /// A background refresh is running.
    refreshing: AtomicBool,
    /// A fetch is running (background or not): a token whose `kid` is
    /// unknown waits for it rather than being refused on the old keys.
    fetching: AtomicBool,
    fetches: AtomicU64,
}

impl fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("source", &self.source)
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

impl RemoteKeys {
    pub(crate) fn new(
        issuer: &str,
        source: RemoteSource,
        policy: FetchPolicy,
        algorithms: Vec<Algorithm>,
    ) -> Result<Self, String> {
        let fetcher = Fetcher::new(&policy)?;
        match &source {
            RemoteSource::Jwks(url) => fetcher.check_url(url)?,
            RemoteSource::Discovery => fetcher.check_url(&discovery_url(issuer))?,
        }
        Ok(RemoteKeys {
            issuer: issuer.to_owned(),
            source,
            policy,
            algorithms,
            fetcher,
            current: ArcSwapOption::empty(),
            state: tokio::sync::Mutex::new(FetchState::default()),
            last_attempt: AtomicU64::new(0),
            epoch: Instant::now(),
            refreshing: AtomicBool::new(false),
            fetching: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
        })
    }

    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The keys at hand, lock-free, when they are still usable; starts a
    /// background refresh when one is due.
    pub(crate) fn keys(self: &Arc<Self>) -> Option<Guard<Option<Arc<Snapshot>>>> {
        let guard = self.current.load();
        let now = Instant::now();
        let snapshot = guard.as_ref()?;
        if !snapshot.usable(now) {
            return None;
        }
        if now >= snapshot.refresh_at && self.may_refetch() {
            self.refresh_in_background();
        }
        Some(guard)
    }

    /// Whether `seen` is still the newest snapshot (a fetch may have put
    /// another in place since it was read).
    pub(crate) fn is_current(&self, seen: &Option<Arc<Snapshot>>) -> bool {
        match (&*self.current.load(), seen) {
            (Some(now), Some(seen)) => Arc::ptr_eq(now, seen),
            (None, None) => true,
            _ => false,
        }
    }

    /// Whether a request that lacks a key should wait for a fetch: one is
    /// running, or one may start now.
    pub(crate) fn worth_waiting(&self) -> bool {
        self.fetching.load(Ordering::Acquire) || self.may_refetch()
    }

    /// Whether a request may cause a fetch now: the last one started at least
    /// the minimum interval ago.
    pub(crate) fn may_refetch(&self) -> bool {
        match self.last_attempt.load(Ordering::Acquire) {
            0 => true,
            started => {
                let since = self.elapsed_ms().saturating_sub(started - 1);
                since >= u64::try_from(self.policy.min_interval.as_millis()).unwrap_or(u64::MAX)
            }
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn refresh_in_background(self: &Arc<Self>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.refreshing.store(false, Ordering::Release);
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            let seen = this.current.load_full();
            let _ = this.fetch(seen.as_ref()).await;
            this.refreshing.store(false, Ordering::Release);
        });
    }

    /// Fetches the keys, one fetch at a time: a caller that waited while
    /// another fetched gets that fetch's keys (newer than `seen`, the
    /// snapshot it judged with) without fetching again. Rate-limited: within
    /// the minimum interval of the last fetch, the keys at hand answer.
    pub(crate) async fn fetch(
        &self,
        seen: Option<&Arc<Snapshot>>,
    ) -> Result<Arc<Snapshot>, KeysUnavailable> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let current = self.current.load_full().filter(|s| s.usable(now));
        if let Some(current) = &current {
            let newer = seen.is_none_or(|seen| !Arc::ptr_eq(seen, current));
            if newer || !self.may_refetch() {
                return Ok(current.clone());
            }
        } else if !self.may_refetch() {
            return Err(KeysUnavailable(
                "no keys yet, and the last fetch failed moments ago".into(),
            ));
        }
        self.last_attempt
            .store(self.elapsed_ms() + 1, Ordering::Release);
        self.fetching.store(true, Ordering::Release);
        let fetched = self.fetch_keys(&mut state).await;
        let answer = self.settle(&mut state, fetched, current);
        // Cleared only once the new keys (if any) are in place.
        self.fetching.store(false, Ordering::Release);
        answer
    }

    /// Puts a fetch's keys in place, or keeps the keys at hand; tells.
    fn settle(
        &self,
        state: &mut FetchState,
        fetched: Result<(Vec<Key>, Option<Duration>), String>,
        current: Option<Arc<Snapshot>>,
    ) -> Result<Arc<Snapshot>, KeysUnavailable> {
        match fetched {
            Ok((keys, max_age)) => {
                let fetched = Instant::now();
                let ttl = self.policy.ttl(max_age);
                let snapshot = Arc::new(Snapshot {
                    keys,
                    refresh_at: fetched + ttl,
                    usable_until: fetched + ttl + self.policy.max_stale,
                });
                self.current.store(Some(snapshot.clone()));
                crate::metrics::keys_fetched(&self.issuer, true);
                if std::mem::take(&mut state.failing) {
                    #[cfg(feature = "tracing")]
                    tracing::info!(issuer = %self.issuer, keys = snapshot.keys.len(), "the issuer's keys can be fetched again");
                }
                Ok(snapshot)
            }
            Err(why) => {
                state.failing = true;
                crate::metrics::keys_fetched(&self.issuer, false);
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    issuer = %self.issuer,
                    %why,
                    serving_last_good_keys = current.is_some(),
                    "the issuer's keys could not be fetched"
                );
                match current {
                    Some(current) => Ok(current),
                    None => Err(KeysUnavailable(why)),
                }
            }
        }
    }

    /// One fetch: discovery when the JWKS URL is not known yet, then the JWKS.
    async fn fetch_keys(
        &self,
        state: &mut FetchState,
    ) -> Result<(Vec<Key>, Option<Duration>), String> {
        let jwks_uri = match (&self.source, &state.jwks_uri) {
            (RemoteSource::Jwks(url), _) => url.clone(),
            (RemoteSource::Discovery, Some(uri)) => uri.clone(),
            (RemoteSource::Discovery, None) => {
                let uri = self.discover().await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = match self.fetcher.get(&jwks_uri).await {
            Ok(fetched) => fetched,
            Err(why) => {
                // The provider may have moved its keys: discover again next time.
                state.jwks_uri = None;
                return Err(why);
            }
        };
        let keys = usable_keys(&fetched.body, &self.algorithms)?;
        Ok((keys, fetched.max_age))
    }

    /// The `jwks_uri` of the issuer's discovery document, whose `issuer` must
    /// be ours exactly (OpenID Connect Discovery §4.3).
    async fn discover(&self) -> Result<String, String> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let url = discovery_url(&self.issuer);
        let fetched = self.fetcher.get(&url).await?;
        let doc: Discovery = serde_json::from_slice(&fetched.body)
            .map_err(|_| format!("{url}: not a discovery document"))?;
        if doc.issuer != self.issuer {
            return Err(format!(
                "{url}: names issuer `{}`, not `{}`",
                doc.issuer, self.issuer
            ));
        }
        self.fetcher.check_url(&doc.jwks_uri)?;
        Ok(doc.jwks_uri)
    }
}

/// `{issuer}/.well-known/openid-configuration`, without a doubled slash.
fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}
