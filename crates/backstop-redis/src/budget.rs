//! One shared budget's part of the fleet: the [`BudgetLink`] its
//! `RetryBudget` reports to, and the sync that keeps its lease.
//!
//! The fleet's bucket lives in Redis (see [`scripts`](crate::scripts)). The
//! local bucket holds a lease of it: when it falls below one retry's cost
//! the thread takes a lease's worth more; when refunds and success refills
//! pile it above two leases, the thread gives the surplus back (at most
//! once a second, so a healthy process costs Redis almost nothing).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use backstop::budget::{BudgetLink, SharedBudget};
use redis::RedisError;

use crate::hub::{Hub, Io};
use crate::scripts::{self, BUDGET_PUT, BUDGET_TAKE};

/// The shortest time between two give-backs.
const GIVE_BACK_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct BudgetShare {
    budget: SharedBudget,
    key: String,
    hub: Weak<Hub>,
    /// Tokens per lease.
    lease: u32,
    /// A retry found the lease low; cleared by a top-up.
    low: AtomicBool,
    /// When the last give-back was (ns on the hub's clock).
    gave_back: AtomicU64,
}

impl BudgetShare {
    pub(crate) fn new(budget: SharedBudget, hub: &Arc<Hub>) -> Self {
        let lease = hub.settings.budget_lease.unwrap_or(2 * budget.largest_cost()).min(budget.capacity());
        BudgetShare {
            key: scripts::key("budget", budget.name()),
            budget,
            hub: Arc::downgrade(hub),
            lease,
            low: AtomicBool::new(true),
            gave_back: AtomicU64::new(0),
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.budget.name()
    }

    pub(crate) fn is_orphaned(&self) -> bool {
        self.budget.is_orphaned()
    }

    pub(crate) fn go_local(&self) {
        self.budget.go_local();
    }

    pub(crate) fn rejoin(&self) {
        self.budget.go_shared();
        self.low.store(true, Ordering::Release);
    }

    fn low_mark(&self) -> f64 {
        f64::from(self.budget.largest_cost())
    }

    /// Tops the lease up when low; gives back a surplus.
    pub(crate) fn sync(&self, io: &mut Io<'_>, full: bool) -> Result<(), RedisError> {
        if self.budget.is_local() {
            return Ok(());
        }
        let hub = io.hub;
        let (capacity, ttl) = (self.budget.capacity(), hub.settings.ttl_ms());
        let level = self.budget.level();
        // On a nudge only a lease that ran low is topped up; a full pass
        // also looks at a budget nobody nudged (an empty fleet bucket may
        // have refilled since).
        if level < self.low_mark() && (full || self.low.load(Ordering::Acquire)) {
            self.low.store(false, Ordering::Release);
            let want = self.lease.saturating_sub(level as u32);
            let granted: u32 = io.conn.run(&BUDGET_TAKE, &hub.round_trips, |s| {
                s.key(&self.key).arg(want).arg(capacity).arg(ttl).arg(1).arg(self.budget.refill_per_sec());
            })?;
            let overflow = self.budget.deposit(granted);
            if overflow > 0 {
                self.give_back(io, overflow)?;
            }
            return Ok(());
        }
        let due = hub.now().saturating_sub(self.gave_back.load(Ordering::Relaxed)) >= GIVE_BACK_EVERY.as_nanos() as u64;
        if full && level > 2.0 * f64::from(self.lease) && due {
            let surplus = self.budget.take_above(self.lease);
            self.gave_back.store(hub.now(), Ordering::Relaxed);
            self.give_back(io, surplus)?;
        }
        Ok(())
    }

    fn give_back(&self, io: &mut Io<'_>, tokens: u32) -> Result<(), RedisError> {
        let (hub, capacity) = (io.hub, self.budget.capacity());
        let _: u64 = io.conn.run(&BUDGET_PUT, &hub.round_trips, |s| {
            s.key(&self.key).arg(tokens).arg(capacity).arg(hub.settings.ttl_ms());
        })?;
        Ok(())
    }
}

impl BudgetLink for BudgetShare {
    fn withdrew(&self, level: f64) {
        if level < self.low_mark()
            && !self.low.swap(true, Ordering::AcqRel)
            && let Some(hub) = self.hub.upgrade()
        {
            hub.nudge();
        }
    }
}
