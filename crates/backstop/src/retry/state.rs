//! The decisions of a run, shared by the sync loop and the async future:
//! before each attempt, ask the breaker; after each failure, sleep how long,
//! or stop with which error.

use std::fmt::Display;
use std::time::{Duration, Instant};

use crate::backoff::Delays;
use crate::breaker::{CircuitBreaker, CircuitOpen, Permit};
use crate::clock::{Clock, SystemClock};
use crate::error::{Name, RetryError};
use crate::event::{GiveUp, OnRetry, RetryEvent, emit};
use crate::policy::RetryPolicy;
use crate::retry::RunSettings;
use crate::verdict::{Classify, Verdict};

/// What to do next, when not simply making the attempt or returning a value.
pub(crate) enum Step<E> {
    /// Sleep this long, then try again.
    Sleep(Duration),
    /// Give up with this error.
    Stop(RetryError<E>),
}

/// The mutable part of one run: attempt count, start time, delay stream,
/// breaker permit, last error.
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
    permit: Option<Permit<'a>>,
    /// The error of the last attempt, kept across its sleep in case the next
    /// attempt never runs (an open circuit).
    last: Option<E>,
}

impl<'a, E: Display> RunState<'a, E> {
    pub(crate) fn new(settings: RunSettings<'a>) -> Self {
        let RunSettings {
            policy,
            name,
            clock,
            breaker,
        } = settings;
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
            permit: None,
            last: None,
        }
    }

    /// Counts the attempt about to be made and asks the breaker, if any.
    /// `None`: make the attempt.
    #[inline]
    pub(crate) fn before_attempt(&mut self) -> Option<Step<E>> {
        self.attempt = self.attempt.saturating_add(1);
        let breaker = self.breaker?;
        match breaker.try_acquire() {
            Ok(permit) => {
                self.permit = Some(permit);
                None
            }
            Err(open) => Some(self.circuit_open(open)),
        }
    }

    /// Records a success.
    #[inline]
    pub(crate) fn succeeded(&mut self) {
        if let Some(permit) = self.permit.take() {
            permit.success();
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
        self.delays
            .get_or_insert_with(|| backoff.delays(seed))
            .next()
            .unwrap_or(Duration::ZERO)
    }

    /// Whether sleeping `delay` now would cross the deadline.
    fn crosses_deadline(&self, elapsed: Duration, delay: Duration) -> bool {
        self.policy
            .max_elapsed
            .is_some_and(|deadline| elapsed.saturating_add(delay) > deadline)
    }

    /// Decides what follows the failed attempt that returned `error`.
    pub(crate) fn failed<C, H>(&mut self, error: E, classifier: &C, hook: &mut H) -> Step<E>
    where
        C: Classify<E> + ?Sized,
        H: OnRetry<E> + ?Sized,
    {
        emit::attempt_failed(&self.name);
        let elapsed = self.elapsed();
        let attempts = self.attempt;
        let verdict = classifier.classify(&error);
        if let Some(permit) = self.permit.take() {
            permit.record(verdict);
        }
        if verdict == Verdict::Fail {
            return self.stop(GiveUp::Rejected, |name| RetryError::Rejected {
                name,
                attempts,
                error,
            });
        }
        if attempts >= self.policy.max_attempts {
            return self.stop(GiveUp::Attempts, |name| RetryError::Exhausted {
                name,
                attempts,
                elapsed,
                last: error,
            });
        }
        let backoff_delay = self.next_delay();
        let policy = self.policy;
        let (delay, server_hint) = match verdict {
            Verdict::RetryAfter(hint) if hint > policy.max_retry_after => {
                let max_retry_after = policy.max_retry_after;
                return self.stop(GiveUp::RetryAfter, |name| RetryError::RetryAfterTooLong {
                    name,
                    attempts,
                    retry_after: hint,
                    max_retry_after,
                    last: error,
                });
            }
            Verdict::RetryAfter(hint) => (hint, true),
            _ => (backoff_delay, false),
        };
        // Never sleep against a circuit that this failure (or others) opened.
        let delay = match self.breaker.and_then(CircuitBreaker::would_reject) {
            None => delay,
            Some(open) => match self.wait_for_probe(&open, elapsed, delay) {
                Some(wait) => wait,
                None => {
                    return self.stop(GiveUp::CircuitOpen, |name| RetryError::CircuitOpen {
                        name,
                        attempts,
                        open,
                        last: Some(error),
                    });
                }
            },
        };
        if let Some(deadline) = policy
            .max_elapsed
            .filter(|_| self.crosses_deadline(elapsed, delay))
        {
            return self.stop(GiveUp::Deadline, |name| RetryError::DeadlineExceeded {
                name,
                attempts,
                elapsed,
                deadline,
                last: error,
            });
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
    fn wait_for_probe(
        &self,
        open: &CircuitOpen,
        elapsed: Duration,
        delay: Duration,
    ) -> Option<Duration> {
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
            return Step::Sleep(wait);
        }
        let last = self.last.take();
        self.stop(GiveUp::CircuitOpen, |name| RetryError::CircuitOpen {
            name,
            attempts,
            open,
            last,
        })
    }

    fn stop(&mut self, why: GiveUp, make: impl FnOnce(Name) -> RetryError<E>) -> Step<E> {
        // A clone of a `&'static str` name is free; an owned name costs one
        // allocation, on the give-up path only.
        let err = make(self.name.clone());
        emit::gave_up(&self.name, why, &err);
        Step::Stop(err)
    }
}
