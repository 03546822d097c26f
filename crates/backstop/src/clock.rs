//! Time, injected: the [`Clock`] trait, the real [`SystemClock`] and the
//! virtual [`ManualClock`] for tests.
//!
//! Runs (and breakers) never call `Instant::now()` or `sleep` directly; they
//! ask their clock. Production code uses the default, [`SystemClock`]. Tests
//! pass a [`ManualClock`], on which a sleep returns at once after moving
//! virtual time forward, so a schedule of minutes runs in microseconds and the
//! test can assert exactly what was slept:
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
//! The clock is also the async *sleep hook*: an async run sleeps with
//! [`Clock::sleep_async`]. [`SystemClock`] uses tokio's timer inside a tokio
//! runtime (with the `tokio` feature) and a timer thread anywhere else, so
//! async runs work on any executor; a clock of your own can use your
//! runtime's timer instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A boxed sleep, as returned by [`Clock::sleep_async`]. Only retries sleep,
/// so the box is never on the success path.
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of time and of sleeps.
///
/// Implement it to run retries on a runtime other than tokio, or to put time
/// under a test's control (see [`ManualClock`]).
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;

    /// Blocks the thread for `d` (used by sync runs).
    fn sleep(&self, d: Duration);

    /// A future that completes after `d` (used by async runs).
    fn sleep_async(&self, d: Duration) -> SleepFuture;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn sleep(&self, d: Duration) {
        (**self).sleep(d)
    }
    fn sleep_async(&self, d: Duration) -> SleepFuture {
        (**self).sleep_async(d)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn sleep(&self, d: Duration) {
        (**self).sleep(d)
    }
    fn sleep_async(&self, d: Duration) -> SleepFuture {
        (**self).sleep_async(d)
    }
}

/// Real time: `Instant::now()`, `thread::sleep`, and for async sleeps tokio's
/// timer when called inside a tokio runtime, a timer thread otherwise.
///
/// Inside a tokio runtime, `now()` reads tokio's clock, so tests on tokio's
/// paused clock (`#[tokio::test(start_paused = true)]`) see deadlines move
/// with virtual time. Outside one, it is `Instant::now()`.
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
        if tokio::runtime::Handle::try_current().is_ok() {
            return Box::pin(tokio::time::sleep(d));
        }
        Box::pin(ThreadSleep::new(d))
    }
}

/// A runtime-agnostic sleep: a short-lived thread that wakes the task.
/// Dropping the sleep wakes the thread so it exits at once.
struct ThreadSleep {
    shared: Arc<Mutex<TimerState>>,
    thread: Option<std::thread::Thread>,
}

#[derive(Default)]
struct TimerState {
    done: bool,
    cancelled: bool,
    waker: Option<Waker>,
}

impl ThreadSleep {
    fn new(d: Duration) -> Self {
        let shared = Arc::new(Mutex::new(TimerState { done: d.is_zero(), ..TimerState::default() }));
        let mut thread = None;
        if !d.is_zero() {
            let remote = Arc::clone(&shared);
            let deadline = Instant::now().checked_add(d);
            let handle = std::thread::spawn(move || {
                loop {
                    let left = deadline.map(|t| t.saturating_duration_since(Instant::now()));
                    if remote.lock().unwrap_or_else(PoisonError::into_inner).cancelled {
                        return;
                    }
                    match left {
                        Some(left) if left.is_zero() => break,
                        Some(left) => std::thread::park_timeout(left),
                        None => std::thread::park(), // past Instant's range: until cancelled
                    }
                }
                let mut state = remote.lock().unwrap_or_else(PoisonError::into_inner);
                state.done = true;
                if let Some(w) = state.waker.take() {
                    w.wake();
                }
            });
            thread = Some(handle.thread().clone());
        }
        Self { shared, thread }
    }
}

impl Future for ThreadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if state.done {
            Poll::Ready(())
        } else {
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Drop for ThreadSleep {
    fn drop(&mut self) {
        if let Some(thread) = &self.thread {
            self.shared.lock().unwrap_or_else(PoisonError::into_inner).cancelled = true;
            thread.unpark();
        }
    }
}

/// Virtual time for tests: sleeps return at once and move the clock forward.
///
/// Clones share one timeline, so a clone handed to a run and the original in
/// the test see the same time. Every sleep is recorded, for assertions, and
/// [`advance`](Self::advance) moves time without a sleep (to let a breaker's
/// open period pass, say). Virtual time saturates at about a century.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    origin: Instant,
    offset_nanos: AtomicU64,
    sleeps: Mutex<Vec<Duration>>,
}

/// About a century: virtual time stops here rather than overflow an `Instant`.
const MANUAL_LIMIT_NANOS: u64 = 100 * 365 * 24 * 3600 * 1_000_000_000;

impl ManualClock {
    /// A clock at virtual time zero.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(ManualInner {
                origin: Instant::now(),
                offset_nanos: AtomicU64::new(0),
                sleeps: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Moves virtual time forward by `d`, without recording a sleep.
    pub fn advance(&self, d: Duration) {
        let add = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ = self.inner.offset_nanos.fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
            Some(cur.saturating_add(add).min(MANUAL_LIMIT_NANOS))
        });
    }

    /// Virtual time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.offset_nanos.load(Ordering::Acquire))
    }

    /// Every sleep asked of this clock (sync or async), in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.inner.sleeps.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The sum of every sleep asked of this clock.
    pub fn slept(&self) -> Duration {
        self.sleeps().iter().sum()
    }

    fn record_and_advance(&self, d: Duration) {
        self.inner.sleeps.lock().unwrap_or_else(PoisonError::into_inner).push(d);
        self.advance(d);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.origin + self.elapsed()
    }

    fn sleep(&self, d: Duration) {
        self.record_and_advance(d);
    }

    fn sleep_async(&self, d: Duration) -> SleepFuture {
        self.record_and_advance(d);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_saturates_instead_of_overflowing() {
        let c = ManualClock::new();
        c.advance(Duration::MAX);
        c.sleep(Duration::MAX);
        assert_eq!(c.elapsed(), Duration::from_nanos(MANUAL_LIMIT_NANOS));
        let _ = c.now();
    }

    #[test]
    fn clones_share_time() {
        let a = ManualClock::new();
        let b = a.clone();
        b.sleep(Duration::from_millis(5));
        assert_eq!(a.elapsed(), Duration::from_millis(5));
        assert_eq!(a.sleeps(), vec![Duration::from_millis(5)]);
    }

    #[test]
    fn a_dropped_thread_sleep_ends_its_thread() {
        let sleep = ThreadSleep::new(Duration::from_secs(3600));
        let shared = Arc::clone(&sleep.shared);
        drop(sleep);
        // The thread saw the cancellation and let go of its handle.
        let started = Instant::now();
        while Arc::strong_count(&shared) > 1 {
            assert!(started.elapsed() < Duration::from_secs(10), "timer thread still running");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn thread_sleep_completes_outside_any_runtime() {
        let mut fut = Box::pin(ThreadSleep::new(Duration::from_millis(2)));
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        while fut.as_mut().poll(&mut cx).is_pending() {
            std::thread::yield_now();
        }
    }
}
