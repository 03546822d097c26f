//! Client-side adaptive throttling (Google SRE, "Handling Overload"): when a
//! downstream refuses most requests, refuse some locally, before they cost it
//! anything.
//!
//! The throttle counts, over a sliding window, the `requests` made and the
//! `accepts` (requests the downstream did not refuse for overload). Each new
//! request is rejected locally with probability
//!
//! ```text
//! max(0, (requests − K · accepts) / (requests + 1))
//! ```
//!
//! With `K = 2` (the default) nothing is rejected until the downstream
//! refuses more than half; as refusals grow, so do local rejections, and as
//! it recovers, accepts bring the probability back to 0. Locally rejected
//! requests count as requests, so the throttle never shuts the door entirely.
//!
//! ```
//! use std::time::Duration;
//! use backstop::{AdaptiveThrottle, ManualClock};
//!
//! let throttle = AdaptiveThrottle::builder("api").seed(7).clock(&ManualClock::new()).build()?;
//! for _ in 0..100 {
//!     if throttle.try_acquire().is_ok() {
//!         throttle.record(false); // refused: 429
//!     }
//! }
//! assert!(throttle.rejection_probability() > 0.9);
//! # Ok::<(), backstop::ConfigError>(())
//! ```
//!
//! Use it alone, or in a retry run with
//! [`Retry::throttle`](crate::retry::Retry::throttle), which asks it before
//! every attempt and records every outcome (a [`Verdict`](crate::Verdict)
//! that [is a refusal](crate::Verdict::is_refusal) is not an accept).

use std::error::Error;
use std::fmt;
use std::sync::Arc as StdArc;
use std::time::{Duration, Instant};

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::sliding::SlidingCounts;
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock};

/// An adaptive throttle shared by any number of runs and threads; see the
/// [module docs](self). `Clone` shares it.
#[derive(Clone)]
pub struct AdaptiveThrottle {
    inner: Arc<Inner>,
}

struct Inner {
    name: StdArc<str>,
    /// Counters: requests, accepts.
    counts: SlidingCounts<2>,
    k: f64,
    clock: StdArc<dyn Clock>,
    origin: Instant,
    rng: Mutex<fastrand::Rng>,
    rejected: AtomicU64,
}

/// A request the throttle rejected locally.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottledLocally {
    name: StdArc<str>,
    probability: f64,
}

impl ThrottledLocally {
    /// The throttle's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rejection probability when it rejected.
    pub fn probability(&self) -> f64 {
        self.probability
    }
}

impl fmt::Display for ThrottledLocally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "throttle {} rejected the request locally (it rejects {:.0}% while the downstream refuses most requests)",
            self.name,
            self.probability * 100.0
        )
    }
}

impl Error for ThrottledLocally {}

impl AdaptiveThrottle {
    /// A throttle named `name` (in logs and errors): K = 2, a 2-minute
    /// window, the real clock.
    pub fn builder(name: impl Into<StdArc<str>>) -> AdaptiveThrottleBuilder {
        AdaptiveThrottleBuilder {
            name: name.into(),
            k: 2.0,
            window: Duration::from_secs(120),
            clock: StdArc::new(SystemClock),
            seed: None,
        }
    }

    fn now_nanos(&self) -> u64 {
        let since = self.inner.clock.now().saturating_duration_since(self.inner.origin);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    fn probability_at(&self, now: u64) -> f64 {
        let [requests, accepts] = self.inner.counts.totals(now);
        let (r, a) = (f64::from(requests), f64::from(accepts));
        ((r - self.inner.k * a) / (r + 1.0)).max(0.0)
    }

    /// The probability that the next request is rejected locally.
    pub fn rejection_probability(&self) -> f64 {
        self.probability_at(self.now_nanos())
    }

    /// Asks to send one request: counts it, and rejects it locally with the
    /// current [rejection probability](Self::rejection_probability).
    pub fn try_acquire(&self) -> Result<(), ThrottledLocally> {
        let now = self.now_nanos();
        let p = self.probability_at(now);
        self.inner.counts.add(now, [1, 0]);
        // A healthy downstream (p = 0) costs no lock and no random draw.
        if p > 0.0 && lock(&self.inner.rng).f64() < p {
            self.inner.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(ThrottledLocally { name: StdArc::clone(&self.inner.name), probability: p });
        }
        Ok(())
    }

    /// Records the outcome of a request that was sent: `accepted` unless the
    /// downstream refused it for overload.
    pub fn record(&self, accepted: bool) {
        if accepted {
            self.inner.counts.add(self.now_nanos(), [0, 1]);
        }
    }

    /// How many requests it has rejected locally.
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Ordering::Relaxed)
    }

    /// The throttle's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

impl fmt::Debug for AdaptiveThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveThrottle")
            .field("name", &self.name())
            .field("k", &self.inner.k)
            .field("rejection_probability", &self.rejection_probability())
            .finish()
    }
}

/// Builds an [`AdaptiveThrottle`]; see [`AdaptiveThrottle::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct AdaptiveThrottleBuilder {
    name: StdArc<str>,
    k: f64,
    window: Duration,
    clock: StdArc<dyn Clock>,
    seed: Option<u64>,
}

impl AdaptiveThrottleBuilder {
    /// The multiplier K (default 2; allowed: 1 ..= 100). Lower rejects sooner.
    pub fn k(mut self, k: f64) -> Self {
        self.k = k;
        self
    }

    /// How far back requests and accepts count (default 2 min; allowed: 1 s ..= 1 h).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The clock for the window (default: [`SystemClock`]).
    pub fn clock<C: Clock + Clone + 'static>(mut self, clock: &C) -> Self {
        self.clock = StdArc::new(clock.clone());
        self
    }

    /// Makes the local rejections reproducible (tests, simulations).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the settings and makes the throttle.
    pub fn build(self) -> Result<AdaptiveThrottle, ConfigError> {
        if !(self.k.is_finite() && (1.0..=100.0).contains(&self.k)) {
            return Err(ConfigError::of(
                "adaptive throttle",
                "k",
                format!("is {}", self.k),
                "1 ..= 100 (2 is Google's)",
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.window) {
            return Err(ConfigError::of("adaptive throttle", "window", format!("is {:?}", self.window), "1s ..= 1h"));
        }
        let nanos = u64::try_from(self.window.as_nanos()).unwrap_or(u64::MAX);
        let origin = self.clock.now();
        Ok(AdaptiveThrottle {
            inner: Arc::new(Inner {
                name: self.name,
                counts: SlidingCounts::new(nanos, 12),
                k: self.k,
                clock: self.clock,
                origin,
                rng: Mutex::new(self.seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed)),
                rejected: AtomicU64::new(0),
            }),
        })
    }
}
