//! What a shared breaker tells its store, and asks it: [`BreakerLink`].

use super::event::{BreakerEvent, Transition};

/// What a shared breaker tells its store, and asks it. Both methods are
/// called on the callers' threads (sync code and async tasks alike) and
/// must return at once: no I/O.
pub trait BreakerLink: Send + Sync {
    /// After every change of state the breaker made itself: a trip (cause
    /// `ConsecutiveFailures`, `FailureRate`, `SlowCallRate`), a probe's
    /// verdict (`ProbeFailed`, `ProbesSucceeded`), `OpenPeriodOver`,
    /// `Isolated`, `Reset`. Changes made through the [`SharedBreaker`](super::SharedBreaker)
    /// handle (cause [`Transition::Shared`]) are not reported back.
    fn changed(&self, event: &BreakerEvent<'_>);

    /// The breaker's open period is over: may this process send the probe?
    /// `false` keeps the breaker open and rejects the call (with
    /// [`CircuitState::HalfOpen`](super::CircuitState::HalfOpen) and a zero `retry_after`: the probe is
    /// someone else's). A store with no connection answers `true`.
    fn may_probe(&self) -> bool;
}

/// Whether a change was the breaker's own (to report to its link).
pub(super) fn is_own(cause: Transition) -> bool {
    cause != Transition::Shared
}
