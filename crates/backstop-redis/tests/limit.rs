//! A concurrency limit shared by a fleet, against a real `redis-server`:
//! the sync script never counts more places held than the fleet has, calls
//! running included, whatever order the workers sync in; a worker holding
//! more than its share is cut to it while another waits;
//! `Fleet`s in one process (standing for processes) never run more calls at
//! once than the fleet's places, each gets places (one that only tries and
//! never queues too, and one waiting for an idle process's place), and
//! without Redis each carries on with its share; garbage in the hash is
//! repaired, not followed.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backstop::limit::ConcurrencyLimit;
use backstop::{Backoff, RetryPolicy};
use backstop_redis::Fleet;
use backstop_redis::scripts::{LIMIT_SYNC, key};
use backstop_testkit::redis::RedisServer;
use proptest::prelude::*;
use support::{fleet, wait_until};

const CAPACITY: u32 = 8;

/// One worker's step: its calls running become `running` (at most its
/// lease), `waiting` more wait, and it asks for `want` places (or leaves).
#[derive(Debug, Clone, Copy)]
struct Step {
    worker: usize,
    running: u32,
    waiting: u32,
    want: u32,
    standing: bool,
    leaves: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (0..4usize, 0..12u32, 0..6u32, 0..12u32, any::<bool>(), prop::bool::weighted(0.1)).prop_map(
        |(worker, running, waiting, want, standing, leaves)| Step { worker, running, waiting, want, standing, leaves },
    )
}

/// `[granted, free, workers, contended]`.
fn sync(con: &mut redis::Connection, limit: &str, me: &str, s: Step) -> [u32; 4] {
    LIMIT_SYNC
        .key(limit)
        .arg(s.want)
        .arg(s.running + s.waiting)
        .arg(s.running)
        .arg(CAPACITY)
        .arg(u8::from(s.standing))
        .arg(60_000)
        .arg(60_000)
        .arg(me)
        .arg(u8::from(s.leaves))
        .invoke(con)
        .unwrap()
}

#[test]
fn the_places_held_and_the_calls_running_never_pass_the_fleets_places() {
    let redis = RedisServer::start();
    let con = std::cell::RefCell::new(redis::Client::open(redis.url()).unwrap().get_connection().unwrap());
    let case = AtomicU32::new(0);
    proptest!(ProptestConfig::with_cases(64), |(steps in prop::collection::vec(step(), 1..40))| {
        let limit = key("limit", &format!("prop{}", case.fetch_add(1, Ordering::Relaxed)));
        let con = &mut *con.borrow_mut();
        let mut leases = [0u32; 4];
        for mut s in steps {
            // Calls run only on places held; a worker leaves when idle.
            s.running = s.running.min(leases[s.worker]);
            if s.leaves {
                s.running = 0;
            }
            let [granted, free, _, contended] = sync(con, &limit, &format!("w{}", s.worker), s);
            if contended == 0 && !s.leaves {
                prop_assert!(granted >= s.want.min(CAPACITY - (leases.iter().sum::<u32>() - leases[s.worker])));
            }
            // Its calls running hold their places, granted or not.
            leases[s.worker] = if s.leaves { 0 } else { granted.max(s.running) };
            let held: u32 = leases.iter().sum();
            prop_assert!(held <= CAPACITY, "{leases:?} hold more than {CAPACITY}");
            prop_assert_eq!(free, CAPACITY - held, "{:?}", leases);
        }
    });
}

#[test]
fn a_worker_holding_more_than_its_share_is_cut_to_it_while_another_wants_places() {
    let redis = RedisServer::start();
    let mut con = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let base = Step { worker: 0, running: 0, waiting: 0, want: 0, standing: false, leaves: false };
    // a takes every place; b finds none.
    assert_eq!(sync(&mut con, "fair", "a", Step { want: 8, waiting: 8, ..base })[0], 8);
    assert_eq!(sync(&mut con, "fair", "b", Step { want: 3, waiting: 3, ..base }), [0, 0, 2, 0]);
    // a, with 6 calls running, hears that b waits and is cut to what b's 3
    // leave (5); its calls running hold their places until they end.
    assert_eq!(sync(&mut con, "fair", "a", Step { want: 8, running: 6, waiting: 2, ..base }), [5, 2, 2, 1]);
    assert_eq!(sync(&mut con, "fair", "b", Step { want: 3, waiting: 3, ..base })[0], 2);
    assert_eq!(sync(&mut con, "fair", "a", Step { want: 8, running: 3, waiting: 5, ..base })[0], 5);
    assert_eq!(sync(&mut con, "fair", "b", Step { want: 3, waiting: 3, ..base })[0], 3, "a's calls ended");
    // An idle worker keeps one place only while half the places are free.
    assert_eq!(sync(&mut con, "fair", "c", Step { standing: true, ..base })[0], 0);
    assert_eq!(sync(&mut con, "fair", "a", Step { want: 0, ..base })[0], 0);
    assert_eq!(sync(&mut con, "fair", "c", Step { standing: true, ..base })[0], 1);
}

#[test]
fn fleets_never_run_more_calls_at_once_than_the_fleets_places_and_each_gets_some() {
    let redis = RedisServer::start();
    let fleets: Vec<_> = (0..3).map(|_| fleet(&redis)).collect();
    let limits: Vec<ConcurrencyLimit> = fleets
        .iter()
        .map(|f| {
            ConcurrencyLimit::builder("uploads")
                .max_concurrent(4)
                .queue_timeout(Duration::from_secs(5))
                .shared(f)
                .build()
                .unwrap()
        })
        .collect();
    let policy = RetryPolicy::builder().max_attempts(1).backoff(Backoff::constant(Duration::ZERO)).build().unwrap();
    let (running, most) = (AtomicU32::new(0), AtomicU32::new(0));
    let done: Vec<AtomicU32> = (0..3).map(|_| AtomicU32::new(0)).collect();
    std::thread::scope(|s| {
        for (i, limit) in limits.iter().enumerate() {
            for _ in 0..4 {
                let (running, most, done, policy) = (&running, &most, &done[i], &policy);
                s.spawn(move || {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(800) {
                        let ran = policy
                            .retry(|| {
                                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                                most.fetch_max(now, Ordering::SeqCst);
                                std::thread::sleep(Duration::from_millis(3));
                                running.fetch_sub(1, Ordering::SeqCst);
                                Ok::<_, std::io::Error>(())
                            })
                            .limit(limit)
                            .call();
                        assert!(ran.is_ok(), "{ran:?}");
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        }
    });
    let done: Vec<u32> = done.iter().map(|d| d.load(Ordering::SeqCst)).collect();
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 4, "{most} calls at once; the fleet has 4 places");
    assert!(done.iter().all(|&d| d >= 10), "every process got places: {done:?}");
    println!("3 fleets, 12 threads on 4 places: at most {most} at once; calls done {done:?}");
}

#[test]
fn without_redis_each_process_carries_on_with_its_share() {
    let mut redis = RedisServer::start();
    let (a, b) = (fleet(&redis), fleet(&redis));
    let build = |f| ConcurrencyLimit::builder("outage").max_concurrent(6).max_queue(0).shared(f).build().unwrap();
    let (la, lb) = (build(&a), build(&b));
    // Both ask for places once, so each knows the fleet has two processes.
    let (pa, pb) = (la.try_acquire(), lb.try_acquire());
    wait_until(Duration::from_secs(5), "both lease places", || la.current_limit() > 0 && lb.current_limit() > 0);
    drop((pa, pb));
    redis.kill();
    // a's calls want more places than it holds: its thread asks Redis, finds
    // it gone, and a goes on alone with its share (6 places, 2 processes).
    let _wanting: Vec<_> = (0..6).filter_map(|_| la.try_acquire()).collect();
    wait_until(Duration::from_secs(5), "a notices Redis is gone", || !a.is_connected());
    assert!(la.current_limit() >= 3, "{}", la.current_limit());
    drop(_wanting);
    let held: Vec<_> = (0..3).filter_map(|_| la.try_acquire()).collect();
    assert_eq!(held.len(), 3, "a runs its share of the places without Redis");
}

/// Waits for a place on a tokio runtime of its own (the queue timeout runs
/// on tokio's timer there).
fn acquire(limit: &ConcurrencyLimit) -> Result<backstop::limit::LimitPermit, backstop::limit::LimitError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(limit.acquire())
}

#[test]
fn a_limit_that_only_tries_and_never_queues_still_gets_the_fleets_free_places() {
    let redis = RedisServer::start();
    let (a, b) = (fleet(&redis), fleet(&redis));
    let shared = |f| ConcurrencyLimit::builder("tries").max_concurrent(4).max_queue(0).shared(f).build().unwrap();
    let (la, lb) = (shared(&a), shared(&b));
    // a takes three places, trying only; b, started late, tries for the last.
    let mut held_a = Vec::new();
    wait_until(Duration::from_secs(5), "a gets three places by trying", || {
        held_a.extend(la.try_acquire());
        held_a.len() == 3
    });
    let mut held_b = None;
    wait_until(Duration::from_secs(5), "b gets the free place by trying", || {
        held_b = held_b.take().or_else(|| lb.try_acquire());
        held_b.is_some()
    });
    assert!(la.try_acquire().is_none() && lb.try_acquire().is_none(), "four places, four held");
}

#[test]
fn an_idle_process_gives_its_one_place_to_a_process_waiting_for_it() {
    let redis = RedisServer::start();
    let (a, b) = (fleet(&redis), fleet(&redis));
    let la = ConcurrencyLimit::builder("idle").max_concurrent(4).shared(&a).build().unwrap();
    wait_until(Duration::from_secs(2), "a keeps one place while idle", || la.current_limit() == 1);
    let lb = ConcurrencyLimit::builder("idle")
        .max_concurrent(4)
        .queue_timeout(Duration::from_secs(4))
        .shared(&b)
        .build()
        .unwrap();
    let held: Vec<_> = (0..4).map(|i| acquire(&lb).unwrap_or_else(|e| panic!("b's call {i}: {e}"))).collect();
    assert_eq!((held.len(), la.current_limit()), (4, 0), "a gave its idle place back");
}

#[test]
fn a_refusal_with_no_waiter_never_mutes_the_next_calls_nudge() {
    let redis = RedisServer::start();
    // Full passes 5 s apart: only a nudge can serve the queued call in time.
    let f = Fleet::builder(redis.url()).refresh(Duration::from_secs(5)).build().unwrap();
    let l = ConcurrencyLimit::builder("nudge")
        .max_concurrent(4)
        .queue_timeout(Duration::from_secs(1))
        .shared(&f)
        .build()
        .unwrap();
    wait_until(Duration::from_secs(2), "one place while idle", || l.current_limit() == 1);
    let first = l.try_acquire().unwrap();
    assert!(l.try_acquire().is_none(), "refused, with no waiter");
    std::thread::sleep(Duration::from_millis(50));
    let second = acquire(&l);
    assert!(second.is_ok(), "three places free in the fleet: {second:?}");
    drop(first);
}

#[test]
fn garbage_in_the_leases_is_repaired_not_followed() {
    let redis = RedisServer::start();
    let mut con = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let limit = key("limit", "junk");
    // Unreadable entries, and a ghost heard of far in the future (which
    // would never be forgotten and would hold every place).
    for (worker, value) in [("a", "x:y:z"), ("b", "1.5:2:3"), ("ghost", "8:0:99999999999999")] {
        redis.command(&["HSET", &limit, worker, value]);
    }
    let base = Step { worker: 0, running: 0, waiting: 2, want: 2, standing: false, leaves: false };
    assert_eq!(sync(&mut con, &limit, "w", base)[0], 2, "every place is free");
    assert_eq!(redis.command(&["HLEN", &limit]), ":1", "only w's lease is left");
    // The same for a ratio budget's grants.
    let grants = key("grants", "junk");
    redis.command(&["HSET", &grants, "bad", "1.2.3:99"]);
    redis.command(&["HSET", &grants, "ghost", "99999999:99999999999999"]);
    let (grant, ..): (String, u64, u64, u64) = backstop_redis::scripts::RATIO_SYNC
        .key(key("ratio", "junk"))
        .key(&grants)
        .arg(0)
        .arg(0)
        .arg(0.1)
        .arg(20)
        .arg(10_000)
        .arg(0)
        .arg(60_000)
        .arg(10_000)
        .arg("w")
        .arg(0)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(grant, "20.000", "the ghost's grant holds no room");
}
