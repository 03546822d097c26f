//! The adaptive limit: [`Gradient`], after Netflix's Gradient2
//! (concurrency-limits), with a re-measured minimum as its baseline.
//!
//! Each call's round trip is a sample. The limit moves once per *window* of
//! `limit` samples (about once a round trip), from the window's mean round
//! trip against a *baseline*: the shortest round trip with no queue. While
//! the mean is within `tolerance` (1.5×) of the baseline the limit grows by
//! about `√limit` a window; past it, it shrinks by the ratio (at most
//! halving, down to `min_limit`); each move goes only `smoothing` (0.2) of
//! the way. It does not grow while fewer than half its places are used (no
//! demand, no evidence). Every `long_window` samples (2,000) the baseline
//! is re-measured: the limit drops to a quarter for two windows (the
//! downstream's queue drains, then calls meet none), as Envoy's adaptive
//! concurrency filter does.
//!
//! Why not Gradient2 as written: its baseline is a long average of the
//! samples, which under sustained overload follows the queue up, so the
//! limit keeps growing with it; and it moves at every sample, overshooting
//! by a round trip's worth of samples. Against a server of 16 places
//! offered twice its capacity (`backstop-bench`'s `overload`) that limit
//! swung between 1 and 52 and let through 54 % of the capacity with a p99
//! 7× the unloaded latency. A plain minimum of recent samples creeps up the
//! same way (no call meets an empty queue); Vegas's minimum never expires,
//! so a downstream whose latency rises for good is throttled for good
//! (tower-resilience's Vegas let the queue grow until every call timed out
//! in the same benchmark).

/// The settings of an adaptive [`ConcurrencyLimit`](super::ConcurrencyLimit)
/// (see the module docs); give them to
/// [`ConcurrencyLimitBuilder::adaptive`](super::ConcurrencyLimitBuilder::adaptive).
/// The limit moves between `min_limit` and the builder's `max_concurrent`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gradient {
    pub(super) initial: u32,
    pub(super) min_limit: u32,
    pub(super) tolerance: f64,
    pub(super) smoothing: f64,
    pub(super) long_window: u32,
}

impl Default for Gradient {
    /// Starts at 20, never below 1; tolerance 1.5, smoothing 0.2, the
    /// baseline re-measured every 2,000 samples.
    fn default() -> Self {
        Gradient { initial: 20, min_limit: 1, tolerance: 1.5, smoothing: 0.2, long_window: 2000 }
    }
}

impl Gradient {
    /// The limit before any sample (default 20; at most `max_concurrent`).
    pub fn initial(mut self, n: u32) -> Self {
        self.initial = n;
        self
    }

    /// The lowest the limit goes (default 1).
    pub fn min_limit(mut self, n: u32) -> Self {
        self.min_limit = n;
        self
    }

    /// How much slower than the baseline (the shortest recent round trip) a
    /// window's mean round trip may be before the limit shrinks (default
    /// 1.5; allowed: 1 ..= 10).
    pub fn tolerance(mut self, ratio: f64) -> Self {
        self.tolerance = ratio;
        self
    }

    /// The share of each step the limit moves (default 0.2; allowed:
    /// more than 0, at most 1).
    pub fn smoothing(mut self, share: f64) -> Self {
        self.smoothing = share;
        self
    }

    /// Samples between two re-measurements of the baseline (default 2,000;
    /// allowed: 10 ..= 1 000 000): the limit then drops to a quarter for two
    /// windows, one to let the downstream's queue drain, one to measure the
    /// round trip without it (so a downstream whose latency rises for good
    /// is re-learnt at the next one).
    pub fn long_window(mut self, samples: u32) -> Self {
        self.long_window = samples;
        self
    }
}

/// The limit's state: the estimate, the baseline, the window and the probe.
#[derive(Debug)]
pub(super) struct Estimator {
    settings: Gradient,
    max: f64,
    limit: f64,
    /// The latency with no queue: the shortest round trip of the last probe
    /// (or, before one, of every sample so far).
    baseline: f64,
    /// Samples since the last probe.
    taken: u32,
    /// The round trips of the current window (sum, count) and the most
    /// calls in flight during it: the limit moves once per window of
    /// `limit` samples, about once a round trip, with the window's mean.
    /// (Moving it at every sample overshoots: the samples answering a
    /// change come a round trip later.)
    window: (f64, u32, u32),
    probe: Probe,
}

/// Re-measuring the baseline: under sustained overload no call finds the
/// downstream's queue empty, so the shortest round trip of recent samples
/// creeps up with the queue, and the limit with it. Every `long_window`
/// samples the limit drops to a quarter for two windows: the first lets
/// the queue drain, the second measures the round trip without one.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Probe {
    Off,
    /// Samples left of calls let in before the drop.
    Draining(u32),
    /// Samples left, and the shortest so far.
    Measuring(u32, f64),
}

impl Estimator {
    pub(super) fn new(settings: Gradient, max: u32) -> Self {
        Estimator {
            settings,
            max: f64::from(max),
            limit: f64::from(settings.initial),
            baseline: f64::INFINITY,
            taken: 0,
            window: (0.0, 0, 0),
            probe: Probe::Off,
        }
    }

    /// The limit in force: the estimate, or a quarter of it while probing.
    pub(super) fn limit(&self) -> u32 {
        match self.probe {
            Probe::Off => self.limit as u32,
            _ => self.probe_limit(),
        }
    }

    fn probe_limit(&self) -> u32 {
        ((self.limit / 4.0) as u32).max(self.settings.min_limit.max(1))
    }

    pub(super) fn sample(&mut self, rtt_secs: f64, in_flight: u32) -> u32 {
        let s = self.settings;
        let short = rtt_secs.max(1e-9);
        match self.probe {
            Probe::Draining(left) => {
                self.probe = match left.saturating_sub(1) {
                    0 => Probe::Measuring(self.probe_limit(), f64::INFINITY),
                    left => Probe::Draining(left),
                };
                return self.limit();
            }
            Probe::Measuring(left, shortest) => {
                let shortest = shortest.min(short);
                self.probe = match left.saturating_sub(1) {
                    0 => {
                        self.baseline = shortest;
                        Probe::Off
                    }
                    left => Probe::Measuring(left, shortest),
                };
                return self.limit();
            }
            Probe::Off => {}
        }
        self.baseline = self.baseline.min(short);
        self.taken += 1;
        if self.taken >= s.long_window.max(1) {
            self.taken = 0;
            self.window = (0.0, 0, 0);
            self.probe = Probe::Draining((self.limit as u32).max(1));
            return self.limit();
        }
        let (sum, n, most) = (self.window.0 + short, self.window.1 + 1, self.window.2.max(in_flight));
        if f64::from(n) < self.limit {
            self.window = (sum, n, most);
            return self.limit();
        }
        self.window = (0.0, 0, 0);
        let mean = sum / f64::from(n);
        let gradient = (s.tolerance * self.baseline / mean).clamp(0.5, 1.0);
        if gradient >= 1.0 && f64::from(most) < self.limit / 2.0 {
            return self.limit(); // not used: no evidence to grow on
        }
        // Headroom (√limit) only while calls hold their latency: added to a
        // shrinking limit it would keep a small one from going down at all.
        let target = if gradient < 1.0 { self.limit * gradient } else { self.limit + self.limit.sqrt() };
        let smoothed = self.limit * (1.0 - s.smoothing) + target * s.smoothing;
        self.limit = smoothed.clamp(f64::from(s.min_limit.max(1)), self.max);
        self.limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_latency_grows_the_limit_to_its_cap() {
        let mut e = Estimator::new(Gradient::default(), 100);
        let mut limit = 20;
        for _ in 0..20_000 {
            limit = e.sample(0.010, limit);
        }
        assert_eq!(limit, 100);
    }

    #[test]
    fn slower_calls_shrink_it_and_it_recovers() {
        let mut e = Estimator::new(Gradient::default(), 100);
        let mut limit = 20;
        for _ in 0..20_000 {
            limit = e.sample(0.010, limit);
        }
        let before = limit;
        for _ in 0..1_000 {
            limit = e.sample(0.040, limit); // 4x slower: overloaded
        }
        assert!(limit < before / 2, "shrank to {limit} from {before}");
        let low = limit;
        for _ in 0..3_000 {
            limit = e.sample(0.010, limit);
        }
        assert!(limit > low * 2, "recovered to {limit} from {low}");
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let mut e = Estimator::new(Gradient::default(), 100);
        for _ in 0..200 {
            assert_eq!(e.sample(0.010, 3), 20);
        }
    }
}
