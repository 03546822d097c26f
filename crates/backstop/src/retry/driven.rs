//! A run whose attempts the caller makes: [`RetryPolicy::driven`] and the
//! [`Next`] step it answers with.
//!
//! [`Retry`](super::Retry) calls a closure and sleeps on a clock. Some
//! callers can do neither: another language's event loop (backstop's Python
//! package awaits Python coroutines and sleeps with `asyncio.sleep`), or a
//! state machine of its own that must not block. A driven run makes the same
//! decisions as `Retry` (the same code: attempt limit, backoff and jitter,
//! `Retry-After` bounds, deadline, breaker, budget, throttle and pacer, and
//! the same log lines), and leaves the attempts and the sleeps to the caller:
//!
//! ```
//! use backstop::retry::Next;
//! use backstop::{RetryError, RetryPolicy, Verdict};
//! use std::time::Duration;
//!
//! let policy = RetryPolicy::builder().max_attempts(3).jitter(backstop::Jitter::None).build()?;
//! let mut results = vec![Ok("body"), Err("503"), Err("503")];
//! let mut slept = Vec::new();
//! let mut next = policy.driven().name("fetch").start();
//! let outcome = loop {
//!     next = match next {
//!         Next::Attempt(run) => match results.pop().unwrap() {
//!             Ok(body) => break Ok((body, run.succeeded())),
//!             Err(e) => run.failed(e, Verdict::Retry, &mut ()),
//!         },
//!         Next::Sleep(run, delay) => {
//!             slept.push(delay); // sleep here, as your event loop does
//!             run.resume()
//!         }
//!         Next::Stop(err) => break Err(err),
//!     };
//! };
//! assert_eq!(outcome.unwrap(), ("body", 3));
//! assert_eq!(slept, [Duration::from_secs(1), Duration::from_secs(2)]);
//! # Ok::<(), backstop::ConfigError>(())
//! ```
//!
//! Dropping a [`DrivenRun`] (a cancelled task) gives back what it holds, as
//! dropping a `Retry` future does: the budget's tokens for a retry not yet
//! made, a pacer slot, and an attempt's breaker permit (counted as nothing,
//! so a half-open circuit lets another probe through).

use std::fmt::{self, Display};
use std::time::Duration;

use super::error::RetryError;
use super::event::OnRetry;
use super::settings::{Name, RunSettings};
use super::state::{RunState, Step};
use crate::policy::RetryPolicy;
use crate::verdict::Verdict;

/// How long a driven run sleeps before it asks a full concurrency limit again.
const LIMIT_RECHECK: Duration = Duration::from_millis(10);

impl RetryPolicy {
    /// Prepares a run whose attempts the caller makes; see
    /// [`DrivenRun`]. Set its name, clock and guards, then
    /// [`start`](Driven::start) it.
    pub fn driven(&self) -> Driven<'_> {
        Driven { settings: RunSettings::new(self) }
    }
}

/// A driven run's settings, before it starts; made by [`RetryPolicy::driven`].
#[must_use = "a driven run does nothing until .start()"]
#[derive(Debug, Clone)]
pub struct Driven<'a> {
    settings: RunSettings<'a>,
}

impl<'a> Driven<'a> {
    /// Names the run in log lines, metrics labels and errors (default:
    /// `"operation"`).
    pub fn name(mut self, name: impl Into<Name>) -> Self {
        self.settings.name = name.into();
        self
    }

    super::settings::run_setters!(Driven<'a>);

    fn with_settings(mut self, change: impl FnOnce(&mut RunSettings<'a>)) -> Self {
        change(&mut self.settings);
        self
    }

    /// Starts the run (its deadline counts from here) and says what comes
    /// first: usually [`Next::Attempt`]; a [`Next::Sleep`] when a pacer
    /// makes the first attempt wait; a [`Next::Stop`] when an open circuit
    /// or the throttle refuses it.
    pub fn start<E: Display>(self) -> Next<'a, E> {
        DrivenRun { state: RunState::new(self.settings) }.resume()
    }
}

/// A started run, between two of its steps. Its methods take it by value
/// and answer with the [`Next`] step, so a finished run cannot be asked again.
pub struct DrivenRun<'a, E> {
    state: RunState<'a, E>,
}

/// What a driven run asks of its caller next.
#[must_use = "the run waits for its caller to take the next step"]
pub enum Next<'a, E> {
    /// Make the attempt now, then report it with [`DrivenRun::succeeded`]
    /// or [`DrivenRun::failed`].
    Attempt(DrivenRun<'a, E>),
    /// Sleep this long (a retry's delay, or a pacer's wait), then call
    /// [`DrivenRun::resume`].
    Sleep(DrivenRun<'a, E>, Duration),
    /// The run is over: give up with this error (the last attempt's error
    /// inside, where there was one).
    Stop(RetryError<E>),
}

impl<'a, E: Display> DrivenRun<'a, E> {
    /// After a [`Next::Sleep`]: asks the breaker, throttle and pacer whether
    /// the next attempt may go.
    pub fn resume(mut self) -> Next<'a, E> {
        match self.state.before_attempt() {
            None => Next::Attempt(self),
            Some(step) => self.then(step),
        }
    }

    /// The attempt succeeded: tells the guards, logs a success after retries,
    /// and returns how many attempts the run made.
    pub fn succeeded(mut self) -> u32 {
        self.state.succeeded();
        self.state.attempts()
    }

    /// The attempt failed with `error`, judged `verdict` (what a classifier
    /// would answer): tells the guards, then either calls `on_retry` and
    /// answers [`Next::Sleep`], or stops.
    pub fn failed<H: OnRetry<E> + ?Sized>(mut self, error: E, verdict: Verdict, on_retry: &mut H) -> Next<'a, E> {
        let step = self.state.failed_with(error, verdict, on_retry);
        self.then(step)
    }

    /// Attempts made so far, the current one included.
    pub fn attempts(&self) -> u32 {
        self.state.attempts()
    }

    fn then(self, step: Step<E>) -> Next<'a, E> {
        match step {
            Step::Sleep(delay) => Next::Sleep(self, delay),
            // A driven run cannot await a place in a concurrency limit's
            // queue: it looks again after a short sleep (out of the queue's
            // order, so a driven run may wait longer than a queued one).
            Step::Wait(_) => Next::Sleep(self, LIMIT_RECHECK),
            Step::Stop(err) => Next::Stop(err),
        }
    }
}

impl<E: Display> fmt::Debug for DrivenRun<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrivenRun").field("attempts", &self.state.attempts()).finish_non_exhaustive()
    }
}

impl<E: fmt::Debug + Display> fmt::Debug for Next<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Next::Attempt(run) => f.debug_tuple("Attempt").field(run).finish(),
            Next::Sleep(run, delay) => f.debug_tuple("Sleep").field(run).field(delay).finish(),
            Next::Stop(err) => f.debug_tuple("Stop").field(err).finish(),
        }
    }
}
