//! Eight worker processes (this test binary, run again) share one breaker
//! and one retry budget through a real `redis-server`, calling the real
//! fault HTTP server through a total outage and then its recovery. The
//! parent reads what each worker saw and checks the fleet's promises:
//!
//! - one probe per open period, for the whole fleet;
//! - retries during the outage within the fleet's one budget (not 8 × it);
//! - every worker open within the bound after the first trip;
//! - every worker closed after the recovery.
//!
//! Then six workers share one ratio budget through the same Redis, calling
//! a server that fails every call: their retries together stay within the
//! fleet's room (one floor, and the ratio of all their requests), where six
//! local budgets would each have a floor.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backstop::breaker::{BreakerConfig, BreakerEvent, CircuitState, Transition};
use backstop::{Backoff, CircuitBreaker, Jitter, RetryBudget, RetryError, RetryPolicy};
use backstop_redis::Fleet;
use backstop_testkit::redis::RedisServer;
use backstop_testkit::{FaultServer, Reply};
use support::get;

const WORKERS: usize = 8;
const REFRESH: Duration = Duration::from_millis(100);
const TIMEOUT: Duration = Duration::from_millis(50);
const OPEN_FOR: Duration = Duration::from_millis(300);
/// The fleet's budget: 100 tokens at 5 a retry.
const CAPACITY: u32 = 100;
const RETRIES_IN_BUDGET: u64 = 20;
const OUTAGE: Duration = Duration::from_millis(1800);
const RUN: Duration = Duration::from_millis(3600);

/// The ratio phase: workers, how long they run, and the budget's settings
/// (a floor of 2 a second over 10 s: 20 retries for the fleet).
const RATIO_WORKERS: usize = 6;
const RATIO_RUN: Duration = Duration::from_millis(1500);
const RATIO: f64 = 0.02;
const RATIO_FLOOR: f64 = 20.0;

fn main() {
    match std::env::var("BACKSTOP_FLEET_WORKER") {
        Ok(id) => match id.strip_prefix("ratio:") {
            Some(id) => ratio_worker(id.parse().expect("a worker number")),
            None => worker(id.parse().expect("a worker number")),
        },
        Err(_) => {
            let redis = RedisServer::start();
            parent(&redis);
            ratio_parent(&redis);
            println!("fleet_processes: ok");
        }
    }
}

/// Calls the failing server for `RATIO_RUN` with a shared ratio budget;
/// prints its requests and retries.
fn ratio_worker(id: u64) {
    let redis = std::env::var("REDIS_URL").unwrap();
    let addr: SocketAddr = std::env::var("TARGET").unwrap().parse().unwrap();
    let fleet = Fleet::builder(redis).refresh(REFRESH).timeout(TIMEOUT).build().unwrap();
    let budget = RetryBudget::ratio("fleet-ratio")
        .ratio(RATIO)
        .min_per_sec(RATIO_FLOOR / 10.0)
        .window(Duration::from_secs(10))
        .shared(&fleet)
        .build()
        .unwrap();
    let policy = RetryPolicy::builder()
        .max_attempts(4)
        .backoff(Backoff::constant(Duration::from_millis(1)))
        .seed(id)
        .build()
        .unwrap();
    let (mut requests, mut retries) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < RATIO_RUN {
        let mut attempts = 0u64;
        let _ = policy
            .retry(|| {
                attempts += 1;
                get(addr)
            })
            .budget(&budget)
            .call();
        requests += 1;
        retries += attempts - 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    println!("Q {requests} {retries} {}", budget.denied());
}

/// Runs this binary again as `n` worker processes named `{mode}{id}`, on
/// `redis` and calling `server`, their output piped.
fn spawn_workers(n: usize, mode: &str, redis: &RedisServer, server: &FaultServer) -> Vec<std::process::Child> {
    let exe = std::env::current_exe().unwrap();
    (0..n)
        .map(|id| {
            Command::new(&exe)
                .env("BACKSTOP_FLEET_WORKER", format!("{mode}{id}"))
                .env("REDIS_URL", redis.url())
                .env("TARGET", server.addr().to_string())
                .stdout(Stdio::piped())
                .spawn()
                .expect("a worker process")
        })
        .collect()
}

fn ratio_parent(redis: &RedisServer) {
    let server = FaultServer::start();
    server.otherwise(Reply::status(503));
    let children = spawn_workers(RATIO_WORKERS, "ratio:", redis, &server);
    let (mut requests, mut retries, mut denied) = (0u64, 0u64, 0u64);
    for mut child in children {
        let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
        assert!(child.wait().unwrap().success(), "a worker failed");
        let line = out.lines().find(|l| l.starts_with("Q ")).expect("a worker's counts");
        let n: Vec<u64> = line.split(' ').skip(1).map(|x| x.parse().unwrap()).collect();
        requests += n[0];
        retries += n[1];
        denied += n[2];
    }
    // The whole run is within one window: the fleet's room is one floor and
    // the ratio of every request.
    let room = RATIO_FLOOR + RATIO * requests as f64;
    assert!(retries as f64 <= room, "{retries} retries for {requests} requests: the fleet's room is {room}");
    assert!(denied > 0, "the fleet's room ran out and retries were refused");
    let local = RATIO_WORKERS as f64 * RATIO_FLOOR + RATIO * requests as f64;
    println!(
        "fleet_processes: {RATIO_WORKERS} workers on one ratio budget: {retries} retries for {requests} requests (the fleet's room {room:.0}; six local budgets would allow {local:.0}; {denied} refused)"
    );
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn worker(id: u64) {
    let redis = std::env::var("REDIS_URL").unwrap();
    let addr: SocketAddr = std::env::var("TARGET").unwrap().parse().unwrap();
    let fleet = Fleet::builder(redis).refresh(REFRESH).timeout(TIMEOUT).build().unwrap();
    let config =
        BreakerConfig::builder().consecutive_failures(20).open_for(Backoff::constant(OPEN_FOR)).build().unwrap();
    let breaker = CircuitBreaker::builder("fleet-api")
        .config(config)
        .on_state_change(|e: &BreakerEvent<'_>| {
            let cause = match e.cause {
                Transition::OpenPeriodOver => "probe",
                Transition::Shared => "followed",
                Transition::ProbeFailed => "probe_failed",
                Transition::ProbesSucceeded(_) => "probe_ok",
                _ => "tripped",
            };
            println!("T {} {} {}", unix_ms(), e.to.as_str(), cause);
        })
        .shared(&fleet)
        .build();
    let budget = RetryBudget::token_bucket("fleet-api").capacity(CAPACITY).shared(&fleet).build().unwrap();
    let policy = RetryPolicy::builder()
        .max_attempts(4)
        .backoff(Backoff::exponential(Duration::from_millis(2)).max_delay(Duration::from_millis(10)))
        .jitter(Jitter::Full)
        .seed(id)
        .build()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < RUN {
        let mut attempts = 0u64;
        let result = policy
            .retry(|| {
                attempts += 1;
                get(addr)
            })
            .breaker(&breaker)
            .budget(&budget)
            .call();
        if matches!(result, Err(RetryError::BudgetExhausted { .. })) {
            println!("D {}", unix_ms());
        }
        if attempts > 1 {
            println!("R {} {}", unix_ms(), attempts - 1);
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    println!("F {}", breaker.state().as_str());
}

#[derive(Default, Debug)]
struct Seen {
    transitions: Vec<(u64, String, String)>,
    retries: Vec<(u64, u64)>,
    denied: Vec<u64>,
    last_state: String,
}

fn parent(redis: &RedisServer) {
    let server = FaultServer::start();
    server.otherwise(Reply::status(503));
    let children = spawn_workers(WORKERS, "", redis, &server);
    std::thread::sleep(OUTAGE);
    server.otherwise(Reply::ok("fine"));
    let recovered_at = unix_ms();
    let seen: Vec<Seen> = children
        .into_iter()
        .map(|mut child| {
            let mut seen = Seen::default();
            for line in BufReader::new(child.stdout.take().unwrap()).lines() {
                let line = line.unwrap();
                let f: Vec<&str> = line.split(' ').collect();
                match f[0] {
                    "T" => seen.transitions.push((f[1].parse().unwrap(), f[2].into(), f[3].into())),
                    "R" => seen.retries.push((f[1].parse().unwrap(), f[2].parse().unwrap())),
                    "D" => seen.denied.push(f[1].parse().unwrap()),
                    "F" => seen.last_state = f[1].into(),
                    _ => {}
                }
            }
            assert!(child.wait().unwrap().success(), "a worker failed");
            seen
        })
        .collect();

    // One probe per open period: probes (a worker's breaker going half-open
    // on the fleet's lease) at least one open period apart, fleet-wide.
    let mut probes: Vec<u64> =
        seen.iter().flat_map(|s| s.transitions.iter().filter(|t| t.2 == "probe").map(|t| t.0)).collect();
    probes.sort_unstable();
    assert!(probes.len() >= 2, "the outage saw probes: {probes:?}");
    for pair in probes.windows(2) {
        let gap = pair[1] - pair[0];
        // Millisecond stamps from different processes: 5 ms of slack.
        assert!(
            gap + 5 >= OPEN_FOR.as_millis() as u64,
            "two probes {gap} ms apart, within one open period: {probes:?}"
        );
    }

    // The fleet's one budget: retries during the outage, all workers together.
    let retries: u64 = seen.iter().flat_map(|s| &s.retries).filter(|r| r.0 < recovered_at).map(|r| r.1).sum();
    // A trip takes 20 failures in a row in one worker, so the budget is what
    // stops retries first (eight local budgets would allow 160).
    let denied = seen.iter().flat_map(|s| &s.denied).filter(|&&t| t < recovered_at).count();
    assert!(denied > 0, "the fleet's budget ran dry and refused retries");
    assert!(retries <= RETRIES_IN_BUDGET, "{retries} retries in the outage, the fleet's budget is {RETRIES_IN_BUDGET}");

    // Every worker open within the bound after the first trip anywhere.
    let first_trip = seen
        .iter()
        .flat_map(|s| &s.transitions)
        .filter(|t| t.1 == "open" && t.2 == "tripped")
        .map(|t| t.0)
        .min()
        .expect("the fleet tripped");
    let bound = (REFRESH + TIMEOUT + Duration::from_millis(300)).as_millis() as u64;
    for (i, s) in seen.iter().enumerate() {
        let opened = s.transitions.iter().find(|t| t.1 == "open").map(|t| t.0).expect("every worker opened");
        assert!(opened <= first_trip + bound, "worker {i} opened {} ms after the first trip", opened - first_trip);
    }

    // After the recovery, everyone is closed.
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.last_state, CircuitState::Closed.as_str(), "worker {i}: {:?}", s.transitions);
        let closed = s.transitions.iter().rfind(|t| t.1 == "closed").expect("closed again");
        assert!(closed.0 >= recovered_at, "worker {i} closed before the recovery");
    }
    let all_probes = probes.len();
    let worst_follow = seen
        .iter()
        .filter_map(|s| s.transitions.iter().find(|t| t.1 == "open").map(|t| t.0 - first_trip))
        .max()
        .unwrap_or(0);
    println!(
        "fleet_processes: {WORKERS} workers, {all_probes} probes one per open period, {retries} retries in the outage (budget {RETRIES_IN_BUDGET}; {denied} refused), all open within {worst_follow} ms, all closed after recovery"
    );
}
