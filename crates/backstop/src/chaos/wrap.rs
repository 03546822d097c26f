//! A run's operation with chaos in front of it: [`Chaos::wrap`] (sync) and
//! [`Chaos::wrap_async`] (whose attempts are [`Injected`] futures).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::{Chaos, Fault};
use crate::clock::SleepFuture;

impl Chaos {
    /// `op` with chaos in front: each call first sleeps the injected delay
    /// (on the `Chaos`'s clock), then either fails with `inject(fault)`
    /// without calling `op`, or calls it. Give it to a run as its
    /// operation: `policy.retry(chaos.wrap(op, inject))`.
    pub fn wrap<T, E>(
        &self,
        mut op: impl FnMut() -> Result<T, E>,
        inject: impl Fn(Fault) -> E,
    ) -> impl FnMut() -> Result<T, E> {
        let chaos = self.clone();
        move || {
            let injection = chaos.next();
            if !injection.delay.is_zero() {
                chaos.clock().sleep(injection.delay);
            }
            match injection.fault {
                Some(fault) => Err(inject(fault)),
                None => op(),
            }
        }
    }

    /// The async form of [`wrap`](Self::wrap): the delay is an async sleep
    /// on the `Chaos`'s clock, and a faulted attempt's future is never
    /// made. An attempt that is not faulted calls `op` when it starts and
    /// awaits its future after the delay (futures do their work when
    /// awaited; a closure that works before returning its future does it
    /// first). `policy.retry(chaos.wrap_async(|| fetch(&url), inject)).await`.
    pub fn wrap_async<T, E, Fut>(
        &self,
        mut op: impl FnMut() -> Fut,
        inject: impl Fn(Fault) -> E,
    ) -> impl FnMut() -> Injected<Fut, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let chaos = self.clone();
        move || {
            let injection = chaos.next();
            let sleep = (!injection.delay.is_zero()).then(|| chaos.clock().sleep_async(injection.delay));
            let (fault, attempt) = match injection.fault {
                Some(fault) => (Some(inject(fault)), None),
                None => (None, Some(op())),
            };
            Injected { sleep, fault, attempt }
        }
    }
}

pin_project_lite::pin_project! {
    /// One attempt of an operation wrapped by [`Chaos::wrap_async`]: the
    /// injected delay, then the injected fault or the attempt itself.
    #[must_use = "futures do nothing unless polled"]
    pub struct Injected<Fut, E> {
        sleep: Option<SleepFuture>,
        fault: Option<E>,
        #[pin]
        attempt: Option<Fut>,
    }
}

impl<Fut, E> std::fmt::Debug for Injected<Fut, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injected").field("faulted", &self.fault.is_some()).finish_non_exhaustive()
    }
}

impl<T, E, Fut: Future<Output = Result<T, E>>> Future for Injected<Fut, E> {
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(sleep) = this.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
            *this.sleep = None;
        }
        if let Some(fault) = this.fault.take() {
            return Poll::Ready(Err(fault));
        }
        match this.attempt.as_pin_mut() {
            Some(attempt) => attempt.poll(cx),
            None => panic!("`Injected` polled after it completed"),
        }
    }
}
