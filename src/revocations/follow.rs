//! The task behind a [`RevocationView`](super::RevocationView): reads the
//! whole log once, then every entry after the last one applied, waking when
//! the store pushes or the poll interval passes. Entries are applied in log
//! order; a gap in the sequence (an entry whose transaction has not committed
//! yet, on a database sequence) is read again until it fills, or for at most
//! [`GAP_WAIT`] (a transaction that rolled back leaves a gap for good).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::view::Shared;
use crate::store::log::RevocationLog;

/// How long a gap in the log's sequence is waited for.
const GAP_WAIT: Duration = Duration::from_secs(10);
/// Entries read per call.
const PAGE: usize = 1000;
/// How often expired entries are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The widest gap waited for: past it, the log's sequence is taken as sparse
/// (a jumped sequence) and the reader moves on.
const MAX_GAP: u64 = 10_000;

/// Where the reader is in the log: everything at or below `low` applied;
/// above it, the entries seen and the gaps being waited for.
#[derive(Default)]
struct Position {
    low: u64,
    seen: BTreeSet<u64>,
    gaps: BTreeMap<u64, Instant>,
    loaded: bool,
    /// The log's entries appear in sequence order: nothing to wait for.
    ordered: bool,
}

impl Position {
    /// Takes in the sequence numbers read after `low`; moves `low` over what
    /// is contiguous (or waited for long enough).
    fn advance(&mut self, seqs: impl IntoIterator<Item = u64>, now: Instant) {
        let mut seqs: Vec<u64> = seqs.into_iter().filter(|s| *s > self.low).collect();
        seqs.sort_unstable();
        if !self.loaded {
            // The first read is the whole log: what is missing below its first
            // entry was purged, not pending.
            if let Some(first) = seqs.first() {
                self.low = first - 1;
            }
            self.loaded = true;
        }
        if self.ordered {
            self.low = seqs.last().copied().unwrap_or(self.low).max(self.low);
            return;
        }
        self.seen.extend(seqs);
        let top = self.seen.last().copied().unwrap_or(self.low);
        if top - self.low > MAX_GAP {
            self.low = top;
            self.seen.clear();
            self.gaps.clear();
            return;
        }
        for s in self.low + 1..top {
            if !self.seen.contains(&s) {
                self.gaps.entry(s).or_insert(now);
            }
        }
        loop {
            let next = self.low + 1;
            let given_up = self
                .gaps
                .get(&next)
                .is_some_and(|since| now.duration_since(*since) >= GAP_WAIT);
            if !self.seen.remove(&next) && !given_up {
                break;
            }
            self.gaps.remove(&next);
            self.low = next;
        }
    }

    /// The highest position seen (for the store's wake-up).
    fn top(&self) -> u64 {
        self.seen.last().copied().unwrap_or(self.low)
    }
}

pub(super) fn spawn(view: Weak<Shared>, log: Arc<dyn RevocationLog>) {
    tokio::spawn(async move { follow(view, log).await });
}

async fn follow(view: Weak<Shared>, log: Arc<dyn RevocationLog>) {
    let mut pos = Position {
        ordered: log.ordered_at_commit(),
        ..Position::default()
    };
    let mut swept = Instant::now();
    let mut failures = 0u32;
    loop {
        // Never a busy loop that starves the runtime, whatever the store answers.
        tokio::task::yield_now().await;
        let Some(shared) = view.upgrade() else {
            return;
        };
        let started = Instant::now();
        match log.revocations_after(pos.low, PAGE).await {
            Ok(entries) => {
                failures = 0;
                for entry in &entries {
                    shared.apply(entry);
                }
                pos.advance(entries.iter().map(|e| e.seq), Instant::now());
                if entries.len() < PAGE {
                    // The whole log after `low` was read: current as of `started`.
                    shared.mark_fresh(started);
                }
                if entries.len() == PAGE {
                    continue;
                }
            }
            Err(_e) => {
                failures = failures.saturating_add(1);
                #[cfg(feature = "tracing")]
                tracing::warn!(error = %_e, failures, "the revocation view cannot read the store's log");
            }
        }
        if swept.elapsed() >= SWEEP_EVERY {
            shared.sweep();
            swept = Instant::now();
        }
        let interval = shared.poll_interval;
        drop(shared);
        if failures > 0 {
            // A failing store: retry at the poll interval, no faster.
            tokio::time::sleep(interval).await;
        } else if log.wait_for_revocations(pos.top(), interval).await.is_err() {
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_waited_for_then_skipped() {
        let t0 = Instant::now();
        let mut p = Position::default();
        p.advance([5, 6, 7], t0);
        assert_eq!(p.low, 7, "the first read starts at its first entry");
        p.advance([8, 10], t0);
        assert_eq!(p.low, 8, "9 is pending");
        p.advance([10, 11], t0 + Duration::from_secs(1));
        assert_eq!(p.low, 8);
        p.advance([9, 10, 11], t0 + Duration::from_secs(2));
        assert_eq!(p.low, 11, "9 committed");
        p.advance([13], t0 + Duration::from_secs(3));
        assert_eq!(p.low, 11);
        p.advance([13], t0 + Duration::from_secs(14));
        assert_eq!(p.low, 13, "12 rolled back: skipped after the wait");
        p.advance([13 + MAX_GAP + 5], t0 + Duration::from_secs(15));
        assert_eq!(
            p.low,
            13 + MAX_GAP + 5,
            "a jumped sequence is not waited for"
        );
    }

    #[test]
    fn an_ordered_log_has_no_gaps_to_wait_for() {
        let mut p = Position {
            ordered: true,
            ..Position::default()
        };
        p.advance(
            [1_796_457_179_356_000_000, 1_796_457_179_359_000_000],
            Instant::now(),
        );
        assert_eq!(p.low, 1_796_457_179_359_000_000);
        assert!(p.gaps.is_empty() && p.seen.is_empty());
    }
}
