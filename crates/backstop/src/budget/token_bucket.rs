//! The token bucket algorithm (the AWS SDKs' retry quota): a bucket of
//! tokens that retries draw from and successes put back, kept in thousandths
//! of a token in one atomic word.

use crate::sync::{AtomicU64, Mutex, Ordering};

/// Tokens are kept in thousandths, so refill rates can be fractional.
pub(super) const MILLI: u64 = 1000;

pub(super) struct TokenBucket {
    /// Tokens available, in thousandths.
    pub(super) milli: AtomicU64,
    pub(super) capacity: u64,
    pub(super) retry_cost: u32,
    pub(super) timeout_cost: u32,
    pub(super) success_refund: u32,
    /// Tokens per second added back with time (0: none), and when last added.
    pub(super) refill_per_sec: f64,
    pub(super) last_refill: Mutex<u64>,
}

impl TokenBucket {
    /// Takes `milli` if there is that much.
    pub(super) fn take(&self, milli: u64) -> bool {
        self.milli.fetch_update(Ordering::AcqRel, Ordering::Acquire, |have| have.checked_sub(milli)).is_ok()
    }

    /// Adds `milli`, up to capacity; writes nothing when already full.
    #[inline]
    pub(super) fn put(&self, milli: u64) {
        if self.milli.load(Ordering::Relaxed) >= self.capacity {
            return;
        }
        let _ = self.milli.fetch_update(Ordering::AcqRel, Ordering::Acquire, |have| {
            (have < self.capacity).then(|| have.saturating_add(milli).min(self.capacity))
        });
    }
}
