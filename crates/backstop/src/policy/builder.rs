//! The fluent builder that makes a [`RetryPolicy`] and checks it.

use std::time::Duration;

use super::RetryPolicy;
use crate::backoff::{Backoff, Jitter};
use crate::error::ConfigError;

/// Builds a [`RetryPolicy`]; made by [`RetryPolicy::builder`] or
/// [`RetryPolicy::to_builder`]. Setters never fail; [`build`](Self::build)
/// checks everything at once.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
}

impl RetryPolicyBuilder {
    pub(crate) fn from_policy(policy: RetryPolicy) -> Self {
        Self { policy }
    }

    /// The most attempts a run makes, counting the first call (allowed: ≥ 1;
    /// 1 means "never retry").
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.policy.max_attempts = n;
        self
    }

    /// The delay schedule (see [`Backoff`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.policy.backoff = backoff;
        self
    }

    /// Replaces only the jitter of the current backoff.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.policy.backoff = self.policy.backoff.jitter(jitter);
        self
    }

    /// A deadline for the whole run, attempts and sleeps together (allowed:
    /// more than zero). A retry whose delay would cross it is not made: the run
    /// ends at once with [`RetryError::DeadlineExceeded`](crate::RetryError::DeadlineExceeded).
    pub fn max_elapsed(mut self, deadline: Duration) -> Self {
        self.policy.max_elapsed = Some(deadline);
        self
    }

    /// Removes the deadline.
    pub fn no_deadline(mut self) -> Self {
        self.policy.max_elapsed = None;
        self
    }

    /// The longest server `Retry-After` hint to honour (default 60 s). A longer
    /// hint ends the run at once and is kept on the error; zero means a hint
    /// always ends the run. A hint that is honoured is a floor, spread by the
    /// jitter up to this cap (see [`Verdict::RetryAfter`](crate::Verdict::RetryAfter)).
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.policy.max_retry_after = cap;
        self
    }

    /// Makes the jitter reproducible: every run of the policy draws the same
    /// delays. For tests and simulations; in production leave it unset, or
    /// every client would jitter alike.
    pub fn seed(mut self, seed: u64) -> Self {
        self.policy.seed = Some(seed);
        self
    }

    /// What a run with a [breaker](crate::retry::Retry::breaker) does when the
    /// breaker rejects an attempt. By default (`false`) the run stops at once
    /// with [`RetryError::CircuitOpen`](crate::RetryError::CircuitOpen): no
    /// sleeping against a known outage. With `true` it sleeps until the breaker
    /// expects to let a probe through (at least the backoff's next delay) and
    /// tries again, as long as attempts remain, the wait fits the deadline and
    /// is no longer than `max_retry_after`. A rejected try counts as an attempt.
    pub fn wait_on_open_circuit(mut self, wait: bool) -> Self {
        self.policy.wait_on_open_circuit = wait;
        self
    }

    /// Checks every setting and returns the policy, or the first bad setting.
    pub fn build(self) -> Result<RetryPolicy, ConfigError> {
        match self.policy.broken() {
            Some(broken) => Err(broken.into_error()),
            None => Ok(self.policy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_starts_from_the_default() {
        assert_eq!(RetryPolicy::builder().build().unwrap(), RetryPolicy::default());
    }

    #[test]
    fn rejects_zero_deadline_and_bad_backoff() {
        let err = RetryPolicy::builder().max_elapsed(Duration::ZERO).build().unwrap_err();
        assert_eq!(err.field(), "max_elapsed");
        let err = RetryPolicy::builder()
            .backoff(Backoff::exponential(Duration::from_secs(1)).factor(f64::INFINITY))
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "backoff.factor");
        let err = RetryPolicy::builder().jitter(Jitter::Proportional(2.0)).build().unwrap_err();
        assert_eq!(err.field(), "backoff.jitter");
    }
}
