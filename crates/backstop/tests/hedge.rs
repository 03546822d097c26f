//! Hedged calls through the public API: the first success wins and the
//! losers are dropped; the adaptive delay; the budget under overload; the
//! same outcome on `ManualClock`, tokio's paused clock and the real clock;
//! hedged attempts inside a retry run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backstop::hedge::{Hedge, HedgeDelay};
use backstop::{Backoff, Clock, ManualClock, RetryBudget, RetryPolicy, SystemClock};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// Counts the requests made, and the ones dropped before they finished.
#[derive(Default)]
struct Server {
    made: AtomicU32,
    dropped: AtomicU32,
}

/// Sets its flag when dropped unfinished.
struct Unfinished<'a>(&'a AtomicU32, bool);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Server {
    /// A request taking `took` on `clock`, answering `answer`.
    async fn request<C: Clock>(&self, clock: &C, took: Duration, answer: Result<u32, String>) -> Result<u32, String> {
        self.made.fetch_add(1, Ordering::SeqCst);
        let mut guard = Unfinished(&self.dropped, false);
        clock.sleep_async(took).await;
        guard.1 = true;
        answer
    }

    fn made(&self) -> u32 {
        self.made.load(Ordering::SeqCst)
    }
}

fn fixed<C: Clock + Clone + 'static>(clock: &C, delay: Duration) -> Hedge {
    // (A generous share: these tests are about the race, not the budget.)
    Hedge::builder("get").delay(HedgeDelay::fixed(delay)).min_per_sec(100.0).clock(clock).build().unwrap()
}

/// A slow first request (1 s) and fast later ones (5 ms), hedged after 10 ms.
async fn slow_then_fast<C: Clock + Clone + 'static>(clock: &C) -> (Result<u32, String>, Arc<Server>) {
    let server = Arc::new(Server::default());
    let hedge = fixed(clock, MS(10));
    let n = AtomicU32::new(0);
    let out = hedge
        .run(|| {
            let i = n.fetch_add(1, Ordering::SeqCst);
            let took = if i == 0 { Duration::from_secs(1) } else { MS(5) };
            let server = Arc::clone(&server);
            async move { server.request(clock, took, Ok(i)).await }
        })
        .await;
    (out, server)
}

#[tokio::test]
async fn the_first_success_wins_and_the_loser_is_dropped() {
    let clock = ManualClock::new();
    let (out, server) = slow_then_fast(&clock).await;
    assert_eq!(out, Ok(1), "the hedge answered first");
    assert_eq!(server.made(), 2);
    assert_eq!(server.dropped.load(Ordering::SeqCst), 1, "the slow request was cancelled");
    assert_eq!(clock.elapsed(), MS(15), "hedged at 10 ms, answered 5 ms later");
}

#[tokio::test(start_paused = true)]
async fn the_same_outcome_on_tokios_paused_clock() {
    let start = tokio::time::Instant::now();
    let (out, server) = slow_then_fast(&SystemClock).await;
    assert_eq!((out, server.made()), (Ok(1), 2));
    assert_eq!(start.elapsed(), MS(15));
}

#[tokio::test]
async fn the_same_outcome_on_the_real_clock() {
    // Scaled down: hedged after 10 ms; the slow request would take 1 s.
    let started = std::time::Instant::now();
    let (out, server) = slow_then_fast(&SystemClock).await;
    assert_eq!((out, server.made(), server.dropped.load(Ordering::SeqCst)), (Ok(1), 2, 1));
    let _ = started; // (not asserted: timers are for benchmarks)
}

#[tokio::test]
async fn a_fast_call_is_not_hedged_and_a_failed_request_waits_for_the_others() {
    let clock = ManualClock::new();
    let server = Server::default();
    let hedge = fixed(&clock, MS(10));
    assert_eq!(hedge.run(|| server.request(&clock, MS(3), Ok(7))).await, Ok(7));
    assert_eq!(server.made(), 1);
    // The primary fails after 50 ms while the hedge (sent at 10 ms) is
    // still running: the call waits for it, and it succeeds.
    let n = AtomicU32::new(0);
    let out = hedge
        .run(|| match n.fetch_add(1, Ordering::SeqCst) {
            0 => server.request(&clock, MS(50), Err("503".into())),
            _ => server.request(&clock, MS(60), Ok(2)),
        })
        .await;
    assert_eq!(out, Ok(2));
    // Every request fails: the first error.
    let n = AtomicU32::new(0);
    let out = hedge
        .run(|| match n.fetch_add(1, Ordering::SeqCst) {
            0 => server.request(&clock, MS(50), Err("first".into())),
            _ => server.request(&clock, MS(5), Err("second".into())),
        })
        .await;
    assert_eq!(out, Err("second".into()), "the hedge failed first (at 15 ms)");
}

#[tokio::test]
async fn the_adaptive_delay_waits_for_samples_then_hedges_at_the_percentile() {
    let clock = ManualClock::new();
    let server = Server::default();
    let hedge = Hedge::builder("get").clock(&clock).build().unwrap(); // p95 after 20 calls
    for _ in 0..19 {
        hedge.run(|| server.request(&clock, MS(5), Ok(0))).await.unwrap();
    }
    assert_eq!(hedge.current_delay(), None, "19 samples: no hedging yet");
    let before = server.made();
    hedge.run(|| server.request(&clock, MS(500), Ok(0))).await.unwrap();
    assert_eq!(server.made(), before + 1, "not hedged without the samples");
    let p95 = hedge.current_delay().unwrap();
    assert!(p95 >= MS(5) && p95 < MS(6), "{p95:?}");
    let n = AtomicU32::new(0);
    let started = clock.elapsed();
    let out = hedge
        .run(|| {
            let slow = n.fetch_add(1, Ordering::SeqCst) == 0;
            server.request(&clock, if slow { MS(1000) } else { MS(5) }, Ok(u32::from(!slow)))
        })
        .await;
    assert_eq!(out, Ok(1));
    assert!(clock.elapsed() - started < MS(12), "hedged at p95 (~5 ms), not after 1 s");
}

#[tokio::test]
async fn the_adaptive_delay_follows_a_latency_shift() {
    let clock = ManualClock::new();
    let server = Server::default();
    let hedge = Hedge::builder("get").window(Duration::from_secs(2)).clock(&clock).build().unwrap();
    for _ in 0..200 {
        hedge.run(|| server.request(&clock, MS(5), Ok(0))).await.unwrap();
    }
    assert!(hedge.current_delay().unwrap() < MS(6));
    // The server slows to 50 ms a call: within one window (2 s) the delay follows.
    for _ in 0..40 {
        hedge.run(|| server.request(&clock, MS(50), Ok(0))).await.unwrap();
    }
    let delay = hedge.current_delay().unwrap();
    assert!(delay >= MS(50) && delay <= MS(57), "{delay:?} after {:?}", clock.elapsed());
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_hedges_when_every_call_is_slow() {
    // An overloaded server: every call takes 100 ms. A 1 ms hedge delay
    // would double the load; the budget holds it to 5 % of calls (plus 1
    // a second) over the window.
    let server = Arc::new(Server::default());
    let hedge = Hedge::builder("overloaded").delay(HedgeDelay::fixed(MS(1))).build().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (hedge, server) = (hedge.clone(), Arc::clone(&server));
        tasks.push(tokio::spawn(async move {
            for _ in 0..40 {
                hedge.run(|| server.request(&SystemClock, MS(100), Ok(0))).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let calls = 50 * 40;
    let hedges = server.made() - calls;
    // 4 s of traffic: 5 % of 2 000 calls, plus 1 a second (and one window's worth of slack).
    let bound = (0.05 * f64::from(calls) + 4.0 + 2.0) as u32;
    assert!(hedges > 0 && hedges <= bound, "{hedges} hedges for {calls} calls (bound {bound})");
}

#[tokio::test]
async fn a_given_budget_is_shared_with_retries() {
    let clock = ManualClock::new();
    let budget = RetryBudget::token_bucket("extra").capacity(10).build().unwrap(); // two extra requests
    let server = Server::default();
    let hedge = Hedge::builder("get").delay(HedgeDelay::fixed(MS(1))).budget(&budget).clock(&clock).build().unwrap();
    for _ in 0..4 {
        hedge.run(|| server.request(&clock, MS(100), Ok(0))).await.unwrap();
    }
    assert_eq!(server.made(), 4 + 2, "two hedges, then the budget is spent");
    assert_eq!(budget.level(), 0.0);
}

#[tokio::test]
async fn hedged_attempts_in_a_retry_run_keep_its_attempt_count_and_drop_on_the_deadline() {
    let clock = ManualClock::new();
    let server = Server::default();
    let hedge = fixed(&clock, MS(10));
    let policy = RetryPolicy::builder().max_attempts(5).backoff(Backoff::constant(MS(100))).build().unwrap();
    let attempt = AtomicU32::new(0);
    let (server, clock_ref) = (&server, &clock);
    let (value, attempts) = policy
        .retry(|| {
            let failing = attempt.fetch_add(1, Ordering::SeqCst) < 2;
            // Each attempt: a slow request, hedged by a fast one.
            hedge.run(move || async move {
                let answer = if failing { Err("503".to_owned()) } else { Ok(1) };
                server.request(clock_ref, MS(30), answer).await
            })
        })
        .clock(&clock)
        .with_attempts()
        .await
        .unwrap();
    assert_eq!((value, attempts), (1, 3), "a hedged attempt is one attempt");
    // Each failing attempt: primary and hedge both failed (4 requests), then
    // the third attempt's primary won at 30 ms before its hedge (sent at 10
    // ms) finished: 6 requests, one dropped.
    assert_eq!((server.made(), server.dropped.load(Ordering::SeqCst)), (6, 1));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_call_drops_every_request_in_flight() {
    let server = Server::default();
    let hedge = Hedge::builder("get").delay(HedgeDelay::fixed(MS(1))).max_hedges(2).min_per_sec(100.0).build().unwrap();
    tokio::select! {
        _ = hedge.run(|| server.request(&SystemClock, Duration::from_secs(10), Ok(0))) => panic!("10 s calls"),
        _ = tokio::time::sleep(MS(5)) => {}
    }
    assert_eq!(server.made(), 3, "the primary and two hedges (at 1 and 2 ms)");
    assert_eq!(server.dropped.load(Ordering::SeqCst), 3);
}

#[test]
fn bad_settings_name_their_field() {
    let b = || Hedge::builder("h");
    for (result, field) in [
        (b().delay(HedgeDelay::percentile(0.3)).build(), "delay.quantile"),
        (b().delay(HedgeDelay::percentile(0.95).min_samples(0)).build(), "delay.min_samples"),
        (b().max_hedges(0).build(), "max_hedges"),
        (b().ratio(1.5).build(), "ratio"),
        (b().ratio(f64::NAN).build(), "ratio"),
        (b().min_per_sec(-1.0).build(), "min_per_sec"),
        (b().window(MS(1)).build(), "window"),
    ] {
        assert_eq!(result.unwrap_err().field(), field);
    }
}

#[tokio::test]
async fn a_call_that_stalls_while_the_hedge_is_learning_is_hedged_once_it_knows() {
    let clock = ManualClock::new();
    let server = Server::default();
    let hedge = Hedge::builder("get").clock(&clock).build().unwrap(); // p95 after 20 calls, 2 s window
    for _ in 0..19 {
        hedge.run(|| server.request(&clock, MS(5), Ok(0))).await.unwrap();
    }
    let start = clock.elapsed();
    let n = AtomicU32::new(0);
    let stalled = hedge.run(|| {
        let first = n.fetch_add(1, Ordering::SeqCst) == 0;
        server.request(&clock, if first { Duration::from_secs(1) } else { MS(5) }, Ok(u32::from(!first)))
    });
    // Meanwhile the 20th sample comes in.
    let twentieth = hedge.run(|| server.request(&clock, MS(5), Ok(9)));
    let (stalled, twentieth) = tokio::join!(stalled, twentieth);
    assert_eq!((stalled, twentieth), (Ok(1), Ok(9)));
    // Looked again at 100 ms (a twentieth of the window), knew the delay, hedged.
    assert_eq!(clock.elapsed() - start, MS(105));
}

#[tokio::test]
async fn a_hedge_takes_a_pacer_slot_free_now_and_never_waits_for_one() {
    use backstop::Pacer;
    let clock = ManualClock::new();
    let server = Server::default();
    let pacer = Pacer::builder("s3").initial_rate(1.0).burst(1).clock(&clock).build().unwrap();
    let hedge = Hedge::builder("get")
        .delay(HedgeDelay::fixed(MS(10)))
        .min_per_sec(100.0)
        .pacer(&pacer)
        .clock(&clock)
        .build()
        .unwrap();
    // The call itself took the one slot of this second: no hedge.
    assert_eq!(pacer.reserve(), Duration::ZERO);
    assert_eq!(hedge.run(|| server.request(&clock, MS(200), Ok(0))).await, Ok(0));
    assert_eq!(server.made(), 1, "the pacer had no free slot: not hedged");
    // After a quiet spell a slot is free: hedged.
    clock.advance(Duration::from_secs(2));
    let n = AtomicU32::new(0);
    let out = hedge
        .run(|| {
            let first = n.fetch_add(1, Ordering::SeqCst) == 0;
            server.request(&clock, if first { MS(200) } else { MS(5) }, Ok(u32::from(!first)))
        })
        .await;
    assert_eq!((out, server.made()), (Ok(1), 3));
}

#[cfg(feature = "serde")]
#[test]
fn a_hedge_loads_from_a_file_and_a_bad_one_names_its_field() {
    let fixed: Hedge = serde_json::from_str(r#"{"name": "api", "delay": "10ms"}"#).unwrap();
    assert_eq!(fixed.delay(), HedgeDelay::fixed(MS(10)));
    let seconds: Hedge = serde_json::from_str(r#"{"name": "api", "delay": 0.25}"#).unwrap();
    assert_eq!(seconds.delay(), HedgeDelay::fixed(MS(250)));
    let table: Hedge =
        serde_json::from_str(r#"{"name": "api", "delay": {"percentile": 0.9, "min_samples": 50}}"#).unwrap();
    assert_eq!(table.delay(), HedgeDelay::percentile(0.9).min_samples(50));
    for (json, says) in [
        (r#"{"name": "api", "max_hedges": 0}"#, "max_hedges is 0"),
        (r#"{"name": "api", "delay": "soon"}"#, "invalid hedge: delay"),
        (r#"{"name": "api", "delay": "pninety"}"#, "a percentile such as"),
        (r#"{"name": "api", "window": "1ms"}"#, "window is 1ms"),
        (r#"{"name": "api", "budget": 5}"#, "unknown field `budget`"),
        (r#"{"delay": "p95"}"#, "missing field `name`"),
    ] {
        let err = serde_json::from_str::<Hedge>(json).unwrap_err().to_string();
        assert!(err.contains(says), "{json}: {err}");
    }
}

#[cfg(feature = "serde")]
#[test]
fn a_files_delay_is_read_exactly_and_its_mistakes_are_named() {
    let p999: Hedge = serde_json::from_str(r#"{"name": "api", "delay": "p99.9"}"#).unwrap();
    assert_eq!(p999.delay(), HedgeDelay::percentile(0.999));
    for (json, says) in [
        (r#"{"name": "api", "delay": {"percentile": 0.95, "min_sample": 50}}"#, "unknown key delay.min_sample"),
        (r#"{"name": "api", "delay": {"percentile": "x"}}"#, "delay.percentile"),
        (r#"{"name": "api", "delay": {"min_samples": 5}}"#, "delay.percentile is missing"),
        (r#"{"name": "api", "delay": {"percentile": 0.9, "min_samples": -1}}"#, "delay.min_samples"),
        (r#"{"name": "api", "delay": true}"#, "delay: \"p95\""),
        (r#"{"name": "api", "delay": -3}"#, "delay is -3"),
        (r#"{"name": "api", "delay": "pNaN"}"#, "a percentile such as"),
    ] {
        let err = serde_json::from_str::<Hedge>(json).unwrap_err().to_string();
        assert!(err.contains(says), "{json}: {err}");
    }
}

#[tokio::test]
async fn a_refused_hedge_costs_no_pacer_slot_and_min_per_sec_holds_in_a_short_window() {
    use backstop::Pacer;
    let clock = ManualClock::new();
    let server = Server::default();
    let pacer = Pacer::builder("s3").initial_rate(1.0).burst(1).clock(&clock).build().unwrap();
    let refusing = Hedge::builder("get")
        .delay(HedgeDelay::fixed(MS(10)))
        .ratio(0.0)
        .min_per_sec(0.0)
        .pacer(&pacer)
        .clock(&clock)
        .build()
        .unwrap();
    clock.advance(Duration::from_secs(5));
    hedge_once(&refusing, &server, &clock).await;
    assert_eq!(pacer.reserve(), Duration::ZERO, "the refused hedge took no slot");
    // A 100 ms window with 1 hedge a second allowed: still at least one a window.
    let short = Hedge::builder("get")
        .delay(HedgeDelay::fixed(MS(10)))
        .ratio(0.0)
        .window(MS(100))
        .clock(&clock)
        .build()
        .unwrap();
    let before = server.made();
    hedge_once(&short, &server, &clock).await;
    assert_eq!(server.made() - before, 2, "hedged");
}

/// One call of 200 ms whose hedges answer in 5 ms.
async fn hedge_once(hedge: &Hedge, server: &Server, clock: &ManualClock) {
    let n = AtomicU32::new(0);
    let _ = hedge
        .run(|| {
            let first = n.fetch_add(1, Ordering::SeqCst) == 0;
            server.request(clock, if first { MS(200) } else { MS(5) }, Ok(0))
        })
        .await;
}

#[tokio::test]
async fn the_losers_are_dropped_when_the_winner_answers() {
    let clock = ManualClock::new();
    let server = Server::default();
    let hedge = fixed(&clock, MS(10));
    let n = AtomicU32::new(0);
    let mut call = std::pin::pin!(hedge.run(|| {
        let first = n.fetch_add(1, Ordering::SeqCst) == 0;
        server.request(&clock, if first { MS(1000) } else { MS(5) }, Ok(u32::from(!first)))
    }));
    assert_eq!((&mut call).await, Ok(1));
    assert_eq!(server.dropped.load(Ordering::SeqCst), 1, "dropped as the call returned, the future still alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_never_overshoot_the_hedges_own_share() {
    for _ in 0..50 {
        let server = Arc::new(Server::default());
        // Two hedges a window (1 a second over 2 s), zero delay: every call wants one.
        let hedge = Hedge::builder("get").delay(HedgeDelay::fixed(Duration::ZERO)).ratio(0.0).build().unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (hedge, server) = (hedge.clone(), Arc::clone(&server));
            tasks.push(tokio::spawn(async move {
                hedge.run(|| server.request(&SystemClock, MS(1), Ok(0))).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(server.made() <= 8 + 2, "{} requests for 8 calls and 2 hedges", server.made());
    }
}
