//! What to do with a failed attempt: the [`Verdict`], and the [`Classify`]
//! trait that produces it.
//!
//! A run asks its classifier about every error. The classifier sees only the
//! error, never the policy: it answers "is this worth another try?", and the
//! policy answers "may we, and when?".

use std::time::Duration;

/// A classifier's answer about one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// Transient: retry after the backoff's next delay.
    Retry,
    /// Transient, and the server said when: retry *not before* this long (a
    /// `Retry-After` or `x-amz-retry-after` hint). The hint is a floor, not an
    /// appointment: with a random jitter the first retry waits a uniform time
    /// in `[hint, 2 × hint]` (wider if the jitter's own spread for a delay
    /// that long is: `Decorrelated` `[hint, 3 × hint]`, `Additive(j)` up to
    /// `hint + j`), and each later retry spreads wider by the backoff's
    /// growth factor (`[hint, 3 × hint]`, `[hint, 5 × hint]`, ... when it
    /// doubles), never past
    /// [`max_retry_after`](crate::RetryPolicy::max_retry_after), so clients
    /// told the same thing do not all come back at the same instant; with
    /// `Jitter::None`, exactly the hint. Hints longer than `max_retry_after`
    /// end the run.
    RetryAfter(Duration),
    /// Permanent: return the error at once, as
    /// [`RetryError::Rejected`](crate::RetryError::Rejected).
    Fail,
    /// Transient, and it was a timeout: retry after the backoff's next delay.
    /// A [`RetryBudget`](crate::RetryBudget) charges it more (timeouts tie up
    /// the downstream longest). Attempts cut by an
    /// [`attempt_timeout`](crate::retry::Retry::attempt_timeout) get this verdict.
    Timeout,
    /// Transient, and the downstream refused for overload (`SlowDown`, `429`
    /// without a hint): retry after the backoff's next delay. An
    /// [`AdaptiveThrottle`](crate::AdaptiveThrottle) counts it as a refusal.
    Throttled,
}

impl Verdict {
    /// `Retry` for `true`, `Fail` for `false`.
    pub fn retry_if(transient: bool) -> Self {
        if transient { Verdict::Retry } else { Verdict::Fail }
    }

    /// Whether this verdict allows another attempt.
    pub fn is_retry(&self) -> bool {
        !matches!(self, Verdict::Fail)
    }

    /// Whether the downstream refused the call for overload (`Throttled`, or
    /// a `RetryAfter` hint): what an adaptive throttle counts as not accepted.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Verdict::Throttled | Verdict::RetryAfter(_))
    }
}

/// The longest server hint any parser returns (`Retry-After`,
/// `x-amz-retry-after`): a year. Longer ones saturate here rather than
/// overflow.
pub(crate) const HINT_CEILING: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// Decides the [`Verdict`] for an error of type `E`.
///
/// Any `Fn(&E) -> Verdict` is a classifier, so most code passes a closure or
/// a function such as `backstop_http::classify`:
///
/// ```
/// use backstop::{Verdict, verdict::Classify};
///
/// #[derive(Debug)]
/// enum UploadError { Throttled, Denied }
///
/// let classify = |e: &UploadError| match e {
///     UploadError::Throttled => Verdict::Retry,
///     UploadError::Denied => Verdict::Fail,
/// };
/// assert_eq!(classify.classify(&UploadError::Denied), Verdict::Fail);
/// ```
pub trait Classify<E: ?Sized> {
    /// The verdict for one failed attempt.
    fn classify(&self, error: &E) -> Verdict;

    /// How the run's log lines print an error, when not by its `{:#}` form:
    /// `None` (the default) keeps `{:#}`. A classifier made by
    /// [`Retry::describe_error`](crate::retry::Retry::describe_error)
    /// returns the function given there.
    fn describer(&self) -> Option<Describe<E>> {
        None
    }
}

/// A function that prints an error for the run's log lines (see
/// [`Retry::describe_error`](crate::retry::Retry::describe_error)).
pub type Describe<E> = fn(&E, &mut std::fmt::Formatter<'_>) -> std::fmt::Result;

/// A classifier with a describer: made by
/// [`Retry::describe_error`](crate::retry::Retry::describe_error).
pub struct Described<C, E: ?Sized> {
    classifier: C,
    describe: Describe<E>,
}

impl<C, E: ?Sized> Described<C, E> {
    pub(crate) fn new(classifier: C, describe: Describe<E>) -> Self {
        Self { classifier, describe }
    }
}

impl<C: Classify<E>, E: ?Sized> Classify<E> for Described<C, E> {
    fn classify(&self, error: &E) -> Verdict {
        self.classifier.classify(error)
    }

    fn describer(&self) -> Option<Describe<E>> {
        Some(self.describe)
    }
}

impl<C: std::fmt::Debug, E: ?Sized> std::fmt::Debug for Described<C, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Described").field("classifier", &self.classifier).finish_non_exhaustive()
    }
}

impl<E: ?Sized, F> Classify<E> for F
where
    F: Fn(&E) -> Verdict,
{
    fn classify(&self, error: &E) -> Verdict {
        self(error)
    }
}

/// The default classifier: every error is transient, as a retry decorator
/// that retries on any exception does.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysRetry;

impl<E: ?Sized> Classify<E> for AlwaysRetry {
    fn classify(&self, _: &E) -> Verdict {
        Verdict::Retry
    }
}

/// A classifier from a predicate: `true` retries, `false` fails. Made by
/// [`Retry::retry_if`](crate::retry::Retry::retry_if).
#[derive(Debug, Clone, Copy)]
pub struct RetryIf<P>(pub P);

impl<E: ?Sized, P> Classify<E> for RetryIf<P>
where
    P: Fn(&E) -> bool,
{
    fn classify(&self, error: &E) -> Verdict {
        Verdict::retry_if((self.0)(error))
    }
}
