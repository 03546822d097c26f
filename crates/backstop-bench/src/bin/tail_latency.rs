//! Tail latency: hedged GETs against a real server on loopback, backstop's
//! hedge against tower's `hedge` and tower-resilience's in one process.
//!
//! ```text
//! cargo run --release -p backstop-bench --bin tail_latency [-- --quick] [--requests N]
//! ```
//!
//! The server (backstop-testkit's fault server, in process, on a free
//! loopback port) answers most GETs in 5 ms and stalls 1.5 % of them for 1 s
//! (which ones: a fixed hash of the request's number, so every client meets
//! the same stalls). 10 000 GETs (`--quick`: 2 000) go at most 50 at a time,
//! through reqwest, for each client:
//!
//! - no hedging;
//! - backstop, a fixed 10 ms delay; backstop, the adaptive delay (p95, the
//!   default, and p98);
//! - tower 0.5's `hedge` (p95 over a rotating 1 s histogram, 20 samples);
//! - tower-resilience-hedge 0.9, a fixed 10 ms delay.
//!
//! Then the overload variant: every response takes 100 ms (a server slow
//! because it is busy), where a hedge only adds load. With `--s3` (build
//! with `--features s3`) the same stalls come from backstop-testkit's
//! in-process S3 server (s3s + s3s-fs behind the fault proxy), read with the
//! real aws-sdk-s3 client through `backstop_aws::download`: no hedging, a
//! fixed 10 ms delay, the adaptive one. Measured per client:
//! p50, p95, p99 and p99.9 latency of a GET (from its start to its body),
//! and the extra requests the server saw (over the GETs). This is a
//! measurement, not a test: nothing is asserted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use backstop::hedge::{Hedge, HedgeDelay};
use backstop_testkit::{Backend, FaultServer};
use bytes::Bytes;
use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

const FAST: Duration = Duration::from_millis(5);
const STALL: Duration = Duration::from_secs(1);
const SLOW: Duration = Duration::from_millis(100);
/// Stalls per thousand requests.
const STALLS_PER_MILLE: u64 = 15;
const CONCURRENCY: usize = 50;

/// The server's behaviour, switched between runs.
struct Behaviour {
    overloaded: AtomicBool,
    served: AtomicU64,
}

/// splitmix64: a fixed, well-spread hash of the request's number.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn server(behaviour: Arc<Behaviour>) -> FaultServer {
    let backend: Backend = Arc::new(move |_request| {
        let behaviour = Arc::clone(&behaviour);
        Box::pin(async move {
            let n = behaviour.served.fetch_add(1, Ordering::Relaxed);
            let took = if behaviour.overloaded.load(Ordering::Relaxed) {
                SLOW
            } else if mix(n) % 1000 < STALLS_PER_MILLE {
                STALL
            } else {
                FAST
            };
            tokio::time::sleep(took).await;
            http::Response::new(Bytes::from_static(b"ok"))
        })
    });
    FaultServer::with_backend(backend)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    Plain,
    BackstopFixed,
    BackstopAdaptive,
    BackstopAdaptiveP98,
    Tower,
    TowerResilience,
}

const CLIENTS: [Client; 6] = [
    Client::Plain,
    Client::BackstopFixed,
    Client::BackstopAdaptive,
    Client::BackstopAdaptiveP98,
    Client::Tower,
    Client::TowerResilience,
];

impl Client {
    fn label(self) -> &'static str {
        match self {
            Client::Plain => "no hedging",
            Client::BackstopFixed => "backstop, fixed 10 ms",
            Client::BackstopAdaptive => "backstop, adaptive (p95)",
            Client::BackstopAdaptiveP98 => "backstop, adaptive (p98)",
            Client::Tower => "tower 0.5 hedge (p95)",
            Client::TowerResilience => "tower-resilience 0.9, fixed 10 ms",
        }
    }
}

/// One GET's body, through reqwest.
fn get(client: &reqwest::Client, url: &str) -> BoxFuture<Result<Bytes, BoxError>> {
    let request = client.get(url);
    Box::pin(async move { Ok(request.send().await?.error_for_status()?.bytes().await?) })
}

/// A tower service making the GET for a URL.
#[derive(Clone)]
struct Get(reqwest::Client);

impl Service<String> for Get {
    type Response = Bytes;
    type Error = BoxError;
    type Future = BoxFuture<Result<Bytes, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, url: String) -> Self::Future {
        get(&self.0, &url)
    }
}

/// A GET's error as tower-resilience's hedge needs it: one it can clone.
#[derive(Debug, Clone)]
struct GetError(Arc<str>);

impl std::fmt::Display for GetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GetError {}

/// The GET service for tower-resilience.
#[derive(Clone)]
struct GetCloneError(reqwest::Client);

impl Service<String> for GetCloneError {
    type Response = Bytes;
    type Error = GetError;
    type Future = BoxFuture<Result<Bytes, GetError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), GetError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, url: String) -> Self::Future {
        let got = get(&self.0, &url);
        Box::pin(async move { got.await.map_err(|e| GetError(Arc::from(e.to_string()))) })
    }
}

/// tower's hedge policy: every GET may be sent again.
#[derive(Clone)]
struct Idempotent;

impl tower::hedge::Policy<String> for Idempotent {
    fn clone_request(&self, url: &String) -> Option<String> {
        Some(url.clone())
    }

    fn can_retry(&self, _: &String) -> bool {
        true
    }
}

/// Makes one client's GET: a function the load loop calls per request.
type Getter = Arc<dyn Fn(String) -> BoxFuture<Result<Bytes, BoxError>> + Send + Sync>;

fn getter(kind: Client) -> Getter {
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("a reqwest client");
    match kind {
        Client::Plain => Arc::new(move |url| get(&http, &url)),
        Client::BackstopFixed | Client::BackstopAdaptive | Client::BackstopAdaptiveP98 => {
            let delay = match kind {
                Client::BackstopFixed => HedgeDelay::fixed(Duration::from_millis(10)),
                Client::BackstopAdaptive => HedgeDelay::percentile(0.95),
                _ => HedgeDelay::percentile(0.98),
            };
            let hedge = Hedge::builder("tail").delay(delay).build().expect("a valid hedge");
            Arc::new(move |url: String| {
                let (hedge, http) = (hedge.clone(), http.clone());
                Box::pin(async move { hedge.run(|| get(&http, &url)).await })
            })
        }
        Client::Tower => {
            let hedged = tower::hedge::Hedge::new(Get(http), Idempotent, 20, 0.95, Duration::from_secs(1));
            let service = tower::buffer::Buffer::new(hedged, 1024);
            Arc::new(move |url| {
                let service = service.clone();
                Box::pin(async move { service.oneshot(url).await })
            })
        }
        Client::TowerResilience => {
            use tower::Layer;
            let layer = tower_resilience_hedge::HedgeLayer::builder()
                .delay(Duration::from_millis(10))
                .max_hedged_attempts(2)
                .build();
            let service = tower::buffer::Buffer::new(layer.layer(GetCloneError(http)), 1024);
            Arc::new(move |url| Box::pin(service.clone().oneshot(url)))
        }
    }
}

struct Outcome {
    latencies: Vec<Duration>,
    failed: usize,
    extra: u64,
}

async fn run(kind: Client, server: &FaultServer, behaviour: &Behaviour, requests: usize) -> Outcome {
    let get = getter(kind);
    let url = server.url("/object");
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let served_before = behaviour.served.load(Ordering::Relaxed);
    let mut tasks = Vec::with_capacity(requests);
    for _ in 0..requests {
        let permit = Arc::clone(&limit).acquire_owned().await.expect("the semaphore is never closed");
        let (get, url) = (Arc::clone(&get), url.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let ok = get(url).await.is_ok();
            drop(permit);
            (started.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut failed = 0;
    for task in tasks {
        let (took, ok) = task.await.expect("a GET task");
        latencies.push(took);
        failed += usize::from(!ok);
    }
    // Losers still running on the server finish (and are counted) first.
    tokio::time::sleep(STALL + Duration::from_millis(100)).await;
    let extra = (behaviour.served.load(Ordering::Relaxed) - served_before).saturating_sub(requests as u64);
    latencies.sort();
    Outcome { latencies, failed, extra }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Prints one table row.
fn row(label: &str, sorted: &[Duration], extra: u64, requests: usize, failed: usize) {
    println!(
        "| {label} | {} | {} | {} | {} | {extra} ({:.1} %) | {failed} |",
        ms(quantile(sorted, 0.5)),
        ms(quantile(sorted, 0.95)),
        ms(quantile(sorted, 0.99)),
        ms(quantile(sorted, 0.999)),
        extra as f64 * 100.0 / requests as f64,
    );
}

#[cfg(feature = "s3")]
mod s3 {
    //! The S3 variant: GETs of one object through aws-sdk-s3.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use backstop::hedge::{Hedge, HedgeDelay};
    use backstop_testkit::Reply;
    use backstop_testkit::s3::{ACCESS_KEY, LocalS3, SECRET_KEY};
    use tokio::sync::Semaphore;

    use super::{CONCURRENCY, FAST, STALL, STALLS_PER_MILLE, mix, row};

    const BUCKET: &str = "tail";

    pub(super) async fn run(requests: usize) {
        let server = LocalS3::start();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "bench"))
            .endpoint_url(server.endpoint())
            .force_path_style(true)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        client.create_bucket().bucket(BUCKET).send().await.expect("a bucket");
        backstop_aws::upload(&client, BUCKET, "object", vec![7u8; 1024]).await.expect("the object");
        // Every GET: 5 ms, or (1.5 %) 1 s, then the real answer.
        let served = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&served);
        server.faults.fail_matching(
            usize::MAX,
            move |r| {
                r.method == http::Method::GET && mix(counter.fetch_add(1, Ordering::Relaxed)) % 1000 < STALLS_PER_MILLE
            },
            Reply::delay(STALL),
        );
        server.faults.otherwise(Reply::delay(FAST));
        println!(
            "\nS3 (aws-sdk-s3, s3s in process): GETs of 1 KiB, 1.5 % stalled for 1 s; {requests} GETs, {CONCURRENCY} at a time\n"
        );
        println!("| client | p50 ms | p95 ms | p99 ms | p99.9 ms | extra requests | failed |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let hedges = [
            ("aws-sdk-s3 through backstop_aws::download, no hedging", None),
            ("backstop, fixed 10 ms", Some(HedgeDelay::fixed(Duration::from_millis(10)))),
            ("backstop, adaptive (p95)", Some(HedgeDelay::percentile(0.95))),
        ];
        for (label, delay) in hedges {
            let hedge = delay.map(|d| Hedge::builder("s3-tail").delay(d).build().expect("a valid hedge"));
            let before = get_count(&server);
            let limit = Arc::new(Semaphore::new(CONCURRENCY));
            let mut tasks = Vec::with_capacity(requests);
            for _ in 0..requests {
                let permit = Arc::clone(&limit).acquire_owned().await.expect("open");
                let (client, hedge) = (client.clone(), hedge.clone());
                tasks.push(tokio::spawn(async move {
                    let started = Instant::now();
                    let download = backstop_aws::download(&client, BUCKET, "object");
                    let got = match &hedge {
                        Some(hedge) => download.hedge(hedge).await,
                        None => download.await,
                    };
                    drop(permit);
                    (started.elapsed(), got.is_ok())
                }));
            }
            let (mut latencies, mut failed) = (Vec::with_capacity(requests), 0);
            for t in tasks {
                let (took, ok) = t.await.expect("a GET task");
                latencies.push(took);
                failed += usize::from(!ok);
            }
            tokio::time::sleep(STALL + Duration::from_millis(100)).await;
            latencies.sort();
            let extra = (get_count(&server) - before).saturating_sub(requests as u64);
            row(label, &latencies, extra, requests, failed);
        }
    }

    fn get_count(server: &LocalS3) -> u64 {
        server.faults.requests().iter().filter(|r| r.method == http::Method::GET).count() as u64
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let requests = args
        .iter()
        .position(|a| a == "--requests")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 2_000 } else { 10_000 });
    if args.iter().any(|a| a == "--s3") {
        #[cfg(feature = "s3")]
        s3::run(requests).await;
        #[cfg(not(feature = "s3"))]
        eprintln!(
            "--s3 needs the s3 feature: cargo run --release -p backstop-bench --features s3 --bin tail_latency -- --s3"
        );
        return;
    }
    let behaviour = Arc::new(Behaviour { overloaded: AtomicBool::new(false), served: AtomicU64::new(0) });
    let server = server(Arc::clone(&behaviour));
    for (title, overloaded) in
        [("stalls: 5 ms, 1.5 % stalled for 1 s", false), ("overload: every response 100 ms", true)]
    {
        behaviour.overloaded.store(overloaded, Ordering::Relaxed);
        println!("\n{title}; {requests} GETs, {CONCURRENCY} at a time\n");
        println!("| client | p50 ms | p95 ms | p99 ms | p99.9 ms | extra requests | failed |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for kind in CLIENTS {
            let o = run(kind, &server, &behaviour, requests).await;
            row(kind.label(), &o.latencies, o.extra, requests, o.failed);
        }
    }
}
