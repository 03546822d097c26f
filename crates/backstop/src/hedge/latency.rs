//! The recent latencies a hedge takes its delay from: [`Latencies`], a
//! small streaming histogram that forgets.
//!
//! Two halves of the window, each a histogram of one period (the window's
//! half) with its call and hedge counts; the period a sample falls in picks
//! the half, and a half found holding an older period is cleared first. A
//! read sums the halves holding this period and the one before: at any
//! moment one to two periods of samples, so a shift in latency is followed
//! within two periods (tower's `hedge` rotates two `hdrhistogram`s the same
//! way). Buckets are log-linear, 8 per power of two above 16 µs (each within
//! 12.5 % of its samples), from 1 µs to 2^37 µs (38 hours; a longer latency
//! counts as that): 280 counters a half, 2.2 KiB in all. Recording is two relaxed increments on the half's
//! counters; only the rotation, once a period, writes more.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two (a bucket's width is 1/8 of its start).
const SUB: u32 = 8;
/// Latencies under this many microseconds have a bucket each.
const LINEAR: u64 = 16;
/// The highest power of two with buckets: 2^36 µs, about 19 hours.
const MAX_EXP: u32 = 36;
/// Buckets in a half.
pub(crate) const BUCKETS: usize = LINEAR as usize + ((MAX_EXP - 3) * SUB) as usize;

/// A half's period while one caller clears it for a new one.
const CLEARING: u64 = u64::MAX - 1;

/// One period's samples.
struct Half {
    /// The period these counts belong to (`u64::MAX`: none yet).
    period: AtomicU64,
    calls: AtomicU32,
    hedges: AtomicU32,
    buckets: [AtomicU32; BUCKETS],
}

impl Half {
    fn new() -> Self {
        Half {
            period: AtomicU64::new(u64::MAX),
            calls: AtomicU32::new(0),
            hedges: AtomicU32::new(0),
            buckets: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// This half, made to hold `period`: cleared if it held an older one.
    /// The one caller that moves it marks it [`CLEARING`] first, clears it,
    /// then sets the period; a caller that finds it clearing waits the few
    /// hundred nanoseconds that takes (so no count made for the new period is
    /// wiped: the hedges' share is exact under concurrent calls).
    fn at(&self, period: u64) -> &Self {
        let mut spins = 0u32;
        loop {
            let held = self.period.load(Ordering::Acquire);
            if held == CLEARING {
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now(); // the clearing thread was preempted
                }
                continue;
            }
            let older = held != period && held.wrapping_add(1) <= period.wrapping_add(1); // u64::MAX: never used
            if !older {
                return self;
            }
            if self.period.compare_exchange(held, CLEARING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                self.calls.store(0, Ordering::Relaxed);
                self.hedges.store(0, Ordering::Relaxed);
                for b in &self.buckets {
                    b.store(0, Ordering::Relaxed);
                }
                self.period.store(period, Ordering::Release);
                return self;
            }
        }
    }

    fn holds(&self, period: u64) -> bool {
        self.period.load(Ordering::Acquire) == period
    }
}

/// The bucket of a latency of `micros` microseconds.
pub(crate) fn bucket(micros: u64) -> usize {
    if micros < LINEAR {
        return micros as usize;
    }
    let exp = 63 - micros.leading_zeros(); // ≥ 4
    if exp > MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = ((micros >> (exp - 3)) & u64::from(SUB - 1)) as usize;
    LINEAR as usize + ((exp - 4) * SUB) as usize + sub
}

/// The largest latency, in microseconds, bucket `b` holds.
pub(crate) fn upper_bound(b: usize) -> u64 {
    if b < LINEAR as usize {
        return b as u64;
    }
    let i = (b - LINEAR as usize) as u32;
    let (exp, sub) = (i / SUB + 4, u64::from(i % SUB));
    let width = 1u64 << (exp - 3);
    (1u64 << exp) + (sub + 1) * width - 1
}

/// Recent latencies, calls and hedges of one hedge; see the module docs.
pub(crate) struct Latencies {
    halves: [Half; 2],
    period_nanos: u64,
}

/// What a read of the window found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Window {
    /// Calls in the window that could be hedged.
    pub(crate) calls: u32,
    /// Hedges sent in the window.
    pub(crate) hedges: u32,
}

impl Latencies {
    /// A histogram forgetting samples older than `window` (two periods of half of it).
    pub(crate) fn new(window: Duration) -> Self {
        let period_nanos = u64::try_from(window.as_nanos() / 2).unwrap_or(u64::MAX).max(1);
        Latencies { halves: [Half::new(), Half::new()], period_nanos }
    }

    fn period(&self, now_nanos: u64) -> u64 {
        now_nanos / self.period_nanos
    }

    fn half(&self, period: u64) -> &Half {
        self.halves[(period % 2) as usize].at(period)
    }

    /// A request that completed in `latency`, at `now_nanos` (since the
    /// hedge's origin).
    pub(crate) fn record(&self, now_nanos: u64, latency: Duration) {
        let half = self.half(self.period(now_nanos));
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        half.buckets[bucket(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// A call that may be hedged (it did not finish at once), at `now_nanos`.
    pub(crate) fn record_call(&self, now_nanos: u64) {
        self.half(self.period(now_nanos)).calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one hedge at `now_nanos` if the window's hedges, this one
    /// included, stay within `allowed(calls)`: counted first, then checked,
    /// and given back if over (so concurrent callers never overshoot; near
    /// the limit two may both give back).
    pub(crate) fn try_hedge(&self, now_nanos: u64, allowed: impl FnOnce(u32) -> f64) -> bool {
        let half = self.half(self.period(now_nanos));
        half.hedges.fetch_add(1, Ordering::AcqRel);
        let w = self.window(now_nanos);
        if f64::from(w.hedges) <= allowed(w.calls) {
            return true;
        }
        half.hedges.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// Gives back a hedge taken at `now_nanos` and not sent.
    pub(crate) fn give_back_hedge(&self, now_nanos: u64) {
        let half = self.half(self.period(now_nanos));
        let _ = half.hedges.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// The halves holding this period and the one before.
    fn live(&self, now_nanos: u64) -> impl Iterator<Item = &Half> {
        let period = self.period(now_nanos);
        self.halves.iter().filter(move |h| h.holds(period) || (period > 0 && h.holds(period - 1)))
    }

    /// Calls and hedges in the window.
    pub(crate) fn window(&self, now_nanos: u64) -> Window {
        self.live(now_nanos).fold(Window { calls: 0, hedges: 0 }, |w, h| Window {
            calls: w.calls.saturating_add(h.calls.load(Ordering::Relaxed)),
            hedges: w.hedges.saturating_add(h.hedges.load(Ordering::Relaxed)),
        })
    }

    /// The `quantile` (0 ..= 1) of the window's latencies, if it holds at
    /// least `min_samples` (the bucket's upper bound: never early).
    pub(crate) fn quantile(&self, now_nanos: u64, quantile: f64, min_samples: u32) -> Option<Duration> {
        let mut counts = [0u32; BUCKETS];
        let mut total = 0u64;
        for half in self.live(now_nanos) {
            for (c, b) in counts.iter_mut().zip(&half.buckets) {
                let n = b.load(Ordering::Relaxed);
                *c = c.saturating_add(n);
                total += u64::from(n);
            }
        }
        if total < u64::from(min_samples.max(1)) {
            return None;
        }
        // The smallest latency with at least `quantile` of the samples at or below it.
        let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (b, &c) in counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(Duration::from_micros(upper_bound(b)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;
    const S: u64 = 1_000_000_000;

    #[test]
    fn buckets_cover_their_range_in_order_within_an_eighth() {
        let mut last = 0;
        for micros in [0, 1, 15, 16, 17, 31, 32, 100, 1_000, 5_000, 123_456, 1 << 30, 1 << 36] {
            let b = bucket(micros);
            assert!(b >= last, "{micros}");
            last = b;
            assert!(upper_bound(b) >= micros, "{micros} above its bucket's bound {}", upper_bound(b));
            if micros >= 16 {
                assert!(upper_bound(b) as f64 <= micros as f64 * 1.125 + 1.0, "{micros}: {}", upper_bound(b));
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        for b in 1..BUCKETS {
            assert_eq!(bucket(upper_bound(b)), b);
            assert_eq!(bucket(upper_bound(b - 1) + 1), b);
        }
    }

    #[test]
    fn the_quantile_of_fast_calls_with_a_slow_tail() {
        let l = Latencies::new(Duration::from_secs(2));
        for i in 0..1000u64 {
            l.record(i * 1_000, if i % 100 == 0 { MS(1000) } else { MS(5) });
        }
        let p95 = l.quantile(S / 2, 0.95, 20).unwrap();
        assert!(p95 >= MS(5) && p95 <= MS(6), "{p95:?}");
        let p999 = l.quantile(S / 2, 0.999, 20).unwrap();
        assert!(p999 >= MS(1000) && p999 <= MS(1125), "{p999:?}");
        assert_eq!(l.window(S / 2), Window { calls: 0, hedges: 0 }, "samples are not calls");
        assert_eq!(l.quantile(S / 2, 0.95, 1001), None, "too few samples");
    }

    #[test]
    fn a_shift_in_latency_is_followed_within_two_periods() {
        let l = Latencies::new(Duration::from_secs(2)); // periods of 1 s
        for i in 0..100 {
            l.record(i * S / 100, MS(5));
        }
        assert!(l.quantile(S, 0.5, 10).unwrap() <= MS(6));
        // From t = 1 s, every call takes 50 ms.
        for i in 0..100 {
            l.record(S + i * S / 100, MS(50));
        }
        let mid = l.quantile(2 * S - 1, 0.95, 10).unwrap();
        assert!(mid >= MS(50), "the new latencies are the tail already: {mid:?}");
        for i in 0..100 {
            l.record(2 * S + i * S / 100, MS(50));
        }
        let p50 = l.quantile(3 * S - 1, 0.5, 10).unwrap();
        assert!(p50 >= MS(50), "the old period is forgotten: {p50:?}");
        l.record_call(3 * S - 2);
        assert_eq!(l.window(3 * S - 1).calls, 1);
        assert_eq!(l.window(10 * S).calls, 0, "a quiet window holds nothing");
        assert_eq!(l.quantile(10 * S, 0.5, 1), None);
    }

    #[test]
    fn hedges_are_counted_in_their_period_and_never_past_the_allowance() {
        let l = Latencies::new(Duration::from_secs(2));
        assert!(l.try_hedge(0, |_| 2.0));
        assert!(l.try_hedge(S, |_| 2.0));
        assert!(!l.try_hedge(S, |_| 2.0), "a third is over");
        assert_eq!(l.window(S).hedges, 2);
        assert_eq!(l.window(2 * S).hedges, 1);
        l.give_back_hedge(2 * S);
        l.give_back_hedge(2 * S);
        assert_eq!(l.window(2 * S).hedges, 1, "never below zero: the other half keeps its own");
    }
}
