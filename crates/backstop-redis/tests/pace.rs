//! A fleet's shared pace, with a real `redis-server`: several fleets in one
//! test stand for several processes (each has its own connection, thread
//! and token). Real time, since Redis's clock paces the fleet; the bounds
//! checked are the pace's promises (an upper bound on what the fleet sends),
//! with generous room below.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backstop::{Pacer, RetryPolicy, Verdict};
use backstop_redis::Fleet;
use backstop_testkit::redis::RedisServer;
use backstop_testkit::{Backend, FaultServer};
use bytes::Bytes;
use support::{fleet, get, wait_until};

fn one_attempt() -> RetryPolicy {
    RetryPolicy::builder().max_attempts(1).build().unwrap()
}

/// Runs `threads` callers on `pacer` for `run`, each sending through a
/// one-attempt run; returns the calls each made.
fn hammer(pacer: &Pacer, threads: usize, run: Duration, call: impl Fn() -> Result<(), String> + Sync) -> u64 {
    let sent = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let start = Instant::now();
                while start.elapsed() < run {
                    let _ = one_attempt()
                        .retry(|| {
                            sent.fetch_add(1, Ordering::Relaxed);
                            call()
                        })
                        .when(|e: &String| if e == "HTTP 429" { Verdict::Throttled } else { Verdict::Fail })
                        .pacer(pacer)
                        .call();
                }
            });
        }
    });
    sent.into_inner()
}

#[test]
fn four_processes_send_together_at_the_fleets_rate_not_each_at_it() {
    let redis = RedisServer::start();
    let fleets: Vec<Fleet> = (0..4).map(|_| fleet(&redis)).collect();
    let pacers: Vec<Pacer> =
        fleets.iter().map(|f| Pacer::builder("gcra").initial_rate(100.0).burst(1).shared(f).build().unwrap()).collect();
    let run = Duration::from_millis(1000);
    let start = Instant::now();
    let sent: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = pacers.iter().map(|p| scope.spawn(|| hammer(p, 2, run, || Ok(())))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let total: u64 = sent.iter().sum();
    // GCRA hands out at most rate × (time + how far ahead a grant may
    // start, 2 refreshes) + burst: about 100 a second for the four, where
    // four local pacers would send 400.
    let most = 100.0 * (secs + 0.04) + 1.0;
    assert!((total as f64) <= most, "the fleet sent {total} in {secs:.2}s ({sent:?}): more than {most:.0}");
    assert!(total as f64 >= 50.0 * secs, "the fleet sent only {total} in {secs:.2}s ({sent:?})");
    assert!(sent.iter().all(|&n| n >= total / 8), "a process got less than half its share: {sent:?}");
    assert!(pacers.iter().all(|p| p.rate() == Some(100.0)), "each follows the fleet's rate");
}

/// A server that accepts `per_sec` requests a second (a token bucket of
/// `burst`) and answers 429 to the rest, as an API gateway does; and its
/// count of 429s.
fn rate_limited(per_sec: f64, burst: f64) -> (FaultServer, Arc<AtomicU64>) {
    let bucket = Arc::new(Mutex::new((burst, Instant::now())));
    let refused = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&refused);
    let backend: Backend = Arc::new(move |_req| {
        let (bucket, refused) = (Arc::clone(&bucket), Arc::clone(&count));
        Box::pin(async move {
            let mut b = bucket.lock().unwrap();
            let now = Instant::now();
            b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * per_sec).min(burst);
            b.1 = now;
            let status = if b.0 >= 1.0 {
                b.0 -= 1.0;
                200
            } else {
                refused.fetch_add(1, Ordering::Relaxed);
                429
            };
            http::Response::builder().status(status).body(Bytes::from_static(b"ok")).unwrap()
        })
    });
    let server = FaultServer::with_backend(backend);
    server.otherwise(backstop_testkit::Reply::Forward);
    (server, refused)
}

#[test]
fn against_a_real_rate_limiter_the_fleet_learns_one_rate_near_its_limit() {
    let redis = RedisServer::start();
    let (server, refusals) = rate_limited(40.0, 4.0);
    let addr = server.addr();
    let fleets: Vec<Fleet> = (0..3).map(|_| fleet(&redis)).collect();
    let pacers: Vec<Pacer> = fleets
        .iter()
        .map(|f| Pacer::builder("gateway").min_decrease_interval(Duration::from_millis(100)).shared(f).build().unwrap())
        .collect();
    // Learning: each process's two callers send as fast as they are let
    // (at most 100 a second each, 600 for the fleet) into a limit of 40.
    let call = || {
        std::thread::sleep(Duration::from_millis(10));
        get(addr)
    };
    std::thread::scope(|scope| {
        for p in &pacers {
            scope.spawn(|| hammer(p, 2, Duration::from_millis(2500), call));
        }
    });
    // Once every process has synced since the last success: one rate.
    support::wait_until(Duration::from_secs(2), "one rate for the fleet", || {
        pacers.iter().all(|p| p.rate().is_some() && p.rate() == pacers[0].rate())
    });
    let rate = pacers[0].rate().expect("the fleet paces after the 429s");
    // Settled: measure what the server answers over one more second.
    let (before, refused_before) = (server.hits(), refusals.load(Ordering::Relaxed));
    std::thread::scope(|scope| {
        for p in &pacers {
            scope.spawn(|| hammer(p, 2, Duration::from_millis(1000), call));
        }
    });
    let sent = server.hits() - before;
    let refused = usize::try_from(refusals.load(Ordering::Relaxed) - refused_before).unwrap();
    // CUBIC learns from below: its first estimate of what the fleet sent can
    // be low, and it climbs back over seconds (BENCHMARKS.md: at the limit
    // over 8 s against nginx).
    assert!((5.0..=100.0).contains(&rate), "the fleet's rate {rate:.1}/s is far from the limit's 40/s");
    assert!(sent >= 10, "the fleet sent only {sent} in a second against a limit of 40");
    assert!(refused * 3 <= sent, "{refused} of {sent} refused once settled: the fleet did not learn the limit");
}

#[test]
fn redis_gone_the_pacer_goes_on_alone_at_its_share_and_rejoins() {
    let mut redis = RedisServer::start();
    let f = fleet(&redis);
    let pacer = Pacer::builder("alone").initial_rate(50.0).burst(1).shared(&f).build().unwrap();
    let longest = |run: Duration| {
        let mut longest = Duration::ZERO;
        let start = Instant::now();
        while start.elapsed() < run {
            let t = Instant::now();
            one_attempt().retry(|| Ok::<_, String>(())).pacer(&pacer).call().unwrap();
            longest = longest.max(t.elapsed());
        }
        longest
    };
    longest(Duration::from_millis(300));
    redis.kill();
    // No call waits for Redis: at worst one timeout and a refresh, then a
    // slot of the local pace.
    let waited = longest(Duration::from_millis(500));
    assert!(waited < Duration::from_millis(400), "a call waited {waited:?} with Redis gone");
    assert!(!f.is_connected());
    let alone = pacer.rate().expect("still pacing alone");
    assert!((20.0..=60.0).contains(&alone), "alone at {alone:.1}/s, not its share of the fleet's 50/s");
    redis.restart();
    wait_until(Duration::from_secs(5), "the fleet is back", || f.stats().rejoins >= 1);
    longest(Duration::from_millis(100));
    // Redis came back empty: the fleet carries on at this process's rate,
    // rather than forget it was pacing.
    let back = pacer.rate().expect("still pacing after the restart");
    assert!((20.0..=60.0).contains(&back), "back at {back:.1}/s");
}

#[test]
fn a_run_dropped_while_waiting_for_the_fleets_slot_gives_it_back() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    let pacer = Pacer::builder("dropped").initial_rate(2.0).burst(1).shared(&f).build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let sent = AtomicU64::new(0);
    let policy = one_attempt();
    rt.block_on(async {
        // The first call takes the one slot due now; the next waits 500 ms.
        let call = || {
            policy
                .retry(|| async {
                    sent.fetch_add(1, Ordering::Relaxed);
                    Ok::<_, String>(())
                })
                .pacer(&pacer)
        };
        call().await.unwrap();
        let dropped = tokio::time::timeout(Duration::from_millis(50), call()).await;
        assert!(dropped.is_err(), "the second call should still be waiting");
        let start = Instant::now();
        call().await.unwrap();
        // The slot the dropped run held went to this one: no wait for a slot
        // behind it (1 s).
        assert!(start.elapsed() < Duration::from_millis(900), "waited {:?}", start.elapsed());
    });
    assert_eq!(sent.load(Ordering::Relaxed), 2);
}
