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
    let policy = presets::API_CALL.to_builder().max_attempts(5).build().unwrap();
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
    let policy = Arc::new(presets::API_CALL);
    let handle = tokio::spawn({
        let policy = Arc::clone(&policy);
        async move { policy.retry(|| async { Ok::<_, std::io::Error>(5) }).name("spawned").await }
    });
    assert_eq!(handle.await.unwrap().unwrap(), 5);
}

/// The scenarios of a faithful clock: each has one outcome on the real clock,
/// and must have it on `ManualClock` and on tokio's paused clock too.
/// `u` is the time unit (1 s in virtual time, a few ms on the real clock).
mod same_outcome_on_every_clock {
    use std::future::IntoFuture;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use backstop::{Backoff, Clock, ManualClock, RetryError, RetryPolicy, SystemClock};

    /// (Ok or which error, attempts made)
    type Outcome = (&'static str, u32);

    fn outcome<T>(r: &Result<T, RetryError<String>>, calls: &AtomicU32) -> Outcome {
        let kind = match r {
            Ok(_) => "ok",
            Err(RetryError::Exhausted { .. }) => "exhausted",
            Err(RetryError::DeadlineExceeded { .. }) => "deadline",
            Err(_) => "other",
        };
        (kind, calls.load(Ordering::SeqCst))
    }

    fn policy(u: Duration, attempts: u32, deadline: Option<u32>) -> RetryPolicy {
        let b = RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::constant(u * 10));
        match deadline {
            Some(n) => b.max_elapsed(u * n).build().unwrap(),
            None => b.build().unwrap(),
        }
    }

    /// A run of up to `attempts` attempts that each take `work` on `clock`,
    /// under a per-attempt timeout of 20u.
    async fn timed_attempts(clock: &dyn Clock, u: Duration, attempts: u32, work: Duration) -> Outcome {
        let calls = AtomicU32::new(0);
        let r = policy(u, attempts, None)
            .retry(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                clock.sleep_async(work).await;
                Ok::<_, String>(())
            })
            .attempt_timeout(u * 20, |_| "timed out".to_string())
            .clock(clock)
            .await;
        outcome(&r, &calls)
    }

    /// Runs the four scenarios on `clock`; the operation sleeps on the same clock.
    async fn scenarios(clock: &dyn Clock, u: Duration) -> Vec<Outcome> {
        let mut out = Vec::new();
        // 1. A deadline of 60u and a first attempt that fails at once: retried, succeeds.
        let calls = AtomicU32::new(0);
        let r = policy(u, 3, Some(60))
            .retry(|| async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n == 0 { Err("503".to_string()) } else { Ok(()) }
            })
            .clock(clock)
            .await;
        out.push(outcome(&r, &calls));
        // 2. An attempt that takes 1u under a 20u timeout: succeeds.
        out.push(timed_attempts(clock, u, 3, u).await);
        // 3. Attempts that take 50u under a 20u timeout: both cut, exhausted.
        out.push(timed_attempts(clock, u, 2, u * 50).await);
        // 4. An attempt of 50u under a 30u deadline: cut by the deadline.
        let calls = AtomicU32::new(0);
        let r = policy(u, 3, Some(30))
            .retry(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                clock.sleep_async(u * 50).await;
                Ok::<_, String>(())
            })
            .clock(clock)
            .await;
        out.push(outcome(&r, &calls));
        // 5. Two tasks: a server up only after 10u, a client retrying every
        // 1u under a 5u deadline. The client's deadline comes first (the
        // count of attempts depends on the clock's granularity: not compared).
        let up = std::sync::atomic::AtomicBool::new(false);
        let calls = AtomicU32::new(0);
        let server = async {
            clock.sleep_async(u * 10).await;
            up.store(true, Ordering::SeqCst);
        };
        let every_u = RetryPolicy::builder().max_attempts(100).backoff(Backoff::constant(u)).max_elapsed(u * 5);
        let every_u = every_u.build().unwrap();
        let client = every_u
            .retry(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                if up.load(Ordering::SeqCst) { Ok(()) } else { Err("down".to_string()) }
            })
            .clock(clock);
        let ((), r) = tokio::join!(server, client.into_future());
        out.push((outcome(&r, &calls).0, 0));
        // 6. A client waiting on a server task that answers after 10u, under
        // a 5u attempt timeout: cut.
        let calls = AtomicU32::new(0);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let rx = std::sync::Mutex::new(Some(rx));
        let server = async {
            clock.sleep_async(u * 10).await;
            let _ = tx.send(());
        };
        let once = policy(u, 1, None);
        let client = once
            .retry(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                let rx = rx.lock().unwrap().take().ok_or("no second call")?;
                rx.await.map_err(|e| e.to_string())
            })
            .attempt_timeout(u * 5, |_| "timed out".to_string())
            .clock(clock);
        let ((), r) = tokio::join!(server, client.into_future());
        out.push(outcome(&r, &calls));
        out
    }

    const EXPECTED: [Outcome; 6] =
        [("ok", 2), ("ok", 1), ("exhausted", 2), ("deadline", 1), ("deadline", 0), ("exhausted", 1)];

    #[tokio::test]
    async fn on_a_manual_clock() {
        let clock = ManualClock::new();
        assert_eq!(scenarios(&clock, Duration::from_secs(1)).await, EXPECTED);
        // Virtual time is the real schedule: 1 retry of 10 s in (1); 1 s in
        // (2); 20 + 10 + 20 s in (3); 30 s in (4); the servers' 10 s in (5) and (6).
        assert_eq!(clock.elapsed(), Duration::from_secs(10 + 1 + 50 + 30 + 10 + 10));
    }

    #[tokio::test(start_paused = true)]
    async fn on_tokios_paused_clock() {
        let start = tokio::time::Instant::now();
        assert_eq!(scenarios(&SystemClock, Duration::from_secs(1)).await, EXPECTED);
        assert_eq!(start.elapsed(), Duration::from_secs(10 + 1 + 50 + 30 + 10 + 10));
    }

    #[tokio::test]
    async fn on_the_real_clock() {
        assert_eq!(scenarios(&SystemClock, Duration::from_millis(4)).await, EXPECTED);
    }

    #[tokio::test]
    async fn a_virtual_timer_does_not_fire_while_an_attempt_waits_on_real_work() {
        // The attempt waits on another thread (real work, no virtual time
        // passes): a virtual per-attempt timeout must not cut it.
        let clock = ManualClock::new();
        let r = policy(Duration::from_secs(1), 3, Some(5))
            .retry(|| async {
                let (tx, rx) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(2));
                    let _ = tx.send(());
                });
                rx.await.map_err(|e| e.to_string())
            })
            .attempt_timeout(Duration::from_secs(1), |_| "timed out".to_string())
            .clock(&clock)
            .await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(clock.elapsed(), Duration::ZERO);
    }
}

#[test]
fn a_tokio_runtime_without_timers_falls_back_to_the_timer_thread() {
    // `Builder::new_current_thread().build()` without `enable_time`: tokio's
    // sleep would panic ("timers are disabled"); the run must not.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let policy =
        RetryPolicy::builder().max_attempts(3).backoff(Backoff::constant(Duration::from_millis(2))).build().unwrap();
    let calls = AtomicU32::new(0);
    let r = rt.block_on(
        policy
            .retry(|| async { if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err("503") } else { Ok("up") } })
            .into_future(),
    );
    assert_eq!(r, Ok("up"));
    // Twice on the same runtime (the answer is remembered), then on one with timers.
    let r = rt.block_on(policy.retry(|| async { Err::<(), _>("503") }).into_future());
    assert!(matches!(r, Err(RetryError::Exhausted { attempts: 3, .. })));
    let timed = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let r = timed.block_on(policy.retry(|| async { Err::<(), _>("503") }).into_future());
    assert!(matches!(r, Err(RetryError::Exhausted { attempts: 3, .. })));
}
