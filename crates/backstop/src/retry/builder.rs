//! The [`Retry`] builder: a run's classifier, callback, name, clock and
//! guards, set one by one before the run is made with `.call()` or `.await`.

use std::marker::PhantomData;
use std::time::Duration;

use super::attempt::{Async, Attempt};
use super::event::RetryEvent;
use super::report::{Value, WithAttempts};
use super::settings::{Bare, Name, RunSettings, Settings};
use crate::policy::RetryPolicy;
use crate::verdict::{AlwaysRetry, Describe, Described, RetryIf, Verdict};

impl RetryPolicy {
    /// Prepares a run of `op` under this policy. Nothing runs until
    /// [`Retry::call`] (sync) or `.await` (async).
    ///
    /// `op` is called once per attempt: a `FnMut() -> Result<T, E>` for
    /// `.call()`, a `FnMut() -> impl Future<Output = Result<T, E>>` for
    /// `.await`. Its error type `E` is known from here on, so the closures
    /// given to [`when`](Retry::when) and [`on_retry`](Retry::on_retry) need
    /// no type annotations.
    pub fn retry<Op, K>(&self, op: Op) -> Retry<'_, Op, <Op as Attempt<K>>::Error, K>
    where
        Op: Attempt<K>,
    {
        Retry::from_parts(Bare::new(self), op, AlwaysRetry, ())
    }
}

/// A configured, not yet started run; made by [`RetryPolicy::retry`].
///
/// `E` is the operation's error and `K` its kind ([`Blocking`](super::Blocking):
/// run it with [`call`](Self::call); [`Async`]: `.await` it). `C` is the
/// classifier (default: every error is retried), `H` the
/// [`on_retry`](Self::on_retry) callback, `R` what a success returns
/// ([`with_attempts`](Self::with_attempts)), `S` its settings: [`Bare`] (a
/// policy and a name) until a clock or a guard is set, [`RunSettings`] then.
#[must_use = "a retry does nothing until .call() or .await"]
pub struct Retry<'a, Op, E, K, C = AlwaysRetry, H = (), R = Value, S = Bare<'a>> {
    pub(super) settings: S,
    pub(super) op: Op,
    pub(super) classifier: C,
    pub(super) hook: H,
    pub(super) timeout: Option<AttemptTimeout<'a, E>>,
    kind: PhantomData<fn() -> (K, R)>,
}

/// A per-attempt timeout and the function that makes its error, boxed as
/// one: setting a timeout keeps the builder's type, costs one allocation
/// (beside the timer each attempt arms) and keeps the run's future small.
pub(crate) type AttemptTimeout<'a, E> = Box<dyn TimeoutError<E> + Send + Sync + 'a>;

/// The limit of an attempt, and the error of one cut by it.
pub(crate) trait TimeoutError<E> {
    fn limit(&self) -> Duration;
    fn error(&self, after: Duration) -> E;
}

struct TimeoutWith<F> {
    limit: Duration,
    on_timeout: F,
}

impl<E, F: Fn(Duration) -> E> TimeoutError<E> for TimeoutWith<F> {
    fn limit(&self) -> Duration {
        self.limit
    }
    fn error(&self, after: Duration) -> E {
        (self.on_timeout)(after)
    }
}

impl<Op, E, K, C, H, R, S: std::fmt::Debug> std::fmt::Debug for Retry<'_, Op, E, K, C, H, R, S> {
    /// The run's settings: its policy, name and guards, and its attempt timeout.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("settings", &self.settings)
            .field("attempt_timeout", &self.timeout.as_ref().map(|t| t.limit()))
            .finish_non_exhaustive()
    }
}

impl<'a, Op, E, K, C, H, S> Retry<'a, Op, E, K, C, H, Value, S> {
    pub(crate) fn from_parts(settings: S, op: Op, classifier: C, hook: H) -> Self {
        Self { settings, op, classifier, hook, timeout: None, kind: PhantomData }
    }
}

impl<'a, Op, E, K, C, H, R, S: Settings<'a>> Retry<'a, Op, E, K, C, H, R, S> {
    /// Sets the classifier that decides, for each error, whether to retry
    /// ([`Verdict::Retry`]), to wait what the server asked
    /// ([`Verdict::RetryAfter`]), or to fail at once ([`Verdict::Fail`]).
    /// Any `Fn(&E) -> Verdict`: a closure (its argument's type is inferred
    /// from the operation) or a function such as `backstop_aws::classify`.
    ///
    /// It replaces the classifier set before, and with it a describer set by
    /// [`describe_error`](Self::describe_error) (as `backstop_aws::retry!`
    /// sets one): call that after this.
    pub fn when<F>(self, classifier: F) -> Retry<'a, Op, E, K, F, H, R, S>
    where
        F: Fn(&E) -> Verdict,
    {
        Retry {
            settings: self.settings,
            op: self.op,
            classifier,
            hook: self.hook,
            timeout: self.timeout,
            kind: PhantomData,
        }
    }

    /// Sets how the run's log lines (and its metrics' nothing: they carry no
    /// error) print an attempt's error, in place of its `{:#}` form: for an
    /// error type whose `Display` says little (the AWS SDK's `SdkError`
    /// prints `service error`; `backstop_aws` describes it as
    /// `SlowDown: Please reduce your request rate.`). Call it after
    /// [`when`](Self::when) or [`retry_if`](Self::retry_if), which set a new
    /// classifier without it. The errors the run returns are unchanged.
    ///
    /// ```
    /// use std::fmt;
    /// use backstop::RetryPolicy;
    ///
    /// struct Opaque { code: &'static str }
    /// impl fmt::Display for Opaque {
    ///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str("error") }
    /// }
    ///
    /// let policy = RetryPolicy::builder().max_attempts(2).backoff(backstop::Backoff::constant(std::time::Duration::ZERO)).build()?;
    /// let err = policy
    ///     .retry(|| Err::<(), _>(Opaque { code: "SlowDown" }))
    ///     .describe_error(|e, f| write!(f, "{}", e.code)) // "Retrying operation in 0.0 seconds (attempt 1/2): SlowDown"
    ///     .call()
    ///     .unwrap_err();
    /// assert_eq!(err.last_error().map(|e| e.code), Some("SlowDown"));
    /// # Ok::<(), backstop::ConfigError>(())
    /// ```
    pub fn describe_error(self, describe: Describe<E>) -> Retry<'a, Op, E, K, Described<C, E>, H, R, S> {
        Retry {
            settings: self.settings,
            op: self.op,
            classifier: Described::new(self.classifier, describe),
            hook: self.hook,
            timeout: self.timeout,
            kind: PhantomData,
        }
    }

    /// Sets a yes/no classifier: errors for which `transient` is `true` are
    /// retried, the others fail at once. Like [`when`](Self::when), it
    /// replaces a describer set before.
    pub fn retry_if<P>(self, transient: P) -> Retry<'a, Op, E, K, RetryIf<P>, H, R, S>
    where
        P: Fn(&E) -> bool,
    {
        Retry {
            settings: self.settings,
            op: self.op,
            classifier: RetryIf(transient),
            hook: self.hook,
            timeout: self.timeout,
            kind: PhantomData,
        }
    }

    /// Calls `hook` with a [`RetryEvent`] before every retry's sleep:
    /// `.on_retry(|event| println!("{} in {:?}", event.error, event.delay))`.
    pub fn on_retry<F>(self, hook: F) -> Retry<'a, Op, E, K, C, F, R, S>
    where
        F: FnMut(&RetryEvent<'_, E>),
    {
        Retry {
            settings: self.settings,
            op: self.op,
            classifier: self.classifier,
            hook,
            timeout: self.timeout,
            kind: PhantomData,
        }
    }

    /// Makes a success return `(value, attempts)`: how many attempts it took,
    /// the successful one included. Without it a run returns the value alone
    /// and counts nothing for it.
    ///
    /// ```
    /// # let clock = backstop::ManualClock::new();
    /// let mut left = 2;
    /// let (etag, attempts) = backstop::RetryPolicy::default()
    ///     .retry(|| if left > 0 { left -= 1; Err("SlowDown") } else { Ok("etag-1") })
    ///     .with_attempts()
    ///     .clock(&clock)
    ///     .call()?;
    /// assert_eq!((etag, attempts), ("etag-1", 3));
    /// # Ok::<(), backstop::RetryError<&str>>(())
    /// ```
    pub fn with_attempts(self) -> Retry<'a, Op, E, K, C, H, WithAttempts, S> {
        Retry {
            settings: self.settings,
            op: self.op,
            classifier: self.classifier,
            hook: self.hook,
            timeout: self.timeout,
            kind: PhantomData,
        }
    }

    /// Names the run in log lines, metrics labels and errors (default:
    /// `"operation"`).
    #[inline]
    pub fn name(mut self, name: impl Into<Name>) -> Self {
        self.settings.rename(name.into());
        self
    }

    super::settings::run_setters!(Retry<'a, Op, E, K, C, H, R, RunSettings<'a>>);

    /// The run with its settings made full and changed by `change`.
    #[inline]
    fn with_settings(self, change: impl FnOnce(&mut RunSettings<'a>)) -> Retry<'a, Op, E, K, C, H, R, RunSettings<'a>> {
        let mut settings = self.settings.into_full();
        change(&mut settings);
        Retry {
            settings,
            op: self.op,
            classifier: self.classifier,
            hook: self.hook,
            timeout: self.timeout,
            kind: PhantomData,
        }
    }
}

impl<'a, Op, E, C, H, R, S> Retry<'a, Op, E, Async, C, H, R, S> {
    /// Ends an attempt that runs longer than `limit`: its future is dropped
    /// and the attempt fails with `on_timeout(limit)`. That error is
    /// classified like any other, except that a plain [`Verdict::Retry`]
    /// becomes [`Verdict::Timeout`] (a budget charges it its timeout cost):
    /// so with the default classifier a timed-out attempt is retried, and a
    /// classifier that answers [`Verdict::Fail`] for it ends the run (for an
    /// attempt the server may have carried out and that must not be sent
    /// twice). A zero limit means no timeout.
    ///
    /// Async runs only: a blocking call cannot be cut short (give its client
    /// a timeout of its own; the deadline is checked between attempts).
    ///
    /// The limit is checked whenever the attempt is waiting: an answer that
    /// is already there when the run is next polled is taken, even if the
    /// timer fired meanwhile (on a busy executor), since the work is done.
    ///
    /// ```
    /// # async fn demo() {
    /// use std::time::Duration;
    /// use backstop::RetryPolicy;
    ///
    /// #[derive(Debug)]
    /// enum FetchError { TimedOut(Duration), Http(u16) }
    /// # impl std::fmt::Display for FetchError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") } }
    /// # async fn fetch() -> Result<String, FetchError> { Ok(String::new()) }
    ///
    /// let body = RetryPolicy::default()
    ///     .retry(|| fetch())
    ///     .attempt_timeout(Duration::from_secs(2), FetchError::TimedOut)
    ///     .await;
    /// # let _ = body; }
    /// ```
    pub fn attempt_timeout<F>(mut self, limit: Duration, on_timeout: F) -> Self
    where
        F: Fn(Duration) -> E + Send + Sync + 'a,
    {
        self.timeout = (!limit.is_zero()).then(|| Box::new(TimeoutWith { limit, on_timeout }) as AttemptTimeout<'a, E>);
        self
    }
}
