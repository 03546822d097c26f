//! `backstop simulate`: discrete-event simulations in virtual time that run
//! the library's own `Backoff`, `Jitter`, `RetryBudget` and `CircuitBreaker`.
//!
//! - `occ` (default): Brooker's contention study, calls and completion time
//!   per jitter strategy, swept across client counts for the chart.
//! - `outage`: load amplification and recovery with and without a budget and
//!   a breaker.
//! - `throttle`: a burst against a capacity-limited server, with and
//!   without `Retry-After`.
//! - `fleet`: many workers through an outage with local guards and with
//!   guards shared through Redis (real time, a real `redis-server`).

pub mod chart;
mod conclusion;
pub mod fleet;
pub mod occ;
pub mod outage;
pub mod throttle;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;

use occ::Strategy;

/// `backstop simulate [...]`
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Which study to run.
    #[arg(long, value_enum, default_value_t = Scenario::Occ)]
    pub scenario: Scenario,
    /// Clients (the largest count of the sweep, for occ).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub clients: usize,
    /// Runs per point, averaged.
    #[arg(long, default_value_t = 100, value_name = "R")]
    pub runs: u32,
    /// The seed of the first run; the same seed gives the same numbers.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// occ strategies to compare (comma-separated): none, exponential, full, equal, decorrelated.
    #[arg(long, value_delimiter = ',', value_name = "LIST", value_parser = strategy)]
    pub strategies: Vec<Strategy>,
    /// Write an SVG chart here (occ: calls and completion time across client counts).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// fleet: the Redis to share guards through (default: start a private
    /// `redis-server` on a free loopback port).
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
}

fn strategy(s: &str) -> Result<Strategy, String> {
    Strategy::parse(s)
        .ok_or_else(|| format!("unknown strategy {s:?}; allowed: none, exponential, full, equal, decorrelated"))
}

/// The studies.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scenario {
    /// Optimistic-concurrency writes to one row (Brooker, 2015).
    Occ,
    /// A server down for 20 s, then back.
    Outage,
    /// A burst against a server with a fixed capacity.
    Throttle,
    /// Many workers through an outage, local guards against guards shared through Redis.
    Fleet,
}

/// A mean and its spread over runs.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub stddev: f64,
}

impl Stat {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Stat { mean, min, max, stddev: var.sqrt() }
    }
}

/// One row of a report: a strategy (or guard) and its numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub clients: usize,
    pub metrics: Vec<(String, Stat)>,
}

fn progress(total: u64) -> indicatif::ProgressBar {
    if total < 200 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    indicatif::ProgressBar::new(total)
}

/// Runs `f` for `runs` seeds, ticking the bar.
fn over_runs<T>(runs: u32, seed: u64, bar: &indicatif::ProgressBar, mut f: impl FnMut(u64) -> T) -> Vec<T> {
    (0..u64::from(runs.max(1)))
        .map(|r| {
            bar.inc(1);
            f(seed.wrapping_add(r))
        })
        .collect()
}

/// The occ study: one row per strategy and client count of the sweep.
pub fn occ_rows(clients: usize, runs: u32, seed: u64, strategies: &[Strategy], sweep: &[usize]) -> Vec<Row> {
    let bar = progress((sweep.len() * strategies.len()) as u64 * u64::from(runs));
    let mut rows = Vec::new();
    for &n in sweep.iter().filter(|&&n| n <= clients) {
        for &s in strategies {
            let outcomes = over_runs(runs, seed, &bar, |seed| occ::run(n, s, seed));
            let calls: Vec<f64> = outcomes.iter().map(|o| o.calls as f64).collect();
            let ms: Vec<f64> = outcomes.iter().map(|o| o.completion.as_secs_f64() * 1000.0).collect();
            rows.push(Row {
                name: s.name().into(),
                clients: n,
                metrics: vec![("calls".into(), Stat::of(&calls)), ("completion_ms".into(), Stat::of(&ms))],
            });
        }
    }
    bar.finish_and_clear();
    rows
}

/// The client counts the occ chart sweeps, up to `clients`.
pub fn sweep(clients: usize) -> Vec<usize> {
    let mut counts: Vec<usize> =
        [10, 25, 50, 75, 100, 150, 200, 300, 500].into_iter().filter(|&n| n < clients).collect();
    counts.push(clients.max(1));
    counts
}

fn outage_rows(clients: usize, runs: u32, seed: u64) -> Vec<Row> {
    let bar = progress(outage::Guard::ALL.len() as u64 * u64::from(runs));
    let rows = outage::Guard::ALL
        .into_iter()
        .map(|g| {
            let outcomes = over_runs(runs, seed, &bar, |seed| outage::run(clients, g, seed));
            let pick = |f: &dyn Fn(&outage::Outcome) -> f64| Stat::of(&outcomes.iter().map(f).collect::<Vec<_>>());
            Row {
                name: g.name().into(),
                clients,
                metrics: vec![
                    ("amplification".into(), pick(&|o| o.amplification())),
                    ("attempts_in_outage".into(), pick(&|o| o.attempts_in_outage as f64)),
                    ("refused_locally".into(), pick(&|o| o.refused_locally as f64)),
                    ("time_to_recover_s".into(), pick(&|o| o.time_to_recover.as_secs_f64())),
                ],
            }
        })
        .collect();
    bar.finish_and_clear();
    rows
}

fn throttle_rows(clients: usize, runs: u32, seed: u64) -> Vec<Row> {
    let bar = progress(throttle::Hint::ALL.len() as u64 * u64::from(runs));
    let rows = throttle::Hint::ALL
        .into_iter()
        .map(|h| {
            let outcomes = over_runs(runs, seed, &bar, |seed| throttle::run(clients, h, seed));
            let pick = |f: &dyn Fn(&throttle::Outcome) -> f64| Stat::of(&outcomes.iter().map(f).collect::<Vec<_>>());
            Row {
                name: h.name().into(),
                clients,
                metrics: vec![
                    ("calls".into(), pick(&|o| o.calls as f64)),
                    ("succeeded".into(), pick(&|o| o.succeeded as f64)),
                    ("drain_s".into(), pick(&|o| o.drain.as_secs_f64())),
                    ("goodput_per_s".into(), pick(&|o| o.goodput())),
                ],
            }
        })
        .collect();
    bar.finish_and_clear();
    rows
}

fn fleet_rows(workers: usize, runs: u32, redis: Option<&str>) -> Result<Vec<Row>, String> {
    let local = match redis {
        Some(_) => None,
        None => Some(fleet::LocalRedis::start()?),
    };
    let url = redis.map_or_else(|| local.as_ref().map(|l| l.url.clone()).unwrap_or_default(), str::to_owned);
    let mut rows = Vec::new();
    for g in fleet::Guards::ALL {
        let outcomes = (0..runs.max(1)).map(|_| fleet::run(workers, g, &url)).collect::<Result<Vec<_>, _>>()?;
        let pick = |f: &dyn Fn(&fleet::Outcome) -> f64| Stat::of(&outcomes.iter().map(f).collect::<Vec<_>>());
        rows.push(Row {
            name: g.name().into(),
            clients: workers,
            metrics: vec![
                ("attempts_in_outage".into(), pick(&|o| o.attempts_in_outage as f64)),
                ("retries_in_outage".into(), pick(&|o| o.retries_in_outage as f64)),
                ("probes_per_open_period".into(), pick(&|o| o.probes_per_open_period)),
                ("time_to_open_ms".into(), pick(&|o| o.time_to_open.as_secs_f64() * 1000.0)),
                ("time_to_recover_ms".into(), pick(&|o| o.time_to_recover.as_secs_f64() * 1000.0)),
                ("redis_trips_per_1k_calls".into(), pick(&|o| o.round_trips_per_1000_calls)),
                ("redis_trips_per_worker_s".into(), pick(&|o| o.round_trips_per_worker_s)),
                ("redis_fallbacks".into(), pick(&|o| o.fallbacks as f64)),
            ],
        });
    }
    Ok(rows)
}

fn print_table(title: &str, rows: &[Row]) {
    println!("{title}");
    let Some(first) = rows.first() else { return };
    let mut header = format!("{:<24} {:>7}", "strategy", "clients");
    for (name, _) in &first.metrics {
        header.push_str(&format!(" {:>24}", name));
    }
    println!("{header}");
    for r in rows {
        let mut line = format!("{:<24} {:>7}", r.name, r.clients);
        for (_, s) in &r.metrics {
            line.push_str(&format!(" {:>24}", format!("{:.1} ± {:.1}", s.mean, s.stddev)));
        }
        println!("{line}");
    }
}

/// Runs the chosen study and prints it.
pub fn simulate(args: SimulateArgs) -> Result<i32, String> {
    if args.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let strategies = if args.strategies.is_empty() { Strategy::ALL.to_vec() } else { args.strategies.clone() };
    let (title, rows) = match args.scenario {
        Scenario::Occ => {
            let counts = if args.svg.is_some() { sweep(args.clients) } else { vec![args.clients] };
            let rows = occ_rows(args.clients, args.runs, args.seed, &strategies, &counts);
            if let Some(path) = &args.svg {
                chart::occ(path, &rows, &strategies).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            let title = format!(
                "occ: {} clients write one row; network 10 ± 2 ms; backoff base 5 ms, cap 2 s; mean ± stddev of {} runs",
                args.clients, args.runs
            );
            (title, rows.into_iter().filter(|r| r.clients == args.clients).collect::<Vec<_>>())
        }
        Scenario::Outage => (
            format!(
                "outage: {} clients, a call a second each; the server fails everything from 10 s to 30 s; 5 attempts, 100 ms doubling to 2 s, full jitter; {} runs",
                args.clients, args.runs
            ),
            outage_rows(args.clients, args.runs, args.seed),
        ),
        Scenario::Throttle => (
            format!(
                "throttle: {} clients at once against 20 requests/s; SlowDown above it; 10 attempts, 100 ms doubling to 5 s, full jitter; {} runs",
                args.clients, args.runs
            ),
            throttle_rows(args.clients, args.runs, args.seed),
        ),
        Scenario::Fleet => (
            format!(
                "fleet: {} workers, a call every 20 ms each; the downstream fails everything from 1 s to 4 s; breaker 5 failures / 1 s open, token bucket 500; real time, real redis-server; {} runs",
                args.clients, args.runs
            ),
            fleet_rows(args.clients, args.runs, args.redis.as_deref())?,
        ),
    };
    if args.json {
        let out = serde_json::json!({ "scenario": title, "seed": args.seed, "runs": args.runs, "rows": rows });
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
    } else {
        print_table(&title, &rows);
        let conclusion = match args.scenario {
            Scenario::Occ => conclusion::occ(&rows),
            Scenario::Outage => conclusion::outage(&rows),
            Scenario::Throttle => conclusion::throttle(&rows),
            Scenario::Fleet => conclusion::fleet(&rows),
        };
        if let Some(line) = conclusion {
            println!("{line}");
        }
        if let Some(path) = &args.svg {
            println!("chart: {}", path.display());
        }
    }
    Ok(0)
}
