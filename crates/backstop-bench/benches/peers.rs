//! backstop against the crates users would pick instead, in one run, each
//! group with a direct call as its baseline. Run with
//! `cargo bench -p backstop-bench`, then `cargo run -p backstop-bench --bin report`
//! to write BENCHMARKS.md. `cargo test -p backstop-bench --benches` runs
//! every case once (the CI smoke test).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backstop::keyed::Keyed;
use backstop::{Backoff, CircuitBreaker, Guards, Pacer, RetryBudget, RetryPolicy, breaker::BreakerConfig, presets};
use backstop_bench::{Allocations, CountingAllocator, record_allocations};
use criterion::{Criterion, criterion_group, criterion_main};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The operation under test: succeeds, and the optimiser cannot see through it.
#[inline(never)]
fn op() -> Result<u64, &'static str> {
    black_box(Ok(black_box(42)))
}

/// Consumes a result so the optimiser keeps the call.
fn sink<T>(value: T) {
    black_box(value);
}

async fn op_async() -> Result<u64, &'static str> {
    op()
}

/// `op` under the attribute form, with the builder's `DEFAULT` preset.
#[backstop::retry]
fn op_attribute() -> Result<u64, &'static str> {
    op()
}

/// `op_async` under the attribute form.
#[backstop::retry]
async fn op_async_attribute() -> Result<u64, &'static str> {
    op()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime")
}

fn zero_delay(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::constant(Duration::ZERO)).build().expect("valid")
}

/// Sync retry, success on the first attempt.
fn sync_success(c: &mut Criterion) {
    let policy = presets::DEFAULT;
    let mut g = c.benchmark_group("sync_success");
    g.bench_function("direct", |b| b.iter(op));
    g.bench_function("backstop", |b| b.iter(|| policy.retry(op).call()));
    g.bench_function("backstop_attribute", |b| b.iter(op_attribute));
    g.bench_function("backon", |b| {
        use backon::BlockingRetryable;
        b.iter(|| op.retry(backon::ExponentialBuilder::default()).call())
    });
    g.bench_function("retry", |b| b.iter(|| retry::retry(retry::delay::Exponential::from_millis(1000).take(4), op)));
    g.finish();
    let mut a = Allocations::new("sync_success");
    a.measure("direct", || sink(op()));
    a.measure("backstop", || sink(policy.retry(op).call()));
    a.measure("backstop_attribute", || sink(op_attribute()));
    a.measure("backon", || {
        use backon::BlockingRetryable;
        sink(op.retry(backon::ExponentialBuilder::default()).call())
    });
    a.measure("retry", || sink(retry::retry(retry::delay::Exponential::from_millis(1000).take(4), op)));
    record_allocations(a);
}

/// Async retry, success on the first attempt.
fn async_success(c: &mut Criterion) {
    let rt = runtime();
    let policy = presets::DEFAULT;
    let mut g = c.benchmark_group("async_success");
    g.bench_function("direct", |b| b.to_async(&rt).iter(op_async));
    g.bench_function("backstop", |b| b.to_async(&rt).iter(|| policy.retry(op_async).into_future()));
    g.bench_function("backstop_attribute", |b| b.to_async(&rt).iter(op_async_attribute));
    g.bench_function("backon", |b| {
        use backon::Retryable;
        b.to_async(&rt).iter(|| op_async.retry(backon::ExponentialBuilder::default()))
    });
    g.bench_function("tokio-retry2", |b| {
        use tokio_retry2::{MapErr, Retry, strategy::ExponentialBackoff};
        b.to_async(&rt).iter(|| {
            Retry::spawn(ExponentialBackoff::from_millis(10).take(4), || async { op_async().await.map_transient_err() })
        })
    });
    g.bench_function("tryhard", |b| b.to_async(&rt).iter(|| tryhard::retry_fn(op_async).retries(4)));
    g.finish();
    let mut a = Allocations::new("async_success");
    a.measure("direct", || sink(rt.block_on(op_async())));
    a.measure("backstop", || sink(rt.block_on(policy.retry(op_async).into_future())));
    a.measure("backstop_attribute", || sink(rt.block_on(op_async_attribute())));
    a.measure("backon", || {
        use backon::Retryable;
        sink(rt.block_on(op_async.retry(backon::ExponentialBuilder::default()).into_future()))
    });
    a.measure("tokio-retry2", || {
        use tokio_retry2::{MapErr, Retry, strategy::ExponentialBackoff};
        let run = Retry::spawn(ExponentialBackoff::from_millis(10).take(4), || async {
            op_async().await.map_transient_err()
        });
        sink(rt.block_on(run))
    });
    a.measure("tryhard", || sink(rt.block_on(tryhard::retry_fn(op_async).retries(4))));
    record_allocations(a);
}

use std::future::IntoFuture;

/// An operation that fails three times, then succeeds (a fresh one per run).
fn flaky() -> impl FnMut() -> std::future::Ready<Result<u64, &'static str>> {
    let mut calls = 0u32;
    move || {
        calls += 1;
        std::future::ready(if calls <= 3 { Err("busy") } else { op() })
    }
}

/// Async retry, success after 3 failures with zero delay.
fn async_three_failures(c: &mut Criterion) {
    let rt = runtime();
    let policy = zero_delay(5);
    let mut g = c.benchmark_group("async_3_failures");
    g.bench_function("direct", |b| {
        b.to_async(&rt).iter(|| async {
            let mut f = flaky();
            loop {
                if let Ok(v) = f().await {
                    return v;
                }
            }
        })
    });
    g.bench_function("backstop", |b| b.to_async(&rt).iter(|| policy.retry(flaky()).into_future()));
    g.bench_function("backon", |b| {
        use backon::Retryable;
        let zero = backon::ConstantBuilder::default().with_delay(Duration::ZERO).with_max_times(4);
        b.to_async(&rt).iter(|| flaky().retry(zero))
    });
    g.bench_function("tokio-retry2", |b| {
        use tokio_retry2::{MapErr, Retry, strategy::FixedInterval};
        b.to_async(&rt).iter(|| {
            let mut f = flaky();
            Retry::spawn(FixedInterval::from_millis(0).take(4), move || {
                let attempt = f();
                async move { attempt.await.map_transient_err() }
            })
        })
    });
    g.bench_function("tryhard", |b| b.to_async(&rt).iter(|| tryhard::retry_fn(flaky()).retries(4)));
    g.finish();
    let mut a = Allocations::new("async_3_failures");
    a.measure("backstop", || sink(rt.block_on(policy.retry(flaky()).into_future())));
    a.measure("backon", || {
        use backon::Retryable;
        let zero = backon::ConstantBuilder::default().with_delay(Duration::ZERO).with_max_times(4);
        sink(rt.block_on(flaky().retry(zero).into_future()))
    });
    a.measure("tokio-retry2", || {
        use tokio_retry2::{MapErr, Retry, strategy::FixedInterval};
        let mut f = flaky();
        let run = Retry::spawn(FixedInterval::from_millis(0).take(4), move || {
            let attempt = f();
            async move { attempt.await.map_transient_err() }
        });
        sink(rt.block_on(run))
    });
    a.measure("tryhard", || sink(rt.block_on(tryhard::retry_fn(flaky()).retries(4))));
    record_allocations(a);
}

/// A circuit breaker in the closed state, one thread.
fn breaker_closed(c: &mut Criterion) {
    let ours = CircuitBreaker::new("bench", BreakerConfig::default());
    let recloser = recloser::Recloser::default();
    let failsafe = failsafe::Config::new().build();
    let mut g = c.benchmark_group("breaker_closed");
    g.bench_function("direct", |b| b.iter(op));
    g.bench_function("backstop", |b| b.iter(|| ours.call(op)));
    g.bench_function("recloser", |b| b.iter(|| recloser.call(op)));
    g.bench_function("failsafe", |b| {
        use failsafe::CircuitBreaker as _;
        b.iter(|| failsafe.call(op))
    });
    g.finish();
    let mut a = Allocations::new("breaker_closed");
    a.measure("backstop", || sink(ours.call(op)));
    a.measure("recloser", || sink(recloser.call(op)));
    a.measure("failsafe", || {
        use failsafe::CircuitBreaker as _;
        sink(failsafe.call(op))
    });
    record_allocations(a);
}

/// One call of a case, shareable across threads.
type SharedCall = Arc<dyn Fn() + Send + Sync>;

/// Wall time for `iters` calls of `call` shared out over `threads` threads.
fn across_threads(threads: usize, iters: u64, call: SharedCall) -> Duration {
    let per_thread = (iters / threads as u64).max(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let call = Arc::clone(&call);
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    call();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a benchmark thread");
    }
    start.elapsed()
}

/// One shared closed breaker, hammered by 2 and by 4 threads: time per call
/// (wall time / calls), so scaling shows as a falling number.
fn breaker_threads(c: &mut Criterion) {
    for threads in [2, 4] {
        let mut g = c.benchmark_group(format!("breaker_closed_{threads}_threads"));
        let ours = CircuitBreaker::new("bench", BreakerConfig::default());
        let recloser = Arc::new(recloser::Recloser::default());
        let failsafe = failsafe::Config::new().build();
        let cases: Vec<(&str, SharedCall)> = vec![
            ("direct", Arc::new(|| sink(op()))),
            ("backstop", Arc::new(move || sink(ours.call(op)))),
            ("recloser", Arc::new(move || sink(recloser.call(op)))),
            (
                "failsafe",
                Arc::new(move || {
                    use failsafe::CircuitBreaker as _;
                    sink(failsafe.call(op))
                }),
            ),
        ];
        for (name, call) in cases {
            g.bench_function(name, |b| b.iter_custom(|iters| across_threads(threads, iters, Arc::clone(&call))));
        }
        g.finish();
    }
}

/// A whole guarded run: retry policy, breaker and budget, success path.
fn full_run(c: &mut Criterion) {
    let policy = presets::DEFAULT;
    let breaker = CircuitBreaker::new("bench", BreakerConfig::default());
    let budget = RetryBudget::default();
    let mut g = c.benchmark_group("full_run");
    g.bench_function("direct", |b| b.iter(op));
    g.bench_function("backstop", |b| b.iter(|| policy.retry(op).breaker(&breaker).budget(&budget).call()));
    g.finish();
    let mut a = Allocations::new("full_run");
    a.measure("backstop", || sink(policy.retry(op).breaker(&breaker).budget(&budget).call()));
    record_allocations(a);
}

/// A run through a pacer, success path: idle (no throttling seen: one
/// atomic load and one add to the thread's counter, the clock read every
/// 64th call at most) and pacing at a rate no call waits for (the slot
/// queue's critical section), beside a run with a closed breaker. No peer
/// has a pacer to compare.
fn paced_run(c: &mut Criterion) {
    let policy = presets::DEFAULT;
    let idle = Pacer::builder("bench").build().expect("valid pacer");
    let pacing = Pacer::builder("bench").max_rate(1e9).initial_rate(1e9).burst(100_000).build().expect("valid pacer");
    let breaker = CircuitBreaker::new("bench", BreakerConfig::default());
    let mut g = c.benchmark_group("paced_run");
    g.bench_function("direct", |b| b.iter(op));
    g.bench_function("backstop", |b| b.iter(|| policy.retry(op).call()));
    g.bench_function("backstop_breaker_closed", |b| b.iter(|| policy.retry(op).breaker(&breaker).call()));
    g.bench_function("backstop_pacer_idle", |b| b.iter(|| policy.retry(op).pacer(&idle).call()));
    g.bench_function("backstop_pacer_pacing", |b| b.iter(|| policy.retry(op).pacer(&pacing).call()));
    g.finish();
    let mut a = Allocations::new("paced_run");
    a.measure("backstop_breaker_closed", || sink(policy.retry(op).breaker(&breaker).call()));
    a.measure("backstop_pacer_idle", || sink(policy.retry(op).pacer(&idle).call()));
    a.measure("backstop_pacer_pacing", || sink(policy.retry(op).pacer(&pacing).call()));
    record_allocations(a);
}

/// A whole guarded run with local guards and with the same guards shared
/// through a real `redis-server` (a private one on loopback): the success
/// path should cost the same, as no call talks to Redis.
fn shared_run(c: &mut Criterion) {
    let redis = backstop_testkit::redis::RedisServer::start();
    let fleet = backstop_redis::Fleet::builder(redis.url()).build().expect("a fleet");
    let policy = presets::DEFAULT;
    let (breaker, budget) = (CircuitBreaker::new("bench", BreakerConfig::default()), RetryBudget::default());
    let shared_breaker = CircuitBreaker::builder("bench").shared(&fleet).build();
    let shared_budget = RetryBudget::token_bucket("bench").shared(&fleet).build().expect("valid");
    let mut g = c.benchmark_group("shared_run");
    g.bench_function("direct", |b| b.iter(op));
    g.bench_function("backstop", |b| b.iter(|| policy.retry(op).breaker(&breaker).budget(&budget).call()));
    g.bench_function("backstop_shared", |b| {
        b.iter(|| policy.retry(op).breaker(&shared_breaker).budget(&shared_budget).call())
    });
    g.finish();
    let mut a = Allocations::new("shared_run");
    a.measure("backstop_shared", || sink(policy.retry(op).breaker(&shared_breaker).budget(&shared_budget).call()));
    record_allocations(a);
    assert!(fleet.is_connected(), "the shared guards were measured while in the fleet, not alone");
}

/// A hedge on a call that finishes at once: the cost of being ready to
/// hedge, on the success path (issue 24's target: within 10 ns of direct).
fn hedge_idle(c: &mut Criterion) {
    let rt = runtime();
    let hedge = backstop::hedge::Hedge::builder("bench").build().expect("a valid hedge");
    let mut g = c.benchmark_group("hedge_idle");
    g.bench_function("direct", |b| b.to_async(&rt).iter(op_async));
    g.bench_function("backstop", |b| b.to_async(&rt).iter(|| hedge.run(op_async)));
    g.finish();
}

/// A guarded run (breaker and budget) with its guards given directly, and
/// taken per key from a `Keyed` (the key held: a hash of a 25-byte origin, a
/// shard read lock, a reference count; issue 25's target: within 20 ns).
fn keyed_run(c: &mut Criterion) {
    let policy = presets::DEFAULT;
    let guards = Guards::builder()
        .breaker(&CircuitBreaker::new("bench", BreakerConfig::default()))
        .budget(&RetryBudget::default())
        .build();
    let keyed = Keyed::builder(|origin: &str| {
        Guards::builder()
            .breaker(&CircuitBreaker::new(format!("bench {origin}"), BreakerConfig::default()))
            .budget(&RetryBudget::default())
            .build()
    })
    .build()
    .expect("valid keyed guards");
    for i in 0..1_000 {
        let _ = keyed.get(&format!("https://host-{i}.example"));
    }
    let origin = "https://api.weather.example";
    let mut g = c.benchmark_group("keyed_run");
    g.bench_function("backstop", |b| b.iter(|| policy.retry(op).guards(&guards).call()));
    g.bench_function("backstop_keyed", |b| b.iter(|| policy.retry(op).guards(&keyed.get(origin)).call()));
    // `Keyed::get` alone (the thread's last key; its reference count taken and dropped).
    g.bench_function("get_alone", |b| b.iter(|| std::hint::black_box(keyed.get(std::hint::black_box(origin)))));
    // Two origins in turn: every call misses the thread's last key.
    let origins = ["https://api.weather.example", "https://host-7.example"];
    let mut turn = 0;
    g.bench_function("backstop_keyed_alternating", |b| {
        b.iter(|| {
            turn ^= 1;
            policy.retry(op).guards(&keyed.get(origins[turn])).call()
        })
    });
    g.finish();
    let mut a = Allocations::new("keyed_run");
    a.measure("backstop_keyed", || sink(policy.retry(op).guards(&keyed.get(origin)).call()));
    record_allocations(a);
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = sync_success, async_success, async_three_failures, breaker_closed, breaker_threads, full_run, paced_run, shared_run, hedge_idle, keyed_run
}
criterion_main!(benches);
