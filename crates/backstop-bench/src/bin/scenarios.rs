//! Real-server scenarios: backstop, reqwest-retry and plain reqwest against a
//! local nginx (started by `scripts/nginx.sh`) that rate-limits and fails.
//!
//! ```text
//! cargo run --release -p backstop-bench --bin scenarios [-- --quick] [--runs N]
//!     [--only spike|burst|flaky] [--write FILE] [--pattern] [--keep-logs]
//! ```
//!
//! - `spike`: 200 GETs of `/limited` (50 r/s, burst 10, 429 + `Retry-After: 1`)
//!   started at once.
//! - `burst`: 2 000 GETs of `/limited` offered at 200 r/s over 10 s
//!   (`--quick`: 400 over 2 s).
//! - `flaky`: 1 000 GETs of `/flaky` (503 for ~20 %), at most 50 in flight
//!   (`--quick`: 200).
//!
//! Each scenario runs through every client, `--runs` times (default 3,
//! `--quick` 1), each run with a fresh client (and a fresh pacer, budget and
//! breaker). Measured per run: requests that ended in 200; amplification, the
//! HTTP requests nginx logged for the run over the logical requests; drain
//! time, from the first send to the last completion; goodput, successes per
//! second of drain time; p50/p99 latency of a logical request, from its
//! offer (spike, burst) or from when it got one of the 50 slots (flaky) to
//! its final answer. The table gives mean ± standard deviation over runs.
//!
//! This is a measurement, not a test: nothing is asserted.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backstop::breaker::BreakerConfig;
use backstop::{CircuitBreaker, Pacer, RetryBudget, SystemClock, presets};
use backstop_bench::botocore::AdaptiveLimiter;
use backstop_http::RetryMiddleware;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use tokio::sync::Semaphore;

use backstop_bench::nginx::{Error, Nginx};

#[derive(Clone, Copy, Debug)]
enum Client {
    Plain,
    ReqwestRetry,
    Backstop,
    BackstopGuards,
    BackstopPacer,
    /// backstop's retries, paced by botocore's adaptive rule instead.
    BotocorePacer,
}

const CLIENTS: [Client; 6] = [
    Client::Plain,
    Client::ReqwestRetry,
    Client::Backstop,
    Client::BackstopGuards,
    Client::BackstopPacer,
    Client::BotocorePacer,
];

impl Client {
    fn label(self) -> &'static str {
        match self {
            Client::Plain => "reqwest (no retry)",
            Client::ReqwestRetry => "reqwest-retry 0.9, 2 retries",
            Client::Backstop => "backstop `api_call`",
            Client::BackstopGuards => "backstop + budget + breaker",
            Client::BackstopPacer => "backstop + pacer",
            Client::BotocorePacer => "`api_call` + botocore's adaptive rule",
        }
    }

    /// A fresh client, with fresh guards.
    fn build(self) -> Result<ClientWithMiddleware, Error> {
        let base = reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(512).build()?;
        let b = ClientBuilder::new(base);
        Ok(match self {
            Client::Plain => b.build(),
            Client::ReqwestRetry => b
                .with(RetryTransientMiddleware::new_with_policy(
                    ExponentialBackoff::builder().build_with_max_retries(2),
                ))
                .build(),
            Client::Backstop => b.with(RetryMiddleware::new(presets::API_CALL)).build(),
            Client::BackstopGuards => b
                .with(
                    RetryMiddleware::new(presets::API_CALL)
                        .budget(&RetryBudget::token_bucket("retry_budget").build()?)
                        .breaker(&CircuitBreaker::new("nginx", BreakerConfig::default())),
                )
                .build(),
            Client::BackstopPacer => {
                b.with(RetryMiddleware::new(presets::API_CALL).pacer(&Pacer::builder("api").build()?)).build()
            }
            Client::BotocorePacer => {
                let epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs_f64();
                b.with(RetryMiddleware::new(presets::API_CALL))
                    .with(Botocore(AdaptiveLimiter::new(SystemClock, epoch)))
                    .build()
            }
        })
    }
}

/// Every attempt through botocore's adaptive limiter (see
/// [`backstop_bench::botocore`]): a token before it goes, its answer
/// clocked after (a 429 is a refusal).
struct Botocore(AdaptiveLimiter);

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Botocore {
    async fn handle(
        &self,
        req: reqwest::Request,
        ext: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        loop {
            let wait = self.0.acquire();
            if wait.is_zero() {
                break;
            }
            // botocore waits on a condition that a rate change also wakes.
            tokio::time::sleep(wait.min(Duration::from_millis(20))).await;
        }
        let answer = next.run(req, ext).await;
        let throttled = matches!(&answer, Ok(r) if r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS);
        self.0.on_response(throttled);
        answer
    }
}

#[derive(Clone, Copy)]
enum Load {
    /// `n` requests offered at once, at most `limit` in flight.
    AtOnce { n: usize, limit: Option<usize> },
    /// `n` requests offered at `per_sec`.
    Rate { n: usize, per_sec: f64 },
}

impl Load {
    fn n(self) -> usize {
        match self {
            Load::AtOnce { n, .. } | Load::Rate { n, .. } => n,
        }
    }

    fn describe(self) -> String {
        match self {
            Load::AtOnce { n, limit: None } => format!("{n} at once"),
            Load::AtOnce { n, limit: Some(l) } => format!("{n} at once, {l} in flight"),
            Load::Rate { n, per_sec } => format!("{n} at {per_sec} r/s"),
        }
    }
}

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    path: &'static str,
    load: Load,
}

fn scenarios(quick: bool) -> [Scenario; 3] {
    [
        Scenario { name: "spike", path: "/limited", load: Load::AtOnce { n: 200, limit: None } },
        Scenario {
            name: "burst",
            path: "/limited",
            load: Load::Rate { n: if quick { 400 } else { 2_000 }, per_sec: 200.0 },
        },
        Scenario {
            name: "flaky",
            path: "/flaky",
            load: Load::AtOnce { n: if quick { 200 } else { 1_000 }, limit: Some(50) },
        },
    ]
}

/// One run's numbers.
struct RunStats {
    succeeded: f64,
    amplification: f64,
    drain_s: f64,
    goodput: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// What nginx saw, for `--pattern`.
    pattern: String,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

/// Per second of the run, the statuses nginx answered; and how many
/// logical requests took 1, 2, 3… HTTP requests.
fn pattern(lines: &[(f64, usize, u16)], n: usize) -> String {
    let Some(t0) = lines.iter().map(|l| l.0).reduce(f64::min) else { return "no requests logged".into() };
    let mut secs: Vec<std::collections::BTreeMap<u16, usize>> = Vec::new();
    let mut per_request = vec![0usize; n];
    for &(at, i, status) in lines {
        let s = (at - t0).max(0.0) as usize;
        if secs.len() <= s {
            secs.resize_with(s + 1, Default::default);
        }
        *secs[s].entry(status).or_default() += 1;
        if let Some(c) = per_request.get_mut(i) {
            *c += 1;
        }
    }
    let mut out = String::new();
    for (s, counts) in secs.iter().enumerate() {
        let c: Vec<String> = counts.iter().map(|(st, k)| format!("{st}×{k}")).collect();
        let _ = write!(out, "{}t{s}s[{}]", if s == 0 { "" } else { " " }, c.join(" "));
    }
    let mut hist = std::collections::BTreeMap::<usize, usize>::new();
    for c in per_request {
        *hist.entry(c).or_default() += 1;
    }
    let h: Vec<String> = hist.iter().map(|(a, k)| format!("{a}:{k}")).collect();
    let _ = write!(out, "\n      attempts per request {{{}}}", h.join(" "));
    out
}

async fn run_once(nginx: &Nginx, scenario: Scenario, client: Client, tag: &str) -> Result<RunStats, Error> {
    let http = client.build()?;
    let offset = nginx.log_len()?;
    let url = format!("http://127.0.0.1:{}{}?run={tag}&i=", nginx.port, scenario.path);
    let n = scenario.load.n();
    let limit = match scenario.load {
        Load::AtOnce { limit: Some(l), .. } => Some(Arc::new(Semaphore::new(l))),
        _ => None,
    };
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        if let Load::Rate { per_sec, .. } = scenario.load {
            tokio::time::sleep_until((start + Duration::from_secs_f64(i as f64 / per_sec)).into()).await;
        }
        let (http, url, limit) = (http.clone(), format!("{url}{i}"), limit.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = match limit {
                Some(s) => Some(s.acquire_owned().await.expect("semaphore closed")),
                None => None,
            };
            let t0 = Instant::now();
            let ok = match http.get(&url).send().await {
                Ok(resp) => {
                    let ok = resp.status() == reqwest::StatusCode::OK;
                    ok && resp.bytes().await.is_ok()
                }
                Err(_) => false,
            };
            (ok, t0.elapsed(), Instant::now())
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    let (mut succeeded, mut last) = (0usize, start);
    for task in tasks {
        let (ok, latency, end) = task.await?;
        succeeded += usize::from(ok);
        latencies.push(latency);
        last = last.max(end);
    }
    let drain_s = (last - start).as_secs_f64();
    // nginx logs a request after answering it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = nginx.lines(offset, tag)?;
    latencies.sort_unstable();
    Ok(RunStats {
        succeeded: succeeded as f64,
        amplification: lines.len() as f64 / n as f64,
        drain_s,
        goodput: succeeded as f64 / drain_s,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        pattern: pattern(&lines, n),
    })
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 { xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

fn cell(xs: &[f64], decimals: usize) -> String {
    let (m, sd) = mean_sd(xs);
    format!("{m:.decimals$} ± {sd:.decimals$}")
}

struct Args {
    quick: bool,
    runs: usize,
    only: Option<String>,
    write: Option<PathBuf>,
    pattern: bool,
    keep: bool,
}

fn args() -> Result<Args, Error> {
    let mut a = Args { quick: false, runs: 0, only: None, write: None, pattern: false, keep: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--runs" => a.runs = it.next().ok_or("--runs needs a number")?.parse()?,
            "--only" => a.only = Some(it.next().ok_or("--only needs a scenario")?),
            "--write" => a.write = Some(it.next().ok_or("--write needs a file")?.into()),
            "--pattern" => a.pattern = true,
            "--keep-logs" => a.keep = true,
            "-h" | "--help" => {
                println!(
                    "scenarios [--quick] [--runs N] [--only spike|burst|flaky] [--write FILE] [--pattern] [--keep-logs]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if a.runs == 0 {
        a.runs = if a.quick { 1 } else { 3 };
    }
    Ok(a)
}

fn main() -> Result<(), Error> {
    let args = args()?;
    let nginx = Nginx::start(args.keep)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut md = String::new();
    let _ = writeln!(md, "## Real-server scenarios\n");
    let _ = writeln!(
        md,
        "`cargo run --release -p backstop-bench --bin scenarios{}`: nginx (`scripts/nginx.sh`) on loopback, \
         `/limited` at 50 r/s (burst 10, 429 with `Retry-After: 1`), `/flaky` answering 503 to ~20 %. \
         Mean ± standard deviation over {} run(s); amplification is HTTP requests nginx logged per logical \
         request; drain is first send to last completion; goodput is successes per second of drain.\n",
        if args.quick { " -- --quick" } else { "" },
        args.runs,
    );
    let _ = writeln!(md, "| scenario | client | succeeded | amplification | drain s | goodput r/s | p50 ms | p99 ms |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for scenario in scenarios(args.quick) {
        if args.only.as_deref().is_some_and(|o| o != scenario.name) {
            continue;
        }
        for (ci, client) in CLIENTS.into_iter().enumerate() {
            let mut runs = Vec::new();
            for r in 0..args.runs {
                let tag = format!("{}-{ci}-{r}", scenario.name);
                // Let the limiter's bucket empty between runs.
                std::thread::sleep(Duration::from_millis(1500));
                let stats = rt.block_on(run_once(&nginx, scenario, client, &tag))?;
                eprintln!(
                    "{:<6} {:<30} run {r}: {:.0} ok, ×{:.2}, {:.2} s, {:.1} r/s, p50 {:.0} ms, p99 {:.0} ms",
                    scenario.name,
                    client.label(),
                    stats.succeeded,
                    stats.amplification,
                    stats.drain_s,
                    stats.goodput,
                    stats.p50_ms,
                    stats.p99_ms
                );
                if args.pattern {
                    eprintln!("      {}", stats.pattern);
                }
                runs.push(stats);
            }
            let col = |f: fn(&RunStats) -> f64| runs.iter().map(f).collect::<Vec<_>>();
            let _ = writeln!(
                md,
                "| {} ({}) | {} | {} of {} | {} | {} | {} | {} | {} |",
                scenario.name,
                scenario.load.describe(),
                client.label(),
                cell(&col(|s| s.succeeded), 1),
                scenario.load.n(),
                cell(&col(|s| s.amplification), 2),
                cell(&col(|s| s.drain_s), 2),
                cell(&col(|s| s.goodput), 1),
                cell(&col(|s| s.p50_ms), 0),
                cell(&col(|s| s.p99_ms), 0),
            );
        }
    }
    println!("{md}");
    if let Some(path) = &args.write {
        let mut f = fs::OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(f, "\n{md}")?;
    }
    drop(nginx);
    Ok(())
}
