//! Async per-attempt timeouts and the deadline, on tokio's paused clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backstop::{Backoff, RetryBudget, RetryError, RetryEvent, RetryPolicy, Verdict};

const S: fn(u64) -> Duration = Duration::from_secs;

#[derive(Debug, Clone, PartialEq)]
enum FetchError {
    TimedOut(Duration),
    Http(u16),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::constant(S(1))).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_hung_attempt_is_cut_and_retried() {
    let calls = AtomicU32::new(0);
    let events = Mutex::new(Vec::new());
    let started = tokio::time::Instant::now();
    let v = policy(3)
        .retry(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(S(3600)).await; // hangs
            }
            Ok::<_, FetchError>("forecast")
        })
        .attempt_timeout(S(2), FetchError::TimedOut)
        .on_retry(|e: &RetryEvent<'_, FetchError>| events.lock().unwrap().push(e.error.clone()))
        .await;
    assert_eq!(v, Ok("forecast"));
    assert_eq!(started.elapsed(), S(3), "2 s timeout + 1 s backoff");
    assert_eq!(*events.lock().unwrap(), [FetchError::TimedOut(S(2))]);
}

#[tokio::test(start_paused = true)]
async fn attempts_that_all_time_out_exhaust_the_run() {
    let err = policy(3)
        .retry(|| async {
            std::future::pending::<()>().await;
            Ok::<(), FetchError>(())
        })
        .attempt_timeout(S(5), FetchError::TimedOut)
        .await
        .unwrap_err();
    assert!(matches!(err, RetryError::Exhausted { attempts: 3, last: FetchError::TimedOut(_), .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_classified_like_any_error_and_judged_timeout_when_retried() {
    // The default classifier retries it.
    let calls = AtomicU32::new(0);
    let v = policy(2)
        .retry(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                std::future::pending::<()>().await;
            }
            Ok::<_, FetchError>(7)
        })
        .attempt_timeout(S(1), FetchError::TimedOut)
        .await;
    assert_eq!(v, Ok(7));
    // A classifier that calls the timeout permanent (say, the attempt may
    // have been carried out and must not run twice) ends the run: one call.
    let calls = AtomicU32::new(0);
    let err = policy(3)
        .retry(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<(), FetchError>>().await
        })
        .when(|e: &FetchError| if matches!(e, FetchError::TimedOut(_)) { Verdict::Fail } else { Verdict::Retry })
        .attempt_timeout(S(1), FetchError::TimedOut)
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(matches!(err, RetryError::Rejected { attempts: 1, last: FetchError::TimedOut(_), .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_retry_costs_the_budgets_timeout_cost() {
    let budget = RetryBudget::token_bucket("retry_budget").capacity(100).build().unwrap();
    let _ = policy(2)
        .retry(|| async {
            std::future::pending::<()>().await;
            Ok::<(), FetchError>(())
        })
        .attempt_timeout(S(1), FetchError::TimedOut)
        .budget(&budget)
        .await;
    assert_eq!(budget.level(), 90.0);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_wins_over_a_longer_attempt_timeout() {
    let p = policy(5).to_builder().max_elapsed(S(4)).build().unwrap();
    let started = tokio::time::Instant::now();
    let err = p
        .retry(|| async {
            tokio::time::sleep(S(3)).await;
            Err::<(), _>(FetchError::Http(503))
        })
        .attempt_timeout(S(10), FetchError::TimedOut)
        .await
        .unwrap_err();
    // t=3 fail (503), sleep 1 s; the second attempt is cut at t=4.
    assert_eq!(started.elapsed(), S(4));
    assert!(
        matches!(err, RetryError::DeadlineExceeded { attempts: 2, last: Some(FetchError::Http(503)), .. }),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_zero_timeout_means_none() {
    let v = policy(1)
        .retry(|| async {
            tokio::time::sleep(S(60)).await;
            Ok::<_, FetchError>(1)
        })
        .attempt_timeout(Duration::ZERO, FetchError::TimedOut)
        .await;
    assert_eq!(v, Ok(1));
}
