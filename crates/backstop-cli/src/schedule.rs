//! `backstop schedule`: the delay before each retry of a policy, with the
//! spread its jitter gives, drawn from the library's own delay stream.

use std::time::Duration;

use backstop::RetryPolicy;
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::policy_args::PolicyArgs;
use backstop::duration::Seconds;

/// `backstop schedule [policy options] [--format table|json]`
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// How to print it.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Runs sampled to estimate the spread.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub samples: u32,
}

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// JSON for programs.
    Json,
}

/// The delays before one retry.
#[derive(Debug, Serialize, PartialEq)]
pub struct Row {
    /// The retry (1 is the second attempt).
    pub retry: u32,
    pub min_ms: f64,
    pub median_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The sum of the maximum delays up to and including this retry.
    pub worst_total_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The schedule: per retry, the spread of delays over `samples` seeded runs
/// of the policy's own delay stream (so decorrelated jitter, which depends on
/// the last delay, is measured as it really runs).
pub fn rows(policy: &RetryPolicy, samples: u32) -> Vec<Row> {
    let retries = policy.max_attempts().saturating_sub(1) as usize;
    let samples = samples.max(1) as usize;
    let mut by_retry: Vec<Vec<Duration>> = vec![Vec::with_capacity(samples); retries];
    for s in 0..samples {
        let seed = policy.seed().unwrap_or(0).wrapping_add(s as u64);
        for (i, d) in policy.backoff().delays(Some(seed)).take(retries).enumerate() {
            by_retry[i].push(d);
        }
    }
    let mut worst = Duration::ZERO;
    by_retry
        .into_iter()
        .enumerate()
        .map(|(i, mut ds)| {
            ds.sort_unstable();
            let at = |q: f64| ds[((ds.len() - 1) as f64 * q).round() as usize];
            let max = *ds.last().unwrap_or(&Duration::ZERO);
            worst = worst.saturating_add(max);
            Row {
                retry: i as u32 + 1,
                min_ms: ms(ds[0]),
                median_ms: ms(at(0.5)),
                p99_ms: ms(at(0.99)),
                max_ms: ms(max),
                worst_total_ms: ms(worst),
            }
        })
        .collect()
}

/// Prints the schedule.
pub fn schedule(args: ScheduleArgs) -> Result<i32, String> {
    let policy = args.policy.build()?;
    let rows = rows(&policy, args.samples);
    let deadline = policy.max_elapsed();
    match args.format {
        Format::Json => {
            let backoff = policy.backoff();
            let out = serde_json::json!({
                "policy": policy.to_string(),
                "max_attempts": policy.max_attempts(),
                "base_ms": ms(backoff.base()),
                "factor": backoff.get_factor(),
                "max_delay_ms": ms(backoff.get_max_delay()),
                "jitter": policy.backoff().get_jitter().to_string(),
                "deadline_ms": deadline.map(ms),
                "retries": rows,
            });
            println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
        }
        Format::Table => {
            let d = |v: f64| Seconds(Duration::from_secs_f64(v / 1000.0));
            println!("policy: {policy}");
            println!("delays in seconds, over {} sampled runs:", args.samples.max(1));
            println!(
                "{:>5}  {:>9}  {:>9}  {:>9}  {:>9}  {:>11}",
                "retry", "min", "median", "p99", "max", "worst total"
            );
            for r in &rows {
                println!(
                    "{:>5}  {:>9}  {:>9}  {:>9}  {:>9}  {:>11}",
                    r.retry,
                    d(r.min_ms),
                    d(r.median_ms),
                    d(r.p99_ms),
                    d(r.max_ms),
                    d(r.worst_total_ms)
                );
            }
            let over = deadline.and_then(|t| rows.iter().find(|r| r.worst_total_ms > ms(t)).map(|r| (t, r)));
            if let Some((deadline, first_over)) = over {
                println!(
                    "warning: in the worst case the sleeps alone pass the deadline of {} seconds at retry {}: later retries may not happen",
                    Seconds(deadline),
                    first_over.retry
                );
            }
        }
    }
    Ok(0)
}
