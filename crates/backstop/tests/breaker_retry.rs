//! A breaker composed with a retry run: `policy.retry(op).breaker(&cb)`.

use std::cell::Cell;
use std::time::Duration;

use backstop::breaker::BreakerConfig;
use backstop::{Backoff, CircuitBreaker, ManualClock, RetryError, RetryPolicy, Verdict, breaker::CircuitState};

const S: fn(u64) -> Duration = Duration::from_secs;

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::constant(S(1))).build().unwrap()
}

fn breaker(failures: u32, clock: &ManualClock) -> CircuitBreaker {
    CircuitBreaker::builder("s3")
        .config(BreakerConfig::builder().consecutive_failures(failures).build().unwrap())
        .clock(clock)
        .build()
}

#[test]
fn an_open_circuit_ends_the_retries_at_once_and_keeps_the_last_error() {
    let clock = ManualClock::new();
    let b = breaker(2, &clock);
    let calls = Cell::new(0);
    let err = policy(10)
        .retry(|| {
            calls.set(calls.get() + 1);
            Err::<(), _>(format!("503 #{}", calls.get()))
        })
        .breaker(&b)
        .name("upload_to_s3")
        .clock(&clock)
        .call()
        .unwrap_err();
    assert_eq!(calls.get(), 2);
    assert_eq!(clock.sleeps(), [S(1)], "no sleep against the open circuit");
    // The second failure trips the breaker: the run stops there, unslept.
    assert!(matches!(err, RetryError::CircuitOpen { attempts: 2, .. }));
    assert_eq!(err.last_error().map(String::as_str), Some("503 #2"));
    assert_eq!(err.circuit_open().unwrap().state(), CircuitState::Open);
    assert_eq!(
        format!("{err:#}"),
        "upload_to_s3 stopped after 2 attempts: circuit s3 is open; next probe in 30.0 seconds: 503 #2"
    );
}

#[test]
fn a_run_against_an_already_open_circuit_never_calls() {
    let clock = ManualClock::new();
    let b = breaker(1, &clock);
    b.isolate();
    let err = policy(5)
        .retry(|| -> Result<(), std::io::Error> { panic!("must not run") })
        .breaker(&b)
        .clock(&clock)
        .call()
        .unwrap_err();
    assert!(matches!(err, RetryError::CircuitOpen { attempts: 0, last: None, .. }));
    // The rejection is part of the message (once), not a cause of it.
    assert_eq!(err.to_string(), "operation stopped before its first attempt: circuit s3 is isolated until it is reset");
    assert_eq!(format!("{err:#}"), err.to_string());
    assert!(std::error::Error::source(&err).is_none());
}

#[test]
fn waiting_for_the_probe_when_the_policy_opts_in() {
    let clock = ManualClock::new();
    let b = breaker(2, &clock);
    let p = policy(5).to_builder().wait_on_open_circuit(true).build().unwrap();
    let calls = Cell::new(0);
    let v = p
        .retry(|| {
            calls.set(calls.get() + 1);
            if calls.get() <= 2 { Err("503") } else { Ok("up") }
        })
        .breaker(&b)
        .clock(&clock)
        .call();
    assert_eq!(v, Ok("up"));
    // fail, sleep 1 s, fail (trips at t=1, open until 31): wait 30 s, not 1 s; the probe succeeds.
    assert_eq!(clock.sleeps(), [S(1), S(30)]);
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn no_waiting_past_the_deadline() {
    let clock = ManualClock::new();
    let b = breaker(1, &clock);
    let p = policy(5).to_builder().wait_on_open_circuit(true).max_elapsed(S(10)).build().unwrap();
    let err = p.retry(|| Err::<(), _>("503")).breaker(&b).clock(&clock).call().unwrap_err();
    // The first failure opens it for 30 s, past the 10 s deadline: stop now.
    assert!(matches!(err, RetryError::CircuitOpen { attempts: 1, .. }));
    assert!(clock.sleeps().is_empty());
}

#[test]
fn permanent_errors_do_not_trip_the_breaker_by_default() {
    let clock = ManualClock::new();
    let b = breaker(1, &clock);
    for _ in 0..3 {
        let err = policy(3)
            .retry(|| Err::<(), _>(404))
            .when(|s: &i32| Verdict::retry_if(*s >= 500))
            .breaker(&b)
            .clock(&clock)
            .call()
            .unwrap_err();
        assert!(err.is_permanent());
    }
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn a_batch_fails_fast_once_the_circuit_opens() {
    let clock = ManualClock::new();
    let b = breaker(3, &clock);
    let calls = Cell::new(0);
    let outcome = policy(2)
        .batch(0..10, |_| {
            calls.set(calls.get() + 1);
            Err::<(), _>("503")
        })
        .breaker(&b)
        .clock(&clock)
        .call();
    // Item 0: 2 failures; item 1: 1 failure trips it and stops its run;
    // items 2..9 are rejected at once without a call.
    assert_eq!(calls.get(), 3);
    let open = outcome.results.iter().filter(|r| matches!(r, Err(RetryError::CircuitOpen { .. }))).count();
    assert_eq!(open, 9);
}

#[tokio::test(start_paused = true)]
async fn async_runs_respect_the_breaker_too() {
    let b = CircuitBreaker::new("api", BreakerConfig::builder().consecutive_failures(2).build().unwrap());
    let err = policy(5).retry(|| async { Err::<(), _>("503") }).breaker(&b).await.unwrap_err();
    assert!(matches!(err, RetryError::CircuitOpen { attempts: 2, .. }));
}

/// A clock that, on its first sleep, takes the half-open probe slot (another
/// caller's probe), and on its second lets that probe succeed.
struct ProbeThief {
    clock: ManualClock,
    breaker: &'static CircuitBreaker,
    held: std::sync::Mutex<(u32, Option<backstop::breaker::Permit<'static>>)>,
}

impl backstop::Clock for ProbeThief {
    fn now(&self) -> std::time::Instant {
        self.clock.now()
    }
    fn sleep(&self, d: Duration) {
        self.clock.sleep(d);
        let mut held = self.held.lock().unwrap();
        held.0 += 1;
        match held.0 {
            1 => held.1 = Some(self.breaker.try_acquire().expect("half-open after the open period")),
            2 => held.1.take().unwrap().success(),
            _ => {}
        }
    }
    fn sleep_async(&self, d: Duration) -> backstop::clock::SleepFuture {
        self.clock.sleep_async(d)
    }
}

#[test]
fn tokens_paid_for_a_retry_that_waits_on_the_circuit_are_kept_and_returned() {
    let clock = ManualClock::new();
    let b: &'static CircuitBreaker = Box::leak(Box::new(
        CircuitBreaker::builder("s3")
            .config(
                BreakerConfig::builder()
                    .consecutive_failures(1)
                    .open_for(Backoff::constant(S(1)))
                    .half_open_max_calls(1)
                    .build()
                    .unwrap(),
            )
            .clock(&clock)
            .build(),
    ));
    let budget = backstop::RetryBudget::token_bucket("retry_budget").capacity(100).clock(&clock).build().unwrap();
    let thief = ProbeThief { clock: clock.clone(), breaker: b, held: Default::default() };
    let p = policy(5).to_builder().wait_on_open_circuit(true).build().unwrap();
    let calls = Cell::new(0);
    let v = p
        .retry(|| {
            calls.set(calls.get() + 1);
            if calls.get() == 1 { Err("503") } else { Ok("up") }
        })
        .breaker(b)
        .budget(&budget)
        .clock(&thief)
        .call();
    assert_eq!(v, Ok("up"));
    // fail (opens for 1 s), wait 1 s (5 tokens withdrawn), rejected (the
    // probe slot is taken), wait 1 s more, succeed: the 5 tokens come back.
    assert_eq!(calls.get(), 2);
    assert_eq!(clock.sleeps(), [S(1), S(1)]);
    assert_eq!(budget.level(), 100.0);
}

#[test]
fn throttling_does_not_open_the_breaker_unless_configured_to() {
    // 20 runs each throttled 3 times (429 with and without a hint) against a
    // breaker that trips on 2 consecutive failures: the server is alive, the
    // circuit stays closed.
    let classify = |e: &&str| if *e == "429" { Verdict::Throttled } else { Verdict::RetryAfter(S(1)) };
    let clock = ManualClock::new();
    let b = breaker(2, &clock);
    for _ in 0..20 {
        let err = policy(3).retry(|| Err::<(), _>("429")).when(classify).breaker(&b).clock(&clock).call().unwrap_err();
        assert!(matches!(err, RetryError::Exhausted { attempts: 3, .. }), "{err}");
        let err = policy(2).retry(|| Err::<(), _>("503+hint")).when(classify).breaker(&b).clock(&clock).call();
        assert!(matches!(err, Err(RetryError::Exhausted { attempts: 2, .. })));
    }
    assert_eq!(b.state(), CircuitState::Closed);
    // Counted as failures when asked.
    let counted = CircuitBreaker::builder("api")
        .config(
            BreakerConfig::builder()
                .consecutive_failures(2)
                .throttling(backstop::breaker::CountAs::Failure)
                .build()
                .unwrap(),
        )
        .clock(&clock)
        .build();
    let err = policy(3).retry(|| Err::<(), _>("429")).when(classify).breaker(&counted).clock(&clock).call();
    assert!(matches!(err, Err(RetryError::CircuitOpen { attempts: 2, .. })));
}
