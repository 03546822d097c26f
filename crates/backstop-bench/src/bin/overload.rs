//! Concurrency limits under overload: a server on loopback that serves
//! `C` requests at a time (a fixed service time each, the rest queued),
//! offered twice its capacity, then its capacity halved mid-run; through no
//! limit, backstop's fixed and adaptive limits, and tower-resilience's
//! bulkhead and adaptive limiter, in one process.
//!
//! ```text
//! cargo run --release -p backstop-bench --bin overload [-- --quick]
//! ```
//!
//! The server: a plain HTTP/1.1 listener (keep-alive) whose requests wait
//! for one of `C` = 16 places (FIFO), hold it 25 ms, and answer 200: a
//! capacity of 640 requests a second, 25 ms unloaded. Requests are offered
//! at 1,280 a second (open loop, evenly spaced) for 12 s; at 6 s the server
//! keeps only 8 places (320 a second). Every request has a 2 s client
//! timeout. Reported per phase — *before* (2–6 s), *after, first 2 s*
//! (6–8 s, converging) and *after* (8–12 s): goodput (answers in the phase
//! a second, and as a share of the capacity), p50/p99 latency of the answers
//! (from the offer), refusals a second (turned away at once by the client's
//! limit) and timeouts a second.
//!
//! A measurement, not a test: nothing is asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backstop::limit::{ConcurrencyLimit, Gradient};
use backstop::{RetryError, RetryPolicy};
use backstop_http::RetryMiddleware;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::{ServiceBuilder, ServiceExt};

type Error = Box<dyn std::error::Error + Send + Sync>;

const PLACES: usize = 16;
const SERVICE: Duration = Duration::from_millis(25);
const TIMEOUT: Duration = Duration::from_secs(2);

/// The server: `PLACES` places, `SERVICE` each; `halve()` drops half.
struct Server {
    port: u16,
    places: Arc<Semaphore>,
    /// Places still to drop: a request finishing while some are owed keeps
    /// its place from coming back.
    owed: Arc<AtomicUsize>,
}

impl Server {
    async fn start() -> Result<Self, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let places = Arc::new(Semaphore::new(PLACES));
        let owed = Arc::new(AtomicUsize::new(0));
        let (p, o) = (Arc::clone(&places), Arc::clone(&owed));
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (places, owed) = (Arc::clone(&p), Arc::clone(&o));
                tokio::spawn(async move {
                    let mut buf = Vec::with_capacity(1024);
                    let mut chunk = [0u8; 1024];
                    loop {
                        // One request: its head, up to the blank line (GETs, no body).
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |i| i + 4);
                        buf.drain(..end);
                        let Ok(place) = places.acquire().await else { return };
                        tokio::time::sleep(SERVICE).await;
                        if owed.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok() {
                            place.forget();
                        } else {
                            drop(place);
                        }
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if conn.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Self { port, places, owed })
    }

    fn halve(&self) {
        let drop = PLACES / 2;
        let now = self.places.forget_permits(drop);
        self.owed.fetch_add(drop - now, Ordering::AcqRel);
    }
}

/// How one request ended.
#[derive(Clone, Copy)]
enum Outcome {
    Answered(Duration),
    Refused,
    TimedOut,
    Failed,
}

#[derive(Clone, Copy, Debug)]
enum Variant {
    None,
    Fixed,
    Adaptive,
    Bulkhead,
    TowerAdaptive,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::None => "no limit",
            Variant::Fixed => "backstop fixed limit (16, no queue)",
            Variant::Adaptive => "backstop adaptive limit (Gradient2, no queue)",
            Variant::Bulkhead => "tower-resilience bulkhead (16, reject when full)",
            Variant::TowerAdaptive => "tower-resilience adaptive limiter (Vegas)",
        }
    }
}

/// A request through one variant's client: a boxed call.
type Caller = Arc<dyn Fn(String) -> futures_lite::BoxedFuture<Outcome> + Send + Sync>;

mod futures_lite {
    pub type BoxedFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}

fn reqwest_client() -> Result<reqwest::Client, Error> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(4096).build()?)
}

fn caller(variant: Variant) -> Result<Caller, Error> {
    let http = reqwest_client()?;
    let once = RetryPolicy::builder().max_attempts(1).build()?;
    Ok(match variant {
        Variant::None => Arc::new(move |url| {
            let http = http.clone();
            Box::pin(async move {
                match tokio::time::timeout(TIMEOUT, http.get(url).send()).await {
                    Ok(Ok(r)) if r.status() == 200 => Outcome::Answered(Duration::ZERO),
                    Ok(_) => Outcome::Failed,
                    Err(_) => Outcome::TimedOut,
                }
            })
        }),
        Variant::Fixed | Variant::Adaptive => {
            let limit = match variant {
                Variant::Fixed => {
                    ConcurrencyLimit::builder("server").max_concurrent(PLACES as u32).max_queue(0).build()?
                }
                _ => ConcurrencyLimit::builder("server")
                    .max_concurrent(256)
                    .max_queue(0)
                    .adaptive(Gradient::default())
                    .build()?,
            };
            if std::env::var_os("OVERLOAD_TRACE").is_some() {
                let l = limit.clone();
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    loop {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        eprintln!(
                            "{} {:.2} s: limit {}",
                            l.max_concurrent(),
                            t0.elapsed().as_secs_f64(),
                            l.current_limit()
                        );
                    }
                });
            }
            let client =
                reqwest_middleware::ClientBuilder::new(http).with(RetryMiddleware::new(once).limit(&limit)).build();
            Arc::new(move |url| {
                let client = client.clone();
                Box::pin(async move {
                    match tokio::time::timeout(TIMEOUT, client.get(url).send()).await {
                        Ok(Ok(r)) if r.status() == 200 => Outcome::Answered(Duration::ZERO),
                        Ok(Err(e)) if matches!(backstop_http::retry_error(&e), Some(RetryError::Limited { .. })) => {
                            Outcome::Refused
                        }
                        Ok(_) => Outcome::Failed,
                        Err(_) => Outcome::TimedOut,
                    }
                })
            })
        }
        Variant::Bulkhead | Variant::TowerAdaptive => {
            let get = tower::service_fn(move |url: String| {
                let http = http.clone();
                async move { http.get(url).send().await.map(|r| r.status().as_u16()) }
            });
            let svc: tower::util::BoxCloneSyncService<String, u16, Error> = match variant {
                Variant::Bulkhead => {
                    let layer = tower_resilience_bulkhead::BulkheadLayer::builder()
                        .max_concurrent_calls(PLACES)
                        .reject_when_full()
                        .build();
                    tower::util::BoxCloneSyncService::new(ServiceBuilder::new().layer(layer).service(get).map_err(
                        |e| match e {
                            tower_resilience_bulkhead::BulkheadServiceError::Bulkhead(_) => Error::from("refused"),
                            other => Error::from(other.to_string()),
                        },
                    ))
                }
                _ => {
                    let vegas = tower_resilience_adaptive::Vegas::builder().max_limit(256).build();
                    let layer = tower_resilience_adaptive::AdaptiveLimiterLayer::new(vegas);
                    tower::util::BoxCloneSyncService::new(ServiceBuilder::new().layer(layer).service(get).map_err(
                        |e| match e {
                            tower_resilience_adaptive::AdaptiveError::LimitReached => Error::from("refused"),
                            other => Error::from(other.to_string()),
                        },
                    ))
                }
            };
            Arc::new(move |url| {
                let svc = svc.clone();
                Box::pin(async move {
                    match tokio::time::timeout(TIMEOUT, svc.oneshot(url)).await {
                        Ok(Ok(200)) => Outcome::Answered(Duration::ZERO),
                        Ok(Err(e)) if e.to_string() == "refused" => Outcome::Refused,
                        Ok(_) => Outcome::Failed,
                        Err(_) => Outcome::TimedOut,
                    }
                })
            })
        }
    })
}

/// One run: (offered at, outcome, ended at), seconds from the start.
async fn run(variant: Variant, quick: bool) -> Result<Vec<(f64, Outcome, f64)>, Error> {
    let server = Server::start().await?;
    let call = caller(variant)?;
    let url = format!("http://127.0.0.1:{}/", server.port);
    let (length, halve_at) = if quick { (4.0, 2.0) } else { (12.0, 6.0) };
    let per_sec = 2.0 * PLACES as f64 / SERVICE.as_secs_f64();
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut halved = false;
    let mut i = 0u64;
    loop {
        let at = i as f64 / per_sec;
        if at >= length {
            break;
        }
        if !halved && at >= halve_at {
            tokio::time::sleep_until((start + Duration::from_secs_f64(halve_at)).into()).await;
            server.halve();
            halved = true;
        }
        tokio::time::sleep_until((start + Duration::from_secs_f64(at)).into()).await;
        let (call, url) = (Arc::clone(&call), url.clone());
        tasks.push(tokio::spawn(async move {
            let offered = Instant::now();
            let outcome = match call(url).await {
                Outcome::Answered(_) => Outcome::Answered(offered.elapsed()),
                other => other,
            };
            (offered.duration_since(start).as_secs_f64(), outcome, start.elapsed().as_secs_f64())
        }));
        i += 1;
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await?);
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A phase's row: answers ending in [from, to), refusals and timeouts of
/// requests offered in it.
fn phase(results: &[(f64, Outcome, f64)], from: f64, to: f64, capacity: f64) -> String {
    let secs = to - from;
    let mut latencies: Vec<f64> = results
        .iter()
        .filter_map(|(_, o, end)| match o {
            Outcome::Answered(d) if (from..to).contains(end) => Some(d.as_secs_f64() * 1e3),
            _ => None,
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let offered_in = |want: fn(&Outcome) -> bool| {
        results.iter().filter(|(at, o, _)| (from..to).contains(at) && want(o)).count() as f64 / secs
    };
    let goodput = latencies.len() as f64 / secs;
    format!(
        "{goodput:.0} ({:.0} %) | {:.0} | {:.0} | {:.0} | {:.0}",
        100.0 * goodput / capacity,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        offered_in(|o| matches!(o, Outcome::Refused)),
        offered_in(|o| matches!(o, Outcome::TimedOut | Outcome::Failed)),
    )
}

fn main() -> Result<(), Error> {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let full = PLACES as f64 / SERVICE.as_secs_f64();
    let (halve_at, length) = if quick { (2.0, 4.0) } else { (6.0, 12.0) };
    println!(
        "A server of {PLACES} places × {} ms ({full:.0}/s, {} ms unloaded), offered {:.0}/s; half its places from {halve_at} s.\n",
        SERVICE.as_millis(),
        SERVICE.as_millis(),
        2.0 * full
    );
    println!("| client | phase | goodput /s (of capacity) | p50 ms | p99 ms | refused /s | timed out /s |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for variant in [Variant::None, Variant::Fixed, Variant::Adaptive, Variant::Bulkhead, Variant::TowerAdaptive] {
        let results = rt.block_on(run(variant, quick))?;
        let rows = [
            ("before", 2.0_f64.min(halve_at / 2.0), halve_at, full),
            ("after, first 2 s", halve_at, halve_at + 2.0, full / 2.0),
            ("after", halve_at + 2.0, length, full / 2.0),
        ];
        for (name, from, to, capacity) in rows {
            if to > from {
                println!("| {} | {name} | {} |", variant.label(), phase(&results, from, to, capacity));
            }
        }
    }
    Ok(())
}
