//! [`PurgeTask`]: purges expired sessions and tokens in the background, on an
//! interval, so the store stays small without cron (SimpleJWT needs
//! `flushexpiredtokens` from cron; its table grows without bound otherwise).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tower_jwt_auth::{MemoryStore, PurgeTask, TokenStore};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
//! let purge = PurgeTask::start(store.clone(), Duration::from_secs(600));
//! // ... serve requests ...
//! let stats = purge.stop().await; // waits for a purge in progress, then ends
//! assert_eq!(stats.errors, 0);
//! # }
//! ```
//!
//! Purging is idempotent, so several app instances may each run one against a
//! shared store. A failing purge (the store is down) is logged and counted, and
//! the next tick tries again.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::clock::system_secs;
use crate::metrics::{self, StoreOp};
use crate::store::TokenStore;

/// The shortest interval accepted; shorter ones are raised to it.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// What a [`PurgeTask`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeStats {
    /// Purges that completed.
    pub runs: u64,
    /// Rows they removed.
    pub rows: u64,
    /// Purges that failed (the store returned an error).
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    runs: AtomicU64,
    rows: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> PurgeStats {
        PurgeStats {
            runs: self.runs.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// A background task that calls [`TokenStore::purge_expired`] every interval.
///
/// Started with [`PurgeTask::start`]; [`PurgeTask::stop`] ends it cleanly (a purge
/// in progress finishes first). Dropping the handle also ends the task, after the
/// purge in progress, without waiting for it.
#[must_use = "dropping a PurgeTask stops it"]
pub struct PurgeTask {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    interval: Duration,
}

impl fmt::Debug for PurgeTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PurgeTask")
            .field("interval", &self.interval)
            .field("stats", &self.stats())
            .finish()
    }
}

impl PurgeTask {
    /// Starts purging `store` every `interval` (the first purge runs at once),
    /// on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` does; [`PurgeTask::start_on`]
    /// takes a runtime handle instead.
    pub fn start(store: Arc<dyn TokenStore>, interval: Duration) -> Self {
        Self::start_on(&tokio::runtime::Handle::current(), store, interval)
    }

    /// [`PurgeTask::start`] on the runtime `handle` points to.
    pub fn start_on(
        handle: &tokio::runtime::Handle,
        store: Arc<dyn TokenStore>,
        interval: Duration,
    ) -> Self {
        let interval = interval.max(MIN_INTERVAL);
        let (stop, stopped) = oneshot::channel();
        let counters = Arc::new(Counters::default());
        let task = handle.spawn(run(store, interval, stopped, counters.clone()));
        PurgeTask {
            stop: Some(stop),
            handle: Some(task),
            counters,
            interval,
        }
    }

    /// The interval between purges.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// What the task has done so far.
    pub fn stats(&self) -> PurgeStats {
        self.counters.snapshot()
    }

    /// Stops the task: a purge in progress finishes, no other starts. Returns
    /// what it did.
    pub async fn stop(mut self) -> PurgeStats {
        if let Some(stop) = self.stop.take() {
            // An error means the task has already ended.
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            // A panic inside the store's purge ends the task; it is reported
            // there, and the stats stand as they were.
            let _ = handle.await;
        }
        self.counters.snapshot()
    }
}

impl Drop for PurgeTask {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn run(
    store: Arc<dyn TokenStore>,
    interval: Duration,
    mut stopped: oneshot::Receiver<()>,
    counters: Arc<Counters>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        // Wait for the next tick or the stop signal, whichever comes first (a
        // dropped handle counts as a stop).
        let tick = std::future::poll_fn(|cx| {
            if Pin::new(&mut stopped).poll(cx).is_ready() {
                return Poll::Ready(false);
            }
            ticks.poll_tick(cx).map(|_| true)
        })
        .await;
        if !tick {
            return;
        }
        match metrics::timed(StoreOp::PurgeExpired, store.purge_expired(system_secs())).await {
            Ok(rows) => {
                counters.runs.fetch_add(1, Ordering::Relaxed);
                counters.rows.fetch_add(rows, Ordering::Relaxed);
                metrics::purged(rows);
                #[cfg(feature = "tracing")]
                tracing::debug!(target: "tower_jwt_auth::purge", rows, "expired tokens purged");
            }
            Err(e) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    target: "tower_jwt_auth::purge",
                    error = %e,
                    "purging expired tokens failed; retrying at the next tick"
                );
                #[cfg(not(feature = "tracing"))]
                let _ = e;
            }
        }
    }
}
