//! The token bucket algorithm (the AWS SDKs' retry quota): a bucket of
//! tokens that retries draw from and successes put back, kept in thousandths
//! of a token in one atomic word.

use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering};

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
    /// A shared budget's lease (refilled by its store, not by time); false
    /// for a local budget, and for a shared one whose store is away.
    pub(super) shared: AtomicBool,
    /// A shared budget's success refills, in thousandths, owed to the
    /// fleet's bucket: they go there (capped by its capacity), not into the
    /// lease, so a fleet never holds more than one bucket of tokens.
    pub(super) owed: AtomicU64,
    /// A shared budget's tokens spent from its lease, and refunded to it,
    /// in thousandths, not yet reported to the fleet's bucket (which counts
    /// its leases out).
    pub(super) spent: AtomicU64,
    pub(super) refunded: AtomicU64,
}

impl TokenBucket {
    /// Takes `milli` if there is that much.
    pub(super) fn take(&self, milli: u64) -> bool {
        self.milli.fetch_update(Ordering::AcqRel, Ordering::Acquire, |have| have.checked_sub(milli)).is_ok()
    }

    /// A success refills: the local bucket, or, shared, what is owed to
    /// the fleet (up to a capacity's worth).
    #[inline]
    pub(super) fn refill_by_success(&self, milli: u64) {
        if !self.shared.load(Ordering::Relaxed) {
            return self.put(milli);
        }
        if self.owed.load(Ordering::Relaxed) < self.capacity {
            self.owed.fetch_add(milli, Ordering::Relaxed);
        }
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

#[cfg(all(test, not(backstop_loom)))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::budget::RetryBudget;
    use crate::clock::ManualClock;
    use crate::verdict::Verdict;

    fn bucket(tokens: u64, capacity: u64) -> TokenBucket {
        TokenBucket {
            milli: AtomicU64::new(tokens * MILLI),
            capacity: capacity * MILLI,
            retry_cost: 5,
            timeout_cost: 10,
            success_refund: 1,
            refill_per_sec: 0.0,
            last_refill: Mutex::new(0),
            shared: AtomicBool::new(false),
            owed: AtomicU64::new(0),
            spent: AtomicU64::new(0),
            refunded: AtomicU64::new(0),
        }
    }

    fn milli(b: &TokenBucket) -> u64 {
        b.milli.load(Ordering::Relaxed)
    }

    #[test]
    fn take_takes_only_what_is_there() {
        let b = bucket(5, 10);
        assert!(b.take(3 * MILLI));
        assert_eq!(milli(&b), 2 * MILLI);
        assert!(!b.take(3 * MILLI), "more than is left: nothing is taken");
        assert_eq!(milli(&b), 2 * MILLI);
        assert!(b.take(2 * MILLI));
        assert_eq!(milli(&b), 0);
        assert!(!b.take(1));
        assert_eq!(milli(&b), 0);
    }

    #[test]
    fn put_fills_up_to_capacity_and_no_further() {
        let b = bucket(8, 10);
        b.put(MILLI);
        assert_eq!(milli(&b), 9 * MILLI);
        b.put(5 * MILLI);
        assert_eq!(milli(&b), 10 * MILLI);
        b.put(MILLI);
        assert_eq!(milli(&b), 10 * MILLI);
    }

    #[test]
    fn put_saturates_instead_of_overflowing() {
        let b = bucket(9, 10);
        b.put(u64::MAX);
        assert_eq!(milli(&b), 10 * MILLI);
    }

    #[test]
    fn put_on_a_full_bucket_writes_nothing() {
        // A level above capacity cannot happen; here it shows that `put`
        // leaves a full bucket alone rather than writing it back clamped.
        let b = bucket(11, 10);
        b.put(MILLI);
        assert_eq!(milli(&b), 11 * MILLI);
    }

    #[test]
    fn a_retry_costs_retry_cost_and_a_retry_after_a_timeout_costs_timeout_cost() {
        let budget =
            RetryBudget::token_bucket("retry_budget").capacity(30).retry_cost(5).timeout_cost(10).build().unwrap();
        assert_eq!(budget.try_withdraw(Verdict::Retry).map(|w| w.cost()), Some(5));
        assert_eq!(budget.try_withdraw(Verdict::Timeout).map(|w| w.cost()), Some(10));
        assert_eq!(budget.level(), 15.0);
    }

    #[test]
    fn the_standard_bucket_allows_exactly_100_retries_without_successes() {
        let budget = RetryBudget::token_bucket("retry_budget").build().unwrap();
        assert_eq!((0..200).filter_map(|_| budget.try_withdraw(Verdict::Retry)).count(), 100);
        assert_eq!(budget.level(), 0.0);
        assert_eq!(budget.denied(), 100);
    }

    #[test]
    fn refunds_and_successes_never_fill_the_bucket_past_capacity() {
        let budget = RetryBudget::token_bucket("retry_budget").capacity(10).build().unwrap();
        let w = budget.try_withdraw(Verdict::Retry).unwrap();
        budget.record_success(None);
        assert_eq!(budget.level(), 6.0);
        budget.refund(w);
        budget.record_success(Some(w));
        assert_eq!(budget.level(), 10.0);
    }

    #[test]
    fn refill_adds_tokens_with_time_up_to_capacity() {
        let clock = ManualClock::new();
        let budget =
            RetryBudget::token_bucket("retry_budget").capacity(10).refill_per_sec(2.0).clock(&clock).build().unwrap();
        let _spent = budget.try_withdraw(Verdict::Retry).unwrap();
        let _spent = budget.try_withdraw(Verdict::Retry).unwrap();
        clock.advance(Duration::from_millis(2500));
        assert!(budget.try_withdraw(Verdict::Retry).is_some(), "5 tokens back after 2.5 s at 2 a second");
        assert_eq!(budget.level(), 0.0);
        clock.advance(Duration::from_secs(60));
        assert!(budget.try_withdraw(Verdict::Retry).is_some());
        assert_eq!(budget.level(), 5.0, "refilled to capacity, not past it");
    }

    #[test]
    fn time_spent_full_is_not_banked_for_later() {
        let clock = ManualClock::new();
        let budget =
            RetryBudget::token_bucket("retry_budget").capacity(10).refill_per_sec(1.0).clock(&clock).build().unwrap();
        clock.advance(Duration::from_secs(100));
        let _spent = budget.try_withdraw(Verdict::Retry).unwrap();
        let _spent = budget.try_withdraw(Verdict::Retry).unwrap();
        clock.advance(Duration::from_secs(2));
        assert!(budget.try_withdraw(Verdict::Retry).is_none());
        assert_eq!(budget.level(), 2.0);
    }

    #[test]
    fn frequent_withdrawals_do_not_slow_the_refill() {
        let clock = ManualClock::new();
        let budget = RetryBudget::token_bucket("retry_budget")
            .capacity(10)
            .retry_cost(10)
            .refill_per_sec(1.0)
            .clock(&clock)
            .build();
        let budget = budget.unwrap();
        let _spent = budget.try_withdraw(Verdict::Retry).unwrap();
        // A refused withdrawal every 1.5 ms for 1.5 s: each refill call sees 1.5 thousandths.
        for _ in 0..1000 {
            clock.advance(Duration::from_micros(1500));
            assert!(budget.try_withdraw(Verdict::Retry).is_none());
        }
        assert!((budget.level() - 1.5).abs() < 0.01, "1.5 s at 1 token a second refilled {}", budget.level());
    }
}
