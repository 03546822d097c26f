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
use super::settings::Settings;
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
    #[project = Projection]
    pub struct RetryFuture<'a, Op, Fut, C, H, E, R, S> {
        run: Run<'a, E, S>,
        op: Op,
        classifier: C,
        hook: H,
        timeout: Option<AttemptTimeout<'a, E>>,
        // The attempt running, if any; its timer and the sleep before the
        // next one live beside the run's state, which exists by then.
        #[pin]
        attempt: Option<Fut>,
        done: bool,
        report: PhantomData<fn() -> R>,
    }
}

/// The run's settings, and its state once built. The state is boxed so the
/// future stays small to move (it is built only for a run with guards,
/// timers, or a failed attempt, where an allocation is noise).
struct Run<'a, E, S> {
    settings: S,
    state: Option<Box<Active<'a, E>>>,
}

/// What a run that is past its bare first attempt keeps: its state, the
/// running attempt's timer, and the sleep before the next attempt.
struct Active<'a, E> {
    state: RunState<'a, E>,
    timer: Option<(SleepFuture, Cutoff)>,
    sleep: Option<SleepFuture>,
}

impl<'a, E: Display, S: Settings<'a>> Run<'a, E, S> {
    /// The state, built now if it was not.
    fn active(&mut self) -> &mut Active<'a, E> {
        let settings = &self.settings;
        self.state.get_or_insert_with(|| {
            Box::new(Active { state: RunState::new(settings.clone().into_full()), timer: None, sleep: None })
        })
    }
}

impl<'a, Op, Fut, C, H, E, R, S> RetryFuture<'a, Op, Fut, C, H, E, R, S> {
    pub(crate) fn new(settings: S, op: Op, classifier: C, hook: H, timeout: Option<AttemptTimeout<'a, E>>) -> Self {
        Self {
            run: Run { settings, state: None },
            op,
            classifier,
            hook,
            timeout,
            attempt: None,
            done: false,
            report: PhantomData,
        }
    }
}

impl<'a, Op, Fut, T, E, C, H, R, S> IntoFuture for Retry<'a, Op, E, Async, C, H, R, S>
where
    S: Settings<'a>,
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    C: Classify<E>,
    H: OnRetry<E>,
    R: Report<T>,
    E: Display,
{
    type Output = Result<R::Output, RetryError<E>>;
    type IntoFuture = RetryFuture<'a, Op, Fut, C, H, E, R, S>;

    fn into_future(self) -> Self::IntoFuture {
        RetryFuture::new(self.settings, self.op, self.classifier, self.hook, self.timeout)
    }
}

impl<'a, Op, Fut, T, E, C, H, R, S> Future for RetryFuture<'a, Op, Fut, C, H, E, R, S>
where
    S: Settings<'a>,
    Op: MakeAttempt<Fut>,
    Fut: Future<Output = Result<T, E>>,
    C: Classify<E>,
    H: OnRetry<E>,
    R: Report<T>,
    E: Display,
{
    type Output = Result<R::Output, RetryError<E>>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        assert!(!*this.done, "RetryFuture polled after it completed");
        if this.run.state.is_some() {
            return run(this, cx, None);
        }
        // A bare run's first attempt (or one whose only guard is an idle
        // pacer) needs no run state: it is started and polled here, a path
        // small enough to inline into the caller.
        if this.attempt.is_none() {
            if !(this.timeout.is_none() && this.run.settings.go_first()) {
                return run(this, cx, None);
            }
            this.attempt.set(Some(this.op.make()));
        }
        let Some(fut) = this.attempt.as_mut().as_pin_mut() else { return run(this, cx, None) };
        match ready!(fut.poll(cx)) {
            Ok(value) => {
                this.run.settings.first_succeeded();
                log::attempt_succeeded(this.run.settings.name());
                *this.done = true;
                Poll::Ready(Ok(R::report(value, 1)))
            }
            Err(error) => {
                this.attempt.set(None);
                let step = this.run.active().state.failed_first(error, this.classifier, this.hook);
                run(this, cx, Some(step))
            }
        }
    }
}

/// Everything but a bare run's first attempt: the run loop proper, starting
/// with `step` when the first attempt just failed.
#[inline(never)]
fn run<'a, Op, Fut, T, E, C, H, R, S>(
    mut this: Projection<'_, 'a, Op, Fut, C, H, E, R, S>,
    cx: &mut Context<'_>,
    mut step: Option<Step<E>>,
) -> Poll<Result<R::Output, RetryError<E>>>
where
    Op: MakeAttempt<Fut>,
    Fut: Future<Output = Result<T, E>>,
    C: Classify<E>,
    H: OnRetry<E>,
    R: Report<T>,
    E: Display,
    S: Settings<'a>,
{
    loop {
        if let Some(step) = step.take() {
            if let Some(err) = this.run.active().take_step(step) {
                *this.done = true;
                return Poll::Ready(Err(err));
            }
        }
        if this.attempt.is_none() {
            let active = this.run.active();
            if let Some(sleep) = active.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                active.sleep = None;
            }
            if let Some(next) = active.state.before_attempt() {
                step = Some(next);
                continue;
            }
            active.timer = active.state.attempt_timer(this.timeout.as_ref().map(|t| t.limit()));
            this.attempt.set(Some(this.op.make()));
        }
        let Some(fut) = this.attempt.as_mut().as_pin_mut() else { continue };
        let next = match fut.poll(cx) {
            Poll::Ready(Ok(value)) => {
                let active = this.run.active();
                active.state.succeeded();
                *this.done = true;
                return Poll::Ready(Ok(R::report(value, active.state.attempts())));
            }
            Poll::Ready(Err(error)) => this.run.active().state.failed(error, this.classifier, this.hook),
            Poll::Pending => {
                let Some(active) = this.run.state.as_mut() else { return Poll::Pending };
                let Some((timer, cutoff)) = active.timer.as_mut() else {
                    return Poll::Pending;
                };
                ready!(timer.as_mut().poll(cx));
                let (cutoff, state) = (*cutoff, &mut active.state);
                match cutoff {
                    Cutoff::AttemptTimeout(after) => match this.timeout.as_ref().map(|t| t.error(after)) {
                        Some(error) => {
                            let verdict = timeout_verdict(this.classifier.classify(&error));
                            state.describe = this.classifier.describer();
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
        this.run.active().timer = None;
        step = Some(next);
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

impl<E: Display> Active<'_, E> {
    /// Acts on a step: a sleep is armed (a zero delay retries at once, with
    /// no timer, which would round it up to the runtime's granularity); a
    /// stop is handed back.
    fn take_step(&mut self, step: Step<E>) -> Option<RetryError<E>> {
        match step {
            Step::Sleep(delay) if delay.is_zero() => None,
            Step::Sleep(delay) => {
                self.sleep = Some(self.state.clock.sleep_async(delay));
                None
            }
            Step::Wait(wait) => {
                self.sleep = Some(wait);
                None
            }
            Step::Stop(err) => Some(err),
        }
    }
}
