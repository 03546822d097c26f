//! A load test, in-process and in virtual time: 200 clients against a
//! downstream that fails every call for 30 s, then recovers. Without a budget,
//! a 5-attempt policy multiplies the load by ~5 during the outage; with the
//! default token bucket, attempts stay within 1.1 × calls + capacity / cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backstop::{Backoff, Jitter, RetryBudget, RetryPolicy};
use tokio::time::Instant;

const CLIENTS: usize = 200;
const OUTAGE: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Counts {
    calls_in_outage: AtomicU64,
    attempts_in_outage: AtomicU64,
    succeeded: AtomicU64,
}

async fn run(budget: Option<RetryBudget>) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let policy = Arc::new(
        RetryPolicy::builder()
            .max_attempts(5)
            .backoff(
                Backoff::exponential(Duration::from_millis(100)).max_delay(Duration::from_secs(1)).jitter(Jitter::Full),
            )
            .seed(11)
            .build()
            .unwrap(),
    );
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (counts, policy, budget) = (Arc::clone(&counts), Arc::clone(&policy), budget.clone());
            tokio::spawn(async move {
                // Stagger the clients over the first second.
                tokio::time::sleep(Duration::from_millis(c as u64 * 5)).await;
                for _ in 0..40 {
                    let down = |now: Instant| now.duration_since(start) < OUTAGE;
                    if down(Instant::now()) {
                        counts.calls_in_outage.fetch_add(1, Ordering::Relaxed);
                    }
                    let counts2 = Arc::clone(&counts);
                    let call = move || {
                        let counts = Arc::clone(&counts2);
                        async move {
                            if down(Instant::now()) {
                                counts.attempts_in_outage.fetch_add(1, Ordering::Relaxed);
                                Err("503 Service Unavailable")
                            } else {
                                Ok(())
                            }
                        }
                    };
                    let retry = policy.retry(call);
                    let result = match &budget {
                        Some(b) => retry.budget(b).await,
                        None => retry.await,
                    };
                    if result.is_ok() {
                        counts.succeeded.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    counts
}

#[tokio::test(start_paused = true)]
async fn without_a_budget_retries_multiply_the_load_about_five_times() {
    let counts = run(None).await;
    let calls = counts.calls_in_outage.load(Ordering::Relaxed) as f64;
    let attempts = counts.attempts_in_outage.load(Ordering::Relaxed) as f64;
    eprintln!("no budget: {calls} calls, {attempts} attempts during the outage (x{:.2})", attempts / calls);
    assert!(calls > 2000.0, "{calls}");
    assert!(attempts >= 4.5 * calls, "amplification {:.2}", attempts / calls);
    assert!(attempts <= 5.0 * calls);
}

#[tokio::test(start_paused = true)]
async fn the_default_token_bucket_caps_the_outage_load() {
    let budget = RetryBudget::default(); // 500 tokens, 5 per retry
    let counts = run(Some(budget.clone())).await;
    let calls = counts.calls_in_outage.load(Ordering::Relaxed) as f64;
    let attempts = counts.attempts_in_outage.load(Ordering::Relaxed) as f64;
    eprintln!("token bucket: {calls} calls, {attempts} attempts during the outage (x{:.2})", attempts / calls);
    assert!(calls > 2000.0, "{calls}");
    assert!(
        attempts <= 1.1 * calls + 500.0 / 5.0,
        "attempts {attempts} for {calls} calls (amplification {:.2})",
        attempts / calls
    );
    assert!(budget.denied() > 0);
    // After the outage, successes refill the bucket and calls go through.
    assert!(counts.succeeded.load(Ordering::Relaxed) > 0);
    assert_eq!(budget.level(), 500.0);
}
