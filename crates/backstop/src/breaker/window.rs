//! The recent calls a rate rule looks at: the last N calls, or the last T.
//!
//! Both are lock-free to record into. The count window keeps one byte per
//! call slot and swaps it, so its counters move by the exact value replaced;
//! the time window is a [`SlidingCounts`], which takes a lock only to recycle
//! a bucket whose time has passed.

use std::time::Duration;

use super::config::Window;
use crate::sliding::SlidingCounts;
use crate::sync::{AtomicU8, AtomicU32, AtomicU64, Ordering};

const RECORDED: u8 = 1;
const FAILED: u8 = 2;
const SLOW: u8 = 4;

/// The outcome of one call, as a window stores it.
pub(crate) fn outcome(failed: bool, slow: bool) -> u8 {
    RECORDED | if failed { FAILED } else { 0 } | if slow { SLOW } else { 0 }
}

/// What a window holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

impl Tally {
    /// The fraction of `part` in the calls (0 when empty).
    pub(crate) fn rate(&self, part: u32) -> f64 {
        if self.calls == 0 { 0.0 } else { f64::from(part) / f64::from(self.calls) }
    }
}

pub(crate) enum Recent {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Recent {
    pub(crate) fn new(window: Window) -> Self {
        match window {
            Window::Count(n) => Recent::Count(CountWindow::new(n)),
            Window::Time { duration, buckets } => Recent::Time(TimeWindow::new(duration, buckets)),
        }
    }

    /// Whether recording needs the time.
    pub(crate) fn needs_clock(&self) -> bool {
        matches!(self, Recent::Time(_))
    }

    /// Records one outcome (made by [`outcome`]) at `now` (nanoseconds on the
    /// breaker's clock; ignored by count windows) and returns the new tally.
    pub(crate) fn record(&self, outcome: u8, now: u64) -> Tally {
        match self {
            Recent::Count(w) => w.record(outcome),
            Recent::Time(w) => w.record(outcome, now),
        }
    }

    /// Forgets every call (when the breaker closes).
    pub(crate) fn clear(&self) {
        match self {
            Recent::Count(w) => w.clear(),
            Recent::Time(w) => w.clear(),
        }
    }
}

pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    next: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    slow: AtomicU32,
}

fn adjust(counter: &AtomicU32, old: bool, new: bool) {
    match (old, new) {
        (false, true) => {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        (true, false) => {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

impl CountWindow {
    fn new(n: u32) -> Self {
        Self {
            slots: (0..n).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicU64::new(0),
            calls: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            slow: AtomicU32::new(0),
        }
    }

    fn record(&self, outcome: u8) -> Tally {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len() as u64;
        let old = self.slots[i as usize].swap(outcome, Ordering::AcqRel);
        adjust(&self.calls, old & RECORDED != 0, true);
        adjust(&self.failures, old & FAILED != 0, outcome & FAILED != 0);
        adjust(&self.slow, old & SLOW != 0, outcome & SLOW != 0);
        self.tally()
    }

    fn tally(&self) -> Tally {
        let calls = self.calls.load(Ordering::Relaxed);
        // Concurrent records may be half-applied: never report more failures
        // than calls.
        Tally {
            calls,
            failures: self.failures.load(Ordering::Relaxed).min(calls),
            slow: self.slow.load(Ordering::Relaxed).min(calls),
        }
    }

    fn clear(&self) {
        for slot in self.slots.iter() {
            slot.store(0, Ordering::Relaxed);
        }
        for c in [&self.calls, &self.failures, &self.slow] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// A time window: calls, failures and slow calls per slice of time.
pub(crate) struct TimeWindow(SlidingCounts<3>);

impl TimeWindow {
    fn new(duration: Duration, buckets: u32) -> Self {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Self(SlidingCounts::new(nanos, buckets))
    }

    fn record(&self, outcome: u8, now: u64) -> Tally {
        let bit = |flag: u8| u32::from(outcome & flag != 0);
        self.0.add(now, [1, bit(FAILED), bit(SLOW)]);
        let [calls, failures, slow] = self.0.totals(now);
        Tally { calls, failures: failures.min(calls), slow: slow.min(calls) }
    }

    fn clear(&self) {
        self.0.clear();
    }
}

#[cfg(all(test, not(backstop_loom)))]
mod tests {
    use super::*;

    #[test]
    fn count_window_forgets_the_oldest_call() {
        let w = Recent::new(Window::Count(3));
        assert_eq!(w.record(outcome(true, false), 0), Tally { calls: 1, failures: 1, slow: 0 });
        w.record(outcome(true, true), 0);
        w.record(outcome(false, false), 0);
        // The fourth call replaces the first failure.
        assert_eq!(w.record(outcome(false, false), 0), Tally { calls: 3, failures: 1, slow: 1 });
        w.clear();
        assert_eq!(w.record(outcome(false, false), 0).calls, 1);
    }

    #[test]
    fn time_window_expires_bucket_by_bucket() {
        let sec = 1_000_000_000;
        let w = Recent::new(Window::Time { duration: Duration::from_secs(10), buckets: 10 });
        w.record(outcome(true, false), 0);
        w.record(outcome(true, false), 5 * sec);
        assert_eq!(w.record(outcome(false, false), 9 * sec).failures, 2);
        // At 10.5 s the bucket of 0 s has left the window.
        let t = w.record(outcome(false, false), 10 * sec + sec / 2);
        assert_eq!((t.calls, t.failures), (3, 1));
        // Much later, everything old has expired.
        assert_eq!(w.record(outcome(false, false), 100 * sec).calls, 1);
    }

    #[test]
    fn rate_of_an_empty_tally_is_zero() {
        assert_eq!(Tally::default().rate(0), 0.0);
    }
}
