//! The async run as a hand-written state machine: attempt, sleep, attempt.
//!
//! Written out (rather than an `async` block) so the type can be named by
//! `IntoFuture` and nothing is boxed: the attempt's future lives inline, and
//! only a retry's sleep is allocated.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{RunState, Step};
use crate::clock::SleepFuture;
use crate::error::RetryError;
use crate::event::OnRetry;
use crate::verdict::Classify;

pin_project! {
    /// The future of an async run; `.await` a [`Retry`](super::Retry) to get one.
    ///
    /// Dropping it cancels the run: the current attempt's future and any sleep
    /// are dropped with it, and nothing is left running.
    #[must_use = "futures do nothing unless polled"]
    pub struct RetryFuture<'a, Op, Fut, C, H, E> {
        state: RunState<'a, E>,
        op: Op,
        classifier: C,
        hook: H,
        #[pin]
        phase: Phase<Fut>,
    }
}

pin_project! {
    #[project = PhaseProj]
    enum Phase<Fut> {
        Ready,
        Attempt { #[pin] fut: Fut },
        Sleep { sleep: SleepFuture },
        Done,
    }
}

impl<'a, Op, Fut, C, H, E> RetryFuture<'a, Op, Fut, C, H, E> {
    pub(super) fn new(state: RunState<'a, E>, op: Op, classifier: C, hook: H) -> Self {
        Self {
            state,
            op,
            classifier,
            hook,
            phase: Phase::Ready,
        }
    }
}

impl<Op, Fut, T, E, C, H> Future for RetryFuture<'_, Op, Fut, C, H, E>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    C: Classify<E>,
    H: OnRetry<E>,
    E: Display,
{
    type Output = Result<T, RetryError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.phase.as_mut().project() {
                PhaseProj::Ready => match this.state.before_attempt() {
                    None => {
                        let fut = (this.op)();
                        this.phase.set(Phase::Attempt { fut });
                    }
                    Some(Step::Sleep(delay)) => {
                        let sleep = this.state.clock.sleep_async(delay);
                        this.phase.set(Phase::Sleep { sleep });
                    }
                    Some(Step::Stop(err)) => {
                        this.phase.set(Phase::Done);
                        return Poll::Ready(Err(err));
                    }
                },
                PhaseProj::Attempt { fut } => match ready!(fut.poll(cx)) {
                    Ok(value) => {
                        this.state.succeeded();
                        this.phase.set(Phase::Done);
                        return Poll::Ready(Ok(value));
                    }
                    Err(error) => match this.state.failed(error, this.classifier, this.hook) {
                        Step::Sleep(delay) => {
                            let sleep = this.state.clock.sleep_async(delay);
                            this.phase.set(Phase::Sleep { sleep });
                        }
                        Step::Stop(err) => {
                            this.phase.set(Phase::Done);
                            return Poll::Ready(Err(err));
                        }
                    },
                },
                PhaseProj::Sleep { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    this.phase.set(Phase::Ready);
                }
                PhaseProj::Done => panic!("RetryFuture polled after it completed"),
            }
        }
    }
}
