//! Client-side adaptive rate limiting: wait locally and send at the rate the
//! downstream accepts, instead of sending and being refused. [`Pacer`].
//!
//! Retries alone cannot beat a rate limiter: they only choose when to be
//! refused. A pacer learns the rate a server accepts and spaces every call
//! (first attempts and retries alike) to it. Callers *wait* for their slot —
//! never longer than the run's deadline — rather than being refused.
//!
//! # How it learns
//!
//! The shape is the AWS SDKs' "adaptive" retry mode, itself TCP CUBIC
//! (RFC 8312) applied to request rates:
//!
//! - Until the first throttling response the pacer does nothing at all: a
//!   healthy call pays one atomic load and one atomic add (the measured send
//!   rate).
//! - On throttling (a [`Verdict`] that [is a refusal](Verdict::is_refusal):
//!   429, `SlowDown`, `Retry-After`) it remembers the rate it was sending at
//!   as `max`, and drops to `β · max` (β = 0.7). Refusals of calls that were
//!   already queued at the old rate say nothing new, so a decrease waits
//!   until those have gone out (and at least `min_decrease_interval`).
//! - On success the allowed rate grows along the cubic
//!   `C · (t − K)³ + max` (C = 0.4, K = ∛(max · (1 − β) / C)): fast back to
//!   the rate that last worked, then cautiously past it — never above twice
//!   the rate actually being sent, so an idle client does not talk itself
//!   into a burst.
//! - A server that says its limits (`RateLimit`, `RateLimit-Policy`,
//!   `X-RateLimit-Remaining`/`-Reset`; `backstop::http::rate_limit` reads
//!   them, feature `http`) caps the rate at `remaining / reset` at once,
//!   through [`Pacer::observe_limit`], without waiting to be refused.
//!
//! # How it measures what it sends
//!
//! The rate remembered at a refusal, and the cap on growth, read the rate
//! the pacer *measures*: the calls it sent (counted as they go) in its last
//! 2 s, kept in eight 250 ms slices from its creation, divided by the time
//! those slices cover (1.75 s to 2 s: the oldest slice is partly gone), or
//! by the pacer's life if shorter, but at least 0.1 s. A steady 100 calls a
//! second reads 100 at any moment, within one call in 1.75 s. A shared
//! pacer's fleet measures what the whole fleet sends by the same rule, from
//! the sends every process reports. The AWS SDKs measure otherwise:
//! botocore's `RateClocker` counts *answers* in 0.5 s buckets and smooths
//! the buckets' rates (0.8 of the newest, 0.2 of what it read before,
//! starting from 0), so a first refusal remembers less than was sent (41.6/s
//! where 52/s was sent and the pacer remembers 52/s), and the SDKs decrease
//! at every refusal where the pacer merges those within
//! `min_decrease_interval` (500 ms; [`PacerBuilder::min_decrease_interval`]
//! `(Duration::ZERO)` gives the SDKs' rule). Replayed in virtual time
//! against a server that accepts 25 calls in any sliding second, a client
//! wanting 50 a second settles in both at a remembered 25.0/s, the pacer
//! accepted 23.0/s with 1.4 % refused and botocore 22.9/s with 1.6 %
//! (`backstop-bench`'s `pacer_rule`, whose port of botocore's limiter gives
//! botocore's own rates, refusal for refusal); on nginx's `limit_req`, see
//! BENCHMARKS.md.
//!
//! CUBIC rather than AIMD (the simpler additive-increase/multiplicative-
//! decrease): after a decrease AIMD climbs back linearly, so at 50 requests a
//! second one throttling event costs tens of seconds below the limit; CUBIC
//! regains the last good rate in `K` seconds (≈ 3.3 s at 50/s) and probes
//! above it slowly. Both are in the AWS SDKs' history; the SDKs settled on
//! CUBIC.
//!
//! The spacing is a queue of numbered slots: a caller takes the next
//! number and its time is `anchor + (number − anchor number) · interval`,
//! computed afresh whenever the caller looks. When the rate changes, the
//! anchor moves to now and every caller still waiting is re-spaced at the
//! new rate at once (with fixed reservations, calls queued at the old rate
//! would keep going out at it, and keep being refused). While not pacing,
//! a call costs one atomic load and one atomic add; while pacing, a short
//! critical section. Nothing allocates.
//!
//! # Shared by a fleet
//!
//! [`PacerBuilder::shared`] gives the pacer to a store (such as
//! `backstop_redis::Fleet`) so that many processes learn one rate and take
//! their slots from one time line: together they send at the rate the
//! server accepts, not each of them. Calls still wait locally; see
//! [`SharedPacer`] for the division of work.
//!
//! # Pacer or adaptive throttle?
//!
//! A [`Pacer`] makes callers **wait** and sends everything, later: right for
//! pipelines and batch jobs (S3 uploads, API crawls) where the work must be
//! done and latency can stretch. An [`AdaptiveThrottle`](crate::AdaptiveThrottle)
//! **rejects** locally: right for request-serving code that must answer now
//! and should shed load instead of queueing it. Both can guard one run.
//!
//! ```
//! use std::time::Duration;
//! use backstop::{ManualClock, Pacer, RetryPolicy, Verdict};
//!
//! let clock = ManualClock::new();
//! let pacer = Pacer::builder("weather_api").initial_rate(2.0).burst(1).clock(&clock).build()?;
//! let policy = RetryPolicy::builder().seed(1).build()?;
//! for _ in 0..5 {
//!     policy.retry(|| Ok::<_, &str>(())).pacer(&pacer).clock(&clock).call().unwrap();
//! }
//! // 5 calls at 2 per second: 4 waits of 0.5 s.
//! assert_eq!(clock.elapsed(), Duration::from_secs(2));
//! # Ok::<(), backstop::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc as StdArc;
use std::time::{Duration, Instant};

mod idle;
mod link;
mod schedule;
mod shared;

pub use link::PacerLink;
pub use shared::{PacerStore, SharedPacer};

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::sliding::SlidingCounts;
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex, Ordering, lock};
use crate::verdict::Verdict;
use idle::IdleSends;
use schedule::{PENDING, Schedule};

/// CUBIC's multiplicative decrease.
const BETA: f64 = 0.7;
/// CUBIC's scaling constant.
const C: f64 = 0.4;
/// The window over which the send rate is measured.
const MEASURE_WINDOW: Duration = Duration::from_secs(2);

/// An adaptive client-side rate limiter shared by every call to one
/// downstream; see the [module docs](self). `Clone` shares it; it is
/// `Send + Sync`.
#[derive(Clone)]
pub struct Pacer {
    inner: Arc<Inner>,
}

struct Inner {
    name: StdArc<str>,
    clock: StdArc<dyn Clock>,
    origin: Instant,
    /// Nanoseconds between sends; 0 while not pacing. (A copy of
    /// `schedule.interval`, read without the lock.)
    interval: AtomicU64,
    schedule: Mutex<Schedule>,
    /// Sends in the recent past, to measure the rate actually sent.
    sent: SlidingCounts<1>,
    /// Sends while not pacing, counted without a clock read and moved into
    /// `sent` now and then (see [`idle`]).
    idle: IdleSends,
    burst: u32,
    min_rate: f64,
    max_rate: f64,
    min_decrease_interval: Duration,
    initial_rate: Option<f64>,
    adapt: Mutex<Adapt>,
    /// The store of a shared pacer, set once by `build()`.
    link: std::sync::OnceLock<StdArc<dyn PacerLink>>,
    /// Shared and with its store: the fleet sets the rate and grants the
    /// slots, and refusals and successes go to the store.
    shared: AtomicBool,
    /// Sends and successes (while pacing) since the store last took them.
    sends: AtomicU64,
    successes: AtomicU64,
}

/// A caller's place in a [`Pacer`]'s queue, from [`Pacer::take_slot`]; ask
/// [`Pacer::wait`] how long until it comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(u64);

/// The CUBIC state, touched only on throttling and on successes while pacing.
struct Adapt {
    /// The rate at the last decrease (CUBIC's `W_max`).
    last_max: f64,
    /// When the last decrease happened (ns since origin).
    last_decrease: u64,
    /// `K`: seconds from the decrease to regaining `last_max`.
    k: f64,
    /// Whether any decrease happened (before it, an initial rate holds).
    decreased: bool,
    /// A ceiling from the server's own `RateLimit` headers, and until when.
    ceiling: Option<(f64, u64)>,
}

impl fmt::Debug for Pacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pacer").field("name", &self.inner.name).field("rate", &self.rate()).finish_non_exhaustive()
    }
}

/// Pacer time starts here rather than at 0, so an anchor may lie before the
/// pacer was made (a burst is allowed from the start): 250 000 s, past the
/// longest burst tolerance most settings give (2 s between slots × 100 000
/// slots; longer ones are cut to it), and a whole number of the measuring
/// window's slices, so they start at the pacer's creation.
const EPOCH: u64 = 250_000 * 1_000_000_000;

/// The lowest rate a pacer may be set to: one call in 1 000 s.
const MIN_RATE: f64 = 1e-3;
/// The highest rate a pacer may be set to.
const MAX_RATE: f64 = 1e9;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn interval_of(rate: f64) -> u64 {
    // `rate` is within [min_rate, max_rate], both validated finite and > 0.
    ((1e9 / rate) as u64).max(1)
}

impl Pacer {
    /// A pacer named `name` (in logs), with the defaults: not pacing until
    /// the first throttling response, rates between 0.5 and 100 000 per
    /// second, a burst of 10 calls, decreases at most every 500 ms.
    pub fn builder(name: impl Into<StdArc<str>>) -> PacerBuilder {
        PacerBuilder {
            name: name.into(),
            clock: StdArc::new(SystemClock),
            initial_rate: None,
            min_rate: 0.5,
            max_rate: 100_000.0,
            burst: 10,
            min_decrease_interval: Duration::from_millis(500),
            store: None,
        }
    }

    /// The pacer's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The calls per second it lets through now, or `None` while it is not
    /// pacing (no throttling seen yet). A shared pacer following its fleet
    /// answers the fleet's rate (the whole fleet's, not this process's).
    pub fn rate(&self) -> Option<f64> {
        match self.inner.interval.load(Ordering::Acquire) {
            0 => None,
            i => Some(1e9 / i as f64),
        }
    }

    /// Nanoseconds on the pacer's own time line (see [`EPOCH`]).
    fn now_nanos(&self) -> u64 {
        nanos(self.inner.clock.now().saturating_duration_since(self.inner.origin)).saturating_add(EPOCH)
    }

    /// Counts a call as sent: for the measured rate, and for the store.
    #[inline]
    fn count_sent(&self, now: u64) {
        self.add_sent(now, 1);
    }

    /// Counts `calls` as sent at `now`.
    fn add_sent(&self, now: u64, calls: u64) {
        self.add_to_window(now, calls);
        self.add_to_store(calls);
    }

    /// Adds `calls` to the window that measures the rate sent.
    fn add_to_window(&self, now: u64, calls: u64) {
        if calls > 0 {
            self.inner.sent.add(now, [u32::try_from(calls).unwrap_or(u32::MAX)]);
        }
    }

    /// Adds `calls` to the sends the store takes (a shared pacer's).
    fn add_to_store(&self, calls: u64) {
        if calls > 0 && self.inner.link.get().is_some() {
            self.inner.sends.fetch_add(calls, Ordering::Relaxed);
        }
    }

    /// `true` when the pacer is not pacing: the call may go now, and is
    /// counted as sent (without a clock read, but now and then; see [`idle`]).
    #[inline]
    pub(crate) fn go_if_idle(&self) -> bool {
        if self.inner.interval.load(Ordering::Acquire) != 0 {
            return false;
        }
        if let Some((stripe, counted)) = self.inner.idle.count() {
            self.sample_idle(stripe, counted);
        }
        true
    }

    /// An idle stripe's turn to read the clock: its sends go into the window.
    #[cold]
    #[inline(never)]
    fn sample_idle(&self, stripe: usize, counted: u64) {
        let now = self.now_nanos();
        self.add_sent(now, self.inner.idle.sample(stripe, counted, now));
    }

    /// Moves the idle sends not yet counted into the window, before it is read.
    fn flush_idle(&self, now: u64) {
        // The share of a stripe's old remainder that falls in the time the
        // window's slices cover (what `measured` divides by).
        let (sent, in_window) = self.inner.idle.flush(now, self.inner.sent.covered(now));
        self.add_to_window(now, in_window);
        self.add_to_store(sent);
    }

    /// Takes a place in the queue, or `None` when the pacer is not pacing
    /// and the call may go now (it is counted as sent). A caller that gives
    /// up before its slot comes should [`release`](Self::release) it.
    #[inline]
    pub fn take_slot(&self) -> Option<Slot> {
        if self.go_if_idle() {
            return None;
        }
        let now = self.now_nanos();
        let slot = self.take_locked(&mut lock(&self.inner.schedule), now);
        if slot.is_none() {
            self.count_sent(now);
        }
        slot.map(Slot)
    }

    /// For a run: the slot it holds (or a new one) and how long until it is
    /// due, with one clock read and at most one lock. `(None, ZERO)`: go now
    /// (counted as sent).
    #[inline]
    pub(crate) fn turn(&self, held: Option<Slot>) -> (Option<Slot>, Duration) {
        let inner = &*self.inner;
        if held.is_none() && self.go_if_idle() {
            return (None, Duration::ZERO);
        }
        let now = self.now_nanos();
        let mut s = lock(&inner.schedule);
        let slot = match held {
            Some(slot) => Some(slot.0),
            None => self.take_locked(&mut s, now),
        };
        let wait = slot.map_or(0, |slot| self.until(&s, slot, now));
        drop(s);
        match slot {
            Some(slot) if wait > 0 => (Some(Slot(slot)), Duration::from_nanos(wait)),
            _ => {
                self.count_sent(now);
                (None, Duration::ZERO)
            }
        }
    }

    /// Nanoseconds until `slot` is due. A slot no grant of the fleet covers
    /// yet is asked for, and its caller looks again a little later.
    fn until(&self, s: &Schedule, slot: u64, now: u64) -> u64 {
        match s.due(slot) {
            PENDING => {
                if let Some(link) = self.inner.link.get() {
                    link.waiting();
                }
                s.pending_wait(slot)
            }
            due => due.saturating_sub(now),
        }
    }

    /// The next slot number, with the queue locked; `None` when not pacing.
    fn take_locked(&self, s: &mut Schedule, now: u64) -> Option<u64> {
        if s.interval == 0 {
            return None;
        }
        let tolerance = s.interval.saturating_mul(u64::from(self.inner.burst - 1));
        if s.is_following() {
            // Granted slots go up to a burst's tolerance late (at least two
            // slots, and 2 ms: at high rates a thread's wake-up is later).
            s.expire(now, tolerance.max(2 * s.interval).max(2_000_000));
        }
        // A slot someone gave up, still to come, goes first.
        if !s.released.is_empty() {
            let mut released = std::mem::take(&mut s.released);
            let reuse = released.iter().copied().filter(|&slot| s.to_come(slot, now)).min();
            released.retain(|&slot| Some(slot) != reuse && s.to_come(slot, now));
            s.released = released;
            if reuse.is_some() {
                return reuse;
            }
        }
        let slot = s.next;
        s.next += 1;
        if s.running_low() {
            if let Some(link) = self.inner.link.get() {
                link.waiting();
            }
        }
        // After a quiet spell, let at most `burst` calls go at once.
        if s.is_local() && s.due(slot).saturating_add(tolerance) < now {
            s.anchor = slot;
            s.anchor_at = now.saturating_sub(tolerance);
        }
        Some(slot)
    }

    /// Gives back a slot its caller will not use (it gave up before its
    /// turn): the next caller takes it, so abandoned callers do not hold up
    /// the queue. (A retry run does this when its future is dropped.)
    pub fn release(&self, slot: Slot) {
        let now = self.now_nanos();
        let mut s = lock(&self.inner.schedule);
        if s.to_come(slot.0, now) && s.due(slot.0) > now {
            s.released.push(slot.0);
        }
    }

    /// How long until `slot` may go. Ask again after waiting (a rate change
    /// since moves it) until it answers zero, then send: that answer counts
    /// the call as sent, for the measured rate. (A shared pacer's slot that
    /// waits for the fleet's grant answers a short wait: look again then.)
    pub fn wait(&self, slot: Slot) -> Duration {
        let now = self.now_nanos();
        let wait = self.until(&lock(&self.inner.schedule), slot.0, now);
        if wait > 0 {
            return Duration::from_nanos(wait);
        }
        self.count_sent(now);
        Duration::ZERO
    }

    /// Takes a slot and says how long until it is due (zero when not
    /// pacing), counting the call as sent: for callers that wait once and
    /// go, without asking again. (A shared pacer's slot that waits for the
    /// fleet's grant answers when it would come at the fleet's rate, after
    /// the slots granted: prefer [`take_slot`](Self::take_slot) and
    /// [`wait`](Self::wait), as runs do, which follow the grants exactly.)
    pub fn reserve(&self) -> Duration {
        let now = self.now_nanos();
        let mut s = lock(&self.inner.schedule);
        let wait = self.take_locked(&mut s, now).map_or(0, |slot| match s.due(slot) {
            // Not granted yet: the caller will not ask again, so it gets
            // the time its slot would come at the fleet's rate (and the
            // fleet is asked for it).
            PENDING => {
                let _ = self.until(&s, slot, now);
                s.pending_estimate(slot, now).saturating_sub(now)
            }
            due => due.saturating_sub(now),
        });
        drop(s);
        self.count_sent(now);
        Duration::from_nanos(wait)
    }

    /// Whether the fleet decides the rate (shared, and with its store).
    fn follows_fleet(&self) -> bool {
        self.inner.shared.load(Ordering::Acquire)
    }

    /// Learns from a failed call's verdict: a refusal (`Throttled`,
    /// `RetryAfter`) lowers the rate; other verdicts say nothing about it.
    /// (The refused call itself waits out its hint in its own run.) A
    /// shared pacer tells its fleet, and waits for the fleet's slots from
    /// then on.
    pub fn record(&self, verdict: Verdict) {
        if !verdict.is_refusal() {
            return;
        }
        if self.follows_fleet() {
            if let Some(link) = self.inner.link.get() {
                link.throttled();
            }
            let now = self.now_nanos();
            let guess = self.rate().unwrap_or_else(|| self.measured(now) * BETA);
            self.follow_locked(now, guess);
        } else {
            self.throttled();
        }
    }

    /// Learns from a success: while pacing, the rate grows along the cubic
    /// (a shared pacer counts it for the fleet, which grows the rate).
    #[inline]
    pub fn record_success(&self) {
        if self.inner.interval.load(Ordering::Relaxed) != 0 {
            if self.follows_fleet() {
                self.inner.successes.fetch_add(1, Ordering::Relaxed);
            } else {
                self.grow();
            }
        }
    }

    /// Caps the rate from what the server said of its limits: `remaining`
    /// calls allowed in the next `reset` (`backstop::http::rate_limit` reads
    /// them from a response's headers). Starts pacing if the cap is below the
    /// rate being sent; the cap holds until `reset` has passed. A shared
    /// pacer gives the cap to its fleet (the server's limit is the fleet's).
    pub fn observe_limit(&self, remaining: u64, reset: Duration) {
        let now = self.now_nanos();
        let secs = reset.as_secs_f64().max(0.001);
        let ceiling = (remaining as f64 / secs).clamp(self.inner.min_rate, self.inner.max_rate);
        let sending = self.rate().unwrap_or_else(|| self.measured(now));
        if self.follows_fleet() {
            if let Some(link) = self.inner.link.get() {
                link.limited(ceiling, reset);
            }
            if ceiling < sending {
                self.follow_locked(now, ceiling);
            }
            return;
        }
        let until = now.saturating_add(nanos(reset));
        let mut adapt = lock(&self.inner.adapt);
        adapt.ceiling = Some((ceiling, until));
        if ceiling < sending {
            // Like a decrease: once the window resets, the rate grows back
            // towards what was being sent (and no further than the server
            // then says).
            adapt.last_max = sending.clamp(self.inner.min_rate, self.inner.max_rate);
            adapt.last_decrease = now;
            adapt.decreased = true;
            adapt.k = (adapt.last_max * (1.0 - BETA) / C).cbrt();
            drop(adapt);
            self.set_rate(ceiling);
        }
    }

    /// Calls sent per second: the sends in the measuring window's slices,
    /// divided by the time those slices cover (1.75–2 s: the oldest slice
    /// is partly gone), or by the pacer's life if shorter, but at least
    /// 0.1 s (a burst in the first 50 ms is not read as thousands a
    /// second). See the module docs, *How it measures*.
    fn measured(&self, now: u64) -> f64 {
        self.flush_idle(now);
        let [sent] = self.inner.sent.totals(now);
        let covered = self.inner.sent.covered(now).min(now.saturating_sub(EPOCH));
        f64::from(sent) / (covered as f64 / 1e9).max(0.1)
    }

    fn throttled(&self) {
        let inner = &*self.inner;
        let now = self.now_nanos();
        let mut adapt = lock(&inner.adapt);
        let pacing = self.rate();
        let recent = adapt.decreased && now.saturating_sub(adapt.last_decrease) < nanos(inner.min_decrease_interval);
        if pacing.is_some() && recent {
            return; // calls sent at the old rate: the same event
        }
        let measured = self.measured(now);
        let sending = pacing.map_or(measured, |r| r.min(measured.max(inner.min_rate)));
        adapt.last_max = sending.max(inner.min_rate);
        adapt.last_decrease = now;
        adapt.decreased = true;
        adapt.k = (adapt.last_max * (1.0 - BETA) / C).cbrt();
        let rate = (adapt.last_max * BETA).clamp(inner.min_rate, inner.max_rate);
        drop(adapt);
        self.set_rate(rate);
    }

    fn grow(&self) {
        let inner = &*self.inner;
        let now = self.now_nanos();
        let Some(mut adapt) = inner.adapt.try_lock().ok() else {
            return; // another success is already growing it
        };
        if !adapt.decreased {
            return; // an initial rate holds until the first throttling
        }
        let t = now.saturating_sub(adapt.last_decrease) as f64 / 1e9;
        let mut rate = C * (t - adapt.k).powi(3) + adapt.last_max;
        rate = rate.min(2.0 * self.measured(now).max(inner.min_rate));
        if let Some((ceiling, until)) = adapt.ceiling {
            if now < until {
                rate = rate.min(ceiling);
            } else {
                adapt.ceiling = None;
            }
        }
        drop(adapt);
        self.set_rate(rate.clamp(inner.min_rate, inner.max_rate));
    }

    fn set_rate(&self, rate: f64) {
        let interval = interval_of(rate);
        let now = self.now_nanos();
        let mut s = lock(&self.inner.schedule);
        if s.interval != interval {
            s.respace(now, interval);
            self.inner.interval.store(interval, Ordering::Release);
        }
    }

    /// Follows the fleet at `per_sec` (the fleet's rate): every slot not
    /// handed out yet waits for the fleet's grants.
    fn follow_locked(&self, now: u64, per_sec: f64) {
        let interval = interval_of(per_sec.clamp(self.inner.min_rate, self.inner.max_rate));
        let mut s = lock(&self.inner.schedule);
        s.follow(now, interval);
        self.inner.interval.store(interval, Ordering::Release);
    }
}

/// Builds a [`Pacer`]; see [`Pacer::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct PacerBuilder {
    name: StdArc<str>,
    clock: StdArc<dyn Clock>,
    initial_rate: Option<f64>,
    min_rate: f64,
    max_rate: f64,
    burst: u32,
    min_decrease_interval: Duration,
    store: Option<StdArc<dyn PacerStore>>,
}

impl fmt::Debug for PacerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacerBuilder")
            .field("name", &self.name)
            .field("initial_rate", &self.initial_rate)
            .field("min_rate", &self.min_rate)
            .field("max_rate", &self.max_rate)
            .field("burst", &self.burst)
            .field("shared", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl PacerBuilder {
    /// Paces from the start at this many calls per second (a known limit,
    /// such as S3's 3 500 PUTs per second per prefix), then adapts. Default:
    /// no pacing until the first throttling response.
    pub fn initial_rate(mut self, per_sec: f64) -> Self {
        self.initial_rate = Some(per_sec);
        self
    }

    /// The lowest rate it falls to (default 0.5 per second; allowed: 0.001
    /// ..= 1e9, one call in 1 000 s at the slowest).
    pub fn min_rate(mut self, per_sec: f64) -> Self {
        self.min_rate = per_sec;
        self
    }

    /// The highest rate it grows to (default 100 000 per second).
    pub fn max_rate(mut self, per_sec: f64) -> Self {
        self.max_rate = per_sec;
        self
    }

    /// How many calls may go at once after a quiet spell (default 10;
    /// allowed: 1 ..= 100 000). 1 spaces every call exactly.
    pub fn burst(mut self, calls: u32) -> Self {
        self.burst = calls;
        self
    }

    /// The shortest time between two decreases (default 500 ms): refusals
    /// closer together are one event, as the calls refused were sent at the
    /// same rate. `Duration::ZERO`: every refusal decreases, as in the AWS
    /// SDKs' adaptive retry mode.
    pub fn min_decrease_interval(mut self, d: Duration) -> Self {
        self.min_decrease_interval = d;
        self
    }

    /// The clock (default: [`SystemClock`]); a [`ManualClock`](crate::ManualClock) in tests.
    pub fn clock<C: Clock + Clone + 'static>(mut self, clock: &C) -> Self {
        self.clock = StdArc::new(clock.clone());
        self
    }

    /// Shares the pace with every process whose pacer has this name in
    /// `store` (such as `backstop_redis::Fleet`): the fleet learns one rate
    /// from everyone's refusals and successes, and hands out its slots so
    /// that the processes *together* send at it, not each of them. Calls
    /// still wait locally; see [`SharedPacer`] for the division of work. The
    /// settings should be the same in every process.
    pub fn shared<S: PacerStore + Clone + 'static>(mut self, store: &S) -> Self {
        self.store = Some(StdArc::new(store.clone()));
        self
    }

    /// Checks every setting and returns the pacer, or the first bad setting.
    /// A [`shared`](Self::shared) pacer joins its store here (which may
    /// wait a short, bounded time to learn the fleet's rate).
    pub fn build(self) -> Result<Pacer, ConfigError> {
        let err = |field, problem: String, allowed| Err(ConfigError::of("pacer", field, problem, allowed));
        // The slowest pace is one call in 1 000 s: slower is not a pace but
        // a stop (a rate of 1e-300 would space calls 584 years apart).
        let rate_ok = |r: f64| (MIN_RATE..=MAX_RATE).contains(&r);
        if !rate_ok(self.min_rate) {
            return err("min_rate", format!("is {:?}", self.min_rate), "0.001 ..= 1e9 per second");
        }
        if !rate_ok(self.max_rate) || self.max_rate < self.min_rate {
            return err(
                "max_rate",
                format!("is {:?} with min_rate {:?}", self.max_rate, self.min_rate),
                "min_rate ..= 1e9",
            );
        }
        if let Some(r) = self.initial_rate.filter(|r| !(rate_ok(*r) && (self.min_rate..=self.max_rate).contains(r))) {
            let problem = format!("is {r:?}, outside min_rate {:?} ..= max_rate {:?}", self.min_rate, self.max_rate);
            return err("initial_rate", problem, "min_rate ..= max_rate (raise max_rate for a higher one)");
        }
        if self.burst == 0 || self.burst > 100_000 {
            return err("burst", format!("is {}", self.burst), "1 ..= 100000");
        }
        if self.min_decrease_interval > Duration::from_secs(3600) {
            return err("min_decrease_interval", format!("is {:?}", self.min_decrease_interval), "0s ..= 1h");
        }
        let origin = self.clock.now();
        let last_max = self.initial_rate.unwrap_or(self.min_rate);
        let interval = self.initial_rate.map_or(0, interval_of);
        // A burst may go at once from the start.
        let anchor_at = EPOCH - interval.saturating_mul(u64::from(self.burst - 1)).min(EPOCH);
        let pacer = Pacer {
            inner: Arc::new(Inner {
                name: self.name,
                clock: self.clock,
                origin,
                interval: AtomicU64::new(interval),
                schedule: Mutex::new(Schedule::new(interval, anchor_at)),
                sent: SlidingCounts::new(nanos(MEASURE_WINDOW), 8),
                idle: IdleSends::new(),
                burst: self.burst,
                min_rate: self.min_rate,
                max_rate: self.max_rate,
                min_decrease_interval: self.min_decrease_interval,
                adapt: Mutex::new(Adapt {
                    last_max,
                    last_decrease: EPOCH,
                    k: (last_max * (1.0 - BETA) / C).cbrt(),
                    decreased: false,
                    ceiling: None,
                }),
                initial_rate: self.initial_rate,
                link: std::sync::OnceLock::new(),
                shared: AtomicBool::new(self.store.is_some()),
                sends: AtomicU64::new(0),
                successes: AtomicU64::new(0),
            }),
        };
        if let Some(store) = self.store {
            let link = store.share_pacer(SharedPacer::new(pacer.clone()));
            let _ = pacer.inner.link.set(link);
        }
        Ok(pacer)
    }
}

#[cfg(all(test, not(backstop_loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn pacer(clock: &ManualClock, rate: Option<f64>, burst: u32) -> Pacer {
        let b = Pacer::builder("t").burst(burst).clock(clock);
        match rate {
            Some(r) => b.initial_rate(r).build().unwrap(),
            None => b.build().unwrap(),
        }
    }

    #[test]
    fn not_pacing_until_throttled() {
        let clock = ManualClock::new();
        let p = pacer(&clock, None, 1);
        assert!((0..1000).all(|_| p.reserve().is_zero()));
        assert_eq!(p.rate(), None);
        p.record(Verdict::Throttled);
        assert!(p.rate().is_some());
    }

    #[test]
    fn reservations_are_one_interval_apart_after_the_burst() {
        let clock = ManualClock::new();
        let p = pacer(&clock, Some(10.0), 3);
        let waits: Vec<_> = (0..6).map(|_| p.reserve().as_millis()).collect();
        assert_eq!(waits, [0, 0, 0, 100, 200, 300]);
    }

    #[test]
    fn a_throttle_cuts_the_sending_rate_by_beta_once_per_burst() {
        let clock = ManualClock::new();
        let p = pacer(&clock, Some(50.0), 1);
        // Send at 50/s for 2 s so the measured rate is 50.
        for _ in 0..100 {
            let w = p.reserve();
            clock.advance(w);
        }
        p.record(Verdict::Throttled);
        let after = p.rate().unwrap();
        assert!((after - 35.0).abs() < 2.0, "{after}");
        p.record(Verdict::Throttled); // same burst
        assert_eq!(p.rate().unwrap(), after);
        // It climbs back towards 50 along the cubic: K ≈ 3.3 s.
        for _ in 0..200 {
            let w = p.reserve();
            clock.advance(w);
            p.record_success();
        }
        let back = p.rate().unwrap();
        assert!(back > 45.0, "{back}");
    }

    #[test]
    fn a_hint_counts_as_throttling_and_an_initial_rate_holds_until_then() {
        let clock = ManualClock::new();
        let p = pacer(&clock, Some(50.0), 1);
        for _ in 0..10 {
            let _ = p.reserve();
            p.record_success();
        }
        assert_eq!(p.rate(), Some(50.0));
        p.record(Verdict::RetryAfter(Duration::from_secs(1)));
        assert!(p.rate().unwrap() < 50.0);
        p.record(Verdict::Fail);
        p.record(Verdict::Timeout);
    }

    #[test]
    fn a_servers_stated_limit_caps_the_rate() {
        let clock = ManualClock::new();
        let p = pacer(&clock, None, 1);
        for _ in 0..200 {
            let _ = p.reserve();
        }
        p.observe_limit(10, Duration::from_secs(2));
        assert_eq!(p.rate(), Some(5.0));
    }

    #[test]
    fn bad_settings_name_their_field() {
        let b = || Pacer::builder("t");
        for (result, field) in [
            (b().min_rate(0.0).build(), "min_rate"),
            (b().min_rate(f64::NAN).build(), "min_rate"),
            // Slower than one call in 1 000 s is a stop, not a pace.
            (b().min_rate(1e-300).initial_rate(1e-300).build(), "min_rate"),
            (b().min_rate(0.000_999).build(), "min_rate"),
            (b().max_rate(0.1).build(), "max_rate"),
            (b().initial_rate(1e12).build(), "initial_rate"),
            (b().burst(0).build(), "burst"),
        ] {
            assert_eq!(result.unwrap_err().field(), field);
        }
        assert!(b().min_rate(0.001).max_rate(0.001).initial_rate(0.001).build().is_ok());
    }
}
