//! The log lines a run writes with the `tracing` feature: the seeds' wording.
#![cfg(feature = "tracing")]

use std::time::Duration;

use backstop::{Backoff, ManualClock, RetryPolicy, Verdict};

mod support;

use support::logged;

fn policy() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(5)
        .backoff(Backoff::exponential(Duration::from_secs(1)).max_delay(Duration::from_secs(30)))
        .build()
        .unwrap()
}

#[test]
fn retries_and_the_final_success_are_logged_at_info() {
    let clock = ManualClock::new();
    let mut left = 2;
    let lines = logged(|| {
        policy()
            .retry(|| {
                if left > 0 {
                    left -= 1;
                    Err("SlowDown")
                } else {
                    Ok(())
                }
            })
            .name("upload_to_s3")
            .clock(&clock)
            .call()
            .unwrap();
    });
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].starts_with(" INFO Retrying upload_to_s3 in 1.0 seconds (attempt 1/5): SlowDown"), "{}", lines[0]);
    // The documented fields follow, for JSON logs and filters (see tests/json_log.rs).
    assert!(
        lines[0].ends_with(
            "name=upload_to_s3 attempt=1 max_attempts=5 delay_ms=1000 elapsed_ms=0 server_hint=false error=SlowDown"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with(" INFO Retrying upload_to_s3 in 2.0 seconds (attempt 2/5)"), "{}", lines[1]);
    assert!(lines[2].starts_with(" INFO upload_to_s3 succeeded on attempt 3"), "{}", lines[2]);
}

#[test]
fn a_first_attempt_success_logs_nothing() {
    let lines = logged(|| policy().retry(|| Ok::<_, &str>(1)).call().map(drop).unwrap());
    assert!(lines.is_empty(), "{lines:#?}");
}

#[test]
fn giving_up_is_logged_at_warn() {
    let clock = ManualClock::new();
    let lines = logged(|| {
        let _ = policy()
            .to_builder()
            .max_attempts(2)
            .build()
            .unwrap()
            .retry(|| Err::<(), _>("SlowDown"))
            .name("upload_to_s3")
            .clock(&clock)
            .call();
        let _ = policy()
            .retry(|| Err::<(), _>("AccessDenied"))
            .when(|_: &&str| Verdict::Fail)
            .name("upload_to_s3")
            .clock(&clock)
            .call();
    });
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[1].starts_with(" WARN upload_to_s3 failed after 2 attempts in 1.0 seconds: SlowDown"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("reason=\"attempts\""), "{}", lines[1]);
    assert!(
        lines[2].starts_with(" WARN upload_to_s3 failed on attempt 1 with an error that is not retried: AccessDenied")
    );
}

#[test]
fn a_denied_retry_is_logged_at_warn() {
    let clock = ManualClock::new();
    let budget = backstop::RetryBudget::token_bucket("s3").capacity(5).timeout_cost(5).build().unwrap();
    let lines = logged(|| {
        let _ = policy().retry(|| Err::<(), _>("SlowDown")).name("upload_to_s3").budget(&budget).clock(&clock).call();
    });
    assert!(
        lines.iter().any(|l| l.starts_with(" WARN retry budget s3 is spent (0.0 left): retries are refused")),
        "{lines:#?}"
    );
    assert!(lines.last().unwrap().contains("the retry budget is spent: SlowDown"), "{lines:#?}");
}

#[test]
fn an_outage_logs_state_changes_not_a_line_per_refused_call() {
    // A breaker opens after 5 failures; the next 200 calls are refused
    // locally. WARN lines: the state change and the runs that really failed,
    // not one per refusal (those are DEBUG, and counted by `metrics`).
    let clock = ManualClock::new();
    let breaker = backstop::CircuitBreaker::builder("weather_api").clock(&clock).build();
    let one = policy().to_builder().max_attempts(1).build().unwrap();
    let lines = logged(|| {
        for _ in 0..205 {
            let _ = one.retry(|| Err::<(), _>("503")).name("fetch").breaker(&breaker).clock(&clock).call();
        }
    });
    let warns: Vec<_> = lines.iter().filter(|l| l.starts_with(" WARN")).collect();
    assert_eq!(warns.len(), 6, "{warns:#?}");
    assert!(warns.iter().any(|l| l.contains("circuit weather_api opened for 30.0 seconds")), "{warns:#?}");
    assert!(lines.iter().all(|l| l.len() < 200), "{lines:#?}");
}

#[test]
fn a_delay_below_a_tenth_of_a_second_is_not_written_as_zero() {
    let clock = ManualClock::new();
    let policy =
        RetryPolicy::builder().max_attempts(2).backoff(Backoff::constant(Duration::from_millis(12))).build().unwrap();
    let lines = logged(|| {
        let _ = policy.retry(|| Err::<(), _>("busy")).name("poll").clock(&clock).call();
    });
    assert!(lines[0].contains("Retrying poll in 0.012 seconds (attempt 1/2): busy"), "{lines:?}");
}
