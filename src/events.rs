//! Session events: a typed hook the app registers with
//! [`Sessions::with_events`](crate::Sessions::with_events), called after the store
//! has committed each change.
//!
//! | [`EventKind`] | when | `tracing` level |
//! | --- | --- | --- |
//! | [`PairIssued`](EventKind::PairIssued) | a login recorded a new session | debug |
//! | [`Rotated`](EventKind::Rotated) | a refresh token was exchanged | debug |
//! | [`ReuseDetected`](EventKind::ReuseDetected) | a spent refresh token was replayed: the session is revoked (the sign of a stolen token) | warn |
//! | [`SessionRevoked`](EventKind::SessionRevoked) | a logout, or one session revoked by id | debug |
//! | [`AllSessionsRevoked`](EventKind::AllSessionsRevoked) | log out everywhere | debug |
//! | [`UserRefused`](EventKind::UserRefused) | a refresh named a missing or inactive user: the session is revoked | info |
//! | [`SlidingIssued`](EventKind::SlidingIssued), [`SlidingRenewed`](EventKind::SlidingRenewed) | a sliding token was issued or renewed | debug |
//!
//! Events carry the user id value, the session id and the time, never a token,
//! a `jti`, a key or a password. The `tracing` events (feature `tracing`,
//! target `tower_jwt_auth::events`) are emitted whether or not a hook is set.
//!
//! # Dispatch
//!
//! A hook never blocks or fails the request that caused its event. On a tokio
//! runtime each call runs on the blocking thread pool (`spawn_blocking`), so a
//! hook may block, sleep or panic: the response has already been decided. At
//! most [`MAX_IN_FLIGHT`] calls run at once; events beyond that are dropped
//! (and logged at warn level) rather than queued without bound. Outside a tokio
//! runtime the hook runs inline, inside `catch_unwind`. Calls are not ordered:
//! use [`SessionEvent::at`] to order them.
//!
//! ```
//! use std::sync::Arc;
//! use tower_jwt_auth::{Algorithm, Jwt, Key, MemoryStore, MemoryUsers, NoCustomClaims, Sessions};
//! use tower_jwt_auth::events::{EventKind, SessionEvent};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let jwt = Jwt::builder().signing_key(Key::hmac("k1", Algorithm::HS256, [5u8; 32]).unwrap()).build().unwrap();
//! let users = Arc::new(MemoryUsers::<u64, ()>::new());
//! users.insert(7, ());
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let sessions: Sessions<_> = Sessions::new(jwt, Arc::new(MemoryStore::new()), users)
//!     // Any `Fn(&SessionEvent)`; a channel sender works as a hook too.
//!     .with_events(move |event: &SessionEvent| {
//!         if let EventKind::ReuseDetected = event.kind {
//!             let _ = tx.send(event.clone()); // alert: a stolen token was replayed
//!         }
//!     });
//!
//! let first = sessions.login(&7, &NoCustomClaims, None).await.unwrap();
//! let second = sessions.refresh(&first.refresh).await.unwrap();
//! sessions.refresh(&second.refresh).await.unwrap();
//! assert!(sessions.refresh(&first.refresh).await.is_err()); // replayed
//! let alert = rx.recv().await.unwrap();
//! assert_eq!((alert.user_id.as_str(), alert.session_id), ("7", Some(first.session_id)));
//! # }
//! ```

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use uuid::Uuid;

/// How many hook calls may run at once; events past it are dropped and logged.
pub const MAX_IN_FLIGHT: usize = 1024;

/// What happened. Each kind is reported once, after the store committed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A login recorded a new session and minted its first access/refresh pair.
    PairIssued,
    /// A refresh token was exchanged for a new pair.
    Rotated {
        /// The token had been used moments before, within the reuse window, and
        /// its successor was never used: the same successor was answered again
        /// (a retry after a lost answer, or two tabs at once), nothing rotated.
        redelivered: bool,
    },
    /// A refresh token that was already used was presented again, outside the
    /// reuse window or after its successor was used: the whole session is now
    /// revoked. Whoever holds the
    /// session's tokens (the user or a thief) must log in again; this is the
    /// signal of a stolen token.
    ReuseDetected,
    /// One session was revoked: a logout, or a revocation by session id.
    SessionRevoked,
    /// Every session of a user was revoked (log out everywhere).
    AllSessionsRevoked {
        /// How many sessions were live.
        sessions: u64,
    },
    /// A refresh named a user who may no longer hold tokens: the session is revoked.
    UserRefused {
        /// Why.
        reason: RefusalReason,
    },
    /// A sliding token was issued (a new sliding session).
    SlidingIssued,
    /// A sliding token was renewed.
    SlidingRenewed {
        /// The renewal answered the same successor again, within the reuse
        /// window (nothing rotated).
        redelivered: bool,
    },
}

impl EventKind {
    /// A short stable name (`pair_issued`, `rotated`, `reuse_detected`,
    /// `session_revoked`, `all_sessions_revoked`, `user_refused`,
    /// `sliding_issued`, `sliding_renewed`), for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::PairIssued => "pair_issued",
            EventKind::Rotated { .. } => "rotated",
            EventKind::ReuseDetected => "reuse_detected",
            EventKind::SessionRevoked => "session_revoked",
            EventKind::AllSessionsRevoked { .. } => "all_sessions_revoked",
            EventKind::UserRefused { .. } => "user_refused",
            EventKind::SlidingIssued => "sliding_issued",
            EventKind::SlidingRenewed { .. } => "sliding_renewed",
        }
    }
}

/// Why a user was refused at refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The resolver found no such user (deleted since login).
    Missing,
    /// The user exists but is not active.
    Inactive,
    /// The claims-refresh hook refused the user
    /// ([`ClaimsError::Refused`](crate::ClaimsError::Refused)).
    ClaimsRefused,
}

/// One event: what happened, to whom, when. Owned and cheap to clone; it holds no
/// token, `jti`, key or secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionEvent {
    /// What happened.
    pub kind: EventKind,
    /// The user id value (the configured id field, as a string).
    pub user_id: String,
    /// The session concerned; `None` for [`EventKind::AllSessionsRevoked`].
    pub session_id: Option<Uuid>,
    /// When the store committed it (seconds since the Unix epoch).
    pub at: u64,
}

impl SessionEvent {
    /// An event (for tests of an app's own hook).
    pub fn new(
        kind: EventKind,
        user_id: impl Into<String>,
        session_id: Option<Uuid>,
        at: u64,
    ) -> Self {
        SessionEvent {
            kind,
            user_id: user_id.into(),
            session_id,
            at,
        }
    }
}

/// The hook: called once per [`SessionEvent`], after the store committed it.
///
/// Implemented for every `Fn(&SessionEvent) + Send + Sync + 'static` and for
/// tokio channel senders (an unbounded sender, or a bounded one that drops the
/// event when full). A hook may block or panic without affecting any request:
/// see the [module docs](self) for how it is run. Inside a hook running on
/// tokio's blocking pool, `tokio::spawn` works, for async work.
pub trait SessionEvents: Send + Sync + 'static {
    /// Handles one event.
    fn on_event(&self, event: &SessionEvent);
}

impl<F: Fn(&SessionEvent) + Send + Sync + 'static> SessionEvents for F {
    fn on_event(&self, event: &SessionEvent) {
        self(event)
    }
}

impl SessionEvents for tokio::sync::mpsc::UnboundedSender<SessionEvent> {
    fn on_event(&self, event: &SessionEvent) {
        // A closed receiver means nobody listens any more: nothing to do.
        let _ = self.send(event.clone());
    }
}

impl SessionEvents for tokio::sync::mpsc::Sender<SessionEvent> {
    fn on_event(&self, event: &SessionEvent) {
        if self.try_send(event.clone()).is_err() {
            dropped(event, "the event channel is full or closed");
        }
    }
}

/// The registered hook and its in-flight count.
pub(crate) struct Dispatcher {
    hook: Arc<dyn SessionEvents>,
    in_flight: Arc<AtomicUsize>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Decrements the in-flight count when a call ends, however it ends.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Dispatcher {
    pub(crate) fn new(hook: Arc<dyn SessionEvents>) -> Self {
        Dispatcher {
            hook,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Hands the event to the hook without waiting for it.
    pub(crate) fn dispatch(&self, event: SessionEvent) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            dropped(&event, "too many event hook calls in flight");
            return;
        }
        let guard = InFlight(self.in_flight.clone());
        let hook = self.hook.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                // The join handle is dropped: a panic stays inside the task.
                drop(handle.spawn_blocking(move || {
                    let _guard = guard;
                    hook.on_event(&event);
                }));
            }
            Err(_) => {
                let _guard = guard;
                if catch_unwind(AssertUnwindSafe(|| hook.on_event(&event))).is_err() {
                    hook_panicked(&event);
                }
            }
        }
    }
}

fn dropped(event: &SessionEvent, why: &'static str) {
    crate::metrics::event_dropped();
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "tower_jwt_auth::events",
        event = event.kind.name(),
        user_id = %event.user_id,
        "session event dropped: {why}"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (event, why);
}

fn hook_panicked(event: &SessionEvent) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "tower_jwt_auth::events",
        event = event.kind.name(),
        "the session event hook panicked"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = event;
}

/// The `tracing` event for `kind`: reuse at warn, refused users at info, the rest
/// at debug. User and session ids only.
#[cfg(feature = "tracing")]
pub(crate) fn trace(kind: &EventKind, user_id: &str, session_id: Option<Uuid>) {
    const T: &str = "tower_jwt_auth::events";
    let sid = session_id.map(tracing::field::display);
    match kind {
        EventKind::ReuseDetected => tracing::warn!(
            target: T, user_id, session_id = sid,
            "refresh token reuse detected: the session is revoked (a token may have been stolen)"
        ),
        EventKind::UserRefused { reason } => tracing::info!(
            target: T, user_id, session_id = sid, reason = ?reason,
            "refresh refused for a user who may not hold tokens: the session is revoked"
        ),
        EventKind::PairIssued => {
            tracing::debug!(target: T, user_id, session_id = sid, "session started")
        }
        EventKind::Rotated { redelivered } => tracing::debug!(
            target: T, user_id, session_id = sid, redelivered, "refresh token rotated"
        ),
        EventKind::SessionRevoked => {
            tracing::debug!(target: T, user_id, session_id = sid, "session revoked")
        }
        EventKind::AllSessionsRevoked { sessions } => tracing::debug!(
            target: T, user_id, sessions, "every session of the user revoked"
        ),
        EventKind::SlidingIssued => {
            tracing::debug!(target: T, user_id, session_id = sid, "sliding session started")
        }
        EventKind::SlidingRenewed { redelivered } => tracing::debug!(
            target: T, user_id, session_id = sid, redelivered, "sliding token renewed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn event() -> SessionEvent {
        SessionEvent::new(EventKind::PairIssued, "u", Some(Uuid::nil()), 1)
    }

    #[test]
    fn inline_without_runtime_catches_panics() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let d = Dispatcher::new(Arc::new(move |e: &SessionEvent| {
            s.lock().map(|mut v| v.push(e.clone())).ok();
        }));
        d.dispatch(event());
        assert_eq!(seen.lock().map(|v| v.len()).unwrap_or(0), 1);
        let p = Dispatcher::new(Arc::new(|_: &SessionEvent| panic!("hook failure")));
        p.dispatch(event());
        assert_eq!(p.in_flight.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn over_the_cap_is_dropped() {
        let d = Dispatcher::new(Arc::new(|_: &SessionEvent| {}));
        d.in_flight.store(MAX_IN_FLIGHT, Ordering::SeqCst);
        d.dispatch(event());
        assert_eq!(d.in_flight.load(Ordering::SeqCst), MAX_IN_FLIGHT);
    }
}
