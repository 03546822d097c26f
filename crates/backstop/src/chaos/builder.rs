//! [`ChaosBuilder`]: the faults and their rates, the latency, the seed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use super::{Chaos, Fault, Inner};
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;

/// Builds a [`Chaos`]; see [`Chaos::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct ChaosBuilder {
    name: Arc<str>,
    faults: Vec<(f64, Fault)>,
    latency: Option<(f64, Duration)>,
    seed: Option<u64>,
    enabled: bool,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ChaosBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosBuilder")
            .field("name", &self.name)
            .field("faults", &self.faults)
            .field("latency", &self.latency)
            .field("seed", &self.seed)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl ChaosBuilder {
    pub(super) fn new(name: Arc<str>) -> Self {
        Self { name, faults: Vec::new(), latency: None, seed: None, enabled: true, clock: Arc::new(SystemClock) }
    }

    /// Injects `fault` into this share of attempts (0 ..= 1). Several
    /// faults may be given; their rates add up to at most 1, and one
    /// attempt gets at most one fault.
    pub fn fault(mut self, rate: f64, fault: Fault) -> Self {
        self.faults.push((rate, fault));
        self
    }

    /// Delays this share of attempts (0 ..= 1) by `delay` (at most 1 h)
    /// before they are made (or fail with their fault).
    pub fn latency(mut self, rate: f64, delay: Duration) -> Self {
        self.latency = Some((rate, delay));
        self
    }

    /// The seed of the sequence of decisions (default: a random one): the
    /// same seed and the same order of attempts give the same faults.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Whether it starts on (default `true`; see
    /// [`Chaos::set_enabled`]): build it off from a setting, turn it on
    /// later.
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// The clock injected delays sleep on (default: [`SystemClock`]); a
    /// [`ManualClock`](crate::ManualClock) in tests.
    pub fn clock<C: Clock + Clone + 'static>(mut self, clock: &C) -> Self {
        self.clock = Arc::new(clock.clone());
        self
    }

    /// Checks the rates and returns the `Chaos`, or the first bad setting.
    pub fn build(self) -> Result<Chaos, ConfigError> {
        let err = |field, problem: String, allowed| Err(ConfigError::of("chaos", field, problem, allowed));
        let mut below = 0.0;
        let mut faults = Vec::with_capacity(self.faults.len());
        for (rate, fault) in self.faults {
            if !(0.0..=1.0).contains(&rate) {
                return err("fault", format!("has rate {rate} for {fault:?}"), "0 ..= 1");
            }
            below += rate;
            faults.push((below, fault));
        }
        if below > 1.0 + 1e-9 {
            return err("fault", format!("rates add up to {below}"), "rates adding up to 1 at most");
        }
        let (latency_rate, latency) = self.latency.unwrap_or((0.0, Duration::ZERO));
        if !(0.0..=1.0).contains(&latency_rate) {
            return err("latency", format!("has rate {latency_rate}"), "0 ..= 1");
        }
        if latency > Duration::from_secs(3600) {
            return err("latency", format!("is {latency:?}"), "at most 1 h");
        }
        Ok(Chaos {
            inner: Arc::new(Inner {
                name: self.name,
                faults,
                latency_rate,
                latency,
                seed: self.seed.unwrap_or_else(|| fastrand::u64(..)),
                drawn: AtomicU64::new(0),
                enabled: AtomicBool::new(self.enabled),
                injected: AtomicU64::new(0),
                delayed: AtomicU64::new(0),
                clock: self.clock,
            }),
        })
    }
}
