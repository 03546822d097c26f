//! The shared state of a breaker and its state machine.
//!
//! Hot path: a closed breaker's `acquire` is one atomic load; a success under
//! the consecutive-failures rule is two loads and no store unless a failure
//! streak has to be reset. Everything that changes the state (trip, half-open,
//! close, isolate, reset) and every half-open result goes through one mutex,
//! and callbacks run after it is released.

use std::sync::{Arc as StdArc, OnceLock};
use std::time::{Duration, Instant};

use super::config::{BreakerConfig, CountAs};
use super::event::{self, BreakerEvent, Transition};
use super::link::{BreakerLink, is_own};
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
    /// The store of a shared breaker, set once by `build()`.
    pub(crate) link: OnceLock<StdArc<dyn BreakerLink>>,
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
            link: OnceLock::new(),
        }
    }

    /// Whether an open breaker whose period is over may go half-open here:
    /// always for a local breaker; when its store says so for a shared one.
    fn may_probe(&self) -> bool {
        self.link.get().is_none_or(|link| link.may_probe())
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
                    if !self.may_probe() {
                        // Another process holds the fleet's probe.
                        return Err(self.reject(CircuitState::HalfOpen, Some(Duration::ZERO)));
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

    /// How long an open breaker stays open (zero once the period is over);
    /// `None` in any other state.
    pub(crate) fn open_remaining(&self) -> Option<Duration> {
        (self.word().state() == CircuitState::Open).then(|| {
            let (now, until) = (self.now_nanos(), self.open_until.load(Ordering::Acquire));
            Duration::from_nanos(until.saturating_sub(now))
        })
    }

    /// The state, moving an open breaker whose period is over to half-open.
    pub(crate) fn state(&self) -> CircuitState {
        let w = self.word();
        if w.state() == CircuitState::Open
            && self.now_nanos() >= self.open_until.load(Ordering::Acquire)
            && self.may_probe()
        {
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
                if now < until {
                    Some(self.open_error(CircuitState::Open, Some(Duration::from_nanos(until - now))))
                } else {
                    (!self.may_probe()).then(|| self.open_error(CircuitState::HalfOpen, Some(Duration::ZERO)))
                }
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
            Outcome::Failure => self.change_locked(&mut rare, pw, CircuitState::Open, Transition::ProbeFailed, None),
            Outcome::Success if rare.probe_successes + 1 >= self.config.success_threshold => {
                let n = rare.probe_successes + 1;
                self.change_locked(&mut rare, pw, CircuitState::Closed, Transition::ProbesSucceeded(n), None)
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
        let change = self.change_locked(&mut rare, expect, to, cause, None);
        drop(rare);
        let changed = change.is_some();
        self.report(change);
        changed
    }

    /// Moves to `to` from whatever the state is (isolate, reset).
    pub(crate) fn force(&self, to: CircuitState, cause: Transition) {
        let mut rare = lock(&self.rare);
        let current = self.word();
        let change = self.change_locked(&mut rare, current, to, cause, None);
        drop(rare);
        self.report(change);
    }

    /// A shared breaker follows its fleet to `to` (closed or isolated), from
    /// any other state. Returns whether it changed.
    pub(crate) fn follow(&self, to: CircuitState) -> bool {
        let mut rare = lock(&self.rare);
        let current = self.word();
        if current.state() == to {
            return false;
        }
        let change = self.change_locked(&mut rare, current, to, Transition::Shared, None);
        drop(rare);
        let changed = change.is_some();
        self.report(change);
        changed
    }

    /// A shared breaker follows its fleet's open circuit, which has
    /// `remaining` to run; see `SharedBreaker::follow_open`.
    pub(crate) fn follow_open(&self, remaining: Duration) -> bool {
        let mut rare = lock(&self.rare);
        let current = self.word();
        let change = match current.state() {
            CircuitState::Closed | CircuitState::HalfOpen => {
                self.change_locked(&mut rare, current, CircuitState::Open, Transition::Shared, Some(remaining))
            }
            CircuitState::Open => {
                let until = self.now_nanos().saturating_add(u64::try_from(remaining.as_nanos()).unwrap_or(u64::MAX));
                return self.open_until.swap(until, Ordering::AcqRel) != until;
            }
            CircuitState::Isolated => return false,
        };
        drop(rare);
        let changed = change.is_some();
        self.report(change);
        changed
    }

    fn change_locked(
        &self,
        rare: &mut MutexGuard<'_, Rare>,
        expect: Word,
        to: CircuitState,
        cause: Transition,
        period: Option<Duration>,
    ) -> Option<Change> {
        let current = self.word();
        if !current.same_epoch(expect) {
            return None;
        }
        let mut open_for = None;
        match to {
            CircuitState::Open => {
                // Following the fleet's open period still steps this
                // breaker's own backoff, so the periods it sets grow alike.
                let own = rare.open_periods.next().unwrap_or_default();
                let period = period.unwrap_or(own);
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
        if let Some(link) = self.link.get()
            && is_own(c.cause)
        {
            link.changed(&event);
        }
    }
}

#[cfg(all(test, not(backstop_loom)))]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;
    use crate::backoff::Backoff;
    use crate::breaker::config::{BreakerConfigBuilder, Window};
    use crate::clock::ManualClock;

    const SEC: Duration = Duration::from_secs(1);

    fn config(adjust: impl FnOnce(BreakerConfigBuilder) -> BreakerConfigBuilder) -> BreakerConfig {
        adjust(BreakerConfig::builder().consecutive_failures(3).open_for(Backoff::constant(10 * SEC))).build().unwrap()
    }

    fn core(config: BreakerConfig, clock: &ManualClock) -> Core {
        Core::new("downstream".into(), config, StdArc::new(clock.clone()), None)
    }

    /// What `CircuitBreaker::try_acquire` does, without the permit.
    fn acquire(core: &Core) -> Result<Word, CircuitOpen> {
        core.acquire_slow(core.word())
    }

    fn call(core: &Core, outcome: Outcome) {
        let w = acquire(core).expect("the call should be let through");
        core.record(w, outcome, None);
    }

    /// Trips a `config(..)` breaker (3 consecutive failures).
    fn trip(core: &Core) {
        for _ in 0..3 {
            call(core, Outcome::Failure);
        }
        assert_eq!(core.word().state(), CircuitState::Open);
    }

    #[test]
    fn consecutive_failures_open_the_breaker_at_the_limit_and_not_before() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        call(&core, Outcome::Failure);
        call(&core, Outcome::Failure);
        assert_eq!(core.state(), CircuitState::Closed);
        call(&core, Outcome::Failure);
        assert_eq!(core.state(), CircuitState::Open);
        assert_eq!(core.stats.transitions.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_success_ends_the_failure_streak() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        for outcome in [Outcome::Failure, Outcome::Failure, Outcome::Success, Outcome::Failure, Outcome::Failure] {
            call(&core, outcome);
        }
        assert_eq!(core.state(), CircuitState::Closed);
    }

    #[test]
    fn an_ignored_call_neither_extends_nor_ends_the_streak() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        for outcome in [Outcome::Failure, Outcome::Failure, Outcome::Ignored] {
            call(&core, outcome);
        }
        assert_eq!(core.state(), CircuitState::Closed);
        call(&core, Outcome::Failure);
        assert_eq!(core.state(), CircuitState::Open);
    }

    #[test]
    fn an_open_breaker_rejects_until_its_period_ends_on_the_clock() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        trip(&core);
        let open = acquire(&core).unwrap_err();
        assert_eq!((open.state(), open.retry_after()), (CircuitState::Open, Some(10 * SEC)));
        clock.advance(10 * SEC - Duration::from_millis(1));
        assert_eq!(acquire(&core).unwrap_err().retry_after(), Some(Duration::from_millis(1)));
        assert_eq!(core.stats.rejected.load(Ordering::Relaxed), 2);
        clock.advance(Duration::from_millis(1));
        assert_eq!(acquire(&core).unwrap().state(), CircuitState::HalfOpen);
    }

    #[test]
    fn a_half_open_breaker_admits_one_probe_at_a_time() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        trip(&core);
        clock.advance(10 * SEC);
        let probe = acquire(&core).unwrap();
        let busy = acquire(&core).unwrap_err();
        assert_eq!((busy.state(), busy.retry_after()), (CircuitState::HalfOpen, Some(Duration::ZERO)));
        assert_eq!(core.word().probes(), 1);
        core.abandon(probe);
        assert_eq!(core.word().probes(), 0, "an abandoned probe frees its slot");
        assert!(acquire(&core).is_ok());
    }

    #[test]
    fn a_successful_probe_closes_the_breaker() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        trip(&core);
        clock.advance(10 * SEC);
        call(&core, Outcome::Success);
        assert_eq!(core.state(), CircuitState::Closed);
        // Closing forgets the old streak: it takes 3 new failures to trip again.
        call(&core, Outcome::Failure);
        call(&core, Outcome::Failure);
        assert_eq!(core.state(), CircuitState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens_the_breaker_for_a_whole_new_period() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        trip(&core);
        clock.advance(15 * SEC);
        call(&core, Outcome::Failure);
        assert_eq!(core.state(), CircuitState::Open);
        assert_eq!(acquire(&core).unwrap_err().retry_after(), Some(10 * SEC));
    }

    #[test]
    fn open_periods_grow_with_each_failed_probe_and_start_over_once_closed() {
        let clock = ManualClock::new();
        let core = core(config(|b| b.open_for(Backoff::exponential(10 * SEC))), &clock);
        let open_for = |core: &Core| core.would_reject().and_then(|o| o.retry_after());
        trip(&core);
        assert_eq!(open_for(&core), Some(10 * SEC));
        clock.advance(10 * SEC);
        call(&core, Outcome::Failure);
        assert_eq!(open_for(&core), Some(20 * SEC));
        clock.advance(20 * SEC);
        call(&core, Outcome::Success);
        trip(&core);
        assert_eq!(open_for(&core), Some(10 * SEC));
    }

    #[test]
    fn success_threshold_probes_must_succeed_to_close() {
        let clock = ManualClock::new();
        let core = core(config(|b| b.half_open_max_calls(2).success_threshold(2)), &clock);
        trip(&core);
        clock.advance(10 * SEC);
        call(&core, Outcome::Success);
        assert_eq!(core.state(), CircuitState::HalfOpen);
        assert_eq!(core.word().probes(), 0, "a probe that decided nothing frees its slot");
        call(&core, Outcome::Ignored);
        assert_eq!(core.state(), CircuitState::HalfOpen, "an ignored probe is not a success");
        call(&core, Outcome::Success);
        assert_eq!(core.state(), CircuitState::Closed);
    }

    #[test]
    fn probe_successes_do_not_carry_over_to_the_next_half_open_period() {
        let clock = ManualClock::new();
        let core = core(config(|b| b.half_open_max_calls(2).success_threshold(2)), &clock);
        trip(&core);
        clock.advance(10 * SEC);
        call(&core, Outcome::Success);
        call(&core, Outcome::Failure);
        clock.advance(10 * SEC);
        call(&core, Outcome::Success);
        assert_eq!(core.state(), CircuitState::HalfOpen);
    }

    #[test]
    fn a_result_from_before_a_trip_is_late_and_changes_nothing() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        let permits: Vec<Word> = (0..4).map(|_| acquire(&core).unwrap()).collect();
        for &w in &permits[..3] {
            core.record(w, Outcome::Failure, None);
        }
        assert_eq!(core.state(), CircuitState::Open);
        core.record(permits[3], Outcome::Success, None);
        assert_eq!(core.state(), CircuitState::Open);
        assert_eq!(core.stats.late.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn failures_from_before_a_reset_do_not_count_towards_the_new_streak() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        let old: Vec<Word> = (0..3).map(|_| acquire(&core).unwrap()).collect();
        core.force(CircuitState::Isolated, Transition::Isolated);
        core.force(CircuitState::Closed, Transition::Reset);
        for w in old {
            core.record(w, Outcome::Failure, None);
        }
        assert_eq!(core.state(), CircuitState::Closed, "closed again, but in a later generation");
        assert_eq!(core.stats.late.load(Ordering::Relaxed), 3);
        assert_eq!(core.stats.failures.load(Ordering::Relaxed), 3, "late results are still counted");
    }

    #[test]
    fn a_probe_result_after_another_probe_decided_is_late() {
        let clock = ManualClock::new();
        let core = core(config(|b| b.half_open_max_calls(2)), &clock);
        trip(&core);
        clock.advance(10 * SEC);
        let (first, second) = (acquire(&core).unwrap(), acquire(&core).unwrap());
        core.record(first, Outcome::Failure, None);
        core.record(second, Outcome::Success, None);
        assert_eq!(core.state(), CircuitState::Open, "the late success does not close it");
        assert_eq!(core.stats.late.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_stale_probe_abandoned_late_frees_no_slot_of_a_newer_half_open_period() {
        let clock = ManualClock::new();
        let core = core(config(|b| b.half_open_max_calls(2)), &clock);
        trip(&core);
        clock.advance(10 * SEC);
        let (first, stale) = (acquire(&core).unwrap(), acquire(&core).unwrap());
        core.record(first, Outcome::Failure, None);
        clock.advance(10 * SEC);
        let _probe = acquire(&core).unwrap();
        core.abandon(stale);
        assert_eq!(core.word().probes(), 1);
    }

    #[test]
    fn a_transition_from_a_stale_word_does_nothing() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        let before = core.word();
        assert!(core.transition(before, CircuitState::Open, Transition::ConsecutiveFailures(3)));
        assert!(!core.transition(before, CircuitState::Open, Transition::ConsecutiveFailures(3)));
        assert_eq!(core.word().generation(), before.generation() + 1);
    }

    #[test]
    fn reading_the_state_moves_an_expired_open_breaker_to_half_open() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        trip(&core);
        clock.advance(10 * SEC);
        assert_eq!(core.word().state(), CircuitState::Open);
        assert_eq!(core.state(), CircuitState::HalfOpen);
    }

    #[test]
    fn would_reject_takes_no_slot_changes_no_state_and_counts_nothing() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        assert!(core.would_reject().is_none());
        trip(&core);
        assert_eq!(core.would_reject().unwrap().retry_after(), Some(10 * SEC));
        clock.advance(10 * SEC);
        assert!(core.would_reject().is_none(), "a probe would go through");
        assert_eq!(core.word().state(), CircuitState::Open);
        let _probe = acquire(&core).unwrap();
        assert_eq!(core.would_reject().unwrap().state(), CircuitState::HalfOpen);
        assert_eq!(core.word().probes(), 1);
        assert_eq!(core.stats.rejected.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_isolated_breaker_rejects_without_a_time_to_retry_until_reset() {
        let clock = ManualClock::new();
        let core = core(config(|b| b), &clock);
        core.force(CircuitState::Isolated, Transition::Isolated);
        clock.advance(3600 * SEC);
        assert_eq!(acquire(&core).unwrap_err().retry_after(), None);
        core.force(CircuitState::Closed, Transition::Reset);
        assert!(acquire(&core).is_ok());
    }

    #[test]
    fn a_failure_rate_counts_only_once_the_window_holds_minimum_calls() {
        let clock = ManualClock::new();
        let config = BreakerConfig::builder().failure_rate(0.5).window(Window::Count(4)).minimum_calls(4);
        let core = core(config.build().unwrap(), &clock);
        for _ in 0..3 {
            call(&core, Outcome::Failure);
        }
        assert_eq!(core.state(), CircuitState::Closed, "3 failures of 3 calls, under minimum_calls");
        call(&core, Outcome::Success);
        assert_eq!(core.state(), CircuitState::Open, "3 failures of 4 calls");
    }

    #[test]
    fn calls_slower_than_the_threshold_trip_the_slow_call_rule() {
        let clock = ManualClock::new();
        let config = BreakerConfig::builder().slow_calls(SEC, 1.0).window(Window::Count(2)).minimum_calls(2);
        let core = core(config.build().unwrap(), &clock);
        assert!(core.times_calls());
        for _ in 0..2 {
            let (w, started) = (acquire(&core).unwrap(), Some(core.now()));
            clock.advance(SEC);
            core.record(w, Outcome::Success, started);
        }
        assert_eq!(core.state(), CircuitState::Open);
    }

    #[test]
    fn verdicts_count_as_the_config_says() {
        let default = BreakerConfig::default();
        assert_eq!(Outcome::of_verdict(Verdict::Retry, &default), Outcome::Failure);
        assert_eq!(Outcome::of_verdict(Verdict::Timeout, &default), Outcome::Failure);
        assert_eq!(Outcome::of_verdict(Verdict::Fail, &default), Outcome::Success);
        assert_eq!(Outcome::of_verdict(Verdict::Throttled, &default), Outcome::Ignored);
        assert_eq!(Outcome::of_verdict(Verdict::RetryAfter(SEC), &default), Outcome::Ignored);
        let strict = config(|b| b.permanent_errors(CountAs::Failure).throttling(CountAs::Failure));
        assert_eq!(Outcome::of_verdict(Verdict::Fail, &strict), Outcome::Failure);
        assert_eq!(Outcome::of_verdict(Verdict::Throttled, &strict), Outcome::Failure);
    }

    #[test]
    fn every_transition_is_reported_once_in_order() {
        let clock = ManualClock::new();
        let seen = StdArc::new(StdMutex::new(Vec::new()));
        let log = StdArc::clone(&seen);
        let on_change: OnStateChange =
            StdArc::new(move |e: &BreakerEvent<'_>| log.lock().unwrap().push((e.from, e.to)));
        let core = Core::new("downstream".into(), config(|b| b), StdArc::new(clock.clone()), Some(on_change));
        trip(&core);
        clock.advance(10 * SEC);
        call(&core, Outcome::Failure);
        clock.advance(10 * SEC);
        call(&core, Outcome::Success);
        use CircuitState::{Closed, HalfOpen, Open};
        let expected = [(Closed, Open), (Open, HalfOpen), (HalfOpen, Open), (Open, HalfOpen), (HalfOpen, Closed)];
        assert_eq!(*seen.lock().unwrap(), expected);
    }
}
