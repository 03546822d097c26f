//! One shared ratio budget's part of the fleet: the [`BudgetLink`] its
//! `RetryBudget` reports to, and the sync that reports its counts and takes
//! its grant.
//!
//! The fleet's window lives in Redis (see
//! [`scripts::RATIO_SYNC`](crate::scripts::RATIO_SYNC)); each sync adds the
//! requests and retries this process counted since the last one and
//! replaces its grant, its part of the room the rule leaves. So:
//!
//! - A process syncs at least once a second (on a full pass), so its grant
//!   follows the fleet's traffic and Redis hears it is alive; a process
//!   unheard of for 10 s (or four refreshes, if longer) is forgotten, and
//!   the room its grant held frees.
//! - A retry that finds less than one retry left nudges the fleet's thread,
//!   which syncs at once, unless the last grant was nothing (the fleet's
//!   room is spent): then it asks again on the next full pass, not at every
//!   refused retry.
//! - Counting late is safe for retries: those not yet reported were made out
//!   of a grant the others' grants are counted without. Requests count from
//!   when they are reported (up to a sync late), so the room they add may
//!   outlast them in the window by that much, and a grant made of it may be
//!   spent up to a sync after they left it.
//! - A process that drops the budget (or whose fleet stops) reports its last
//!   counts and gives its grant back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use backstop::budget::{BudgetLink, RatioCounts, SharedRatio};
use redis::RedisError;

use crate::hub::{Hub, Io, Member};
use crate::scripts::{self, RATIO_SYNC};
use crate::settings::{millis, nanos};

/// The longest time between two syncs of a process's counts.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// A process unheard of for this long is forgotten (it died).
const FORGET_AFTER: Duration = Duration::from_secs(10);

pub(crate) struct RatioShare {
    name: String,
    /// The budget; `None` once detached (its users are gone, or the fleet
    /// stopped): the budget holds this share as its link, so the share must
    /// let go for both to be freed.
    budget: Mutex<Option<SharedRatio>>,
    /// The window's key and the key of the grants out.
    keys: [String; 2],
    hub: Weak<Hub>,
    /// The counts last reported to the fleet.
    reported: Mutex<RatioCounts>,
    /// A retry found less than one retry left; cleared by a sync.
    low: AtomicBool,
    /// The last grant was nothing: ask again on a full pass only.
    dry: AtomicBool,
    /// When the counts were last reported (ns on the hub's clock).
    synced_at: AtomicU64,
}

impl RatioShare {
    pub(crate) fn new(budget: SharedRatio, hub: &Arc<Hub>) -> Self {
        RatioShare {
            name: budget.name().to_owned(),
            keys: [scripts::key("ratio", budget.name()), scripts::key("grants", budget.name())],
            reported: Mutex::new(budget.counts()),
            budget: Mutex::new(Some(budget)),
            hub: Arc::downgrade(hub),
            low: AtomicBool::new(false),
            dry: AtomicBool::new(false),
            synced_at: AtomicU64::new(0),
        }
    }

    /// The budget, unless detached.
    fn handle(&self) -> Option<SharedRatio> {
        self.budget.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Reports the counts since the last report and takes the new grant
    /// (none, and the grant forgotten, when `leaving`).
    fn report(&self, io: &mut Io<'_>, budget: &SharedRatio, leaving: bool) -> Result<(), RedisError> {
        let hub = io.hub;
        let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        let now = budget.counts();
        let requests = now.requests.saturating_sub(reported.requests);
        let retries = i128::from(now.retries) - i128::from(reported.retries);
        let retries = i64::try_from(retries).unwrap_or(if retries < 0 { i64::MIN } else { i64::MAX });
        let window = millis(budget.window());
        let (granted, ..): (String, u64, u64, u64) = io.conn.run(&RATIO_SYNC, &hub.round_trips, |s| {
            s.key(&self.keys[0]).key(&self.keys[1]).arg(requests).arg(retries);
            s.arg(budget.ratio()).arg(budget.floor()).arg(window).arg(budget.requests_in_window());
            let forget = hub.settings.forget_after(FORGET_AFTER, SYNC_EVERY);
            s.arg(hub.settings.ttl_ms()).arg(millis(forget)).arg(&hub.token).arg(u8::from(leaving));
        })?;
        *reported = now;
        self.synced_at.store(hub.now(), Ordering::Relaxed);
        let allowance: f64 = granted.parse().unwrap_or(0.0);
        self.dry.store(allowance < 1.0, Ordering::Release);
        if !leaving {
            budget.grant(allowance, now);
        }
        Ok(())
    }
}

impl Member for RatioShare {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_orphaned(&self) -> bool {
        self.budget.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_none_or(SharedRatio::is_orphaned)
    }

    fn go_local(&self) {
        if let Some(budget) = self.handle() {
            budget.go_local();
        }
    }

    fn rejoin(&self) {
        if let Some(budget) = self.handle() {
            budget.go_shared();
        }
        self.dry.store(false, Ordering::Release);
        self.synced_at.store(0, Ordering::Relaxed); // sync on the next full pass
    }

    /// Syncs when a retry found the grant spent (unless the fleet's room was
    /// spent at the last sync and this is not a full pass), and on a full
    /// pass at least once a second.
    fn sync(&self, io: &mut Io<'_>, full: bool) -> Result<(), RedisError> {
        let Some(budget) = self.handle() else { return Ok(()) };
        if budget.is_local() {
            return Ok(());
        }
        let asked = self.low.load(Ordering::Acquire) && (full || !self.dry.load(Ordering::Acquire));
        let due = full && io.hub.now().saturating_sub(self.synced_at.load(Ordering::Relaxed)) >= nanos(SYNC_EVERY);
        if asked || due || self.synced_at.load(Ordering::Relaxed) == 0 {
            self.low.store(false, Ordering::Release);
            return self.report(io, &budget, false);
        }
        Ok(())
    }

    fn leave(&self, io: &mut Io<'_>) -> Result<(), RedisError> {
        let Some(budget) = self.handle() else { return Ok(()) };
        if budget.is_local() {
            return Ok(());
        }
        self.report(io, &budget, true)
    }

    fn detach(&self) {
        self.budget.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

impl BudgetLink for RatioShare {
    fn refunded(&self) {
        // The refund is in the next counts read; it frees no room sooner.
    }

    fn withdrew(&self, left: f64) {
        if left < 1.0
            && !self.low.swap(true, Ordering::AcqRel)
            && let Some(hub) = self.hub.upgrade()
        {
            hub.nudge();
        }
    }
}
