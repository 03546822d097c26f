//! The blocking run: [`Retry::call`], a loop that sleeps the thread between
//! attempts.

use std::fmt::Display;

use super::attempt::Blocking;
use super::builder::Retry;
use super::error::RetryError;
use super::event::OnRetry;
use super::log;
use super::report::Report;
use super::settings::Settings;
use super::state::{RunState, Step};
use crate::verdict::Classify;

impl<'a, Op, T, E, C, H, R, S> Retry<'a, Op, E, Blocking, C, H, R, S>
where
    S: Settings<'a>,
    Op: FnMut() -> Result<T, E>,
    C: Classify<E>,
    H: OnRetry<E>,
    R: Report<T>,
    E: Display,
{
    /// Runs the operation, sleeping the thread between attempts.
    ///
    /// Returns the first success (with its attempt count after
    /// [`with_attempts`](Self::with_attempts)), or a [`RetryError`] keeping
    /// the last error. The deadline is checked between attempts: a blocking
    /// attempt cannot be cut short.
    // Always inlined: passed to a call in memory, the run's settings are
    // written by the caller and read back here at once, and the read waits
    // for the writes (a store-forwarding stall: 10 ns of a 15 ns run).
    #[inline(always)]
    pub fn call(self) -> Result<R::Output, RetryError<E>> {
        let Retry { settings, mut op, classifier, hook, timeout, .. } = self;
        // Only async runs have a per-attempt timeout: nothing to drop here,
        // and no drop code on this path, which must stay small to inline.
        debug_assert!(timeout.is_none());
        std::mem::forget(timeout);
        // The fast path, small enough to inline into the caller: the first
        // attempt of a bare run (or of one whose only guard is an idle
        // pacer) needs no run state at all.
        let first_failure = if settings.go_first() {
            match op() {
                Ok(value) => {
                    settings.first_succeeded();
                    log::attempt_succeeded(settings.name());
                    return Ok(R::report(value, 1));
                }
                Err(error) => Some(error),
            }
        } else {
            None
        };
        call_slow::<_, _, _, _, _, R, _>(settings, op, classifier, hook, first_failure)
    }
}

/// Everything but a bare run's first success: the run loop proper.
#[inline(never)]
fn call_slow<'a, Op, C, H, T, E, R, S>(
    settings: S,
    mut op: Op,
    classifier: C,
    mut hook: H,
    first_failure: Option<E>,
) -> Result<R::Output, RetryError<E>>
where
    Op: FnMut() -> Result<T, E>,
    C: Classify<E>,
    H: OnRetry<E>,
    R: Report<T>,
    E: Display,
    S: Settings<'a>,
{
    let mut state = RunState::new(settings.into_full());
    let mut next = first_failure.map(|error| state.failed_first(error, &classifier, &mut hook));
    loop {
        let step = match next.take() {
            Some(step) => step,
            None => match state.before_attempt() {
                None => match op() {
                    Ok(value) => {
                        state.succeeded();
                        return Ok(R::report(value, state.attempts()));
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
            Step::Wait(wait) => block_on(wait),
            Step::Stop(err) => return Err(err),
        }
    }
}

/// Runs `wait` (a wait for a concurrency limit's place) to completion on
/// this thread, parked between its wake-ups.
fn block_on(mut wait: crate::clock::SleepFuture) {
    use std::sync::Arc;
    use std::task::{Context, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    while wait.as_mut().poll(&mut cx).is_pending() {
        std::thread::park();
    }
}
