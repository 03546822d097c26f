//! The decisions of a run, shared by the sync loop and the async future:
//! after each failed attempt, sleep how long, or stop with which error.

use std::fmt::Display;
use std::time::{Duration, Instant};

use crate::backoff::Delays;
use crate::clock::Clock;
use crate::error::{Name, RetryError};
use crate::event::{GiveUp, OnRetry, RetryEvent, emit};
use crate::policy::RetryPolicy;
use crate::verdict::{Classify, Verdict};

/// What to do after a failed attempt.
pub(crate) enum Step<E> {
    /// Sleep this long, then make the next attempt.
    Sleep(Duration),
    /// Give up with this error.
    Stop(RetryError<E>),
}

/// The mutable part of one run: attempt count, start time, delay stream.
pub(crate) struct RunState<'a> {
    pub(crate) policy: &'a RetryPolicy,
    pub(crate) clock: &'a dyn Clock,
    name: Name,
    attempt: u32,
    /// Read at the start when the policy has a deadline, else at the first failure.
    start: Option<Instant>,
    /// Made at the first retry: the success path draws no seed.
    delays: Option<Delays>,
}

impl<'a> RunState<'a> {
    pub(crate) fn new(policy: &'a RetryPolicy, clock: &'a dyn Clock, name: Name) -> Self {
        let start = policy.max_elapsed.map(|_| clock.now());
        Self {
            policy,
            clock,
            name,
            attempt: 0,
            start,
            delays: None,
        }
    }

    /// Counts the attempt about to be made.
    #[inline]
    pub(crate) fn begin_attempt(&mut self) {
        self.attempt = self.attempt.saturating_add(1);
    }

    /// Records a success.
    #[inline]
    pub(crate) fn succeeded(&self) {
        emit::attempt_succeeded(&self.name, self.attempt);
    }

    /// Decides what follows the failed attempt that returned `error`.
    pub(crate) fn failed<E, C, H>(&mut self, error: E, classifier: &C, hook: &mut H) -> Step<E>
    where
        E: Display,
        C: Classify<E> + ?Sized,
        H: OnRetry<E> + ?Sized,
    {
        emit::attempt_failed(&self.name);
        let now = self.clock.now();
        let elapsed = now.saturating_duration_since(*self.start.get_or_insert(now));
        let attempts = self.attempt;
        let verdict = classifier.classify(&error);
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
        let (policy, seed) = (self.policy, self.policy.seed);
        let backoff_delay = self
            .delays
            .get_or_insert_with(|| policy.backoff.delays(seed))
            .next()
            .unwrap_or(Duration::ZERO);
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
        if let Some(deadline) = policy.max_elapsed {
            if elapsed.saturating_add(delay) > deadline {
                return self.stop(GiveUp::Deadline, |name| RetryError::DeadlineExceeded {
                    name,
                    attempts,
                    elapsed,
                    deadline,
                    last: error,
                });
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
        Step::Sleep(delay)
    }

    fn stop<E: Display>(
        &mut self,
        why: GiveUp,
        make: impl FnOnce(Name) -> RetryError<E>,
    ) -> Step<E> {
        // A clone of a `&'static str` name is free; an owned name costs one
        // allocation, on the give-up path only.
        let err = make(self.name.clone());
        emit::gave_up(&self.name, why, &err);
        Step::Stop(err)
    }
}
