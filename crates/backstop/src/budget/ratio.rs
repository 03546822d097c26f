//! The ratio algorithm (Finagle's and tower's retry budget): retries may add
//! at most a fixed share of the requests seen in a sliding window, plus a
//! floor of retries a second. Shared by a fleet, the same rule holds over
//! the fleet's requests and retries: the store grants this process an
//! allowance (its part of the fleet's room), and the process may make that
//! many retries, plus `ratio` of the requests it counts after the grant.

use std::time::Duration;

use crate::sliding::SlidingCounts;
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering};

pub(super) struct Ratio {
    /// Counters: requests (first attempts), retries. A refund takes its
    /// retry back out of the slice it was counted in, if that is still in
    /// the window (a refund never cancels a retry the window already forgot).
    pub(super) counts: SlidingCounts<2>,
    pub(super) ratio: f64,
    /// The floor over the whole window: `min_per_sec · window`.
    pub(super) floor: f64,
    pub(super) window: Duration,
    /// Held while a retry is decided (one at a time), with the fleet's last
    /// grant (unused by a local budget).
    pub(super) withdraw: Mutex<Grant>,
    /// What a shared budget counts for its store; `None` when local.
    pub(super) fleet: Option<FleetCounts>,
}

/// A shared ratio budget's counts since it was built, read by its store.
pub(super) struct FleetCounts {
    /// Whether the budget follows the fleet's grants now (false while its
    /// store has no connection: then the local rule decides).
    pub(super) shared: AtomicBool,
    /// Every request counted.
    pub(super) requests: AtomicU64,
    /// Every retry granted, less the refunded ones.
    pub(super) retries: AtomicU64,
}

/// The fleet's last grant: `allowance` retries, counted from the counts
/// the store read before asking for it.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Grant {
    pub(super) allowance: f64,
    pub(super) requests_at: u64,
    pub(super) retries_at: u64,
}

impl Ratio {
    /// Requests and (unrefunded) retries in the window ending at `now`.
    pub(super) fn totals(&self, now: u64) -> (u32, u32) {
        let [requests, retries] = self.counts.totals(now);
        (requests, retries)
    }

    /// The fleet's counts, when the budget is shared and follows the fleet now.
    pub(super) fn following(&self) -> Option<&FleetCounts> {
        self.fleet.as_ref().filter(|f| f.shared.load(Ordering::Acquire))
    }

    /// Retries a shared budget may still make under `grant`: the allowance,
    /// plus `ratio` of the requests since, less the retries since.
    pub(super) fn left_of(&self, grant: &Grant, fleet: &FleetCounts) -> f64 {
        let requests = fleet.requests.load(Ordering::Acquire).saturating_sub(grant.requests_at);
        let retries = fleet.retries.load(Ordering::Acquire) as f64 - grant.retries_at as f64;
        grant.allowance + self.ratio * requests as f64 - retries
    }

    /// Retries the local rule allows now: the floor, plus `ratio` of the
    /// window's requests, less its retries.
    pub(super) fn local_left(&self, now: u64) -> f64 {
        let (requests, retries) = self.totals(now);
        self.floor + self.ratio * f64::from(requests) - f64::from(retries)
    }
}

#[cfg(all(test, not(backstop_loom)))]
mod tests {
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
        let r = Ratio {
            counts: SlidingCounts::new(10 * SEC, 10),
            ratio: 0.2,
            floor: 0.0,
            window: Duration::from_secs(10),
            withdraw: Mutex::new(Grant::default()),
            fleet: None,
        };
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
