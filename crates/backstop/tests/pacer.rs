//! The pacer in runs: against a rate-limited server modelled in tokio's
//! paused time (a GCRA limiter at 50 requests a second, burst 10, answering
//! refusals with `Retry-After: 1`, as nginx's `limit_req` does), with many
//! concurrent clients; deadlines; sharing across threads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backstop::{ManualClock, Pacer, RetryError, RetryPolicy, Verdict, presets};
use tokio::time::Instant;

/// A server that accepts `rate` requests a second with a burst of `burst`.
struct Limited {
    next: Mutex<Option<Instant>>,
    interval: Duration,
    tolerance: Duration,
    hits: AtomicU32,
}

impl Limited {
    fn new(rate: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / rate;
        Self { next: Mutex::new(None), interval, tolerance: interval * (burst - 1), hits: AtomicU32::new(0) }
    }

    async fn call(&self) -> Result<(), &'static str> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        let now = Instant::now();
        let mut next = self.next.lock().unwrap();
        let tat = next.unwrap_or(now).max(now);
        if tat.duration_since(now) > self.tolerance {
            return Err("429 Too Many Requests");
        }
        *next = Some(tat + self.interval);
        Ok(())
    }
}

/// 2,000 requests offered at 200 a second for 10 s, each retried under the
/// API preset (with room for retries), optionally through one shared pacer,
/// each its own task: (succeeded, HTTP requests per logical request,
/// seconds to drain).
async fn burst(pacer: Option<&Pacer>) -> (u32, f64, f64) {
    let server = std::sync::Arc::new(Limited::new(50, 10));
    let policy = presets::API_CALL.to_builder().max_attempts(8).max_retry_after(Duration::from_secs(60)).build();
    let policy = policy.unwrap();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..2000u32 {
        let (server, policy, pacer) = (server.clone(), policy.clone(), pacer.cloned());
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(u64::from(i) * 5)).await;
            let run = policy
                .retry(|| server.call())
                .when(|_: &&str| Verdict::RetryAfter(Duration::from_secs(1)))
                .name("burst");
            match &pacer {
                Some(p) => run.pacer(p).await.is_ok(),
                None => run.await.is_ok(),
            }
        });
    }
    let ok = tasks.join_all().await.into_iter().filter(|ok| *ok).count() as u32;
    let hits = server.hits.load(Ordering::SeqCst);
    (ok, f64::from(hits) / 2000.0, start.elapsed().as_secs_f64())
}

#[tokio::test(start_paused = true)]
async fn a_shared_pacer_drains_a_burst_at_the_servers_rate_without_hammering_it() {
    let pacer = Pacer::builder("api").build().unwrap();
    let (ok, amplification, drain) = burst(Some(&pacer)).await;
    let goodput = f64::from(ok) / drain;
    eprintln!(
        "paced: {ok} of 2000 succeeded, amplification {amplification:.3}, drained in {drain:.1} s: {goodput:.1}/s"
    );
    assert_eq!(ok, 2000, "every request gets through");
    assert!(amplification <= 1.2, "amplification {amplification:.2}");
    assert!(goodput >= 0.9 * 50.0, "goodput {goodput:.1}/s over {drain:.1}s");
    // Without the pacer the same clients hammer the limiter.
    let (unpaced_ok, unpaced, unpaced_drain) = burst(None).await;
    eprintln!("unpaced: {unpaced_ok} of 2000 succeeded, amplification {unpaced:.3}, drained in {unpaced_drain:.1} s");
    assert!(unpaced > 2.0 * amplification, "unpaced {unpaced:.2} vs paced {amplification:.2}");
}

#[test]
fn a_wait_for_a_slot_past_the_deadline_ends_the_run_without_sleeping() {
    let clock = ManualClock::new();
    let pacer = Pacer::builder("api").initial_rate(1.0).burst(1).clock(&clock).build().unwrap();
    let policy = RetryPolicy::builder().max_elapsed(Duration::from_millis(500)).build().unwrap();
    assert!(policy.retry(|| Ok::<_, &str>(())).pacer(&pacer).clock(&clock).call().is_ok());
    // The next slot is 1 s away, past the 0.5 s deadline.
    let err = policy.retry(|| Ok::<_, &str>(())).pacer(&pacer).clock(&clock).call().unwrap_err();
    assert!(matches!(err, RetryError::DeadlineExceeded { attempts: 0, last: None, .. }), "{err:?}");
    assert!(clock.sleeps().is_empty());
}

#[test]
fn one_pacer_shared_by_threads_hands_out_every_slot_once() {
    // 8 threads × 1,000 reservations at 1,000/s, burst 1: the waits are a
    // permutation of 0, 1 ms, 2 ms, ... — no slot given twice, none skipped.
    let clock = ManualClock::new();
    let pacer = Pacer::builder("s3").initial_rate(1000.0).burst(1).clock(&clock).build().unwrap();
    let waits: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..8).map(|_| s.spawn(|| (0..1000).map(|_| pacer.reserve()).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut millis: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
    millis.sort_unstable();
    assert_eq!(millis, (0..8000).collect::<Vec<u128>>());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_paced_run_leaves_the_pacer_usable() {
    let pacer = Pacer::builder("api").initial_rate(10.0).burst(1).build().unwrap();
    let policy = RetryPolicy::builder().build().unwrap();
    for _ in 0..5 {
        let run = policy.retry(|| async { Ok::<_, &str>(()) }).pacer(&pacer);
        let _ = tokio::time::timeout(Duration::from_millis(1), run).await;
    }
    let started = Instant::now();
    policy.retry(|| async { Ok::<_, &str>(()) }).pacer(&pacer).await.unwrap();
    assert!(started.elapsed() <= Duration::from_millis(600), "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn callers_that_give_up_waiting_hand_their_slots_on() {
    // 30 runs queue at 1 per second and are dropped after 10 ms: the next
    // caller does not wait behind the 30 that left.
    let pacer = Pacer::builder("api").initial_rate(1.0).burst(1).build().unwrap();
    let policy = RetryPolicy::builder().build().unwrap();
    for _ in 0..30 {
        let run = policy.retry(|| async { Ok::<_, &str>(()) }).pacer(&pacer);
        let _ = tokio::time::timeout(Duration::from_millis(10), run).await;
    }
    let started = Instant::now();
    policy.retry(|| async { Ok::<_, &str>(()) }).pacer(&pacer).await.unwrap();
    assert!(started.elapsed() <= Duration::from_secs(1), "{:?}", started.elapsed());
}

#[test]
fn a_stated_limit_caps_the_rate_until_its_window_resets_then_it_grows_back() {
    let clock = ManualClock::new();
    let pacer = Pacer::builder("api").clock(&clock).build().unwrap();
    for _ in 0..100 {
        let _ = pacer.reserve();
    }
    // "0 left, the window resets in 1 s": the rate falls to the floor.
    pacer.observe_limit(0, Duration::from_secs(1));
    assert_eq!(pacer.rate(), Some(0.5));
    // A minute later, with calls succeeding, it has grown back.
    clock.advance(Duration::from_secs(60));
    for _ in 0..250 {
        let _ = pacer.reserve();
        pacer.record_success();
    }
    assert!(pacer.rate().unwrap() > 1.0, "{:?}", pacer.rate());
}
