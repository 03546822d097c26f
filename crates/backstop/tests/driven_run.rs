//! A driven run (`policy.driven()`), through the public API: the same
//! decisions as `Retry`, and what a dropped run gives back.

use std::time::Duration;

use backstop::breaker::{BreakerConfig, CircuitState};
use backstop::retry::{DrivenRun, Next};
use backstop::{Backoff, CircuitBreaker, ManualClock, RetryBudget, RetryError, RetryPolicy, Verdict, presets};

const S: fn(u64) -> Duration = Duration::from_secs;

/// Drives a run to its end: attempt `i` (from 0) answers `outcome(i)`, each
/// sleep is recorded on `clock`.
fn drive<T>(
    mut next: Next<'_, &'static str>,
    clock: &ManualClock,
    mut outcome: impl FnMut(u32) -> Result<T, (&'static str, Verdict)>,
) -> Result<(T, u32), RetryError<&'static str>> {
    let mut i = 0;
    loop {
        next = match next {
            Next::Attempt(run) => {
                i += 1;
                match outcome(i - 1) {
                    Ok(value) => return Ok((value, run.succeeded())),
                    Err((error, verdict)) => run.failed(error, verdict, &mut ()),
                }
            }
            Next::Sleep(run, delay) => {
                backstop::Clock::sleep(clock, delay);
                run.resume()
            }
            Next::Stop(err) => return Err(err),
        }
    }
}

#[test]
fn a_driven_run_sleeps_and_stops_as_a_retry_does() {
    let policy = presets::S3_UPLOAD.to_builder().seed(11).build().unwrap();
    let (retried, driven) = (ManualClock::new(), ManualClock::new());
    let err = policy.retry(|| Err::<(), _>("SlowDown")).clock(&retried).call().unwrap_err();
    let driven_err =
        drive::<()>(policy.driven().clock(&driven).start(), &driven, |_| Err(("SlowDown", Verdict::Retry)))
            .unwrap_err();
    assert_eq!(retried.sleeps(), driven.sleeps());
    assert_eq!(retried.sleeps().len(), 4);
    assert_eq!(err.to_string(), driven_err.to_string());
    assert!(matches!(driven_err, RetryError::Exhausted { attempts: 5, last: "SlowDown", .. }));
}

#[test]
fn hints_rejections_and_successes_mean_what_they_mean_in_a_retry() {
    let policy = RetryPolicy::builder().max_attempts(5).backoff(Backoff::constant(S(1))).build().unwrap();
    let clock = ManualClock::new();
    let outcome = drive(policy.driven().clock(&clock).start(), &clock, |i| match i {
        0 => Err(("429", Verdict::RetryAfter(S(7)))),
        1 => Err(("503", Verdict::Retry)),
        _ => Ok("body"),
    });
    assert_eq!(outcome.unwrap(), ("body", 3));
    assert_eq!(clock.sleeps()[1], S(1));
    assert!(clock.sleeps()[0] >= S(7), "a Retry-After hint is a floor: {:?}", clock.sleeps());
    let err = drive::<()>(policy.driven().clock(&clock).start(), &clock, |_| Err(("403", Verdict::Fail))).unwrap_err();
    assert!(matches!(err, RetryError::Rejected { attempts: 1, last: "403", .. }));
}

#[test]
fn a_run_dropped_while_it_sleeps_gives_its_budget_tokens_back() {
    let budget = RetryBudget::token_bucket("retry_budget").capacity(10).build().unwrap();
    let policy = RetryPolicy::builder().max_attempts(3).build().unwrap();
    let Next::Attempt(run) = policy.driven().budget(&budget).start::<&str>() else { panic!("no first attempt") };
    let Next::Sleep(run, _) = run.failed("503", Verdict::Retry, &mut ()) else { panic!("no retry") };
    assert_eq!(budget.level(), 5.0, "the retry withdrew its cost");
    drop::<DrivenRun<'_, &str>>(run); // the task awaiting it was cancelled
    assert_eq!(budget.level(), 10.0);
}

#[test]
fn a_run_dropped_during_its_half_open_probe_lets_another_probe_through() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder("s3")
        .config(BreakerConfig::builder().consecutive_failures(1).build().unwrap())
        .clock(&clock)
        .build();
    let policy = RetryPolicy::builder().max_attempts(1).build().unwrap();
    let Next::Attempt(run) = policy.driven().breaker(&breaker).clock(&clock).start::<&str>() else { panic!() };
    assert!(matches!(run.failed("503", Verdict::Retry, &mut ()), Next::Stop(RetryError::Exhausted { .. })));
    assert_eq!(breaker.state(), CircuitState::Open);
    assert!(matches!(policy.driven().breaker(&breaker).start::<&str>(), Next::Stop(RetryError::CircuitOpen { .. })));
    clock.advance(S(30));
    let Next::Attempt(probe) = policy.driven().breaker(&breaker).clock(&clock).start::<&str>() else { panic!() };
    // One probe at a time: a second run is refused while the first is out.
    assert!(matches!(policy.driven().breaker(&breaker).start::<&str>(), Next::Stop(RetryError::CircuitOpen { .. })));
    drop(probe); // cancelled mid-attempt: counts nothing
    let Next::Attempt(probe) = policy.driven().breaker(&breaker).clock(&clock).start::<&str>() else {
        panic!("the dropped probe's place was not given back")
    };
    assert_eq!(probe.succeeded(), 1);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[test]
fn the_deadline_counts_from_the_start() {
    let policy =
        RetryPolicy::builder().max_attempts(10).backoff(Backoff::constant(S(4))).max_elapsed(S(10)).build().unwrap();
    let clock = ManualClock::new();
    let err = drive::<()>(policy.driven().clock(&clock).start(), &clock, |_| Err(("503", Verdict::Retry))).unwrap_err();
    assert_eq!(clock.sleeps(), [S(4), S(4)]);
    assert!(matches!(err, RetryError::DeadlineExceeded { attempts: 3, .. }), "{err}");
}
