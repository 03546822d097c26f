//! Running an operation under a policy: [`RetryPolicy::retry`] and the
//! [`Retry`] builder it returns.
//!
//! One builder serves sync and async code. Configure it with
//! [`when`](Retry::when) (the classifier), [`name`](Retry::name),
//! [`on_retry`](Retry::on_retry) and [`clock`](Retry::clock), then either
//! [`call`](Retry::call) it (a closure returning `Result`) or `.await` it (a
//! closure returning a future of `Result`):
//!
//! ```
//! use backstop::{presets, Verdict};
//!
//! #[derive(Debug)]
//! struct Flaky(bool);
//! impl std::fmt::Display for Flaky {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "flaky") }
//! }
//! impl std::error::Error for Flaky {}
//!
//! let policy = presets::api_call().to_builder().seed(7).build()?;
//! let clock = backstop::ManualClock::new();
//! let mut left = 1;
//! let body = policy
//!     .retry(|| if left > 0 { left -= 1; Err(Flaky(true)) } else { Ok("body") })
//!     .when(|e: &Flaky| Verdict::retry_if(e.0))
//!     .name("fetch_weather_data")
//!     .clock(&clock)
//!     .call()?;
//! assert_eq!(body, "body");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Async closures may borrow from the caller; the future is polled in place,
//! nothing is boxed on the success path:
//!
//! ```
//! # async fn get(client: &str, url: &str) -> Result<usize, std::io::Error> { Ok(client.len() + url.len()) }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = String::from("client");
//! let url = String::from("https://example.test/");
//! let n = backstop::presets::api_call()
//!     .retry(|| async { get(&client, &url).await })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! ## Retrying on an `Ok` value
//!
//! The classifier sees errors. When a *successful* call can still mean "try
//! again" (an HTTP 503 returned as a response), turn it into an error inside
//! the closure and back into a value afterwards:
//!
//! ```
//! # use backstop::{ManualClock, RetryError, RetryPolicy};
//! # let clock = ManualClock::new();
//! # let policy = RetryPolicy::builder().seed(1).build()?;
//! # let mut statuses = vec![200u16, 503, 503].into_iter().rev();
//! # let mut send = || statuses.next().unwrap();
//! let status = policy
//!     .retry(|| match send() {
//!         503 => Err(503),                 // retryable: becomes the error
//!         other => Ok(other),
//!     })
//!     .clock(&clock)
//!     .call()
//!     .or_else(|e| e.into_inner().ok_or("no attempt"))?; // keep the last status
//! assert_eq!(status, 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod future;
mod state;

use std::fmt::Display;
use std::future::{Future, IntoFuture};
use std::time::Duration;

pub use future::RetryFuture;
pub(crate) use state::{Cutoff, RunState, Step};

use crate::breaker::CircuitBreaker;
use crate::budget::RetryBudget;
use crate::clock::Clock;
use crate::error::{Name, RetryError};
use crate::event::OnRetry;
use crate::pacer::Pacer;
use crate::policy::RetryPolicy;
use crate::throttle::AdaptiveThrottle;
use crate::verdict::{AlwaysRetry, Classify, RetryIf};

/// The name a run has unless [`Retry::name`] gives it one.
pub const DEFAULT_NAME: &str = "operation";

impl RetryPolicy {
    /// Prepares a run of `op` under this policy. Nothing runs until
    /// [`Retry::call`] (sync) or `.await` (async).
    ///
    /// `op` is called once per attempt: a `FnMut() -> Result<T, E>` for
    /// `.call()`, a `FnMut() -> impl Future<Output = Result<T, E>>` for `.await`.
    pub fn retry<Op>(&self, op: Op) -> Retry<'_, Op> {
        Retry::from_parts(RunSettings::new(self), op, AlwaysRetry, ())
    }
}

/// What a run takes besides its operation, classifier and hook: shared by
/// [`Retry`] and [`Batch`](crate::Batch), whose items each get a copy.
#[derive(Clone)]
pub(crate) struct RunSettings<'a> {
    pub(crate) policy: &'a RetryPolicy,
    pub(crate) name: Name,
    pub(crate) clock: Option<&'a dyn Clock>,
    pub(crate) breaker: Option<&'a CircuitBreaker>,
    pub(crate) budget: Option<&'a RetryBudget>,
    pub(crate) throttle: Option<&'a AdaptiveThrottle>,
    pub(crate) pacer: Option<&'a Pacer>,
}

impl<'a> RunSettings<'a> {
    /// Whether a first attempt that succeeds needs nothing at all: no guard
    /// to ask or tell, no deadline to time. Then the run state is only built
    /// if that attempt fails.
    #[inline]
    pub(crate) fn is_bare(&self) -> bool {
        self.breaker.is_none()
            && self.budget.is_none()
            && self.throttle.is_none()
            && self.pacer.is_none()
            && self.policy.max_elapsed.is_none()
    }

    pub(crate) fn new(policy: &'a RetryPolicy) -> Self {
        Self {
            policy,
            name: Name::Borrowed(DEFAULT_NAME),
            clock: None,
            breaker: None,
            budget: None,
            throttle: None,
            pacer: None,
        }
    }
}

/// A configured, not yet started run; made by [`RetryPolicy::retry`].
///
/// `C` is the classifier (default: every error is retried), `H` the
/// [`on_retry`](Self::on_retry) callback, `T` the per-attempt timeout
/// ([`attempt_timeout`](Self::attempt_timeout); async runs only).
#[must_use = "a retry does nothing until .call() or .await"]
pub struct Retry<'a, Op, C = AlwaysRetry, H = (), T = NoTimeout> {
    settings: RunSettings<'a>,
    op: Op,
    classifier: C,
    hook: H,
    timeout: T,
}

impl<'a, Op, C, H> Retry<'a, Op, C, H> {
    pub(crate) fn from_parts(settings: RunSettings<'a>, op: Op, classifier: C, hook: H) -> Self {
        Self { settings, op, classifier, hook, timeout: NoTimeout }
    }

    /// Runs a synchronous operation, sleeping the thread between attempts.
    ///
    /// Returns the first success, or a [`RetryError`] keeping the last error.
    /// (A sync operation cannot be interrupted, so there is no `.call()` after
    /// [`attempt_timeout`](Self::attempt_timeout): give the client its own
    /// timeout instead. The deadline is checked between attempts.)
    #[inline]
    pub fn call<T, E>(self) -> Result<T, RetryError<E>>
    where
        Op: FnMut() -> Result<T, E>,
        C: Classify<E>,
        H: OnRetry<E>,
        E: Display,
    {
        let Retry { settings, mut op, classifier, hook, .. } = self;
        // The fast path, small enough to inline into the caller: a bare
        // run's first attempt needs no run state at all.
        let first_failure = if settings.is_bare() {
            match op() {
                Ok(value) => {
                    crate::event::emit::attempt_succeeded(&settings.name, 1);
                    return Ok(value);
                }
                Err(error) => Some(error),
            }
        } else {
            None
        };
        call_slow(settings, op, classifier, hook, first_failure)
    }
}

/// Everything but a bare run's first success: the run loop proper.
#[inline(never)]
fn call_slow<Op, C, H, T, E>(
    settings: RunSettings<'_>,
    mut op: Op,
    classifier: C,
    mut hook: H,
    first_failure: Option<E>,
) -> Result<T, RetryError<E>>
where
    Op: FnMut() -> Result<T, E>,
    C: Classify<E>,
    H: OnRetry<E>,
    E: Display,
{
    let mut state = RunState::new(settings);
    let mut next = first_failure.map(|error| state.failed_first(error, &classifier, &mut hook));
    loop {
        let step = match next.take() {
            Some(step) => step,
            None => match state.before_attempt() {
                None => match op() {
                    Ok(value) => {
                        state.succeeded();
                        return Ok(value);
                    }
                    Err(error) => state.failed(error, &classifier, &mut hook),
                },
                Some(step) => step,
            },
        };
        match step {
            // A zero delay retries at once: no timer, no clock.
            Step::Sleep(delay) if delay.is_zero() => {}
            Step::Sleep(delay) => state.clock.sleep(delay),
            Step::Stop(err) => return Err(err),
        }
    }
}

impl<'a, Op, C, H, T> Retry<'a, Op, C, H, T> {
    /// Sets the classifier that decides, for each error, whether to retry
    /// ([`Verdict::Retry`](crate::Verdict::Retry)), to wait what the server
    /// asked ([`Verdict::RetryAfter`](crate::Verdict::RetryAfter)), or to fail
    /// at once ([`Verdict::Fail`](crate::Verdict::Fail)).
    pub fn when<C2>(self, classifier: C2) -> Retry<'a, Op, C2, H, T> {
        Retry { settings: self.settings, op: self.op, classifier, hook: self.hook, timeout: self.timeout }
    }

    /// Sets a yes/no classifier: errors for which `transient` is `true` are
    /// retried, the others fail at once.
    pub fn retry_if<P>(self, transient: P) -> Retry<'a, Op, RetryIf<P>, H, T> {
        self.when(RetryIf(transient))
    }

    /// Names the run in log lines, metrics labels and errors
    /// (default: `"operation"`).
    pub fn name(mut self, name: impl Into<Name>) -> Self {
        self.settings.name = name.into();
        self
    }

    /// Calls `hook` with a [`RetryEvent`](crate::RetryEvent) before every
    /// retry's sleep.
    pub fn on_retry<H2>(self, hook: H2) -> Retry<'a, Op, C, H2, T> {
        Retry { settings: self.settings, op: self.op, classifier: self.classifier, hook, timeout: self.timeout }
    }

    /// Runs on this clock (default: [`SystemClock`](crate::SystemClock)); pass a
    /// [`ManualClock`](crate::ManualClock) to test in virtual time.
    pub fn clock(mut self, clock: &'a dyn Clock) -> Self {
        self.settings.clock = Some(clock);
        self
    }

    /// Asks `breaker` before every attempt: an open circuit ends the run at
    /// once with [`RetryError::CircuitOpen`], without sleeping against it (or,
    /// if the policy [waits on open circuits](crate::RetryPolicyBuilder::wait_on_open_circuit),
    /// waits for the probe). Every attempt's outcome is recorded on the breaker
    /// by its verdict (see [`Permit::record`](crate::Permit::record)):
    /// `Retry` and `Timeout` are failures; permanent errors and throttling
    /// count as the breaker's config says (by default they do not open it).
    pub fn breaker(mut self, breaker: &'a CircuitBreaker) -> Self {
        self.settings.breaker = Some(breaker);
        self
    }

    /// Draws every retry from `budget` before sleeping: when it is spent the
    /// run ends at once with [`RetryError::BudgetExhausted`]. The first attempt
    /// counts as a request, and a success gives tokens back.
    pub fn budget(mut self, budget: &'a RetryBudget) -> Self {
        self.settings.budget = Some(budget);
        self
    }

    /// Asks `throttle` before every attempt (it may reject locally, ending the
    /// run with [`RetryError::Throttled`]) and tells it every outcome.
    pub fn throttle(mut self, throttle: &'a AdaptiveThrottle) -> Self {
        self.settings.throttle = Some(throttle);
        self
    }

    /// Waits for a slot from `pacer` before every attempt (never past the
    /// deadline: a wait that would cross it ends the run with
    /// [`RetryError::DeadlineExceeded`]) and tells it every outcome, so it
    /// learns the rate the downstream accepts. See [`Pacer`].
    pub fn pacer(mut self, pacer: &'a Pacer) -> Self {
        self.settings.pacer = Some(pacer);
        self
    }

    /// Ends an async attempt that runs longer than `limit`: its future is
    /// dropped and the attempt fails with `on_timeout(limit)`. That error is
    /// classified like any other, except that a plain
    /// [`Verdict::Retry`](crate::Verdict::Retry) becomes
    /// [`Verdict::Timeout`](crate::Verdict::Timeout) (a budget charges it its
    /// timeout cost): so with the default classifier a timed-out attempt is
    /// retried, and a classifier that answers
    /// [`Verdict::Fail`](crate::Verdict::Fail) for it ends the run (for an
    /// attempt the server may have carried out and that must not be sent
    /// twice). A zero limit means no timeout.
    ///
    /// ```
    /// # async fn demo() {
    /// use std::time::Duration;
    /// use backstop::presets;
    ///
    /// #[derive(Debug)]
    /// enum FetchError { TimedOut(Duration), Http(u16) }
    /// # impl std::fmt::Display for FetchError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") } }
    /// # async fn fetch() -> Result<String, FetchError> { Ok(String::new()) }
    ///
    /// let body = presets::api_call()
    ///     .retry(|| fetch())
    ///     .attempt_timeout(Duration::from_secs(2), FetchError::TimedOut)
    ///     .await;
    /// # let _ = body; }
    /// ```
    pub fn attempt_timeout<F>(self, limit: Duration, on_timeout: F) -> Retry<'a, Op, C, H, TimeoutWith<F>> {
        Retry {
            settings: self.settings,
            op: self.op,
            classifier: self.classifier,
            hook: self.hook,
            timeout: TimeoutWith { limit, on_timeout },
        }
    }
}

/// How an async run makes the error of an attempt it timed out.
pub trait AttemptTimeout<E> {
    /// The per-attempt limit, if any.
    fn limit(&self) -> Option<Duration>;
    /// The error for an attempt cut after `after`.
    fn error(&self, after: Duration) -> Option<E>;
}

/// No per-attempt timeout (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTimeout;

impl<E> AttemptTimeout<E> for NoTimeout {
    fn limit(&self) -> Option<Duration> {
        None
    }
    fn error(&self, _: Duration) -> Option<E> {
        None
    }
}

/// A per-attempt timeout and the function that makes its error; set by
/// [`Retry::attempt_timeout`].
#[derive(Debug, Clone, Copy)]
pub struct TimeoutWith<F> {
    limit: Duration,
    on_timeout: F,
}

impl<E, F: Fn(Duration) -> E> AttemptTimeout<E> for TimeoutWith<F> {
    fn limit(&self) -> Option<Duration> {
        Some(self.limit)
    }
    fn error(&self, after: Duration) -> Option<E> {
        Some((self.on_timeout)(after))
    }
}

impl<'a, Op, Fut, T, E, C, H, TO> IntoFuture for Retry<'a, Op, C, H, TO>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    C: Classify<E>,
    H: OnRetry<E>,
    TO: AttemptTimeout<E>,
    E: Display,
{
    type Output = Result<T, RetryError<E>>;
    type IntoFuture = RetryFuture<'a, Op, Fut, C, H, TO, E>;

    fn into_future(self) -> Self::IntoFuture {
        RetryFuture::new(self.settings, self.op, self.classifier, self.hook, self.timeout)
    }
}
