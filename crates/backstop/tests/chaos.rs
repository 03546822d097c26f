//! Fault injection through the public API (feature `chaos`): reproducible
//! by seed, at its rates, off and on at run time, and a user's settings
//! (breaker, attempt timeout) tested against it with no server.
#![cfg(feature = "chaos")]

use std::time::Duration;

use backstop::breaker::{BreakerConfig, CircuitState};
use backstop::chaos::{Chaos, Fault, Injection};
use backstop::{CircuitBreaker, ManualClock, RetryError, RetryPolicy, Verdict};

fn chaos(seed: u64) -> Chaos {
    Chaos::builder("test")
        .fault(0.2, Fault::Throttled)
        .fault(0.1, Fault::Unavailable)
        .latency(0.25, Duration::from_millis(300))
        .seed(seed)
        .build()
        .unwrap()
}

#[test]
fn the_same_seed_injects_the_same_faults_and_another_seed_others() {
    let draws = |c: &Chaos| (0..1_000).map(|_| c.next()).collect::<Vec<Injection>>();
    assert_eq!(draws(&chaos(7)), draws(&chaos(7)));
    assert_ne!(draws(&chaos(7)), draws(&chaos(8)));
}

#[test]
fn faults_and_delays_come_at_their_rates() {
    let c = chaos(42);
    let draws: Vec<Injection> = (0..20_000).map(|_| c.next()).collect();
    let count = |f: Fault| draws.iter().filter(|i| i.fault == Some(f)).count() as f64 / 20_000.0;
    let delayed = draws.iter().filter(|i| i.delay == Duration::from_millis(300)).count() as f64 / 20_000.0;
    assert!((count(Fault::Throttled) - 0.2).abs() < 0.015, "{}", count(Fault::Throttled));
    assert!((count(Fault::Unavailable) - 0.1).abs() < 0.015, "{}", count(Fault::Unavailable));
    assert!((delayed - 0.25).abs() < 0.015, "{delayed}");
    assert_eq!(c.injected(), draws.iter().filter(|i| i.fault.is_some()).count() as u64);
}

#[test]
fn disabled_it_injects_nothing_and_resumes_its_sequence_when_enabled() {
    let (a, b) = (chaos(3), chaos(3));
    let first: Vec<Injection> = (0..10).map(|_| a.next()).collect();
    a.set_enabled(false);
    assert!((0..100).all(|_| a.next() == Injection::NONE));
    a.set_enabled(true);
    let rest: Vec<Injection> = (0..10).map(|_| a.next()).collect();
    let expected: Vec<Injection> = (0..20).map(|_| b.next()).collect();
    assert_eq!([first, rest].concat(), expected);
    let off = Chaos::builder("off").fault(1.0, Fault::Permanent).enabled(false).build().unwrap();
    assert_eq!(off.next(), Injection::NONE);
}

#[derive(Debug, PartialEq)]
enum ApiError {
    Down,
    Throttled,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

fn inject(fault: Fault) -> ApiError {
    if fault == Fault::Throttled { ApiError::Throttled } else { ApiError::Down }
}

/// A user checks that their breaker opens on an outage, with no server: an
/// injected outage (every attempt unavailable) exhausts the runs and trips
/// it after 5 failures; the operation itself is never called.
#[test]
fn a_users_breaker_is_tested_against_an_injected_outage() {
    let outage = Chaos::builder("outage").fault(1.0, Fault::Unavailable).seed(1).build().unwrap();
    let breaker = CircuitBreaker::new("api", BreakerConfig::default());
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder().max_attempts(3).seed(1).build().unwrap();
    let mut called = 0;
    for _ in 0..3 {
        let _ = policy
            .retry(outage.wrap(
                || {
                    called += 1;
                    Ok::<_, ApiError>(())
                },
                inject,
            ))
            .breaker(&breaker)
            .clock(&clock)
            .call();
    }
    assert_eq!(called, 0, "an injected fault never reaches the operation");
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(outage.injected(), 5, "the breaker stopped the runs after 5 failures");
}

/// A user checks their per-attempt timeout against injected latency, in
/// tokio's paused time: every attempt delayed 2 s past a 1 s timeout times
/// out, and the run gives up after its attempts, in 3 s of virtual time.
#[tokio::test(start_paused = true)]
async fn a_users_attempt_timeout_is_tested_against_injected_latency() {
    let slow = Chaos::builder("slow").latency(1.0, Duration::from_secs(2)).seed(1).build().unwrap();
    let policy =
        RetryPolicy::builder().max_attempts(3).backoff(backstop::Backoff::constant(Duration::ZERO)).build().unwrap();
    let started = tokio::time::Instant::now();
    let err = policy
        .retry(slow.wrap_async(|| async { Ok::<_, &str>("ok") }, |_| "injected"))
        .attempt_timeout(Duration::from_secs(1), |_| "timed out")
        .await
        .unwrap_err();
    assert!(matches!(err, RetryError::Exhausted { attempts: 3, .. }), "{err}");
    assert_eq!(err.last_error(), Some(&"timed out"));
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(slow.delayed(), 3);
}

/// Injected throttling reaches the run's classifier as the user's error:
/// a seeded sequence of throttles, retried, and the same number of attempts
/// each time it is replayed.
#[test]
fn injected_throttling_is_classified_and_replays_the_same() {
    let attempts = |seed| {
        let c = Chaos::builder("t").fault(0.5, Fault::Throttled).seed(seed).build().unwrap();
        let clock = ManualClock::new();
        let policy = RetryPolicy::builder().max_attempts(10).seed(1).build().unwrap();
        let (_, n) = policy
            .retry(c.wrap(|| Ok::<_, ApiError>(()), inject))
            .when(|e: &ApiError| if *e == ApiError::Throttled { Verdict::Throttled } else { Verdict::Fail })
            .clock(&clock)
            .with_attempts()
            .call()
            .unwrap();
        (n, c.injected(), clock.sleeps().len())
    };
    let (n, injected, sleeps) = attempts(11);
    assert_eq!(u64::from(n) - 1, injected);
    assert_eq!(sleeps as u64, injected);
    assert_eq!(attempts(11), (n, injected, sleeps));
}

#[test]
fn bad_rates_name_their_field() {
    let e = Chaos::builder("x").fault(1.5, Fault::Unavailable).build().unwrap_err();
    assert_eq!(e.field(), "fault");
    let e = Chaos::builder("x").fault(0.6, Fault::Unavailable).fault(0.6, Fault::Throttled).build().unwrap_err();
    assert!(e.to_string().contains("add up"), "{e}");
    let e = Chaos::builder("x").latency(-0.1, Duration::from_secs(1)).build().unwrap_err();
    assert_eq!(e.field(), "latency");
    let e = Chaos::builder("x").fault(f64::NAN, Fault::Unavailable).build().unwrap_err();
    assert_eq!(e.field(), "fault");
}
