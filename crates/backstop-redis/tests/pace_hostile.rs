//! Red-team tests of the shared pace: hostile callers, settings, servers and
//! Redis contents. Each asserts the behaviour the docs promise, so a defect
//! shows as a failing test.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use backstop::{Pacer, RetryPolicy, Verdict};
use backstop_redis::Fleet;
use backstop_testkit::redis::RedisServer;
use support::{fleet, wait_until};

fn one_attempt() -> RetryPolicy {
    RetryPolicy::builder().max_attempts(1).build().unwrap()
}

fn key(name: &str) -> String {
    backstop_redis::scripts::key("pace", name)
}

/// One paced call through a run.
fn call(p: &Pacer) {
    one_attempt().retry(|| Ok::<_, String>(())).pacer(p).call().unwrap();
}

/// Runs `f` on its own thread; panics if it does not finish within `limit`
/// (the thread is left behind: the test has failed anyway).
fn within<T: Send + 'static>(limit: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(_) => panic!("{what}: still not done after {limit:?} (hung)"),
    }
}

/// Sends through `threads` threads for `run`; returns how many went.
fn hammer(p: &Pacer, threads: usize, run: Duration) -> u64 {
    hammer_until(p, threads, Instant::now() + run)
}

/// Sends through `threads` threads until `end`; returns how many went.
fn hammer_until(p: &Pacer, threads: usize, end: Instant) -> u64 {
    let sent = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while Instant::now() < end {
                    call(p);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    sent.into_inner()
}

// ---------------------------------------------------------------- settings

/// The slowest rate allowed (`min_rate` 0.001/s) paces a local pacer; a
/// shared pacer must pace too, not stop pacing.
#[test]
fn a_tiny_rate_still_paces_when_shared() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    let p = Pacer::builder("tiny").min_rate(0.001).initial_rate(0.002).burst(1).shared(&f).build().unwrap();
    std::thread::sleep(Duration::from_millis(60));
    let rate = p.rate();
    let first = p.reserve();
    let second = p.reserve();
    assert!(
        second > Duration::from_secs(60),
        "at 0.002/s the second call should wait ~500 s; it waits {second:?} (first {first:?}, rate {rate:?})"
    );
}

/// Hostile but valid settings: burst 1, max rate 1e9, initial at max: no
/// panic, calls go.
#[test]
fn extreme_valid_settings_do_not_panic_or_hang() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    let hi = Pacer::builder("hi").min_rate(1e9).max_rate(1e9).initial_rate(1e9).burst(1).shared(&f).build().unwrap();
    let lo = Pacer::builder("lo").min_rate(0.001).max_rate(0.001).burst(100_000).shared(&f).build().unwrap();
    let (hi2, lo2) = (hi.clone(), lo.clone());
    let sent = within(Duration::from_secs(10), "extreme settings", move || {
        let n = hammer(&hi2, 2, Duration::from_millis(300));
        for _ in 0..5 {
            call(&lo2);
        }
        lo2.record(Verdict::Throttled);
        std::thread::sleep(Duration::from_millis(100));
        // burst 100 000 at 0.001/s: a burst may still go
        for _ in 0..5 {
            let _ = lo2.take_slot().map(|s| lo2.wait(s));
        }
        n
    });
    assert!(sent > 100, "at 1e9/s only {sent} went in 300 ms");
    assert!(f.is_connected());
    let _ = (hi, lo);
}

// ---------------------------------------------------------------- callers

/// Process A's 200 async callers give up (tokio timeout) while waiting for
/// the fleet's grant (if `drop_callers`); then process B alone sends for 2 s
/// at the fleet rate of 20/s. Returns what B sent.
fn b_alone_after_a(drop_callers: bool) -> (u64, u64) {
    let redis = RedisServer::start();
    let (fa, fb) = (fleet(&redis), fleet(&redis));
    let pa = Pacer::builder("phantom").initial_rate(20.0).burst(1).shared(&fa).build().unwrap();
    let pb = Pacer::builder("phantom").initial_rate(20.0).burst(1).shared(&fb).build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let went = std::sync::Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..if drop_callers { 200 } else { 0 } {
            let (p, went) = (pa.clone(), went.clone());
            tasks.push(tokio::spawn(async move {
                let policy = one_attempt();
                let _ = tokio::time::timeout(
                    Duration::from_millis(15),
                    policy
                        .retry(|| async {
                            went.fetch_add(1, Ordering::Relaxed);
                            Ok::<_, String>(())
                        })
                        .pacer(&p),
                )
                .await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    });
    let b_sent = hammer(&pb, 2, Duration::from_secs(2));
    (b_sent, went.load(Ordering::Relaxed))
}

/// Callers that give up while waiting for the fleet's grant (async runs
/// dropped by a timeout) must not keep reserving the fleet's slots: with
/// A idle, B should get the whole fleet rate, as when A had no callers.
#[test]
fn dropped_waiters_do_not_keep_reserving_the_fleets_slots() {
    let (control, _) = b_alone_after_a(false);
    let (b_sent, a_sent) = b_alone_after_a(true);
    assert!(
        b_sent * 4 >= control * 3,
        "B sent {b_sent} in 2 s at a fleet rate of 20/s after A's 200 callers gave up (A sent {a_sent}), \
         {control} when A had none"
    );
}

/// A high fleet rate (S3's 3 500 PUTs/s, the docs' example): one process
/// alone should get near it, as a local pacer does, not be held to the pace
/// of its grant round trips.
#[test]
fn a_lone_process_gets_near_a_high_fleet_rate() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    let local = Pacer::builder("s3-local").initial_rate(3500.0).build().unwrap();
    let shared = Pacer::builder("s3").initial_rate(3500.0).shared(&f).build().unwrap();
    let run = Duration::from_millis(1000);
    let l = hammer(&local, 2, run);
    let s = hammer(&shared, 2, run);
    // the same with the default refresh (200 ms)
    let fd = Fleet::builder(redis.url()).build().unwrap();
    let shared_d = Pacer::builder("s3-default").initial_rate(3500.0).shared(&fd).build().unwrap();
    let d = hammer(&shared_d, 2, run);
    assert!(
        s * 2 >= l && d * 2 >= l,
        "shared: {s} (refresh 20 ms), {d} (refresh 200 ms) calls in 1 s at a fleet rate of 3500/s; local: {l}"
    );
}

/// `reserve()` on a shared pacer: callers that wait what it says and go must
/// still keep to the fleet's rate (it is public API, documented for callers
/// that wait once and go).
#[test]
fn reserve_keeps_to_the_fleets_rate() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    let p = Pacer::builder("reserve").initial_rate(10.0).burst(1).shared(&f).build().unwrap();
    let run = Duration::from_millis(1500);
    let sent = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while start.elapsed() < run {
                    std::thread::sleep(p.reserve());
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let sent = sent.into_inner();
    let most = 10.0 * (secs + 0.1) + 2.0;
    assert!(sent as f64 <= most, "reserve(): {sent} sent in {secs:.2}s at a fleet rate of 10/s (at most {most:.0})");
}

/// take_slot/wait used by hand (wait until zero, then send) keeps the rate;
/// many threads, two processes, burst 10.
#[test]
fn many_threads_two_processes_with_a_burst_keep_to_gcra() {
    let redis = RedisServer::start();
    let (fa, fb) = (fleet(&redis), fleet(&redis));
    let pa = Pacer::builder("many").initial_rate(50.0).burst(10).shared(&fa).build().unwrap();
    let pb = Pacer::builder("many").initial_rate(50.0).burst(10).shared(&fb).build().unwrap();
    let run = Duration::from_millis(1500);
    let start = Instant::now();
    let sent = AtomicU64::new(0);
    std::thread::scope(|s| {
        for i in 0..16 {
            let p = if i % 2 == 0 { &pa } else { &pb };
            let sent = &sent;
            s.spawn(move || {
                while start.elapsed() < run {
                    match p.take_slot() {
                        None => {}
                        Some(slot) => loop {
                            let w = p.wait(slot);
                            if w.is_zero() {
                                break;
                            }
                            std::thread::sleep(w);
                        },
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let sent = sent.into_inner();
    // GCRA: rate × (time + 2 refreshes) + burst, plus the late grace (burst)
    let most = 50.0 * (secs + 0.04) + 20.0;
    assert!(sent as f64 <= most, "{sent} sent in {secs:.2}s at a fleet rate of 50/s, burst 10 (at most {most:.0})");
    assert!(sent as f64 >= 25.0 * secs, "only {sent} sent in {secs:.2}s");
}

// ---------------------------------------------------------------- lifetime

/// A shared pacer dropped (with callers gone) leaves the fleet's care: no
/// Arc cycle keeps it.
#[test]
fn a_dropped_shared_pacer_is_freed() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    {
        let p = Pacer::builder("freed").initial_rate(5.0).burst(1).shared(&f).build().unwrap();
        let q = p.clone();
        for _ in 0..3 {
            call(&q);
        }
        q.record(Verdict::Throttled);
        // a slot held and released
        if let Some(s) = p.take_slot() {
            p.release(s);
        }
        assert_eq!(f.stats().guards, 1);
    }
    wait_until(Duration::from_secs(2), "the dropped pacer leaves the fleet", || f.stats().guards == 0);
}

/// Same while Redis is gone (the pacer is local then).
#[test]
fn a_pacer_dropped_while_redis_is_gone_is_freed() {
    let mut redis = RedisServer::start();
    let f = fleet(&redis);
    let p = Pacer::builder("freed2").initial_rate(5.0).burst(1).shared(&f).build().unwrap();
    call(&p);
    redis.kill();
    wait_until(Duration::from_secs(2), "Redis gone", || !f.is_connected());
    drop(p);
    wait_until(Duration::from_secs(2), "the dropped pacer leaves the fleet", || f.stats().guards == 0);
}

// ---------------------------------------------------------------- Redis trouble

/// Redis stalls while callers wait for a grant: none waits much past the
/// timeout and a refresh (plus its own slot at the local share).
#[test]
fn a_stalled_redis_costs_a_waiting_caller_at_most_a_timeout() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    let p = Pacer::builder("stall").initial_rate(100.0).burst(1).shared(&f).build().unwrap();
    hammer(&p, 2, Duration::from_millis(200));
    let p2 = p.clone();
    let longest = within(Duration::from_secs(10), "callers during a stall", move || {
        let longest = std::sync::Mutex::new(Duration::ZERO);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(1500) {
                        let t = Instant::now();
                        call(&p2);
                        let e = t.elapsed();
                        let mut l = longest.lock().unwrap();
                        *l = (*l).max(e);
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(100));
            redis.stall(Duration::from_millis(800));
        });
        longest.into_inner().unwrap()
    });
    // timeout 50 + refresh 20 + a few slots of the local share (4 callers at ≤100/s)
    assert!(longest < Duration::from_millis(250), "a caller waited {longest:?} while Redis stalled");
    let _ = p;
}

/// Redis killed while callers wait for grants: none hangs.
#[test]
fn a_killed_redis_releases_the_waiting_callers() {
    let mut redis = RedisServer::start();
    let f = fleet(&redis);
    let p = Pacer::builder("killed").initial_rate(20.0).burst(1).shared(&f).build().unwrap();
    let p2 = p.clone();
    let handle = std::thread::spawn(move || {
        let mut longest = Duration::ZERO;
        let start = Instant::now();
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let mut l = Duration::ZERO;
                        while start.elapsed() < Duration::from_millis(1200) {
                            let t = Instant::now();
                            call(&p2);
                            l = l.max(t.elapsed());
                        }
                        l
                    })
                })
                .collect();
            for h in hs {
                longest = longest.max(h.join().unwrap());
            }
        });
        longest
    });
    std::thread::sleep(Duration::from_millis(300));
    redis.kill();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(handle.join().unwrap());
    });
    let longest = rx.recv_timeout(Duration::from_secs(10)).expect("callers hung after Redis was killed");
    // 8 callers queued at 20/s: 400 ms is the queue itself; plus timeout and refresh
    assert!(longest < Duration::from_millis(700), "a caller waited {longest:?}");
    let _ = p;
}

/// Redis restarted empty: the pace learned from refusals should survive
/// (the process keeps pacing), not turn into "no pacing" until the next 429.
#[test]
fn a_redis_restart_does_not_forget_that_the_fleet_was_throttled() {
    let mut redis = RedisServer::start();
    let f = fleet(&redis);
    let p = Pacer::builder("amnesia").min_decrease_interval(Duration::from_millis(50)).shared(&f).build().unwrap();
    for _ in 0..40 {
        call(&p);
        std::thread::sleep(Duration::from_millis(5));
    }
    p.record(Verdict::Throttled);
    wait_until(Duration::from_secs(2), "the fleet paces", || p.rate().is_some());
    let learned = p.rate().unwrap();
    redis.restart();
    wait_until(Duration::from_secs(5), "the fleet is back", || f.stats().rejoins >= 1);
    std::thread::sleep(Duration::from_millis(100));
    assert!(p.rate().is_some(), "after Redis restarted empty the pacer stopped pacing (it had learned {learned:.1}/s)");
}

// ---------------------------------------------------------------- hostile Redis contents

fn redis_get(redis: &RedisServer, args: &[&str]) -> String {
    // `command` returns the first line: for a bulk string, read the value too
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    if line.starts_with('$') && !line.starts_with("$-1") {
        let mut v = String::new();
        r.read_line(&mut v).unwrap();
        return v.trim_end().to_owned();
    }
    line.trim_end().to_owned()
}

/// Someone writes a far-future `tat`: the pace must not wedge (callers
/// waiting for a grant that never comes).
#[test]
fn a_far_future_tat_does_not_wedge_the_pace() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    let p = Pacer::builder("tat").initial_rate(50.0).burst(1).shared(&f).build().unwrap();
    call(&p);
    assert_eq!(redis.command(&["HSET", &key("tat"), "tat", "1e18"]), ":0");
    let p2 = p.clone();
    within(Duration::from_secs(5), "5 calls at 50/s after a far-future tat", move || {
        for _ in 0..5 {
            call(&p2);
        }
    });
}

/// Garbage in the pace's fields (NaN, inf, negative, text): no panic on the
/// fleet's thread, other guards go on, calls go, and any rate is within the
/// pacer's bounds.
#[test]
fn garbage_fields_neither_panic_nor_wedge() {
    let mut failures = Vec::new();
    for (field, value) in [
        ("rate", "nan"),
        ("rate", "inf"),
        ("rate", "-inf"),
        ("rate", "-5"),
        ("rate", "0"),
        ("rate", "1e308"),
        ("rate", "hello"),
        ("max", "nan"),
        ("max", "-1"),
        ("dec", "nan"),
        ("dec", "1e300"),
        ("tat", "nan"),
        ("tat", "-inf"),
        ("win", "nan"),
        ("cur", "1e308"),
        ("born", "inf"),
        ("ceil", "0"),
        ("ceil_until", "inf"),
    ] {
        let r = std::panic::catch_unwind(|| garbage_case(field, value));
        if let Err(e) = r {
            let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            failures.push(msg.unwrap_or_default());
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
}

fn garbage_case(field: &str, value: &str) {
    {
        let redis = RedisServer::start();
        let f = fleet(&redis);
        let p = Pacer::builder("junk")
            .min_rate(1.0)
            .max_rate(200.0)
            .initial_rate(100.0)
            .burst(1)
            .shared(&f)
            .build()
            .unwrap();
        let other = Pacer::builder("bystander").initial_rate(100.0).burst(1).shared(&f).build().unwrap();
        call(&p);
        redis.command(&["HSET", &key("junk"), field, value]);
        let (p2, o2) = (p.clone(), other.clone());
        let what = format!("calls after {field}={value}");
        let sent = within(Duration::from_secs(5), &what, move || {
            let n = hammer(&p2, 2, Duration::from_millis(300));
            p2.record(Verdict::Throttled);
            // (a garbage rate may fairly fall to min_rate 1/s: two calls)
            for _ in 0..2 {
                call(&p2);
                p2.record_success();
            }
            hammer(&o2, 1, Duration::from_millis(100));
            n
        });
        assert!(f.is_connected(), "{field}={value}: the fleet's thread lost Redis");
        let before = f.stats().round_trips;
        std::thread::sleep(Duration::from_millis(100));
        assert!(f.stats().round_trips > before, "{field}={value}: the fleet's thread stopped");
        assert_eq!(other.rate(), Some(100.0), "{field}={value}: a bystander pace changed");
        if let Some(r) = p.rate() {
            assert!((1.0..=200.0).contains(&r), "{field}={value}: rate {r} outside 1..=200");
        }
        // at most max_rate 200/s (+ a burst and 2 refreshes)
        assert!(sent as f64 <= 200.0 * 0.35 + 5.0, "{field}={value}: {sent} sent in 300 ms past max_rate 200/s");
    }
}

/// The pace's key of the wrong type: that pacer works alone, the others go
/// on; no hang.
#[test]
fn a_pace_key_of_the_wrong_type_only_breaks_that_pace() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    redis.command(&["SET", &key("wrongtype"), "x"]);
    let p = Pacer::builder("wrongtype").initial_rate(50.0).burst(1).shared(&f).build().unwrap();
    let other = Pacer::builder("fine").initial_rate(50.0).burst(1).shared(&f).build().unwrap();
    let (p2, o2) = (p.clone(), other.clone());
    within(Duration::from_secs(5), "calls with a wrong-type key", move || {
        hammer(&p2, 2, Duration::from_millis(200));
        p2.record(Verdict::Throttled);
        hammer(&p2, 2, Duration::from_millis(200));
        hammer(&o2, 1, Duration::from_millis(100));
    });
    assert!(f.is_connected());
    assert!(p.rate().is_some());
}

// ---------------------------------------------------------------- servers

/// A stated limit of 0 remaining with a zero reset: no panic, and the fleet
/// goes on (calls are not stuck).
#[test]
fn observe_limit_zero_remaining_zero_reset() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    let p = Pacer::builder("zero").min_rate(2.0).shared(&f).build().unwrap();
    hammer(&p, 1, Duration::from_millis(100));
    let p2 = p.clone();
    within(Duration::from_secs(5), "calls after observe_limit(0, 0)", move || {
        p2.observe_limit(0, Duration::ZERO);
        p2.observe_limit(0, Duration::from_secs(u64::MAX / 4));
        p2.observe_limit(u64::MAX, Duration::ZERO);
        for _ in 0..3 {
            call(&p2);
        }
    });
    assert!(f.is_connected());
}

/// A server that states a low limit for a short reset (remaining 0 in the
/// next second, a common header): once the reset passes, the fleet must
/// not stay reserved far ahead at the low rate.
#[test]
fn a_short_low_limit_does_not_reserve_the_fleet_far_ahead() {
    let redis = RedisServer::start();
    let f = Fleet::builder(redis.url())
        .refresh(Duration::from_millis(200))
        .timeout(Duration::from_millis(50))
        .reconnect_every(Duration::from_millis(20))
        .build()
        .unwrap();
    let p = Pacer::builder("limit").initial_rate(100.0).burst(1).shared(&f).build().unwrap();
    hammer(&p, 2, Duration::from_millis(1000));
    p.observe_limit(0, Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(300));
    // 1 s reset; then 3 s of calls: the rate may grow back slowly, but the
    // fleet's time line should not be reserved tens of seconds ahead.
    let tat: f64 = redis_get(&redis, &["HGET", &key("limit"), "tat"]).parse().unwrap();
    let now_s: f64 = {
        let t = redis_get(&redis, &["TIME"]);
        let _ = t;
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
    };
    let ahead = tat / 1e6 - now_s;
    assert!(ahead < 5.0, "the fleet's time line is reserved {ahead:.1} s ahead after a 1 s limit");
}

/// Two processes with different settings for one name: no panic, no hang,
/// each keeps its own bounds — A's `max_rate` too, with a burst of 1 or of
/// 10 (a burst is taken once, not at every grant of the fleet's slots).
#[test]
fn two_processes_with_different_settings_for_one_name() {
    for burst in [1, 10] {
        let redis = RedisServer::start();
        let (fa, fb) = (fleet(&redis), fleet(&redis));
        let pa = Pacer::builder("mixed")
            .min_rate(1.0)
            .max_rate(10.0)
            .initial_rate(10.0)
            .burst(burst)
            .shared(&fa)
            .build()
            .unwrap();
        let pb = Pacer::builder("mixed")
            .min_rate(100.0)
            .max_rate(1000.0)
            .initial_rate(1000.0)
            .burst(50)
            .shared(&fb)
            .build()
            .unwrap();
        let (a2, b2) = (pa.clone(), pb.clone());
        let (na, nb) = within(Duration::from_secs(10), "mixed settings", move || {
            // Two seconds for every thread (a thread that starts late on a
            // busy machine must not stretch it).
            let end = Instant::now() + Duration::from_millis(2000);
            std::thread::scope(|s| {
                let ha = s.spawn(|| hammer_until(&a2, 2, end));
                let hb = s.spawn(|| hammer_until(&b2, 2, end));
                (ha.join().unwrap(), hb.join().unwrap())
            })
        });
        let (ra, rb) = (pa.rate(), pb.rate());
        assert!(ra.is_none_or(|r| (1.0..=10.0).contains(&r)), "A's rate {ra:?}");
        assert!(rb.is_none_or(|r| (100.0..=1000.0).contains(&r)), "B's rate {rb:?}");
        // A's own max rate is 10/s: in 2 s that is 21 slots (one at its
        // start), its burst less one early, and each of the 2 threads may
        // begin one more call just before the end, sent at the next slot.
        let most = 21 + (u64::from(burst) - 1) + 2;
        assert!(na <= most, "A (max_rate 10/s, burst {burst}) sent {na} in 2 s, at most {most} (B sent {nb})");
    }
}

/// The first throttle: the fleet's new rate is β × what the whole fleet was
/// sending, and in the second after it the fleet sends no more than that.
#[test]
fn the_first_throttle_does_not_overshoot() {
    let redis = RedisServer::start();
    let fleets: Vec<Fleet> = (0..3).map(|_| fleet(&redis)).collect();
    let pacers: Vec<Pacer> =
        fleets.iter().map(|f| Pacer::builder("first").burst(1).shared(f).build().unwrap()).collect();
    // each process sends ~100/s unpaced (10 ms calls)
    let send = |p: &Pacer, run: Duration| {
        let n = AtomicU64::new(0);
        let start = Instant::now();
        while start.elapsed() < run {
            one_attempt()
                .retry(|| {
                    std::thread::sleep(Duration::from_millis(10));
                    Ok::<_, String>(())
                })
                .pacer(p)
                .call()
                .unwrap();
            n.fetch_add(1, Ordering::Relaxed);
        }
        n.into_inner()
    };
    std::thread::scope(|s| {
        for p in &pacers {
            s.spawn(|| send(p, Duration::from_millis(1500)));
        }
    });
    pacers[0].record(Verdict::Throttled);
    wait_until(Duration::from_secs(1), "all pace", || pacers.iter().all(|p| p.rate().is_some()));
    let rate = pacers[0].rate().unwrap();
    // fleet ~ 3 × 90/s → β × ≈ 190
    assert!((100.0..=260.0).contains(&rate), "the fleet's first rate {rate:.1}/s (fleet sent ~270/s)");
    let start = Instant::now();
    let sent: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = pacers.iter().map(|p| s.spawn(|| send(p, Duration::from_millis(1000)))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let secs = start.elapsed().as_secs_f64();
    assert!(
        sent as f64 <= rate * (secs + 0.1) + 3.0,
        "{sent} sent in {secs:.2}s after the first throttle to {rate:.1}/s"
    );
}
