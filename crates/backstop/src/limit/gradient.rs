//! The adaptive limit: [`Gradient`], Netflix's Gradient2 (concurrency-limits).
//!
//! Each call's round trip is a sample. A long-term average of them (an
//! exponential average over `long_window` samples) stands for the latency
//! the downstream has when it is not overloaded; the latest sample for now.
//! While now is within `tolerance` (1.5×) of the long average the limit
//! grows by about `√limit` a step; past it, the limit shrinks by the ratio
//! (at most halving a step, down to `min_limit`); each step moves the limit only by `smoothing`
//! (0.2) of the way. It does not grow while fewer than half its places are
//! used (no demand, no evidence), and a long average far above the samples
//! (after a burst of slow calls) decays, so the limit recovers.
//!
//! Chosen over Vegas, whose minimum round trip goes stale when the
//! downstream's baseline moves, and over Envoy's gradient, which pauses
//! traffic to re-measure it.

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
    /// Starts at 20, never below 1; tolerance 1.5, smoothing 0.2, a long
    /// window of 600 samples.
    fn default() -> Self {
        Gradient { initial: 20, min_limit: 1, tolerance: 1.5, smoothing: 0.2, long_window: 600 }
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

    /// How much slower than the long average a call may be before the
    /// limit shrinks (default 1.5; allowed: 1 ..= 10).
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

    /// Samples the long average spans (default 600; allowed: 10 ..= 1 000 000).
    pub fn long_window(mut self, samples: u32) -> Self {
        self.long_window = samples;
        self
    }
}

/// The limit's state: the estimate and the long average.
#[derive(Debug)]
pub(super) struct Estimator {
    settings: Gradient,
    max: f64,
    limit: f64,
    /// The long average of round trips, in seconds; `None` before a sample.
    long: Option<f64>,
}

impl Estimator {
    pub(super) fn new(settings: Gradient, max: u32) -> Self {
        Estimator { settings, max: f64::from(max), limit: f64::from(settings.initial), long: None }
    }

    pub(super) fn limit(&self) -> u32 {
        self.limit as u32
    }

    /// One call's round trip, with `in_flight` calls running when it ended:
    /// the new limit.
    pub(super) fn sample(&mut self, rtt_secs: f64, in_flight: u32) -> u32 {
        let s = self.settings;
        let short = rtt_secs.max(1e-9);
        let alpha = 2.0 / (f64::from(s.long_window) + 1.0);
        let mut long = self.long.map_or(short, |l| l + alpha * (short - l));
        if long / short > 2.0 {
            long *= 0.95; // after a burst of slow calls, forget it faster
        }
        self.long = Some(long);
        if f64::from(in_flight) < self.limit / 2.0 {
            return self.limit(); // not used: no evidence to grow on
        }
        let gradient = (s.tolerance * long / short).clamp(0.5, 1.0);
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
        for _ in 0..200 {
            limit = e.sample(0.010, limit);
        }
        assert_eq!(limit, 100);
    }

    #[test]
    fn slower_calls_shrink_it_and_it_recovers() {
        let mut e = Estimator::new(Gradient::default(), 100);
        let mut limit = 20;
        for _ in 0..300 {
            limit = e.sample(0.010, limit);
        }
        for _ in 0..30 {
            limit = e.sample(0.040, limit); // 4x slower: overloaded
        }
        assert!(limit < 40, "shrank to {limit}");
        let low = limit;
        for _ in 0..300 {
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
