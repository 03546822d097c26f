//! What the code written by `#[backstop::retry]` (and the S3 and HTTP forms
//! of it) calls. Not a public API: it changes without notice. Everything a
//! user can get wrong is checked here, with messages written for them:
//! the policy's settings while the program compiles (the same rules and
//! texts as [`RetryPolicyBuilder::build`](crate::RetryPolicyBuilder::build)),
//! and the function's shape through the trait bounds below.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::backoff::Jitter;
use crate::clock::Clock;
use crate::duration;
use crate::guards::Guards;
use crate::policy::RetryPolicy;
use crate::retry::{RetryError, Stopped};

/// A policy put together while compiling: each setter checks its own rule,
/// [`build`](Self::build) the rules between settings.
///
/// A broken rule comes back as its message (the text of
/// [`RetryPolicyBuilder::build`](crate::RetryPolicyBuilder::build)'s error), and
/// the constant the attribute writes panics with it right there, at the
/// argument's span: the compile error is that one message pointing at the
/// value, with no trace through this module.
#[derive(Debug)]
pub struct PolicyParts(RetryPolicy);

/// What a setter of [`PolicyParts`] gives: the parts, or the broken rule's message.
pub type Checked = Result<PolicyParts, &'static str>;

impl PolicyParts {
    /// Starts from a preset.
    pub const fn new(preset: RetryPolicy) -> Self {
        Self(preset)
    }

    /// `max_attempts = n`.
    pub const fn max_attempts(mut self, n: u32) -> Checked {
        if let Some(broken) = crate::rules::attempts(n) {
            return Err(broken.message());
        }
        self.0.max_attempts = n;
        Ok(self)
    }

    /// `base = "500ms"`: the first delay.
    pub const fn base(mut self, base: &str) -> Checked {
        let base = match duration(base) {
            Ok(d) => d,
            Err(message) => return Err(message),
        };
        let b = self.0.backoff;
        self.0.backoff = crate::backoff::Backoff { curve: b.curve.with_base(base), ..b };
        Ok(self)
    }

    /// `max = "10s"`: the cap on every delay.
    pub const fn max(mut self, max: &str) -> Checked {
        let max = match duration(max) {
            Ok(d) => d,
            Err(message) => return Err(message),
        };
        self.0.backoff = self.0.backoff.max_delay(max);
        Ok(self)
    }

    /// `factor = 2.0`.
    pub const fn factor(mut self, factor: f64) -> Checked {
        if let Some(broken) = crate::rules::factor(factor) {
            return Err(broken.message());
        }
        self.0.backoff = self.0.backoff.factor(factor);
        Ok(self)
    }

    /// `jitter = "additive:500ms"`.
    pub const fn jitter(mut self, text: &str) -> Checked {
        let jitter = match Jitter::parse_const(text) {
            Ok(j) => j,
            Err(bad) => return Err(bad.message()),
        };
        if let Some(broken) = jitter.broken() {
            return Err(broken.message());
        }
        self.0.backoff = self.0.backoff.jitter(jitter);
        Ok(self)
    }

    /// `deadline = "30s"`: the run's deadline.
    pub const fn deadline(mut self, deadline: &str) -> Checked {
        let deadline = match duration(deadline) {
            Ok(d) => Some(d),
            Err(message) => return Err(message),
        };
        if let Some(broken) = crate::rules::deadline(deadline) {
            return Err(broken.message());
        }
        self.0.max_elapsed = deadline;
        Ok(self)
    }

    /// `max_retry_after = "60s"`.
    pub const fn max_retry_after(mut self, cap: &str) -> Checked {
        self.0.max_retry_after = match duration(cap) {
            Ok(d) => d,
            Err(message) => return Err(message),
        };
        Ok(self)
    }

    /// `seed = 7`: reproducible jitter.
    pub const fn seed(mut self, seed: u64) -> Checked {
        self.0.seed = Some(seed);
        Ok(self)
    }

    /// The policy, once the rules between settings hold (`base ≤ max`).
    pub const fn build(self) -> Result<RetryPolicy, &'static str> {
        if let Some(broken) = self.0.broken() {
            return Err(broken.message());
        }
        Ok(self.0)
    }
}

/// A duration written in an attribute, read while compiling.
const fn duration(text: &str) -> Result<Duration, &'static str> {
    match duration::parse_const(text) {
        Ok(d) => Ok(d),
        Err(reason) => Err(reason.message()),
    }
}

/// An argument that every attempt gets a copy of.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is moved into every attempt of a `#[retry]` function, so it must be `Clone`",
    label = "each attempt gets its own copy of this argument",
    note = "take it by reference (`&{Self}`), or make it `Clone` (an `impl Trait` argument: add `+ Clone`)"
)]
pub trait Reuse: Clone {}

impl<T: Clone> Reuse for T {}

/// A copy of an argument for the next attempt.
#[inline(always)]
pub fn reuse<T: Reuse>(arg: &T) -> T {
    arg.clone()
}

/// What a `#[retry]` function must return.
#[diagnostic::on_unimplemented(
    message = "a `#[retry]` function must return `Result<T, E>`, not `{Self}`",
    label = "the retried function's return type",
    note = "backstop retries an attempt that returns `Err`: return a `Result` (`io::Result<T>` and other aliases are fine)"
)]
pub trait IsResult {
    /// The function's error type.
    type Error: PrintableError;
}

impl<T, E: PrintableError> IsResult for Result<T, E> {
    type Error = E;
}

/// What a `#[retry]` function's error must be.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of a `#[retry]` function must implement `Display`",
    label = "backstop's log lines and errors print a failed attempt's error",
    note = "derive it with `thiserror`, or implement `std::fmt::Display` for `{Self}`"
)]
pub trait PrintableError: Display {}

impl<E: Display> PrintableError for E {}

/// Fixes a blocking attempt's return type, so that `?` in the body knows the error to convert to.
#[inline(always)]
pub fn blocking<R: IsResult, F: FnMut() -> R>(attempt: F) -> F {
    attempt
}

/// Fixes an async attempt's output type, so that `?` in the body knows the error to convert to.
#[inline(always)]
pub fn future<R: IsResult, Fut: Future<Output = R>, F: FnMut() -> Fut>(attempt: F) -> F {
    attempt
}

/// A clock named by an attribute (`clock = CLOCK`), through any smart pointer or `LazyLock`.
pub trait AsClock {
    /// The clock as the run's setter takes it.
    fn as_backstop_clock(&self) -> &dyn Clock;

    /// A copy of the clock, in a `Guards` of its own: for a `&mut self`
    /// method, whose clock must not borrow `self` while the attempt does.
    fn as_backstop_guards(&self) -> Guards;
}

impl<C: Clock + Clone + 'static> AsClock for C {
    #[inline(always)]
    fn as_backstop_clock(&self) -> &dyn Clock {
        self
    }

    fn as_backstop_guards(&self) -> Guards {
        Guards::builder().clock(self).build()
    }
}

/// The function's result, for a run that always ends with an error: without
/// a breaker, a throttle, a pacer or (async) a deadline, every way a run ends
/// keeps the last attempt's error.
#[inline]
pub fn last_error<T, E>(run: Result<T, RetryError<E>>) -> Result<T, E> {
    run.map_err(|err| match err.last_or_stopped() {
        Ok(last) => last,
        Err(stopped) => unreachable!("{stopped}: a run without guards or an async deadline keeps its last error"),
    })
}

/// An error type that a run ended without an error can become.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot say that a `#[retry]` run stopped before any attempt failed",
    label = "a breaker, a throttle, a pacer, or a deadline passing during an async attempt (`deadline`, or one a `policy` may have) can stop the run before an attempt returns an error",
    note = "implement `From<backstop::retry::Stopped>` for `{Self}` (io::Error, Box<dyn Error + Send + Sync> and anyhow::Error have it)"
)]
pub trait FromStopped: From<Stopped> {}

impl<E: From<Stopped>> FromStopped for E {}

/// The function's result: its error is the last attempt's, or the run's end without one.
#[inline]
pub fn last_or_stopped<T, E: FromStopped>(run: Result<T, RetryError<E>>) -> Result<T, E> {
    run.map_err(|err| err.last_or_stopped().unwrap_or_else(E::from))
}
