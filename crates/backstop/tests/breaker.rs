//! The circuit breaker's state machine, through the public API, in virtual time.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backstop::breaker::Transition;
use backstop::breaker::{BreakerConfig, BreakerError, CountAs, Window};
use backstop::{
    Backoff, CircuitBreaker, ManualClock, Verdict,
    breaker::{BreakerEvent, CircuitState},
};

const S: fn(u64) -> Duration = Duration::from_secs;

fn breaker(config: BreakerConfig, clock: &ManualClock) -> CircuitBreaker {
    CircuitBreaker::builder("s3_upload").config(config).clock(clock).build()
}

fn fail(b: &CircuitBreaker) {
    b.try_acquire().expect("closed").failure();
}

fn succeed(b: &CircuitBreaker) {
    b.try_acquire().expect("closed").success();
}

#[test]
fn the_seeds_default_trips_after_five_consecutive_failures() {
    let clock = ManualClock::new();
    let b = breaker(BreakerConfig::default(), &clock);
    for _ in 0..4 {
        fail(&b);
    }
    assert_eq!(b.state(), CircuitState::Closed);
    fail(&b);
    assert_eq!(b.state(), CircuitState::Open);
    let open = b.try_acquire().unwrap_err();
    assert_eq!(open.state(), CircuitState::Open);
    assert_eq!(open.retry_after(), Some(S(30)));
    assert_eq!(open.name(), "s3_upload");
    assert_eq!(open.to_string(), "circuit s3_upload is open; next probe in 30.0 seconds");
}

#[test]
fn a_success_resets_the_streak() {
    let clock = ManualClock::new();
    let b = breaker(BreakerConfig::default(), &clock);
    for _ in 0..4 {
        fail(&b);
    }
    succeed(&b);
    for _ in 0..4 {
        fail(&b);
    }
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.stats().failures, 8);
}

#[test]
fn open_then_half_open_then_closed_by_a_probe() {
    let clock = ManualClock::new();
    let b = breaker(BreakerConfig::builder().consecutive_failures(2).build().unwrap(), &clock);
    fail(&b);
    fail(&b);
    clock.advance(S(12));
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(S(18)));
    clock.advance(S(18));
    assert_eq!(b.state(), CircuitState::HalfOpen);
    let probe = b.try_acquire().expect("one probe");
    assert_eq!(probe.state(), CircuitState::HalfOpen);
    let second = b.try_acquire().unwrap_err();
    assert_eq!(second.state(), CircuitState::HalfOpen);
    assert_eq!(second.retry_after(), Some(Duration::ZERO));
    probe.success();
    assert_eq!(b.state(), CircuitState::Closed);
    // Closed again, with a fresh count: one failure does not trip it.
    fail(&b);
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn a_failed_probe_reopens_it() {
    let clock = ManualClock::new();
    let b = breaker(BreakerConfig::builder().consecutive_failures(1).build().unwrap(), &clock);
    fail(&b);
    clock.advance(S(30));
    b.try_acquire().expect("probe").failure();
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(S(30)));
}

#[test]
fn a_late_result_does_not_extend_the_open_time() {
    let clock = ManualClock::new();
    let b = breaker(BreakerConfig::builder().consecutive_failures(2).build().unwrap(), &clock);
    let slow_call = b.try_acquire().unwrap(); // issued while closed
    fail(&b);
    fail(&b); // trips at t=0, open until t=30
    clock.advance(S(10));
    slow_call.failure(); // arrives while open
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(S(20)));
    assert_eq!(b.stats().late, 1);
    assert_eq!(b.stats().transitions, 1);
}

#[test]
fn a_late_success_does_not_close_a_later_half_open() {
    let clock = ManualClock::new();
    let b = breaker(BreakerConfig::builder().consecutive_failures(1).build().unwrap(), &clock);
    let old = b.try_acquire().unwrap();
    fail(&b);
    clock.advance(S(30));
    let probe = b.try_acquire().unwrap();
    old.success();
    assert_eq!(b.state(), CircuitState::HalfOpen);
    probe.success();
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn probes_are_limited_and_a_dropped_permit_frees_its_slot() {
    let clock = ManualClock::new();
    let config =
        BreakerConfig::builder().consecutive_failures(1).half_open_max_calls(2).success_threshold(3).build().unwrap();
    let b = breaker(config, &clock);
    fail(&b);
    clock.advance(S(30));
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(p1); // cancelled: counts nothing, frees the slot
    let p3 = b.try_acquire().unwrap();
    p2.success();
    p3.success();
    assert_eq!(b.state(), CircuitState::HalfOpen, "2 of 3 successes");
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn a_growing_open_period_resets_once_closed() {
    let clock = ManualClock::new();
    let config = BreakerConfig::builder()
        .consecutive_failures(1)
        .open_for(Backoff::exponential(S(10)).max_delay(S(60)))
        .build()
        .unwrap();
    let b = breaker(config, &clock);
    let mut periods = Vec::new();
    fail(&b);
    for _ in 0..4 {
        let left = b.try_acquire().unwrap_err().retry_after().unwrap();
        periods.push(left);
        clock.advance(left);
        b.try_acquire().expect("probe").failure();
    }
    assert_eq!(periods, [10, 20, 40, 60].map(S));
    clock.advance(S(60));
    b.try_acquire().unwrap().success();
    fail(&b);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(S(10)));
}

#[test]
fn failure_rate_over_the_last_n_calls() {
    let clock = ManualClock::new();
    let config = BreakerConfig::builder().failure_rate(0.5).window(Window::Count(10)).minimum_calls(6).build().unwrap();
    let b = breaker(config, &clock);
    // Alternating: 50 % failures, but only trips once 6 calls are in.
    for i in 0..5 {
        if i % 2 == 0 { fail(&b) } else { succeed(&b) }
    }
    assert_eq!(b.state(), CircuitState::Closed, "3 of 5, below minimum_calls");
    // The sixth call, a success, makes 3 of 6 = 50 %: the rate is checked on
    // every call once the window holds minimum_calls.
    succeed(&b);
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn old_calls_leave_a_count_window() {
    let clock = ManualClock::new();
    let config = BreakerConfig::builder().failure_rate(0.5).window(Window::Count(4)).minimum_calls(4).build().unwrap();
    let b = breaker(config, &clock);
    fail(&b);
    for _ in 0..3 {
        succeed(&b);
    } // [F S S S]: 25 %
    fail(&b); // [S S S F]: the first failure has left
    assert_eq!(b.state(), CircuitState::Closed);
    fail(&b); // [S S F F]: 50 %
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn failure_rate_over_a_time_window() {
    let clock = ManualClock::new();
    let config = BreakerConfig::builder()
        .failure_rate(0.5)
        .window(Window::Time { duration: S(10), buckets: 10 })
        .minimum_calls(4)
        .build()
        .unwrap();
    let b = breaker(config, &clock);
    fail(&b);
    fail(&b);
    succeed(&b);
    clock.advance(S(11)); // those three have expired
    succeed(&b);
    succeed(&b);
    fail(&b);
    assert_eq!(b.state(), CircuitState::Closed, "1 of 3 in the window");
    fail(&b);
    assert_eq!(b.state(), CircuitState::Open, "2 of 4 in the window");
}

#[test]
fn slow_calls_trip_it_even_when_they_succeed() {
    let clock = ManualClock::new();
    let config =
        BreakerConfig::builder().slow_calls(S(2), 0.5).window(Window::Count(10)).minimum_calls(4).build().unwrap();
    let b = breaker(config, &clock);
    for i in 0..4 {
        let permit = b.try_acquire().unwrap();
        clock.advance(if i % 2 == 0 { S(3) } else { S(1) });
        permit.success();
    }
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn isolate_holds_it_open_until_reset() {
    let clock = ManualClock::new();
    let b = breaker(BreakerConfig::default(), &clock);
    b.isolate();
    clock.advance(S(3600));
    let err = b.try_acquire().unwrap_err();
    assert_eq!(err.state(), CircuitState::Isolated);
    assert_eq!(err.retry_after(), None);
    assert_eq!(err.to_string(), "circuit s3_upload is isolated until it is reset");
    assert_eq!(b.state(), CircuitState::Isolated);
    b.reset();
    assert_eq!(b.state(), CircuitState::Closed);
    succeed(&b);
}

#[test]
fn reset_closes_an_open_breaker_and_forgets_counts() {
    let clock = ManualClock::new();
    let b = breaker(BreakerConfig::builder().consecutive_failures(2).build().unwrap(), &clock);
    fail(&b);
    b.reset();
    fail(&b);
    assert_eq!(b.state(), CircuitState::Closed);
    fail(&b);
    assert_eq!(b.state(), CircuitState::Open);
    b.reset();
    succeed(&b);
}

#[test]
fn permanent_errors_count_as_configured() {
    let clock = ManualClock::new();
    for (how, trips) in [(CountAs::Success, false), (CountAs::Ignore, false), (CountAs::Failure, true)] {
        let config = BreakerConfig::builder().consecutive_failures(2).permanent_errors(how).build().unwrap();
        let b = breaker(config, &clock);
        fail(&b);
        b.try_acquire().unwrap().record(Verdict::Fail); // a 404
        assert_eq!(b.state() == CircuitState::Open, trips, "{how:?}");
        if how == CountAs::Ignore {
            // Ignored: the streak of one failure is still there.
            b.try_acquire().unwrap().record(Verdict::Retry);
            assert_eq!(b.state(), CircuitState::Open);
            assert_eq!(b.stats().ignored, 1);
        }
    }
}

/// A state change as the callback test records it: from, to, cause, open period.
type Change = (CircuitState, CircuitState, String, Option<Duration>);

#[test]
fn state_changes_reach_the_callback_in_order() {
    let clock = ManualClock::new();
    let seen: Arc<Mutex<Vec<Change>>> = Arc::default();
    let log = Arc::clone(&seen);
    let b = CircuitBreaker::builder("weather_api")
        .config(BreakerConfig::builder().consecutive_failures(2).build().unwrap())
        .clock(&clock)
        .on_state_change(move |e: &BreakerEvent<'_>| {
            assert_eq!(e.name, "weather_api");
            log.lock().unwrap().push((e.from, e.to, e.cause.to_string(), e.open_for));
        })
        .build();
    fail(&b);
    fail(&b);
    clock.advance(S(30));
    b.try_acquire().unwrap().success();
    b.isolate();
    b.reset();
    use CircuitState::*;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (Closed, Open, "2 consecutive failures".into(), Some(S(30))),
            (Open, HalfOpen, "the open period is over".into(), None),
            (HalfOpen, Closed, "1 probe succeeded".into(), None),
            (Closed, Isolated, "isolated by hand".into(), None),
            (Isolated, Closed, "reset by hand".into(), None),
        ]
    );
}

#[test]
fn a_callback_may_call_the_breaker() {
    let clock = ManualClock::new();
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::default();
    let inner = Arc::clone(&slot);
    let b = CircuitBreaker::builder("reentrant")
        .config(BreakerConfig::builder().consecutive_failures(1).build().unwrap())
        .clock(&clock)
        .on_state_change(move |e: &BreakerEvent<'_>| {
            if e.to == CircuitState::Open {
                // Reading state from inside the callback must not deadlock.
                let b = inner.lock().unwrap().clone().unwrap();
                assert_eq!(b.state(), CircuitState::Open);
            }
        })
        .build();
    *slot.lock().unwrap() = Some(b.clone());
    fail(&b);
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn call_counts_errors_as_failures() {
    let clock = ManualClock::new();
    let b = breaker(BreakerConfig::builder().consecutive_failures(1).build().unwrap(), &clock);
    assert_eq!(b.call(|| Ok::<_, &str>(5)), Ok(5));
    assert_eq!(b.call(|| Err::<u8, _>("down")), Err(BreakerError::Inner("down")));
    let err = b.call(|| Ok::<_, &str>(5)).unwrap_err();
    assert!(matches!(err, BreakerError::Open(ref o) if o.state() == CircuitState::Open));
    assert_eq!(b.stats().rejected, 1);
}

#[tokio::test]
async fn call_async_holds_the_permit_across_the_await() {
    let clock = ManualClock::new();
    let config = BreakerConfig::builder().consecutive_failures(1).build().unwrap();
    let b = breaker(config, &clock);
    fail(&b);
    clock.advance(S(30));
    let probe = b.call_async(|| async {
        // While this probe runs, its slot is taken.
        assert!(b.try_acquire().is_err());
        Ok::<_, &str>("up")
    });
    assert_eq!(probe.await, Ok("up"));
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn transitions_are_logged() {
    let clock = ManualClock::new();
    let lines = support::logged(|| {
        let b = breaker(BreakerConfig::default(), &clock);
        for _ in 0..5 {
            fail(&b);
        }
        clock.advance(S(30));
        b.try_acquire().unwrap().success();
    });
    let text = lines.join("\n");
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with(" WARN circuit s3_upload opened for 30.0 seconds: 5 consecutive failures"), "{text}");
    assert!(lines[1].starts_with(" INFO circuit s3_upload half-open: letting 1 probe through"), "{text}");
    assert!(lines[2].starts_with(" INFO circuit s3_upload closed: 1 probe succeeded"), "{text}");
}

#[test]
fn transition_causes_read_well() {
    assert_eq!(Transition::FailureRate { calls: 20, failures: 12 }.to_string(), "12 of the last 20 calls failed (60%)");
    assert_eq!(Transition::SlowCallRate { calls: 10, slow: 9 }.to_string(), "9 of the last 10 calls were slow (90%)");
}

#[test]
fn a_rate_rule_that_could_never_trip_is_rejected_naming_both_settings() {
    // 10 calls needed, but the window holds 5: 1000 failures would never open it.
    let err =
        BreakerConfig::builder().failure_rate(0.5).window(Window::Count(5)).minimum_calls(10).build().unwrap_err();
    assert_eq!(err.field(), "minimum_calls");
    let text = err.to_string();
    assert!(text.contains("minimum_calls is 10") && text.contains("window is Count(5)"), "{text}");
    // Equal is fine: the window fills up to minimum_calls.
    assert!(BreakerConfig::builder().failure_rate(0.5).window(Window::Count(5)).minimum_calls(5).build().is_ok());
}

#[test]
fn an_owned_permit_reports_from_another_thread_and_a_dropped_one_frees_its_probe() {
    let clock = ManualClock::new();
    let b = breaker(BreakerConfig::builder().consecutive_failures(1).build().unwrap(), &clock);
    let permit = b.try_acquire_owned().unwrap();
    std::thread::spawn(move || permit.failure()).join().unwrap();
    assert_eq!(b.state(), CircuitState::Open);
    clock.advance(Duration::from_secs(31));
    let probe = b.try_acquire_owned().unwrap();
    assert_eq!(probe.state(), CircuitState::HalfOpen);
    assert!(b.try_acquire_owned().is_err(), "one probe at a time");
    drop(probe); // abandoned: counts nothing, frees the slot
    let probe = b.try_acquire_owned().unwrap();
    probe.success();
    assert_eq!(b.state(), CircuitState::Closed);
}
