//! A breaker's permission for one call: [`Permit`].

use std::time::Instant;

use super::core::{Core, Outcome};
use super::state::Word;
use crate::verdict::Verdict;

/// Permission for one call, from [`CircuitBreaker::try_acquire`](super::CircuitBreaker::try_acquire).
///
/// Make the call, then say how it went with [`success`](Self::success),
/// [`failure`](Self::failure), [`ignore`](Self::ignore) or
/// [`record`](Self::record). A permit dropped without a word (the call was
/// cancelled, a panic unwound) counts as nothing and frees its half-open probe
/// slot, so an abandoned probe never wedges the breaker.
///
/// ```
/// use backstop::{CircuitBreaker, breaker::BreakerConfig};
///
/// let breaker = CircuitBreaker::new("s3_upload", BreakerConfig::default());
/// match breaker.try_acquire() {
///     Ok(permit) => match std::fs::metadata("/") {
///         Ok(_) => permit.success(),
///         Err(_) => permit.failure(),
///     },
///     Err(open) => eprintln!("{open}"), // fail fast
/// }
/// ```
#[must_use = "a permit records nothing unless told how the call went"]
#[derive(Debug)]
pub struct Permit<'a> {
    core: &'a Core,
    word: Word,
    started: Option<Instant>,
    done: bool,
}

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(core: &'a Core, word: Word) -> Self {
        let started = if core.times_calls() { Some(core.now()) } else { None };
        Self { core, word, started, done: false }
    }

    /// The state the permit was issued in: `Closed`, or `HalfOpen` for a probe.
    pub fn state(&self) -> super::CircuitState {
        self.word.state()
    }

    /// The call succeeded.
    #[inline]
    pub fn success(self) {
        self.finish(Outcome::Success)
    }

    /// The call failed in a way that counts against the downstream.
    pub fn failure(self) {
        self.finish(Outcome::Failure)
    }

    /// The call's outcome says nothing about the downstream: count nothing,
    /// free the probe slot.
    pub fn ignore(self) {
        self.finish(Outcome::Ignored)
    }

    /// Records an error by its classifier's verdict: `Retry` and `Timeout`
    /// are failures; `Fail` (a permanent error, such as a 404) and throttling
    /// (`Throttled`, `RetryAfter`) count as the breaker's
    /// [`permanent_errors`](super::BreakerConfigBuilder::permanent_errors) and
    /// [`throttling`](super::BreakerConfigBuilder::throttling) settings say
    /// (by default: a success, and nothing).
    pub fn record(self, verdict: Verdict) {
        let outcome = Outcome::of_verdict(verdict, &self.core.config);
        self.finish(outcome)
    }

    #[inline]
    fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.core.record(self.word, outcome, self.started);
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.done {
            self.core.abandon(self.word);
        }
    }
}

impl Permit<'_> {
    /// This permit, holding a clone of its breaker instead of a borrow.
    pub(crate) fn into_owned(mut self, breaker: super::CircuitBreaker) -> OwnedPermit {
        self.done = true; // handed over: the owned permit reports, or abandons
        OwnedPermit { breaker, word: self.word, started: self.started, done: false }
    }
}

/// A [`Permit`] that holds its breaker (a clone, sharing its state) rather
/// than borrowing it, from
/// [`CircuitBreaker::try_acquire_owned`](super::CircuitBreaker::try_acquire_owned):
/// it can be kept in a struct or sent to another thread between the call's
/// start and its outcome, as a language binding's `allow_request()` /
/// `record_success()` pair needs. Reported and dropped as a `Permit` is.
#[derive(Debug)]
#[must_use = "a permit records nothing unless told how the call went"]
pub struct OwnedPermit {
    breaker: super::CircuitBreaker,
    word: Word,
    started: Option<Instant>,
    done: bool,
}

impl OwnedPermit {
    /// The state the permit was issued in: `Closed`, or `HalfOpen` for a probe.
    pub fn state(&self) -> super::CircuitState {
        self.word.state()
    }

    /// The call succeeded.
    pub fn success(self) {
        self.finish(Outcome::Success)
    }

    /// The call failed in a way that counts against the downstream.
    pub fn failure(self) {
        self.finish(Outcome::Failure)
    }

    /// The call's outcome says nothing about the downstream.
    pub fn ignore(self) {
        self.finish(Outcome::Ignored)
    }

    fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.breaker.core.record(self.word, outcome, self.started);
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.core.abandon(self.word);
        }
    }
}
