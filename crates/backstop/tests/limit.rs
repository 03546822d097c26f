//! The fixed concurrency limit through the public API: places, the FIFO
//! queue and its bound, the queue timeout on virtual time, what a dropped
//! waiter gives back, and a shared limit's places set by its store.

use std::future::{Future, IntoFuture};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use backstop::ManualClock;
use backstop::limit::{ConcurrencyLimit, LimitError};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn limit(places: u32, queue: u32) -> ConcurrencyLimit {
    ConcurrencyLimit::builder("uploads").max_concurrent(places).max_queue(queue).no_queue_timeout().build().unwrap()
}

/// Polls once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    std::pin::Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn places_are_taken_and_given_back() {
    let l = limit(2, 0);
    let a = l.try_acquire().unwrap();
    let _b = l.try_acquire().unwrap();
    assert!(l.try_acquire().is_none());
    assert_eq!(l.in_use(), 2);
    drop(a);
    assert_eq!(l.in_use(), 1);
    assert!(l.try_acquire().is_some());
}

#[test]
fn a_full_queue_refuses_at_once_naming_the_limit() {
    let l = limit(1, 1);
    let _running = l.try_acquire().unwrap();
    let mut waiting = l.acquire();
    assert!(poll_once(&mut waiting).is_pending());
    assert_eq!(l.waiting(), 1);
    let mut refused = l.acquire();
    let Poll::Ready(Err(err)) = poll_once(&mut refused) else { panic!("not refused") };
    assert!(matches!(err, LimitError::QueueFull { max_concurrent: 1, max_queue: 1, .. }));
    assert_eq!(err.to_string(), "concurrency limit uploads is full: 1 running and 1 waiting");
}

#[test]
fn waiters_go_in_order_and_a_newcomer_never_jumps_the_queue() {
    let l = limit(1, 10);
    let running = l.try_acquire().unwrap();
    let mut first = l.acquire();
    let mut second = l.acquire();
    assert!(poll_once(&mut first).is_pending());
    assert!(poll_once(&mut second).is_pending());
    drop(running);
    // The place went to `first`: a newcomer finds none free.
    assert!(l.try_acquire().is_none());
    assert!(poll_once(&mut second).is_pending());
    let Poll::Ready(Ok(permit)) = poll_once(&mut first) else { panic!("the first waiter's place") };
    drop(permit);
    assert!(matches!(poll_once(&mut second), Poll::Ready(Ok(_))));
}

#[test]
fn a_dropped_waiter_frees_its_place_in_the_queue_and_a_place_it_was_handed() {
    let l = limit(1, 1);
    let running = l.try_acquire().unwrap();
    let mut gives_up = l.acquire();
    assert!(poll_once(&mut gives_up).is_pending());
    drop(gives_up);
    assert_eq!(l.waiting(), 0, "its place in the queue is free at once");
    let mut next = l.acquire();
    assert!(poll_once(&mut next).is_pending(), "queued, not refused");
    // Handed the place, then dropped before taking it: the place is not lost.
    drop(running);
    drop(next);
    assert_eq!(l.in_use(), 0);
    assert!(l.try_acquire().is_some());
}

#[tokio::test]
async fn the_queue_timeout_runs_on_the_limits_clock() {
    let clock = ManualClock::new();
    let l =
        ConcurrencyLimit::builder("uploads").max_concurrent(1).queue_timeout(MS(500)).clock(&clock).build().unwrap();
    let _running = l.try_acquire().unwrap();
    let mut waiting = pin!(l.acquire());
    assert!(poll_once(&mut waiting).is_pending());
    clock.advance(MS(499));
    assert!(poll_once(&mut waiting).is_pending());
    clock.advance(MS(1));
    let Poll::Ready(Err(err)) = poll_once(&mut waiting) else { panic!("not timed out") };
    assert_eq!(err, LimitError::QueueTimeout { name: "uploads".into(), waited: MS(500) });
    assert_eq!(err.to_string(), "concurrency limit uploads: no place after waiting 0.5 seconds");
    assert_eq!(l.waiting(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_never_run_more_than_the_limit_at_once() {
    let l = ConcurrencyLimit::builder("uploads").max_concurrent(3).max_queue(1000).build().unwrap();
    let (running, most) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (l, running, most) = (l.clone(), Arc::clone(&running), Arc::clone(&most));
        tasks.push(tokio::spawn(async move {
            let _permit = l.acquire().await.unwrap();
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::task::yield_now().await;
            running.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 3);
    assert_eq!((l.in_use(), l.waiting()), (0, 0));
}

/// A store that keeps the handle, for the test to set places as a store
/// would, and counts the calls that found no place.
#[derive(Clone, Default)]
struct Keeper {
    limit: Arc<std::sync::Mutex<Option<backstop::limit::SharedLimit>>>,
    wants: Arc<AtomicU32>,
}

struct Wants(Arc<AtomicU32>);

impl backstop::limit::LimitLink for Wants {
    fn wants(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl backstop::limit::LimitStore for Keeper {
    fn share_limit(&self, limit: backstop::limit::SharedLimit) -> Arc<dyn backstop::limit::LimitLink> {
        *self.limit.lock().unwrap() = Some(limit);
        Arc::new(Wants(Arc::clone(&self.wants)))
    }
}

#[test]
fn a_shared_limit_runs_on_the_places_its_store_sets_and_says_when_a_call_finds_none() {
    let keeper = Keeper::default();
    let l = ConcurrencyLimit::builder("fleet")
        .max_concurrent(4)
        .max_queue(10)
        .no_queue_timeout()
        .shared(&keeper)
        .build()
        .unwrap();
    let handle = keeper.limit.lock().unwrap().clone().unwrap();
    assert_eq!((l.current_limit(), handle.places()), (0, 0), "no places before the store leases some");
    assert!(l.try_acquire().is_none());
    assert_eq!(keeper.wants.load(Ordering::SeqCst), 1);
    let mut first = l.acquire();
    let mut second = l.acquire();
    assert!(poll_once(&mut first).is_pending());
    assert!(poll_once(&mut second).is_pending());
    assert_eq!(keeper.wants.load(Ordering::SeqCst), 3, "each call that queues says so");
    assert_eq!((handle.in_use(), handle.waiting()), (0, 2));
    // The store leases two places: both waiters go in, in order.
    handle.set_places(2);
    let (a, b) = (poll_once(&mut first), poll_once(&mut second));
    assert!(matches!((&a, &b), (Poll::Ready(Ok(_)), Poll::Ready(Ok(_)))));
    assert_eq!(handle.in_use(), 2);
    // Fewer places than calls running: none is stopped, and the places they
    // give back are not handed on until the calls fit.
    handle.set_places(1);
    let mut third = l.acquire();
    assert!(poll_once(&mut third).is_pending());
    drop(a);
    assert!(poll_once(&mut third).is_pending(), "two ran on one place: the first back is not handed on");
    drop(b);
    assert!(matches!(poll_once(&mut third), Poll::Ready(Ok(_))));
    handle.set_places(100);
    assert_eq!(handle.places(), 4, "never more than the fleet's places");
    keeper.limit.lock().unwrap().take();
    drop((l, first, second, third));
    assert!(handle.is_orphaned());
}

#[test]
fn bad_settings_name_their_field() {
    let b = || ConcurrencyLimit::builder("l");
    for (result, field) in [
        (b().max_concurrent(0).build(), "max_concurrent"),
        (b().max_queue(2_000_000).build(), "max_queue"),
        (b().queue_timeout(Duration::ZERO).build(), "queue_timeout"),
        (b().adaptive(backstop::limit::Gradient::default()).shared(&Keeper::default()).build(), "shared"),
    ] {
        assert_eq!(result.unwrap_err().field(), field);
    }
}

#[test]
fn leaving_a_long_queue_costs_the_same_wherever_one_stands() {
    // (Not timed: a waiter found by id, not by a search of the queue, is
    // shown by the queue staying consistent through drops from the back.)
    let l = limit(1, 10_000);
    let running = l.try_acquire().unwrap();
    let mut waiters: Vec<_> = (0..10_000).map(|_| Box::pin(l.acquire())).collect();
    for w in &mut waiters {
        assert!(poll_once(w).is_pending());
    }
    let first = waiters.remove(0);
    while waiters.len() > 1 {
        drop(waiters.pop());
    }
    assert_eq!(l.waiting(), 2);
    drop(running);
    drop(first); // handed the place, dropped: the place goes on to the last one left
    assert!(matches!(poll_once(&mut waiters[0]), Poll::Ready(Ok(_))));
    assert_eq!(l.waiting(), 0);
}

#[test]
fn a_finished_acquire_polled_again_takes_nothing() {
    let l = limit(2, 0);
    let mut a = l.acquire();
    let Poll::Ready(Ok(_permit)) = poll_once(&mut a) else { panic!() };
    assert!(poll_once(&mut a).is_pending());
    assert_eq!(l.in_use(), 1);
}

// ------------------------------------------------------------ the limit in runs

use backstop::{Backoff, Guards, RetryError, RetryPolicy};

fn policy(attempts: u32, delay: Duration) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::constant(delay)).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn runs_take_a_place_per_attempt_and_never_exceed_the_limit() {
    let l = ConcurrencyLimit::builder("uploads").max_concurrent(2).max_queue(100).build().unwrap();
    let (running, most) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let p = policy(3, MS(10));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (l, p, running, most) = (l.clone(), p.clone(), Arc::clone(&running), Arc::clone(&most));
        tasks.push(tokio::spawn(async move {
            p.retry(|| async {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(MS(50)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(())
            })
            .limit(&l)
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 2);
    assert_eq!((l.in_use(), l.waiting()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_run_gives_its_place_back_while_it_sleeps_before_a_retry() {
    let l = ConcurrencyLimit::builder("uploads").max_concurrent(1).max_queue(0).build().unwrap();
    let flaky = AtomicU32::new(0);
    let slow_retry = policy(2, Duration::from_secs(1));
    let first = slow_retry
        .retry(|| async { if flaky.fetch_add(1, Ordering::SeqCst) == 0 { Err("503") } else { Ok("first") } })
        .limit(&l);
    let second = async {
        tokio::time::sleep(MS(100)).await; // while the first sleeps towards its retry
        policy(1, MS(1)).retry(|| async { Ok::<_, &str>("second") }).limit(&l).await
    };
    let (first, second) = tokio::join!(first.into_future(), second);
    assert_eq!((first, second), (Ok("first"), Ok("second")), "the place was free during the sleep");
}

#[tokio::test]
async fn a_full_limit_ends_the_run_naming_it_and_keeps_the_last_error() {
    let l = limit(1, 0);
    let _held = l.try_acquire().unwrap();
    let err = policy(3, MS(1)).retry(|| async { Ok::<_, &str>(()) }).limit(&l).await.unwrap_err();
    assert!(matches!(err, RetryError::Limited { attempts: 0, last: None, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "operation stopped before its first attempt: concurrency limit uploads is full: 1 running and 0 waiting"
    );
    // Given through `Guards`, the same.
    let guards = Guards::builder().limit(&l).build();
    let err = policy(3, MS(1)).retry(|| async { Ok::<_, &str>(()) }).guards(&guards).await.unwrap_err();
    assert!(matches!(err, RetryError::Limited { .. }));
}

#[test]
fn a_blocking_run_waits_in_the_queue_on_its_thread() {
    let l = ConcurrencyLimit::builder("uploads").max_concurrent(1).max_queue(10).build().unwrap();
    let held = l.try_acquire().unwrap();
    let waiter = {
        let l = l.clone();
        std::thread::spawn(move || policy(1, MS(1)).retry(|| Ok::<_, &str>("ran")).limit(&l).call())
    };
    while l.waiting() == 0 {
        std::thread::yield_now();
    }
    drop(held);
    assert_eq!(waiter.join().unwrap(), Ok("ran"));
    assert_eq!((l.in_use(), l.waiting()), (0, 0));
}

#[cfg(feature = "serde")]
#[test]
fn a_limit_loads_from_a_file_and_a_bad_one_names_its_field() {
    let l: ConcurrencyLimit =
        serde_json::from_str(r#"{"name": "s3", "max_concurrent": 4, "queue_timeout": "none"}"#).unwrap();
    assert_eq!((l.name(), l.max_concurrent(), l.max_queue(), l.queue_timeout()), ("s3", 4, 100, None));
    let l: ConcurrencyLimit = serde_json::from_str(r#"{"name": "s3", "queue_timeout": 2.5}"#).unwrap();
    assert_eq!(l.queue_timeout(), Some(MS(2500)));
    for (json, says) in [
        (r#"{"name": "s3", "max_concurrent": 0}"#, "max_concurrent is 0"),
        (r#"{"name": "s3", "queue_timeout": "0s"}"#, "queue_timeout is 0ns"),
        (r#"{"name": "s3", "max_queues": 5}"#, "unknown field `max_queues`"),
    ] {
        let err = serde_json::from_str::<ConcurrencyLimit>(json).unwrap_err().to_string();
        assert!(err.contains(says), "{json}: {err}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_dropped_while_it_waits_or_runs_gives_its_place_back() {
    let l = ConcurrencyLimit::builder("uploads").max_concurrent(1).max_queue(5).build().unwrap();
    let p = policy(3, MS(10));
    let held = l.try_acquire().unwrap();
    // Waiting in the queue, then dropped: it leaves the queue.
    let waiting = tokio::time::timeout(MS(50), p.retry(|| async { Ok::<_, &str>(()) }).limit(&l).into_future()).await;
    assert!(waiting.is_err() && l.waiting() == 0);
    drop(held);
    // Running its attempt, then dropped: its place comes back.
    let running = tokio::time::timeout(
        MS(50),
        p.retry(|| async {
            tokio::time::sleep(MS(1000)).await;
            Ok::<_, &str>(())
        })
        .limit(&l)
        .into_future(),
    )
    .await;
    assert!(running.is_err());
    assert_eq!((l.in_use(), l.waiting()), (0, 0));
    // Handed a place while waiting, dropped before it resumed: the place comes back.
    let held = l.try_acquire().unwrap();
    let mut run = Box::pin(p.retry(|| async { Ok::<_, &str>(()) }).limit(&l).into_future());
    assert!(poll_once(&mut run).is_pending());
    drop(held); // the place goes to the run's wait, which has not resumed yet
    drop(run);
    assert_eq!((l.in_use(), l.waiting()), (0, 0));
}

// ------------------------------------------------------------ the adaptive limit

use backstop::limit::Gradient;

/// One round: as many calls as the limit allows, each taking `took`.
fn round(l: &ConcurrencyLimit, clock: &ManualClock, took: Duration) {
    let permits: Vec<_> = (0..l.current_limit()).map_while(|_| l.try_acquire()).collect();
    clock.advance(took);
    drop(permits);
}

#[test]
fn the_adaptive_limit_grows_while_latency_holds_and_shrinks_when_it_rises() {
    let clock = ManualClock::new();
    let l = ConcurrencyLimit::builder("api")
        .max_concurrent(64)
        .adaptive(Gradient::default().initial(4))
        .clock(&clock)
        .build()
        .unwrap();
    assert_eq!(l.current_limit(), 4);
    // One move a round (a window of `limit` samples): 4 to 64 in ~100.
    for _ in 0..150 {
        round(&l, &clock, MS(10));
    }
    let grown = l.current_limit();
    assert_eq!(grown, 64, "steady latency: up to the cap");
    // The downstream slows to 4x: the limit comes down within a few rounds
    // (a tenth a round: a fifth of the way to half).
    for _ in 0..8 {
        round(&l, &clock, MS(40));
    }
    let shrunk = l.current_limit();
    assert!(shrunk < grown / 2, "{shrunk}");
    // And recovers when it is fast again.
    for _ in 0..60 {
        round(&l, &clock, MS(10));
    }
    assert!(l.current_limit() > shrunk, "{} after {shrunk}", l.current_limit());
}

#[test]
fn a_limit_that_grows_lets_its_waiters_in() {
    let clock = ManualClock::new();
    let l = ConcurrencyLimit::builder("api")
        .max_concurrent(10)
        .max_queue(10)
        .no_queue_timeout()
        .adaptive(Gradient::default().initial(2).smoothing(1.0))
        .clock(&clock)
        .build()
        .unwrap();
    let (a, b) = (l.try_acquire().unwrap(), l.try_acquire().unwrap());
    let mut waiters: Vec<_> = (0..3).map(|_| Box::pin(l.acquire())).collect();
    for w in &mut waiters {
        assert!(poll_once(w).is_pending());
    }
    clock.advance(MS(10));
    // A window of samples (two, the limit) at full use and steady latency:
    // the limit grows past 2.
    drop((a, b));
    assert!(l.current_limit() > 2);
    let admitted = waiters.iter_mut().map(poll_once).filter(|p| matches!(p, Poll::Ready(Ok(_)))).count();
    assert!(admitted >= 3, "the freed places and the new ones: {admitted}");
}

#[test]
fn bad_adaptive_settings_name_their_field() {
    let b = || ConcurrencyLimit::builder("l").max_concurrent(10);
    for (result, field) in [
        (b().adaptive(Gradient::default().initial(20)).build(), "adaptive.initial"),
        (b().adaptive(Gradient::default().initial(5).min_limit(0)).build(), "adaptive.min_limit"),
        (b().adaptive(Gradient::default().initial(5).tolerance(0.5)).build(), "adaptive.tolerance"),
        (b().adaptive(Gradient::default().initial(5).smoothing(0.0)).build(), "adaptive.smoothing"),
        (b().adaptive(Gradient::default().initial(5).long_window(1)).build(), "adaptive.long_window"),
    ] {
        assert_eq!(result.unwrap_err().field(), field);
    }
}

// ------------------------------------------------------------ found by a red-team pass

#[tokio::test(start_paused = true)]
async fn the_runs_deadline_bounds_a_wait_for_a_place_and_no_attempt_starts_after_it() {
    let l = ConcurrencyLimit::builder("uploads").max_concurrent(1).max_queue(5).no_queue_timeout().build().unwrap();
    let held = l.try_acquire().unwrap();
    let p = RetryPolicy::builder().max_attempts(3).max_elapsed(Duration::from_secs(1)).build().unwrap();
    let started = tokio::time::Instant::now();
    let err = p.retry(|| async { Ok::<_, &str>(()) }).limit(&l).await.unwrap_err();
    assert!(matches!(err, RetryError::DeadlineExceeded { attempts: 0, .. }), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(l.waiting(), 0);
    drop(held);
}

#[test]
fn a_driven_run_is_refused_by_a_full_limit_and_times_out_in_its_queue() {
    use backstop::retry::Next;
    let clock = ManualClock::new();
    let full = ConcurrencyLimit::builder("u").max_concurrent(1).max_queue(0).clock(&clock).build().unwrap();
    let _held = full.try_acquire().unwrap();
    let p = policy(2, MS(1));
    assert!(matches!(p.driven().limit(&full).clock(&clock).start::<&str>(), Next::Stop(RetryError::Limited { .. })));
    let queued = ConcurrencyLimit::builder("q").max_concurrent(1).queue_timeout(MS(50)).clock(&clock).build().unwrap();
    let _held = queued.try_acquire().unwrap();
    let mut next = p.driven().limit(&queued).clock(&clock).start::<&str>();
    let mut asked = 0;
    let err = loop {
        next = match next {
            Next::Sleep(run, d) => {
                clock.advance(d);
                asked += 1;
                run.resume()
            }
            Next::Stop(err) => break err,
            Next::Attempt(_) => panic!("no place was free"),
        };
    };
    assert!(matches!(err, RetryError::Limited { refused: LimitError::QueueTimeout { .. }, .. }), "{err}");
    assert!(asked <= 6, "asked {asked} times");
}

#[tokio::test(start_paused = true)]
async fn a_place_is_not_held_while_the_run_waits_for_its_pacer() {
    use backstop::Pacer;
    let l = ConcurrencyLimit::builder("u").max_concurrent(1).max_queue(0).build().unwrap();
    let pacer = Pacer::builder("p").initial_rate(0.5).burst(1).build().unwrap();
    assert_eq!(pacer.reserve(), Duration::ZERO); // the slot of these 2 s is taken
    let paced = tokio::spawn({
        let (l, pacer) = (l.clone(), pacer.clone());
        async move { policy(1, MS(1)).retry(|| async { Ok::<_, &str>("paced") }).limit(&l).pacer(&pacer).await }
    });
    tokio::time::sleep(MS(100)).await; // the paced run waits for its slot
    assert_eq!(l.in_use(), 0, "no place held through the pacer's wait");
    assert_eq!(paced.await.unwrap(), Ok("paced"));
}

#[test]
fn a_small_adaptive_limit_still_shrinks_to_its_floor() {
    let clock = ManualClock::new();
    let l = ConcurrencyLimit::builder("api")
        .max_concurrent(64)
        .adaptive(Gradient::default().initial(8).min_limit(1))
        .clock(&clock)
        .build()
        .unwrap();
    for _ in 0..30 {
        round(&l, &clock, MS(10));
    }
    let mut took = MS(20);
    for _ in 0..60 {
        round(&l, &clock, took);
        took *= 2; // ever slower: overload that does not end
        took = took.min(Duration::from_secs(3600));
    }
    assert_eq!(l.current_limit(), 1);
}
