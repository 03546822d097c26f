//! `loom` models of a shared guard's local half: what a store's thread does
//! to the local state (top up and drain a budget's lease, make a breaker
//! follow the fleet) racing the callers' own operations. Run with the
//! command in `tests/loom_breaker.rs`, naming `--test loom_shared`.
#![cfg(backstop_loom)]

use std::sync::{Arc as StdArc, Mutex as StdMutex};
use std::time::Duration;

use backstop::breaker::{BreakerConfig, BreakerEvent, BreakerLink, BreakerStore, CircuitState, SharedBreaker};
use backstop::budget::{BudgetLink, BudgetStore, SharedBudget, SharedRatio};
use backstop::{CircuitBreaker, ManualClock, RetryBudget, Verdict};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// A store that keeps the handle it is given, for the model to drive as a
/// store's thread would, and counts what the guard tells it.
#[derive(Clone, Default)]
struct Keeper {
    budget: StdArc<StdMutex<Option<SharedBudget>>>,
    ratio: StdArc<StdMutex<Option<SharedRatio>>>,
    breaker: StdArc<StdMutex<Option<SharedBreaker>>>,
}

struct Link {
    changes: AtomicUsize,
}

impl BudgetLink for Link {
    fn withdrew(&self, _level: f64) {}
    fn refunded(&self) {}
}

impl BreakerLink for Link {
    fn changed(&self, _event: &BreakerEvent<'_>) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }
    fn may_probe(&self) -> bool {
        true // this process holds the fleet's probe
    }
}

impl BudgetStore for Keeper {
    fn share_budget(&self, budget: SharedBudget) -> StdArc<dyn BudgetLink> {
        *self.budget.lock().unwrap() = Some(budget);
        StdArc::new(Link { changes: AtomicUsize::new(0) })
    }

    fn share_ratio(&self, budget: SharedRatio) -> StdArc<dyn BudgetLink> {
        *self.ratio.lock().unwrap() = Some(budget);
        StdArc::new(Link { changes: AtomicUsize::new(0) })
    }
}

impl BreakerStore for Keeper {
    fn share_breaker(&self, breaker: SharedBreaker) -> StdArc<dyn BreakerLink> {
        *self.breaker.lock().unwrap() = Some(breaker);
        StdArc::new(Link { changes: AtomicUsize::new(0) })
    }
}

#[test]
fn a_lease_topped_up_and_drained_while_a_retry_spends_it_loses_no_token() {
    loom::model(|| {
        let keeper = Keeper::default();
        let budget = RetryBudget::token_bucket("loom").capacity(10).shared(&keeper).build().unwrap();
        let lease = keeper.budget.lock().unwrap().clone().unwrap();
        assert_eq!(budget.level(), 0.0, "a shared budget starts with an empty lease");
        let store = thread::spawn(move || {
            let overflow = lease.deposit(10);
            (overflow, lease.take_above(0))
        });
        let worker = {
            let b = budget.clone();
            thread::spawn(move || b.try_withdraw(Verdict::Retry).is_some())
        };
        let (overflow, given_back) = store.join().unwrap();
        let granted = worker.join().unwrap();
        // Every token the store deposited is spent, given back or still held.
        assert_eq!(overflow, 0);
        let spent = if granted { 5.0 } else { 0.0 };
        assert_eq!(spent + f64::from(given_back) + budget.level(), 10.0);
    });
}

#[test]
fn a_ratio_grant_replaced_while_a_retry_spends_it_never_lets_more_through_than_granted() {
    loom::model(|| {
        let keeper = Keeper::default();
        let budget = RetryBudget::ratio("loom").ratio(0.0).min_per_sec(0.0).shared(&keeper).build().unwrap();
        let handle = keeper.ratio.lock().unwrap().clone().unwrap();
        handle.grant(1.0, handle.counts());
        let store = thread::spawn(move || {
            let at = handle.counts();
            handle.grant(1.0, at);
            at
        });
        let worker = {
            let b = budget.clone();
            thread::spawn(move || (0..2).filter_map(|_| b.try_withdraw(Verdict::Retry)).count() as u64)
        };
        let at = store.join().unwrap();
        let granted = worker.join().unwrap();
        let keeper_view = keeper.ratio.lock().unwrap().clone().unwrap();
        // The first grant's one retry, and one more only if the store read it
        // before granting anew; after the new grant, at most its one.
        assert!(granted <= 2);
        assert_eq!(keeper_view.counts().retries, granted);
        assert!(keeper_view.counts().retries - at.retries <= 1);
    });
}

#[test]
fn following_the_fleet_open_while_this_process_probes_leaves_one_probe_and_its_verdict() {
    loom::model(|| {
        let clock = ManualClock::new();
        let keeper = Keeper::default();
        let config = BreakerConfig::builder().consecutive_failures(1).build().unwrap();
        let b = CircuitBreaker::builder("loom").config(config).clock(&clock).shared(&keeper).build();
        let handle = keeper.breaker.lock().unwrap().clone().unwrap();
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_secs(30));
        let caller = {
            let b = b.clone();
            thread::spawn(move || {
                if let Ok(probe) = b.try_acquire() {
                    assert_eq!(probe.state(), CircuitState::HalfOpen);
                    probe.failure();
                }
            })
        };
        let follower = thread::spawn(move || handle.follow_open(Duration::from_secs(30)));
        caller.join().unwrap();
        follower.join().unwrap();
        // Whatever the order, the breaker ends open, and a second caller
        // gets no probe: either the fleet's open period holds, or the
        // probe's verdict re-opened it.
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.try_acquire().is_err());
    });
}
