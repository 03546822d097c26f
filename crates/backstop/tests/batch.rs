//! Batches: every item under its own run, sync and async, fail-fast or not.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backstop::{Backoff, ManualClock, RetryError, RetryEvent, RetryPolicy, Verdict};

fn policy() -> RetryPolicy {
    RetryPolicy::builder().max_attempts(3).backoff(Backoff::constant(Duration::from_millis(100))).build().unwrap()
}

/// Items named "bad*" always fail; "flaky*" fail once; the rest succeed.
fn upload(attempts: &Mutex<Vec<String>>, key: &str) -> Result<usize, String> {
    let mut log = attempts.lock().unwrap();
    let seen = log.iter().filter(|k| *k == key).count();
    log.push(key.to_owned());
    match key {
        k if k.starts_with("bad") => Err(format!("{k}: AccessDenied")),
        k if k.starts_with("flaky") && seen == 0 => Err(format!("{k}: SlowDown")),
        k => Ok(k.len()),
    }
}

#[test]
fn collects_every_outcome_in_order() {
    let clock = ManualClock::new();
    let attempts = Mutex::new(Vec::new());
    let keys = ["a", "flaky-b", "bad-c", "dd"];
    let retried = Mutex::new(Vec::new());
    let outcome = policy()
        .batch(keys, |key: &str| upload(&attempts, key))
        .when(|e: &String| Verdict::retry_if(e.ends_with("SlowDown")))
        .on_retry(|index: usize, e: &RetryEvent<'_, String>| retried.lock().unwrap().push((index, e.attempt)))
        .name("upload_batch")
        .clock(&clock)
        .call();
    assert_eq!(outcome.results.len(), 4);
    assert_eq!(outcome.skipped, 0);
    assert!(!outcome.is_success());
    assert_eq!(outcome.successes().copied().collect::<Vec<_>>(), [1, 7, 2]);
    let failures: Vec<_> = outcome.failures().map(|(i, e)| (i, e.attempts())).collect();
    assert_eq!(failures, [(2, 1)]);
    assert_eq!(*retried.lock().unwrap(), [(1, 1)]);
    assert_eq!(clock.sleeps(), [Duration::from_millis(100)]);
    assert!(matches!(outcome.into_result(), Err(RetryError::Rejected { .. })));
}

#[test]
fn fail_fast_stops_at_the_first_failed_item() {
    let clock = ManualClock::new();
    let attempts = Mutex::new(Vec::new());
    let outcome =
        policy().batch(["a", "bad-b", "c", "d"], |key: &str| upload(&attempts, key)).fail_fast().clock(&clock).call();
    assert_eq!(outcome.results.len(), 2);
    assert_eq!(outcome.skipped, 2);
    // "bad-b" retried to exhaustion under the default classifier: 3 attempts.
    assert!(matches!(outcome.results[1], Err(RetryError::Exhausted { attempts: 3, .. })));
    assert!(!attempts.lock().unwrap().iter().any(|k| k == "c"));
}

#[test]
fn a_clean_batch_is_a_success() {
    let clock = ManualClock::new();
    let outcome = policy().batch(1..=5u32, |n| Ok::<_, &str>(n * 2)).clock(&clock).call();
    assert!(outcome.is_success());
    assert_eq!(outcome.into_result().unwrap(), [2, 4, 6, 8, 10]);
}

#[tokio::test(start_paused = true)]
async fn async_batches_respect_the_concurrency_limit() {
    let running = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    let attempts = Mutex::new(Vec::new());
    let keys: Vec<String> = (0..20).map(|i| if i % 5 == 0 { format!("flaky-{i}") } else { format!("k{i}") }).collect();
    let outcome = policy()
        .batch(&keys, |key| {
            let (running, peak, attempts) = (&running, &peak, &attempts);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                upload(attempts, key)
            }
        })
        .concurrency(4)
        .await;
    assert!(outcome.is_success(), "{:?}", outcome.failures().collect::<Vec<_>>());
    assert_eq!(peak.load(Ordering::SeqCst), 4);
    // Order is the items' order, whatever order they finished in.
    let lens: Vec<usize> = outcome.successes().copied().collect();
    assert_eq!(lens, keys.iter().map(String::len).collect::<Vec<_>>());
    assert_eq!(attempts.lock().unwrap().len(), 24); // 4 flaky items retried once
}

#[tokio::test(start_paused = true)]
async fn async_fail_fast_starts_nothing_new_after_a_failure() {
    let started = AtomicUsize::new(0);
    let outcome = policy()
        .batch(0..10u32, |n| {
            let started = &started;
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(u64::from(n) + 1)).await;
                if n == 1 { Err("boom") } else { Ok(n) }
            }
        })
        .retry_if(|_: &&str| false)
        .concurrency(2)
        .fail_fast()
        .await;
    // Items 0 and 1 start; 0 finishes, 2 starts; 1 fails: nothing after 2 starts.
    assert_eq!(started.load(Ordering::SeqCst), 3);
    assert_eq!(outcome.results.len(), 3);
    assert_eq!(outcome.skipped, 7);
    assert!(outcome.results[1].is_err() && outcome.results[2].is_ok());
    // As documented: the failure is not the last result here; `failures()` finds it.
    assert_eq!(outcome.failures().map(|(i, _)| i).collect::<Vec<_>>(), [1]);
}

#[tokio::test(start_paused = true)]
async fn an_async_batch_is_send_and_its_op_may_be_fn_mut() {
    let handle = tokio::spawn(async {
        let policy = policy();
        let mut made = 0u32; // FnMut state, borrowed mutably by the op
        let keys = vec!["x".to_string(), "yy".to_string()];
        let lens = policy
            .batch(keys, |key: String| {
                made += 1;
                async move { Ok::<_, String>(key.len()) }
            })
            .concurrency(2)
            .await
            .into_result();
        (lens, made)
    });
    let (lens, made) = handle.await.unwrap();
    assert_eq!(lens.unwrap(), [1, 2]);
    assert_eq!(made, 2);
}
