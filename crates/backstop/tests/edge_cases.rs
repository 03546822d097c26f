//! Behaviour that mutation testing found untested: boundaries and counters of
//! the run loop, the breaker and the budget that no other test pinned down
//! (`cargo mutants` left these mutants alive). Each test names the behaviour
//! it guards. Deterministic: `ManualClock` or tokio's paused clock, no jitter,
//! no real sleeps.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backstop::breaker::{BreakerConfig, Window};
use backstop::{
    Backoff, CircuitBreaker, ManualClock, RetryBudget, RetryError, RetryEvent, RetryPolicy, Verdict,
    breaker::CircuitState,
};

const S: fn(u64) -> Duration = Duration::from_secs;

// ---- budget ---------------------------------------------------------------

/// `RetryBudget::name`: the name set on the builder is the one reported.
#[test]
fn a_budget_reports_its_name() {
    let budget = RetryBudget::token_bucket("s3-puts").build().unwrap();
    assert_eq!(budget.name(), "s3-puts");
    let ratio = RetryBudget::ratio("api").build().unwrap();
    assert_eq!(ratio.name(), "api");
    assert_eq!(RetryBudget::default().name(), "retry_budget");
}

/// `RetryBudget::denied`: starts at zero and counts every refusal.
#[test]
fn denials_are_counted_one_by_one() {
    let budget = RetryBudget::token_bucket("retry_budget").capacity(5).timeout_cost(5).build().unwrap();
    assert_eq!(budget.denied(), 0);
    let _granted = budget.try_withdraw(Verdict::Retry).unwrap();
    for n in 1..=3 {
        assert!(budget.try_withdraw(Verdict::Retry).is_none());
        assert_eq!(budget.denied(), n);
    }
}

/// `RetryBudget::level` of a ratio budget: the floor plus the share of
/// requests, minus the retries already granted.
#[test]
fn a_ratio_budgets_level_goes_down_with_each_retry() {
    let clock = ManualClock::new();
    let budget =
        RetryBudget::ratio("retry_budget").ratio(0.5).min_per_sec(1.0).window(S(10)).clock(&clock).build().unwrap();
    assert_eq!(budget.level(), 10.0, "the floor: 1/s over 10 s");
    for _ in 0..4 {
        budget.record_request();
    }
    assert_eq!(budget.level(), 12.0, "plus half of 4 requests");
    let _w = budget.try_withdraw(Verdict::Retry).unwrap();
    assert_eq!(budget.level(), 11.0);
    let _w = budget.try_withdraw(Verdict::Retry).unwrap();
    assert_eq!(budget.level(), 10.0);
}

/// The refill of a token bucket accrues time in fractions of a token: asking
/// often (every 0.5 ms, each too short to earn a thousandth of a token at 1
/// token/s) must not reset the refill clock and lose the time.
#[test]
fn frequent_requests_do_not_starve_the_refill() {
    let clock = ManualClock::new();
    let budget = RetryBudget::token_bucket("retry_budget")
        .capacity(5)
        .timeout_cost(5)
        .refill_per_sec(1.0)
        .clock(&clock)
        .build()
        .unwrap();
    let _w = budget.try_withdraw(Verdict::Retry).unwrap();
    assert_eq!(budget.level(), 0.0);
    // 2 s in steps of 0.5 ms, asking each time (refused: not 5 tokens yet).
    for _ in 0..4000 {
        clock.advance(Duration::from_micros(500));
        assert!(budget.try_withdraw(Verdict::Retry).is_none());
    }
    assert!((budget.level() - 2.0).abs() < 0.01, "2 s at 1 token/s: {}", budget.level());
}

// ---- breaker --------------------------------------------------------------

fn one_strike_breaker(clock: &ManualClock, probes: u32) -> CircuitBreaker {
    let config = BreakerConfig::builder()
        .consecutive_failures(1)
        .open_for(Backoff::constant(S(30)))
        .half_open_max_calls(probes)
        .build()
        .unwrap();
    CircuitBreaker::builder("db").config(config).clock(clock).build()
}

/// `would_reject` on a half-open breaker: free probe slots let a call
/// through (`None`); once every slot is taken, it reports the rejection
/// `try_acquire` would give, without taking anything.
#[test]
fn would_reject_a_half_open_breaker_only_when_its_probe_slots_are_taken() {
    let clock = ManualClock::new();
    let b = one_strike_breaker(&clock, 2);
    b.try_acquire().unwrap().failure();
    clock.advance(S(30));
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert!(b.would_reject().is_none(), "two free slots");
    let first = b.try_acquire().unwrap();
    assert!(b.would_reject().is_none(), "one free slot");
    let second = b.try_acquire().unwrap();
    let open = b.would_reject().expect("both slots taken");
    assert_eq!(open.state(), CircuitState::HalfOpen);
    assert_eq!(open.retry_after(), Some(Duration::ZERO));
    assert!(b.try_acquire().is_err());
    drop((first, second));
}

/// The open period's end is exact: one nanosecond before it an open breaker
/// rejects (and says how long is left), at it a probe may go.
#[test]
fn an_open_period_ends_exactly_on_time() {
    let clock = ManualClock::new();
    let b = one_strike_breaker(&clock, 1);
    b.try_acquire().unwrap().failure();
    clock.advance(S(30) - Duration::from_nanos(1));
    let open = b.would_reject().expect("still open");
    assert_eq!(open.state(), CircuitState::Open);
    assert_eq!(open.retry_after(), Some(Duration::from_nanos(1)));
    clock.advance(Duration::from_nanos(1));
    assert!(b.would_reject().is_none(), "the period is over: a probe may go");
    assert!(b.try_acquire().is_ok());
}

/// The fast path of a success on a closed breaker applies only to a permit
/// of the current epoch: a success from before a trip and reset is late. It
/// is counted as such and must not wipe the new epoch's failure streak.
#[test]
fn a_stale_success_neither_resets_the_new_streak_nor_goes_uncounted() {
    let clock = ManualClock::new();
    let config = BreakerConfig::builder().consecutive_failures(3).build().unwrap();
    let b = CircuitBreaker::builder("db").config(config).clock(&clock).build();
    let stale = b.try_acquire().unwrap();
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), CircuitState::Open);
    b.reset();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    stale.success(); // issued two epochs ago
    assert_eq!(b.stats().late, 1);
    assert_eq!(b.state(), CircuitState::Closed);
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), CircuitState::Open, "the streak of the new epoch was 2, now 3");
}

/// With both a streak rule and a rate window, successes take the slow path of
/// `record`, and there too a success ends the failure streak.
#[test]
fn a_success_resets_the_streak_when_a_rate_window_is_also_kept() {
    let clock = ManualClock::new();
    let config = BreakerConfig::builder()
        .consecutive_failures(3)
        .failure_rate(0.9)
        .window(Window::Count(20))
        .minimum_calls(20)
        .build()
        .unwrap();
    let b = CircuitBreaker::builder("db").config(config).clock(&clock).build();
    for _ in 0..5 {
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().success();
    }
    assert_eq!(b.state(), CircuitState::Closed, "never three failures in a row");
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), CircuitState::Open);
}

/// The slow-call rule counts calls that took at least the threshold, and only
/// those: quick calls never trip it, calls of exactly the threshold do.
#[test]
fn only_calls_at_or_over_the_threshold_are_slow() {
    let run = |took: Duration| {
        let clock = ManualClock::new();
        let config =
            BreakerConfig::builder().slow_calls(S(2), 0.5).window(Window::Count(10)).minimum_calls(4).build().unwrap();
        let b = CircuitBreaker::builder("db").config(config).clock(&clock).build();
        for _ in 0..4 {
            let permit = b.try_acquire().unwrap();
            clock.advance(took);
            permit.success();
        }
        b.state()
    };
    assert_eq!(run(S(1)), CircuitState::Closed);
    assert_eq!(run(S(2) - Duration::from_nanos(1)), CircuitState::Closed);
    assert_eq!(run(S(2)), CircuitState::Open);
}

/// A probe's result from an earlier half-open period is late: counted as
/// such, and it must not count towards closing the current half-open period.
#[test]
fn a_probe_result_from_an_earlier_half_open_period_is_late() {
    let clock = ManualClock::new();
    let config = BreakerConfig::builder()
        .consecutive_failures(1)
        .open_for(Backoff::constant(S(30)))
        .half_open_max_calls(2)
        .success_threshold(2)
        .build()
        .unwrap();
    let b = CircuitBreaker::builder("db").config(config).clock(&clock).build();
    b.try_acquire().unwrap().failure();
    clock.advance(S(30));
    let stale = b.try_acquire().unwrap(); // a probe of this half-open period
    b.try_acquire().unwrap().failure(); // the other probe fails: open again
    clock.advance(S(30));
    assert_eq!(b.state(), CircuitState::HalfOpen);
    let current = b.try_acquire().unwrap();
    let late_before = b.stats().late;
    stale.success();
    assert_eq!(b.stats().late, late_before + 1);
    current.success();
    assert_eq!(b.state(), CircuitState::HalfOpen, "one success of this period, two needed");
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), CircuitState::Closed);
}

/// A probe permit of an earlier half-open period dropped without a result
/// frees nothing: the slots of the current period belong to its own probes.
#[test]
fn dropping_a_stale_probe_permit_frees_no_current_slot() {
    let clock = ManualClock::new();
    let config = BreakerConfig::builder()
        .consecutive_failures(1)
        .open_for(Backoff::constant(S(30)))
        .half_open_max_calls(2)
        .build()
        .unwrap();
    let b = CircuitBreaker::builder("db").config(config).clock(&clock).build();
    b.try_acquire().unwrap().failure();
    clock.advance(S(30));
    let stale = b.try_acquire().unwrap();
    b.try_acquire().unwrap().failure(); // open again
    clock.advance(S(30));
    let probes = (b.try_acquire().unwrap(), b.try_acquire().unwrap());
    assert!(b.try_acquire().is_err(), "both slots taken");
    drop(stale);
    assert!(b.try_acquire().is_err(), "still both taken");
    drop(probes);
    assert!(b.try_acquire().is_ok());
}

// ---- the run loop ---------------------------------------------------------

fn constant_policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::constant(S(1))).build().unwrap()
}

/// A server hint of exactly `max_retry_after` is within the limit: honoured,
/// not a reason to stop.
#[test]
fn a_hint_of_exactly_max_retry_after_is_honoured() {
    let clock = ManualClock::new();
    let policy = constant_policy(3).to_builder().max_retry_after(S(5)).build().unwrap();
    let mut calls = 0;
    let got = policy
        .retry(|| {
            calls += 1;
            if calls == 1 { Err("429".to_string()) } else { Ok(calls) }
        })
        .when(|_: &String| Verdict::RetryAfter(S(5)))
        .clock(&clock)
        .call();
    assert_eq!(got, Ok(2));
    assert_eq!(clock.sleeps(), [S(5)]);
}

/// Tokens withdrawn for a retry that the breaker then refuses (it opened
/// during the sleep) go back to the budget: that retry was never made.
#[test]
fn a_retry_refused_by_the_breaker_gives_its_tokens_back() {
    let clock = ManualClock::new();
    let budget = RetryBudget::token_bucket("retry_budget").capacity(10).build().unwrap();
    let b = CircuitBreaker::builder("db").clock(&clock).build();
    let err = constant_policy(5)
        .retry(|| Err::<(), _>("503".to_string()))
        .budget(&budget)
        .breaker(&b)
        .on_retry(|_: &RetryEvent<'_, String>| b.isolate()) // opened by someone else meanwhile
        .clock(&clock)
        .call()
        .unwrap_err();
    assert!(matches!(err, RetryError::CircuitOpen { attempts: 1, .. }), "{err}");
    assert_eq!(clock.sleeps(), [S(1)]);
    assert_eq!(budget.level(), 10.0, "the 5 tokens of the refused retry are refunded");
}

/// With both a per-attempt timeout and a deadline, a hung attempt is cut at
/// whichever comes first: here the timeout (2 s), well before the deadline.
#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_cuts_before_a_later_deadline() {
    let calls = AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    let policy = constant_policy(3).to_builder().max_elapsed(S(60)).build().unwrap();
    let got = policy
        .retry(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                std::future::pending::<()>().await; // hangs
            }
            Ok::<_, String>("done")
        })
        .attempt_timeout(S(2), |d| format!("timed out after {d:?}"))
        .await;
    assert_eq!(got, Ok("done"));
    assert_eq!(started.elapsed(), S(3), "2 s timeout + 1 s backoff");
}
