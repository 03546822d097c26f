//! Real time: [`SystemClock`].

use std::time::{Duration, Instant};

use super::thread_sleep::ThreadSleep;
use super::{Clock, SleepFuture};

/// Real time: `Instant::now()`, `thread::sleep`, and for async sleeps tokio's
/// timer when called inside a tokio runtime that has one, a timer thread
/// otherwise.
///
/// Inside a tokio runtime, `now()` reads tokio's clock, so tests on tokio's
/// paused clock (`#[tokio::test(start_paused = true)]`) see deadlines move
/// with virtual time. Outside one, it is `Instant::now()`. A tokio runtime
/// built without `enable_time` is detected (once per runtime and thread) and
/// served by the timer thread instead of panicking. (The detection catches
/// tokio's panic, so a program built with `panic = "abort"` still aborts
/// there: enable tokio's timers, or use a clock of your own.)
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        #[cfg(feature = "tokio")]
        {
            tokio::time::Instant::now().into_std()
        }
        #[cfg(not(feature = "tokio"))]
        {
            Instant::now()
        }
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }

    fn sleep_async(&self, d: Duration) -> SleepFuture {
        #[cfg(feature = "tokio")]
        if let Some(sleep) = tokio_timer::sleep(d) {
            return sleep;
        }
        Box::pin(ThreadSleep::new(d))
    }
}

#[cfg(feature = "tokio")]
mod tokio_timer {
    //! tokio's timer, when the current runtime has one.
    //!
    //! tokio offers no way to ask whether a runtime was built with
    //! `enable_time`: `tokio::time::sleep` panics when it was not. So the
    //! first sleep on each runtime (per thread) is made inside
    //! `catch_unwind`, with the panic message kept off stderr, and the answer
    //! is remembered for that runtime's id.

    use std::cell::Cell;
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::Once;
    use std::time::Duration;

    use tokio::runtime::{Handle, Id};

    use crate::clock::SleepFuture;

    thread_local! {
        /// The last runtime seen on this thread, and whether it has timers.
        static LAST: Cell<Option<(Id, bool)>> = const { Cell::new(None) };
        /// Set while probing, so the panic hook stays quiet.
        static PROBING: Cell<bool> = const { Cell::new(false) };
    }

    /// tokio's sleep, or `None` outside a tokio runtime or in one without timers.
    pub(super) fn sleep(d: Duration) -> Option<SleepFuture> {
        let handle = Handle::try_current().ok()?;
        let id = handle.id();
        match LAST.get() {
            Some((seen, true)) if seen == id => Some(Box::pin(tokio::time::sleep(d))),
            Some((seen, false)) if seen == id => None,
            _ => {
                let sleep = probe(d);
                LAST.set(Some((id, sleep.is_some())));
                sleep
            }
        }
    }

    /// Makes a tokio sleep, catching the panic of a runtime without timers.
    fn probe(d: Duration) -> Option<SleepFuture> {
        static QUIET_HOOK: Once = Once::new();
        QUIET_HOOK.call_once(|| {
            let previous = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                if !PROBING.get() {
                    previous(info);
                }
            }));
        });
        PROBING.set(true);
        let made = panic::catch_unwind(AssertUnwindSafe(|| tokio::time::sleep(d)));
        PROBING.set(false);
        made.ok().map(|sleep| Box::pin(sleep) as SleepFuture)
    }
}
