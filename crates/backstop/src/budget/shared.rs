//! A token bucket shared with other processes: the store that keeps it
//! ([`BudgetStore`]) and the handle it moves tokens with ([`SharedBudget`]).
//! The budget reports to the store through a [`BudgetLink`](super::BudgetLink).
//!
//! A shared budget's local bucket holds a *lease*: tokens the store took
//! from the fleet's bucket for this process. Retries spend it with the same
//! atomic operations as a local budget, never waiting on the store; the
//! store tops the lease up when it runs low and gives back what piles up
//! (refunds, success refills) in batches, from its own thread. The fleet's
//! tokens are conserved: a retry anywhere spends a token of the one bucket.
//!
//! Without a connection the store turns the budget
//! [`local`](SharedBudget::go_local): a full bucket with its own settings,
//! refilling on its own, until the store is back and takes it
//! [`shared`](SharedBudget::go_shared) again.

use std::fmt;
use std::sync::Arc as StdArc;

use super::link::BudgetLink;
use super::retry_budget::{Inner, Kind};
use super::shared_ratio::SharedRatio;
use super::token_bucket::{MILLI, TokenBucket};
use crate::sync::{Arc, AtomicU64, Ordering};

/// A store of retry budgets shared by many processes (such as
/// `backstop_redis::Fleet`); given to
/// [`TokenBucketBuilder::shared`](super::TokenBucketBuilder::shared) and
/// [`RatioBuilder::shared`](super::RatioBuilder::shared).
///
/// `Send + Sync`: a builder holding a store may build on another thread
/// (backstop's Python package builds without holding the GIL).
pub trait BudgetStore: Send + Sync {
    /// Takes a new token bucket into the store: the store keeps `budget` to
    /// keep its lease, and returns the link the budget reports to. Called
    /// once, by `build()`, with the local bucket empty; it may wait a short,
    /// bounded time (to take the first lease before the first retry).
    fn share_budget(&self, budget: SharedBudget) -> StdArc<dyn BudgetLink>;

    /// Takes a new ratio budget into the store: the store keeps `budget`,
    /// reports its [`counts`](SharedRatio::counts) to the fleet and
    /// [`grant`](SharedRatio::grant)s it its part of the fleet's room, and
    /// returns the link the budget reports to. Called once, by `build()`,
    /// with nothing granted; it may wait a short, bounded time (to grant
    /// before the first retry).
    fn share_ratio(&self, budget: SharedRatio) -> StdArc<dyn BudgetLink>;
}

/// A store's handle on a shared token bucket: the local lease. Holding it
/// does not keep the budget in use: [`is_orphaned`](Self::is_orphaned) says
/// when every `RetryBudget` clone is gone.
#[derive(Clone)]
pub struct SharedBudget {
    inner: Arc<Inner>,
}

impl SharedBudget {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    fn bucket(&self) -> &TokenBucket {
        match &self.inner.kind {
            Kind::Bucket(b) => b,
            Kind::Ratio(_) => unreachable!("only token buckets are built shared"),
        }
    }

    /// The budget's name (shared budgets with one name share one bucket).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The bucket's capacity, in tokens: the fleet's bucket holds this many
    /// when full, and so may this process's lease.
    pub fn capacity(&self) -> u32 {
        u32::try_from(self.bucket().capacity / MILLI).unwrap_or(u32::MAX)
    }

    /// What one retry costs (the larger of `retry_cost` and `timeout_cost`):
    /// a lease smaller than this buys nothing.
    pub fn largest_cost(&self) -> u32 {
        let b = self.bucket();
        b.retry_cost.max(b.timeout_cost)
    }

    /// Tokens added to the fleet's bucket per second (`refill_per_sec`).
    pub fn refill_per_sec(&self) -> f64 {
        self.bucket().refill_per_sec
    }

    /// Tokens in the local bucket now.
    pub fn level(&self) -> f64 {
        self.bucket().milli.load(Ordering::Acquire) as f64 / MILLI as f64
    }

    /// Whether every [`RetryBudget`](super::RetryBudget) using this bucket
    /// is gone, so that only store handles hold it.
    pub fn is_orphaned(&self) -> bool {
        Arc::strong_count(&self.inner) == 1
    }

    /// Adds `tokens` the store took from the fleet to the local lease, up
    /// to the capacity. Returns the tokens that did not fit, for the store
    /// to give back.
    pub fn deposit(&self, tokens: u32) -> u32 {
        let b = self.bucket();
        let mut overflow = 0;
        let _ = b.milli.fetch_update(Ordering::AcqRel, Ordering::Acquire, |have| {
            let room = b.capacity.saturating_sub(have) / MILLI;
            let fits = u64::from(tokens).min(room);
            overflow = tokens - u32::try_from(fits).unwrap_or(tokens);
            Some(have + fits * MILLI)
        });
        overflow
    }

    /// Takes the whole tokens above `keep` out of the local lease (refunds
    /// and success refills that piled up), for the store to give back to
    /// the fleet. Returns how many it took.
    pub fn take_above(&self, keep: u32) -> u32 {
        take_whole(&self.bucket().milli, u64::from(keep) * MILLI)
    }

    /// Takes the whole tokens that successes refilled since the last call
    /// (owed to the fleet's bucket, not added to the lease), for the store
    /// to give to the fleet in one batch.
    pub fn take_owed(&self) -> u32 {
        take_whole(&self.bucket().owed, 0)
    }

    /// Takes the tokens spent from the lease since the last call, less those
    /// refunded to it (so it may be negative), for the store to report to
    /// the fleet's bucket, which counts the tokens out on lease.
    pub fn take_spent(&self) -> i64 {
        let b = self.bucket();
        let spent = i64::from(take_whole(&b.spent, 0));
        spent - i64::from(take_whole(&b.refunded, 0))
    }

    /// The store lost its connection: the budget works alone, as a local
    /// budget with the same settings (a full bucket that refills on its own).
    pub fn go_local(&self) {
        let b = self.bucket();
        if b.shared.swap(false, Ordering::AcqRel) {
            // What was spent from the lease, refunded to it or owed to the
            // fleet before now stays counted, for the store to report when
            // it is back; while alone, nothing adds to those counts.
            b.milli.store(b.capacity, Ordering::Release);
        }
    }

    /// The store is back: the tokens of the local budget are dropped (they
    /// are not the fleet's) and the lease starts empty, for the store to
    /// fill. Returns whether the budget was local until now.
    pub fn go_shared(&self) -> bool {
        let b = self.bucket();
        let was_local = !b.shared.swap(true, Ordering::AcqRel);
        if was_local {
            b.milli.store(0, Ordering::Release);
        }
        was_local
    }

    /// Whether the budget is working alone (see [`go_local`](Self::go_local)).
    pub fn is_local(&self) -> bool {
        !self.bucket().shared.load(Ordering::Acquire)
    }
}

/// Takes the whole tokens of `counter` (in thousandths) above `keep`.
fn take_whole(counter: &AtomicU64, keep: u64) -> u32 {
    let mut taken = 0;
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |have| {
        taken = have.saturating_sub(keep) / MILLI;
        Some(have - taken * MILLI)
    });
    u32::try_from(taken).unwrap_or(u32::MAX)
}

impl fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBudget")
            .field("name", &self.name())
            .field("level", &self.level())
            .field("local", &self.is_local())
            .finish()
    }
}
