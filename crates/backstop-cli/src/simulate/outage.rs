//! An outage: clients call a server at a steady rate; the server fails every
//! call for a while, then recovers. Each call is a retry run (5 attempts,
//! 100 ms doubling to 2 s, full jitter), plain or guarded by the library's
//! real `RetryBudget` and `CircuitBreaker`, all on one virtual clock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use backstop::breaker::BreakerConfig;
use backstop::budget::Withdrawal;
use backstop::{Backoff, CircuitBreaker, Jitter, ManualClock, RetryBudget, Verdict, backoff::Delays, breaker::Permit};

/// Which guards the clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Retries only.
    Plain,
    /// Retries drawn from a shared token bucket (AWS standard).
    Budget,
    /// Retries through a shared circuit breaker (5 failures, 5 s open).
    Breaker,
    /// Both.
    Both,
}

impl Guard {
    pub const ALL: [Guard; 4] = [Guard::Plain, Guard::Budget, Guard::Breaker, Guard::Both];

    pub fn name(self) -> &'static str {
        match self {
            Guard::Plain => "retries",
            Guard::Budget => "retries+budget",
            Guard::Breaker => "retries+breaker",
            Guard::Both => "retries+budget+breaker",
        }
    }
}

/// One run's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Calls started while the server was down.
    pub calls_in_outage: u64,
    /// Attempts that reached the server while it was down.
    pub attempts_in_outage: u64,
    /// Attempts refused locally (breaker open, budget spent) in the outage.
    pub refused_locally: u64,
    /// From the server's recovery to the first second in which 95 % of calls succeeded.
    pub time_to_recover: Duration,
}

impl Outcome {
    /// Attempts on the server per call, during the outage.
    pub fn amplification(&self) -> f64 {
        self.attempts_in_outage as f64 / self.calls_in_outage.max(1) as f64
    }
}

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const OUTAGE: (u64, u64) = (10 * SEC, 30 * SEC);
const END: u64 = 60 * SEC;
const LATENCY: u64 = 10 * MS;
const ATTEMPTS: u32 = 5;

enum Event {
    /// A client starts a new call.
    Call { client: usize },
    /// The next attempt of a call starts.
    Attempt { call: usize },
    /// An attempt's answer arrives.
    Answer { call: usize, ok: bool, permit: Option<usize> },
}

struct Call {
    started: u64,
    attempts: u32,
    delays: Delays,
    /// Tokens withdrawn for the retry being made, refunded on its success.
    spent: Option<Withdrawal>,
}

/// Counts a finished call in the second (after the outage) it started in.
fn finish(seconds: &mut [(u32, u32)], started: u64, ok: bool) {
    if started >= OUTAGE.1 {
        let s = &mut seconds[((started - OUTAGE.1) / SEC) as usize];
        s.0 += 1;
        s.1 += u32::from(ok);
    }
}

/// Runs the scenario once with `clients` clients, each calling once a second.
pub fn run(clients: usize, guard: Guard, seed: u64) -> Outcome {
    let clock = ManualClock::new();
    let budget = RetryBudget::default();
    let breaker = CircuitBreaker::builder("server")
        .config(
            BreakerConfig::builder()
                .consecutive_failures(5)
                .open_for(Backoff::constant(Duration::from_secs(5)))
                .build()
                .expect("valid"),
        )
        .clock(&clock)
        .build();
    let use_budget = matches!(guard, Guard::Budget | Guard::Both);
    let use_breaker = matches!(guard, Guard::Breaker | Guard::Both);
    let backoff =
        Backoff::exponential(Duration::from_millis(100)).max_delay(Duration::from_secs(2)).jitter(Jitter::Full);
    let mut rng = fastrand::Rng::with_seed(seed);

    let mut queue: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut events: Vec<Option<Event>> = Vec::new();
    let push = |queue: &mut BinaryHeap<Reverse<(u64, u64)>>, events: &mut Vec<Option<Event>>, at: u64, e: Event| {
        events.push(Some(e));
        queue.push(Reverse((at, events.len() as u64 - 1)));
    };
    for client in 0..clients {
        let at = rng.u64(0..SEC);
        push(&mut queue, &mut events, at, Event::Call { client });
    }

    let mut calls: Vec<Call> = Vec::new();
    let mut permits: Vec<Option<Permit<'_>>> = Vec::new();
    let mut out =
        Outcome { calls_in_outage: 0, attempts_in_outage: 0, refused_locally: 0, time_to_recover: Duration::ZERO };
    // Per second after the outage: (calls finished, calls that succeeded).
    let mut seconds = vec![(0u32, 0u32); ((END - OUTAGE.1) / SEC) as usize + 1];
    let down = |t: u64| (OUTAGE.0..OUTAGE.1).contains(&t);
    let mut now = 0u64;

    while let Some(Reverse((at, id))) = queue.pop() {
        clock.advance(Duration::from_nanos(at - now));
        now = at;
        let Some(event) = events[id as usize].take() else { continue };
        match event {
            Event::Call { client } => {
                if at + SEC < END {
                    push(&mut queue, &mut events, at + SEC, Event::Call { client });
                }
                if down(at) {
                    out.calls_in_outage += 1;
                }
                if use_budget {
                    budget.record_request();
                }
                let seed = seed.wrapping_mul(1_000_003).wrapping_add(calls.len() as u64);
                calls.push(Call { started: at, attempts: 0, delays: backoff.delays(Some(seed)), spent: None });
                push(&mut queue, &mut events, at, Event::Attempt { call: calls.len() - 1 });
            }
            Event::Attempt { call } => {
                let c = &mut calls[call];
                c.attempts += 1;
                let permit = if use_breaker {
                    match breaker.try_acquire() {
                        Ok(p) => Some(p),
                        Err(_) => {
                            if down(c.started) {
                                out.refused_locally += 1;
                            }
                            finish(&mut seconds, c.started, false);
                            continue;
                        }
                    }
                } else {
                    None
                };
                if down(at) {
                    out.attempts_in_outage += 1;
                }
                permits.push(permit);
                let ok = !down(at + LATENCY);
                push(
                    &mut queue,
                    &mut events,
                    at + LATENCY,
                    Event::Answer { call, ok, permit: Some(permits.len() - 1) },
                );
            }
            Event::Answer { call, ok, permit } => {
                if let Some(p) = permit.and_then(|i| permits[i].take()) {
                    if ok { p.success() } else { p.record(Verdict::Retry) }
                }
                let c = &mut calls[call];
                if ok {
                    if use_budget {
                        budget.record_success(c.spent.take());
                    }
                    finish(&mut seconds, c.started, true);
                    continue;
                }
                let retry = c.attempts < ATTEMPTS
                    && (!use_budget || {
                        c.spent = budget.try_withdraw(Verdict::Retry);
                        c.spent.is_some()
                    });
                if !retry {
                    if down(c.started) && c.attempts < ATTEMPTS {
                        out.refused_locally += 1;
                    }
                    finish(&mut seconds, c.started, false);
                    continue;
                }
                let wait = c.delays.next().unwrap_or_default();
                let next = at + u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
                push(&mut queue, &mut events, next, Event::Attempt { call });
            }
        }
    }
    let recovered_second = seconds.iter().position(|&(n, ok)| n > 0 && f64::from(ok) >= 0.95 * f64::from(n));
    out.time_to_recover = Duration::from_secs(recovered_second.map_or((END - OUTAGE.1) / SEC, |s| s as u64));
    out
}
