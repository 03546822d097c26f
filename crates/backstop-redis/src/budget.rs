//! One shared budget's part of the fleet: the [`BudgetLink`] its
//! `RetryBudget` reports to, and the sync that keeps its lease.
//!
//! The fleet's bucket lives in Redis (see [`scripts`](crate::scripts)). The
//! local bucket holds a lease of it: when it falls below one retry's cost
//! the thread takes a lease's worth more; when refunds pile it above two
//! leases, the thread gives the surplus back. What successes refill is owed
//! to the fleet's bucket and given in one batch at most once a second,
//! except for 10 s after the fleet's bucket was found full (a healthy fleet's bucket
//! is full: its refills would change nothing), so a healthy process costs
//! Redis one round trip per budget per 10 s.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use backstop::budget::{BudgetLink, SharedBudget};
use redis::RedisError;

use crate::hub::{Hub, Io, Member};
use crate::scripts::{self, BUDGET_PUT, BUDGET_TAKE};

/// The shortest time between two batches of refills.
const GIVE_EVERY: Duration = Duration::from_secs(1);
/// How long a full fleet bucket is taken to stay full.
const FULL_FOR: Duration = Duration::from_secs(10);

pub(crate) struct BudgetShare {
    budget: SharedBudget,
    key: String,
    hub: Weak<Hub>,
    /// Tokens per lease.
    lease: u32,
    /// A retry found the lease low; cleared by a top-up.
    low: AtomicBool,
    /// Until when the fleet's bucket is taken to be full (ns on the hub's
    /// clock): owed refills are dropped meanwhile.
    full_until: AtomicU64,
    /// When refills were last given (ns on the hub's clock).
    gave: AtomicU64,
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
            full_until: AtomicU64::new(0),
            gave: AtomicU64::new(0),
        }
    }

    fn low_mark(&self) -> f64 {
        f64::from(self.budget.largest_cost())
    }

    /// Gives `back` lease tokens and `refills` to the fleet, with the tokens
    /// spent since last said.
    fn give(&self, io: &mut Io<'_>, back: u32, refills: u32) -> Result<(), RedisError> {
        let (hub, capacity) = (io.hub, self.budget.capacity());
        let spent = self.budget.take_spent();
        let held: u32 = io.conn.run(&BUDGET_PUT, &hub.round_trips, |s| {
            s.key(&self.key).arg(back).arg(capacity).arg(hub.settings.ttl_ms()).arg(refills).arg(spent);
        })?;
        if held >= capacity {
            self.full_until.store(hub.now().saturating_add(nanos(FULL_FOR)), Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Member for BudgetShare {
    fn name(&self) -> &str {
        self.budget.name()
    }

    fn is_orphaned(&self) -> bool {
        self.budget.is_orphaned()
    }

    fn go_local(&self) {
        self.budget.go_local();
    }

    fn rejoin(&self) {
        self.budget.go_shared();
        self.low.store(true, Ordering::Release);
    }

    /// Tops the lease up when low; gives back a surplus.
    fn sync(&self, io: &mut Io<'_>, full: bool) -> Result<(), RedisError> {
        if self.budget.is_local() {
            return Ok(());
        }
        let hub = io.hub;
        let (capacity, ttl) = (self.budget.capacity(), hub.settings.ttl_ms());
        let level = self.budget.level();
        // Only a lease that a retry found low is topped up (and a new one):
        // a process with no retries to make asks the fleet for nothing.
        if level < self.low_mark() && self.low.load(Ordering::Acquire) {
            self.low.store(false, Ordering::Release);
            let want = self.lease.saturating_sub(level as u32);
            let spent = self.budget.take_spent();
            let granted: u32 = io.conn.run(&BUDGET_TAKE, &hub.round_trips, |s| {
                s.key(&self.key).arg(want).arg(capacity).arg(ttl).arg(1).arg(self.budget.refill_per_sec()).arg(spent);
            })?;
            if granted > 0 {
                self.full_until.store(0, Ordering::Relaxed); // the fleet is being drawn on
            }
            let overflow = self.budget.deposit(granted);
            if overflow > 0 {
                self.give(io, overflow, 0)?;
            }
            return Ok(());
        }
        if !full {
            return Ok(());
        }
        // Refills fill only the room neither the bucket nor the leases out
        // hold, so batching them for a second cannot overfill the fleet.
        let now = hub.now();
        let due = now.saturating_sub(self.gave.load(Ordering::Relaxed)) >= nanos(GIVE_EVERY);
        let mut refills = if due { self.budget.take_owed() } else { 0 };
        if now < self.full_until.load(Ordering::Relaxed) {
            refills = 0; // refills of a full bucket
        }
        let back = if level > 2.0 * f64::from(self.lease) { self.budget.take_above(self.lease) } else { 0 };
        if back > 0 || refills > 0 {
            self.gave.store(now, Ordering::Relaxed);
            self.give(io, back, refills)?;
        }
        Ok(())
    }

    /// The fleet's thread is stopping: everything in the lease goes back.
    fn leave(&self, io: &mut Io<'_>) -> Result<(), RedisError> {
        if self.budget.is_local() {
            return Ok(());
        }
        let back = self.budget.take_above(0);
        self.give(io, back, 0)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
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
