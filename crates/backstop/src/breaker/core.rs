//! The shared state of a breaker and its state machine.
//!
//! Hot path: a closed breaker's `acquire` is one atomic load; a success under
//! the consecutive-failures rule is two loads and no store unless a failure
//! streak has to be reset. Everything that changes the state (trip, half-open,
//! close, isolate, reset) and every half-open result goes through one mutex,
//! and callbacks run after it is released.

use std::sync::Arc as StdArc;
use std::time::{Duration, Instant};

use super::config::{BreakerConfig, CountAs};
use super::event::{self, BreakerEvent, Transition};
use super::open::CircuitOpen;
use super::state::{CircuitState, ONE_PROBE, Word};
use super::window::{Recent, outcome};
use crate::backoff::Delays;
use crate::clock::Clock;
use crate::sync::{AtomicU32, AtomicU64, Mutex, MutexGuard, Ordering, Padded, lock};
use crate::verdict::Verdict;

/// A state-change callback.
pub(crate) type OnStateChange = StdArc<dyn Fn(&BreakerEvent<'_>) + Send + Sync>;

/// How one call ended, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    Ignored,
}

impl Outcome {
    pub(crate) fn of_verdict(verdict: Verdict, config: &BreakerConfig) -> Self {
        let how = match verdict {
            Verdict::Fail => config.permanent_errors,
            Verdict::Throttled | Verdict::RetryAfter(_) => config.throttling,
            _ => CountAs::Failure,
        };
        match how {
            CountAs::Success => Outcome::Success,
            CountAs::Ignore => Outcome::Ignored,
            CountAs::Failure => Outcome::Failure,
        }
    }
}

pub(crate) struct Core {
    word: Padded<AtomicU64>,
    consecutive: Padded<AtomicU32>,
    /// End of the open period, in nanoseconds since `origin` on `clock`.
    open_until: AtomicU64,
    pub(crate) stats: Stats,
    window: Option<Recent>,
    pub(crate) name: StdArc<str>,
    pub(crate) config: BreakerConfig,
    clock: StdArc<dyn Clock>,
    origin: Instant,
    rare: Mutex<Rare>,
    on_change: Option<OnStateChange>,
}

/// What only the rare paths touch, under the mutex.
struct Rare {
    /// Open periods: one item per trip, restarted when the breaker closes.
    open_periods: Delays,
    probe_successes: u32,
}

/// Counters of everything but successes (which the hot path does not count).
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) failures: AtomicU64,
    pub(crate) ignored: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) late: AtomicU64,
    pub(crate) transitions: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A state change decided under the lock, reported after it is released.
struct Change {
    from: CircuitState,
    to: CircuitState,
    cause: Transition,
    open_for: Option<Duration>,
}

impl Core {
    pub(crate) fn new(
        name: StdArc<str>,
        config: BreakerConfig,
        clock: StdArc<dyn Clock>,
        on_change: Option<OnStateChange>,
    ) -> Self {
        let origin = clock.now();
        Self {
            word: Padded(AtomicU64::new(Word::new(0, CircuitState::Closed).0)),
            consecutive: Padded(AtomicU32::new(0)),
            open_until: AtomicU64::new(0),
            stats: Stats::default(),
            window: config.uses_window().then(|| Recent::new(config.window)),
            rare: Mutex::new(Rare { open_periods: config.open_for.delays(None), probe_successes: 0 }),
            name,
            config,
            clock,
            origin,
            on_change,
        }
    }

    #[inline]
    pub(crate) fn word(&self) -> Word {
        Word(self.word.0.load(Ordering::Acquire))
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    fn now_nanos(&self) -> u64 {
        let since = self.clock.now().saturating_duration_since(self.origin);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether permits must note their start time (for the slow-call rule).
    #[inline]
    pub(crate) fn times_calls(&self) -> bool {
        self.config.slow_calls.is_some()
    }

    /// The acquisition paths other than "closed": open, half-open, isolated.
    /// Returns the word the permit is issued under.
    #[cold]
    pub(crate) fn acquire_slow(&self, mut w: Word) -> Result<Word, CircuitOpen> {
        loop {
            match w.state() {
                CircuitState::Closed => return Ok(w),
                CircuitState::Isolated => return Err(self.reject(CircuitState::Isolated, None)),
                CircuitState::Open => {
                    let (now, until) = (self.now_nanos(), self.open_until.load(Ordering::Acquire));
                    if now < until {
                        let left = Duration::from_nanos(until - now);
                        return Err(self.reject(CircuitState::Open, Some(left)));
                    }
                    self.transition(w, CircuitState::HalfOpen, Transition::OpenPeriodOver);
                    w = self.word();
                }
                CircuitState::HalfOpen => {
                    if w.probes() >= self.config.half_open_max_calls {
                        return Err(self.reject(CircuitState::HalfOpen, Some(Duration::ZERO)));
                    }
                    match self.word.0.compare_exchange_weak(w.0, w.0 + ONE_PROBE, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => return Ok(w),
                        Err(actual) => w = Word(actual),
                    }
                }
            }
        }
    }

    /// The state, moving an open breaker whose period is over to half-open.
    pub(crate) fn state(&self) -> CircuitState {
        let w = self.word();
        if w.state() == CircuitState::Open && self.now_nanos() >= self.open_until.load(Ordering::Acquire) {
            self.transition(w, CircuitState::HalfOpen, Transition::OpenPeriodOver);
            return self.word().state();
        }
        w.state()
    }

    fn reject(&self, state: CircuitState, retry_after: Option<Duration>) -> CircuitOpen {
        bump(&self.stats.rejected);
        event::circuit_rejected(&self.name);
        self.open_error(state, retry_after)
    }

    fn open_error(&self, state: CircuitState, retry_after: Option<Duration>) -> CircuitOpen {
        CircuitOpen { name: StdArc::clone(&self.name), state, retry_after }
    }

    /// What `acquire` would reject with right now, without taking a probe
    /// slot, changing state or counting anything: lets a retry run see an
    /// open circuit before it sleeps.
    pub(crate) fn would_reject(&self) -> Option<CircuitOpen> {
        let w = self.word();
        match w.state() {
            CircuitState::Closed => None,
            CircuitState::HalfOpen => (w.probes() >= self.config.half_open_max_calls)
                .then(|| self.open_error(CircuitState::HalfOpen, Some(Duration::ZERO))),
            CircuitState::Open => {
                let (now, until) = (self.now_nanos(), self.open_until.load(Ordering::Acquire));
                (now < until).then(|| self.open_error(CircuitState::Open, Some(Duration::from_nanos(until - now))))
            }
            CircuitState::Isolated => Some(self.open_error(CircuitState::Isolated, None)),
        }
    }

    /// Records the outcome of a call made under permit word `pw`, which
    /// started at `started` (only when the slow-call rule is on).
    ///
    /// The common case, a success on a healthy closed breaker with no rate
    /// window, is inlined: a load of the word, a compare, a load of the
    /// streak, and no store unless a streak has to be reset.
    #[inline]
    pub(crate) fn record(&self, pw: Word, outcome: Outcome, started: Option<Instant>) {
        let closed = pw.state() == CircuitState::Closed;
        if closed && outcome == Outcome::Success && self.window.is_none() && self.word().0 == pw.0 {
            if self.config.consecutive_failures.is_some() && self.consecutive.0.load(Ordering::Relaxed) != 0 {
                self.consecutive.0.store(0, Ordering::Relaxed);
            }
            return;
        }
        self.record_slow(pw, outcome, started);
    }

    #[cold]
    fn record_slow(&self, pw: Word, outcome: Outcome, started: Option<Instant>) {
        match outcome {
            Outcome::Failure => bump(&self.stats.failures),
            Outcome::Ignored => bump(&self.stats.ignored),
            Outcome::Success => {}
        }
        match pw.state() {
            CircuitState::HalfOpen => self.record_probe(pw, outcome),
            _ if outcome == Outcome::Ignored => {}
            _ => self.record_closed(pw, outcome == Outcome::Failure, started),
        }
    }

    #[inline]
    fn record_closed(&self, pw: Word, failed: bool, started: Option<Instant>) {
        if !self.word().same_epoch(pw) {
            // A result from before the last transition: counted, not acted on.
            bump(&self.stats.late);
            return;
        }
        if let Some(limit) = self.config.consecutive_failures {
            if failed {
                let streak = self.consecutive.0.fetch_add(1, Ordering::AcqRel).saturating_add(1);
                if streak >= limit {
                    self.transition(pw, CircuitState::Open, Transition::ConsecutiveFailures(streak));
                    return;
                }
            } else if self.consecutive.0.load(Ordering::Relaxed) != 0 {
                // Write only when something changes: a healthy breaker's
                // successes leave the shared cache line alone.
                self.consecutive.0.store(0, Ordering::Relaxed);
            }
        }
        if let Some(window) = &self.window {
            let slow = match (self.config.slow_calls, started) {
                (Some((threshold, _)), Some(t)) => self.now().saturating_duration_since(t) >= threshold,
                _ => false,
            };
            let now = if window.needs_clock() { self.now_nanos() } else { 0 };
            let t = window.record(outcome(failed, slow), now);
            if t.calls < self.config.minimum_calls {
                return;
            }
            if self.config.failure_rate.is_some_and(|r| t.rate(t.failures) >= r) {
                let cause = Transition::FailureRate { calls: t.calls, failures: t.failures };
                self.transition(pw, CircuitState::Open, cause);
            } else if self.config.slow_calls.is_some_and(|(_, r)| t.rate(t.slow) >= r) {
                let cause = Transition::SlowCallRate { calls: t.calls, slow: t.slow };
                self.transition(pw, CircuitState::Open, cause);
            }
        }
    }

    fn record_probe(&self, pw: Word, outcome: Outcome) {
        let mut rare = lock(&self.rare);
        let w = self.word();
        if !w.same_epoch(pw) || w.probes() == 0 {
            bump(&self.stats.late);
            return;
        }
        // A result that decides the state keeps its slot until the transition
        // (which empties every slot): freeing it first would let another probe
        // through in between, to a downstream just judged down.
        let change = match outcome {
            Outcome::Failure => self.change_locked(&mut rare, pw, CircuitState::Open, Transition::ProbeFailed),
            Outcome::Success if rare.probe_successes + 1 >= self.config.success_threshold => {
                let n = rare.probe_successes + 1;
                self.change_locked(&mut rare, pw, CircuitState::Closed, Transition::ProbesSucceeded(n))
            }
            Outcome::Success | Outcome::Ignored => {
                rare.probe_successes += u32::from(outcome == Outcome::Success);
                self.release_probe(pw);
                None
            }
        };
        drop(rare);
        self.report(change);
    }

    /// Frees a half-open probe slot taken under `pw`, if its epoch still
    /// holds. Call with the lock held (epochs only change under it).
    fn release_probe(&self, pw: Word) -> bool {
        let w = self.word();
        if !w.same_epoch(pw) || w.probes() == 0 {
            return false;
        }
        self.word.0.fetch_sub(ONE_PROBE, Ordering::AcqRel);
        true
    }

    /// A permit dropped without a result: frees its probe slot, counts nothing.
    #[cold]
    pub(crate) fn abandon(&self, pw: Word) {
        if pw.state() == CircuitState::HalfOpen {
            let _rare = lock(&self.rare);
            self.release_probe(pw);
        }
    }

    /// Moves from the epoch of `expect` to `to`, unless another thread already
    /// moved on. Returns whether this call made the change.
    pub(crate) fn transition(&self, expect: Word, to: CircuitState, cause: Transition) -> bool {
        let mut rare = lock(&self.rare);
        let change = self.change_locked(&mut rare, expect, to, cause);
        drop(rare);
        let changed = change.is_some();
        self.report(change);
        changed
    }

    /// Moves to `to` from whatever the state is (isolate, reset).
    pub(crate) fn force(&self, to: CircuitState, cause: Transition) {
        let mut rare = lock(&self.rare);
        let current = self.word();
        let change = self.change_locked(&mut rare, current, to, cause);
        drop(rare);
        self.report(change);
    }

    fn change_locked(
        &self,
        rare: &mut MutexGuard<'_, Rare>,
        expect: Word,
        to: CircuitState,
        cause: Transition,
    ) -> Option<Change> {
        let current = self.word();
        if !current.same_epoch(expect) {
            return None;
        }
        let mut open_for = None;
        match to {
            CircuitState::Open => {
                let period = rare.open_periods.next().unwrap_or_default();
                let nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
                self.open_until.store(self.now_nanos().saturating_add(nanos), Ordering::Release);
                open_for = Some(period);
            }
            CircuitState::HalfOpen => rare.probe_successes = 0,
            CircuitState::Closed => {
                self.consecutive.0.store(0, Ordering::Relaxed);
                if let Some(w) = &self.window {
                    w.clear();
                }
                rare.open_periods = self.config.open_for.delays(None);
            }
            CircuitState::Isolated => {}
        }
        // A plain store: every other writer of the word is a CAS from a value
        // of the old epoch, which now fails and reloads.
        self.word.0.store(current.next(to).0, Ordering::Release);
        bump(&self.stats.transitions);
        Some(Change { from: current.state(), to, cause, open_for })
    }

    fn report(&self, change: Option<Change>) {
        let Some(c) = change else { return };
        let event = BreakerEvent { name: &self.name, from: c.from, to: c.to, cause: c.cause, open_for: c.open_for };
        event::circuit_changed(&event, self.config.half_open_max_calls);
        if let Some(callback) = &self.on_change {
            callback(&event);
        }
    }
}
