//! Virtual time for tests: [`ManualClock`].
//!
//! The model is tokio's paused clock: time stands still while anything is
//! working, and jumps when the only thing left to do is wait. Here the
//! "waiting" is explicit: a sleep ([`Clock::sleep`], [`Clock::sleep_async`])
//! is a wait, so it moves time; a timer ([`Clock::timer`], which bounds an
//! attempt in progress) is a watch, so it fires only when time reaches it.
//! Every pending sleep and timer sits in one queue ordered by its virtual
//! deadline, and a sleep moves time to the *earliest* entry, not past it: an
//! attempt that sleeps 5 s under a 2 s timeout is timed out at 2 s, as it
//! would be on the real clock. And a sleep moves time only once the clock
//! has been quiet for a whole round of polls (no sleep or timer made,
//! finished or dropped since the sleep last looked): tasks that have not
//! been polled yet get to make their own sleeps and timers first, as they
//! would before tokio's runtime found itself idle.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{Clock, SleepFuture};

/// Virtual time for tests: nothing really sleeps, and the outcome of a run is
/// the one it would have on the real clock.
///
/// - A sync [`sleep`](Clock::sleep) moves time forward by its duration and
///   returns at once.
/// - An async [`sleep_async`](Clock::sleep_async) completes at once too, but
///   first moves time to the earliest pending deadline on this clock: if a
///   timer (another task's, or the attempt's own timeout) is due before the
///   sleep ends, time stops there, the timer fires, and the sleep completes
///   when it is polled again. Two tasks sleeping 1 s and 2 s from the same
///   moment finish at 1 s and 2 s, not 3 s.
/// - A [`timer`](Clock::timer) (a per-attempt timeout, a deadline) fires when
///   virtual time reaches it and never moves time itself. An attempt waiting
///   on real I/O therefore sees no virtual time pass, and is not timed out
///   by a virtual timer while it waits, just as a fast server would not time
///   it out on the real clock. To test a hung server, move time with
///   [`advance`](Self::advance) from the test, or use tokio's paused clock.
///
/// Clones share one timeline, so a clone handed to a run and the original in
/// the test see the same time. Every sleep (not timer) is recorded, for
/// assertions. Virtual time saturates at about a century.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    origin: Instant,
    /// Virtual time since `origin`, in nanoseconds. Only moved forward, and
    /// only with `queue` locked, so a deadline is never skipped unfired.
    now_nanos: AtomicU64,
    sleeps: Mutex<Vec<Duration>>,
    queue: Mutex<Queue>,
}

/// Pending sleeps and timers by (deadline, id).
#[derive(Debug, Default)]
struct Queue {
    next_id: u64,
    pending: BTreeMap<(u64, u64), Option<Waker>>,
    /// Bumped by every change but a waker's renewal: an entry made or gone,
    /// time moved. A sleep that sees it unchanged for a round may move time.
    version: u64,
}

/// About a century: virtual time stops here rather than overflow an `Instant`.
const MANUAL_LIMIT_NANOS: u64 = 100 * 365 * 24 * 3600 * 1_000_000_000;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Inner {
    fn now(&self) -> u64 {
        self.now_nanos.load(Ordering::Acquire)
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves time to `target` (if later) and wakes every entry due by then.
    fn advance_to(&self, target: u64) {
        let due = {
            let mut queue = self.queue();
            let now = self.now().max(target.min(MANUAL_LIMIT_NANOS));
            self.now_nanos.store(now, Ordering::Release);
            queue.version += 1;
            let later = queue.pending.split_off(&(now.saturating_add(1), 0));
            std::mem::replace(&mut queue.pending, later)
        };
        due.into_values().flatten().for_each(Waker::wake);
    }

    /// Enters a deadline `after` from now into the queue.
    fn register(&self, after: Duration) -> (u64, u64) {
        let mut queue = self.queue();
        let deadline = self.now().saturating_add(nanos(after)).min(MANUAL_LIMIT_NANOS);
        let id = queue.next_id;
        queue.next_id += 1;
        queue.version += 1;
        queue.pending.insert((deadline, id), None);
        (deadline, id)
    }
}

impl ManualClock {
    /// A clock at virtual time zero.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                origin: Instant::now(),
                now_nanos: AtomicU64::new(0),
                sleeps: Mutex::new(Vec::new()),
                queue: Mutex::new(Queue::default()),
            }),
        }
    }

    /// Moves virtual time forward by `d`, without recording a sleep; timers
    /// and sleeps due by then fire.
    pub fn advance(&self, d: Duration) {
        self.inner.advance_to(self.inner.now().saturating_add(nanos(d)));
    }

    /// Virtual time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.now())
    }

    /// Every sleep asked of this clock (sync or async), in order. Timers
    /// (per-attempt timeouts, deadlines) are not sleeps and are not listed.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.inner.sleeps.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The sum of every sleep asked of this clock.
    pub fn slept(&self) -> Duration {
        self.sleeps().iter().sum()
    }

    fn record(&self, d: Duration) {
        self.inner.sleeps.lock().unwrap_or_else(PoisonError::into_inner).push(d);
    }

    fn entry(&self, after: Duration, kind: Kind) -> SleepFuture {
        let (deadline, id) = self.inner.register(after);
        Box::pin(VirtualWait { inner: Arc::clone(&self.inner), deadline, id, kind, seen: None })
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
        self.record(d);
        self.advance(d);
    }

    fn sleep_async(&self, d: Duration) -> SleepFuture {
        self.record(d);
        self.entry(d, Kind::Sleep)
    }

    fn timer(&self, d: Duration) -> SleepFuture {
        self.entry(d, Kind::Timer)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Waiting: may move time, to the earliest deadline on the clock.
    Sleep,
    /// Watching: fires when time reaches it.
    Timer,
}

/// A pending virtual sleep or timer; leaves the queue when done or dropped.
struct VirtualWait {
    inner: Arc<Inner>,
    deadline: u64,
    id: u64,
    kind: Kind,
    /// The queue's version when this sleep last looked.
    seen: Option<u64>,
}

impl VirtualWait {
    /// Leaves the queue: done. Its owner is about to act on it, which is
    /// news to a sleep waiting for quiet (even if an advance already took
    /// the entry out).
    fn finish(&self) -> Poll<()> {
        let mut queue = self.inner.queue();
        queue.pending.remove(&(self.deadline, self.id));
        queue.version += 1;
        Poll::Ready(())
    }
}

impl Future for VirtualWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let key = (self.deadline, self.id);
        if self.inner.now() >= self.deadline {
            return self.finish();
        }
        if self.kind == Kind::Sleep {
            let version = self.inner.queue().version;
            if self.seen == Some(version) {
                // Quiet for a round: nothing to do until something is due.
                // Jump to the earliest deadline, which may be another
                // entry's rather than ours.
                let earliest = self.inner.queue().pending.keys().next().map_or(self.deadline, |&(d, _)| d);
                self.inner.advance_to(earliest.min(self.deadline));
                if self.inner.now() >= self.deadline {
                    return self.finish();
                }
            }
            // Look again after the others have had their turn.
            let version = self.inner.queue().version;
            self.seen = Some(version);
            cx.waker().wake_by_ref();
        }
        let mut queue = self.inner.queue();
        if self.inner.now() >= self.deadline {
            drop(queue);
            return self.finish();
        }
        // Re-enter (an earlier advance may have taken the entry out) with
        // the current waker; not a change others need to see.
        queue.pending.insert(key, Some(cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for VirtualWait {
    fn drop(&mut self) {
        let mut queue = self.inner.queue();
        if queue.pending.remove(&(self.deadline, self.id)).is_some() {
            queue.version += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_once(f: &mut SleepFuture) -> Poll<()> {
        f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn manual_clock_saturates_instead_of_overflowing() {
        let c = ManualClock::new();
        c.advance(Duration::MAX);
        c.sleep(Duration::MAX);
        assert_eq!(c.elapsed(), Duration::from_nanos(MANUAL_LIMIT_NANOS));
        let _ = c.now();
        let mut late = c.sleep_async(Duration::MAX);
        assert!(poll_once(&mut late).is_ready());
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
    fn a_timer_waits_for_time_and_does_not_move_it() {
        let c = ManualClock::new();
        let mut timer = c.timer(Duration::from_secs(2));
        assert!(poll_once(&mut timer).is_pending());
        assert_eq!(c.elapsed(), Duration::ZERO);
        c.advance(Duration::from_secs(1));
        assert!(poll_once(&mut timer).is_pending());
        c.advance(Duration::from_secs(1));
        assert!(poll_once(&mut timer).is_ready());
        assert!(c.sleeps().is_empty());
    }

    #[test]
    fn a_sleep_first_lets_the_others_look_then_stops_at_an_earlier_timer() {
        let c = ManualClock::new();
        let mut timer = c.timer(Duration::from_secs(2));
        let mut sleep = c.sleep_async(Duration::from_secs(5));
        assert!(poll_once(&mut sleep).is_pending());
        assert_eq!(c.elapsed(), Duration::ZERO, "the first look moves nothing");
        assert!(poll_once(&mut sleep).is_pending());
        assert_eq!(c.elapsed(), Duration::from_secs(2), "quiet: up to the timer, not past it");
        assert!(poll_once(&mut timer).is_ready());
        assert!(poll_once(&mut sleep).is_pending(), "the timer's end is news: look again");
        assert!(poll_once(&mut sleep).is_ready());
        assert_eq!(c.elapsed(), Duration::from_secs(5));
    }

    #[test]
    fn concurrent_sleeps_overlap_in_virtual_time() {
        let c = ManualClock::new();
        let mut a = c.sleep_async(Duration::from_secs(1));
        let mut b = c.sleep_async(Duration::from_secs(2));
        // Polled in turns, b first: b stops at a's deadline first.
        assert!(poll_once(&mut b).is_pending());
        assert!(poll_once(&mut a).is_pending());
        assert!(poll_once(&mut b).is_pending());
        assert_eq!(c.elapsed(), Duration::from_secs(1));
        assert!(poll_once(&mut a).is_ready());
        while poll_once(&mut b).is_pending() {}
        assert_eq!(c.elapsed(), Duration::from_secs(2));
        assert_eq!(c.slept(), Duration::from_secs(3));
    }

    #[test]
    fn a_dropped_entry_leaves_the_queue() {
        let c = ManualClock::new();
        drop(c.timer(Duration::from_secs(1)));
        let mut sleep = c.sleep_async(Duration::from_secs(3));
        assert!(poll_once(&mut sleep).is_pending());
        assert!(poll_once(&mut sleep).is_ready());
        assert_eq!(c.elapsed(), Duration::from_secs(3));
        assert!(c.inner.queue().pending.is_empty());
    }
}
