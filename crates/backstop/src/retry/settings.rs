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
