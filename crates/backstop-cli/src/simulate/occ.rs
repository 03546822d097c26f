//! The contention study of Marc Brooker's "Exponential Backoff And Jitter"
//! (AWS Architecture Blog, 2015): N clients each make one optimistic-
//! concurrency write to the same row. An attempt reads the row when it
//! starts and commits when it ends, one network round trip later; it fails
//! if another write committed in between, and the client retries after the
//! strategy's delay. The delays come from the library's own `Backoff`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use backstop::{Backoff, Jitter, backoff::Delays};

/// A retry strategy of the study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Retry at once.
    None,
    /// Exponential backoff without jitter.
    Exponential,
    /// Exponential with full jitter.
    Full,
    /// Exponential with equal jitter.
    Equal,
    /// Exponential with decorrelated jitter.
    Decorrelated,
}

impl Strategy {
    pub const ALL: [Strategy; 5] =
        [Strategy::None, Strategy::Exponential, Strategy::Full, Strategy::Equal, Strategy::Decorrelated];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::None => "none",
            Strategy::Exponential => "exponential",
            Strategy::Full => "full",
            Strategy::Equal => "equal",
            Strategy::Decorrelated => "decorrelated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The study's backoff: base 5 ms, cap 2 s, this jitter (or no delay).
    pub fn backoff(self) -> Backoff {
        let exp = Backoff::exponential(Duration::from_millis(5)).max_delay(Duration::from_secs(2));
        match self {
            Strategy::None => Backoff::constant(Duration::ZERO),
            Strategy::Exponential => exp,
            Strategy::Full => exp.jitter(Jitter::Full),
            Strategy::Equal => exp.jitter(Jitter::Equal),
            Strategy::Decorrelated => exp.jitter(Jitter::Decorrelated),
        }
    }
}

/// One run's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Attempts made by all clients together.
    pub calls: u64,
    /// When the last client's write committed.
    pub completion: Duration,
}

const NANOS_PER_MS: u64 = 1_000_000;

/// Runs the study once: `clients` writers, `strategy`, seeded by `seed`.
pub fn run(clients: usize, strategy: Strategy, seed: u64) -> Outcome {
    let mut net = fastrand::Rng::with_seed(seed);
    // A round trip of 10 ms ± 2 ms.
    let mut rtt = || 8 * NANOS_PER_MS + net.u64(0..=4 * NANOS_PER_MS);
    let backoff = strategy.backoff();
    let mut delays: Vec<Delays> =
        (0..clients).map(|c| backoff.delays(Some(seed.wrapping_mul(31).wrapping_add(c as u64)))).collect();
    // Attempts in flight, by end time: (end, client, start).
    let mut in_flight = BinaryHeap::with_capacity(clients);
    for c in 0..clients {
        in_flight.push(Reverse((rtt(), c, 0u64)));
    }
    let (mut calls, mut last_commit, mut completion) = (0u64, None::<u64>, 0u64);
    while let Some(Reverse((end, client, start))) = in_flight.pop() {
        calls += 1;
        if last_commit.is_none_or(|commit| commit <= start) {
            last_commit = Some(end);
            completion = end;
            continue;
        }
        let wait = delays[client].next().unwrap_or_default();
        let next_start = end.saturating_add(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
        in_flight.push(Reverse((next_start.saturating_add(rtt()), client, next_start)));
    }
    Outcome { calls, completion: Duration::from_nanos(completion) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_writes_once() {
        let o = run(1, Strategy::Full, 1);
        assert_eq!(o.calls, 1);
        assert!(o.completion >= Duration::from_millis(8) && o.completion <= Duration::from_millis(12));
    }

    #[test]
    fn without_backoff_rounds_commit_about_one_write_each() {
        // n clients retrying at once: at most n + (n-1) + ... + 1 attempts
        // (a round can commit two writes when round trips differ enough).
        for seed in 0..20 {
            let o = run(20, Strategy::None, seed);
            assert!(o.calls <= 20 * 21 / 2 && o.calls >= 150, "{}", o.calls);
        }
    }

    #[test]
    fn seeded_runs_repeat() {
        assert_eq!(run(50, Strategy::Decorrelated, 3), run(50, Strategy::Decorrelated, 3));
    }
}
