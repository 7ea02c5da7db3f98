//! The one clock every time check reads: the system clock in production, a
//! manual clock in tests, so tests move time instead of sleeping.
//!
//! It is set once, on the [`Jwt`](crate::Jwt) ([`JwtBuilder::clock`](crate::JwtBuilder::clock)),
//! and everything built on that `Jwt` (the layer, the verified-token cache,
//! [`Sessions`](crate::Sessions) and their endpoints) reads it.
//!
//! ```
//! use std::time::Duration;
//! use tower_jwt_auth::Clock;
//! let clock = Clock::manual(1_000);
//! assert_eq!(clock.now_secs(), 1_000);
//! clock.advance(Duration::from_secs(30));
//! assert_eq!(clock.now_secs(), 1_030);
//! // Clones share one time.
//! let other = clock.clone();
//! other.advance(Duration::from_millis(500));
//! assert_eq!(clock.now_millis(), 1_030_500);
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of "now", cheap to clone. See the [module docs](self).
#[derive(Clone, Default)]
pub struct Clock {
    /// Milliseconds since the Unix epoch, when the clock is manual.
    manual: Option<Arc<AtomicU64>>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::System"),
            Some(ms) => write!(f, "Clock::Manual({} ms)", ms.load(Ordering::Relaxed)),
        }
    }
}

impl Clock {
    /// The system clock (the default).
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// A clock that stands still at `secs` seconds since the Unix epoch until
    /// [`Clock::advance`] moves it. Clones share its time.
    pub fn manual(secs: u64) -> Self {
        Clock {
            manual: Some(Arc::new(AtomicU64::new(secs.saturating_mul(1000)))),
        }
    }

    /// A manual clock starting at the system's current time.
    pub fn manual_now() -> Self {
        let clock = Clock::manual(0);
        clock.set_millis(system_millis());
        clock
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Moves a manual clock forward; `false` (nothing done) on the system clock.
    pub fn advance(&self, by: Duration) -> bool {
        let Some(ms) = &self.manual else {
            return false;
        };
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        ms.fetch_add(by, Ordering::SeqCst);
        true
    }

    fn set_millis(&self, millis: u64) {
        if let Some(ms) = &self.manual {
            ms.store(millis, Ordering::SeqCst);
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> u64 {
        match &self.manual {
            None => system_millis(),
            Some(ms) => ms.load(Ordering::SeqCst),
        }
    }

    /// Whole seconds since the Unix epoch (the unit of JWT dates).
    pub fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }
}

fn system_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch on the system clock, for code that has no
/// [`Jwt`](crate::Jwt) at hand (a store's housekeeping, a cookie's `Max-Age`).
pub(crate) fn system_secs() -> u64 {
    system_millis() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_moves_and_ignores_advance() {
        let c = Clock::system();
        assert!(!c.advance(Duration::from_secs(1)));
        assert!(c.now_secs() > 1_700_000_000);
        assert!(!c.is_manual());
    }

    #[test]
    fn manual_clock_starts_near_now() {
        let c = Clock::manual_now();
        assert!(c.now_secs().abs_diff(system_secs()) <= 1);
    }
}
