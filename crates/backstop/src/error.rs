//! The errors backstop reports besides a run's: [`ConfigError`] (a setting
//! that makes no sense) and [`Chain`] (any error with its causes), and the
//! one rule every error of backstop and its integration crates prints by.
//!
//! # How backstop's errors print
//!
//! Every error type in backstop and its integration crates follows one rule,
//! the standard library's: `{}` prints the error's own layer and never its
//! cause's text; [`source()`](std::error::Error::source) hands out the cause;
//! `{:#}` prints the layer and then every cause, `: `-separated, each once
//! (as `anyhow` does, see [`Chain`]). `{:?}` is structured. No layer prints a
//! URL's query or credentials.
//!
//! ```
//! use backstop::{ManualClock, RetryPolicy};
//!
//! let clock = ManualClock::new();
//! let policy = RetryPolicy::builder().max_attempts(2).jitter(backstop::Jitter::None).build()?;
//! let err = policy
//!     .retry(|| Err::<(), _>(std::io::Error::other("connection reset")))
//!     .name("upload_to_s3")
//!     .clock(&clock)
//!     .call()
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "upload_to_s3 failed after 2 attempts in 1.0 seconds");
//! assert_eq!(format!("{err:#}"), "upload_to_s3 failed after 2 attempts in 1.0 seconds: connection reset");
//! # Ok::<(), backstop::ConfigError>(())
//! ```

use std::error::Error;
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

    /// What is wrong with the value, in words (`is 0`): the text between
    /// the field and `; allowed`, for a caller that names the field its
    /// own way (the Python package names its parameters).
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {} {}; allowed: {}", self.component, self.field, self.problem, self.allowed)
    }
}

impl std::error::Error for ConfigError {}

/// An error and every cause in its [`source()`](Error::source) chain,
/// `: `-separated, each printed once: `format!("{}", Chain(&err))`.
///
/// This is what `{:#}` prints for backstop's own errors; use it for any
/// error whose alternate form is not the whole story.
///
/// ```
/// use backstop::error::Chain;
///
/// let io = std::io::Error::other("connection reset");
/// assert_eq!(Chain(&io).to_string(), "connection reset");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        write_causes(f, self.0.source())
    }
}

/// Writes `: cause` for `first` and each cause after it.
pub(crate) fn write_causes(f: &mut fmt::Formatter<'_>, first: Option<&(dyn Error + 'static)>) -> fmt::Result {
    let mut next = first;
    while let Some(cause) = next {
        write!(f, ": {cause}")?;
        next = cause.source();
    }
    Ok(())
}
