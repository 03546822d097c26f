//! Stop calling what is down: the [`CircuitBreaker`].
//!
//! Retries help with blips; against an outage they only add load. A breaker
//! watches the outcomes of calls to one downstream and, once a trip rule
//! says it is down, *opens*: calls are rejected at once with [`CircuitOpen`]
//! instead of waiting on timeouts. After the open period it goes *half-open*
//! and lets a few probe calls through: if they succeed it *closes* again, if
//! one fails it opens again (for longer, if the open period is a growing
//! backoff).
//!
//! ```text
//!            trip rule fires                 open period over
//!   Closed ─────────────────────▶ Open ─────────────────────▶ HalfOpen
//!     ▲                            ▲                              │
//!     │                            └──────── a probe fails ───────┤
//!     └──────────────── success_threshold probes succeed ─────────┘
//! ```
//!
//! Trip rules ([`BreakerConfig`]): consecutive failures (5 by default), a
//! failure rate over a window of the last N calls or the last T seconds, a
//! slow-call rate. A breaker is `Clone` (clones share one state), `Send +
//! Sync`, and cheap where it matters: a closed breaker's check is one atomic
//! load, and a success under the consecutive-failures rule writes nothing
//! shared.
//!
//! Use it alone with [`call`](CircuitBreaker::call) or
//! [`try_acquire`](CircuitBreaker::try_acquire), or around a retry with
//! [`Retry::breaker`](crate::retry::Retry::breaker), which asks it before
//! every attempt and stops retrying at once when it is open:
//!
//! ```
//! use backstop::{presets, CircuitBreaker, ManualClock, RetryError};
//! use backstop::breaker::BreakerConfig;
//!
//! let clock = ManualClock::new();
//! let breaker = CircuitBreaker::builder("s3_upload")
//!     .config(BreakerConfig::builder().consecutive_failures(3).build()?)
//!     .clock(&clock)
//!     .build();
//!
//! let err = presets::S3_UPLOAD
//!     .retry(|| Err::<(), _>("503 SlowDown"))
//!     .breaker(&breaker)
//!     .clock(&clock)
//!     .call()
//!     .unwrap_err();
//! // The third failure trips the breaker: the run stops there, with no
//! // sleep against the open circuit and no fourth attempt.
//! assert!(matches!(err, RetryError::CircuitOpen { attempts: 3, .. }));
//! assert_eq!(clock.sleeps().len(), 2);
//! assert_eq!(err.last_error(), Some(&"503 SlowDown"));
//! # Ok::<(), backstop::ConfigError>(())
//! ```

mod config;
mod core;
mod event;
mod link;
mod open;
mod permit;
mod shared;
mod state;
mod window;

use std::fmt;
use std::future::Future;
use std::sync::Arc as StdArc;

pub use config::{BreakerConfig, BreakerConfigBuilder, CountAs, MAX_HALF_OPEN_CALLS, MAX_WINDOW_CALLS, Window};
pub use event::{BreakerEvent, Transition};
pub use link::BreakerLink;
pub use open::{BreakerError, CircuitOpen};
pub use permit::{OwnedPermit, Permit};
pub use shared::{BreakerStore, SharedBreaker};
pub use state::CircuitState;

use self::core::{Core, OnStateChange};
use crate::clock::{Clock, SystemClock};
use crate::sync::{Arc, Ordering};

/// A circuit breaker; see the [module docs](self).
#[derive(Clone)]
pub struct CircuitBreaker {
    core: Arc<Core>,
}

impl CircuitBreaker {
    /// A breaker on the real clock. `BreakerConfig::default()` is:
    /// 5 consecutive failures, 30 s open, 1 successful probe to close.
    pub fn new(name: impl Into<StdArc<str>>, config: BreakerConfig) -> Self {
        Self::builder(name).config(config).build()
    }

    /// A builder, to set a clock or a state-change callback as well.
    pub fn builder(name: impl Into<StdArc<str>>) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            name: name.into(),
            config: BreakerConfig::default(),
            clock: StdArc::new(SystemClock),
            on_change: None,
            store: None,
        }
    }

    /// Asks to make one call: a [`Permit`] to report its outcome on, or
    /// [`CircuitOpen`] when the breaker rejects it.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, CircuitOpen> {
        let w = self.core.word();
        if w.state() == CircuitState::Closed {
            return Ok(Permit::new(&self.core, w));
        }
        self.core.acquire_slow(w).map(|w| Permit::new(&self.core, w))
    }

    /// [`try_acquire`](Self::try_acquire), the permit holding a clone of the
    /// breaker: see [`OwnedPermit`].
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, CircuitOpen> {
        self.try_acquire().map(|permit| permit.into_owned(self.clone()))
    }

    /// What [`try_acquire`](Self::try_acquire) would reject with right now, if
    /// anything, without taking a probe slot or counting a rejection.
    pub fn would_reject(&self) -> Option<CircuitOpen> {
        self.core.would_reject()
    }

    /// Runs `op` if the breaker lets it through; every `Err` counts as a failure.
    ///
    /// ```
    /// use backstop::{CircuitBreaker, breaker::{BreakerConfig, BreakerError}};
    ///
    /// let breaker = CircuitBreaker::new("db", BreakerConfig::builder().consecutive_failures(1).build()?);
    /// assert_eq!(breaker.call(|| Err::<(), _>("down")), Err(BreakerError::Inner("down")));
    /// assert!(matches!(breaker.call(|| Ok::<_, &str>(1)), Err(BreakerError::Open(_))));
    /// # Ok::<(), backstop::ConfigError>(())
    /// ```
    #[inline]
    pub fn call<T, E>(&self, op: impl FnOnce() -> Result<T, E>) -> Result<T, BreakerError<E>> {
        let permit = self.try_acquire().map_err(BreakerError::Open)?;
        match op() {
            Ok(v) => {
                permit.success();
                Ok(v)
            }
            Err(e) => {
                permit.failure();
                Err(BreakerError::Inner(e))
            }
        }
    }

    /// Runs the future `op` makes, if the breaker lets it through; every `Err`
    /// counts as a failure. Dropping the future mid-call counts nothing.
    pub async fn call_async<T, E, Fut>(&self, op: impl FnOnce() -> Fut) -> Result<T, BreakerError<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire().map_err(BreakerError::Open)?;
        match op().await {
            Ok(v) => {
                permit.success();
                Ok(v)
            }
            Err(e) => {
                permit.failure();
                Err(BreakerError::Inner(e))
            }
        }
    }

    /// The current state. An open breaker whose period is over reports (and
    /// moves to) `HalfOpen`.
    pub fn state(&self) -> CircuitState {
        self.core.state()
    }

    /// Holds the breaker open, rejecting every call, until [`reset`](Self::reset):
    /// for maintenance windows, or a downstream known to be down.
    pub fn isolate(&self) {
        self.core.force(CircuitState::Isolated, Transition::Isolated);
    }

    /// Closes the breaker and forgets every count, from any state.
    pub fn reset(&self) {
        self.core.force(CircuitState::Closed, Transition::Reset);
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The breaker's settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.core.config
    }

    /// Counts since the breaker was made. Successes are not counted (the hot
    /// path stays write-free); every call is a success, a failure, ignored, or
    /// rejected, so a caller that counts its calls can derive them.
    pub fn stats(&self) -> BreakerStats {
        let s = &self.core.stats;
        let get = |c: &crate::sync::AtomicU64| c.load(Ordering::Relaxed);
        BreakerStats {
            failures: get(&s.failures),
            ignored: get(&s.ignored),
            rejected: get(&s.rejected),
            late: get(&s.late),
            transitions: get(&s.transitions),
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name())
            .field("state", &self.core.word().state())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Counts kept by a breaker; see [`CircuitBreaker::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BreakerStats {
    /// Calls recorded as failures.
    pub failures: u64,
    /// Calls recorded as ignored.
    pub ignored: u64,
    /// Calls rejected without running.
    pub rejected: u64,
    /// Results (of any kind) that arrived after the state they were issued in
    /// had ended: counted above, but they changed nothing.
    pub late: u64,
    /// State changes.
    pub transitions: u64,
}

/// Builds a [`CircuitBreaker`]; made by [`CircuitBreaker::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct CircuitBreakerBuilder {
    name: StdArc<str>,
    config: BreakerConfig,
    clock: StdArc<dyn Clock>,
    on_change: Option<OnStateChange>,
    store: Option<StdArc<dyn BreakerStore>>,
}

impl CircuitBreakerBuilder {
    /// The trip and recovery rules (default: [`BreakerConfig::default`]).
    pub fn config(mut self, config: BreakerConfig) -> Self {
        self.config = config;
        self
    }

    /// The clock for open periods, time windows and slow calls (default:
    /// [`SystemClock`]); a [`ManualClock`](crate::ManualClock) in tests.
    pub fn clock<C: Clock + Clone + 'static>(mut self, clock: &C) -> Self {
        self.clock = StdArc::new(clock.clone());
        self
    }

    /// Calls `f` after every change of state (outside the breaker's lock, so
    /// it may call the breaker).
    pub fn on_state_change(mut self, f: impl Fn(&BreakerEvent<'_>) + Send + Sync + 'static) -> Self {
        self.on_change = Some(StdArc::new(f));
        self
    }

    /// Shares the breaker's state with every process whose breaker of the
    /// same name uses the same store (such as `backstop_redis::Fleet`): a
    /// trip anywhere opens it everywhere, and one process of the fleet
    /// probes when the open period is over. Calls still decide locally,
    /// with no round trip to the store; see [`BreakerStore`].
    pub fn shared<S: BreakerStore + Clone + 'static>(mut self, store: &S) -> Self {
        self.store = Some(StdArc::new(store.clone()));
        self
    }

    /// The breaker.
    pub fn build(self) -> CircuitBreaker {
        let core = Arc::new(Core::new(self.name, self.config, self.clock, self.on_change));
        if let Some(store) = self.store {
            let link = store.share_breaker(SharedBreaker::new(Arc::clone(&core)));
            let _ = core.link.set(link);
        }
        CircuitBreaker { core }
    }
}

impl fmt::Debug for CircuitBreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerBuilder")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("on_state_change", &self.on_change.is_some())
            .field("shared", &self.store.is_some())
            .finish_non_exhaustive()
    }
}
