//! A ratio budget shared with other processes: the handle its store keeps
//! ([`SharedRatio`]) and the counts it reports ([`RatioCounts`]).
//!
//! The fleet's rule is the local one over the fleet's traffic: retries may
//! add at most `ratio` of the requests every process made in the window,
//! plus the floor, once for the whole fleet (not once per process). The
//! store reads each process's [`counts`](SharedRatio::counts), adds what is
//! new to the fleet's window, and [`grant`](SharedRatio::grant)s the process
//! a part of the room left, which the process spends with no round trip:
//! a retry is allowed while the retries since the grant stay within the
//! allowance plus `ratio` of the requests since. Allowances not yet spent
//! are counted out of the room the others are granted, so the fleet's
//! retries never exceed its room, in whatever order the processes sync.
//! (Requests count from when they are reported, a sync late at most, so
//! room may outlast the requests it came from by that much.)
//!
//! Without a connection the store turns the budget
//! [`local`](SharedRatio::go_local): the local rule on this process's own
//! window, until the store is back.

use std::fmt;
use std::time::Duration;

use super::ratio::{FleetCounts, Grant, Ratio};
use super::retry_budget::{Inner, Kind};
use crate::sync::{Arc, Ordering, lock};

/// A shared ratio budget's counts since it was built: what its store
/// reports to the fleet (the difference between two readings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RatioCounts {
    /// Requests counted ([`RetryBudget::record_request`](super::RetryBudget::record_request)).
    pub requests: u64,
    /// Retries granted, less those refunded.
    pub retries: u64,
}

/// A store's handle on a shared ratio budget (given to
/// [`BudgetStore::share_ratio`](super::BudgetStore::share_ratio)). Holding
/// it does not keep the budget in use: [`is_orphaned`](Self::is_orphaned)
/// says when every `RetryBudget` clone is gone.
#[derive(Clone)]
pub struct SharedRatio {
    inner: Arc<Inner>,
}

impl SharedRatio {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    fn ratio_kind(&self) -> &Ratio {
        match &self.inner.kind {
            Kind::Ratio(r) => r,
            Kind::Bucket(_) => unreachable!("a SharedRatio is made for ratio budgets only"),
        }
    }

    fn fleet(&self) -> &FleetCounts {
        self.ratio_kind().fleet.as_ref().expect("a shared ratio budget counts for its fleet")
    }

    /// The budget's name (shared budgets with one name share one window).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Retries allowed per request in the window (`ratio`, e.g. 0.2).
    pub fn ratio(&self) -> f64 {
        self.ratio_kind().ratio
    }

    /// Retries allowed per window whatever the requests: `min_per_sec ·
    /// window` (100 with the defaults), for the whole fleet.
    pub fn floor(&self) -> f64 {
        self.ratio_kind().floor
    }

    /// How far back requests and retries count (default 10 s).
    pub fn window(&self) -> Duration {
        self.ratio_kind().window
    }

    /// Requests and retries counted since the budget was built (while
    /// shared or local): a store reports the difference since its last
    /// reading, and grants against this reading.
    pub fn counts(&self) -> RatioCounts {
        let fleet = self.fleet();
        RatioCounts { requests: fleet.requests.load(Ordering::Acquire), retries: fleet.retries.load(Ordering::Acquire) }
    }

    /// This process's requests in its own window now (a store may weigh
    /// its grants by it).
    pub fn requests_in_window(&self) -> u32 {
        let since = self.inner.clock.now().saturating_duration_since(self.inner.origin);
        self.ratio_kind().totals(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)).0
    }

    /// The fleet grants this process `allowance` retries (negative or not a
    /// number: none), counted from the reading `at`: from now on a retry is
    /// allowed while the retries after `at` stay within the allowance plus
    /// `ratio` of the requests after `at`. Replaces the last grant.
    pub fn grant(&self, allowance: f64, at: RatioCounts) {
        let allowance = if allowance.is_finite() { allowance.max(0.0) } else { 0.0 };
        let mut grant = lock(&self.ratio_kind().withdraw);
        *grant = Grant { allowance, requests_at: at.requests, retries_at: at.retries };
    }

    /// The retries this process may still make under the last grant.
    pub fn left(&self) -> f64 {
        let r = self.ratio_kind();
        r.left_of(&lock(&r.withdraw), self.fleet()).max(0.0)
    }

    /// The store lost its connection: the local rule decides, on this
    /// process's own window (its floor included).
    pub fn go_local(&self) {
        self.fleet().shared.store(false, Ordering::Release);
    }

    /// The store is back: grants decide again, starting from none (the
    /// store grants anew at its next sync). Returns whether the budget was
    /// local until now.
    pub fn go_shared(&self) -> bool {
        let r = self.ratio_kind();
        let mut grant = lock(&r.withdraw);
        let was_local = !self.fleet().shared.swap(true, Ordering::AcqRel);
        if was_local {
            let now = self.counts();
            *grant = Grant { allowance: 0.0, requests_at: now.requests, retries_at: now.retries };
        }
        was_local
    }

    /// Whether the budget is working alone (see [`go_local`](Self::go_local)).
    pub fn is_local(&self) -> bool {
        !self.fleet().shared.load(Ordering::Acquire)
    }

    /// Whether every [`RetryBudget`](super::RetryBudget) using this window
    /// is gone, so that only store handles hold it.
    pub fn is_orphaned(&self) -> bool {
        Arc::strong_count(&self.inner) == 1
    }
}

impl fmt::Debug for SharedRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRatio")
            .field("name", &self.name())
            .field("left", &self.left())
            .field("local", &self.is_local())
            .finish()
    }
}

#[cfg(all(test, not(backstop_loom)))]
mod tests {
    use std::sync::{Arc as StdArc, Mutex as StdMutex};

    use super::*;
    use crate::budget::{BudgetLink, BudgetStore, RetryBudget, SharedBudget};
    use crate::clock::ManualClock;
    use crate::verdict::Verdict;

    /// A store that keeps the handle, for the test to grant as a store would,
    /// and what the budget told it.
    #[derive(Clone, Default)]
    struct Keeper {
        ratio: StdArc<StdMutex<Option<SharedRatio>>>,
        told: StdArc<StdMutex<Vec<f64>>>,
    }

    struct Told(StdArc<StdMutex<Vec<f64>>>);

    impl BudgetLink for Told {
        fn withdrew(&self, left: f64) {
            self.0.lock().unwrap().push(left);
        }
        fn refunded(&self) {}
    }

    impl BudgetStore for Keeper {
        fn share_budget(&self, _budget: SharedBudget) -> StdArc<dyn BudgetLink> {
            StdArc::new(Told(StdArc::clone(&self.told)))
        }
        fn share_ratio(&self, budget: SharedRatio) -> StdArc<dyn BudgetLink> {
            *self.ratio.lock().unwrap() = Some(budget);
            StdArc::new(Told(StdArc::clone(&self.told)))
        }
    }

    fn shared(clock: &ManualClock, ratio: f64) -> (RetryBudget, SharedRatio, Keeper) {
        let keeper = Keeper::default();
        let budget = RetryBudget::ratio("fleet").ratio(ratio).clock(clock).shared(&keeper).build().unwrap();
        let handle = keeper.ratio.lock().unwrap().clone().unwrap();
        (budget, handle, keeper)
    }

    fn retries(budget: &RetryBudget, asked: usize) -> usize {
        (0..asked).filter_map(|_| budget.try_withdraw(Verdict::Retry)).count()
    }

    #[test]
    fn a_shared_budget_spends_its_grant_plus_the_ratio_of_the_requests_since() {
        let clock = ManualClock::new();
        let (budget, handle, _) = shared(&clock, 0.5);
        assert_eq!(retries(&budget, 5), 0, "the floor is the fleet's: nothing before a grant");
        handle.grant(2.0, handle.counts());
        assert_eq!(budget.level(), 2.0);
        assert_eq!(retries(&budget, 5), 2);
        for _ in 0..4 {
            budget.record_request();
        }
        assert_eq!(retries(&budget, 5), 2, "half of the 4 requests since the grant");
        assert_eq!(handle.counts(), RatioCounts { requests: 4, retries: 4 });
        assert_eq!((handle.floor(), handle.ratio(), handle.window()), (100.0, 0.5, Duration::from_secs(10)));
        assert_eq!(handle.requests_in_window(), 4);
    }

    #[test]
    fn retries_made_after_the_reading_a_grant_was_asked_on_come_out_of_it() {
        let clock = ManualClock::new();
        let (budget, handle, _) = shared(&clock, 0.0);
        handle.grant(1.0, handle.counts());
        let reading = handle.counts();
        assert_eq!(retries(&budget, 1), 1, "made while the store asks the fleet");
        handle.grant(3.0, reading);
        assert_eq!(budget.level(), 2.0);
        assert_eq!(retries(&budget, 5), 2);
    }

    #[test]
    fn a_refund_goes_back_to_the_grant_and_out_of_the_counts() {
        let clock = ManualClock::new();
        let (budget, handle, _) = shared(&clock, 0.0);
        handle.grant(1.0, handle.counts());
        let w = budget.try_withdraw(Verdict::Retry).unwrap();
        assert!(budget.try_withdraw(Verdict::Retry).is_none());
        budget.refund(w);
        assert_eq!(handle.counts().retries, 0);
        assert_eq!(retries(&budget, 2), 1);
    }

    #[test]
    fn without_its_store_the_budget_keeps_the_local_rule_and_back_with_it_waits_for_a_grant() {
        let clock = ManualClock::new();
        let (budget, handle, _) = shared(&clock, 0.2);
        handle.go_local();
        assert!(handle.is_local());
        assert_eq!(retries(&budget, 150), 100, "the local floor: 10 a second over 10 s");
        assert!(handle.go_shared());
        assert!(!handle.go_shared(), "already shared");
        assert_eq!(retries(&budget, 5), 0);
        handle.grant(1.0, handle.counts());
        assert_eq!(retries(&budget, 5), 1);
        assert_eq!(handle.counts().retries, 101, "retries made alone are counted for the fleet too");
    }

    #[test]
    fn a_grant_that_is_not_a_finite_number_of_retries_grants_none() {
        let clock = ManualClock::new();
        let (budget, handle, _) = shared(&clock, 0.0);
        for hostile in [f64::NAN, f64::INFINITY, -5.0] {
            handle.grant(hostile, handle.counts());
            assert_eq!(retries(&budget, 3), 0, "{hostile}");
        }
    }

    #[test]
    fn the_store_hears_what_is_left_after_every_retry_asked_for() {
        let clock = ManualClock::new();
        let (budget, handle, keeper) = shared(&clock, 0.0);
        handle.grant(1.0, handle.counts());
        retries(&budget, 2);
        assert_eq!(*keeper.told.lock().unwrap(), [0.0, 0.0]);
        keeper.ratio.lock().unwrap().take();
        assert!(!handle.is_orphaned(), "the budget is in use");
        drop(budget);
        assert!(handle.is_orphaned());
    }
}
