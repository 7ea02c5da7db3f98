//! Shared by the benches: the interleaved measurement, and a future that must be
//! ready on its first poll.
//!
//! On a shared, noisy machine a neighbour's load comes and goes over seconds.
//! Criterion measures one variant after another, so two variants can see
//! different loads, and their ratio drifts from run to run. Here every round
//! runs one batch of each variant, back to back (starting with a different
//! variant each round), and ratios are taken *within* a round, then the median
//! over the rounds is kept: the load a round sees hits all its variants alike.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Polls `f` once with a no-op waker: every service benched here is ready at
/// once, so the figures are the work itself, not a runtime's scheduling.
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("benchmarked future was not ready"),
    }
}

/// A labelled closure doing one unit of work (one request).
pub struct Variant<'a> {
    pub label: &'static str,
    pub run: Box<dyn FnMut() + 'a>,
}

impl<'a> Variant<'a> {
    pub fn new(label: &'static str, run: impl FnMut() + 'a) -> Self {
        Variant {
            label,
            run: Box::new(run),
        }
    }
}

/// Per-round times (ns per call) of each variant.
pub struct Rounds {
    pub labels: Vec<&'static str>,
    /// `times[variant][round]`.
    pub times: Vec<Vec<f64>>,
    pub batches: Vec<usize>,
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Rounds {
    fn index(&self, label: &str) -> usize {
        self.labels
            .iter()
            .position(|l| *l == label)
            .unwrap_or_else(|| panic!("no variant {label}"))
    }

    /// The median time per call of one variant, ns.
    pub fn median_ns(&self, label: &str) -> f64 {
        median(self.times[self.index(label)].clone())
    }

    /// The median over rounds of `f(times of this round, by label)`.
    pub fn median_of(&self, f: impl Fn(&dyn Fn(&str) -> f64) -> f64) -> f64 {
        let rounds = self.times[0].len();
        median(
            (0..rounds)
                .map(|r| f(&|label: &str| self.times[self.index(label)][r]))
                .collect(),
        )
    }

    /// `(a - base) / denom` per round, median: the cost `a` adds over `base`,
    /// in units of `denom`.
    pub fn added_ratio(&self, a: &str, base: &str, denom: &str) -> f64 {
        self.median_of(|t| (t(a) - t(base)) / t(denom))
    }

    /// `a / b` per round, median.
    pub fn ratio(&self, a: &str, b: &str) -> f64 {
        self.median_of(|t| t(a) / t(b))
    }

    /// The interquartile range of `(a - base) / denom` over the rounds.
    pub fn added_ratio_iqr(&self, a: &str, base: &str, denom: &str) -> (f64, f64) {
        let rounds = self.times[0].len();
        let (ia, ib, id) = (self.index(a), self.index(base), self.index(denom));
        let mut v: Vec<f64> = (0..rounds)
            .map(|r| (self.times[ia][r] - self.times[ib][r]) / self.times[id][r])
            .collect();
        v.sort_by(|x, y| x.total_cmp(y));
        (v[rounds / 4], v[rounds * 3 / 4])
    }

    pub fn print_medians(&self, title: &str) {
        println!(
            "{title}: interleaved, {} rounds, median ns per call (batch size)",
            self.times[0].len()
        );
        for (i, label) in self.labels.iter().enumerate() {
            println!(
                "  {label:<44} {:>11.0} ns  ({})",
                median(self.times[i].clone()),
                self.batches[i]
            );
        }
    }
}

/// Runs `rounds` rounds; in each, one batch of every variant. A batch is sized
/// so that it lasts about `target` (calibrated once, per variant).
pub fn interleaved(variants: &mut [Variant<'_>], rounds: usize, target: Duration) -> Rounds {
    let batches: Vec<usize> = variants
        .iter_mut()
        .map(|v| {
            (v.run)(); // warm up
            // Double until a run lasts target/8, then keep the fastest of five
            // such runs: a preemption during calibration must not shrink the batch.
            let time = |v: &mut Variant<'_>, n: usize| {
                let start = Instant::now();
                for _ in 0..n {
                    (v.run)();
                }
                start.elapsed()
            };
            let mut n = 1usize;
            while time(v, n) < target / 8 && n < 1 << 20 {
                n *= 2;
            }
            let best = (0..5).map(|_| time(v, n)).min().unwrap_or(target);
            let per = best.as_secs_f64() / n as f64;
            ((target.as_secs_f64() / per).round() as usize).max(1)
        })
        .collect();
    let k = variants.len();
    let mut times = vec![Vec::with_capacity(rounds); k];
    for round in 0..rounds {
        for j in 0..k {
            let i = (round + j) % k;
            let v = &mut variants[i];
            let start = Instant::now();
            for _ in 0..batches[i] {
                (v.run)();
            }
            times[i].push(start.elapsed().as_nanos() as f64 / batches[i] as f64);
        }
    }
    Rounds {
        labels: variants.iter().map(|v| v.label).collect(),
        times,
        batches,
    }
}
