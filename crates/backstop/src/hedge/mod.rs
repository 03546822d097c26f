//! Hedged requests: [`Hedge`], for calls that are slow rather than failing.
//!
//! Retries make a failing call succeed; they do nothing for one that is
//! merely slow. A hedge runs the call, and if it has not finished after the
//! *hedge delay*, starts the same call again; the first to succeed wins and
//! the others are dropped (cancelled). Dean and Barroso ("The Tail at Scale",
//! CACM 2013) sent the second request after the 95th-percentile latency and
//! cut a read's 99.9th percentile from 1 800 ms to 74 ms for 2 % more
//! requests.
//!
//! ```
//! use std::time::Duration;
//! use backstop::hedge::{Hedge, HedgeDelay};
//!
//! # async fn get(_key: &str) -> Result<Vec<u8>, std::io::Error> { Ok(vec![1]) }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let hedge = Hedge::builder("s3-get")
//!     .delay(HedgeDelay::percentile(0.95))   // the default
//!     .build()?;
//! let body = hedge.run(|| get("day.parquet")).await?;
//! # Ok(()) }
//! ```
//!
//! - **The delay** is fixed ([`HedgeDelay::fixed`]) or adaptive
//!   ([`HedgeDelay::percentile`], the default: p95 of the last 1 to 2 s of
//!   latencies, once 20 calls are in; no hedging before). The histogram is
//!   tower's design (two rotating halves), with fixed log-linear buckets
//!   instead of `hdrhistogram`: bounded (2.2 KiB), lock-free, and a shift in
//!   latency is followed within one window.
//! - **The budget**: hedges are at most 5 % of calls, plus 1 a second (both
//!   over the same window), so when *every* call is slow (an overloaded
//!   server) the extra load stays bounded instead of doubling. Or give a
//!   [`RetryBudget`] with [`HedgeBuilder::budget`]: one budget for every extra
//!   request, retries and hedges, as failsafe-go and Envoy do.
//! - **A pacer** ([`HedgeBuilder::pacer`]): each hedge takes a slot, and only
//!   one free now; a pacer that is pacing means the server is at the rate it
//!   accepts, and a hedge would only add to the queue.
//! - **Cancellation**: dropping the future drops every attempt in flight.
//!   A hedge that was sent stays counted against the budget when it loses
//!   (the server saw it: refunding losers would let hedges grow without
//!   bound under overload, where every hedge loses or wins by a hair).
//! - **With retries**, hedge each attempt of a run:
//!   `policy.retry(|| hedge.run(|| get(key)))`. A hedged attempt counts as
//!   one attempt; it fails when every request in flight has failed, and its
//!   error is the first one; the run's deadline and attempt timeout cut the
//!   whole attempt, hedges included.
//! - Only calls that may be repeated may be hedged: the HTTP middleware
//!   hedges only idempotent requests; use it directly only where a second
//!   request does no harm.
//!
//! A hedge also loads from a configuration file (the `serde` feature):
//! `name = "s3-get"`, `delay = "p95"` (or `"10ms"`), `max_hedges`, `ratio`,
//! `min_per_sec`, `window`.
//!
//! Each hedge sent is one DEBUG line (`hedging s3-get: still running after
//! 6.2 ms`) and one `backstop_hedges_total` count; a hedge the budget
//! refuses is counted in `backstop_hedges_denied_total`.

mod builder;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
mod config;
mod future;
mod latency;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use builder::{HedgeBuilder, HedgeDelay};
pub use future::HedgeFuture;

use crate::budget::RetryBudget;
use crate::clock::Clock;
use crate::pacer::Pacer;
use crate::verdict::Verdict;
use latency::Latencies;

/// Runs calls with hedges; see the [module docs](self). `Clone` shares it
/// (its latencies and budget): make one per downstream and operation.
#[derive(Clone)]
pub struct Hedge {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    delay: HedgeDelay,
    max_hedges: u32,
    /// Hedges allowed per call in the window, and besides those, per second.
    ratio: f64,
    min_per_sec: f64,
    window: Duration,
    budget: Option<RetryBudget>,
    pacer: Option<Pacer>,
    clock: Arc<dyn Clock>,
    origin: Instant,
    latencies: Latencies,
}

impl std::fmt::Debug for Hedge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hedge")
            .field("name", &self.inner.name)
            .field("delay", &self.inner.delay)
            .field("max_hedges", &self.inner.max_hedges)
            .field("ratio", &self.inner.ratio)
            .finish_non_exhaustive()
    }
}

impl Hedge {
    /// A hedge named `name` (in logs and metrics) with the defaults: the
    /// p95 delay (after 20 calls), one hedge at most, hedges at most 5 % of
    /// calls plus 1 a second over a 2 s window.
    pub fn builder(name: impl Into<Arc<str>>) -> HedgeBuilder {
        HedgeBuilder::new(name.into())
    }

    /// The hedge's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How long a call runs before it is hedged (the setting, not its value now:
    /// see [`current_delay`](Self::current_delay)).
    pub fn delay(&self) -> HedgeDelay {
        self.inner.delay
    }

    /// Runs `op` with hedges: `op` is called once now, and once more for
    /// each hedge; the first `Ok` is returned and the other calls dropped
    /// with it. When every call in flight has failed, the first error is
    /// returned (a hedge not yet sent is not sent: a failure is for the
    /// retry around the hedge to judge).
    pub fn run<Op, Fut, T, E>(&self, op: Op) -> HedgeFuture<'_, Op, Fut>
    where
        Op: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        HedgeFuture::new(self, op)
    }

    /// The delay a call that is still running would be hedged after now:
    /// `None` while an adaptive delay has too few samples.
    pub fn current_delay(&self) -> Option<Duration> {
        self.delay_at(self.now_nanos())
    }

    fn delay_at(&self, now_nanos: u64) -> Option<Duration> {
        match self.inner.delay {
            HedgeDelay::Fixed(d) => Some(d),
            HedgeDelay::Percentile { quantile, min_samples } => {
                self.inner.latencies.quantile(now_nanos, quantile, min_samples)
            }
        }
    }

    /// Nanoseconds since the hedge was made, on its clock.
    fn now_nanos(&self) -> u64 {
        let since = self.inner.clock.now().saturating_duration_since(self.inner.origin);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Asks to send one hedge now: a pacer's slot free now (a hedge never
    /// waits for one: a pacer pacing means the server is at its rate), then
    /// the budget given, or the hedge's own share of calls.
    fn may_hedge(&self, now_nanos: u64) -> bool {
        let inner = &self.inner;
        // The budget first, taken for real (concurrent calls cannot both
        // take the last hedge), then the pacer; a pacer that refuses gives
        // the budget back, so a refused hedge costs neither.
        let withdrawal = match &inner.budget {
            Some(budget) => match budget.try_withdraw(Verdict::Retry) {
                Some(w) => Some(w),
                None => return self.denied(),
            },
            None => {
                let floor = inner.min_per_sec * inner.window.as_secs_f64();
                // At least one hedge a window when `min_per_sec` is not 0
                // (a window under a second would otherwise allow none).
                let floor = if inner.min_per_sec > 0.0 { floor.max(1.0) } else { floor };
                if !inner.latencies.try_hedge(now_nanos, |calls| inner.ratio * f64::from(calls) + floor) {
                    return self.denied();
                }
                None
            }
        };
        if let Some(pacer) = &inner.pacer {
            if let Some(slot) = pacer.take_slot() {
                if !pacer.wait(slot).is_zero() {
                    pacer.release(slot);
                    match (&inner.budget, withdrawal) {
                        (Some(budget), Some(w)) => budget.refund(w),
                        _ => inner.latencies.give_back_hedge(now_nanos),
                    }
                    return self.denied();
                }
            }
        }
        true
    }

    fn denied(&self) -> bool {
        emit::denied(&self.inner.name);
        false
    }
}

/// The hedge's log lines and counters.
mod emit {
    use std::time::Duration;

    /// A hedge sent: one DEBUG line, one count.
    pub(super) fn hedged(name: &str, after: Duration, hedges: u32) {
        #[cfg(feature = "tracing")]
        tracing::debug!(
            name,
            after_ms = after.as_secs_f64() * 1000.0,
            hedge = hedges,
            "hedging {name}: still running after {:.1} ms",
            after.as_secs_f64() * 1000.0
        );
        #[cfg(feature = "metrics")]
        metrics::counter!("backstop_hedges_total", "name" => name.to_owned()).increment(1);
        let _ = (name, after, hedges);
    }

    /// A hedge the budget refused: counted.
    pub(super) fn denied(name: &str) {
        #[cfg(feature = "metrics")]
        metrics::counter!("backstop_hedges_denied_total", "name" => name.to_owned()).increment(1);
        let _ = name;
    }
}
