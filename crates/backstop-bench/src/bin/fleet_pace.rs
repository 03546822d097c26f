//! A fleet against a real rate limiter: 32 workers (threads, each with
//! its own `Fleet`, as a process would have) call nginx's `/limited` (50
//! requests a second for everyone, burst 10, 429 beyond), each wanting about
//! 150 a second, for 8 s: with no pacer, with a local pacer each, and with
//! one pacer shared through Redis. Counts the answers of the last 5 s (after
//! learning) and the Redis round trips.
//!
//! `cargo run --release -p backstop-bench --bin fleet_pace` (installs nginx
//! and redis-server from Debian's packages when missing).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backstop::{Pacer, RetryPolicy, Verdict};
use backstop_bench::nginx::{Error, Nginx};
use backstop_redis::Fleet;
use backstop_testkit::redis::RedisServer;

const WORKERS: usize = 32;
const LEARN: Duration = Duration::from_secs(3);
const MEASURE: Duration = Duration::from_secs(5);
const EVERY: Duration = Duration::from_micros(6_500);

#[derive(Clone, Copy, PartialEq)]
enum Pacing {
    None,
    Local,
    Shared,
}

/// One GET over a fresh connection: the status code (0: no answer).
fn get(port: u16) -> u16 {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return 0 };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /limited HTTP/1.1\r\nHost: fleet\r\nConnection: close\r\n\r\n").is_err() {
        return 0;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    refused: AtomicU64,
}

fn run(nginx: &Nginx, redis: &RedisServer, pacing: Pacing, name: &str) -> (f64, f64, f64) {
    let (learning, measured) = (Counts::default(), Counts::default());
    let fleets: Vec<Fleet> = (0..WORKERS).map(|_| Fleet::builder(redis.url()).build().expect("a fleet")).collect();
    let pacers: Vec<Option<Pacer>> = fleets
        .iter()
        .map(|fleet| match pacing {
            Pacing::None => None,
            Pacing::Local => Some(Pacer::builder(name).build().expect("valid")),
            Pacing::Shared => Some(Pacer::builder(name).shared(fleet).build().expect("valid")),
        })
        .collect();
    let base: u64 = fleets.iter().map(|f| f.stats().round_trips).sum();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for pacer in &pacers {
            let (learning, measured) = (&learning, &measured);
            scope.spawn(move || {
                let policy = RetryPolicy::builder().max_attempts(1).build().expect("valid");
                while start.elapsed() < LEARN + MEASURE {
                    let counts = if start.elapsed() < LEARN { learning } else { measured };
                    let call = policy
                        .retry(|| match get(nginx.port) {
                            200 => Ok(()),
                            code => Err(code),
                        })
                        .when(|code: &u16| if *code == 429 { Verdict::Throttled } else { Verdict::Fail });
                    let result = match pacer {
                        Some(p) => call.pacer(p).call(),
                        None => call.call(),
                    };
                    match result {
                        Ok(()) => counts.ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => counts.refused.fetch_add(1, Ordering::Relaxed),
                    };
                    std::thread::sleep(EVERY);
                }
            });
        }
    });
    let round_trips = fleets.iter().map(|f| f.stats().round_trips).sum::<u64>() - base;
    let secs = MEASURE.as_secs_f64();
    let ok = measured.ok.load(Ordering::Relaxed) as f64 / secs;
    let refused = measured.refused.load(Ordering::Relaxed) as f64 / secs;
    let per_worker_s = round_trips as f64 / WORKERS as f64 / (LEARN + MEASURE).as_secs_f64();
    (ok, refused, per_worker_s)
}

fn main() -> Result<(), Error> {
    let nginx = Nginx::start(false)?;
    let redis = RedisServer::start();
    println!(
        "{WORKERS} workers, each wanting ~150 calls/s, against nginx limit_req (50/s for all, burst 10); \
         the last {}s after {}s of learning:\n",
        MEASURE.as_secs(),
        LEARN.as_secs()
    );
    println!("| pacing | accepted /s | refused (429) /s | refused share | Redis round trips per worker-s |");
    println!("|---|---:|---:|---:|---:|");
    for (label, pacing, name) in [
        ("none", Pacing::None, "none"),
        ("a local pacer per worker", Pacing::Local, "local"),
        ("one shared pacer (redis)", Pacing::Shared, "shared"),
    ] {
        let (ok, refused, rt) = run(&nginx, &redis, pacing, name);
        let share = refused / (ok + refused).max(1e-9) * 100.0;
        println!("| {label} | {ok:.1} | {refused:.1} | {share:.0}% | {rt:.1} |");
    }
    Ok(())
}
