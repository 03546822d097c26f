//! The edges of the API's shape, as a hostile user finds them: dropped
//! batches and their tokens, attempt counts around breakers and pacers,
//! attempt timeouts, guards merged over guards, errors that print.
//! Each test asserts what a user would expect.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use backstop::breaker::BreakerConfig;
use backstop::clock::SleepFuture;
use backstop::{
    Backoff, CircuitBreaker, Clock, Guards, Jitter, ManualClock, Pacer, RetryBudget, RetryError, RetryPolicy, Verdict,
    presets,
};

const S: fn(u64) -> Duration = Duration::from_secs;

fn policy(attempts: u32, delay: Duration) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::constant(delay)).build().unwrap()
}

fn bucket(capacity: u32) -> RetryBudget {
    RetryBudget::token_bucket("rt").capacity(capacity).build().unwrap()
}

fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(f).poll(&mut cx)
}

// ---------------------------------------------------------------- 1. batches

#[tokio::test(start_paused = true)]
async fn batch_dropped_during_first_sleeps_refunds_every_pending_token() {
    let budget = bucket(100);
    let p = policy(5, S(10));
    let calls = AtomicUsize::new(0);
    let batch = p
        .batch(0..4, |_i| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>("503") }
        })
        .budget(&budget)
        .concurrency(4);
    let r = tokio::time::timeout(S(1), batch).await;
    assert!(r.is_err(), "the batch should still be sleeping");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(budget.level(), 100.0, "every retry withdrawn but never made is refunded on drop");
}

#[tokio::test(start_paused = true)]
async fn batch_dropped_mid_way_keeps_made_retries_spent_and_refunds_pending_ones() {
    let budget = bucket(100);
    let p = policy(5, S(10));
    let batch = p.batch(0..4, |_i| async { Err::<(), _>("503") }).budget(&budget).concurrency(4);
    // t=0 first attempts fail (4 × 5 withdrawn); t=10 retries made and fail
    // (spent), 4 × 5 withdrawn again for the next ones; dropped at t=15.
    let r = tokio::time::timeout(S(15), batch).await;
    assert!(r.is_err());
    assert_eq!(budget.level(), 80.0);
}

#[tokio::test(start_paused = true)]
async fn batch_polled_then_dropped_by_hand_refunds() {
    let budget = bucket(100);
    let p = policy(5, S(10));
    let guards = Guards::builder().budget(&budget).build();
    let mut fut =
        Box::pin(p.batch(0..3, |_i| async { Err::<(), _>("503") }).guards(&guards).concurrency(2).into_future());
    for _ in 0..3 {
        assert!(poll_once(&mut fut).is_pending());
    }
    assert_eq!(budget.level(), 90.0, "two items running, each withdrew 5 for its retry");
    drop(fut);
    assert_eq!(budget.level(), 100.0);
}

#[tokio::test(start_paused = true)]
async fn batch_fail_fast_with_concurrency_4_is_consistent() {
    let p = policy(3, S(1));
    let started = Mutex::new(Vec::new());
    let outcome = p
        .batch(0..10usize, |i| {
            started.lock().unwrap().push(i);
            async move {
                if i == 1 {
                    return Err(format!("item {i}: AccessDenied"));
                }
                tokio::time::sleep(S(5)).await;
                Ok(i)
            }
        })
        .when(|e| if e.contains("AccessDenied") { Verdict::Fail } else { Verdict::Retry })
        .fail_fast()
        .concurrency(4)
        .await;
    let started = started.into_inner().unwrap();
    assert_eq!(started.len(), 4, "no item started after the failure: {started:?}");
    assert_eq!(outcome.results.len(), 4);
    assert_eq!(outcome.skipped, 6);
    assert_eq!(outcome.results.len() + outcome.skipped, 10);
    let failures: Vec<_> = outcome.failures().map(|(i, e)| (i, e.attempts())).collect();
    assert_eq!(failures, [(1, 1)]);
    assert_eq!(outcome.successes().copied().collect::<Vec<_>>(), [0, 2, 3]);
    assert!(!outcome.is_success());
}

#[tokio::test(start_paused = true)]
async fn batch_fail_fast_later_item_fails_while_an_earlier_one_still_runs() {
    // Concurrency 2: item 0 is slow; item 1 succeeds at once, item 2 starts and fails.
    let p = policy(1, S(1));
    let outcome = p
        .batch(0..6usize, |i| async move {
            match i {
                0 => {
                    tokio::time::sleep(S(10)).await;
                    Ok(0)
                }
                2 => Err("bad"),
                i => Ok(i),
            }
        })
        .fail_fast()
        .concurrency(2)
        .await;
    assert_eq!(outcome.results.len(), 3);
    assert_eq!(outcome.skipped, 3);
    assert!(outcome.results[0].is_ok() && outcome.results[1].is_ok() && outcome.results[2].is_err());
    assert_eq!(outcome.failures().next().map(|(i, _)| i), Some(2));
}

#[tokio::test(start_paused = true)]
async fn batch_with_no_items_completes_at_once() {
    let p = policy(3, S(1));
    let items: Vec<u32> = Vec::new();
    let outcome = p.batch(items, |i| async move { Ok::<_, String>(i) }).fail_fast().concurrency(4).await;
    assert!(outcome.results.is_empty());
    assert_eq!(outcome.skipped, 0);
    assert!(outcome.is_success());
    assert_eq!(outcome.into_result().unwrap(), Vec::<u32>::new());
}

#[tokio::test(start_paused = true)]
async fn batch_is_send_and_spawnable_with_guards() {
    static POLICY: RetryPolicy = presets::DEFAULT;
    let budget = bucket(100);
    let guards = Guards::builder().budget(&budget).build();
    let handle = tokio::spawn(async move {
        let items = vec!["a".to_string(), "bb".to_string(), "ccc".to_string()];
        let left = Arc::new(AtomicU32::new(2));
        POLICY
            .batch(items, move |k| {
                let left = Arc::clone(&left);
                async move {
                    if left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                        Err("503".to_string())
                    } else {
                        Ok(k.len())
                    }
                }
            })
            .guards(&guards)
            .concurrency(3)
            .await
    });
    let outcome = handle.await.unwrap();
    assert_eq!(outcome.into_result().unwrap(), [1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn presets_are_static_references() {
    let p: &'static RetryPolicy = &presets::S3_UPLOAD;
    let d: &'static RetryPolicy = &presets::DEFAULT;
    assert_eq!(format!("{:?}", RetryPolicy::default()), format!("{d:?}"));
    let v = p.retry(|| async { Ok::<_, String>(1) }).await.unwrap();
    assert_eq!(v, 1);
}

#[tokio::test(start_paused = true)]
async fn a_pacer_given_through_guards_releases_its_slots_when_the_batch_is_dropped() {
    // Pacing at 1 call per second, no burst.
    let pacer = Pacer::builder("api").initial_rate(1.0).burst(1).build().unwrap();
    let guards = Guards::builder().pacer(&pacer).build();
    let p = policy(3, S(1));
    let mut fut = Box::pin(
        p.batch(0..4, |_i| async {
            std::future::pending::<()>().await;
            Ok::<(), String>(())
        })
        .guards(&guards)
        .concurrency(4)
        .into_future(),
    );
    assert!(poll_once(&mut fut).is_pending());
    drop(fut);
    // Item 0 went; items 1..3 held slots due at 1 s, 2 s, 3 s. They gave them
    // back: the next caller gets the first of them.
    let wait = pacer.reserve();
    assert!(wait <= S(1), "the released slots were not reused: a new caller waits {wait:?}");
}

// ------------------------------------------------------- 2. with_attempts

/// A clock whose sleeps move the run's virtual time, and move the breaker's
/// clock only from the `from`-th sleep on: the run wakes early against an
/// open breaker (as it does when another caller took the probe).
#[derive(Clone)]
struct SplitClock {
    run: ManualClock,
    breaker: ManualClock,
    sleeps: Arc<AtomicU32>,
    from: u32,
}

impl Clock for SplitClock {
    fn now(&self) -> Instant {
        self.run.now()
    }
    fn sleep(&self, d: Duration) {
        let n = self.sleeps.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.from {
            self.breaker.advance(d);
        }
        self.run.sleep(d);
    }
    fn sleep_async(&self, d: Duration) -> SleepFuture {
        self.sleep(d);
        Box::pin(async {})
    }
}

/// A breaker that opens on one failure for 5 s, on its own clock; a run
/// clock whose sleeps from the second on wake the run before the breaker's
/// open period is over (as when another caller took the probe); and a policy
/// of `attempts` that waits on open circuits.
fn early_wake_setup(attempts: u32) -> (CircuitBreaker, SplitClock, RetryPolicy) {
    let breaker_clock = ManualClock::new();
    let breaker = CircuitBreaker::builder("api")
        .config(BreakerConfig::builder().consecutive_failures(1).open_for(Backoff::constant(S(5))).build().unwrap())
        .clock(&breaker_clock)
        .build();
    let clock =
        SplitClock { run: ManualClock::new(), breaker: breaker_clock, sleeps: Arc::new(AtomicU32::new(0)), from: 2 };
    let p = RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::constant(S(1)))
        .wait_on_open_circuit(true)
        .max_retry_after(S(60))
        .build()
        .unwrap();
    (breaker, clock, p)
}

#[test]
fn with_attempts_does_not_count_attempts_refused_by_an_open_breaker() {
    let (breaker, clock, p) = early_wake_setup(5);
    let mut calls = 0u32;
    let r = p
        .retry(|| {
            calls += 1;
            if calls == 1 { Err("503") } else { Ok("body") }
        })
        .breaker(&breaker)
        .clock(&clock)
        .with_attempts()
        .call();
    let (body, attempts) = r.expect("the probe should succeed");
    assert_eq!(body, "body");
    assert_eq!(calls, 2, "the operation ran twice");
    assert_eq!(attempts, calls, "with_attempts counted an attempt the breaker refused (never made)");
}

#[tokio::test(start_paused = true)]
async fn with_attempts_does_not_count_pacer_waits() {
    let pacer = Pacer::builder("api").initial_rate(1.0).burst(1).build().unwrap();
    let p = policy(3, S(1));
    for _ in 0..3 {
        let (_, attempts) = p.retry(|| async { Ok::<_, String>(()) }).pacer(&pacer).with_attempts().await.unwrap();
        assert_eq!(attempts, 1);
    }
}

#[tokio::test(start_paused = true)]
async fn with_attempts_counts_timed_out_attempts() {
    let p = policy(5, S(1));
    let calls = AtomicU32::new(0);
    let (v, attempts) = p
        .retry(|| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    tokio::time::sleep(S(100)).await;
                }
                Ok::<_, String>(n)
            }
        })
        .attempt_timeout(S(2), |after| format!("timed out after {after:?}"))
        .with_attempts()
        .await
        .unwrap();
    assert_eq!((v, attempts), (2, 3));
}

// --------------------------------------------------- 3. attempt_timeout

#[tokio::test(start_paused = true)]
async fn attempt_timeout_of_duration_max_on_tokio_is_no_limit() {
    let p = policy(2, S(1));
    let r = p
        .retry(|| async {
            tokio::time::sleep(S(3600)).await;
            Ok::<_, String>("late")
        })
        .attempt_timeout(Duration::MAX, |_| "timeout".to_string())
        .with_attempts()
        .await;
    assert_eq!(r.unwrap(), ("late", 1));
}

#[tokio::test]
async fn attempt_timeout_of_duration_max_on_a_manual_clock_is_no_limit() {
    let clock = ManualClock::new();
    let p = policy(2, S(1));
    let r = p
        .retry(|| async { Ok::<_, String>("now") })
        .attempt_timeout(Duration::MAX, |_| "timeout".to_string())
        .clock(&clock)
        .await;
    assert_eq!(r.unwrap(), "now");
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_of_duration_max_with_a_deadline_uses_the_deadline() {
    let p = RetryPolicy::builder().max_attempts(3).max_elapsed(S(10)).build().unwrap();
    let r = p
        .retry(|| async {
            tokio::time::sleep(S(3600)).await;
            Ok::<_, String>("late")
        })
        .attempt_timeout(Duration::MAX, |_| "timeout".to_string())
        .await;
    assert!(matches!(r, Err(RetryError::DeadlineExceeded { attempts: 1, .. })), "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_shorter_than_the_deadline_retries_then_deadline() {
    let p =
        RetryPolicy::builder().max_attempts(10).backoff(Backoff::constant(S(1))).max_elapsed(S(10)).build().unwrap();
    let calls = AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    let r = p
        .retry(|| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(S(3600)).await;
                Ok::<_, String>("late")
            }
        })
        .attempt_timeout(S(4), |after| format!("timeout {after:?}"))
        .await;
    // 0-4 attempt 1, sleep 1, 5-9 attempt 2, sleep 1, 10: deadline.
    assert!(started.elapsed() <= S(10), "ran past the deadline: {:?}", started.elapsed());
    assert!(matches!(r, Err(RetryError::DeadlineExceeded { .. })), "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn a_classifier_failing_the_timeout_error_ends_the_run_once() {
    let p = policy(5, S(1));
    let calls = AtomicU32::new(0);
    let url = String::from("https://api.test/pay");
    let r = p
        .retry(|| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(S(60)).await;
                Ok::<_, String>(())
            }
        })
        .when(|e| if e.starts_with("timeout") { Verdict::Fail } else { Verdict::Retry })
        .attempt_timeout(S(2), move |after| format!("timeout {url} after {after:?}"))
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    match r {
        Err(RetryError::Rejected { attempts: 1, last, .. }) => assert!(last.contains("api.test/pay")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_zero_attempt_timeout_is_no_timeout() {
    let p = policy(2, S(1));
    let r = p
        .retry(|| async {
            tokio::time::sleep(S(30)).await;
            Ok::<_, String>(1)
        })
        .attempt_timeout(Duration::ZERO, |_| "t".into())
        .await;
    assert_eq!(r.unwrap(), 1);
}

// ------------------------------------------------------------ 4. guards

#[test]
fn a_breaker_set_before_guards_without_one_is_kept() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new("api", Default::default());
    breaker.isolate();
    let g = Guards::builder().clock(&clock).build();
    let r = policy(3, S(1)).retry(|| Ok::<_, String>(1)).breaker(&breaker).guards(&g).call();
    assert!(matches!(r, Err(RetryError::CircuitOpen { attempts: 0, .. })), "{r:?}");
}

#[test]
fn batch_keeps_a_budget_set_before_guards_without_one() {
    let clock = ManualClock::new();
    let budget = bucket(5);
    let g = Guards::builder().clock(&clock).build();
    let out = policy(5, S(1)).batch([1, 2], |_| Err::<(), _>("503")).budget(&budget).guards(&g).call();
    let attempts: Vec<_> = out.failures().map(|(_, e)| e.attempts()).collect();
    assert!(matches!(out.results[0], Err(RetryError::BudgetExhausted { .. })), "{:?}", out.results[0]);
    assert_eq!(attempts, [2, 1]);
}

#[test]
fn the_clock_set_last_wins_between_clock_and_guards() {
    let (mine, theirs) = (ManualClock::new(), ManualClock::new());
    let g = Guards::builder().clock(&theirs).build();
    let mut left = 1;
    let _ = policy(3, S(1))
        .retry(|| {
            if left > 0 {
                left -= 1;
                Err("e")
            } else {
                Ok(())
            }
        })
        .clock(&mine)
        .guards(&g)
        .call();
    assert_eq!((mine.sleeps().len(), theirs.sleeps().len()), (0, 1), "guards set after the clock: guards' clock");
    let mut left = 1;
    let _ = policy(3, S(1))
        .retry(|| {
            if left > 0 {
                left -= 1;
                Err("e")
            } else {
                Ok(())
            }
        })
        .guards(&g)
        .clock(&mine)
        .call();
    assert_eq!((mine.sleeps().len(), theirs.sleeps().len()), (1, 1), "clock set after the guards: that clock");
}

#[test]
fn clock_only_drops_every_guard_and_keeps_no_clock_when_there_was_none() {
    let breaker = CircuitBreaker::new("api", Default::default());
    let g = Guards::builder().breaker(&breaker).build();
    let c = g.clock_only();
    assert!(c.breaker().is_none() && c.clock().is_none());
    let dbg = format!("{c:?}");
    assert!(dbg.contains("Guards"), "{dbg}");
}

// ------------------------------------------------------------ 7. misc

#[test]
fn a_small_token_bucket_lowers_its_default_costs() {
    let b = RetryBudget::token_bucket("x").capacity(5).build().expect("capacity 5 builds");
    let w = b.try_withdraw(Verdict::Timeout).expect("a timeout retry fits");
    assert_eq!(b.level(), 0.0);
    b.refund(w);
    assert_eq!(b.level(), 5.0);
    let b = RetryBudget::token_bucket("x").capacity(1).build().expect("capacity 1 builds");
    assert!(b.try_withdraw(Verdict::Retry).is_some());
    assert!(b.try_withdraw(Verdict::Retry).is_none());
}

#[test]
fn a_hand_set_cost_that_does_not_fit_names_the_setting() {
    let err = RetryBudget::token_bucket("x").capacity(5).timeout_cost(10).build().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("timeout_cost"), "{msg}");
    let err = RetryBudget::token_bucket("x").capacity(0).build().unwrap_err();
    assert!(err.to_string().contains("capacity"), "{err}");
    let err = RetryBudget::token_bucket("x").capacity(5).retry_cost(0).build().unwrap_err();
    assert!(err.to_string().contains("retry_cost"), "{err}");
}

#[test]
fn jitter_from_str_errors_name_the_field() {
    for bad in ["bogus", "", "additive:", "additive:-1s", "FULL ", "additive:1parsec"] {
        match Jitter::from_str(bad) {
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("jitter"), "{bad:?}: {msg}");
            }
            Ok(j) => panic!("{bad:?} parsed as {j:?}"),
        }
    }
    for good in ["full", "none"] {
        let j = Jitter::from_str(good).unwrap();
        assert_eq!(Jitter::from_str(&j.to_string()).unwrap(), j);
    }
}

#[test]
fn rejected_with_zero_attempts_prints_failed_before_its_first_attempt() {
    let e: RetryError<String> = RetryError::Rejected { name: "GetObject b".into(), attempts: 0, last: "x".into() };
    assert_eq!(e.to_string(), "GetObject b failed before its first attempt");
    let e: RetryError<String> = RetryError::Rejected { name: "op".into(), attempts: 2, last: "x".into() };
    assert!(e.to_string().contains("failed on attempt 2"), "{e}");
}

#[test]
fn an_early_wake_against_an_open_breaker_does_not_use_up_the_last_attempt() {
    // max_attempts 2: one failure, then the probe. The run wakes once before
    // the breaker lets the probe through (as when another caller took it).
    let (breaker, clock, p) = early_wake_setup(2);
    let mut calls = 0u32;
    let r = p
        .retry(|| {
            calls += 1;
            if calls == 1 { Err("503") } else { Ok("body") }
        })
        .breaker(&breaker)
        .clock(&clock)
        .call();
    assert_eq!(calls, 2, "the second (probe) attempt was never made: {r:?}");
    assert_eq!(r.unwrap(), "body");
}

#[tokio::test]
async fn attempt_timeout_of_duration_max_on_a_manual_clock_with_a_slow_attempt() {
    let clock = ManualClock::new();
    let p = policy(2, S(1));
    let c = &clock;
    let r = p
        .retry(|| async move {
            c.sleep_async(S(3600)).await;
            Ok::<_, String>("late")
        })
        .attempt_timeout(Duration::MAX, |_| "timeout".to_string())
        .clock(&clock)
        .with_attempts()
        .await;
    assert_eq!(r.unwrap(), ("late", 1));
}

#[tokio::test]
async fn a_finished_batch_future_polled_again_does_not_make_up_a_second_outcome() {
    let p = policy(1, S(1));
    let mut fut = Box::pin(p.batch([1, 2], |i| async move { Ok::<_, String>(i) }).into_future());
    let first = match poll_once(&mut fut) {
        Poll::Ready(o) => o,
        Poll::Pending => panic!("should be ready"),
    };
    assert_eq!(first.results.len(), 2);
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll_once(&mut fut)));
    if let Ok(Poll::Ready(o)) = again {
        // A RetryFuture panics here ("polled after it completed"); a batch
        // answers an outcome that contradicts the first one.
        panic!("second poll gave another outcome: {} results, {} skipped", o.results.len(), o.skipped);
    }
}
