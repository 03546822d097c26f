//! The ratio algorithm (Finagle's and tower's retry budget): retries may add
//! at most a fixed share of the requests seen in a sliding window, plus a
//! floor of retries a second.

use crate::sliding::SlidingCounts;
use crate::sync::Mutex;

pub(super) struct Ratio {
    /// Counters: requests (first attempts), retries. A refund takes its
    /// retry back out of the slice it was counted in, if that is still in
    /// the window (a refund never cancels a retry the window already forgot).
    pub(super) counts: SlidingCounts<2>,
    pub(super) ratio: f64,
    /// The floor over the whole window: `min_per_sec · window`.
    pub(super) floor: f64,
    pub(super) withdraw: Mutex<()>,
}

impl Ratio {
    /// Requests and (unrefunded) retries in the window ending at `now`.
    pub(super) fn totals(&self, now: u64) -> (u32, u32) {
        let [requests, retries] = self.counts.totals(now);
        (requests, retries)
    }
}

#[cfg(all(test, not(backstop_loom)))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::budget::RetryBudget;
    use crate::clock::ManualClock;
    use crate::verdict::Verdict;

    const SEC: u64 = 1_000_000_000;

    /// A ratio budget over 10 s on `clock`.
    fn budget(clock: &ManualClock, ratio: f64, min_per_sec: f64) -> RetryBudget {
        RetryBudget::ratio("retry_budget").ratio(ratio).min_per_sec(min_per_sec).clock(clock).build().unwrap()
    }

    fn advance(clock: &ManualClock, secs: f64) {
        clock.advance(Duration::from_secs_f64(secs));
    }

    #[test]
    fn totals_are_the_requests_and_retries_of_the_window() {
        let r = Ratio { counts: SlidingCounts::new(10 * SEC, 10), ratio: 0.2, floor: 0.0, withdraw: Mutex::new(()) };
        r.counts.add(0, [3, 0]);
        r.counts.add(4 * SEC, [2, 1]);
        r.counts.add(9 * SEC, [0, 1]);
        assert_eq!(r.totals(9 * SEC), (5, 2));
        assert_eq!(r.totals(10 * SEC), (2, 2), "the first second has left the window");
        assert_eq!(r.totals(18 * SEC), (0, 1));
        assert_eq!(r.totals(19 * SEC), (0, 0));
    }

    #[test]
    fn retries_may_add_the_ratio_of_requests_and_no_more() {
        let clock = ManualClock::new();
        let budget = budget(&clock, 0.5, 0.0);
        assert!(budget.try_withdraw(Verdict::Retry).is_none(), "no requests, no floor: no retries");
        for _ in 0..4 {
            budget.record_request();
        }
        assert_eq!(budget.level(), 2.0);
        assert!(budget.try_withdraw(Verdict::Retry).is_some());
        assert!(budget.try_withdraw(Verdict::Retry).is_some());
        assert!(budget.try_withdraw(Verdict::Retry).is_none());
        assert_eq!(budget.level(), 0.0);
        assert_eq!(budget.denied(), 2);
    }

    #[test]
    fn the_floor_allows_min_per_sec_over_the_window_without_requests() {
        let clock = ManualClock::new();
        let budget = budget(&clock, 0.2, 1.0); // floor: 10 over 10 s
        assert_eq!((0..20).filter_map(|_| budget.try_withdraw(Verdict::Retry)).count(), 10);
    }

    #[test]
    fn requests_and_retries_age_out_with_the_window() {
        let clock = ManualClock::new();
        let budget = budget(&clock, 1.0, 0.0);
        budget.record_request();
        let _spent = budget.try_withdraw(Verdict::Retry).unwrap();
        advance(&clock, 5.0);
        budget.record_request();
        assert_eq!(budget.level(), 1.0);
        advance(&clock, 5.0); // the first request and its retry leave the window
        assert_eq!(budget.level(), 1.0);
        advance(&clock, 5.0);
        assert_eq!(budget.level(), 0.0);
    }

    #[test]
    fn the_level_is_never_negative_when_requests_age_out_before_their_retries() {
        let clock = ManualClock::new();
        let budget = budget(&clock, 1.0, 0.0);
        budget.record_request();
        advance(&clock, 5.0);
        let _spent = budget.try_withdraw(Verdict::Retry).unwrap();
        advance(&clock, 5.5);
        assert_eq!(budget.level(), 0.0);
    }

    #[test]
    fn a_refund_within_the_window_takes_the_retry_back() {
        let clock = ManualClock::new();
        let budget = budget(&clock, 0.2, 0.1); // floor: 1 over 10 s
        let w = budget.try_withdraw(Verdict::Retry).unwrap();
        assert!(budget.try_withdraw(Verdict::Retry).is_none());
        advance(&clock, 3.0);
        budget.refund(w);
        assert_eq!(budget.level(), 1.0);
        assert!(budget.try_withdraw(Verdict::Retry).is_some());
    }

    #[test]
    fn a_refund_never_outlives_the_slice_it_was_counted_in() {
        let clock = ManualClock::new();
        let budget = budget(&clock, 0.2, 0.1); // floor: 1 over 10 s
        let old = budget.try_withdraw(Verdict::Retry).unwrap();
        // 10 s on, the old retry's slice has left the window and its bucket
        // holds the current slice, where the new retry is counted.
        advance(&clock, 10.0);
        let _new = budget.try_withdraw(Verdict::Retry).unwrap();
        budget.refund(old);
        assert_eq!(budget.level(), 0.0, "the old refund must not cancel the new retry");
        assert!(budget.try_withdraw(Verdict::Retry).is_none());
    }
}
