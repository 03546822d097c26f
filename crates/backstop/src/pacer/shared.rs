//! A pace shared with other processes: the store that keeps it
//! ([`PacerStore`]) and the handle the store drives the local pacer with
//! ([`SharedPacer`]). The pacer reports to the store through a
//! [`PacerLink`](super::PacerLink).
//!
//! backstop itself knows no store; `backstop-redis` is one. The division of
//! work keeps every call local:
//!
//! - The fleet learns one rate, as one pacer would (CUBIC), from what every
//!   process reports: refusals ([`PacerLink::throttled`]), stated limits
//!   ([`PacerLink::limited`]), and the sends and successes the store takes
//!   from this handle ([`take_sends`](SharedPacer::take_sends),
//!   [`take_successes`](SharedPacer::take_successes)).
//! - Until the fleet paces, calls go at once, as with a local pacer (one
//!   atomic load, one atomic add).
//! - While it paces, slots are the fleet's: the store reserves runs of
//!   them on the fleet's one time line (GCRA) and hands them to this pacer
//!   with [`grant`](SharedPacer::grant), sized to this process's demand
//!   ([`slots_wanted`](SharedPacer::slots_wanted)). Callers wait for their
//!   slot locally; a caller beyond the last grant waits for the next one
//!   (the pacer tells the store with [`PacerLink::waiting`]). Granted slots
//!   nobody takes in time are skipped, never sent late in a bunch.
//! - A store that loses its connection turns the pacer
//!   [`local`](SharedPacer::go_local), at its share of the fleet's last
//!   rate; it adapts alone from there until the store is back.

use std::fmt;
use std::sync::Arc as StdArc;
use std::time::Duration;

use super::link::PacerLink;
use super::{BETA, C, EPOCH, Pacer, interval_of, nanos};
use crate::sync::{Arc, Ordering, lock};

/// A store of pace shared by many processes (such as
/// `backstop_redis::Fleet`); given to
/// [`PacerBuilder::shared`](super::PacerBuilder::shared).
///
/// `Send + Sync`: a builder holding a store may build on another thread
/// (backstop's Python package builds without holding the GIL).
pub trait PacerStore: Send + Sync {
    /// Takes a new pacer into the store: the store keeps `pacer` to drive
    /// it, and returns the link the pacer reports to. Called once, by
    /// `build()`; it may wait a short, bounded time (to learn the fleet's
    /// rate before the first call).
    fn share_pacer(&self, pacer: SharedPacer) -> StdArc<dyn PacerLink>;
}

/// A store's handle on a shared pacer: reads what the store reports and
/// makes the pacer follow the fleet. Holding it does not keep the pacer in
/// use: [`is_orphaned`](Self::is_orphaned) says when every `Pacer` clone is
/// gone, and the store should then drop it.
#[derive(Clone)]
pub struct SharedPacer {
    pacer: Pacer,
}

impl SharedPacer {
    pub(super) fn new(pacer: Pacer) -> Self {
        Self { pacer }
    }

    /// The pacer's name (shared pacers with one name share one pace).
    pub fn name(&self) -> &str {
        self.pacer.name()
    }

    /// The lowest rate, calls per second (`min_rate`).
    pub fn min_rate(&self) -> f64 {
        self.pacer.inner.min_rate
    }

    /// The highest rate, calls per second (`max_rate`).
    pub fn max_rate(&self) -> f64 {
        self.pacer.inner.max_rate
    }

    /// The rate to pace at from the start (`initial_rate`), if any.
    pub fn initial_rate(&self) -> Option<f64> {
        self.pacer.inner.initial_rate
    }

    /// How many calls may go at once after a quiet spell (`burst`).
    pub fn burst(&self) -> u32 {
        self.pacer.inner.burst
    }

    /// The shortest time between two decreases (`min_decrease_interval`).
    pub fn min_decrease_interval(&self) -> Duration {
        self.pacer.inner.min_decrease_interval
    }

    /// The rate the pacer lets through now (see [`Pacer::rate`]).
    pub fn rate(&self) -> Option<f64> {
        self.pacer.rate()
    }

    /// Whether every [`Pacer`] using this pace is gone, so that only store
    /// handles hold it.
    pub fn is_orphaned(&self) -> bool {
        Arc::strong_count(&self.pacer.inner) == 1
    }

    /// Calls this process sent since the last call (for the fleet's
    /// measured rate).
    pub fn take_sends(&self) -> u64 {
        self.pacer.flush_idle(self.pacer.now_nanos());
        self.pacer.inner.sends.swap(0, Ordering::AcqRel)
    }

    /// Successes while pacing since the last call (the fleet's rate grows
    /// only while calls succeed).
    pub fn take_successes(&self) -> u64 {
        self.pacer.inner.successes.swap(0, Ordering::AcqRel)
    }

    /// Calls this process sent per second, over the last two seconds.
    pub fn measured_rate(&self) -> f64 {
        self.pacer.measured(self.pacer.now_nanos())
    }

    /// How many slots to ask the fleet for, to cover the callers waiting
    /// now and `span` more of this process's recent demand, less the granted
    /// slots not handed out yet. Zero while the pacer does not follow the
    /// fleet.
    pub fn slots_wanted(&self, span: Duration) -> u64 {
        let s = lock(&self.pacer.inner.schedule);
        if !s.is_following() {
            return 0;
        }
        let coming = (self.measured_rate() * span.as_secs_f64()).ceil() as u64;
        s.pending() + coming.saturating_sub(s.unused())
    }

    /// The fleet's rate: `None` while the fleet does not pace (calls go at
    /// once), or calls per second for the whole fleet, which this pacer
    /// then takes its slots from.
    pub fn follow(&self, fleet_rate: Option<f64>) {
        let pacer = &self.pacer;
        let now = pacer.now_nanos();
        match fleet_rate {
            Some(rate) => pacer.follow_locked(now, rate),
            None => {
                let mut s = lock(&pacer.inner.schedule);
                s.unfollow(now, 0);
                pacer.inner.interval.store(0, Ordering::Release);
            }
        }
    }

    /// Slots the fleet reserved for this process: `count` of them, the
    /// first `wait` from now, the others one slot of `fleet_rate` apart,
    /// each usable until `late` after its time (a process whose callers come
    /// slower than the fleet's rate uses its run at its own pace; the fleet
    /// then sends up to `late` of its rate in a bunch, never more slots).
    /// They go to the callers waiting longest. A run never starts before
    /// the previous one ends (less the pacer's burst): the pacer's own
    /// `max_rate` spaces the slots, and it holds across runs.
    pub fn grant(&self, wait: Duration, count: u64, fleet_rate: f64, late: Duration) {
        let pacer = &self.pacer;
        let inner = &*pacer.inner;
        let interval = interval_of(fleet_rate.clamp(inner.min_rate, inner.max_rate));
        let at = pacer.now_nanos().saturating_add(nanos(wait));
        let tolerance = interval.saturating_mul(u64::from(inner.burst - 1));
        let mut s = lock(&inner.schedule);
        if s.is_following() {
            s.grant(at, count, interval, nanos(late), tolerance);
        }
    }

    /// The store lost its connection: the pacer works alone, as a local
    /// pacer with the same settings, at `per_sec` (its share of the
    /// fleet's last rate), or not pacing (`None`) until throttled. Slots
    /// already granted keep their times.
    pub fn go_local(&self, per_sec: Option<f64>) {
        let pacer = &self.pacer;
        let inner = &*pacer.inner;
        if !inner.shared.swap(false, Ordering::AcqRel) {
            return;
        }
        let now = pacer.now_nanos();
        let rate = per_sec.map(|r| r.clamp(inner.min_rate, inner.max_rate));
        if let Some(rate) = rate {
            // Pace alone from `rate`, as if it had been regained after a
            // decrease: the cubic's plateau, growing slowly past it.
            let mut adapt = lock(&inner.adapt);
            adapt.last_max = rate;
            adapt.k = (rate * (1.0 - BETA) / C).cbrt();
            adapt.last_decrease = now.saturating_sub((adapt.k * 1e9) as u64).max(EPOCH);
            adapt.decreased = true;
        }
        let interval = rate.map_or(0, interval_of);
        let mut s = lock(&inner.schedule);
        s.unfollow(now, interval);
        inner.interval.store(interval, Ordering::Release);
    }

    /// The store is back: the fleet decides the rate again (the store then
    /// calls [`follow`](Self::follow)). Returns whether the pacer was local
    /// until now.
    pub fn go_shared(&self) -> bool {
        !self.pacer.inner.shared.swap(true, Ordering::AcqRel)
    }

    /// Whether the pacer works alone (see [`go_local`](Self::go_local)).
    pub fn is_local(&self) -> bool {
        !self.pacer.inner.shared.load(Ordering::Acquire)
    }
}

impl fmt::Debug for SharedPacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPacer")
            .field("name", &self.name())
            .field("rate", &self.rate())
            .field("local", &self.is_local())
            .finish()
    }
}
