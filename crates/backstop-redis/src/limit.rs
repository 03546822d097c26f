//! One shared concurrency limit's part of the fleet: the [`LimitLink`] its
//! `ConcurrencyLimit` reports to, and the sync that keeps its lease of the
//! fleet's places.
//!
//! The fleet's leases live in Redis (see
//! [`scripts::LIMIT_SYNC`](crate::scripts::LIMIT_SYNC)); this process's
//! lease is its limit's places. So:
//!
//! - A call that finds no place (it queues, or is refused) nudges the
//!   fleet's thread, which asks at once for the places this process's calls
//!   want (running, and waiting or refused since the last ask), unless the
//!   last ask found the fleet's places taken; while they want more than it
//!   holds, it asks again on every full pass.
//! - A busy process says what it wants at least once a second (every pass
//!   while another process wants more than it holds, so that places pass to
//!   it as this process's calls end); a process idle for 2 s gives its
//!   places back but one, which it is granted only while half the fleet's
//!   places are free and no process waits (so its next call does not wait
//!   for Redis) and asks about once a second.
//! - So a process holding places says so at least once a second; one
//!   unheard of for 60 s (or three refreshes, if longer) is forgotten (it
//!   died) and its places free. When the fleet stops under a limit still in
//!   use, its places stay counted until then.
//! - Without Redis each process keeps the larger of its lease and its share
//!   of the fleet's places as last seen (the places over the processes then).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use backstop::limit::{LimitLink, SharedLimit};
use redis::RedisError;

use crate::hub::{Hub, Io, Member};
use crate::scripts::{self, LIMIT_SYNC};
use crate::settings::{millis, nanos};

/// The longest time between two syncs of a busy process.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// A process with no call running or waiting for this long gives back its places.
const IDLE: Duration = Duration::from_secs(2);
/// A process holding places unheard of for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// `busy_at` before the first call.
const NEVER: u64 = u64::MAX;

pub(crate) struct LimitShare {
    name: String,
    /// The limit; `None` once detached (its users are gone, or the fleet
    /// stopped): the limit holds this share as its link, so the share must
    /// let go for both to be freed.
    limit: Mutex<Option<SharedLimit>>,
    key: String,
    hub: Weak<Hub>,
    /// A call found no place since the last pass; cleared by a pass.
    wants: AtomicBool,
    /// Calls that found no place since the last ask (queued or refused):
    /// demand the queue alone does not show.
    unmet: AtomicU32,
    /// The last ask was granted less than the demand: ask again on a full pass.
    dry: AtomicBool,
    /// Another process wanted more than it held at the last sync.
    contended: AtomicBool,
    /// Working alone (Redis is gone).
    local: AtomicBool,
    /// When a call was last seen running or waiting (ns on the hub's clock; `NEVER`).
    busy_at: AtomicU64,
    /// When this process last synced (ns on the hub's clock; 0: sync on the next pass).
    synced_at: AtomicU64,
    /// Processes holding or wanting places at the last sync (with this one).
    workers: AtomicU32,
}

impl LimitShare {
    pub(crate) fn new(limit: SharedLimit, hub: &Arc<Hub>) -> Self {
        LimitShare {
            name: limit.name().to_owned(),
            key: scripts::key("limit", limit.name()),
            limit: Mutex::new(Some(limit)),
            hub: Arc::downgrade(hub),
            wants: AtomicBool::new(false),
            unmet: AtomicU32::new(0),
            dry: AtomicBool::new(false),
            contended: AtomicBool::new(false),
            local: AtomicBool::new(false),
            busy_at: AtomicU64::new(NEVER),
            synced_at: AtomicU64::new(0),
            workers: AtomicU32::new(1),
        }
    }

    /// The limit, unless detached.
    fn handle(&self) -> Option<SharedLimit> {
        self.limit.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Calls running and waiting, and those that found no place and did
    /// not queue since the last ask (at most the fleet's places).
    fn demand(&self, limit: &SharedLimit) -> u32 {
        let unmet = self.unmet.load(Ordering::Relaxed).min(limit.max_concurrent());
        limit.in_use().saturating_add(limit.waiting()).max(limit.in_use().saturating_add(unmet))
    }

    /// Asks for `want` places (at least those in use; one kept while idle if
    /// `standing`), or gives them all back when `leaving`.
    fn ask(
        &self,
        io: &mut Io<'_>,
        limit: &SharedLimit,
        want: u32,
        standing: bool,
        leaving: bool,
    ) -> Result<(), RedisError> {
        let hub = io.hub;
        let in_use = limit.in_use();
        let demand = self.demand(limit);
        self.unmet.store(0, Ordering::Relaxed);
        let [granted, _free, workers, contended]: [u32; 4] = io.conn.run(&LIMIT_SYNC, &hub.round_trips, |s| {
            s.key(&self.key).arg(want.max(in_use)).arg(demand).arg(in_use).arg(limit.max_concurrent());
            s.arg(u8::from(standing))
                .arg(hub.settings.ttl_ms())
                .arg(millis(hub.settings.forget_after(FORGET_AFTER, SYNC_EVERY)))
                .arg(&hub.token);
            s.arg(u8::from(leaving));
        })?;
        self.synced_at.store(hub.now().max(1), Ordering::Relaxed);
        self.workers.store(workers.max(1), Ordering::Relaxed);
        self.contended.store(contended == 1, Ordering::Relaxed);
        self.dry.store(granted < demand, Ordering::Release);
        if !leaving {
            limit.set_places(granted);
        }
        Ok(())
    }
}

impl Member for LimitShare {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_orphaned(&self) -> bool {
        self.limit.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_none_or(SharedLimit::is_orphaned)
    }

    fn go_local(&self) {
        if let Some(limit) = self.handle()
            && !self.local.swap(true, Ordering::AcqRel)
        {
            let share = (limit.max_concurrent() / self.workers.load(Ordering::Relaxed).max(1)).max(1);
            limit.set_places(limit.places().max(share));
        }
    }

    fn rejoin(&self) {
        self.local.store(false, Ordering::Release);
        self.dry.store(false, Ordering::Release);
        self.synced_at.store(0, Ordering::Relaxed); // say what it holds on the next pass
    }

    /// Asks for more places when calls want more than it holds: at once
    /// when one found no place (unless the fleet's were taken at the last
    /// ask), and on every full pass while the want lasts. On a full pass
    /// also says what a busy process wants (every pass while another waits,
    /// else once a second), gives an idle one's places back, and says a
    /// held lease is alive.
    fn sync(&self, io: &mut Io<'_>, full: bool) -> Result<(), RedisError> {
        let Some(limit) = self.handle() else { return Ok(()) };
        let nudged = self.wants.swap(false, Ordering::AcqRel);
        if self.local.load(Ordering::Acquire) {
            return Ok(());
        }
        let (places, in_use) = (limit.places(), limit.in_use());
        let demand = self.demand(&limit);
        let now = io.hub.now();
        if demand > 0 {
            self.busy_at.store(now, Ordering::Relaxed);
        }
        if demand > places && (full || (nudged && !self.dry.load(Ordering::Acquire))) {
            return self.ask(io, &limit, demand, false, false);
        }
        if !full {
            return Ok(());
        }
        let synced_at = self.synced_at.load(Ordering::Relaxed);
        let since = now.saturating_sub(synced_at);
        let busy_at = self.busy_at.load(Ordering::Relaxed);
        let idle = busy_at == NEVER || now.saturating_sub(busy_at) >= nanos(IDLE);
        if idle {
            // An idle process's one place is asked about once a second: the
            // fleet takes it back while another process waits for places.
            if synced_at == 0 || places > in_use.max(1) || (places > 0 && since >= nanos(SYNC_EVERY)) {
                return self.ask(io, &limit, in_use, true, false);
            }
        } else if synced_at == 0 || self.contended.load(Ordering::Relaxed) || since >= nanos(SYNC_EVERY) {
            return self.ask(io, &limit, demand.max(places), false, false);
        }
        Ok(())
    }

    /// Gives the places back when the limit's users are gone; when the fleet
    /// stops under a limit still in use, leaves its places counted as held
    /// (its calls go on with them) until Redis forgets them.
    fn leave(&self, io: &mut Io<'_>) -> Result<(), RedisError> {
        let Some(limit) = self.handle() else { return Ok(()) };
        if self.local.load(Ordering::Acquire) {
            return Ok(());
        }
        if limit.is_orphaned() {
            self.ask(io, &limit, 0, false, true)
        } else {
            self.ask(io, &limit, limit.places(), false, false)
        }
    }

    fn detach(&self) {
        self.limit.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

impl LimitLink for LimitShare {
    fn wants(&self) {
        self.unmet.fetch_add(1, Ordering::Relaxed);
        if !self.wants.swap(true, Ordering::AcqRel)
            && let Some(hub) = self.hub.upgrade()
        {
            hub.nudge();
        }
    }
}
