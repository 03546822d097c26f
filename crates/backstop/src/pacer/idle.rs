//! Counting the sends of a pacer that is not pacing, without reading the
//! clock for each: [`IdleSends`].
//!
//! A pacer measures the rate it sends at (a sliding window of sends), so
//! that at the first refusal it knows the rate the server refused. While it
//! is not pacing every call goes at once, and a clock read per call would be
//! most of what the pacer costs (tens of nanoseconds, beside a bare run's
//! five). So an idle send adds one to its thread's counter instead: one of
//! [`STRIPES`] counters, each on its own cache line, so threads sending
//! together do not contend. A stripe belongs to the first thread that counts
//! on it, which adds with a plain load and store (no locked instruction: it
//! is the only writer); a thread whose stripe another owns counts on a
//! shared stripe with an atomic add. One send in a *stride* (a power of two, at most
//! [`MAX_STRIDE`]) reads the clock and moves its stripe's count into the
//! window. The stride adapts so that a busy stripe reads the clock about
//! once a millisecond of its traffic: every send at a few hundred a second,
//! every 64th at millions; a read that finds traffic slowed drops it back
//! to every send. After a burst, the sends of the stride under way (up to
//! 63) are dated to its next clock read, so a burst followed at once by a
//! slow stream reads high until that read leaves the window. Before the window is read, every stripe's
//! remainder is moved in ([`IdleSends::flush`]): at most `MAX_STRIDE - 1`
//! sends a stripe are dated to the flush rather than to their own moment
//! (of a stripe that has not read the clock for longer than the window,
//! only the share that falls in the window).

use crate::sync::{AtomicU64, Ordering};

/// Counters, one per group of threads.
pub(super) const STRIPES: usize = 8;

/// The most sends a stripe counts between clock reads.
pub(super) const MAX_STRIDE: u64 = 64;

/// Below this many nanoseconds between a stripe's clock reads, the stride
/// doubles; above four times it, it drops to 1.
const READ_EVERY: u64 = 1_000_000;

/// One stripe: its owner, sends counted, sends moved into the window, and
/// when it last read the clock. On a cache line of its own.
#[repr(align(128))]
struct Stripe {
    /// The thread that counts here (see [`this_thread`]), 0 while none.
    owner: AtomicU64,
    counted: AtomicU64,
    moved: AtomicU64,
    read_at: AtomicU64,
    /// When its remainder was last flushed.
    flushed_at: AtomicU64,
    /// The stripe's stride less one (a mask): it reads the clock when its
    /// count is a multiple of the stride.
    mask: AtomicU64,
}

/// The sends of an idle pacer not yet in its window; see the module docs.
pub(super) struct IdleSends {
    /// A stripe per group of threads, and one more (the last) shared by
    /// threads whose stripe another thread owns.
    stripes: [Stripe; STRIPES + 1],
}

impl IdleSends {
    pub(super) fn new() -> Self {
        Self {
            stripes: std::array::from_fn(|_| Stripe {
                owner: AtomicU64::new(0),
                counted: AtomicU64::new(0),
                moved: AtomicU64::new(0),
                read_at: AtomicU64::new(0),
                flushed_at: AtomicU64::new(0),
                mask: AtomicU64::new(0),
            }),
        }
    }

    /// Counts one send. `Some((stripe, count))`: it is this send's turn to
    /// read the clock and [`sample`](Self::sample).
    #[inline]
    pub(super) fn count(&self) -> Option<(usize, u64)> {
        let me = this_thread();
        let mut stripe = stripe_of(me);
        let s = &self.stripes[stripe];
        let owner = s.owner.load(Ordering::Relaxed);
        let mut s = s;
        let counted = if owner == me
            || (owner == 0 && s.owner.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed).is_ok())
        {
            // The only writer of this stripe: no locked instruction needed.
            let counted = s.counted.load(Ordering::Relaxed) + 1;
            s.counted.store(counted, Ordering::Relaxed);
            counted
        } else {
            (stripe, s) = (STRIPES, &self.stripes[STRIPES]);
            s.counted.fetch_add(1, Ordering::Relaxed) + 1
        };
        (counted & s.mask.load(Ordering::Relaxed) == 0).then_some((stripe, counted))
    }

    /// At time `now`, the sends of `stripe` to move into the window (up to
    /// its count `counted`); adapts the stride to the time since the
    /// stripe's last clock read.
    pub(super) fn sample(&self, stripe: usize, counted: u64, now: u64) -> u64 {
        let s = &self.stripes[stripe];
        let since = now.saturating_sub(s.read_at.swap(now, Ordering::Relaxed));
        let mask = s.mask.load(Ordering::Relaxed);
        let adapted = if since < READ_EVERY {
            (mask << 1 | 1).min(MAX_STRIDE - 1)
        } else if since > 4 * READ_EVERY {
            // Traffic slowed (after a burst, say): read every send again at
            // once, rather than halving over the next strides' sends.
            0
        } else {
            mask
        };
        if adapted != mask {
            s.mask.store(adapted, Ordering::Relaxed);
        }
        Self::move_up_to(s, counted)
    }

    /// Every stripe's sends not yet moved into the window, at `now`, before
    /// the window (`window` ns long) is read: `(sent, in_window)`. `sent`
    /// counts them all (for a fleet's store, which takes every send);
    /// `in_window` is what to add to the window. A stripe that last read the
    /// clock or was flushed longer ago than the window made its remaining
    /// sends some time since then: only the share that falls in the window
    /// (as if sent evenly) is in it.
    pub(super) fn flush(&self, now: u64, window: u64) -> (u64, u64) {
        self.stripes.iter().fold((0, 0), |(sent, in_window), s| {
            let remaining = Self::move_up_to(s, s.counted.load(Ordering::Relaxed));
            let last = s.read_at.load(Ordering::Relaxed).max(s.flushed_at.swap(now, Ordering::Relaxed));
            let since = now.saturating_sub(last);
            let share = if since <= window {
                remaining
            } else {
                (u128::from(remaining) * u128::from(window) / u128::from(since)) as u64
            };
            (sent + remaining, in_window + share)
        })
    }

    /// Marks `stripe`'s sends up to `counted` as moved; how many that adds
    /// (none if another thread moved them first).
    fn move_up_to(s: &Stripe, counted: u64) -> u64 {
        counted.saturating_sub(s.moved.fetch_max(counted, Ordering::Relaxed))
    }
}

/// The calling thread, as the address of one of its thread-locals: never 0,
/// and distinct for threads alive together (a thread that ends may leave
/// its address to a new one, which then owns its stripes: the old one
/// writes no more). No lazy initialisation to check.
#[inline]
fn this_thread() -> u64 {
    thread_local! {
        static ANCHOR: u8 = const { 0 };
    }
    ANCHOR.with(|a| std::ptr::from_ref(a) as usize as u64)
}

/// The stripe a thread counts on, unless another owns it.
#[inline]
fn stripe_of(thread: u64) -> usize {
    // Fibonacci hashing: the top bits of the product mix every bit of the address.
    (thread.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (u64::BITS - STRIPES.trailing_zeros())) as usize
}

#[cfg(all(test, not(backstop_loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_send_is_moved_once_and_the_stride_grows_with_the_rate() {
        let idle = IdleSends::new();
        let mut moved = 0;
        // 1000 sends a microsecond apart: the stride grows to its cap.
        for i in 0..1000u64 {
            if let Some((stripe, n)) = idle.count() {
                moved += idle.sample(stripe, n, i * 1_000);
            }
        }
        let stripe = stripe_of(this_thread());
        assert_eq!(idle.stripes[stripe].mask.load(Ordering::Relaxed), MAX_STRIDE - 1);
        moved += idle.flush(1_000_000, WINDOW).0;
        assert_eq!(moved, 1000, "each send counted once");
        assert_eq!(idle.flush(1_000_000, WINDOW), (0, 0));
        // Then sends 10 ms apart: every send reads the clock again.
        let start = 1_000_000_000;
        for i in 0..200u64 {
            if let Some((stripe, n)) = idle.count() {
                moved += idle.sample(stripe, n, start + i * 10_000_000);
            }
        }
        assert_eq!(idle.stripes[stripe].mask.load(Ordering::Relaxed), 0);
        assert_eq!(moved + idle.flush(start + 2_000_000_000, WINDOW).0, 1200);
    }

    const WINDOW: u64 = 2_000_000_000;

    #[test]
    fn sends_left_from_long_ago_count_only_for_their_share_of_the_window() {
        let idle = IdleSends::new();
        // A burst a microsecond apart leaves the stride at 64 and a few
        // sends unmoved; 20 s later the window (2 s) gets a tenth of them.
        let mut moved = 0;
        for i in 0..1000u64 {
            if let Some((stripe, n)) = idle.count() {
                moved += idle.sample(stripe, n, i * 1_000);
            }
        }
        let left = 1000 - moved;
        assert!(left > 0, "the burst leaves some unmoved");
        assert_eq!(idle.flush(20 * WINDOW / 2, WINDOW), (left, left / 10), "all sent; a tenth in the window");
    }

    #[test]
    fn sends_since_a_recent_flush_count_whole_though_the_clock_was_read_long_ago() {
        let idle = IdleSends::new();
        for i in 0..1000u64 {
            if let Some((stripe, n)) = idle.count() {
                idle.sample(stripe, n, i * 1_000);
            }
        }
        let _ = idle.flush(10 * WINDOW, WINDOW);
        // Three sends after that flush, flushed half a second later: all in the window.
        for _ in 0..3 {
            assert!(idle.count().is_none(), "the stride is still 64");
        }
        assert_eq!(idle.flush(10 * WINDOW + WINDOW / 4, WINDOW), (3, 3));
    }

    #[test]
    fn threads_count_into_their_own_stripes_and_nothing_is_lost() {
        let idle = std::sync::Arc::new(IdleSends::new());
        // More threads than stripes: some share the last one.
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let idle = idle.clone();
                std::thread::spawn(move || {
                    let mut moved = 0;
                    for i in 0..10_000u64 {
                        if let Some((stripe, n)) = idle.count() {
                            moved += idle.sample(stripe, n, i * 100);
                        }
                    }
                    moved
                })
            })
            .collect();
        let moved: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(moved + idle.flush(1_000_000, WINDOW).0, 160_000);
    }
}
