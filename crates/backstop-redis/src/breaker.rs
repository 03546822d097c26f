//! One shared breaker's part of the fleet: the [`BreakerLink`] its
//! `CircuitBreaker` reports to, and the sync the fleet's thread runs for it.
//!
//! The fleet's circuit lives in Redis (see [`scripts`](crate::scripts)):
//! closed, open until a time on Redis's clock, or isolated, with a probe
//! lease. This process's breaker decides its own calls; what it decides
//! (a trip, a probe's verdict) is queued here and sent by the thread; what
//! the others decided is read every refresh and followed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use backstop::breaker::{BreakerEvent, BreakerLink, CircuitState, SharedBreaker, Transition};
use redis::RedisError;

use crate::hub::{Hub, Io, Member};
use crate::scripts::{self, BREAKER_PROBE, BREAKER_READ, BREAKER_SET, BREAKER_TRIP, BREAKER_VERDICT};
use crate::settings::millis;

/// News for the fleet, from this process's breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Report {
    /// It tripped: open the fleet's circuit for this long.
    Trip(Duration),
    /// Its probe closed it, or re-opened it for this long.
    Verdict { close: bool, period: Duration },
    /// `reset()` (0) or `isolate()` (3).
    Set(u8),
}

pub(crate) struct BreakerShare {
    name: String,
    /// The local breaker; `None` once detached (its users are gone, or the
    /// fleet stopped): the breaker holds this share as its link, so the
    /// share must let go for both to be freed.
    breaker: Mutex<Option<SharedBreaker>>,
    keys: [String; 2],
    hub: Weak<Hub>,
    reports: Mutex<Vec<Report>>,
    /// Working alone: Redis is gone.
    local: AtomicBool,
    /// A call found the open period over and asked for the probe.
    wants_probe: AtomicBool,
    /// Until when (ns on the hub's clock) this process holds the probe; 0: not.
    probe_until: AtomicU64,
    /// When the probe was last asked for (ns on the hub's clock).
    asked_at: AtomicU64,
}

impl BreakerShare {
    pub(crate) fn new(breaker: SharedBreaker, hub: &Arc<Hub>) -> Self {
        let name = breaker.name().to_owned();
        BreakerShare {
            breaker: Mutex::new(Some(breaker)),
            keys: [scripts::key("breaker", &name), scripts::key("probe", &name)],
            name,
            hub: Arc::downgrade(hub),
            reports: Mutex::new(Vec::new()),
            local: AtomicBool::new(false),
            wants_probe: AtomicBool::new(false),
            probe_until: AtomicU64::new(0),
            asked_at: AtomicU64::new(0),
        }
    }

    fn reports(&self) -> std::sync::MutexGuard<'_, Vec<Report>> {
        self.reports.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The local breaker, unless detached.
    fn handle(&self) -> Option<SharedBreaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn holds_probe(&self, hub: &Hub) -> bool {
        hub.now() < self.probe_until.load(Ordering::Acquire)
    }

    /// Queues news for the fleet and wakes the fleet's thread.
    fn report(&self, report: Report) {
        self.reports().push(report);
        if let Some(hub) = self.hub.upgrade() {
            hub.nudge();
        }
    }
}

impl Member for BreakerShare {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_orphaned(&self) -> bool {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_none_or(SharedBreaker::is_orphaned)
    }

    fn detach(&self) {
        self.local.store(true, Ordering::Release);
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner).take();
    }

    fn go_local(&self) {
        self.local.store(true, Ordering::Release);
        self.reports().clear();
        self.probe_until.store(0, Ordering::Release);
    }

    /// Back from an outage: the fleet's state wins (the next pass reads it
    /// and follows it); what this process decided alone meanwhile is dropped.
    fn rejoin(&self) {
        self.reports().clear();
        self.probe_until.store(0, Ordering::Release);
        self.local.store(false, Ordering::Release);
    }

    /// Sends this breaker's news, asks for the probe if a call wants it,
    /// and (on a full pass) reads the fleet's state and follows it.
    fn sync(&self, io: &mut Io<'_>, full: bool) -> Result<(), RedisError> {
        let Some(breaker) = self.handle() else { return Ok(()) };
        let (hub, ttl) = (io.hub, io.hub.settings.ttl_ms());
        let reports = std::mem::take(&mut *self.reports());
        for report in reports {
            match report {
                Report::Trip(period) => {
                    let _: Vec<i64> = io.conn.run(&BREAKER_TRIP, &hub.round_trips, |s| {
                        s.key(&self.keys[0]).key(&self.keys[1]).arg(millis(period)).arg(ttl);
                    })?;
                }
                Report::Verdict { close, period } => {
                    self.probe_until.store(0, Ordering::Release);
                    let _: i64 = io.conn.run(&BREAKER_VERDICT, &hub.round_trips, |s| {
                        s.key(&self.keys[0]).key(&self.keys[1]);
                        s.arg(&hub.token).arg(u8::from(close)).arg(millis(period)).arg(ttl);
                    })?;
                }
                Report::Set(state) => {
                    self.probe_until.store(0, Ordering::Release);
                    let _: i64 = io.conn.run(&BREAKER_SET, &hub.round_trips, |s| {
                        s.key(&self.keys[0]).key(&self.keys[1]).arg(state).arg(ttl);
                    })?;
                }
            }
        }
        // A probe is asked for at most once a refresh (a refusal means
        // another process holds it, or the period is not over on Redis's
        // clock), so a crowd of rejected calls costs one round trip.
        let refresh = u64::try_from(hub.settings.refresh.as_nanos()).unwrap_or(u64::MAX);
        let may_ask = hub.now().saturating_sub(self.asked_at.load(Ordering::Relaxed)) >= refresh;
        if may_ask && self.wants_probe.swap(false, Ordering::AcqRel) && !self.holds_probe(hub) {
            self.asked_at.store(hub.now(), Ordering::Relaxed);
            let lease = hub.settings.probe_lease;
            let won: i64 = io.conn.run(&BREAKER_PROBE, &hub.round_trips, |s| {
                s.key(&self.keys[0]).key(&self.keys[1]).arg(&hub.token).arg(millis(lease));
            })?;
            if won == 1 {
                // Give the lease up locally a little early: a verdict sent
                // at the last moment could reach Redis after it expired.
                let keep = lease.saturating_sub(hub.settings.timeout * 2);
                let until = hub.now().saturating_add(u64::try_from(keep.as_nanos()).unwrap_or(u64::MAX));
                self.probe_until.store(until, Ordering::Release);
            }
        }
        if !full {
            return Ok(());
        }
        let [state, left, _gen, _probing]: [i64; 4] = io.conn.run(&BREAKER_READ, &hub.round_trips, |s| {
            s.key(&self.keys[0]).key(&self.keys[1]);
        })?;
        if !self.reports().is_empty() {
            return Ok(()); // news since: send it first, follow next pass
        }
        // While this process holds the probe, its verdict decides; a
        // half-open breaker whose lease is gone goes back to open.
        let probing_here = breaker.state() == CircuitState::HalfOpen && self.holds_probe(hub);
        match state {
            // Redis has no state for this breaker (it restarted empty, or
            // the key expired): an open breaker says so again, rather than
            // take the silence for a close.
            -1 => match breaker.state() {
                CircuitState::Open | CircuitState::HalfOpen => {
                    let left = breaker.open_remaining().unwrap_or_default();
                    self.report(Report::Trip(left.max(Duration::from_millis(1))));
                }
                CircuitState::Isolated => self.report(Report::Set(3)),
                CircuitState::Closed => {}
            },
            0 => {
                breaker.follow_closed();
            }
            1 if !probing_here => {
                breaker.follow_open(Duration::from_millis(left.unsigned_abs()));
            }
            3 => {
                breaker.follow_isolated();
            }
            _ => {}
        }
        Ok(())
    }
}

impl BreakerLink for BreakerShare {
    fn changed(&self, event: &BreakerEvent<'_>) {
        if self.local.load(Ordering::Acquire) {
            return;
        }
        let period = event.open_for.unwrap_or_default();
        match event.cause {
            Transition::ProbeFailed => self.report(Report::Verdict { close: false, period }),
            Transition::ProbesSucceeded(_) => self.report(Report::Verdict { close: true, period }),
            Transition::Reset => self.report(Report::Set(0)),
            Transition::Isolated => self.report(Report::Set(3)),
            Transition::OpenPeriodOver | Transition::Shared => {}
            // ConsecutiveFailures, FailureRate, SlowCallRate, and any trip
            // rule to come.
            _ if event.to == CircuitState::Open => self.report(Report::Trip(period)),
            _ => {}
        }
    }

    fn may_probe(&self) -> bool {
        if self.local.load(Ordering::Acquire) {
            return true;
        }
        let Some(hub) = self.hub.upgrade() else {
            return true; // the fleet is gone: alone for good
        };
        if self.holds_probe(&hub) {
            return true;
        }
        if !self.wants_probe.swap(true, Ordering::AcqRel) {
            hub.nudge();
        }
        false
    }
}
