//! The sync run loop, through the public API, in virtual time.

use std::cell::Cell;
use std::error::Error as _;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backstop::clock::SleepFuture;
use backstop::{Backoff, Clock, Jitter, ManualClock, RetryError, RetryEvent, RetryPolicy, Verdict, presets};

const S: fn(u64) -> Duration = Duration::from_secs;

#[derive(Debug, Clone, PartialEq)]
enum S3Error {
    SlowDown,
    AccessDenied,
    Hint(Duration),
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Error::SlowDown => f.write_str("SlowDown: reduce your request rate"),
            S3Error::AccessDenied => f.write_str("AccessDenied"),
            S3Error::Hint(d) => write!(f, "throttled, retry after {d:?}"),
        }
    }
}

impl std::error::Error for S3Error {}

fn classify(e: &S3Error) -> Verdict {
    match e {
        S3Error::SlowDown => Verdict::Retry,
        S3Error::AccessDenied => Verdict::Fail,
        S3Error::Hint(d) => Verdict::RetryAfter(*d),
    }
}

fn exact(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::exponential(S(1)).max_delay(S(30))).build().unwrap()
}

#[test]
fn exhausts_with_the_exact_schedule_and_a_one_line_message() {
    let clock = ManualClock::new();
    let calls = Cell::new(0);
    let err = exact(5)
        .retry(|| {
            calls.set(calls.get() + 1);
            Err::<(), _>(S3Error::SlowDown)
        })
        .when(classify)
        .name("upload_to_s3")
        .clock(&clock)
        .call()
        .unwrap_err();
    assert_eq!(calls.get(), 5);
    assert_eq!(clock.sleeps(), [1, 2, 4, 8].map(S));
    assert!(matches!(err, RetryError::Exhausted { attempts: 5, elapsed, .. } if elapsed == S(15)));
    assert_eq!(err.to_string(), "upload_to_s3 failed after 5 attempts in 15.0 seconds");
    assert_eq!(
        format!("{err:#}"),
        "upload_to_s3 failed after 5 attempts in 15.0 seconds: SlowDown: reduce your request rate"
    );
    assert_eq!(err.name(), "upload_to_s3");
    assert_eq!(err.source().unwrap().to_string(), S3Error::SlowDown.to_string());
    assert_eq!(err.into_inner(), Some(S3Error::SlowDown));
}

#[test]
fn caps_long_schedules_at_max_delay() {
    let clock = ManualClock::new();
    let _ = exact(9).retry(|| Err::<(), _>("busy")).clock(&clock).call();
    assert_eq!(clock.sleeps(), [1, 2, 4, 8, 16, 30, 30, 30].map(S));
}

#[test]
fn succeeds_after_transient_failures() {
    let clock = ManualClock::new();
    let mut failures = 2;
    let value = presets::S3_UPLOAD
        .retry(|| {
            if failures > 0 {
                failures -= 1;
                Err(S3Error::SlowDown)
            } else {
                Ok("etag")
            }
        })
        .when(classify)
        .clock(&clock)
        .call()
        .unwrap();
    assert_eq!(value, "etag");
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 2);
    // The seeds' additive jitter: d + U[0, 1 s].
    assert!(sleeps[0] >= S(1) && sleeps[0] <= S(2), "{sleeps:?}");
    assert!(sleeps[1] >= S(2) && sleeps[1] <= S(3), "{sleeps:?}");
}

#[test]
fn a_permanent_error_returns_at_once() {
    let clock = ManualClock::new();
    let calls = Cell::new(0);
    let err = presets::S3_UPLOAD
        .retry(|| {
            calls.set(calls.get() + 1);
            Err::<(), _>(S3Error::AccessDenied)
        })
        .when(classify)
        .name("upload_to_s3")
        .clock(&clock)
        .call()
        .unwrap_err();
    assert_eq!(calls.get(), 1);
    assert!(clock.sleeps().is_empty());
    assert!(err.is_permanent());
    assert!(matches!(err, RetryError::Rejected { attempts: 1, .. }));
    assert_eq!(err.to_string(), "upload_to_s3 failed on attempt 1 with an error that is not retried");
    assert_eq!(format!("{err:#}"), format!("{err}: AccessDenied"));
}

#[test]
fn retry_if_takes_a_predicate() {
    let clock = ManualClock::new();
    let calls = Cell::new(0);
    let err = presets::API_CALL
        .retry(|| {
            calls.set(calls.get() + 1);
            Err::<(), u16>(if calls.get() == 1 { 503 } else { 404 })
        })
        .retry_if(|status: &u16| *status >= 500)
        .clock(&clock)
        .call()
        .unwrap_err();
    assert_eq!(calls.get(), 2);
    assert!(matches!(err, RetryError::Rejected { attempts: 2, last: 404, .. }));
}

#[test]
fn one_attempt_means_no_retry() {
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder().max_attempts(1).build().unwrap();
    let err = policy.retry(|| Err::<(), _>("down")).clock(&clock).call().unwrap_err();
    assert!(clock.sleeps().is_empty());
    assert_eq!(format!("{err:#}"), "operation failed after 1 attempt: down");
}

#[test]
fn honours_a_server_hint_instead_of_the_backoff() {
    let clock = ManualClock::new();
    let mut events = Vec::new();
    let mut first = true;
    let v = exact(5)
        .retry(|| if std::mem::take(&mut first) { Err(S3Error::Hint(S(7))) } else { Ok(1) })
        .when(classify)
        .on_retry(|e: &RetryEvent<'_, S3Error>| events.push((e.delay, e.server_hint)))
        .clock(&clock)
        .call();
    assert_eq!(v.unwrap(), 1);
    assert_eq!(clock.sleeps(), [S(7)]);
    assert_eq!(events, [(S(7), true)]);
}

#[test]
fn a_hint_longer_than_max_retry_after_stops_and_is_kept() {
    let clock = ManualClock::new();
    let policy = exact(5).to_builder().max_retry_after(S(60)).build().unwrap();
    let err = policy
        .retry(|| Err::<(), _>(S3Error::Hint(S(3600))))
        .when(classify)
        .name("get_forecast")
        .clock(&clock)
        .call()
        .unwrap_err();
    assert!(clock.sleeps().is_empty());
    assert_eq!(err.retry_after(), Some(S(3600)));
    assert!(matches!(err, RetryError::RetryAfterTooLong { attempts: 1, .. }));
    assert!(err.to_string().contains("asked to wait 3600.0 seconds, longer than max_retry_after (60.0 seconds)"));
}

#[test]
fn max_retry_after_zero_means_every_hint_ends_the_run_even_a_zero_one() {
    let clock = ManualClock::new();
    let policy = exact(5).to_builder().max_retry_after(Duration::ZERO).build().unwrap();
    let err =
        policy.retry(|| Err::<(), _>(S3Error::Hint(Duration::ZERO))).when(classify).clock(&clock).call().unwrap_err();
    assert!(matches!(err, RetryError::RetryAfterTooLong { attempts: 1, .. }), "{err:?}");
    assert!(clock.sleeps().is_empty());
}

#[test]
fn never_sleeps_past_the_deadline() {
    let clock = ManualClock::new();
    let policy = exact(10).to_builder().max_elapsed(S(10)).build().unwrap();
    let err = policy.retry(|| Err::<(), _>("unavailable")).clock(&clock).call().unwrap_err();
    // 1 + 2 + 4 = 7 s slept; the next 8 s would end at 15 s > 10 s.
    assert_eq!(clock.sleeps(), [1, 2, 4].map(S));
    assert!(matches!(
        err,
        RetryError::DeadlineExceeded { attempts: 4, elapsed, deadline, .. } if elapsed == S(7) && deadline == S(10)
    ));
    assert!(clock.elapsed() <= S(10));
}

#[test]
fn the_deadline_counts_time_spent_in_attempts() {
    let clock = ManualClock::new();
    let policy = exact(10).to_builder().max_elapsed(S(10)).build().unwrap();
    let err = policy
        .retry(|| {
            clock.advance(S(4)); // each attempt takes 4 s
            Err::<(), _>("timeout")
        })
        .clock(&clock)
        .call()
        .unwrap_err();
    // t=4 fail, sleep 1 (t=5); t=9 fail, next sleep 2 would end at 11 > 10.
    assert_eq!(clock.sleeps(), [S(1)]);
    assert!(matches!(err, RetryError::DeadlineExceeded { attempts: 2, elapsed, .. } if elapsed == S(9)));
}

#[test]
fn on_retry_sees_every_retry_with_its_numbers() {
    let clock = ManualClock::new();
    let mut seen = Vec::new();
    let _ = exact(3)
        .retry(|| Err::<(), _>(S3Error::SlowDown))
        .name("fetch")
        .on_retry(|e: &RetryEvent<'_, S3Error>| {
            seen.push((e.name.to_owned(), e.attempt, e.max_attempts, e.delay, e.elapsed, e.error.clone()))
        })
        .clock(&clock)
        .call();
    assert_eq!(
        seen,
        [("fetch".into(), 1, 3, S(1), S(0), S3Error::SlowDown), ("fetch".into(), 2, 3, S(2), S(1), S3Error::SlowDown),]
    );
}

#[test]
fn same_seed_same_sleeps() {
    let policy = presets::DEFAULT.to_builder().seed(42).build().unwrap();
    let run = || {
        let clock = ManualClock::new();
        let _ = policy.retry(|| Err::<(), _>("x")).clock(&clock).call();
        clock.sleeps()
    };
    assert_eq!(run(), run());
    assert_eq!(run(), policy.delays().collect::<Vec<_>>());
}

#[test]
fn owned_names_work_too() {
    let clock = ManualClock::new();
    let key = "reports/2026-11-22.parquet";
    let err = exact(2).retry(|| Err::<(), _>("x")).name(format!("upload {key}")).clock(&clock).call().unwrap_err();
    assert!(err.to_string().starts_with("upload reports/2026-11-22.parquet failed after 2 attempts"));
}

#[test]
fn map_err_keeps_the_shape() {
    let clock = ManualClock::new();
    let err = exact(2).retry(|| Err::<(), _>(7)).clock(&clock).call().unwrap_err();
    let mapped = err.map_err(|n| n * 6);
    assert!(matches!(mapped, RetryError::Exhausted { attempts: 2, last: 42, .. }));
}

/// A clock that counts its reads, to check the success path reads none.
#[derive(Default)]
struct CountingClock(AtomicU32);

impl Clock for CountingClock {
    fn now(&self) -> Instant {
        self.0.fetch_add(1, Ordering::Relaxed);
        Instant::now()
    }
    fn sleep(&self, _: Duration) {}
    fn sleep_async(&self, _: Duration) -> SleepFuture {
        Box::pin(std::future::ready(()))
    }
}

#[test]
fn the_success_path_reads_no_clock_unless_a_deadline_is_set() {
    let clock = CountingClock::default();
    for _ in 0..10 {
        presets::DEFAULT.retry(|| Ok::<_, &str>(1)).clock(&clock).call().unwrap();
    }
    assert_eq!(clock.0.load(Ordering::Relaxed), 0);

    let with_deadline = presets::DEFAULT.to_builder().max_elapsed(S(5)).build().unwrap();
    with_deadline.retry(|| Ok::<_, &str>(1)).clock(&clock).call().unwrap();
    assert_eq!(clock.0.load(Ordering::Relaxed), 1);
}

#[test]
fn huge_attempt_counts_and_factors_saturate() {
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .max_attempts(200)
        .backoff(Backoff::exponential(S(1)).factor(1e300).max_delay(S(30)))
        .build()
        .unwrap();
    let _ = policy.retry(|| Err::<(), _>("x")).clock(&clock).call();
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 199);
    assert_eq!(sleeps[0], S(1));
    assert!(sleeps[1..].iter().all(|d| *d == S(30)));
}

/// The sleeps of a run under `policy` whose first `hints` attempts are told
/// "Retry-After: `hint`" and whose next one succeeds.
fn sleeps_after_hints(policy: &RetryPolicy, hints: u32, hint: Duration) -> Vec<Duration> {
    let clock = ManualClock::new();
    let mut left = hints;
    policy
        .retry(|| {
            if left > 0 {
                left -= 1;
                Err(S3Error::Hint(hint))
            } else {
                Ok(())
            }
        })
        .when(classify)
        .clock(&clock)
        .call()
        .unwrap();
    clock.sleeps()
}

#[test]
fn a_hint_is_a_floor_spread_by_the_jitter_and_capped_by_max_retry_after() {
    // 200 clients all told "Retry-After: 1": with the API preset's (random)
    // jitter they come back spread over [1 s, 2 s], not together; refused
    // again, over [1 s, 3 s].
    let seeded = |seed| presets::API_CALL.to_builder().seed(seed).build().unwrap();
    let (first, second): (Vec<Duration>, Vec<Duration>) = (0..200)
        .map(|seed| {
            let sleeps = sleeps_after_hints(&seeded(seed), 2, S(1));
            (sleeps[0], sleeps[1])
        })
        .unzip();
    assert!(first.iter().all(|w| *w >= S(1) && *w <= S(2)), "{first:?}");
    let early = first.iter().filter(|w| **w < Duration::from_millis(1100)).count();
    assert!(early < 40, "spread, not bunched at the hint: {early} of 200 in the first 0.1 s");
    let late = first.iter().filter(|w| **w > Duration::from_millis(1500)).count();
    assert!(late > 60, "over the whole second: {late} of 200 after 1.5 s");
    assert!(second.iter().all(|w| *w >= S(1) && *w <= S(3)), "{second:?}");
    assert!(second.iter().filter(|w| **w > S(2)).count() > 60, "wider than the first");
    // The spread never passes max_retry_after (but the hint itself may reach it).
    let capped = presets::API_CALL.to_builder().jitter(Jitter::Full).max_retry_after(Duration::from_millis(1100));
    let capped = capped.max_attempts(6).seed(3).build().unwrap();
    let sleeps = sleeps_after_hints(&capped, 5, S(1));
    assert!(sleeps.iter().all(|w| *w >= S(1) && *w <= Duration::from_millis(1100)), "{sleeps:?}");
    // No jitter: exactly the hint.
    assert_eq!(sleeps_after_hints(&exact(3), 1, S(7)), [S(7)]);
}

#[test]
fn every_error_type_prints_each_cause_once() {
    use backstop::breaker::BreakerError;
    use backstop_testkit::errors::assert_prints_well;

    let clock = ManualClock::new();
    // A run's error over an error with a cause of its own.
    let io = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
    let wrapped = || std::io::Error::other(io());
    let err = exact(2).retry(|| Err::<(), _>(wrapped())).name("upload").clock(&clock).call().unwrap_err();
    let printed = assert_prints_well(&err, "SECRET");
    assert_eq!(printed, "upload failed after 2 attempts in 1.0 seconds: connection reset by peer");
    // A breaker's rejection, inside a run and on its own (isolated: the
    // message once, not "...reset: ...reset").
    let breaker = backstop::CircuitBreaker::new("down", Default::default());
    breaker.isolate();
    let err = exact(2).retry(|| Err::<(), _>(io())).breaker(&breaker).clock(&clock).call().unwrap_err();
    assert_prints_well(&err, "SECRET");
    let rejected = breaker.call(|| Ok::<(), std::io::Error>(())).unwrap_err();
    assert_eq!(assert_prints_well(&rejected, "SECRET"), "circuit down is isolated until it is reset");
    assert!(matches!(rejected, BreakerError::Open(_)));
    breaker.reset();
    let failed = breaker.call(|| Err::<(), _>(wrapped())).unwrap_err();
    assert_eq!(assert_prints_well(&failed, "SECRET"), "connection reset by peer");
    // Settings and parsing errors: one layer, no cause.
    let config = RetryPolicy::builder().max_attempts(0).build().unwrap_err();
    assert_prints_well(&config, "SECRET");
    let duration = backstop::parse_duration("5 fortnights").unwrap_err();
    assert_prints_well(&duration, "SECRET");
    let throttle = backstop::AdaptiveThrottle::builder("adaptive_throttle").k(1.0).seed(1).build().unwrap();
    for _ in 0..200 {
        if throttle.try_acquire().is_ok() {
            throttle.record(false);
        }
    }
    let local = (0..100).find_map(|_| throttle.try_acquire().err()).expect("rejects most");
    assert_prints_well(&local, "SECRET");
}
