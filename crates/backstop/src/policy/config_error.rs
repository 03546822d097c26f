//! The error a policy's `build()` returns for settings that make no sense.

use std::fmt;

/// A setting that makes no sense, rejected by
/// [`RetryPolicyBuilder::build`](crate::RetryPolicyBuilder::build) (or by a
/// policy loaded from a file), or by the other components' builders
/// ([`BreakerConfigBuilder::build`](crate::breaker::BreakerConfigBuilder::build)).
///
/// It names the field, what was wrong with its value and the allowed range,
/// so the message alone tells the reader what to change:
///
/// ```
/// use backstop::RetryPolicy;
///
/// let err = RetryPolicy::builder().max_attempts(0).build().unwrap_err();
/// assert_eq!(err.field(), "max_attempts");
/// assert_eq!(
///     err.to_string(),
///     "invalid retry policy: max_attempts is 0; allowed: 1 or more (it counts the first call)",
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    component: &'static str,
    field: &'static str,
    problem: String,
    allowed: &'static str,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, problem: String, allowed: &'static str) -> Self {
        Self::of("retry policy", field, problem, allowed)
    }

    /// An error about another component's settings ("circuit breaker", ...).
    pub(crate) fn of(component: &'static str, field: &'static str, problem: String, allowed: &'static str) -> Self {
        Self { component, field, problem, allowed }
    }

    /// The offending field, as a dotted path (`max_attempts`, `backoff.factor`).
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The allowed range of the field, in words.
    pub fn allowed(&self) -> &'static str {
        self.allowed
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {} {}; allowed: {}", self.component, self.field, self.problem, self.allowed)
    }
}

impl std::error::Error for ConfigError {}
