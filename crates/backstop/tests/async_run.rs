//! The async run, through the public API: borrowed closures, tokio's paused
//! clock, `ManualClock`, an executor that is not tokio, cancellation.

use std::future::{Future, IntoFuture};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use backstop::{Backoff, ManualClock, RetryError, RetryPolicy, Verdict, presets};

const S: fn(u64) -> Duration = Duration::from_secs;

struct Client {
    fail_first: AtomicU32,
}

impl Client {
    async fn get(&self, url: &str) -> Result<String, String> {
        tokio::task::yield_now().await;
        if self.fail_first.load(Ordering::SeqCst) > 0 {
            self.fail_first.fetch_sub(1, Ordering::SeqCst);
            return Err(format!("503 from {url}"));
        }
        Ok(format!("200 from {url}"))
    }
}

fn exact(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::exponential(S(1)).max_delay(S(30))).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn async_closures_may_borrow_the_caller() {
    let client = Client { fail_first: AtomicU32::new(2) };
    let url = String::from("https://api.weather.test/forecast");
    let policy = presets::api_call().to_builder().max_attempts(5).build().unwrap();
    // The closure borrows `client` and `url`; no clone, no Arc, no `move`.
    let body = policy.retry(|| async { client.get(&url).await }).await.unwrap();
    assert_eq!(body, "200 from https://api.weather.test/forecast");
    // Still ours afterwards.
    assert_eq!(url.len(), 33);
}

#[tokio::test(start_paused = true)]
async fn sleeps_on_tokios_paused_clock() {
    let start = tokio::time::Instant::now();
    let err = exact(5).retry(|| async { Err::<(), _>("SlowDown") }).name("upload_to_s3").await.unwrap_err();
    // 1 + 2 + 4 + 8 virtual seconds, in no real time.
    assert_eq!(start.elapsed(), S(15));
    assert!(matches!(err, RetryError::Exhausted { attempts: 5, elapsed, .. } if elapsed == S(15)));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_follows_tokios_paused_clock() {
    let policy = exact(10).to_builder().max_elapsed(S(10)).build().unwrap();
    let calls = AtomicU32::new(0);
    let err = policy
        .retry(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(S(3)).await; // each attempt takes 3 s
            Err::<(), _>("timeout")
        })
        .await
        .unwrap_err();
    // t=3 fail, sleep 1 s; t=7 fail, sleep 2 s (ends at 9 <= 10); the third
    // attempt is still running at the deadline, so it is dropped at t=10.
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        matches!(err, RetryError::DeadlineExceeded { attempts: 3, elapsed, last: Some("timeout"), .. } if elapsed == S(10)),
        "{err}"
    );
}

#[tokio::test]
async fn runs_on_a_manual_clock_with_exact_sleeps() {
    let clock = ManualClock::new();
    let mut left = 3;
    let v = exact(5)
        .retry(|| {
            let fail = left > 0;
            left -= fail as u32;
            async move { if fail { Err("busy") } else { Ok(7) } }
        })
        .when(|_: &&str| Verdict::Retry)
        .clock(&clock)
        .await
        .unwrap();
    assert_eq!(v, 7);
    assert_eq!(clock.sleeps(), [1, 2, 4].map(S));
}

/// A minimal executor: parks the thread until woken. Not tokio.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn works_without_a_tokio_runtime() {
    let policy =
        RetryPolicy::builder().max_attempts(3).backoff(Backoff::constant(Duration::from_millis(1))).build().unwrap();
    let calls = AtomicU32::new(0);
    let v = block_on(
        policy
            .retry(|| async { if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err("flaky") } else { Ok("done") } })
            .into_future(),
    );
    assert_eq!(v, Ok("done"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_cancels_the_run() {
    let calls = Arc::new(AtomicU32::new(0));
    let policy = exact(5);
    {
        let calls = Arc::clone(&calls);
        let fut = policy.retry(move || {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>("down")
            }
        });
        let mut fut = pin!(fut.into_future());
        // First attempt fails, then the run sleeps.
        let waker = Waker::noop();
        assert!(fut.as_mut().poll(&mut Context::from_waker(waker)).is_pending());
    } // dropped mid-sleep
    tokio::time::advance(S(60)).await;
    tokio::task::yield_now().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_run_is_send_and_spawnable() {
    let policy = Arc::new(presets::api_call());
    let handle = tokio::spawn({
        let policy = Arc::clone(&policy);
        async move { policy.retry(|| async { Ok::<_, std::io::Error>(5) }).name("spawned").await }
    });
    assert_eq!(handle.await.unwrap().unwrap(), 5);
}
