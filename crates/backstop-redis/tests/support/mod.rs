//! What the fleet tests share: fleets with short refreshes on a private
//! redis-server, a breaker that trips on two failures, and waiting for
//! something the fleet's thread will do.
#![allow(dead_code)] // each test file uses its own part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use backstop::breaker::{BreakerConfig, CircuitState, Permit};
use backstop::{Backoff, CircuitBreaker};
use backstop_redis::Fleet;
use backstop_testkit::redis::RedisServer;

pub const REFRESH: Duration = Duration::from_millis(20);
pub const TIMEOUT: Duration = Duration::from_millis(50);

/// A fleet on `redis` refreshing every 20 ms, with a 50 ms timeout.
pub fn fleet(redis: &RedisServer) -> Fleet {
    Fleet::builder(redis.url())
        .refresh(REFRESH)
        .timeout(TIMEOUT)
        .reconnect_every(Duration::from_millis(20))
        .build()
        .unwrap()
}

/// A shared breaker that trips on 2 failures in a row.
pub fn breaker(fleet: &Fleet, name: &str, open_for: Duration) -> CircuitBreaker {
    let config =
        BreakerConfig::builder().consecutive_failures(2).open_for(Backoff::constant(open_for)).build().unwrap();
    CircuitBreaker::builder(name).config(config).shared(fleet).build()
}

/// Trips a `breaker(..)`.
pub fn trip(breaker: &CircuitBreaker) {
    for _ in 0..2 {
        breaker.try_acquire().expect("closed").failure();
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}

/// Waits until `done` holds (checking every millisecond), up to `limit`;
/// returns how long it took.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: still not after {limit:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    start.elapsed()
}

/// Waits (up to 5 s) for a permit: a probe, once the fleet grants it.
pub fn wait_until_permit(b: &CircuitBreaker) -> Permit<'_> {
    let start = Instant::now();
    loop {
        if let Ok(p) = b.try_acquire() {
            return p;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no probe granted");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One call: a GET over a fresh connection; `Ok` for a 200, else the
/// status (`HTTP 429`) or the error.
pub fn get(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
    stream.write_all(b"GET /work HTTP/1.1\r\nHost: fleet\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    match reply.split(' ').nth(1) {
        Some("200") => Ok(()),
        Some(code) => Err(format!("HTTP {code}")),
        None => Err("no reply".into()),
    }
}

/// Each budget on its own thread asks for a retry every millisecond for
/// `run`; returns how many were granted in all.
pub fn retries_granted(budgets: &[backstop::RetryBudget], run: Duration) -> u32 {
    let granted = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for b in budgets {
            let granted = &granted;
            s.spawn(move || {
                let start = Instant::now();
                while start.elapsed() < run {
                    if b.try_withdraw(backstop::Verdict::Retry).is_some() {
                        granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        }
    });
    granted.into_inner()
}
