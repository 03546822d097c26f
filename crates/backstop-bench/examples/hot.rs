//! A hot loop for instruction counts under callgrind (cases: none, retry,
//! async, full, guards, keyed, keyed-get, breaker, ...):
//! `valgrind --tool=callgrind target/release/examples/hot <case>`.

use std::hint::black_box;

use backstop::keyed::Keyed;
use backstop::{CircuitBreaker, Guards, breaker::BreakerConfig, presets};

#[inline(never)]
fn op() -> Result<u64, &'static str> {
    black_box(Ok(black_box(42)))
}

fn main() {
    let case = std::env::args().nth(1).unwrap_or_default();
    let policy = presets::DEFAULT;
    let breaker = CircuitBreaker::new("hot", BreakerConfig::default());
    let budget = backstop::RetryBudget::default();
    let guards = Guards::builder().breaker(&breaker).budget(&budget).build();
    let keyed = Keyed::builder(|origin: &str| {
        Guards::builder()
            .breaker(&CircuitBreaker::new(format!("hot {origin}"), BreakerConfig::default()))
            .budget(&backstop::RetryBudget::default())
            .build()
    })
    .build()
    .expect("valid keyed guards");
    let origin = "https://api.weather.example";
    let n: u64 = std::env::var("HOT_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    for _ in 0..n {
        match case.as_str() {
            "retry" => {
                black_box(policy.retry(op).call().ok());
            }
            "async" => {
                use std::future::{Future, IntoFuture};
                let fut = std::pin::pin!(policy.retry(|| async { op() }).into_future());
                let waker = std::task::Waker::noop();
                black_box(fut.poll(&mut std::task::Context::from_waker(waker)).is_ready());
            }
            "async-rt" | "async-rt-direct" => {
                // As criterion's async benchmarks run: awaited inside one
                // tokio block_on, where the future is moved into the caller.
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let direct = case == "async-rt-direct";
                rt.block_on(async {
                    let n: u64 = std::env::var("HOT_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
                    for _ in 0..n {
                        if direct {
                            black_box(async { op() }.await.ok());
                        } else {
                            black_box(policy.retry(|| async { op() }).await.ok());
                        }
                    }
                });
                return;
            }
            "async-direct" => {
                use std::future::Future;
                let fut = std::pin::pin!(async { op() });
                let waker = std::task::Waker::noop();
                black_box(fut.poll(&mut std::task::Context::from_waker(waker)).is_ready());
            }
            "full" => {
                black_box(policy.retry(op).breaker(&breaker).budget(&budget).call().ok());
            }
            "guards" => {
                black_box(policy.retry(op).guards(&guards).call().ok());
            }
            "keyed" => {
                black_box(policy.retry(op).guards(&keyed.get(black_box(origin))).call().ok());
            }
            "keyed-get" => {
                black_box(keyed.get(black_box(origin)));
            }
            "breaker" => {
                black_box(breaker.call(op).ok());
            }
            _ => {
                black_box(op().ok());
            }
        }
    }
}
