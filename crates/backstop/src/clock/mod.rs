//! Time, injected: the [`Clock`] trait, the real [`SystemClock`] and the
//! virtual [`ManualClock`] for tests.
//!
//! Runs (and breakers) never call `Instant::now()` or `sleep` directly; they
//! ask their clock. Production code uses the default, [`SystemClock`]. Tests
//! pass a [`ManualClock`], whose time moves only when something sleeps on it
//! (or the test [advances](ManualClock::advance) it), so a schedule of minutes
//! runs in microseconds and the test can assert exactly what was slept:
//!
//! ```
//! use std::time::Duration;
//! use backstop::{Backoff, ManualClock, RetryPolicy};
//!
//! let clock = ManualClock::new();
//! let policy = RetryPolicy::builder()
//!     .max_attempts(4)
//!     .backoff(Backoff::exponential(Duration::from_secs(1)))
//!     .build()?;
//! let mut calls = 0;
//! let v = policy
//!     .retry(|| { calls += 1; if calls < 4 { Err("busy") } else { Ok(calls) } })
//!     .clock(&clock)
//!     .call();
//! assert_eq!(v.unwrap(), 4);
//! assert_eq!(clock.sleeps(), [1, 2, 4].map(Duration::from_secs));
//! assert_eq!(clock.elapsed(), Duration::from_secs(7));
//! # Ok::<(), backstop::ConfigError>(())
//! ```
//!
//! The clock is also the async *sleep hook*. An async run waits between
//! attempts with [`Clock::sleep_async`], and bounds a running attempt (its
//! per-attempt timeout, the run's deadline) with [`Clock::timer`]. On a real
//! clock the two are the same thing; on a virtual one the difference matters:
//! a sleep is the run doing nothing until then, so virtual time may jump to
//! it, while a timer only watches work that is under way, and fires when
//! time gets there by other means. [`SystemClock`] uses tokio's timer inside
//! a tokio runtime that has timers (with the `tokio` feature) and a timer
//! thread anywhere else, so async runs work on any executor; a clock of your
//! own can use your runtime's timer instead.

mod manual;
mod system;
mod thread_sleep;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use manual::ManualClock;
pub use system::SystemClock;

/// A boxed sleep, as returned by [`Clock::sleep_async`] and [`Clock::timer`].
/// Only retries and timed attempts use one, so the box is never on the
/// success path of an untimed run.
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of time and of sleeps.
///
/// Implement it to run retries on a runtime other than tokio, or to put time
/// under a test's control (see [`ManualClock`]).
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;

    /// Blocks the thread for `d` (a sync run's wait between attempts).
    fn sleep(&self, d: Duration);

    /// A future that completes after `d` (an async run's wait between
    /// attempts: nothing else of the run happens until it completes).
    fn sleep_async(&self, d: Duration) -> SleepFuture;

    /// A future that completes after `d`, raced against work in progress: an
    /// async attempt's per-attempt timeout and the run's deadline.
    ///
    /// The default is [`sleep_async`](Self::sleep_async), which is right for
    /// any real clock. A virtual clock fires a timer when its time reaches
    /// it, without moving time for it (see [`ManualClock`]).
    fn timer(&self, d: Duration) -> SleepFuture {
        self.sleep_async(d)
    }
}

/// A clock behind a reference or an `Arc` is the clock itself.
macro_rules! forward_clock {
    ($($wrapper:ty),*) => {$(
        impl<C: Clock + ?Sized> Clock for $wrapper {
            fn now(&self) -> Instant {
                (**self).now()
            }
            fn sleep(&self, d: Duration) {
                (**self).sleep(d)
            }
            fn sleep_async(&self, d: Duration) -> SleepFuture {
                (**self).sleep_async(d)
            }
            fn timer(&self, d: Duration) -> SleepFuture {
                (**self).timer(d)
            }
        }
    )*};
}

forward_clock!(&C, Arc<C>);

impl std::fmt::Debug for dyn Clock + '_ {
    /// A clock shows as `Clock`: what it is matters less than that it is there.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}
