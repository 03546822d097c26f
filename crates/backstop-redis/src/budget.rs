//! One shared budget's part of the fleet: the [`BudgetLink`] its
//! `RetryBudget` reports to, and the sync that keeps its lease.
//!
//! The fleet's bucket lives in Redis (see [`scripts`](crate::scripts)) and
//! counts the tokens out on lease, so the fleet's retries never exceed one
//! bucket:
//!
//! - A retry that finds the lease low nudges the fleet's thread, which
//!   takes a lease's worth (at most one ask per refresh while the fleet's
//!   bucket is dry).
//! - A process that has not retried for 2 s keeps one retry's worth (so its
//!   next first retry does not wait for Redis) and gives the rest back; it
//!   takes that one retry's worth only while half the fleet's bucket is
//!   there (the script enforces the floor), so quiet processes never hold
//!   more than half the bucket. In a fleet with more processes than half
//!   the bucket has retries for, the first retry of the others waits for a
//!   lease (it is refused, and the lease comes in one round trip).
//! - A process that drops a budget (its users are gone, or the fleet
//!   stops) gives its lease back; an outage's lease goes back on the
//!   return. Redis keeps each process's lease out, and a process holding one
//!   says so at least every 20 s: the lease of a process unheard of for
//!   60 s (it died) is forgotten, and the room it held refills.
//! - What successes refill is owed to the fleet's bucket and given in one
//!   batch at most once a second, except for 10 s after the bucket was found
//!   full (its refills would change nothing then): a healthy process costs
//!   Redis one round trip per budget per 10 s.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use backstop::budget::{BudgetLink, SharedBudget};
use redis::RedisError;

use crate::hub::{Hub, Io, Member};
use crate::scripts::{self, BUDGET_PUT, BUDGET_TAKE};
use crate::settings::nanos;

/// The shortest time between two batches of refills.
const GIVE_EVERY: Duration = Duration::from_secs(1);
/// How long a full fleet bucket is taken to stay full.
const FULL_FOR: Duration = Duration::from_secs(10);
/// `drew_at` before the first retry.
const NEVER: u64 = u64::MAX;
/// A lease nobody drew on for this long goes back to the fleet.
const IDLE: Duration = Duration::from_secs(2);
/// A process's lease unheard of for this long is forgotten (it died); a
/// living process holding a lease says so every `HEARTBEAT`.
const FORGET_LEASES_AFTER: Duration = Duration::from_secs(60);
const HEARTBEAT: Duration = Duration::from_secs(20);

fn forget_ms(hub: &Hub) -> u64 {
    crate::settings::millis(hub.settings.forget_after(FORGET_LEASES_AFTER, HEARTBEAT))
}

pub(crate) struct BudgetShare {
    name: String,
    /// The local bucket; `None` once detached (its users are gone, or the
    /// fleet stopped): the budget holds this share as its link, so the share
    /// must let go for both to be freed.
    budget: Mutex<Option<SharedBudget>>,
    /// The bucket's key and the key of its leases out.
    keys: [String; 2],
    hub: Weak<Hub>,
    /// Tokens per lease.
    lease: u32,
    /// The largest retry cost: a lease below it buys nothing.
    largest_cost: u32,
    /// A retry found the lease low; cleared by a top-up.
    low: AtomicBool,
    /// A refund to report to the fleet's count of the tokens out.
    refunded: AtomicBool,
    /// The last lease asked for found the fleet's bucket dry: ask again on
    /// the next full pass, not at every denied retry.
    dry: AtomicBool,
    /// Tokens in the fleet's bucket at the last look, and when this process
    /// last asked for its one standing retry's worth (ns on the hub's clock).
    fleet_left: AtomicU32,
    standing_at: AtomicU64,
    /// When a retry last drew on the lease (ns on the hub's clock; `NEVER`).
    drew_at: AtomicU64,
    /// Until when the fleet's bucket is taken to be full (ns on the hub's
    /// clock): owed refills are dropped meanwhile.
    full_until: AtomicU64,
    /// When refills were last given (ns on the hub's clock).
    gave: AtomicU64,
    /// The lease held when Redis was lost, to give back on the return.
    stranded: AtomicU32,
    /// When this process last told the fleet of its lease (ns on the hub's
    /// clock).
    said_at: AtomicU64,
}

impl BudgetShare {
    pub(crate) fn new(budget: SharedBudget, hub: &Arc<Hub>) -> Self {
        let largest_cost = budget.largest_cost();
        let lease = hub.settings.budget_lease.unwrap_or(2 * largest_cost).max(largest_cost).min(budget.capacity());
        BudgetShare {
            name: budget.name().to_owned(),
            keys: [scripts::key("budget", budget.name()), scripts::key("leases", budget.name())],
            budget: Mutex::new(Some(budget)),
            hub: Arc::downgrade(hub),
            lease,
            largest_cost,
            low: AtomicBool::new(false),
            refunded: AtomicBool::new(false),
            dry: AtomicBool::new(false),
            fleet_left: AtomicU32::new(u32::MAX),
            standing_at: AtomicU64::new(0),
            drew_at: AtomicU64::new(NEVER),
            full_until: AtomicU64::new(0),
            gave: AtomicU64::new(0),
            stranded: AtomicU32::new(0),
            said_at: AtomicU64::new(0),
        }
    }

    /// The local bucket, unless detached.
    fn handle(&self) -> Option<SharedBudget> {
        self.budget.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn low_mark(&self) -> f64 {
        f64::from(self.largest_cost)
    }

    /// Tops the lease up to `to` tokens, leaving at least `floor` in the
    /// fleet's bucket, and reports what was spent.
    fn top_up(&self, io: &mut Io<'_>, budget: &SharedBudget, to: u32, floor: u32) -> Result<(), RedisError> {
        let hub = io.hub;
        let (capacity, ttl) = (budget.capacity(), hub.settings.ttl_ms());
        let want = to.saturating_sub(budget.level() as u32);
        let spent = budget.take_spent();
        let [granted, left]: [u32; 2] = io.conn.run(&BUDGET_TAKE, &hub.round_trips, |s| {
            s.key(&self.keys[0]).key(&self.keys[1]).arg(want).arg(capacity).arg(ttl).arg(1);
            s.arg(budget.refill_per_sec()).arg(spent).arg(floor).arg(forget_ms(hub)).arg(&hub.token);
        })?;
        self.said_at.store(hub.now(), Ordering::Relaxed);
        self.fleet_left.store(left, Ordering::Relaxed);
        self.dry.store(granted == 0, Ordering::Release);
        if granted > 0 {
            self.full_until.store(0, Ordering::Relaxed); // the fleet is being drawn on
        }
        let overflow = budget.deposit(granted);
        if overflow > 0 {
            self.give(io, budget, overflow, 0)?;
        }
        Ok(())
    }

    /// Gives `back` lease tokens and `refills` to the fleet, with the tokens
    /// spent since last said.
    fn give(&self, io: &mut Io<'_>, budget: &SharedBudget, back: u32, refills: u32) -> Result<(), RedisError> {
        let (hub, capacity) = (io.hub, budget.capacity());
        let spent = budget.take_spent();
        let [held, left]: [u32; 2] = io.conn.run(&BUDGET_PUT, &hub.round_trips, |s| {
            s.key(&self.keys[0]).key(&self.keys[1]).arg(back).arg(capacity).arg(hub.settings.ttl_ms());
            s.arg(refills).arg(spent).arg(forget_ms(hub)).arg(&hub.token);
        })?;
        self.said_at.store(hub.now(), Ordering::Relaxed);
        self.fleet_left.store(left, Ordering::Relaxed);
        if held >= capacity {
            self.full_until.store(hub.now().saturating_add(nanos(FULL_FOR)), Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Member for BudgetShare {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_orphaned(&self) -> bool {
        self.budget.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_none_or(SharedBudget::is_orphaned)
    }

    fn go_local(&self) {
        if let Some(budget) = self.handle()
            && !budget.is_local()
        {
            self.stranded.fetch_add(budget.level() as u32, Ordering::Relaxed);
            budget.go_local();
        }
    }

    fn rejoin(&self) {
        if let Some(budget) = self.handle() {
            budget.go_shared();
        }
        self.low.store(false, Ordering::Release);
        self.dry.store(false, Ordering::Release);
    }

    /// Settles and tops the lease up when a retry found it low; on a full
    /// pass, gives back a lease gone idle, a lease stranded by an outage,
    /// a surplus of refunds and a batch of refills.
    fn sync(&self, io: &mut Io<'_>, full: bool) -> Result<(), RedisError> {
        let Some(budget) = self.handle() else { return Ok(()) };
        if budget.is_local() {
            return Ok(());
        }
        let level = budget.level();
        if self.low.load(Ordering::Acquire) && level < self.low_mark() && (full || !self.dry.load(Ordering::Acquire)) {
            self.low.store(false, Ordering::Release);
            return self.top_up(io, &budget, self.lease, 0);
        }
        if !full {
            if self.refunded.swap(false, Ordering::AcqRel) {
                return self.give(io, &budget, 0, 0);
            }
            return Ok(());
        }
        let refunded = self.refunded.swap(false, Ordering::AcqRel);
        let now = io.hub.now();
        let mut back = self.stranded.swap(0, Ordering::Relaxed);
        let drew_at = self.drew_at.load(Ordering::Relaxed);
        let idle = drew_at == NEVER || now.saturating_sub(drew_at) >= nanos(IDLE);
        if idle {
            // Quiet: keep one retry's worth, give back the rest; take one
            // retry's worth while half the fleet's bucket is there.
            let half = budget.capacity() / 2;
            let looks_full = self.fleet_left.load(Ordering::Relaxed) >= half.saturating_add(self.largest_cost);
            let stale = now.saturating_sub(self.standing_at.load(Ordering::Relaxed)) >= nanos(FULL_FOR);
            if budget.level() < self.low_mark() && (looks_full || stale) {
                self.standing_at.store(now, Ordering::Relaxed);
                return self.top_up(io, &budget, self.largest_cost, half);
            }
            back = back.saturating_add(budget.take_above(self.largest_cost));
        } else if level > 2.0 * f64::from(self.lease) {
            back = back.saturating_add(budget.take_above(self.lease));
        }
        let due = now.saturating_sub(self.gave.load(Ordering::Relaxed)) >= nanos(GIVE_EVERY);
        let mut refills = if due { budget.take_owed() } else { 0 };
        if now < self.full_until.load(Ordering::Relaxed) {
            refills = 0; // refills of a full bucket
        }
        let heartbeat =
            budget.level() > 0.0 && now.saturating_sub(self.said_at.load(Ordering::Relaxed)) >= nanos(HEARTBEAT);
        if back > 0 || refills > 0 || refunded || heartbeat {
            self.gave.store(now, Ordering::Relaxed);
            self.give(io, &budget, back, refills)?;
        }
        Ok(())
    }

    fn leave(&self, io: &mut Io<'_>) -> Result<(), RedisError> {
        let Some(budget) = self.handle() else { return Ok(()) };
        if budget.is_local() {
            return Ok(());
        }
        let back = budget.take_above(0);
        self.give(io, &budget, back, 0)
    }

    fn detach(&self) {
        self.budget.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

impl BudgetLink for BudgetShare {
    fn refunded(&self) {
        if !self.refunded.swap(true, Ordering::AcqRel)
            && let Some(hub) = self.hub.upgrade()
        {
            hub.nudge();
        }
    }

    fn withdrew(&self, level: f64) {
        if let Some(hub) = self.hub.upgrade() {
            self.drew_at.store(hub.now(), Ordering::Relaxed);
            if level < self.low_mark() && !self.low.swap(true, Ordering::AcqRel) {
                hub.nudge();
            }
        }
    }
}
