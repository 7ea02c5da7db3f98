//! The one jittered backoff of the crate's stores: how long a writer that lost a
//! race waits before it tries again, so the writers that collided spread out
//! instead of colliding again in lockstep.

use std::time::Duration;

use uuid::Uuid;

/// The pause before retry `attempt` of a write that lost a race ("full jitter"):
/// none before the first try (`attempt` 0), then a whole number of `unit`s drawn
/// at random from 0 to `unit × 2^(attempt − 1)` inclusive, the doubling stopping
/// after `max_doublings` (so the longest pause is `unit × 2^max_doublings`).
///
/// A whole number of `unit`s, not a finer random duration, so a unit of one
/// millisecond keeps the pauses on Tokio's timer ticks, and a pause of zero (no
/// sleep at all) stays possible at every attempt.
pub(crate) fn jittered(attempt: u32, unit: Duration, max_doublings: u32) -> Duration {
    let Some(doublings) = attempt.checked_sub(1) else {
        return Duration::ZERO;
    };
    let spread = 1u64 << doublings.min(max_doublings).min(31);
    // A v4 UUID's low 64 bits: 62 random ones under the 2 variant bits on top.
    let units = Uuid::new_v4().as_u64_pair().1 % (spread + 1);
    unit.saturating_mul(u32::try_from(units).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let ms = Duration::from_millis(1);
        assert_eq!(jittered(0, ms, 5), Duration::ZERO);
        for attempt in 1..40 {
            let ceiling = ms * (1 << (attempt - 1).min(5));
            for _ in 0..50 {
                let pause = jittered(attempt, ms, 5);
                assert!(pause <= ceiling, "{attempt}: {pause:?}");
                assert_eq!(pause.subsec_nanos() % 1_000_000, 0);
            }
        }
        assert!(
            jittered(u32::MAX, Duration::from_secs(1), u32::MAX) <= Duration::from_secs(1 << 31)
        );
    }
}
