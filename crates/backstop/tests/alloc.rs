//! The success path allocates nothing (default features; with `metrics`, the
//! facade allocates a label set per record, as documented in `event`).
#![cfg(not(feature = "metrics"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::{Future, IntoFuture};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use backstop::{ManualClock, Verdict, presets};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every call to the system allocator unchanged; the counter
// is a thread-local `Cell` that allocates nothing itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn sync_success_allocates_nothing() {
    let policy = presets::S3_UPLOAD;
    let clock = ManualClock::new();
    let n = allocations_in(|| {
        for i in 0..1000u32 {
            let v = policy
                .retry(|| Ok::<_, &str>(i))
                .when(|_: &&str| Verdict::Retry)
                .name("upload_to_s3")
                .on_retry(|_: &backstop::RetryEvent<'_, &str>| {})
                .clock(&clock)
                .call()
                .unwrap();
            assert_eq!(v, i);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn async_success_allocates_nothing() {
    let policy = presets::API_CALL;
    let waker = Waker::noop();
    let n = allocations_in(|| {
        for i in 0..1000u32 {
            let fut = policy.retry(|| async move { Ok::<_, &str>(i) }).name("fetch").into_future();
            let mut fut = pin!(fut);
            match fut.as_mut().poll(&mut Context::from_waker(waker)) {
                Poll::Ready(Ok(v)) => assert_eq!(v, i),
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn the_counter_does_count() {
    // Guards the two tests above against a counter that never moves.
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);
}

#[test]
fn a_run_through_a_closed_breaker_and_a_budget_allocates_nothing() {
    let breaker = backstop::CircuitBreaker::new("s3", backstop::breaker::BreakerConfig::default());
    let budget = backstop::RetryBudget::default();
    let policy = presets::S3_UPLOAD;
    let n = allocations_in(|| {
        for i in 0..1000u32 {
            let v = policy.retry(|| Ok::<_, &str>(i)).breaker(&breaker).budget(&budget).call().unwrap();
            assert_eq!(v, i);
            breaker.try_acquire().unwrap().success();
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn a_run_through_a_pacer_allocates_nothing_pacing_or_not() {
    let idle = backstop::Pacer::builder("api").build().unwrap();
    // Pacing at a rate high enough that no call waits.
    let pacing = backstop::Pacer::builder("s3").max_rate(1e9).initial_rate(1e9).burst(100_000).build().unwrap();
    let policy = presets::S3_UPLOAD;
    let n = allocations_in(|| {
        for i in 0..1000u32 {
            assert_eq!(policy.retry(|| Ok::<_, &str>(i)).pacer(&idle).call().unwrap(), i);
            assert_eq!(policy.retry(|| Ok::<_, &str>(i)).pacer(&pacing).call().unwrap(), i);
        }
    });
    assert_eq!(n, 0);
}
