//! What a run takes besides its operation, classifier and callback: the
//! policy and the name ([`Bare`]), and once any is set, the clock and the
//! guards ([`RunSettings`]). Shared by [`Retry`](super::Retry) and
//! [`Batch`](crate::Batch), whose items each get a copy.
//!
//! Which of the two a run holds is part of its type, so a run with nothing
//! but a policy and a name is as small as it can be: its future is cheap to
//! move into the task that awaits it.

use std::borrow::Cow;

use crate::breaker::CircuitBreaker;
use crate::budget::RetryBudget;
use crate::clock::Clock;
use crate::guards::Guards;
use crate::limit::ConcurrencyLimit;
use crate::pacer::Pacer;
use crate::policy::RetryPolicy;
use crate::throttle::AdaptiveThrottle;

/// The name a run is known by in logs, metrics and errors: a `&'static str`
/// costs nothing, a `String` is kept as given.
pub type Name = Cow<'static, str>;

/// The name a run has unless it is given one.
pub const DEFAULT_NAME: &str = "operation";

/// The settings of a run given nothing but its policy and name (the default):
/// the smallest run there is.
#[derive(Debug, Clone)]
pub struct Bare<'a> {
    pub(crate) policy: &'a RetryPolicy,
    pub(crate) name: Name,
}

/// The settings of a run given a clock or a guard: the policy, the name, the
/// clock and the guards, borrowed for the run.
#[derive(Debug, Clone)]
pub struct RunSettings<'a> {
    pub(crate) policy: &'a RetryPolicy,
    pub(crate) name: Name,
    pub(crate) clock: Option<&'a dyn Clock>,
    pub(crate) breaker: Option<&'a CircuitBreaker>,
    pub(crate) budget: Option<&'a RetryBudget>,
    pub(crate) throttle: Option<&'a AdaptiveThrottle>,
    pub(crate) pacer: Option<&'a Pacer>,
    pub(crate) limit: Option<&'a ConcurrencyLimit>,
}

/// A run's settings: [`Bare`] or [`RunSettings`]. Implemented by those two
/// only; the run's type says which it holds.
pub trait Settings<'a>: Clone + sealed::Sealed {
    /// Whether a first attempt that succeeds needs nothing at all: no guard
    /// to ask or tell, no deadline to time.
    #[doc(hidden)]
    fn is_bare(&self) -> bool;
    /// Whether the first attempt may go now, with no run state: the run is
    /// bare, or its only guard is a pacer that is not pacing (which counts
    /// the send). Asked once, just before the first attempt.
    #[doc(hidden)]
    fn go_first(&self) -> bool;
    /// A first attempt that went by [`go_first`](Self::go_first) succeeded:
    /// the pacer hears of it (it grows its rate if it began pacing meanwhile).
    #[doc(hidden)]
    fn first_succeeded(&self);
    /// The run's name.
    #[doc(hidden)]
    fn name(&self) -> &Name;
    /// Renames the run.
    #[doc(hidden)]
    fn rename(&mut self, name: Name);
    /// The settings with a clock and guards (none set).
    #[doc(hidden)]
    fn into_full(self) -> RunSettings<'a>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Bare<'_> {}
    impl Sealed for super::RunSettings<'_> {}
}

impl<'a> Bare<'a> {
    pub(crate) fn new(policy: &'a RetryPolicy) -> Self {
        Self { policy, name: Name::Borrowed(DEFAULT_NAME) }
    }
}

impl<'a> Settings<'a> for Bare<'a> {
    #[inline]
    fn is_bare(&self) -> bool {
        self.policy.max_elapsed.is_none()
    }
    #[inline]
    fn go_first(&self) -> bool {
        self.is_bare()
    }
    #[inline(always)]
    fn first_succeeded(&self) {}
    #[inline]
    fn name(&self) -> &Name {
        &self.name
    }
    #[inline]
    fn rename(&mut self, name: Name) {
        self.name = name;
    }
    #[inline(always)]
    fn into_full(self) -> RunSettings<'a> {
        RunSettings { name: self.name, ..RunSettings::new(self.policy) }
    }
}

impl<'a> Settings<'a> for RunSettings<'a> {
    #[inline]
    fn is_bare(&self) -> bool {
        RunSettings::is_bare(self)
    }
    #[inline]
    fn go_first(&self) -> bool {
        // An idle pacer asks nothing of a first attempt but to count it: it
        // goes as a bare run's does (no clock read, no run state).
        self.breaker.is_none()
            && self.budget.is_none()
            && self.throttle.is_none()
            && self.limit.is_none()
            && self.policy.max_elapsed.is_none()
            && self.pacer.is_none_or(Pacer::go_if_idle)
    }
    #[inline]
    fn first_succeeded(&self) {
        if let Some(pacer) = self.pacer {
            pacer.record_success();
        }
    }
    #[inline]
    fn name(&self) -> &Name {
        &self.name
    }
    #[inline]
    fn rename(&mut self, name: Name) {
        self.name = name;
    }
    #[inline(always)]
    fn into_full(self) -> RunSettings<'a> {
        self
    }
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
            limit: None,
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
            && self.limit.is_none()
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
        self.limit = guards.limit().or(self.limit);
    }
}

/// The setters of a run's clock and guards, the same on [`Retry`](crate::Retry)
/// and [`Batch`](crate::Batch): each type returns `$out` from a
/// `with_settings` that applies a change to its [`RunSettings`].
macro_rules! run_setters {
    ($out:ty) => {
        /// Runs on this clock (default: [`SystemClock`](crate::SystemClock)); pass a
        /// [`ManualClock`](crate::ManualClock) to test in virtual time.
        #[inline]
        pub fn clock(self, clock: &'a dyn $crate::clock::Clock) -> $out {
            self.with_settings(|s| s.clock = Some(clock))
        }

        /// Takes every guard `guards` holds, and its clock if it has one (a guard
        /// set already and not in `guards` is kept).
        #[inline]
        pub fn guards(self, guards: &'a $crate::guards::Guards) -> $out {
            self.with_settings(|s| s.set_guards(guards))
        }

        /// Asks `breaker` before every attempt: an open circuit ends the run (in a
        /// batch, every remaining item's run: they fail fast) at once with [`RetryError::CircuitOpen`](crate::RetryError::CircuitOpen),
        /// without sleeping against it (or, if the policy
        /// [waits on open circuits](crate::RetryPolicyBuilder::wait_on_open_circuit),
        /// waits for the probe). Every attempt's outcome is recorded on the breaker
        /// by its verdict (see [`Permit::record`](crate::breaker::Permit::record)):
        /// `Retry` and `Timeout` are failures; permanent errors and throttling
        /// count as the breaker's config says (by default they do not open it).
        #[inline]
        pub fn breaker(self, breaker: &'a $crate::breaker::CircuitBreaker) -> $out {
            self.with_settings(|s| s.breaker = Some(breaker))
        }

        /// Draws every retry from `budget` before sleeping: when it is spent the
        /// run ends at once with [`RetryError::BudgetExhausted`](crate::RetryError::BudgetExhausted).
        /// The first attempt counts as a request, and a success gives tokens back.
        #[inline]
        pub fn budget(self, budget: &'a $crate::budget::RetryBudget) -> $out {
            self.with_settings(|s| s.budget = Some(budget))
        }

        /// Asks `throttle` before every attempt (it may reject locally, ending the
        /// run with [`RetryError::Throttled`](crate::RetryError::Throttled)) and
        /// tells it every outcome.
        #[inline]
        pub fn throttle(self, throttle: &'a $crate::throttle::AdaptiveThrottle) -> $out {
            self.with_settings(|s| s.throttle = Some(throttle))
        }

        /// Waits for a slot from `pacer` before every attempt (never past the
        /// deadline: a wait that would cross it ends the run with
        /// [`RetryError::DeadlineExceeded`](crate::RetryError::DeadlineExceeded))
        /// and tells it every outcome, so it learns the rate the downstream
        /// accepts. See [`Pacer`](crate::Pacer).
        #[inline]
        pub fn pacer(self, pacer: &'a $crate::pacer::Pacer) -> $out {
            self.with_settings(|s| s.pacer = Some(pacer))
        }

        /// Takes a place from `limit` before every attempt and gives it back
        /// at the attempt's outcome (not held through the sleeps between
        /// attempts): a call waits in the limit's queue, or the run ends with
        /// [`RetryError::Limited`](crate::RetryError::Limited) when the queue
        /// is full or the wait passes its timeout. See
        /// [`ConcurrencyLimit`](crate::limit::ConcurrencyLimit).
        #[inline]
        pub fn limit(self, limit: &'a $crate::limit::ConcurrencyLimit) -> $out {
            self.with_settings(|s| s.limit = Some(limit))
        }
    };
}
pub(crate) use run_setters;
