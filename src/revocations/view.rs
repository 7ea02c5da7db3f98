//! [`RevocationView`]: what the store revoked, held in memory.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use uuid::Uuid;

use crate::clock::Clock;
use crate::store::log::{Revocation, RevocationLog, Revoked};

/// A hook told of a user's revoke-all.
type UserHook = Box<dyn Fn(&str) + Send + Sync>;

/// What the view says about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewAnswer {
    /// Revoked: its session was revoked, or its user revoked everything after
    /// it was issued.
    Revoked,
    /// Not revoked, as of the view's last read of the log.
    NotRevoked,
    /// The view cannot tell: it has not read the log recently enough (past
    /// its bound), or the token was issued in the very second of a revoke-all
    /// (only the store knows its session's creation to the millisecond). Ask
    /// the store, or answer 503; never accept.
    Unknown,
}

/// The revoked-but-unexpired sessions and the users' revoke-all cutoffs,
/// held in memory and kept current by a task that follows the store's
/// revocation log: a logout on one instance is refused on every other as soon
/// as the log reaches them (pushed at once by PostgreSQL and memory, read every
/// poll interval elsewhere).
///
/// The view knows how fresh it is: each successful read of the log (the
/// periodic one included, which doubles as a heartbeat) makes it trustworthy
/// for `max_lag`; past that, or before the first read, it answers
/// [`ViewAnswer::Unknown`] and the layer asks the store (with
/// [`JwtAuthLayer::revocation_check`](crate::JwtAuthLayer::revocation_check))
/// or answers 503. It never accepts on data older than the bound.
///
/// What it holds is small (revocations are rare): about 100 bytes per revoked
/// session still unexpired (see BENCHMARKS.md). Entries leave when what they
/// revoke expires. Clones share the view; the task stops when the last clone
/// is dropped.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tower_jwt_auth::{MemoryStore, RevocationView, TokenStore, ViewAnswer};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = Arc::new(MemoryStore::new());
/// let view = RevocationView::builder(store.clone()).start();
/// view.ready(Duration::from_secs(1)).await.unwrap();
/// let sid = uuid::Uuid::new_v4();
/// assert_eq!(view.check(sid, "7", 1_800_000_000), ViewAnswer::NotRevoked);
/// # }
/// ```
#[derive(Clone)]
pub struct RevocationView {
    pub(super) shared: Arc<Shared>,
}

/// Hashes a session id by its own bits. Session ids are made by the store
/// (UUIDv7: 74 random bits) and reach the view only from signed tokens and
/// the store's log, so no client can pick colliding ones: SipHash's defence
/// against chosen keys is not needed, and its cost is most of a lookup.
#[derive(Default, Clone, Copy)]
pub(super) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
}

type Ids = DashMap<Uuid, u64, std::hash::BuildHasherDefault<IdHasher>>;

pub(super) struct Shared {
    /// Revoked session -> its expiry (seconds).
    pub(super) sessions: Ids,
    /// Whether any user has a cutoff (most requests then skip that lookup).
    pub(super) any_cutoff: std::sync::atomic::AtomicBool,
    /// User id -> (cutoff in ms, when the entry stops mattering).
    pub(super) users: DashMap<String, (u64, u64)>,
    /// The view is trustworthy until this instant (ms since `epoch`; 0: never read).
    fresh_until: AtomicU64,
    pub(super) epoch: Instant,
    pub(super) max_lag: Duration,
    pub(super) poll_interval: Duration,
    pub(super) clock: Clock,
    /// Hooks told of each user whose sessions were all revoked.
    pub(super) on_user: Vec<UserHook>,
}

impl fmt::Debug for RevocationView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationView")
            .field("revoked_sessions", &self.shared.sessions.len())
            .field("users", &self.shared.users.len())
            .field("fresh", &self.is_fresh())
            .finish_non_exhaustive()
    }
}

/// Configures and starts a [`RevocationView`].
#[must_use]
pub struct RevocationViewBuilder {
    log: Arc<dyn RevocationLog>,
    max_lag: Duration,
    poll_interval: Duration,
    clock: Clock,
    on_user: Vec<UserHook>,
}

impl fmt::Debug for RevocationViewBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationViewBuilder")
            .field("log", &self.log)
            .field("max_lag", &self.max_lag)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl RevocationViewBuilder {
    /// How often the log is read when nothing wakes the reader (default
    /// 250 ms): the propagation delay of a store that cannot push, and the
    /// heartbeat of one that can.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long the view is trusted after its last successful read of the
    /// log (default 3 s, at least twice the poll interval).
    pub fn max_lag(mut self, max_lag: Duration) -> Self {
        self.max_lag = max_lag;
        self
    }

    /// The clock entries expire by (default the system clock; give the
    /// `Jwt`'s in tests that move time).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Calls `hook` with the user id of each revoke-all the view learns of:
    /// to drop the user from a [`UserCache`](crate::UserCache), say.
    pub fn on_user_revoked(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_user.push(Box::new(hook));
        self
    }

    /// Starts the view: a task on the current tokio runtime loads the log and
    /// follows it. The view answers [`ViewAnswer::Unknown`] until the first
    /// load ([`RevocationView::ready`] waits for it).
    pub fn start(self) -> RevocationView {
        let max_lag = self.max_lag.max(self.poll_interval * 2);
        let shared = Arc::new(Shared {
            sessions: Ids::default(),
            any_cutoff: std::sync::atomic::AtomicBool::new(false),
            users: DashMap::new(),
            fresh_until: AtomicU64::new(0),
            epoch: Instant::now(),
            max_lag,
            poll_interval: self.poll_interval,
            clock: self.clock,
            on_user: self.on_user,
        });
        super::follow::spawn(Arc::downgrade(&shared), self.log);
        RevocationView { shared }
    }
}

impl RevocationView {
    /// A view of `log`'s revocations (a store that keeps one: `MemoryStore`,
    /// the SQL stores).
    pub fn builder(log: Arc<dyn RevocationLog>) -> RevocationViewBuilder {
        RevocationViewBuilder {
            log,
            max_lag: Duration::from_secs(3),
            poll_interval: Duration::from_millis(250),
            clock: Clock::system(),
            on_user: Vec::new(),
        }
    }

    /// Whether a token of `session_id`, issued at `issued_at` (seconds) to
    /// `user_id`, is revoked, without I/O.
    pub fn check(&self, session_id: Uuid, user_id: &str, issued_at: u64) -> ViewAnswer {
        let s = &self.shared;
        if !self.is_fresh() {
            return ViewAnswer::Unknown;
        }
        if s.sessions.contains_key(&session_id) {
            return ViewAnswer::Revoked;
        }
        if let Some(entry) = s
            .any_cutoff
            .load(Ordering::Acquire)
            .then(|| s.users.get(user_id))
            .flatten()
        {
            let cutoff_s = entry.0 / 1000;
            if issued_at < cutoff_s {
                return ViewAnswer::Revoked;
            }
            if issued_at == cutoff_s {
                return ViewAnswer::Unknown;
            }
        }
        ViewAnswer::NotRevoked
    }

    /// Whether the view read the log successfully within its bound.
    pub fn is_fresh(&self) -> bool {
        let until = self.shared.fresh_until.load(Ordering::Acquire);
        until != 0 && self.shared.now_ms() < until
    }

    /// Waits until the view is fresh, at most `timeout`; `Err` on timeout.
    pub async fn ready(&self, timeout: Duration) -> Result<(), ViewNotReady> {
        let deadline = Instant::now() + timeout;
        while !self.is_fresh() {
            if Instant::now() >= deadline {
                return Err(ViewNotReady);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Applies a revocation this instance has just committed, before the
    /// store's log brings it (see `Sessions::with_revocation_view`).
    pub(crate) fn note(&self, revoked: Revoked) {
        self.shared.apply(&Revocation::new(0, revoked));
    }

    /// Revoked sessions held now.
    pub fn revoked_sessions(&self) -> usize {
        self.shared.sessions.len()
    }

    /// Users with a revoke-all cutoff held now.
    pub fn users_with_cutoff(&self) -> usize {
        self.shared.users.len()
    }
}

/// The view did not read the log within the time given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the revocation view has not read the store's log yet")]
pub struct ViewNotReady;

impl Shared {
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX / 2)
    }

    /// Trusted for `max_lag` from `read_started` (when the successful read began).
    pub(super) fn mark_fresh(&self, read_started: Instant) {
        let started = u64::try_from(read_started.duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX / 2);
        let until = started
            .saturating_add(u64::try_from(self.max_lag.as_millis()).unwrap_or(u64::MAX / 2))
            .max(1);
        self.fresh_until.fetch_max(until, Ordering::AcqRel);
    }

    /// Applies one log entry (idempotent: an entry read twice changes nothing).
    pub(super) fn apply(&self, entry: &Revocation) {
        let now = self.clock.now_secs();
        if entry.revoked.expires_at() <= now {
            return;
        }
        match &entry.revoked {
            Revoked::Session {
                session_id,
                expires_at,
            } => {
                self.sessions.insert(*session_id, *expires_at);
            }
            Revoked::User {
                user_id,
                cutoff_ms,
                expires_at,
            } => {
                let mut slot = self.users.entry(user_id.clone()).or_insert((0, 0));
                self.any_cutoff.store(true, Ordering::Release);
                let newer = *cutoff_ms > slot.0;
                slot.0 = slot.0.max(*cutoff_ms);
                slot.1 = slot.1.max(*expires_at);
                drop(slot);
                if newer {
                    for hook in &self.on_user {
                        hook(user_id);
                    }
                }
            }
        }
    }

    /// Drops what has expired.
    pub(super) fn sweep(&self) {
        let now = self.clock.now_secs();
        self.sessions.retain(|_, expires_at| *expires_at > now);
        self.users.retain(|_, (_, expires_at)| *expires_at > now);
    }
}
