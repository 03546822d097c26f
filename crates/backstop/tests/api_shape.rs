//! The shape of the API, as a new user writes it: closures whose argument
//! types are inferred, one `Guards` value, attempt counts on success, futures
//! that are `Send` and can be named, presets that can be borrowed for ever.
//!
//! Every closure below is written without a type annotation on purpose: if
//! this file compiles, the error type is known to the builder from the
//! operation.

use std::future::IntoFuture;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backstop::{
    CircuitBreaker, Guards, Jitter, ManualClock, RetryBudget, RetryError, RetryPolicy, Verdict, breaker::BreakerConfig,
    presets,
};

const S: fn(u64) -> Duration = Duration::from_secs;

#[derive(Debug, PartialEq)]
enum S3Error {
    SlowDown,
    AccessDenied,
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

fn exact(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).jitter(Jitter::None).build().unwrap()
}

/// An operation that fails `failures` times with `SlowDown`, then answers.
fn flaky(failures: u32) -> impl FnMut() -> Result<&'static str, S3Error> {
    let mut left = failures;
    move || {
        if left > 0 {
            left -= 1;
            Err(S3Error::SlowDown)
        } else {
            Ok("etag-1")
        }
    }
}

#[test]
fn sync_classifier_and_callback_infer_the_error_type() {
    let clock = ManualClock::new();
    let seen = Mutex::new(Vec::new());
    let etag = exact(5)
        .retry(flaky(2))
        .when(|e| if *e == S3Error::AccessDenied { Verdict::Fail } else { Verdict::Retry })
        .on_retry(|ev| seen.lock().unwrap().push((ev.attempt, ev.delay, ev.error.to_string())))
        .clock(&clock)
        .call()
        .unwrap();
    assert_eq!(etag, "etag-1");
    assert_eq!(*seen.lock().unwrap(), [(1, S(1), "SlowDown".into()), (2, S(2), "SlowDown".into())]);

    let err = exact(5).retry(|| Err::<(), _>(S3Error::AccessDenied)).retry_if(|e| *e == S3Error::SlowDown).call();
    assert!(matches!(err, Err(RetryError::Rejected { attempts: 1, last: S3Error::AccessDenied, .. })));
}

#[tokio::test(start_paused = true)]
async fn async_classifier_and_callback_infer_the_error_type() {
    let calls = AtomicU32::new(0);
    let retries = AtomicU32::new(0);
    let body = exact(3)
        .retry(|| async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(S3Error::SlowDown),
                _ => Ok("body"),
            }
        })
        .when(|e| Verdict::retry_if(*e == S3Error::SlowDown))
        .on_retry(|ev| {
            assert_eq!(*ev.error, S3Error::SlowDown);
            retries.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    assert_eq!((body, retries.load(Ordering::SeqCst)), ("body", 1));
}

#[test]
fn with_attempts_reports_how_many_attempts_a_success_took() {
    let clock = ManualClock::new();
    // A bare first-attempt success: 1, with no run state built.
    assert_eq!(exact(5).retry(flaky(0)).with_attempts().call().unwrap(), ("etag-1", 1));
    // After two retries: 3.
    assert_eq!(exact(5).retry(flaky(2)).with_attempts().clock(&clock).call().unwrap(), ("etag-1", 3));
    // Through a guard (the run state is built before the first attempt).
    let breaker = CircuitBreaker::new("s3", BreakerConfig::default());
    let policy = exact(5);
    let run = policy.retry(flaky(1)).breaker(&breaker).clock(&clock).with_attempts();
    assert_eq!(run.call().unwrap(), ("etag-1", 2));
}

#[tokio::test(start_paused = true)]
async fn with_attempts_reports_the_count_of_an_async_run() {
    let mut left = 3u32;
    let (value, attempts) = exact(5)
        .retry(|| {
            let fail = left > 0;
            left = left.saturating_sub(1);
            async move { if fail { Err(S3Error::SlowDown) } else { Ok(7) } }
        })
        .with_attempts()
        .await
        .unwrap();
    assert_eq!((value, attempts), (7, 4));
}

#[test]
fn one_guards_value_carries_the_breaker_the_budget_and_the_clock() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder("s3")
        .config(BreakerConfig::builder().consecutive_failures(2).build().unwrap())
        .clock(&clock)
        .build();
    let budget = RetryBudget::token_bucket("retry_budget").capacity(500).clock(&clock).build().unwrap();
    let guards = Guards::builder().breaker(&breaker).budget(&budget).clock(&clock).build();
    assert_eq!(guards.breaker().map(CircuitBreaker::name), Some("s3"));

    // Two failures open the breaker: the run stops without sleeping against it.
    let err = exact(5).retry(|| Err::<(), _>(S3Error::SlowDown)).guards(&guards).call().unwrap_err();
    assert!(matches!(err, RetryError::CircuitOpen { attempts: 2, .. }), "{err}");
    // The one retry slept on the guards' clock and drew on the guards' budget.
    assert_eq!(clock.sleeps(), [S(1)]);
    assert_eq!(budget.level(), 500.0 - 5.0);

    // A clone shares the guards: the next run is refused at once.
    let shared = guards.clone();
    let err = exact(5).retry(flaky(0)).guards(&shared).call().unwrap_err();
    assert!(matches!(err, RetryError::CircuitOpen { attempts: 0, last: None, .. }), "{err}");

    // clock_only keeps the clock and drops the guards: a cleanup still runs.
    let cleanup = guards.clock_only();
    assert!(cleanup.breaker().is_none() && cleanup.budget().is_none() && cleanup.clock().is_some());
    assert_eq!(exact(5).retry(flaky(1)).guards(&cleanup).call().unwrap(), "etag-1");
    assert_eq!(clock.sleeps(), [S(1), S(1)]);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_keeps_the_builders_type() {
    #[derive(Debug)]
    enum FetchError {
        TimedOut(Duration),
    }
    impl std::fmt::Display for FetchError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }
    let url = String::from("https://api.test/slow");
    let policy = exact(2);
    for limit in [None, Some(S(2))] {
        let mut run = policy.retry(|| async {
            tokio::time::sleep(S(10)).await;
            Ok::<_, FetchError>(url.len())
        });
        // Set or not on one path: no branch on the builder's type.
        if let Some(limit) = limit {
            // The error maker may capture (here: the URL it names).
            run = run.attempt_timeout(limit, |after| {
                assert!(url.ends_with("slow"));
                FetchError::TimedOut(after)
            });
        }
        match (limit, run.await) {
            (None, Ok(n)) => assert_eq!(n, url.len()),
            (Some(_), Err(RetryError::Exhausted { attempts: 2, last: FetchError::TimedOut(after), .. })) => {
                assert_eq!(after, S(2))
            }
            (limit, other) => panic!("{limit:?}: {other:?}"),
        }
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::test(start_paused = true)]
async fn runs_and_batches_are_awaited_the_same_way_and_are_send() {
    let policy = exact(3);
    let keys = vec!["a.csv".to_string(), "bb.csv".to_string()];
    // A batch is awaited as a run is; both futures can be named and are `Send`.
    let run: backstop::retry::RetryFuture<'_, _, _, _, _, _, _, _> =
        assert_send(policy.retry(|| async { Ok::<_, S3Error>(1) }).into_future());
    let batch: backstop::batch::BatchFuture<'_, _, _, _, _, _, _, _> =
        assert_send(policy.batch(&keys, |key| async move { Ok::<_, S3Error>(key.len()) }).into_future());
    assert_eq!(run.await.unwrap(), 1);
    assert_eq!(batch.await.into_result().unwrap(), [5, 6]);
    // And spawned, once nothing is borrowed.
    let handle = tokio::spawn(async {
        let keys = ["x", "yy"];
        presets::API_CALL.batch(keys, |key| async move { Ok::<_, S3Error>(key.len()) }).concurrency(2).await
    });
    assert_eq!(handle.await.unwrap().into_result().unwrap(), [1, 2]);
}

#[test]
fn batch_closures_infer_their_item_and_error_types() {
    let clock = ManualClock::new();
    let outcome = exact(2)
        .batch(["a", "denied"], |key| if key == "denied" { Err(S3Error::AccessDenied) } else { Ok(key.len()) })
        .when(|e| if *e == S3Error::AccessDenied { Verdict::Fail } else { Verdict::Retry })
        .on_retry(|index, ev| panic!("item {index} retried after {}", ev.error))
        .clock(&clock)
        .call();
    assert_eq!(outcome.successes().copied().collect::<Vec<_>>(), [1]);
    assert!(matches!(outcome.failures().next(), Some((1, RetryError::Rejected { .. }))));
}

#[test]
fn presets_are_constants_that_can_be_borrowed_for_ever() {
    let upload: &'static RetryPolicy = &presets::S3_UPLOAD;
    assert_eq!(upload.max_attempts(), 5);
    assert_eq!(RetryPolicy::default(), presets::DEFAULT);
    // A run made from a preset outlives the statement that made it.
    let clock = ManualClock::new();
    let run = presets::S3_UPLOAD.retry(flaky(1)).clock(&clock);
    assert_eq!(run.call().unwrap(), "etag-1");
}
