//! [`Guards`]: the guards every call to one downstream shares, as one value.

use std::fmt;
use std::sync::Arc;

use crate::breaker::CircuitBreaker;
use crate::budget::RetryBudget;
use crate::clock::Clock;
use crate::limit::ConcurrencyLimit;
use crate::pacer::Pacer;
use crate::throttle::AdaptiveThrottle;

/// The breaker, budget, throttle, pacer, concurrency limit and clock that every call
/// to one downstream shares, as one value.
///
/// Make it once per downstream, then hand it to whatever makes the calls: a
/// run ([`Retry::guards`](crate::Retry::guards)), a batch, the HTTP middleware
/// and layer, the S3 transfers. Each takes `&Guards` the same way; cloning it
/// shares the guards (each is an `Arc` inside).
///
/// ```
/// use backstop::{CircuitBreaker, Guards, RetryBudget, RetryPolicy};
///
/// let s3 = Guards::builder()
///     .breaker(&CircuitBreaker::new("s3", Default::default()))
///     .budget(&RetryBudget::default())
///     .build();
/// let policy = RetryPolicy::default();
/// let etag = policy.retry(|| Ok::<_, std::io::Error>("etag-1")).guards(&s3).call()?;
/// assert_eq!(etag, "etag-1");
/// assert_eq!(s3.breaker().map(|b| b.name()), Some("s3"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Empty by default (no guard, the system clock). `Clone` shares the guards.
#[derive(Clone, Default)]
pub struct Guards {
    breaker: Option<CircuitBreaker>,
    budget: Option<RetryBudget>,
    throttle: Option<AdaptiveThrottle>,
    pacer: Option<Pacer>,
    limit: Option<ConcurrencyLimit>,
    clock: Option<Arc<dyn Clock>>,
}

impl Guards {
    /// Starts an empty set of guards.
    pub fn builder() -> GuardsBuilder {
        GuardsBuilder { guards: Guards::default() }
    }

    /// The circuit breaker every attempt asks first, if any.
    pub fn breaker(&self) -> Option<&CircuitBreaker> {
        self.breaker.as_ref()
    }

    /// The retry budget every retry draws from, if any.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    /// The adaptive throttle every attempt asks, if any.
    pub fn throttle(&self) -> Option<&AdaptiveThrottle> {
        self.throttle.as_ref()
    }

    /// The pacer every attempt waits for, if any.
    pub fn pacer(&self) -> Option<&Pacer> {
        self.pacer.as_ref()
    }

    /// The concurrency limit every attempt takes a place from, if any.
    pub fn limit(&self) -> Option<&ConcurrencyLimit> {
        self.limit.as_ref()
    }

    /// The clock runs sleep and time on, if not the system's.
    pub fn clock(&self) -> Option<&dyn Clock> {
        self.clock.as_deref()
    }

    /// The same clock and no guard: for a call that must be made whatever
    /// the guards say, such as a cleanup (aborting a multipart upload must
    /// not be refused by an open breaker or a spent budget).
    pub fn clock_only(&self) -> Guards {
        Guards { clock: self.clock.clone(), ..Guards::default() }
    }

    /// A builder starting from these guards, to change one.
    pub fn to_builder(&self) -> GuardsBuilder {
        GuardsBuilder { guards: self.clone() }
    }
}

impl fmt::Debug for Guards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guards")
            .field("breaker", &self.breaker)
            .field("budget", &self.budget)
            .field("throttle", &self.throttle)
            .field("pacer", &self.pacer)
            .field("limit", &self.limit)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// Builds [`Guards`]; made by [`Guards::builder`]. Every setter takes the
/// guard by reference and keeps a shared handle to it.
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct GuardsBuilder {
    guards: Guards,
}

impl GuardsBuilder {
    /// Asks `breaker` before every attempt; see [`Retry::breaker`](crate::Retry::breaker).
    pub fn breaker(mut self, breaker: &CircuitBreaker) -> Self {
        self.guards.breaker = Some(breaker.clone());
        self
    }

    /// Draws every retry from `budget`; see [`Retry::budget`](crate::Retry::budget).
    pub fn budget(mut self, budget: &RetryBudget) -> Self {
        self.guards.budget = Some(budget.clone());
        self
    }

    /// Asks `throttle` before every attempt; see [`Retry::throttle`](crate::Retry::throttle).
    pub fn throttle(mut self, throttle: &AdaptiveThrottle) -> Self {
        self.guards.throttle = Some(throttle.clone());
        self
    }

    /// Waits for `pacer` before every attempt; see [`Retry::pacer`](crate::Retry::pacer).
    pub fn pacer(mut self, pacer: &Pacer) -> Self {
        self.guards.pacer = Some(pacer.clone());
        self
    }

    /// Takes a place from `limit` before every attempt; see [`Retry::limit`](crate::Retry::limit).
    pub fn limit(mut self, limit: &ConcurrencyLimit) -> Self {
        self.guards.limit = Some(limit.clone());
        self
    }

    /// Sleeps and reads time on `clock` (a [`ManualClock`](crate::ManualClock)
    /// in tests; clones of one share its virtual time).
    pub fn clock<C: Clock + Clone + 'static>(mut self, clock: &C) -> Self {
        self.guards.clock = Some(Arc::new(clock.clone()));
        self
    }

    /// Takes every guard `guards` holds, and its clock if it has one; a guard
    /// it does not hold is kept as it was (as [`Retry::guards`](crate::Retry::guards)
    /// does).
    pub fn merge(mut self, guards: &Guards) -> Self {
        let g = &mut self.guards;
        g.breaker = guards.breaker.clone().or(g.breaker.take());
        g.budget = guards.budget.clone().or(g.budget.take());
        g.throttle = guards.throttle.clone().or(g.throttle.take());
        g.pacer = guards.pacer.clone().or(g.pacer.take());
        g.limit = guards.limit.clone().or(g.limit.take());
        g.clock = guards.clock.clone().or(g.clock.take());
        self
    }

    /// The guards.
    pub fn build(self) -> Guards {
        self.guards
    }
}
