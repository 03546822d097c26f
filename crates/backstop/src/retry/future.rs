//! The async run as a hand-written state machine: attempt, sleep, attempt.
//!
//! Written out (rather than an `async` block) so the type can be named by
//! `IntoFuture` and nothing is boxed: the attempt's future lives inline. A
//! retry's sleep is boxed, and so is an attempt's timer when the run has a
//! per-attempt timeout or a deadline, so the success path of a run with
//! neither allocates nothing.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{AttemptTimeout, Cutoff, RunState, Step};
use crate::clock::SleepFuture;
use crate::error::RetryError;
use crate::event::OnRetry;
use crate::verdict::{Classify, Verdict};

pin_project! {
    /// The future of an async run; `.await` a [`Retry`](super::Retry) to get one.
    ///
    /// Dropping it cancels the run: the current attempt's future and any sleep
    /// are dropped with it, nothing is left running, and budget tokens
    /// withdrawn for a retry not yet made are given back.
    #[must_use = "futures do nothing unless polled"]
    pub struct RetryFuture<'a, Op, Fut, C, H, T, E> {
        state: RunState<'a, E>,
        op: Op,
        classifier: C,
        hook: H,
        timeout: T,
        #[pin]
        phase: Phase<Fut>,
    }
}

pin_project! {
    #[project = PhaseProj]
    enum Phase<Fut> {
        Ready,
        Attempt { #[pin] fut: Fut, timer: Option<(SleepFuture, Cutoff)> },
        Sleep { sleep: SleepFuture },
        Done,
    }
}

impl<'a, Op, Fut, C, H, T, E> RetryFuture<'a, Op, Fut, C, H, T, E> {
    pub(super) fn new(state: RunState<'a, E>, op: Op, classifier: C, hook: H, timeout: T) -> Self {
        Self { state, op, classifier, hook, timeout, phase: Phase::Ready }
    }
}

impl<Op, Fut, T, E, C, H, TO> Future for RetryFuture<'_, Op, Fut, C, H, TO, E>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    C: Classify<E>,
    H: OnRetry<E>,
    TO: AttemptTimeout<E>,
    E: Display,
{
    type Output = Result<T, RetryError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let step = match this.phase.as_mut().project() {
                PhaseProj::Ready => match this.state.before_attempt() {
                    None => {
                        let timer = this.state.attempt_timer(this.timeout.limit());
                        let fut = (this.op)();
                        this.phase.set(Phase::Attempt { fut, timer });
                        continue;
                    }
                    Some(step) => step,
                },
                PhaseProj::Attempt { fut, timer } => match fut.poll(cx) {
                    Poll::Ready(Ok(value)) => {
                        this.state.succeeded();
                        this.phase.set(Phase::Done);
                        return Poll::Ready(Ok(value));
                    }
                    Poll::Ready(Err(error)) => this.state.failed(error, this.classifier, this.hook),
                    Poll::Pending => {
                        let Some((sleep, cutoff)) = timer else {
                            return Poll::Pending;
                        };
                        ready!(sleep.as_mut().poll(cx));
                        match *cutoff {
                            Cutoff::AttemptTimeout(after) => match this.timeout.error(after) {
                                Some(error) => this.state.failed_with(error, Verdict::Timeout, this.hook),
                                None => this.state.deadline_passed(),
                            },
                            Cutoff::Deadline => this.state.deadline_passed(),
                        }
                    }
                },
                PhaseProj::Sleep { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    this.phase.set(Phase::Ready);
                    continue;
                }
                PhaseProj::Done => panic!("RetryFuture polled after it completed"),
            };
            match step {
                Step::Sleep(delay) => {
                    let sleep = this.state.clock.sleep_async(delay);
                    this.phase.set(Phase::Sleep { sleep });
                }
                Step::Stop(err) => {
                    this.phase.set(Phase::Done);
                    return Poll::Ready(Err(err));
                }
            }
        }
    }
}
