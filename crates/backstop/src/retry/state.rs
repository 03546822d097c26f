//! The decisions of a run, shared by the sync loop and the async future:
//! before each attempt, ask the breaker and the throttle; after each failure,
//! sleep how long, or stop with which error.
//!
//! The gates after a failure come in a fixed order, cheapest and most
//! permanent first: the classifier's verdict, the attempt limit, the server's
//! hint, the breaker, the deadline, and last the budget, so that tokens are
//! only withdrawn for a retry that will really be made.

use std::fmt::Display;
use std::time::{Duration, Instant};

use super::error::RetryError;
use super::event::{OnRetry, RetryEvent};
use super::log::{self as emit, GiveUp};
use super::settings::{Name, RunSettings};
use crate::backoff::Delays;
use crate::breaker::{CircuitBreaker, CircuitOpen, Permit};
use crate::budget::{RetryBudget, Withdrawal};
use crate::clock::{Clock, SleepFuture, SystemClock};
use crate::pacer::{Pacer, Slot};
use crate::policy::RetryPolicy;
use crate::throttle::AdaptiveThrottle;
use crate::verdict::{Classify, Verdict};

/// The longest a run sleeps for its pacer slot before asking again.
const PACE_RECHECK: Duration = Duration::from_millis(100);

/// What to do next, when not simply making the attempt or returning a value.
pub(crate) enum Step<E> {
    /// Sleep this long, then try again.
    Sleep(Duration),
    /// Give up with this error.
    Stop(RetryError<E>),
}

/// What ends a running async attempt early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cutoff {
    /// The per-attempt timeout.
    AttemptTimeout(Duration),
    /// The run's deadline.
    Deadline,
}

/// The mutable part of one run.
pub(crate) struct RunState<'a, E> {
    pub(crate) policy: &'a RetryPolicy,
    pub(crate) clock: &'a dyn Clock,
    name: Name,
    attempt: u32,
    /// Read at the start when the policy has a deadline, else at the first failure.
    start: Option<Instant>,
    /// Made at the first retry: the success path draws no seed.
    delays: Option<Delays>,
    breaker: Option<&'a CircuitBreaker>,
    budget: Option<&'a RetryBudget>,
    throttle: Option<&'a AdaptiveThrottle>,
    pacer: Option<&'a Pacer>,
    /// The pacer's slot for the next attempt, while waiting for it.
    slot: Option<Slot>,
    permit: Option<Permit<'a>>,
    /// Tokens withdrawn for the retry being slept towards (refunded if the
    /// run is dropped first), then for the attempt being made.
    pending: Option<Withdrawal>,
    spent: Option<Withdrawal>,
    /// The error of the last attempt, kept across its sleep in case the next
    /// attempt never runs (an open circuit, a deadline).
    last: Option<E>,
}

impl<'a, E: Display> RunState<'a, E> {
    pub(crate) fn new(settings: RunSettings<'a>) -> Self {
        let RunSettings { policy, name, clock, breaker, budget, throttle, pacer } = settings;
        let clock: &'a dyn Clock = clock.unwrap_or(&SystemClock);
        let start = policy.max_elapsed.map(|_| clock.now());
        Self {
            policy,
            clock,
            name,
            attempt: 0,
            start,
            delays: None,
            breaker,
            budget,
            throttle,
            pacer,
            slot: None,
            permit: None,
            pending: None,
            spent: None,
            last: None,
        }
    }

    /// Counts the attempt about to be made and asks the breaker and the
    /// throttle. `None`: make the attempt.
    #[inline]
    pub(crate) fn before_attempt(&mut self) -> Option<Step<E>> {
        if let Some(pacer) = self.pacer {
            // The slot is asked again after each wait: a rate change moves it.
            let (slot, wait) = pacer.turn(self.slot.take());
            if !wait.is_zero() {
                self.slot = slot;
                return Some(self.pace(wait));
            }
        }
        self.attempt = self.attempt.saturating_add(1);
        self.spent = self.pending.take();
        if let Some(budget) = self.budget.filter(|_| self.attempt == 1) {
            budget.record_request();
        }
        if let Some(breaker) = self.breaker {
            match breaker.try_acquire() {
                Ok(permit) => self.permit = Some(permit),
                Err(open) => return Some(self.circuit_open(open)),
            }
        }
        if let Some(throttle) = self.throttle {
            if let Err(local) = throttle.try_acquire() {
                self.permit = None; // counts nothing on the breaker
                self.refund_spent();
                let (attempts, last) = (self.attempt, self.last.take());
                emit::throttled_locally(&self.name, local.probability());
                return Some(self.stop(GiveUp::Throttled, |name| RetryError::Throttled { name, attempts, last }));
            }
        }
        None
    }

    /// Waits `wait` for the pacer's slot, unless that crosses the deadline.
    fn pace(&mut self, wait: Duration) -> Step<E> {
        let elapsed = self.elapsed();
        if self.crosses_deadline(elapsed, wait) {
            self.refund_pending();
            let last = self.last.take();
            return self.deadline_stop(elapsed, last);
        }
        // Look again at least this often: a rate that rose since moves the
        // slot earlier, and a caller that slept on would go late, in a bunch.
        Step::Sleep(wait.min(PACE_RECHECK))
    }

    /// Attempts made so far, the current one included.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Records a success.
    #[inline]
    pub(crate) fn succeeded(&mut self) {
        if let Some(pacer) = self.pacer {
            pacer.record_success();
        }
        if let Some(permit) = self.permit.take() {
            permit.success();
        }
        if let Some(throttle) = self.throttle {
            throttle.record(true);
        }
        if let Some(budget) = self.budget {
            budget.record_success(self.spent.take());
        }
        emit::attempt_succeeded(&self.name, self.attempt);
    }

    /// Time since the run started, starting the count now if it had not.
    fn elapsed(&mut self) -> Duration {
        let now = self.clock.now();
        now.saturating_duration_since(*self.start.get_or_insert(now))
    }

    /// The backoff's next delay.
    fn next_delay(&mut self) -> Duration {
        let (backoff, seed) = (&self.policy.backoff, self.policy.seed);
        self.delays.get_or_insert_with(|| backoff.delays(seed)).next().unwrap_or(Duration::ZERO)
    }

    /// Whether sleeping `delay` now would cross the deadline.
    fn crosses_deadline(&self, elapsed: Duration, delay: Duration) -> bool {
        self.policy.max_elapsed.is_some_and(|deadline| elapsed.saturating_add(delay) > deadline)
    }

    /// The first attempt failed before the state existed (a bare run's fast
    /// path): count it, then judge it as any other.
    pub(crate) fn failed_first<C, H>(&mut self, error: E, classifier: &C, hook: &mut H) -> Step<E>
    where
        C: Classify<E> + ?Sized,
        H: OnRetry<E> + ?Sized,
    {
        self.attempt = 1;
        self.failed(error, classifier, hook)
    }

    /// Asks the classifier about a failed attempt, then decides what follows.
    pub(crate) fn failed<C, H>(&mut self, error: E, classifier: &C, hook: &mut H) -> Step<E>
    where
        C: Classify<E> + ?Sized,
        H: OnRetry<E> + ?Sized,
    {
        let verdict = classifier.classify(&error);
        self.failed_with(error, verdict, hook)
    }

    /// Decides what follows the failed attempt that returned `error`, judged `verdict`.
    pub(crate) fn failed_with<H>(&mut self, error: E, verdict: Verdict, hook: &mut H) -> Step<E>
    where
        H: OnRetry<E> + ?Sized,
    {
        emit::attempt_failed(&self.name);
        let elapsed = self.elapsed();
        let attempts = self.attempt;
        if let Some(permit) = self.permit.take() {
            permit.record(verdict);
        }
        if let Some(throttle) = self.throttle {
            throttle.record(!verdict.is_refusal());
        }
        if let Some(pacer) = self.pacer {
            pacer.record(verdict);
        }
        self.spent = None; // a failed retry's tokens stay spent
        if verdict == Verdict::Fail {
            return self.stop(GiveUp::Rejected, |name| RetryError::Rejected { name, attempts, last: error });
        }
        if attempts >= self.policy.max_attempts {
            return self.stop(GiveUp::Attempts, |name| RetryError::Exhausted { name, attempts, elapsed, last: error });
        }
        let backoff_delay = self.next_delay();
        let policy = self.policy;
        let (mut delay, server_hint) = match verdict {
            // `max_retry_after(ZERO)` means "a hint always ends the run",
            // a zero hint included.
            Verdict::RetryAfter(hint) if hint > policy.max_retry_after || policy.max_retry_after.is_zero() => {
                let max_retry_after = policy.max_retry_after;
                return self.stop(GiveUp::RetryAfter, |name| RetryError::RetryAfterTooLong {
                    name,
                    attempts,
                    retry_after: hint,
                    max_retry_after,
                    last: error,
                });
            }
            Verdict::RetryAfter(hint) => {
                let limit = policy.max_retry_after;
                let delays = self.delays.get_or_insert_with(|| policy.backoff.delays(policy.seed));
                (delays.after_hint(hint, limit), true)
            }
            _ => (backoff_delay, false),
        };
        // Never sleep against a circuit that this failure (or others) opened.
        if let Some(open) = self.breaker.and_then(CircuitBreaker::would_reject) {
            match self.wait_for_probe(&open, elapsed, delay) {
                Some(wait) => delay = wait,
                None => {
                    let last = Some(error);
                    return self.stop(GiveUp::CircuitOpen, |name| RetryError::CircuitOpen {
                        name,
                        attempts,
                        open,
                        last,
                    });
                }
            }
        }
        if self.crosses_deadline(elapsed, delay) {
            return self.deadline_stop(elapsed, Some(error));
        }
        if let Some(budget) = self.budget {
            match budget.try_withdraw(verdict) {
                Some(withdrawal) => self.pending = Some(withdrawal),
                None => {
                    return self.stop(GiveUp::Budget, |name| RetryError::BudgetExhausted {
                        name,
                        attempts,
                        last: error,
                    });
                }
            }
        }
        let event = RetryEvent {
            name: &self.name,
            attempt: attempts,
            max_attempts: policy.max_attempts,
            delay,
            error: &error,
            elapsed,
            server_hint,
        };
        hook.on_retry(&event);
        emit::retrying(&self.name, &event);
        self.last = Some(error);
        Step::Sleep(delay)
    }

    /// How long to wait for `open` to let a probe through instead of sleeping
    /// `delay`, if the policy waits on open circuits and the wait fits.
    fn wait_for_probe(&self, open: &CircuitOpen, elapsed: Duration, delay: Duration) -> Option<Duration> {
        let policy = self.policy;
        if !policy.wait_on_open_circuit || self.attempt >= policy.max_attempts {
            return None;
        }
        let wait = open.retry_after()?.max(delay);
        let fits = wait <= policy.max_retry_after && !self.crosses_deadline(elapsed, wait);
        fits.then(|| {
            emit::waiting_for_circuit(&self.name, open, wait);
            wait
        })
    }

    /// The breaker rejected the attempt: wait for its probe if the policy
    /// says so and the wait fits, otherwise stop.
    fn circuit_open(&mut self, open: CircuitOpen) -> Step<E> {
        let attempts = self.attempt;
        let elapsed = self.elapsed();
        let delay = self.next_delay();
        if let Some(wait) = self.wait_for_probe(&open, elapsed, delay) {
            // The retry the tokens paid for is only put off: they go with it
            // (refunded if the run is dropped while it waits, returned by a
            // success as usual).
            self.pending = self.spent.take();
            return Step::Sleep(wait);
        }
        self.refund_spent();
        let last = self.last.take();
        self.stop(GiveUp::CircuitOpen, |name| RetryError::CircuitOpen { name, attempts, open, last })
    }

    /// The attempt the budget paid for will not be made: give the tokens back.
    fn refund_spent(&mut self) {
        if let (Some(budget), Some(w)) = (self.budget, self.spent.take()) {
            budget.refund(w);
        }
    }

    /// For an async attempt about to start: a timer for whichever comes first
    /// of the per-attempt `timeout` and the deadline, if either is set.
    pub(crate) fn attempt_timer(&mut self, timeout: Option<Duration>) -> Option<(SleepFuture, Cutoff)> {
        let timeout = timeout.filter(|t| !t.is_zero());
        let policy = self.policy;
        let remaining = policy.max_elapsed.map(|deadline| deadline.saturating_sub(self.elapsed()));
        let (limit, cutoff) = match (timeout, remaining) {
            (Some(t), Some(r)) if r <= t => (r, Cutoff::Deadline),
            (Some(t), _) => (t, Cutoff::AttemptTimeout(t)),
            (None, Some(r)) => (r, Cutoff::Deadline),
            (None, None) => return None,
        };
        Some((self.clock.timer(limit), cutoff))
    }

    /// The deadline came while an attempt was running: the attempt is dropped.
    pub(crate) fn deadline_passed(&mut self) -> Step<E> {
        self.permit = None; // an abandoned attempt counts nothing on the breaker
        let (elapsed, last) = (self.elapsed(), self.last.take());
        self.deadline_stop(elapsed, last)
    }

    /// Stops at the deadline, `elapsed` into the run, keeping `last`.
    fn deadline_stop(&mut self, elapsed: Duration, last: Option<E>) -> Step<E> {
        let (attempts, deadline) = (self.attempt, self.policy.max_elapsed.unwrap_or_default());
        self.stop(GiveUp::Deadline, |name| RetryError::DeadlineExceeded { name, attempts, elapsed, deadline, last })
    }

    fn stop(&mut self, why: GiveUp, make: impl FnOnce(Name) -> RetryError<E>) -> Step<E> {
        // A clone of a `&'static str` name is free; an owned name costs one
        // allocation, on the give-up path only.
        let err = make(self.name.clone());
        emit::gave_up(&self.name, why, &err);
        Step::Stop(err)
    }
}

impl<E> RunState<'_, E> {
    /// The run is over, or dropped: a pacer slot it still held goes to the
    /// next caller.
    fn release_slot(&mut self) {
        if let (Some(pacer), Some(slot)) = (self.pacer, self.slot.take()) {
            pacer.release(slot);
        }
    }

    /// The retry the budget paid for (not yet begun) will not be made.
    fn refund_pending(&mut self) {
        if let (Some(budget), Some(w)) = (self.budget, self.pending.take()) {
            budget.refund(w);
        }
    }
}

impl<E> Drop for RunState<'_, E> {
    /// A run dropped mid-sleep (its future cancelled) gives back the tokens
    /// it had withdrawn for the retry it will never make.
    fn drop(&mut self) {
        self.refund_pending();
        self.release_slot();
    }
}
