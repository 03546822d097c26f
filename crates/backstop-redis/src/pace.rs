//! One shared pacer's part of the fleet: the [`PacerLink`] its `Pacer`
//! reports to, and the sync that keeps it on the fleet's pace.
//!
//! The fleet's pace lives in Redis (see [`PACE_SYNC`]): one rate, learned
//! by CUBIC from every process's reports, and one GCRA time line the slots
//! are reserved on.
//!
//! - Every refresh, the thread reports this process's sends (and its
//!   successes, while pacing) and reads the fleet's rate: one round trip
//!   per shared pacer per refresh, whatever the call rate.
//! - A refusal or a server's stated limit is sent at once (a nudge), and
//!   the pacer waits for the fleet's slots from then on.
//! - While the fleet paces, each sync also reserves the slots this process
//!   is about to need: its callers waiting now, plus one refresh of its
//!   recent demand (at most one refresh of the fleet's rate; the script caps
//!   it too). A caller beyond the last grant, or a grant half handed out,
//!   nudges the thread, which asks again at once (a busy process can double
//!   its rate each refresh) — or, after a refused ask, a quarter refresh
//!   later. Grants start at most two refreshes ahead, plus as long as the
//!   process has been refused (up to four more): a fleet that wants more
//!   than its rate queues mostly in its processes, not in Redis (no slot is
//!   reserved far ahead for a caller long gone), and a refused process
//!   queues behind the others rather than losing every race to those whose
//!   callers come back first. Granted slots may go half a refresh late.
//! - Redis gone: the pacer paces alone at its share of the fleet's last
//!   rate (the fleet's rate times this process's part of the fleet's sends),
//!   and adapts alone until Redis is back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use backstop::pacer::{PacerLink, SharedPacer};
use redis::RedisError;

use crate::hub::{Hub, Io, Member};
use crate::scripts::{self, PACE_SYNC};
use crate::settings::millis;

/// The most slots one ask reserves.
const MOST_SLOTS: u64 = 10_000;

pub(crate) struct PaceShare {
    name: String,
    /// The local pacer; `None` once detached (its users are gone, or the
    /// fleet stopped): the pacer holds this share as its link, so the share
    /// must let go for both to be freed.
    pacer: Mutex<Option<SharedPacer>>,
    key: String,
    hub: Weak<Hub>,
    /// Working alone: Redis is gone.
    local: AtomicBool,
    /// A refusal to report.
    throttled: AtomicBool,
    /// A stated limit to report: calls per second, and for how long.
    limit: Mutex<Option<(f64, Duration)>>,
    /// A caller waits for a slot no grant covers.
    waiting: AtomicBool,
    /// When slots were last asked for (ns on the hub's clock).
    asked_at: AtomicU64,
    /// Since when the fleet has refused this process's asks (its time line
    /// was full that far ahead; ns on the hub's clock, `u64::MAX`: not
    /// refused). A refused process may take slots further ahead the longer
    /// it waits, so it queues behind the others instead of losing every
    /// race to the processes whose callers come back first.
    refused_since: AtomicU64,
    /// Back from working alone: the next sync offers this process's rate,
    /// for the fleet to carry on with if Redis lost the pace.
    reseed: AtomicBool,
    /// The fleet's rate (0: not pacing) and measured send rate at the last
    /// sync, as `f64` bits.
    fleet_rate: AtomicU64,
    fleet_sent: AtomicU64,
}

impl PaceShare {
    pub(crate) fn new(pacer: SharedPacer, hub: &Arc<Hub>) -> Self {
        let name = pacer.name().to_owned();
        PaceShare {
            pacer: Mutex::new(Some(pacer)),
            key: scripts::key("pace", &name),
            name,
            hub: Arc::downgrade(hub),
            local: AtomicBool::new(false),
            throttled: AtomicBool::new(false),
            limit: Mutex::new(None),
            waiting: AtomicBool::new(false),
            asked_at: AtomicU64::new(0),
            refused_since: AtomicU64::new(u64::MAX),
            reseed: AtomicBool::new(false),
            fleet_rate: AtomicU64::new(0),
            fleet_sent: AtomicU64::new(0),
        }
    }

    fn handle(&self) -> Option<SharedPacer> {
        self.pacer.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn limit(&self) -> std::sync::MutexGuard<'_, Option<(f64, Duration)>> {
        self.limit.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn nudge(&self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.nudge();
        }
    }

    /// This process's share of the fleet's last rate: the fleet's rate times
    /// its part of what the fleet sent. `None` when the fleet was not
    /// pacing (the pacer's initial rate, if any, holds then).
    fn share(&self, pacer: &SharedPacer) -> Option<f64> {
        let rate = f64::from_bits(self.fleet_rate.load(Ordering::Acquire));
        if rate <= 0.0 {
            // The fleet was not pacing, as far as this process heard: its
            // own rate (a refusal it saw, not yet reported), or the initial.
            return pacer.rate().or(pacer.initial_rate());
        }
        let sent = f64::from_bits(self.fleet_sent.load(Ordering::Acquire));
        let part = if sent > 0.0 { (pacer.measured_rate() / sent).clamp(0.0, 1.0) } else { 1.0 };
        Some(rate * part)
    }
}

impl Member for PaceShare {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_orphaned(&self) -> bool {
        self.pacer.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_none_or(SharedPacer::is_orphaned)
    }

    fn detach(&self) {
        self.local.store(true, Ordering::Release);
        self.pacer.lock().unwrap_or_else(PoisonError::into_inner).take();
    }

    fn go_local(&self) {
        if self.local.swap(true, Ordering::AcqRel) {
            return;
        }
        self.throttled.store(false, Ordering::Release);
        self.limit().take();
        if let Some(pacer) = self.handle() {
            pacer.go_local(self.share(&pacer));
        }
    }

    /// Back from an outage: the fleet's rate wins (the next pass reads it
    /// and follows it); what this process learned alone is dropped.
    fn rejoin(&self) {
        if let Some(pacer) = self.handle() {
            pacer.go_shared();
            // What was sent alone is not the fleet's news.
            let _ = (pacer.take_sends(), pacer.take_successes());
        }
        self.reseed.store(true, Ordering::Release);
        self.local.store(false, Ordering::Release);
    }

    /// Reports this process's news and, when it is due, reserves slots; on
    /// a full pass, reports its sends and follows the fleet's rate.
    fn sync(&self, io: &mut Io<'_>, full: bool) -> Result<(), RedisError> {
        let Some(pacer) = self.handle() else { return Ok(()) };
        let hub = io.hub;
        let refresh = hub.settings.refresh;
        let throttled = self.throttled.swap(false, Ordering::AcqRel);
        let limit = self.limit().take();
        let waiting = self.waiting.swap(false, Ordering::AcqRel);
        let now = hub.now();
        let gap = u64::try_from((refresh / 4).as_nanos()).unwrap_or(u64::MAX);
        // After a refused ask (the fleet's time line is full), wait a
        // quarter refresh before asking again; after a granted one, ask at
        // once (a busy process asks when half its slots are handed out).
        let refused = self.refused_since.load(Ordering::Relaxed) != u64::MAX;
        let may_ask = !refused || now.saturating_sub(self.asked_at.load(Ordering::Relaxed)) >= gap;
        let news = throttled || limit.is_some() || (waiting && may_ask);
        if !full && !news {
            return Ok(());
        }
        let fleet_rate = f64::from_bits(self.fleet_rate.load(Ordering::Acquire));
        let most = if fleet_rate > 0.0 { (fleet_rate * refresh.as_secs_f64()).ceil() as u64 } else { MOST_SLOTS };
        let most = most.clamp(1, MOST_SLOTS);
        // The callers waiting, plus a refresh of recent demand. Asked again
        // when half of it is handed out (`waiting`), a busy process can
        // double its rate each refresh, and a process never holds more
        // slots than it uses.
        let wanted = if may_ask || throttled { pacer.slots_wanted(refresh).min(most) } else { 0 };
        if wanted > 0 {
            self.asked_at.store(now, Ordering::Relaxed);
        }
        let (limit_rate, limit_ms) = limit.map_or((0.0, 0), |(rate, reset)| (rate, millis(reset)));
        // How far ahead a grant may start: two refreshes, plus as long as
        // this process has been refused, up to four more (the script takes a
        // time line further ahead than ten refreshes for garbage).
        let lag = u64::try_from((refresh * 2).as_micros()).unwrap_or(u64::MAX);
        let refused_for = (now.saturating_sub(self.refused_since.load(Ordering::Relaxed)) / 1000).min(lag * 2);
        let latest_start = lag.saturating_add(refused_for);
        let seed = if self.reseed.load(Ordering::Acquire) { pacer.rate().unwrap_or(0.0) } else { 0.0 };
        let (rate, wait, granted, sent): (String, i64, i64, i64) = io.conn.run(&PACE_SYNC, &hub.round_trips, |s| {
            s.key(&self.key);
            s.arg(pacer.take_sends()).arg(pacer.take_successes()).arg(u8::from(throttled));
            s.arg(limit_rate).arg(limit_ms).arg(wanted);
            s.arg(pacer.min_rate()).arg(pacer.max_rate()).arg(pacer.initial_rate().unwrap_or(0.0));
            s.arg(millis(pacer.min_decrease_interval())).arg(pacer.burst()).arg(latest_start);
            s.arg(hub.settings.ttl_ms()).arg(lag).arg(seed);
        })?;
        self.reseed.store(false, Ordering::Release);
        let rate = rate.parse::<f64>().ok().filter(|r| r.is_finite() && *r > 0.0).unwrap_or(0.0);
        self.fleet_rate.store(rate.to_bits(), Ordering::Release);
        self.fleet_sent.store((sent as f64 / 1000.0).to_bits(), Ordering::Release);
        if rate <= 0.0 {
            pacer.follow(None);
            return Ok(());
        }
        pacer.follow(Some(rate));
        if wanted > 0 && granted == 0 {
            let _ = self.refused_since.compare_exchange(u64::MAX, now, Ordering::Relaxed, Ordering::Relaxed);
        } else if granted > 0 {
            self.refused_since.store(u64::MAX, Ordering::Relaxed);
        }
        if granted > 0 {
            // Usable half a refresh late: a process with fewer callers than
            // the fleet's rate has slots uses its run at its own pace.
            pacer.grant(Duration::from_micros(wait.unsigned_abs()), granted.unsigned_abs(), rate, refresh / 2);
        }
        Ok(())
    }
}

impl PacerLink for PaceShare {
    fn throttled(&self) {
        if !self.local.load(Ordering::Acquire) && !self.throttled.swap(true, Ordering::AcqRel) {
            self.nudge();
        }
    }

    fn limited(&self, per_sec: f64, reset: Duration) {
        if self.local.load(Ordering::Acquire) {
            return;
        }
        *self.limit() = Some((per_sec, reset));
        self.nudge();
    }

    fn waiting(&self) {
        if !self.local.load(Ordering::Acquire) && !self.waiting.swap(true, Ordering::AcqRel) {
            self.nudge();
        }
    }
}
