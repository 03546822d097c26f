//! The decisions of a run, shared by the sync loop and the async future:
//! before each attempt, ask the breaker and the throttle; after each failure,
//! sleep how long, or stop with which error.
//!
//! The gates after a failure come in a fixed order, cheapest and most
//! permanent first: the classifier's verdict, the attempt limit, the server's
//! hint, the breaker, the deadline, and last the budget, so that tokens are
//! only withdrawn for a retry that will really be made.

use std::fmt::Display;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::error::RetryError;
use super::event::{OnRetry, RetryEvent};
use super::log::{self as emit, GiveUp};
use super::settings::{Name, RunSettings};
use crate::backoff::Delays;
use crate::breaker::{CircuitBreaker, CircuitOpen, Permit};
use crate::budget::{RetryBudget, Withdrawal};
use crate::clock::{Clock, SleepFuture, SystemClock};
use crate::limit::{ConcurrencyLimit, LimitError, LimitPermit};
use crate::pacer::{Pacer, Slot};
use crate::policy::RetryPolicy;
use crate::throttle::AdaptiveThrottle;
use crate::verdict::{Classify, Describe, Verdict};

/// The longest a run sleeps for its pacer slot before asking again.
const PACE_RECHECK: Duration = Duration::from_millis(100);

/// What to do next, when not simply making the attempt or returning a value.
pub(crate) enum Step<E> {
    /// Sleep this long, then try again.
    Sleep(Duration),
    /// Wait for this (a place in a concurrency limit's queue), then try again.
    Wait(SleepFuture),
    /// Give up with this error.
    Stop(RetryError<E>),
}

/// What ends a running async attempt early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cutoff {
    /// The per-attempt timeout.
    AttemptTimeout(Duration),
    /// The run's deadline.
    Deadline,
}

/// `a`'s output, unless `b` finishes first (`None`).
async fn first<A: std::future::Future>(a: A, b: SleepFuture) -> Option<A::Output> {
    let mut a = std::pin::pin!(a);
    let mut b = b;
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(out) = a.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(out));
        }
        b.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// What a wait for a concurrency limit's place got, once it got it.
type Waited = Arc<Mutex<Option<Result<LimitPermit, LimitError>>>>;

/// The mutable part of one run.
pub(crate) struct RunState<'a, E> {
    pub(crate) policy: &'a RetryPolicy,
    pub(crate) clock: &'a dyn Clock,
    name: Name,
    attempt: u32,
    /// Read at the start when the policy has a deadline, else at the first failure.
    start: Option<Instant>,
    /// Made at the first retry: the success path draws no seed.
    delays: Option<Delays>,
    breaker: Option<&'a CircuitBreaker>,
    budget: Option<&'a RetryBudget>,
    throttle: Option<&'a AdaptiveThrottle>,
    pacer: Option<&'a Pacer>,
    limit: Option<&'a ConcurrencyLimit>,
    /// The limit's place, held from before an attempt to its outcome.
    place: Option<LimitPermit>,
    /// Where a wait for a place leaves what it got.
    waited: Option<Waited>,
    /// When this attempt began waiting for a place: a driven run, which
    /// asks again instead of queueing, times out on it.
    queued_at: Option<Instant>,
    /// The pacer's slot for the next attempt, while waiting for it.
    slot: Option<Slot>,
    permit: Option<Permit<'a>>,
    /// Tokens withdrawn for the retry being slept towards (refunded if the
    /// run is dropped first), then for the attempt being made.
    pending: Option<Withdrawal>,
    spent: Option<Withdrawal>,
    /// The error of the last attempt, kept across its sleep in case the next
    /// attempt never runs (an open circuit, a deadline).
    last: Option<E>,
    /// How the log lines print an error, if the classifier says (see
    /// [`Classify::describer`]); set at each failure.
    pub(crate) describe: Option<Describe<E>>,
}

impl<'a, E: Display> RunState<'a, E> {
    pub(crate) fn new(settings: RunSettings<'a>) -> Self {
        let RunSettings { policy, name, clock, breaker, budget, throttle, pacer, limit } = settings;
        let clock: &'a dyn Clock = clock.unwrap_or(&SystemClock);
        let start = policy.max_elapsed.map(|_| clock.now());
        Self {
            policy,
            clock,
            name,
            attempt: 0,
            start,
            delays: None,
            breaker,
            budget,
            throttle,
            pacer,
            limit,
            place: None,
            waited: None,
            queued_at: None,
            slot: None,
            permit: None,
            pending: None,
            spent: None,
            last: None,
            describe: None,
        }
    }

    /// Counts the attempt about to be made and asks the breaker and the
    /// throttle. `None`: make the attempt.
    #[inline]
    pub(crate) fn before_attempt(&mut self) -> Option<Step<E>> {
        let Some(limit) = self.limit else { return self.guards_before_attempt() };
        if self.place.is_none() {
            if let Some(step) = self.take_place(limit) {
                return Some(step);
            }
        }
        let step = self.guards_before_attempt();
        if step.is_some() {
            // A place is for an attempt: not held through a pacer's or a
            // probe's wait, nor by a run that stops here.
            self.place = None;
        }
        step
    }

    /// The guards after the limit: the pacer, the breaker, the throttle.
    #[inline]
    fn guards_before_attempt(&mut self) -> Option<Step<E>> {
        if let Some(pacer) = self.pacer {
            // The slot is asked again after each wait: a rate change moves it.
            let (slot, wait) = pacer.turn(self.slot.take());
            if !wait.is_zero() {
                self.slot = slot;
                return Some(self.pace(wait));
            }
        }
        // (Taken only when there is one: copying an empty one just written
        // stalls the store buffer on a hot path.)
        self.spent = if self.pending.is_some() { self.pending.take() } else { None };
        // An attempt the breaker or the throttle refuses is not made: it is
        // not counted, and does not use up one of the policy's attempts.
        if let Some(breaker) = self.breaker {
            match breaker.try_acquire() {
                Ok(permit) => self.permit = Some(permit),
                Err(open) => return Some(self.circuit_open(open)),
            }
        }
        if let Some(throttle) = self.throttle {
            if let Err(local) = throttle.try_acquire() {
                self.permit = None; // counts nothing on the breaker
                self.refund_spent();
                let (attempts, last) = (self.attempt, self.last.take());
                emit::throttled_locally(&self.name, local.probability());
                return Some(self.stop(GiveUp::Throttled, |name| RetryError::Throttled { name, attempts, last }));
            }
        }
        self.attempt = self.attempt.saturating_add(1);
        if let Some(budget) = self.budget.filter(|_| self.attempt == 1) {
            budget.record_request();
        }
        None
    }

    /// Takes a place in the limit: the one a wait got, one free now, or a
    /// wait in its queue (`Some` step: wait, or stop refused).
    #[cold]
    fn take_place(&mut self, limit: &ConcurrencyLimit) -> Option<Step<E>> {
        let waited = self.waited.take().and_then(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).take());
        // No attempt starts past the deadline, however long the wait was.
        // (A run with a deadline counts time from its start; one without
        // reads no clock here.)
        let elapsed = self.policy.max_elapsed.map(|_| self.elapsed());
        let deadline = self.policy.max_elapsed.unwrap_or(Duration::MAX);
        if let Some(elapsed) = elapsed.filter(|e| *e >= deadline) {
            drop(waited);
            self.refund_pending();
            let last = self.last.take();
            return Some(self.deadline_stop(elapsed, last));
        }
        let got = match waited {
            Some(got) => got.map_err(Some),
            None => limit.try_acquire().ok_or(None),
        };
        match got {
            Ok(place) => {
                self.place = Some(place);
                self.queued_at = None;
                None
            }
            Err(Some(refused)) => Some(self.limited(refused)),
            // A full queue refuses at once (a driven run never queues).
            Err(None) if limit.waiting() >= limit.max_queue() => Some(self.limited(limit.full())),
            Err(None) => {
                let now = self.clock.now();
                let waited = now.saturating_duration_since(*self.queued_at.get_or_insert(now));
                if limit.queue_timeout().is_some_and(|t| waited >= t) {
                    return Some(self.limited(limit.timed_out(waited)));
                }
                let slot = Arc::new(Mutex::new(None));
                self.waited = Some(Arc::clone(&slot));
                let acquire = limit.acquire();
                // The wait ends at the deadline too: the run then stops (above).
                let deadline = self.policy.max_elapsed.zip(elapsed).map(|(d, e)| self.clock.timer(d.saturating_sub(e)));
                Some(Step::Wait(Box::pin(async move {
                    let got = match deadline {
                        Some(deadline) => match first(acquire, deadline).await {
                            Some(got) => got,
                            None => return, // the deadline: nothing got
                        },
                        None => acquire.await,
                    };
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(got);
                })))
            }
        }
    }

    /// The limit refused: stop, giving back the tokens of a retry not made.
    fn limited(&mut self, refused: LimitError) -> Step<E> {
        self.refund_pending();
        self.queued_at = None;
        let (attempts, last) = (self.attempt, self.last.take());
        self.stop(GiveUp::Limited, |name| RetryError::Limited { name, attempts, refused, last })
    }

    /// Waits `wait` for the pacer's slot, unless that crosses the deadline.
    fn pace(&mut self, wait: Duration) -> Step<E> {
        let elapsed = self.elapsed();
        if self.crosses_deadline(elapsed, wait) {
            self.refund_pending();
            let last = self.last.take();
            return self.deadline_stop(elapsed, last);
        }
        // Look again at least this often: a rate that rose since moves the
        // slot earlier, and a caller that slept on would go late, in a bunch.
        Step::Sleep(wait.min(PACE_RECHECK))
    }

    /// Attempts made so far, the current one included.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Records a success.
    #[inline]
    pub(crate) fn succeeded(&mut self) {
        self.place = None;
        if let Some(pacer) = self.pacer {
            pacer.record_success();
        }
        if let Some(permit) = self.permit.take() {
            permit.success();
        }
        if let Some(throttle) = self.throttle {
            throttle.record(true);
        }
        if let Some(budget) = self.budget {
            budget.record_success(self.spent.take());
        }
        emit::attempt_succeeded(&self.name);
        if self.attempt > 1 {
            let elapsed = self.elapsed();
            emit::succeeded_after_retry(&self.name, self.attempt, self.policy.max_attempts, elapsed);
        }
    }

    /// Time since the run started, starting the count now if it had not.
    fn elapsed(&mut self) -> Duration {
        let now = self.clock.now();
        now.saturating_duration_since(*self.start.get_or_insert(now))
    }

    /// The backoff's next delay.
    fn next_delay(&mut self) -> Duration {
        let (backoff, seed) = (&self.policy.backoff, self.policy.seed);
        self.delays.get_or_insert_with(|| backoff.delays(seed)).next().unwrap_or(Duration::ZERO)
    }

    /// Whether sleeping `delay` now would cross the deadline.
    fn crosses_deadline(&self, elapsed: Duration, delay: Duration) -> bool {
        self.policy.max_elapsed.is_some_and(|deadline| elapsed.saturating_add(delay) > deadline)
    }

    /// The first attempt failed before the state existed (a bare run's fast
    /// path): count it, then judge it as any other.
    pub(crate) fn failed_first<C, H>(&mut self, error: E, classifier: &C, hook: &mut H) -> Step<E>
    where
        C: Classify<E> + ?Sized,
        H: OnRetry<E> + ?Sized,
    {
        self.attempt = 1;
        self.failed(error, classifier, hook)
    }

    /// Asks the classifier about a failed attempt, then decides what follows.
    pub(crate) fn failed<C, H>(&mut self, error: E, classifier: &C, hook: &mut H) -> Step<E>
    where
        C: Classify<E> + ?Sized,
        H: OnRetry<E> + ?Sized,
    {
        let verdict = classifier.classify(&error);
        self.describe = classifier.describer();
        self.failed_with(error, verdict, hook)
    }

    /// Decides what follows the failed attempt that returned `error`, judged `verdict`.
    pub(crate) fn failed_with<H>(&mut self, error: E, verdict: Verdict, hook: &mut H) -> Step<E>
    where
        H: OnRetry<E> + ?Sized,
    {
        emit::attempt_failed(&self.name);
        self.place = None;
        let elapsed = self.elapsed();
        let attempts = self.attempt;
        if let Some(permit) = self.permit.take() {
            permit.record(verdict);
        }
        if let Some(throttle) = self.throttle {
            throttle.record(!verdict.is_refusal());
        }
        if let Some(pacer) = self.pacer {
            pacer.record(verdict);
        }
        self.spent = None; // a failed retry's tokens stay spent
        if verdict == Verdict::Fail {
            return self.stop(GiveUp::Rejected, |name| RetryError::Rejected { name, attempts, last: error });
        }
        if attempts >= self.policy.max_attempts {
            return self.stop(GiveUp::Attempts, |name| RetryError::Exhausted { name, attempts, elapsed, last: error });
        }
        let backoff_delay = self.next_delay();
        let policy = self.policy;
        let (mut delay, server_hint) = match verdict {
            // `max_retry_after(ZERO)` means "a hint always ends the run",
            // a zero hint included.
            Verdict::RetryAfter(hint) if hint > policy.max_retry_after || policy.max_retry_after.is_zero() => {
                let max_retry_after = policy.max_retry_after;
                return self.stop(GiveUp::RetryAfter, |name| RetryError::RetryAfterTooLong {
                    name,
                    attempts,
                    retry_after: hint,
                    max_retry_after,
                    last: error,
                });
            }
            Verdict::RetryAfter(hint) => {
                let limit = policy.max_retry_after;
                let delays = self.delays.get_or_insert_with(|| policy.backoff.delays(policy.seed));
                (delays.after_hint(hint, limit), true)
            }
            _ => (backoff_delay, false),
        };
        // Never sleep against a circuit that this failure (or others) opened.
        if let Some(open) = self.breaker.and_then(CircuitBreaker::would_reject) {
            match self.wait_for_probe(&open, elapsed, delay) {
                Some(wait) => delay = wait,
                None => {
                    let last = Some(error);
                    return self.stop(GiveUp::CircuitOpen, |name| RetryError::CircuitOpen {
                        name,
                        attempts,
                        open,
                        last,
                    });
                }
            }
        }
        if self.crosses_deadline(elapsed, delay) {
            return self.deadline_stop(elapsed, Some(error));
        }
        if let Some(budget) = self.budget {
            match budget.try_withdraw(verdict) {
                Some(withdrawal) => self.pending = Some(withdrawal),
                None => {
                    return self.stop(GiveUp::Budget, |name| RetryError::BudgetExhausted {
                        name,
                        attempts,
                        last: error,
                    });
                }
            }
        }
        let event = RetryEvent {
            name: &self.name,
            attempt: attempts,
            max_attempts: policy.max_attempts,
            delay,
            error: &error,
            elapsed,
            server_hint,
        };
        hook.on_retry(&event);
        emit::retrying(&self.name, &event, self.describe);
        self.last = Some(error);
        Step::Sleep(delay)
    }

    /// How long to wait for `open` to let a probe through instead of sleeping
    /// `delay`, if the policy waits on open circuits and the wait fits.
    fn wait_for_probe(&self, open: &CircuitOpen, elapsed: Duration, delay: Duration) -> Option<Duration> {
        let policy = self.policy;
        if !policy.wait_on_open_circuit || self.attempt >= policy.max_attempts {
            return None;
        }
        let wait = open.retry_after()?.max(delay);
        let fits = wait <= policy.max_retry_after && !self.crosses_deadline(elapsed, wait);
        fits.then(|| {
            emit::waiting_for_circuit(&self.name, open, wait);
            wait
        })
    }

    /// The breaker rejected the attempt: wait for its probe if the policy
    /// says so and the wait fits, otherwise stop.
    fn circuit_open(&mut self, open: CircuitOpen) -> Step<E> {
        let attempts = self.attempt;
        let elapsed = self.elapsed();
        let delay = self.next_delay();
        if let Some(wait) = self.wait_for_probe(&open, elapsed, delay) {
            // The retry the tokens paid for is only put off: they go with it
            // (refunded if the run is dropped while it waits, returned by a
            // success as usual).
            self.pending = self.spent.take();
            return Step::Sleep(wait);
        }
        self.refund_spent();
        let last = self.last.take();
        self.stop(GiveUp::CircuitOpen, |name| RetryError::CircuitOpen { name, attempts, open, last })
    }

    /// The attempt the budget paid for will not be made: give the tokens back.
    fn refund_spent(&mut self) {
        if let (Some(budget), Some(w)) = (self.budget, self.spent.take()) {
            budget.refund(w);
        }
    }

    /// For an async attempt about to start: a timer for whichever comes first
    /// of the per-attempt `timeout` and the deadline, if either is set.
    pub(crate) fn attempt_timer(&mut self, timeout: Option<Duration>) -> Option<(SleepFuture, Cutoff)> {
        let timeout = timeout.filter(|t| !t.is_zero());
        let policy = self.policy;
        let remaining = policy.max_elapsed.map(|deadline| deadline.saturating_sub(self.elapsed()));
        let (limit, cutoff) = match (timeout, remaining) {
            (Some(t), Some(r)) if r <= t => (r, Cutoff::Deadline),
            (Some(t), _) => (t, Cutoff::AttemptTimeout(t)),
            (None, Some(r)) => (r, Cutoff::Deadline),
            (None, None) => return None,
        };
        Some((self.clock.timer(limit), cutoff))
    }

    /// The deadline came while an attempt was running: the attempt is dropped.
    pub(crate) fn deadline_passed(&mut self) -> Step<E> {
        self.permit = None; // an abandoned attempt counts nothing on the breaker
        self.place = None;
        let (elapsed, last) = (self.elapsed(), self.last.take());
        self.deadline_stop(elapsed, last)
    }

    /// Stops at the deadline, `elapsed` into the run, keeping `last`.
    fn deadline_stop(&mut self, elapsed: Duration, last: Option<E>) -> Step<E> {
        let (attempts, deadline) = (self.attempt, self.policy.max_elapsed.unwrap_or_default());
        self.stop(GiveUp::Deadline, |name| RetryError::DeadlineExceeded { name, attempts, elapsed, deadline, last })
    }

    fn stop(&mut self, why: GiveUp, make: impl FnOnce(Name) -> RetryError<E>) -> Step<E> {
        // A clone of a `&'static str` name is free; an owned name costs one
        // allocation, on the give-up path only.
        let err = make(self.name.clone());
        let elapsed = self.start.map(|start| self.clock.now().saturating_duration_since(start));
        emit::gave_up(&self.name, why, &err, self.policy.max_attempts, elapsed, self.describe);
        Step::Stop(err)
    }
}

impl<E> RunState<'_, E> {
    /// The run is over, or dropped: a pacer slot it still held goes to the
    /// next caller.
    fn release_slot(&mut self) {
        if let (Some(pacer), Some(slot)) = (self.pacer, self.slot.take()) {
            pacer.release(slot);
        }
    }

    /// The retry the budget paid for (not yet begun) will not be made.
    fn refund_pending(&mut self) {
        if let (Some(budget), Some(w)) = (self.budget, self.pending.take()) {
            budget.refund(w);
        }
    }
}

impl<E> Drop for RunState<'_, E> {
    /// A run dropped mid-sleep (its future cancelled) gives back the tokens
    /// it had withdrawn for the retry it will never make.
    fn drop(&mut self) {
        self.refund_pending();
        self.release_slot();
    }
}

#[cfg(all(test, not(backstop_loom)))]
mod tests {
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::backoff::Backoff;
    use crate::breaker::{BreakerConfig, CircuitState};
    use crate::clock::ManualClock;
    use crate::policy::RetryPolicyBuilder;
    use crate::verdict::AlwaysRetry;

    const SEC: Duration = Duration::from_secs(1);

    /// 3 attempts, a constant 1 s backoff without jitter, then `adjust`.
    fn policy(adjust: impl FnOnce(RetryPolicyBuilder) -> RetryPolicyBuilder) -> RetryPolicy {
        adjust(RetryPolicy::builder().max_attempts(3).backoff(Backoff::constant(SEC))).build().unwrap()
    }

    fn settings<'a>(policy: &'a RetryPolicy, clock: &'a ManualClock) -> RunSettings<'a> {
        let mut settings = RunSettings::new(policy);
        settings.clock = Some(clock);
        settings
    }

    fn start(settings: RunSettings<'_>) -> RunState<'_, &'static str> {
        RunState::new(settings)
    }

    fn run<'a>(policy: &'a RetryPolicy, clock: &'a ManualClock) -> RunState<'a, &'static str> {
        start(settings(policy, clock))
    }

    /// A run drawing its retries from `budget`.
    fn budgeted<'a>(
        policy: &'a RetryPolicy,
        clock: &'a ManualClock,
        budget: &'a RetryBudget,
    ) -> RunState<'a, &'static str> {
        let mut s = settings(policy, clock);
        s.budget = Some(budget);
        start(s)
    }

    /// Makes an attempt that fails with a transient error; returns the sleep before the retry.
    fn fail_once(state: &mut RunState<'_, &'static str>) -> Duration {
        begin(state);
        slept(state.failed("503", &AlwaysRetry, &mut ()))
    }

    fn judged(v: Verdict) -> impl Fn(&&'static str) -> Verdict {
        move |_| v
    }

    /// Starts an attempt that the guards let through.
    fn begin(state: &mut RunState<'_, &'static str>) {
        assert!(state.before_attempt().is_none(), "the attempt should have been let through");
    }

    fn slept<E>(step: Step<E>) -> Duration {
        match step {
            Step::Sleep(d) => d,
            Step::Wait(_) => panic!("expected a sleep, the run waits for a place"),
            Step::Stop(_) => panic!("expected a sleep, the run stopped"),
        }
    }

    fn stopped<E>(step: Step<E>) -> RetryError<E> {
        match step {
            Step::Sleep(d) => panic!("expected a stop, the run sleeps {d:?}"),
            Step::Wait(_) => panic!("expected a stop, the run waits for a place"),
            Step::Stop(e) => e,
        }
    }

    fn bucket(capacity: u32) -> RetryBudget {
        RetryBudget::token_bucket("retry_budget").capacity(capacity).retry_cost(5).build().unwrap()
    }

    fn breaker(clock: &ManualClock, open_for: Duration) -> CircuitBreaker {
        let config =
            BreakerConfig::builder().consecutive_failures(1).open_for(Backoff::constant(open_for)).build().unwrap();
        CircuitBreaker::builder("downstream").config(config).clock(clock).build()
    }

    fn poll(timer: &mut SleepFuture) -> Poll<()> {
        timer.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_transient_failure_sleeps_the_backoff_delay() {
        let (p, clock) = (policy(|b| b), ManualClock::new());
        let mut state = run(&p, &clock);
        begin(&mut state);
        assert_eq!(slept(state.failed("503", &AlwaysRetry, &mut ())), SEC);
    }

    #[test]
    fn a_permanent_error_stops_at_once_as_rejected() {
        let (p, clock) = (policy(|b| b), ManualClock::new());
        let mut state = run(&p, &clock);
        begin(&mut state);
        let err = stopped(state.failed("404", &judged(Verdict::Fail), &mut ()));
        assert!(matches!(err, RetryError::Rejected { attempts: 1, last: "404", .. }));
    }

    #[test]
    fn the_verdict_is_judged_before_the_attempt_limit() {
        let (p, clock) = (policy(|b| b.max_attempts(1)), ManualClock::new());
        let mut state = run(&p, &clock);
        begin(&mut state);
        assert!(matches!(stopped(state.failed("404", &judged(Verdict::Fail), &mut ())), RetryError::Rejected { .. }));
    }

    #[test]
    fn the_last_allowed_attempt_ends_the_run_as_exhausted() {
        let (p, clock) = (policy(|b| b.max_attempts(2)), ManualClock::new());
        let mut state = run(&p, &clock);
        begin(&mut state);
        clock.sleep(slept(state.failed("503", &AlwaysRetry, &mut ())));
        begin(&mut state);
        let err = stopped(state.failed("503 again", &AlwaysRetry, &mut ()));
        // Without a deadline, time counts from the first failure.
        assert!(matches!(err, RetryError::Exhausted { attempts: 2, elapsed: SEC, last: "503 again", .. }));
    }

    #[test]
    fn the_attempt_limit_is_judged_before_the_server_hint() {
        let (p, clock) = (policy(|b| b.max_attempts(1).max_retry_after(SEC)), ManualClock::new());
        let mut state = run(&p, &clock);
        begin(&mut state);
        let err = stopped(state.failed("429", &judged(Verdict::RetryAfter(10 * SEC)), &mut ()));
        assert!(matches!(err, RetryError::Exhausted { attempts: 1, .. }));
    }

    #[test]
    fn a_hint_above_max_retry_after_stops_the_run_and_keeps_the_hint() {
        let (p, clock) = (policy(|b| b.max_retry_after(10 * SEC)), ManualClock::new());
        let mut state = run(&p, &clock);
        begin(&mut state);
        let err = stopped(state.failed("429", &judged(Verdict::RetryAfter(11 * SEC)), &mut ()));
        assert_eq!(err.retry_after(), Some(11 * SEC));
        assert!(matches!(err, RetryError::RetryAfterTooLong { attempts: 1, max_retry_after, .. }
            if max_retry_after == 10 * SEC));
    }

    #[test]
    fn a_hint_up_to_max_retry_after_is_slept_exactly_without_jitter() {
        let (p, clock) = (policy(|b| b.max_retry_after(10 * SEC)), ManualClock::new());
        let mut state = run(&p, &clock);
        begin(&mut state);
        let mut heard = Vec::new();
        let mut hook = |e: &RetryEvent<'_, &'static str>| heard.push((e.attempt, e.delay, e.server_hint));
        assert_eq!(slept(state.failed("429", &judged(Verdict::RetryAfter(10 * SEC)), &mut hook)), 10 * SEC);
        assert_eq!(heard, [(1, 10 * SEC, true)]);
    }

    #[test]
    fn a_zero_max_retry_after_ends_the_run_on_any_hint_even_a_zero_one() {
        let (p, clock) = (policy(|b| b.max_retry_after(Duration::ZERO)), ManualClock::new());
        let mut state = run(&p, &clock);
        begin(&mut state);
        let err = stopped(state.failed("429", &judged(Verdict::RetryAfter(Duration::ZERO)), &mut ()));
        assert!(matches!(err, RetryError::RetryAfterTooLong { .. }));
    }

    #[test]
    fn the_server_hint_is_judged_before_the_breaker() {
        let (p, clock) = (policy(|b| b.max_retry_after(SEC)), ManualClock::new());
        let breaker = breaker(&clock, 30 * SEC);
        let mut s = settings(&p, &clock);
        s.breaker = Some(&breaker);
        let mut state = start(s);
        begin(&mut state);
        breaker.isolate();
        let err = stopped(state.failed("429", &judged(Verdict::RetryAfter(5 * SEC)), &mut ()));
        assert!(matches!(err, RetryError::RetryAfterTooLong { .. }));
    }

    #[test]
    fn a_failure_that_opens_the_breaker_stops_the_run_without_sleeping() {
        let (p, clock) = (policy(|b| b), ManualClock::new());
        let breaker = breaker(&clock, 30 * SEC);
        let mut s = settings(&p, &clock);
        s.breaker = Some(&breaker);
        let mut state = start(s);
        begin(&mut state);
        let err = stopped(state.failed("503", &AlwaysRetry, &mut ()));
        assert_eq!(breaker.state(), CircuitState::Open);
        assert!(matches!(&err, RetryError::CircuitOpen { attempts: 1, last: Some("503"), .. }));
        assert_eq!(err.circuit_open().and_then(CircuitOpen::retry_after), Some(30 * SEC));
    }

    #[test]
    fn the_breaker_is_judged_before_the_deadline() {
        let (p, clock) = (policy(|b| b.max_elapsed(SEC / 2)), ManualClock::new());
        let breaker = breaker(&clock, 30 * SEC);
        let mut s = settings(&p, &clock);
        s.breaker = Some(&breaker);
        let mut state = start(s);
        begin(&mut state);
        assert!(matches!(stopped(state.failed("503", &AlwaysRetry, &mut ())), RetryError::CircuitOpen { .. }));
    }

    #[test]
    fn an_attempt_the_breaker_refuses_is_neither_made_nor_counted() {
        let (p, clock) = (policy(|b| b), ManualClock::new());
        let breaker = breaker(&clock, 30 * SEC);
        breaker.isolate();
        let mut s = settings(&p, &clock);
        s.breaker = Some(&breaker);
        let mut state = start(s);
        let err = stopped(state.before_attempt().expect("the breaker should refuse"));
        assert!(matches!(err, RetryError::CircuitOpen { attempts: 0, last: None, .. }));
        assert_eq!(state.attempts(), 0);
    }

    #[test]
    fn with_wait_on_open_circuit_the_run_sleeps_until_the_probe_then_makes_it() {
        let (p, clock) = (policy(|b| b.wait_on_open_circuit(true)), ManualClock::new());
        let breaker = breaker(&clock, 5 * SEC);
        let mut s = settings(&p, &clock);
        s.breaker = Some(&breaker);
        let mut state = start(s);
        begin(&mut state);
        // The open period (5 s) is longer than the backoff (1 s): it wins.
        let wait = slept(state.failed("503", &AlwaysRetry, &mut ()));
        assert_eq!(wait, 5 * SEC);
        clock.sleep(wait);
        begin(&mut state); // the probe
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        state.succeeded();
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[test]
    fn a_wait_for_the_probe_longer_than_max_retry_after_stops_the_run() {
        let (p, clock) = (policy(|b| b.wait_on_open_circuit(true).max_retry_after(4 * SEC)), ManualClock::new());
        let breaker = breaker(&clock, 5 * SEC);
        let mut s = settings(&p, &clock);
        s.breaker = Some(&breaker);
        let mut state = start(s);
        begin(&mut state);
        assert!(matches!(stopped(state.failed("503", &AlwaysRetry, &mut ())), RetryError::CircuitOpen { .. }));
    }

    #[test]
    fn a_retry_whose_delay_would_cross_the_deadline_is_not_made() {
        let (p, clock) = (policy(|b| b.max_elapsed(3 * SEC / 2)), ManualClock::new());
        let mut state = run(&p, &clock);
        begin(&mut state);
        clock.sleep(slept(state.failed("first", &AlwaysRetry, &mut ())));
        begin(&mut state);
        let err = stopped(state.failed("second", &AlwaysRetry, &mut ()));
        assert!(
            matches!(err, RetryError::DeadlineExceeded { attempts: 2, elapsed: SEC, last: Some("second"), deadline, .. }
            if deadline == 3 * SEC / 2)
        );
    }

    #[test]
    fn a_retry_that_lands_exactly_on_the_deadline_is_still_made() {
        let (p, clock) = (policy(|b| b.max_elapsed(2 * SEC)), ManualClock::new());
        let mut state = run(&p, &clock);
        clock.advance(SEC); // the first attempt took 1 s: the deadline counts it
        begin(&mut state);
        assert_eq!(slept(state.failed("503", &AlwaysRetry, &mut ())), SEC);
    }

    #[test]
    fn the_budget_is_the_last_gate_and_stops_the_run_when_spent() {
        let (p, clock) = (policy(|b| b.max_attempts(5)), ManualClock::new());
        let budget = bucket(10); // two retries of 5
        let mut state = budgeted(&p, &clock, &budget);
        for left in [5.0, 0.0] {
            begin(&mut state);
            clock.sleep(slept(state.failed("503", &AlwaysRetry, &mut ())));
            assert_eq!(budget.level(), left);
        }
        begin(&mut state);
        let err = stopped(state.failed("503", &AlwaysRetry, &mut ()));
        assert!(matches!(err, RetryError::BudgetExhausted { attempts: 3, last: "503", .. }));
    }

    #[test]
    fn no_tokens_are_withdrawn_for_a_retry_an_earlier_gate_refuses() {
        let clock = ManualClock::new();
        // Rejected, Exhausted, RetryAfterTooLong, DeadlineExceeded.
        let cases = [
            (policy(|b| b), Verdict::Fail),
            (policy(|b| b.max_attempts(1)), Verdict::Retry),
            (policy(|b| b.max_retry_after(SEC)), Verdict::RetryAfter(10 * SEC)),
            (policy(|b| b.max_elapsed(SEC / 2)), Verdict::Retry),
        ];
        for (p, verdict) in cases {
            let budget = bucket(10);
            let mut state = budgeted(&p, &clock, &budget);
            begin(&mut state);
            let _ = stopped(state.failed("e", &judged(verdict), &mut ()));
            assert_eq!(budget.level(), 10.0);
        }
        // And the breaker's gate.
        let (p, budget, breaker) = (policy(|b| b), bucket(10), breaker(&clock, 30 * SEC));
        let mut s = settings(&p, &clock);
        (s.budget, s.breaker) = (Some(&budget), Some(&breaker));
        let mut state = start(s);
        begin(&mut state);
        assert!(matches!(stopped(state.failed("e", &AlwaysRetry, &mut ())), RetryError::CircuitOpen { .. }));
        assert_eq!(budget.level(), 10.0);
    }

    #[test]
    fn a_run_dropped_during_its_sleep_refunds_the_retry_it_never_made() {
        let (p, clock, budget) = (policy(|b| b), ManualClock::new(), bucket(10));
        let mut state = budgeted(&p, &clock, &budget);
        fail_once(&mut state);
        assert_eq!(budget.level(), 5.0);
        drop(state);
        assert_eq!(budget.level(), 10.0);
    }

    #[test]
    fn a_run_dropped_during_a_retry_keeps_the_tokens_of_that_retry_spent() {
        let (p, clock, budget) = (policy(|b| b), ManualClock::new(), bucket(10));
        let mut state = budgeted(&p, &clock, &budget);
        fail_once(&mut state);
        begin(&mut state); // the retry is under way: it was really made
        drop(state);
        assert_eq!(budget.level(), 5.0);
    }

    #[test]
    fn a_failed_retry_keeps_its_tokens_spent_and_a_successful_one_gives_them_back() {
        let (p, clock, budget) = (policy(|b| b), ManualClock::new(), bucket(15));
        let mut state = budgeted(&p, &clock, &budget);
        fail_once(&mut state);
        fail_once(&mut state);
        assert_eq!(budget.level(), 5.0);
        begin(&mut state);
        state.succeeded();
        assert_eq!(budget.level(), 10.0, "the successful retry's 5 come back, the failed one's do not");
    }

    #[test]
    fn a_retry_the_breaker_refuses_gets_its_tokens_back() {
        let (p, clock, budget) = (policy(|b| b), ManualClock::new(), bucket(10));
        let breaker = breaker(&clock, 30 * SEC);
        let mut s = settings(&p, &clock);
        (s.budget, s.breaker) = (Some(&budget), Some(&breaker));
        let mut state = start(s);
        begin(&mut state);
        // Throttling is ignored by the breaker: it stays closed.
        clock.sleep(slept(state.failed("429", &judged(Verdict::Throttled), &mut ())));
        assert_eq!(budget.level(), 5.0);
        breaker.isolate(); // someone else's failures, during the sleep
        let err = stopped(state.before_attempt().expect("the breaker should refuse"));
        assert!(matches!(err, RetryError::CircuitOpen { attempts: 1, last: Some("429"), .. }));
        assert_eq!(budget.level(), 10.0);
    }

    #[test]
    fn a_run_waiting_for_a_probe_keeps_its_tokens_pending_and_refunds_them_if_dropped() {
        let (p, clock, budget) = (policy(|b| b.wait_on_open_circuit(true)), ManualClock::new(), bucket(10));
        let breaker = breaker(&clock, 5 * SEC);
        let mut s = settings(&p, &clock);
        (s.budget, s.breaker) = (Some(&budget), Some(&breaker));
        let mut state = start(s);
        begin(&mut state);
        let wait = slept(state.failed("503", &AlwaysRetry, &mut ()));
        clock.sleep(wait / 5); // woken early: the breaker still refuses, the run waits on
        assert_eq!(slept(state.before_attempt().expect("the breaker should refuse")), 4 * SEC);
        assert_eq!(budget.level(), 5.0);
        drop(state);
        assert_eq!(budget.level(), 10.0);
    }

    #[test]
    fn attempts_count_every_attempt_begun() {
        let (p, clock) = (policy(|b| b), ManualClock::new());
        let mut state = run(&p, &clock);
        assert_eq!(state.attempts(), 0);
        begin(&mut state);
        assert_eq!(state.attempts(), 1);
        let _ = slept(state.failed("503", &AlwaysRetry, &mut ()));
        assert_eq!(state.attempts(), 1, "a failure is not an attempt");
        begin(&mut state);
        assert_eq!(state.attempts(), 2);
    }

    #[test]
    fn failed_first_counts_the_first_attempt_the_state_never_saw() {
        let (p, clock) = (policy(|b| b.max_attempts(2)), ManualClock::new());
        let mut state = run(&p, &clock);
        let _ = slept(state.failed_first("503", &AlwaysRetry, &mut ()));
        assert_eq!(state.attempts(), 1);
        begin(&mut state);
        let err = stopped(state.failed("503", &AlwaysRetry, &mut ()));
        assert!(matches!(err, RetryError::Exhausted { attempts: 2, .. }));
    }

    #[test]
    fn the_hook_hears_of_each_retry_but_not_of_the_give_up() {
        let (p, clock) = (policy(|b| b.max_attempts(2)), ManualClock::new());
        let mut state = run(&p, &clock);
        let mut heard = Vec::new();
        let mut hook = |e: &RetryEvent<'_, &'static str>| heard.push((e.attempt, e.max_attempts, *e.error));
        begin(&mut state);
        let _ = slept(state.failed("first", &AlwaysRetry, &mut hook));
        begin(&mut state);
        let _ = stopped(state.failed("second", &AlwaysRetry, &mut hook));
        assert_eq!(heard, [(1, 2, "first")]);
    }

    #[test]
    fn attempt_timer_without_timeout_or_deadline_is_none() {
        let (p, clock) = (policy(|b| b), ManualClock::new());
        let mut state = run(&p, &clock);
        assert!(state.attempt_timer(None).is_none());
        assert!(state.attempt_timer(Some(Duration::ZERO)).is_none(), "a zero timeout is no timeout");
    }

    #[test]
    fn attempt_timer_uses_the_timeout_when_the_deadline_is_further() {
        let (p, clock) = (policy(|b| b.max_elapsed(10 * SEC)), ManualClock::new());
        let mut state = run(&p, &clock);
        let (mut timer, cutoff) = state.attempt_timer(Some(2 * SEC)).unwrap();
        assert_eq!(cutoff, Cutoff::AttemptTimeout(2 * SEC));
        clock.advance(2 * SEC - Duration::from_nanos(1));
        assert!(poll(&mut timer).is_pending());
        clock.advance(Duration::from_nanos(1));
        assert!(poll(&mut timer).is_ready());
    }

    #[test]
    fn attempt_timer_uses_what_is_left_of_the_deadline_when_that_comes_first() {
        let (p, clock) = (policy(|b| b.max_elapsed(10 * SEC)), ManualClock::new());
        let mut state = run(&p, &clock);
        clock.advance(7 * SEC);
        let (mut timer, cutoff) = state.attempt_timer(Some(5 * SEC)).unwrap();
        assert_eq!(cutoff, Cutoff::Deadline);
        clock.advance(3 * SEC - Duration::from_nanos(1));
        assert!(poll(&mut timer).is_pending());
        clock.advance(Duration::from_nanos(1));
        assert!(poll(&mut timer).is_ready());
    }

    #[test]
    fn attempt_timer_calls_a_tie_the_deadline_and_a_deadline_alone_bounds_the_attempt() {
        let (p, clock) = (policy(|b| b.max_elapsed(10 * SEC)), ManualClock::new());
        let mut state = run(&p, &clock);
        clock.advance(7 * SEC);
        assert_eq!(state.attempt_timer(Some(3 * SEC)).unwrap().1, Cutoff::Deadline);
        assert_eq!(state.attempt_timer(None).unwrap().1, Cutoff::Deadline);
        clock.advance(60 * SEC); // long past: a timer that is already due
        let (mut timer, _) = state.attempt_timer(None).unwrap();
        assert!(poll(&mut timer).is_ready());
    }

    #[test]
    fn a_deadline_passing_mid_attempt_stops_with_the_last_finished_error() {
        let (p, clock) = (policy(|b| b.max_elapsed(10 * SEC)), ManualClock::new());
        let mut state = run(&p, &clock);
        begin(&mut state);
        clock.sleep(slept(state.failed("first", &AlwaysRetry, &mut ())));
        begin(&mut state);
        clock.advance(9 * SEC);
        let err = stopped(state.deadline_passed());
        assert!(matches!(err, RetryError::DeadlineExceeded { attempts: 2, last: Some("first"), elapsed, deadline, .. }
            if elapsed == 10 * SEC && deadline == 10 * SEC));
    }

    #[test]
    fn an_attempt_cut_by_the_deadline_counts_nothing_on_the_breaker() {
        let (p, clock) = (policy(|b| b.max_elapsed(10 * SEC)), ManualClock::new());
        let breaker = breaker(&clock, 30 * SEC);
        let mut s = settings(&p, &clock);
        s.breaker = Some(&breaker);
        let mut state = start(s);
        begin(&mut state);
        clock.advance(10 * SEC);
        let err = stopped(state.deadline_passed());
        assert!(matches!(err, RetryError::DeadlineExceeded { attempts: 1, last: None, .. }));
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert_eq!(breaker.stats().failures, 0);
    }
}
