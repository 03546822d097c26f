//! Throttling: a burst of clients against a server with a fixed capacity
//! (requests a second), which answers `SlowDown` above it, with or without a
//! `Retry-After` hint. Each call is a retry run (10 attempts, 100 ms doubling
//! to 5 s, full jitter) whose delays come from the library's `Backoff`; a
//! hint is honoured as the library's run honours `Verdict::RetryAfter`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use backstop::{Backoff, Jitter, backoff::Delays};

/// Whether the server sends a hint with its `SlowDown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// No hint: clients back off on their own.
    None,
    /// `Retry-After: 1`: every refused client waits exactly a second.
    RetryAfter,
}

impl Hint {
    pub const ALL: [Hint; 2] = [Hint::None, Hint::RetryAfter];

    pub fn name(self) -> &'static str {
        match self {
            Hint::None => "backoff, no hint",
            Hint::RetryAfter => "Retry-After: 1",
        }
    }
}

/// One run's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Attempts made in all.
    pub calls: u64,
    /// Calls that succeeded.
    pub succeeded: u64,
    /// When the last call ended (succeeded or gave up).
    pub drain: Duration,
}

impl Outcome {
    /// Successful calls per second until the burst drained.
    pub fn goodput(&self) -> f64 {
        self.succeeded as f64 / self.drain.as_secs_f64().max(1e-9)
    }
}

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const CAPACITY_PER_SEC: u64 = 20;
const LATENCY: u64 = 10 * MS;
const ATTEMPTS: u32 = 10;

/// Runs the scenario once: `clients` calls at t = 0 against 20 requests a second.
pub fn run(clients: usize, hint: Hint, seed: u64) -> Outcome {
    let backoff =
        Backoff::exponential(Duration::from_millis(100)).max_delay(Duration::from_secs(5)).jitter(Jitter::Full);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut delays: Vec<Delays> = (0..clients).map(|c| backoff.delays(Some(seed ^ (c as u64) << 20))).collect();
    let mut attempts = vec![0u32; clients];
    // Attempts by arrival time at the server: (time, client).
    let mut queue: BinaryHeap<Reverse<(u64, usize)>> =
        (0..clients).map(|c| Reverse((rng.u64(0..LATENCY), c))).collect();
    // The server's capacity as a token bucket of one second's worth.
    let (mut tokens, mut refilled_at) = (CAPACITY_PER_SEC as f64, 0u64);
    let mut out = Outcome { calls: 0, succeeded: 0, drain: Duration::ZERO };
    while let Some(Reverse((at, client))) = queue.pop() {
        tokens =
            (tokens + (at - refilled_at) as f64 / SEC as f64 * CAPACITY_PER_SEC as f64).min(CAPACITY_PER_SEC as f64);
        refilled_at = at;
        out.calls += 1;
        attempts[client] += 1;
        let end = at + LATENCY;
        if tokens >= 1.0 {
            tokens -= 1.0;
            out.succeeded += 1;
            out.drain = out.drain.max(Duration::from_nanos(end));
            continue;
        }
        // Refused: SlowDown.
        if attempts[client] >= ATTEMPTS {
            out.drain = out.drain.max(Duration::from_nanos(end));
            continue;
        }
        let backoff_wait = delays[client].next().unwrap_or_default();
        let wait = match hint {
            Hint::None => backoff_wait,
            Hint::RetryAfter => Duration::from_secs(1),
        };
        queue.push(Reverse((end + u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX), client)));
    }
    out
}
