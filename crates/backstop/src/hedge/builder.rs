//! [`HedgeBuilder`] and [`HedgeDelay`]: a hedge's settings, checked.

use std::sync::Arc;
use std::time::Duration;

use super::latency::Latencies;
use super::{Hedge, Inner};
use crate::budget::RetryBudget;
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::pacer::Pacer;

/// How long a call runs before it is hedged.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum HedgeDelay {
    /// Always this long.
    Fixed(Duration),
    /// The `quantile` of recent latencies (see the [module docs](super)),
    /// once the window holds `min_samples` calls; no hedge before.
    Percentile {
        /// 0.5 ..= 0.999 (p95: 0.95).
        quantile: f64,
        /// Calls the window must hold first (≥ 1).
        min_samples: u32,
    },
}

impl HedgeDelay {
    /// Hedge after `delay`, whatever the latencies.
    pub const fn fixed(delay: Duration) -> Self {
        HedgeDelay::Fixed(delay)
    }

    /// Hedge after the `quantile` (0.5 ..= 0.999) of recent latencies, once
    /// 20 calls are in the window.
    pub const fn percentile(quantile: f64) -> Self {
        HedgeDelay::Percentile { quantile, min_samples: 20 }
    }

    /// A percentile delay waiting for `n` calls in the window first (≥ 1).
    /// A fixed delay is unchanged.
    pub const fn min_samples(self, n: u32) -> Self {
        match self {
            HedgeDelay::Percentile { quantile, .. } => HedgeDelay::Percentile { quantile, min_samples: n },
            fixed => fixed,
        }
    }
}

impl Default for HedgeDelay {
    /// p95, after 20 calls.
    fn default() -> Self {
        HedgeDelay::percentile(0.95)
    }
}

/// Builds a [`Hedge`]; made by [`Hedge::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct HedgeBuilder {
    name: Arc<str>,
    delay: HedgeDelay,
    max_hedges: u32,
    ratio: f64,
    min_per_sec: f64,
    window: Duration,
    budget: Option<RetryBudget>,
    pacer: Option<Pacer>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for HedgeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HedgeBuilder")
            .field("name", &self.name)
            .field("delay", &self.delay)
            .field("max_hedges", &self.max_hedges)
            .field("ratio", &self.ratio)
            .field("min_per_sec", &self.min_per_sec)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl HedgeBuilder {
    pub(super) fn new(name: Arc<str>) -> Self {
        HedgeBuilder {
            name,
            delay: HedgeDelay::default(),
            max_hedges: 1,
            ratio: 0.05,
            min_per_sec: 1.0,
            window: Duration::from_secs(2),
            budget: None,
            pacer: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// How long a call runs before it is hedged (default: p95 after 20 calls).
    pub fn delay(mut self, delay: HedgeDelay) -> Self {
        self.delay = delay;
        self
    }

    /// At most this many hedges per call, each one delay after the last
    /// (default 1; allowed: 1 ..= 10).
    pub fn max_hedges(mut self, n: u32) -> Self {
        self.max_hedges = n;
        self
    }

    /// Hedges may be this share of the window's calls (default 0.05;
    /// allowed: 0 ..= 1), besides [`min_per_sec`](Self::min_per_sec).
    /// Ignored with a [`budget`](Self::budget).
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// Hedges allowed each second whatever the traffic (default 1; allowed:
    /// 0 ..= 1 000 000), so a quiet service may still hedge; when not 0, at
    /// least one a window (a window under a second). Ignored with a
    /// [`budget`](Self::budget).
    pub fn min_per_sec(mut self, n: f64) -> Self {
        self.min_per_sec = n;
        self
    }

    /// The window latencies and the hedges' share are counted over (default
    /// 2 s; allowed: 10 ms ..= 1 h): a shift in latency is followed within it.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Hedges draw on `budget` instead of the hedge's own share (one retry
    /// each): one budget for every extra request. Its requests are counted
    /// by the runs it is given to (give the same budget to the retry run
    /// around the hedge).
    pub fn budget(mut self, budget: &RetryBudget) -> Self {
        self.budget = Some(budget.clone());
        self
    }

    /// Each hedge takes a slot from `pacer`, and only one free now: no hedge
    /// while the pacer makes calls wait (give it the pacer the calls' runs use).
    pub fn pacer(mut self, pacer: &Pacer) -> Self {
        self.pacer = Some(pacer.clone());
        self
    }

    /// The clock (default: [`SystemClock`]); a [`ManualClock`](crate::ManualClock) in tests.
    pub fn clock<C: Clock + Clone + 'static>(mut self, clock: &C) -> Self {
        self.clock = Arc::new(clock.clone());
        self
    }

    /// Checks every setting and returns the hedge, or the first bad setting.
    pub fn build(self) -> Result<Hedge, ConfigError> {
        let err = |field, problem: String, allowed| Err(ConfigError::of("hedge", field, problem, allowed));
        if let HedgeDelay::Percentile { quantile, min_samples } = self.delay {
            if !(0.5..=0.999).contains(&quantile) {
                return err("delay.quantile", format!("is {quantile:?}"), "0.5 ..= 0.999");
            }
            if min_samples == 0 {
                return err("delay.min_samples", "is 0".into(), "1 or more");
            }
        }
        if !(1..=10).contains(&self.max_hedges) {
            return err("max_hedges", format!("is {}", self.max_hedges), "1 ..= 10");
        }
        if !(0.0..=1.0).contains(&self.ratio) {
            return err("ratio", format!("is {:?}", self.ratio), "0 ..= 1");
        }
        if !(0.0..=1e6).contains(&self.min_per_sec) {
            return err("min_per_sec", format!("is {:?}", self.min_per_sec), "0 ..= 1000000");
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&self.window) {
            return err("window", format!("is {:?}", self.window), "10ms ..= 1h");
        }
        let origin = self.clock.now();
        Ok(Hedge {
            inner: Arc::new(Inner {
                latencies: Latencies::new(self.window),
                name: self.name,
                delay: self.delay,
                max_hedges: self.max_hedges,
                ratio: self.ratio,
                min_per_sec: self.min_per_sec,
                window: self.window,
                budget: self.budget,
                pacer: self.pacer,
                clock: self.clock,
                origin,
            }),
        })
    }
}
