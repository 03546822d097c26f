//! The async run as a hand-written state machine: attempt, sleep, attempt.
//!
//! Written out (rather than an `async` block) so the type can be named by
//! `IntoFuture` and nothing is boxed: the attempt's future lives inline. A
//! retry's sleep is boxed, and so is an attempt's timer when the run has a
//! per-attempt timeout or a deadline, so the success path of a run with
//! neither allocates nothing. The run state is built only when a bare run's
//! first attempt fails (or at once when the run has guards or timers).

use std::fmt::Display;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::attempt::{Async, MakeAttempt};
use super::builder::{AttemptTimeout, Retry};
use super::error::RetryError;
use super::event::OnRetry;
use super::log;
use super::report::Report;
use super::settings::RunSettings;
use super::state::{Cutoff, RunState, Step};
use crate::clock::SleepFuture;
use crate::verdict::{Classify, Verdict};

pin_project! {
    /// The future of an async run; `.await` a [`Retry`](super::Retry) to get one.
    ///
    /// Dropping it cancels the run: the current attempt's future and any sleep
    /// are dropped with it, nothing is left running, and budget tokens
    /// withdrawn for a retry not yet made are given back.
    #[must_use = "futures do nothing unless polled"]
    pub struct RetryFuture<'a, Op, Fut, C, H, E, R> {
        run: Run<'a, E>,
        op: Op,
        classifier: C,
        hook: H,
        timeout: Option<AttemptTimeout<'a, E>>,
        // The state machine, as fields rather than an enum so that each
        // step drops only what it ends: the attempt running (with its
        // timer), or the sleep before the next one, or neither.
        #[pin]
        attempt: Option<Fut>,
        timer: Option<(SleepFuture, Cutoff)>,
        sleep: Option<SleepFuture>,
        done: bool,
        report: PhantomData<fn() -> R>,
    }
}

/// The run's settings, and its state once built. The state is boxed so the
/// future stays small to move (it is built only for a run with guards,
/// timers, or a failed attempt, where an allocation is noise).
struct Run<'a, E> {
    settings: RunSettings<'a>,
    state: Option<Box<RunState<'a, E>>>,
}

impl<'a, E: Display> Run<'a, E> {
    /// The state, built now if it was not.
    fn state(&mut self) -> &mut RunState<'a, E> {
        let settings = &self.settings;
        self.state.get_or_insert_with(|| Box::new(RunState::new(settings.clone())))
    }
}

impl<'a, Op, Fut, C, H, E, R> RetryFuture<'a, Op, Fut, C, H, E, R> {
    pub(crate) fn new(
        settings: RunSettings<'a>,
        op: Op,
        classifier: C,
        hook: H,
        timeout: Option<AttemptTimeout<'a, E>>,
    ) -> Self {
        Self {
            run: Run { settings, state: None },
            op,
            classifier,
            hook,
            timeout,
            attempt: None,
            timer: None,
            sleep: None,
            done: false,
            report: PhantomData,
        }
    }
}

impl<'a, Op, Fut, T, E, C, H, R> IntoFuture for Retry<'a, Op, E, Async, C, H, R>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    C: Classify<E>,
    H: OnRetry<E>,
    R: Report<T>,
    E: Display,
{
    type Output = Result<R::Output, RetryError<E>>;
    type IntoFuture = RetryFuture<'a, Op, Fut, C, H, E, R>;

    fn into_future(self) -> Self::IntoFuture {
        RetryFuture::new(self.settings, self.op, self.classifier, self.hook, self.timeout)
    }
}

impl<Op, Fut, T, E, C, H, R> Future for RetryFuture<'_, Op, Fut, C, H, E, R>
where
    Op: MakeAttempt<Fut>,
    Fut: Future<Output = Result<T, E>>,
    C: Classify<E>,
    H: OnRetry<E>,
    R: Report<T>,
    E: Display,
{
    type Output = Result<R::Output, RetryError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        assert!(!*this.done, "RetryFuture polled after it completed");
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                *this.sleep = None;
            }
            if this.attempt.is_none() {
                // A bare run's first attempt starts without a run state.
                let bare = this.run.state.is_none() && this.run.settings.is_bare() && this.timeout.is_none();
                if !bare {
                    let state = this.run.state();
                    if let Some(step) = state.before_attempt() {
                        if let Some(done) = take_step(step, state, this.sleep) {
                            *this.done = true;
                            return Poll::Ready(Err(done));
                        }
                        continue;
                    }
                    *this.timer = state.attempt_timer(this.timeout.as_ref().map(|t| t.limit));
                }
                this.attempt.set(Some(this.op.make()));
            }
            let Some(fut) = this.attempt.as_mut().as_pin_mut() else { continue };
            let step = match fut.poll(cx) {
                Poll::Ready(Ok(value)) => {
                    let attempts = match &mut this.run.state {
                        Some(state) => {
                            state.succeeded();
                            state.attempts()
                        }
                        None => {
                            log::attempt_succeeded(&this.run.settings.name, 1);
                            1
                        }
                    };
                    *this.done = true;
                    return Poll::Ready(Ok(R::report(value, attempts)));
                }
                Poll::Ready(Err(error)) => match this.run.state {
                    None => this.run.state().failed_first(error, this.classifier, this.hook),
                    Some(_) => this.run.state().failed(error, this.classifier, this.hook),
                },
                Poll::Pending => {
                    let Some((timer, cutoff)) = this.timer.as_mut() else {
                        return Poll::Pending;
                    };
                    ready!(timer.as_mut().poll(cx));
                    let cutoff = *cutoff;
                    let state = this.run.state();
                    match cutoff {
                        Cutoff::AttemptTimeout(after) => match this.timeout.as_ref().map(|t| (t.on_timeout)(after)) {
                            Some(error) => {
                                let verdict = timeout_verdict(this.classifier.classify(&error));
                                state.failed_with(error, verdict, this.hook)
                            }
                            None => state.deadline_passed(),
                        },
                        Cutoff::Deadline => state.deadline_passed(),
                    }
                }
            };
            // The attempt is over: drop it (and its timer) before going on.
            this.attempt.set(None);
            *this.timer = None;
            if let Some(err) = take_step(step, this.run.state(), this.sleep) {
                *this.done = true;
                return Poll::Ready(Err(err));
            }
        }
    }
}

/// The verdict for an attempt cut by its timeout: the classifier's, so a
/// classifier that knows the attempt must not run twice can stop the run,
/// with a plain `Retry` made `Timeout` (it was one: budgets charge it so).
fn timeout_verdict(verdict: Verdict) -> Verdict {
    match verdict {
        Verdict::Retry => Verdict::Timeout,
        other => other,
    }
}

/// Acts on a step: a sleep is armed (a zero delay retries at once, with no
/// timer, which would round it up to the runtime's granularity); a stop is
/// handed back.
fn take_step<E: Display>(
    step: Step<E>,
    state: &RunState<'_, E>,
    sleep: &mut Option<SleepFuture>,
) -> Option<RetryError<E>> {
    match step {
        Step::Sleep(delay) if delay.is_zero() => None,
        Step::Sleep(delay) => {
            *sleep = Some(state.clock.sleep_async(delay));
            None
        }
        Step::Stop(err) => Some(err),
    }
}
