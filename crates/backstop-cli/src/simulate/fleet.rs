//! A fleet in an outage, for real: N worker threads, each with its own
//! `Fleet` (its own thread, connection and probe token, as a process would
//! have), call one downstream that fails everything for 3 s and then
//! recovers, with local guards and then with guards shared through Redis.
//! Unlike the other studies this one runs in real time against a real
//! `redis-server` (about 14 s), so its numbers vary a little between runs.
//!
//! Each call is a retry run (4 attempts, 20 ms doubling, full jitter) through
//! a breaker (5 failures in a row, 1 s open) and a token bucket (the AWS
//! standard: 500 tokens, 5 a retry), every worker calling every 20 ms.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use backstop::breaker::{BreakerConfig, BreakerEvent, CircuitState, Transition};
use backstop::{Backoff, CircuitBreaker, Jitter, RetryBudget, RetryPolicy};
use backstop_redis::Fleet;

/// Local guards, or guards shared through Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guards {
    Local,
    Shared,
}

impl Guards {
    pub const ALL: [Guards; 2] = [Guards::Local, Guards::Shared];

    pub fn name(self) -> &'static str {
        match self {
            Guards::Local => "local guards",
            Guards::Shared => "shared guards (redis)",
        }
    }
}

/// One run's numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    /// Attempts that reached the downstream during the outage.
    pub attempts_in_outage: u64,
    /// Retries sent during the outage, all workers together.
    pub retries_in_outage: u64,
    /// Probes (half-open calls) of the whole fleet per open period.
    pub probes_per_open_period: f64,
    /// From the outage's start until every worker's breaker was open.
    pub time_to_open: Duration,
    /// From the recovery until every worker's breaker was closed.
    pub time_to_recover: Duration,
    /// Redis round trips per 1,000 calls (0 for local guards).
    pub round_trips_per_1000_calls: f64,
    /// Redis round trips per worker per second (0 for local guards).
    pub round_trips_per_worker_s: f64,
    /// Times a worker lost Redis (a step slower than the timeout) and went
    /// local.
    pub fallbacks: u64,
}

const OUTAGE_START: Duration = Duration::from_secs(1);
const OUTAGE_END: Duration = Duration::from_secs(4);
const END: Duration = Duration::from_secs(7);
const OPEN_FOR: Duration = Duration::from_secs(1);
const EVERY: Duration = Duration::from_millis(20);
const LATENCY: Duration = Duration::from_millis(2);

/// The downstream: fails during the outage, counts attempts.
struct Downstream {
    start: Instant,
    attempts_in_outage: AtomicU64,
}

impl Downstream {
    fn down(&self) -> bool {
        let t = self.start.elapsed();
        (OUTAGE_START..OUTAGE_END).contains(&t)
    }

    fn call(&self) -> Result<(), &'static str> {
        std::thread::sleep(LATENCY);
        if self.down() {
            self.attempts_in_outage.fetch_add(1, Ordering::Relaxed);
            return Err("503 Service Unavailable");
        }
        Ok(())
    }
}

/// What one worker's breaker did, in ms since the start.
#[derive(Default)]
struct Worker {
    opened: Vec<(u64, bool)>,
    closed: Vec<u64>,
    probes: Vec<u64>,
}

pub fn run(workers: usize, guards: Guards, redis_url: &str) -> Result<Outcome, String> {
    // The study's clock starts once every worker's guards are built (a
    // shared guard's build waits for its first sync).
    let started: Arc<OnceLock<Instant>> = Arc::default();
    let retries = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut fleets = Vec::new();
    let mut workers_ready = Vec::new();
    let logs: Vec<Arc<Mutex<Worker>>> = (0..workers).map(|_| Arc::default()).collect();
    for (id, log) in logs.iter().enumerate() {
        let fleet = match guards {
            Guards::Local => None,
            Guards::Shared => Some(Fleet::builder(redis_url).build().map_err(|e| e.to_string())?),
        };
        let start = Arc::clone(&started);
        let log_events = Arc::clone(log);
        let config = BreakerConfig::builder()
            .consecutive_failures(5)
            .open_for(Backoff::constant(OPEN_FOR))
            .build()
            .map_err(|e| e.to_string())?;
        let mut breaker =
            CircuitBreaker::builder("fleet-sim").config(config).on_state_change(move |e: &BreakerEvent<'_>| {
                let at = start.get().map_or(0, |s| s.elapsed().as_millis() as u64);
                let mut w = log_events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match e.to {
                    CircuitState::Open => w.opened.push((at, e.cause == Transition::Shared)),
                    CircuitState::Closed => w.closed.push(at),
                    CircuitState::HalfOpen => w.probes.push(at),
                    CircuitState::Isolated => {}
                }
            });
        let mut budget = RetryBudget::token_bucket("fleet-sim");
        if let Some(f) = &fleet {
            breaker = breaker.shared(f);
            budget = budget.shared(f);
        }
        let (breaker, budget) = (breaker.build(), budget.build().map_err(|e| e.to_string())?);
        let policy = RetryPolicy::builder()
            .max_attempts(4)
            .backoff(Backoff::exponential(Duration::from_millis(20)))
            .jitter(Jitter::Full)
            .seed(id as u64 + 1)
            .build()
            .map_err(|e| e.to_string())?;
        workers_ready.push((breaker, budget, policy));
        fleets.push(fleet);
    }
    let downstream =
        Arc::new(Downstream { start: *started.get_or_init(Instant::now), attempts_in_outage: AtomicU64::new(0) });
    let mut threads = Vec::new();
    for (id, (breaker, budget, policy)) in workers_ready.into_iter().enumerate() {
        let (downstream, retries, calls, stop) =
            (Arc::clone(&downstream), Arc::clone(&retries), Arc::clone(&calls), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            // Spread the workers' first calls over one interval.
            std::thread::sleep(EVERY.mul_f64(id as f64 / workers as f64));
            while !stop.load(Ordering::Relaxed) {
                let in_outage = downstream.down();
                let mut attempts = 0u64;
                let _ = policy
                    .retry(|| {
                        attempts += 1;
                        downstream.call()
                    })
                    .breaker(&breaker)
                    .budget(&budget)
                    .call();
                calls.fetch_add(1, Ordering::Relaxed);
                if in_outage {
                    retries.fetch_add(attempts.saturating_sub(1), Ordering::Relaxed);
                }
                std::thread::sleep(EVERY);
            }
        }));
    }
    std::thread::sleep(END.saturating_sub(downstream.start.elapsed()));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let round_trips: u64 = fleets.iter().flatten().map(|f| f.stats().round_trips).sum();
    let fallbacks: u64 = fleets.iter().flatten().map(|f| f.stats().fallbacks).sum();

    drop(fleets);

    let ms = |d: Duration| d.as_millis() as u64;
    let (outage_start, outage_end) = (ms(OUTAGE_START), ms(OUTAGE_END));
    let logs: Vec<Worker> = logs
        .into_iter()
        .map(|l| std::mem::take(&mut *l.lock().unwrap_or_else(std::sync::PoisonError::into_inner)))
        .collect();
    let open_at = logs
        .iter()
        .map(|w| w.opened.iter().map(|o| o.0).find(|&t| t >= outage_start).unwrap_or(outage_end))
        .max()
        .unwrap_or(outage_end);
    let closed_at = logs
        .iter()
        .map(|w| w.closed.iter().copied().filter(|&t| t >= outage_end).max().unwrap_or(outage_end))
        .max()
        .unwrap_or(outage_end);
    // Probes fleet-wide per open period: the probes from the outage's start
    // until the last worker closed (the probe that found the downstream
    // back included), over the open periods of the outage. An open period
    // starts with a worker's own trip or failed probe; those less than half
    // a period apart (workers tripping together) start the same one.
    let probes = logs.iter().flat_map(|w| &w.probes).filter(|&&t| (outage_start..=closed_at).contains(&t)).count();
    let mut opens: Vec<u64> = logs
        .iter()
        .flat_map(|w| w.opened.iter().filter(|o| !o.1 && (outage_start..outage_end).contains(&o.0)).map(|o| o.0))
        .collect();
    opens.sort_unstable();
    let half = ms(OPEN_FOR) / 2;
    let periods = opens.iter().zip(std::iter::once(&0).chain(&opens)).filter(|(t, prev)| **t - **prev > half).count();
    Ok(Outcome {
        attempts_in_outage: downstream.attempts_in_outage.load(Ordering::Relaxed),
        retries_in_outage: retries.load(Ordering::Relaxed),
        probes_per_open_period: probes as f64 / periods.max(1) as f64,
        time_to_open: Duration::from_millis(open_at.saturating_sub(outage_start)),
        time_to_recover: Duration::from_millis(closed_at.saturating_sub(outage_end)),
        round_trips_per_1000_calls: round_trips as f64 * 1000.0 / calls.load(Ordering::Relaxed).max(1) as f64,
        round_trips_per_worker_s: round_trips as f64 / workers as f64 / END.as_secs_f64(),
        fallbacks,
    })
}

/// A private `redis-server` for the study, on a free loopback port, killed
/// when dropped.
pub struct LocalRedis {
    child: Child,
    dir: PathBuf,
    pub url: String,
}

impl LocalRedis {
    pub fn start() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let dir = std::env::temp_dir().join(format!("backstop-simulate-redis-{port}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start redis-server ({e}): install it (Debian: apt-get install redis-server) or pass --redis URL"
                )
            })?;
        let url = format!("redis://127.0.0.1:{port}/");
        let ready = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if ready.elapsed() > Duration::from_secs(10) {
                return Err("redis-server did not start within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(LocalRedis { child, dir, url })
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
