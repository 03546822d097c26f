//! Redis traffic of shared guards: round trips per 1,000 calls and per
//! worker-second, for a healthy fleet and for a failing one. Eight workers
//! (threads, each with its own `Fleet`: its own thread and connection, as a
//! process would have) call an in-process operation about 1,000 times a
//! second each for 5 s, through a shared breaker and a shared budget (and,
//! in the last run, a shared pacer that paces them), on a private
//! `redis-server` (installed from Debian's packages when missing).
//!
//! `cargo run --release -p backstop-bench --bin fleet_traffic`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use backstop::breaker::BreakerConfig;
use backstop::{Backoff, CircuitBreaker, Pacer, RetryBudget, RetryPolicy};
use backstop_redis::Fleet;
use backstop_testkit::redis::RedisServer;

const WORKERS: usize = 8;
const RUN: Duration = Duration::from_secs(5);
const EVERY: Duration = Duration::from_millis(1);

struct Traffic {
    calls: u64,
    round_trips: u64,
}

fn run(redis: &RedisServer, name: &str, failing: bool, paced: bool) -> Traffic {
    let calls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut fleets = Vec::new();
    let mut threads = Vec::new();
    for id in 0..WORKERS {
        let fleet = Fleet::builder(redis.url()).build().expect("a fleet");
        let config =
            BreakerConfig::builder().consecutive_failures(5).open_for(Backoff::constant(Duration::from_secs(1)));
        let breaker = CircuitBreaker::builder(name).config(config.build().expect("valid")).shared(&fleet).build();
        let budget = RetryBudget::token_bucket(name).shared(&fleet).build().expect("valid");
        // A shared pacer that paces (a fleet's limit of 2,000 calls a
        // second, below the ~8,000 the workers would send), or none.
        let pacer = paced.then(|| Pacer::builder(name).initial_rate(2000.0).shared(&fleet).build().expect("valid"));
        let policy = RetryPolicy::builder()
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::ZERO))
            .seed(id as u64)
            .build()
            .expect("valid");
        let (calls, stop) = (Arc::clone(&calls), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let run = policy.retry(|| if failing { Err("503") } else { Ok(()) }).breaker(&breaker).budget(&budget);
                let _ = match &pacer {
                    Some(pacer) => run.pacer(pacer).call(),
                    None => run.call(),
                };
                calls.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(EVERY);
            }
        }));
        fleets.push(fleet);
    }
    // Connecting loads the scripts (8 round trips per fleet): count from here.
    let base: u64 = fleets.iter().map(|f| f.stats().round_trips).sum();
    let calls_before = calls.load(Ordering::Relaxed);
    std::thread::sleep(RUN);
    let round_trips = fleets.iter().map(|f| f.stats().round_trips).sum::<u64>() - base;
    let calls = calls.load(Ordering::Relaxed) - calls_before;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a worker");
    }
    Traffic { calls, round_trips }
}

fn main() {
    let redis = RedisServer::start();
    println!("| fleet | calls | round trips | per 1,000 calls | per worker-second |");
    println!("|---|---:|---:|---:|---:|");
    for (label, name, failing, paced) in [
        ("healthy", "healthy", false, false),
        ("failing (every call fails)", "failing", true, false),
        ("healthy, and a shared pacer pacing the fleet at 2,000/s", "paced", false, true),
    ] {
        let t = run(&redis, name, failing, paced);
        println!(
            "| {label} | {} | {} | {:.1} | {:.1} |",
            t.calls,
            t.round_trips,
            t.round_trips as f64 * 1000.0 / t.calls.max(1) as f64,
            t.round_trips as f64 / WORKERS as f64 / RUN.as_secs_f64()
        );
    }
}
