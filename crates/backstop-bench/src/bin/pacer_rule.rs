//! The pacer's measuring rule against the AWS SDKs', in virtual time: one
//! client wanting 50 calls a second for 60 s against a server that accepts
//! 25 in any sliding second (a sliding-log limiter), through
//! [`backstop::Pacer`] (with its 500 ms merge of refusals, and with every
//! refusal decreasing as the SDKs do) and through botocore's adaptive
//! limiter ([`backstop_bench::botocore`]).
//!
//! ```text
//! cargo run --release -p backstop-bench --bin pacer_rule [-- --trace]
//! ```
//!
//! Per client: refusals, calls accepted a second and the refused share over
//! the last 30 s, and the rate remembered at each refusal (the CUBIC's
//! `max`): its mean and range over the last 30 s. `--trace` prints, per
//! refusal, its time, the rate measured and the rate remembered.
//!
//! Deterministic: no real time, nothing random. A measurement, not a test.

use std::collections::VecDeque;
use std::time::Duration;

use backstop::{ManualClock, Pacer, Verdict};
use backstop_bench::botocore::AdaptiveLimiter;

const WANTED_PER_SEC: u64 = 50;
const ACCEPTED_PER_SEC: usize = 25;
const RUN: Duration = Duration::from_secs(60);
const SETTLED_FROM: Duration = Duration::from_secs(30);

/// One client's way of pacing and learning.
trait Limiter {
    /// How long to wait before asking again; zero: go now.
    fn wait(&mut self) -> Duration;
    /// Learns from an answer; for a refusal that lowered the rate, the rate
    /// it remembered (the CUBIC's `max`).
    fn answer(&mut self, refused: bool) -> Option<f64>;
}

struct Backstop {
    pacer: Pacer,
    slot: Option<backstop::pacer::Slot>,
    taken: bool,
}

impl Limiter for Backstop {
    fn wait(&mut self) -> Duration {
        if !self.taken {
            self.taken = true;
            self.slot = self.pacer.take_slot();
        }
        let wait = self.slot.map_or(Duration::ZERO, |s| self.pacer.wait(s));
        if wait.is_zero() {
            self.taken = false;
        }
        wait
    }

    fn answer(&mut self, refused: bool) -> Option<f64> {
        if !refused {
            self.pacer.record_success();
            return None;
        }
        let before = self.pacer.rate();
        self.pacer.record(Verdict::Throttled);
        let after = self.pacer.rate();
        // The new rate is β × max (no rate here is near the floor).
        (after != before).then(|| after.unwrap_or(0.0) / 0.7)
    }
}

struct Botocore(AdaptiveLimiter);

impl Limiter for Botocore {
    fn wait(&mut self) -> Duration {
        self.0.acquire()
    }

    fn answer(&mut self, refused: bool) -> Option<f64> {
        self.0.on_response(refused);
        refused.then(|| self.0.remembered())
    }
}

struct Outcome {
    refusals: usize,
    accepted_per_sec: f64,
    refused_share: f64,
    remembered: Vec<(Duration, f64)>,
}

fn replay(clock: &ManualClock, limiter: &mut dyn Limiter, trace: bool, label: &str) -> Outcome {
    let mut accepted_log = VecDeque::new();
    let (mut refusals, mut settled_ok, mut settled_refused) = (0, 0u64, 0u64);
    let mut remembered = Vec::new();
    let mut wanted_at = Duration::ZERO;
    let gap = Duration::from_secs(1) / WANTED_PER_SEC as u32;
    while clock.elapsed() < RUN {
        clock.advance(wanted_at.saturating_sub(clock.elapsed()));
        loop {
            let wait = limiter.wait();
            if wait.is_zero() {
                break;
            }
            clock.advance(wait);
        }
        let now = clock.elapsed();
        while accepted_log.front().is_some_and(|t| now - *t >= Duration::from_secs(1)) {
            accepted_log.pop_front();
        }
        let refused = accepted_log.len() >= ACCEPTED_PER_SEC;
        if !refused {
            accepted_log.push_back(now);
        }
        let learned = limiter.answer(refused);
        if now >= SETTLED_FROM {
            if refused { settled_refused += 1 } else { settled_ok += 1 }
        }
        refusals += usize::from(refused);
        if let Some(max) = learned {
            remembered.push((now, max));
            if trace {
                println!("{label}: refusal {refusals} at {:.3} s remembers {max:.2}/s", now.as_secs_f64());
            }
        }
        wanted_at += gap;
    }
    let settled_s = (RUN - SETTLED_FROM).as_secs_f64();
    Outcome {
        refusals,
        accepted_per_sec: settled_ok as f64 / settled_s,
        refused_share: settled_refused as f64 / (settled_ok + settled_refused).max(1) as f64,
        remembered,
    }
}

fn main() {
    let trace = std::env::args().any(|a| a == "--trace");
    println!(
        "One client wanting {WANTED_PER_SEC}/s for {} s, a server accepting {ACCEPTED_PER_SEC} in any sliding second; \
         the last {} s:\n",
        RUN.as_secs(),
        (RUN - SETTLED_FROM).as_secs()
    );
    println!("| client | refusals | accepted /s | refused share | remembered mean /s | remembered range /s |");
    println!("|---|---:|---:|---:|---:|---:|");
    let cases: [(&str, Option<Duration>); 3] = [
        ("backstop `Pacer` (refusals merged over 500 ms)", Some(Duration::from_millis(500))),
        ("backstop `Pacer`, `min_decrease_interval(ZERO)`", Some(Duration::ZERO)),
        ("botocore's adaptive rule", None),
    ];
    for (label, merge) in cases {
        let clock = ManualClock::new();
        let mut limiter: Box<dyn Limiter> = match merge {
            Some(d) => Box::new(Backstop {
                pacer: Pacer::builder("rule").min_decrease_interval(d).clock(&clock).build().expect("valid settings"),
                slot: None,
                taken: false,
            }),
            // Made at a whole second, as botocore's first bucket assumes.
            None => Box::new(Botocore(AdaptiveLimiter::new(clock.clone(), 1_000.0))),
        };
        let o = replay(&clock, limiter.as_mut(), trace, label);
        let settled: Vec<f64> = o.remembered.iter().filter(|(t, _)| *t >= SETTLED_FROM).map(|(_, r)| *r).collect();
        let mean = settled.iter().sum::<f64>() / settled.len().max(1) as f64;
        let lo = settled.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = settled.iter().copied().fold(0.0, f64::max);
        println!(
            "| {label} | {} | {:.1} | {:.1} % | {mean:.1} | {lo:.1}–{hi:.1} |",
            o.refusals,
            o.accepted_per_sec,
            o.refused_share * 100.0
        );
    }
}
