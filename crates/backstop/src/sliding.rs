//! Counters over a sliding span of time, kept in buckets that expire one at a
//! time: the breaker's time window, the ratio budget and the adaptive
//! throttle all count "how many X in the last T" with it.
//!
//! Adding is lock-free; a bucket whose slice of time has passed is recycled
//! under a lock, once per bucket per slice.

use crate::sync::{AtomicU32, AtomicU64, Mutex, Ordering, lock};

struct Bucket<const N: usize> {
    /// Which slice of time (`now / bucket_nanos`) the counts belong to;
    /// `u64::MAX` for none.
    epoch: AtomicU64,
    counts: [AtomicU32; N],
}

pub(crate) struct SlidingCounts<const N: usize> {
    buckets: Box<[Bucket<N>]>,
    bucket_nanos: u64,
    recycle: Mutex<()>,
}

impl<const N: usize> SlidingCounts<N> {
    /// `span_nanos` of history in `buckets` slices (both at least 1).
    pub(crate) fn new(span_nanos: u64, buckets: u32) -> Self {
        let buckets = buckets.max(1);
        Self {
            buckets: (0..buckets)
                .map(|_| Bucket { epoch: AtomicU64::new(u64::MAX), counts: std::array::from_fn(|_| AtomicU32::new(0)) })
                .collect(),
            bucket_nanos: (span_nanos / u64::from(buckets)).max(1),
            recycle: Mutex::new(()),
        }
    }

    /// Adds `by[i]` to counter `i` at time `now` (nanoseconds on some clock).
    pub(crate) fn add(&self, now: u64, by: [u32; N]) {
        let epoch = now / self.bucket_nanos;
        let bucket = &self.buckets[(epoch % self.buckets.len() as u64) as usize];
        if bucket.epoch.load(Ordering::Acquire) != epoch {
            let _guard = lock(&self.recycle);
            let held = bucket.epoch.load(Ordering::Acquire);
            if held != u64::MAX && held > epoch {
                // A late count (its clock read a whole span ago): its slice
                // has left the window, and the bucket holds a newer one.
                return;
            }
            if held != epoch {
                for c in &bucket.counts {
                    c.store(0, Ordering::Relaxed);
                }
                bucket.epoch.store(epoch, Ordering::Release);
            }
        }
        for (c, n) in bucket.counts.iter().zip(by) {
            if n != 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Takes `by[i]` back from counter `i` of the slice that held time `at`,
    /// if that slice has not been recycled since (else it is already gone).
    pub(crate) fn sub(&self, at: u64, by: [u32; N]) {
        let epoch = at / self.bucket_nanos;
        let bucket = &self.buckets[(epoch % self.buckets.len() as u64) as usize];
        // Under the recycle lock, so the slice cannot change hands between
        // the check and the subtraction.
        let _guard = lock(&self.recycle);
        if bucket.epoch.load(Ordering::Acquire) == epoch {
            for (c, n) in bucket.counts.iter().zip(by) {
                let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_sub(n)));
            }
        }
    }

    /// The sums of the buckets whose slice lies within the span ending at `now`.
    pub(crate) fn totals(&self, now: u64) -> [u32; N] {
        let epoch = now / self.bucket_nanos;
        let oldest = epoch.saturating_sub(self.buckets.len() as u64 - 1);
        let mut sums = [0u32; N];
        for b in self.buckets.iter() {
            let e = b.epoch.load(Ordering::Acquire);
            if e != u64::MAX && e >= oldest && e <= epoch {
                for (sum, c) in sums.iter_mut().zip(&b.counts) {
                    *sum = sum.saturating_add(c.load(Ordering::Relaxed));
                }
            }
        }
        sums
    }

    /// Nanoseconds from the start of the oldest slice within the span ending
    /// at `now` to `now`: the time that [`totals`](Self::totals) covers
    /// (between the span less one slice, and the span).
    pub(crate) fn covered(&self, now: u64) -> u64 {
        let epoch = now / self.bucket_nanos;
        let oldest = epoch.saturating_sub(self.buckets.len() as u64 - 1);
        now - oldest * self.bucket_nanos
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        let _guard = lock(&self.recycle);
        for b in self.buckets.iter() {
            b.epoch.store(u64::MAX, Ordering::Release);
        }
    }
}

#[cfg(all(test, not(backstop_loom)))]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn counts_expire_bucket_by_bucket() {
        let w = SlidingCounts::<2>::new(10 * SEC, 10);
        w.add(0, [1, 1]);
        w.add(5 * SEC, [1, 0]);
        assert_eq!(w.totals(9 * SEC), [2, 1]);
        // At 10.5 s the bucket of 0 s has left the span.
        assert_eq!(w.totals(10 * SEC + SEC / 2), [1, 0]);
        assert_eq!(w.totals(100 * SEC), [0, 0]);
        w.add(100 * SEC, [0, 3]);
        assert_eq!(w.totals(100 * SEC), [0, 3]);
        // Taking back from a slice that has been recycled does nothing.
        w.sub(0, [1, 1]);
        assert_eq!(w.totals(100 * SEC), [0, 3]);
        w.sub(100 * SEC, [0, 1]);
        assert_eq!(w.totals(100 * SEC), [0, 2]);
        w.clear();
        assert_eq!(w.totals(100 * SEC), [0, 0]);
    }

    #[test]
    fn a_count_leaves_the_totals_exactly_when_its_slice_leaves_the_span() {
        let w = SlidingCounts::<1>::new(10 * SEC, 10);
        w.add(SEC / 2, [1]);
        assert_eq!(w.totals(10 * SEC - 1), [1]);
        assert_eq!(w.totals(10 * SEC), [0]);
    }

    #[test]
    fn the_totals_cover_the_span_less_part_of_a_slice() {
        let w = SlidingCounts::<1>::new(10 * SEC, 10);
        assert_eq!(w.covered(100 * SEC), 9 * SEC);
        assert_eq!(w.covered(100 * SEC + SEC / 4), 9 * SEC + SEC / 4);
        assert_eq!(w.covered(SEC / 2), SEC / 2, "not before time's origin");
    }

    #[test]
    fn the_window_slides_one_slice_at_a_time() {
        let w = SlidingCounts::<1>::new(10 * SEC, 10);
        for t in 0..30 {
            w.add(t * SEC, [1]);
            assert_eq!(w.totals(t * SEC), [(t + 1).min(10) as u32], "at {t} s");
        }
    }

    #[test]
    fn counts_within_one_slice_add_up() {
        let w = SlidingCounts::<2>::new(10 * SEC, 10);
        w.add(SEC, [1, 0]);
        w.add(SEC + 1, [2, 5]);
        w.add(2 * SEC - 1, [0, 1]);
        assert_eq!(w.totals(2 * SEC - 1), [3, 6]);
    }

    #[test]
    fn a_reused_bucket_starts_its_new_slice_from_zero() {
        let w = SlidingCounts::<1>::new(10 * SEC, 10);
        w.add(0, [5]);
        w.add(10 * SEC, [1]); // same bucket, a slice one span later
        assert_eq!(w.totals(10 * SEC), [1]);
        assert_eq!(w.totals(0), [0], "the old slice's counts are gone, not hidden");
    }

    #[test]
    fn subtracting_from_a_forgotten_slice_does_nothing() {
        let w = SlidingCounts::<1>::new(10 * SEC, 10);
        w.add(0, [1]);
        w.add(10 * SEC, [1]);
        w.sub(0, [1]);
        assert_eq!(w.totals(10 * SEC), [1]);
        w.sub(20 * SEC, [1]); // a slice never counted at all
        assert_eq!(w.totals(10 * SEC), [1]);
    }

    #[test]
    fn subtracting_takes_from_the_right_slice_and_never_below_zero() {
        let w = SlidingCounts::<2>::new(10 * SEC, 10);
        w.add(SEC, [2, 2]);
        w.add(3 * SEC, [2, 2]);
        w.sub(SEC + SEC / 2, [1, 5]);
        assert_eq!(w.totals(3 * SEC), [3, 2]);
        assert_eq!(w.totals(11 * SEC), [2, 2], "the second slice kept its own counts");
    }

    #[test]
    fn time_zero_is_an_ordinary_slice() {
        let w = SlidingCounts::<1>::new(10 * SEC, 10);
        assert_eq!(w.totals(0), [0]);
        w.add(0, [1]);
        assert_eq!(w.totals(0), [1]);
        w.sub(0, [1]);
        assert_eq!(w.totals(0), [0]);
    }

    #[test]
    fn counts_from_a_later_slice_than_now_are_not_in_the_totals() {
        let w = SlidingCounts::<1>::new(10 * SEC, 10);
        w.add(5 * SEC, [1]);
        assert_eq!(w.totals(4 * SEC), [0]);
    }

    #[test]
    fn large_times_work_like_small_ones() {
        let w = SlidingCounts::<1>::new(10 * SEC, 10);
        let late = u64::MAX - 5 * SEC;
        w.add(late, [1]);
        w.add(u64::MAX, [1]);
        assert_eq!(w.totals(u64::MAX), [2]);
        w.sub(late, [1]);
        assert_eq!(w.totals(u64::MAX), [1]);
        assert_eq!(w.totals(late), [0], "the count at the end of time is later than `late`");
    }

    #[test]
    fn zero_buckets_mean_one_and_a_span_shorter_than_the_buckets_gives_1ns_slices() {
        let one = SlidingCounts::<1>::new(10 * SEC, 0);
        one.add(SEC, [1]);
        assert_eq!(one.totals(9 * SEC), [1]);
        assert_eq!(one.totals(10 * SEC), [0]);
        let tiny = SlidingCounts::<1>::new(3, 10);
        tiny.add(0, [1]);
        assert_eq!(tiny.totals(9), [1]);
        assert_eq!(tiny.totals(10), [0]);
    }

    #[test]
    fn clear_then_add_counts_from_zero() {
        let w = SlidingCounts::<1>::new(10 * SEC, 10);
        w.add(SEC, [4]);
        w.clear();
        w.add(SEC, [1]);
        assert_eq!(w.totals(SEC), [1]);
    }

    #[test]
    fn a_late_add_does_not_wipe_a_newer_slice() {
        let w = SlidingCounts::<1>::new(10 * SEC, 10);
        w.add(10 * SEC, [3]);
        w.add(0, [1]); // read the clock at 0, ran at 10 s
        assert_eq!(w.totals(10 * SEC), [3]);
    }
}
