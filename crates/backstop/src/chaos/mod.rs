//! Fault injection for your own tests (feature `chaos`): errors, throttling,
//! server hints, timeouts and latency injected into a share of attempts,
//! seeded, so a unit test can check its resilience settings with no server.
//! [`Chaos`].
//!
//! A `Chaos` decides, for each attempt, whether it fails and how
//! ([`Fault`]), and how long it is delayed first, at the rates it was built
//! with. The decisions are a seeded sequence: the same seed and the same
//! order of attempts give the same faults, so a failing test fails again.
//! It is on only where it is given — a run's operation wrapped by
//! [`Chaos::wrap`] / [`Chaos::wrap_async`], or the HTTP middleware's and
//! layer's `.chaos(&chaos)` — and [`set_enabled`](Chaos::set_enabled)
//! turns it off and on while it runs (behind a flag, in a staging
//! environment).
//!
//! An injected fault never reaches the operation: the attempt is not made,
//! and the run sees the error your `inject` function makes of the fault
//! (its classifier then decides, as for a real one). An injected delay
//! sleeps on the `Chaos`'s clock before the attempt — a
//! [`ManualClock`](crate::ManualClock) in tests, so it costs no real time.
//!
//! ```
//! use std::time::Duration;
//! use backstop::chaos::{Chaos, Fault};
//! use backstop::{ManualClock, RetryPolicy, Verdict};
//!
//! #[derive(Debug)]
//! enum ApiError { Throttled, Down }
//! # impl std::fmt::Display for ApiError {
//! #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") }
//! # }
//!
//! let clock = ManualClock::new();
//! // A third of attempts throttled, every attempt 100 ms slower.
//! let chaos = Chaos::builder("weather_api")
//!     .fault(0.33, Fault::Throttled)
//!     .latency(1.0, Duration::from_millis(100))
//!     .seed(7)
//!     .clock(&clock)
//!     .build()?;
//! let inject = |fault: Fault| match fault {
//!     Fault::Throttled => ApiError::Throttled,
//!     _ => ApiError::Down,
//! };
//! let policy = RetryPolicy::builder().max_attempts(5).seed(1).build()?;
//! let forecast = policy
//!     .retry(chaos.wrap(|| Ok::<_, ApiError>("sunny"), inject))
//!     .when(|e: &ApiError| match e { ApiError::Throttled => Verdict::Throttled, ApiError::Down => Verdict::Retry })
//!     .clock(&clock)
//!     .with_attempts()
//!     .call()
//!     .unwrap();
//! assert_eq!(forecast.0, "sunny");
//! assert_eq!(chaos.injected(), u64::from(forecast.1 - 1), "every attempt but the last was throttled");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;
mod wrap;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

pub use builder::ChaosBuilder;

use crate::clock::Clock;

/// What an injected fault is: the kind of failure an attempt is made to
/// have. Your `inject` function turns it into your error type; the HTTP
/// middleware into a response (or a timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// A transient failure (HTTP 503, a reset connection).
    Unavailable,
    /// A refusal for rate (HTTP 429, S3 `SlowDown`).
    Throttled,
    /// A refusal with a hint: come back after this long (`Retry-After`).
    RetryAfter(Duration),
    /// The attempt timed out.
    Timeout,
    /// A permanent failure (HTTP 400, `AccessDenied`): not worth retrying.
    Permanent,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Unavailable => f.write_str("injected fault: unavailable"),
            Fault::Throttled => f.write_str("injected fault: throttled"),
            Fault::RetryAfter(d) => write!(f, "injected fault: retry after {}", crate::duration::Seconds(*d)),
            Fault::Timeout => f.write_str("injected fault: timed out"),
            Fault::Permanent => f.write_str("injected fault: permanent"),
        }
    }
}

/// What [`Chaos::next`] decided for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    /// Sleep this long before the attempt (zero: no delay).
    pub delay: Duration,
    /// Fail the attempt with this fault instead of making it.
    pub fault: Option<Fault>,
}

impl Injection {
    /// Nothing injected.
    pub const NONE: Injection = Injection { delay: Duration::ZERO, fault: None };
}

/// Faults and latency injected into a share of attempts, seeded; see the
/// [module docs](self). `Clone` shares it (its sequence and its switch).
#[derive(Clone)]
pub struct Chaos {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    /// Cumulative rates: a draw below `faults[i].0` picks `faults[i].1`.
    faults: Vec<(f64, Fault)>,
    latency_rate: f64,
    latency: Duration,
    seed: u64,
    drawn: AtomicU64,
    enabled: AtomicBool,
    injected: AtomicU64,
    delayed: AtomicU64,
    clock: Arc<dyn Clock>,
}

/// SplitMix64: a well-mixed 64-bit value from a counter.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A draw in [0, 1) from 53 bits.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

impl Chaos {
    /// Starts a `Chaos` named `name` (its log lines and metrics say it).
    pub fn builder(name: impl Into<Arc<str>>) -> ChaosBuilder {
        ChaosBuilder::new(name.into())
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Decides for the next attempt: a delay and maybe a fault, at the
    /// configured rates; [`Injection::NONE`] while disabled (and then no
    /// draw is taken, so the sequence resumes where it stopped). Each call
    /// takes the next draws of the seeded sequence.
    pub fn next(&self) -> Injection {
        let inner = &*self.inner;
        if !inner.enabled.load(Ordering::Relaxed) {
            return Injection::NONE;
        }
        let n = inner.drawn.fetch_add(1, Ordering::Relaxed);
        let base = mix(inner.seed ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let (fault_draw, latency_draw) = (unit(base), unit(mix(base)));
        let fault = inner.faults.iter().find(|(below, _)| fault_draw < *below).map(|(_, f)| *f);
        let delay = if latency_draw < inner.latency_rate { inner.latency } else { Duration::ZERO };
        if fault.is_some() {
            inner.injected.fetch_add(1, Ordering::Relaxed);
        }
        if !delay.is_zero() {
            inner.delayed.fetch_add(1, Ordering::Relaxed);
        }
        #[cfg(feature = "tracing")]
        if fault.is_some() || !delay.is_zero() {
            tracing::debug!(name = %inner.name, fault = ?fault, delay_ms = delay.as_millis() as u64, "chaos injected");
        }
        #[cfg(feature = "metrics")]
        if fault.is_some() {
            metrics::counter!("backstop_chaos_faults_total", "name" => inner.name.to_string()).increment(1);
        }
        Injection { delay, fault }
    }

    /// Turns injection on or off, at once, for every holder of this `Chaos`.
    pub fn set_enabled(&self, on: bool) {
        self.inner.enabled.store(on, Ordering::Relaxed);
    }

    /// Whether it injects now.
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled.load(Ordering::Relaxed)
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.inner.injected.load(Ordering::Relaxed)
    }

    /// Attempts delayed so far.
    pub fn delayed(&self) -> u64 {
        self.inner.delayed.load(Ordering::Relaxed)
    }

    /// The clock injected delays sleep on.
    pub fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }
}

impl fmt::Debug for Chaos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field("name", &self.inner.name)
            .field("enabled", &self.is_enabled())
            .field("injected", &self.injected())
            .finish_non_exhaustive()
    }
}
