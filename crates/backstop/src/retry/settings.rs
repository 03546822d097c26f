//! What a run takes besides its operation, classifier and callback: the
//! policy, the name, the clock and the guards. Shared by [`Retry`](super::Retry)
//! and [`Batch`](crate::Batch), whose items each get a copy.

use std::borrow::Cow;

use crate::breaker::CircuitBreaker;
use crate::budget::RetryBudget;
use crate::clock::Clock;
use crate::guards::Guards;
use crate::pacer::Pacer;
use crate::policy::RetryPolicy;
use crate::throttle::AdaptiveThrottle;

/// The name a run is known by in logs, metrics and errors: a `&'static str`
/// costs nothing, a `String` is kept as given.
pub type Name = Cow<'static, str>;

/// The name a run has unless it is given one.
pub const DEFAULT_NAME: &str = "operation";

/// A run's settings, borrowed for the run.
#[derive(Debug, Clone)]
pub(crate) struct RunSettings<'a> {
    pub(crate) policy: &'a RetryPolicy,
    pub(crate) name: Name,
    pub(crate) clock: Option<&'a dyn Clock>,
    pub(crate) breaker: Option<&'a CircuitBreaker>,
    pub(crate) budget: Option<&'a RetryBudget>,
    pub(crate) throttle: Option<&'a AdaptiveThrottle>,
    pub(crate) pacer: Option<&'a Pacer>,
}

impl<'a> RunSettings<'a> {
    pub(crate) fn new(policy: &'a RetryPolicy) -> Self {
        Self {
            policy,
            name: Name::Borrowed(DEFAULT_NAME),
            clock: None,
            breaker: None,
            budget: None,
            throttle: None,
            pacer: None,
        }
    }

    /// Whether a first attempt that succeeds needs nothing at all: no guard
    /// to ask or tell, no deadline to time. Then the run state is only built
    /// if that attempt fails.
    #[inline]
    pub(crate) fn is_bare(&self) -> bool {
        self.breaker.is_none()
            && self.budget.is_none()
            && self.throttle.is_none()
            && self.pacer.is_none()
            && self.policy.max_elapsed.is_none()
    }

    /// Takes every guard `guards` holds (the ones it does not hold stay as they were).
    pub(crate) fn set_guards(&mut self, guards: &'a Guards) {
        if let Some(clock) = guards.clock() {
            self.clock = Some(clock);
        }
        self.breaker = guards.breaker().or(self.breaker);
        self.budget = guards.budget().or(self.budget);
        self.throttle = guards.throttle().or(self.throttle);
        self.pacer = guards.pacer().or(self.pacer);
    }
}

/// The setters of a run's settings, the same on [`Retry`](crate::Retry) and
/// [`Batch`](crate::Batch): both keep them in a `settings: RunSettings<'a>`.
macro_rules! run_setters {
    () => {
        /// Names the run (each item's run, in a batch) in log lines, metrics
        /// labels and errors (default: `"operation"`).
        pub fn name(mut self, name: impl Into<$crate::retry::Name>) -> Self {
            self.settings.name = name.into();
            self
        }

        /// Runs on this clock (default: [`SystemClock`](crate::SystemClock)); pass a
        /// [`ManualClock`](crate::ManualClock) to test in virtual time.
        pub fn clock(mut self, clock: &'a dyn $crate::clock::Clock) -> Self {
            self.settings.clock = Some(clock);
            self
        }

        /// Takes every guard `guards` holds, and its clock if it has one (a guard
        /// set already and not in `guards` is kept).
        pub fn guards(mut self, guards: &'a $crate::guards::Guards) -> Self {
            self.settings.set_guards(guards);
            self
        }

        /// Asks `breaker` before every attempt: an open circuit ends the run (in a
        /// batch, every remaining item's run: they fail fast) at once with [`RetryError::CircuitOpen`](crate::RetryError::CircuitOpen),
        /// without sleeping against it (or, if the policy
        /// [waits on open circuits](crate::RetryPolicyBuilder::wait_on_open_circuit),
        /// waits for the probe). Every attempt's outcome is recorded on the breaker
        /// by its verdict (see [`Permit::record`](crate::breaker::Permit::record)):
        /// `Retry` and `Timeout` are failures; permanent errors and throttling
        /// count as the breaker's config says (by default they do not open it).
        pub fn breaker(mut self, breaker: &'a $crate::breaker::CircuitBreaker) -> Self {
            self.settings.breaker = Some(breaker);
            self
        }

        /// Draws every retry from `budget` before sleeping: when it is spent the
        /// run ends at once with [`RetryError::BudgetExhausted`](crate::RetryError::BudgetExhausted).
        /// The first attempt counts as a request, and a success gives tokens back.
        pub fn budget(mut self, budget: &'a $crate::budget::RetryBudget) -> Self {
            self.settings.budget = Some(budget);
            self
        }

        /// Asks `throttle` before every attempt (it may reject locally, ending the
        /// run with [`RetryError::Throttled`](crate::RetryError::Throttled)) and
        /// tells it every outcome.
        pub fn throttle(mut self, throttle: &'a $crate::throttle::AdaptiveThrottle) -> Self {
            self.settings.throttle = Some(throttle);
            self
        }

        /// Waits for a slot from `pacer` before every attempt (never past the
        /// deadline: a wait that would cross it ends the run with
        /// [`RetryError::DeadlineExceeded`](crate::RetryError::DeadlineExceeded))
        /// and tells it every outcome, so it learns the rate the downstream
        /// accepts. See [`Pacer`](crate::Pacer).
        pub fn pacer(mut self, pacer: &'a $crate::pacer::Pacer) -> Self {
            self.settings.pacer = Some(pacer);
            self
        }
    };
}
pub(crate) use run_setters;
