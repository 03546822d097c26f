//! Shared guards through a real `redis-server`, several `Fleet`s in one
//! process standing for several processes (each has its own thread,
//! connection and probe token): a trip anywhere opens the circuit
//! everywhere, one probe per open period, one budget for the fleet; Redis
//! killed or stalled never holds up a call, and the fleet rejoins after.
//! (`fleet_processes.rs` runs real worker processes.)

mod support;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backstop::breaker::CircuitState;
use backstop::{Backoff, CircuitBreaker, RetryBudget, Verdict};
use backstop_redis::Fleet;
use backstop_testkit::redis::RedisServer;
use support::{REFRESH, TIMEOUT, breaker, fleet, retries_granted, trip, wait_until, wait_until_permit};

/// The bound the fleet promises for following a trip elsewhere: one
/// refresh and one round trip, plus room for a loaded 2-core machine.
fn follow_bound() -> Duration {
    REFRESH + TIMEOUT + Duration::from_millis(250)
}

#[test]
fn a_trip_in_one_process_opens_the_circuit_in_every_other_within_the_bound() {
    let redis = RedisServer::start();
    let fleets: Vec<Fleet> = (0..4).map(|_| fleet(&redis)).collect();
    let breakers: Vec<CircuitBreaker> = fleets.iter().map(|f| breaker(f, "api", Duration::from_secs(30))).collect();
    trip(&breakers[0]);
    for b in &breakers[1..] {
        let took = wait_until(Duration::from_secs(5), "another process follows the trip", || {
            b.try_acquire().is_err_and(|open| open.state() == CircuitState::Open)
        });
        assert!(took <= follow_bound(), "followed after {took:?}");
        let left = b.would_reject().unwrap().retry_after().unwrap();
        assert!(left > Duration::from_secs(29), "the fleet's open period, not a new one: {left:?}");
    }
    assert!(fleets.iter().all(Fleet::is_connected));
}

#[test]
fn one_probe_in_the_whole_fleet_per_open_period_and_its_verdict_decides_for_everyone() {
    let redis = RedisServer::start();
    let fleets: Vec<Fleet> = (0..8).map(|_| fleet(&redis)).collect();
    let open_for = Duration::from_millis(150);
    let breakers: Vec<CircuitBreaker> = fleets.iter().map(|f| breaker(f, "probe", open_for)).collect();
    trip(&breakers[0]);
    for b in &breakers {
        wait_until(Duration::from_secs(5), "every process follows", || b.state() != CircuitState::Closed);
    }
    for (round, verdict_closes) in [(1, false), (2, true)] {
        // Eight processes, each asking for a permit every millisecond until
        // the probe (whoever holds it) has given its verdict: it holds the
        // probe 100 ms first, so the others keep asking meanwhile.
        let probes = AtomicU32::new(0);
        let decided = AtomicBool::new(false);
        let permits = std::thread::scope(|s| {
            let handles: Vec<_> = breakers
                .iter()
                .map(|b| {
                    let (probes, decided) = (&probes, &decided);
                    s.spawn(move || {
                        let start = Instant::now();
                        while !decided.load(Ordering::SeqCst) {
                            assert!(start.elapsed() < Duration::from_secs(5), "round {round}: no probe at all");
                            if let Ok(permit) = b.try_acquire() {
                                assert_eq!(permit.state(), CircuitState::HalfOpen, "round {round}: a probe");
                                probes.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(Duration::from_millis(100));
                                if verdict_closes {
                                    permit.success()
                                } else {
                                    permit.failure()
                                }
                                decided.store(true, Ordering::SeqCst);
                                return true;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        false
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).filter(|probed| *probed).count()
        });
        assert_eq!(permits, 1, "round {round}: exactly one probe in the fleet");
        assert_eq!(probes.load(Ordering::SeqCst), 1);
        let expected = if verdict_closes { CircuitState::Closed } else { CircuitState::Open };
        for b in &breakers {
            wait_until(Duration::from_secs(5), "every process follows the verdict", || match expected {
                CircuitState::Closed => b.state() == CircuitState::Closed,
                _ => b.would_reject().is_some(),
            });
        }
    }
    for b in &breakers {
        assert!(b.try_acquire().is_ok(), "closed everywhere");
    }
}

#[test]
fn a_probe_abandoned_by_its_process_passes_to_another_when_its_lease_ends() {
    let redis = RedisServer::start();
    let lease = Duration::from_millis(300);
    let make = || Fleet::builder(redis.url()).refresh(REFRESH).timeout(TIMEOUT).probe_lease(lease).build().unwrap();
    let (a, b) = (make(), make());
    let open_for = Duration::from_millis(50);
    let (ba, bb) = (breaker(&a, "lease", open_for), breaker(&b, "lease", open_for));
    trip(&ba);
    wait_until(Duration::from_secs(5), "b follows", || bb.state() != CircuitState::Closed);
    // a wins the probe, then its process hangs on it (the permit is held,
    // never finished): b must not probe while a's lease lasts, and may after.
    let probe = wait_until_permit(&ba);
    let started = Instant::now();
    let took = wait_until(Duration::from_secs(5), "b gets the probe once a's lease is over", || {
        bb.try_acquire().is_ok_and(|p| {
            std::mem::forget(p);
            true
        })
    });
    assert!(
        started.elapsed() + Duration::from_millis(5) >= lease - TIMEOUT * 2,
        "not before a's lease ended: {took:?}"
    );
    probe.failure(); // a's late verdict: its lease is gone, the fleet ignores it
    std::thread::sleep(REFRESH * 5);
    assert_ne!(bb.state(), CircuitState::Closed);
}

#[test]
fn the_fleet_shares_one_budget_and_every_token_is_accounted_for() {
    let redis = RedisServer::start();
    let fleets: Vec<Fleet> = (0..8).map(|_| fleet(&redis)).collect();
    // 100 tokens at 5 a retry: 20 retries for the whole fleet.
    let budgets: Vec<RetryBudget> = fleets
        .iter()
        .map(|f| RetryBudget::token_bucket("uploads").capacity(100).success_refund(0).shared(f).build().unwrap())
        .collect();
    let granted = retries_granted(&budgets, Duration::from_millis(400));
    let held: f64 = budgets.iter().map(RetryBudget::level).sum();
    let mut con = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let in_redis: f64 = redis::cmd("HGET").arg("backstop:v2:{uploads}:budget").arg("tokens").query(&mut con).unwrap();
    assert_eq!(
        f64::from(granted) * 5.0 + held + in_redis,
        100.0,
        "granted {granted}, held {held}, in Redis {in_redis}"
    );
    assert!(granted >= 16, "the fleet's bucket is spent, bar what leases still hold: {granted}");
    assert!(granted <= 20, "never more than the fleet's bucket: {granted}");
}

#[test]
fn redis_killed_mid_run_never_holds_up_a_call_and_the_fleet_rejoins_when_it_returns() {
    let mut redis = RedisServer::start();
    let (a, b) = (fleet(&redis), fleet(&redis));
    let open_for = Duration::from_millis(100);
    let (ba, bb) = (breaker(&a, "outage", open_for), breaker(&b, "outage", open_for));
    let budget = RetryBudget::token_bucket("outage").capacity(50).shared(&a).build().unwrap();
    redis.kill();
    wait_until(Duration::from_secs(5), "the fleet notices Redis is gone", || !a.is_connected() && !b.is_connected());
    // Every call goes on local state, at local speed.
    let mut slowest = Duration::ZERO;
    for _ in 0..1000 {
        let t = Instant::now();
        if let Ok(p) = ba.try_acquire() {
            p.success();
        }
        let _ = budget.try_withdraw(Verdict::Retry).map(|w| budget.refund(w));
        slowest = slowest.max(t.elapsed());
    }
    assert!(slowest < TIMEOUT, "a call waited {slowest:?} on a dead Redis");
    assert_eq!(budget.level(), 50.0, "alone, the budget is a full local bucket");
    // Alone, a breaker trips and probes by itself (b does not hear of it).
    trip(&ba);
    std::thread::sleep(open_for);
    assert_eq!(ba.try_acquire().expect("a local probe").state(), CircuitState::HalfOpen);
    assert_eq!(bb.state(), CircuitState::Closed);
    assert_eq!(a.stats().fallbacks, 1, "one fallback for the outage, however many failed reconnects");
    redis.restart();
    wait_until(Duration::from_secs(5), "both rejoin", || a.stats().rejoins == 1 && b.stats().rejoins == 1);
    // The new Redis is empty: the fleet's state is rebuilt from what its
    // processes know. a's breaker is half-open, so it says the circuit is
    // open again, and b (closed) follows; one probe then decides for both.
    wait_until(Duration::from_secs(5), "b follows the state a re-sent", || bb.state() != CircuitState::Closed);
    wait_until_permit(&bb).success();
    wait_until(Duration::from_secs(5), "a follows b's verdict", || ba.state() == CircuitState::Closed);
    // The budget is shared again: it holds one retry's worth of the (new,
    // full) fleet bucket, as a quiet process does, and nothing more.
    wait_until(Duration::from_secs(5), "the budget takes a lease again", || budget.level() == 10.0);
    assert!(budget.try_withdraw(Verdict::Retry).is_some());
    trip(&bb);
    wait_until(follow_bound(), "a follows b's trip", || ba.state() != CircuitState::Closed);
}

#[test]
fn a_stalled_redis_never_holds_up_a_call() {
    let redis = RedisServer::start();
    let a = fleet(&redis);
    let b = breaker(&a, "stall", Duration::from_secs(1));
    let budget = RetryBudget::token_bucket("stall").capacity(50).shared(&a).build().unwrap();
    redis.stall(Duration::from_millis(600));
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    while start.elapsed() < Duration::from_millis(300) {
        let t = Instant::now();
        b.try_acquire().expect("closed").failure();
        let _ = b.try_acquire().map(|p| p.success());
        let _ = budget.try_withdraw(Verdict::Retry);
        slowest = slowest.max(t.elapsed());
    }
    assert!(slowest < TIMEOUT, "a call waited {slowest:?} on a stalled Redis");
    wait_until(Duration::from_secs(5), "a stall longer than the timeout counts as an outage", || {
        a.stats().fallbacks == 1
    });
    wait_until(Duration::from_secs(5), "and the fleet rejoins after it", || a.is_connected() && a.stats().rejoins == 1);
}

#[test]
fn guards_dropped_by_their_users_leave_the_fleet_and_a_dropped_fleet_leaves_them_alone() {
    let redis = RedisServer::start();
    let fleet = fleet(&redis);
    let kept = breaker(&fleet, "kept", Duration::from_secs(1));
    for i in 0..50 {
        drop(breaker(&fleet, &format!("passing-{i}"), Duration::from_secs(1)));
    }
    wait_until(Duration::from_secs(5), "the 50 dropped guards leave", || fleet.stats().guards == 1);
    drop(fleet); // stops the fleet's thread, and returns
    // Alone for good: the breaker still trips, and probes on local state.
    trip(&kept);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(kept.try_acquire().expect("a local probe").state(), CircuitState::HalfOpen);
}

#[test]
fn a_fleet_rejects_bad_settings_by_name_and_never_prints_the_url() {
    let err = Fleet::builder("redis://:hunter2@127.0.0.1:6379/").timeout(Duration::ZERO).build().unwrap_err();
    assert_eq!(err.to_string(), "invalid fleet setting: timeout is 0ns; allowed: 1ms ..= 10s");
    let err = Fleet::builder("redis://127.0.0.1/")
        .timeout(Duration::from_millis(100))
        .probe_lease(Duration::from_millis(200))
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid fleet setting: probe_lease is 200ms; allowed: 400ms ..= 3600s");
    let err = Fleet::builder("http://:hunter2@host/").build().unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().starts_with("invalid Redis URL"), "{err}");
    // Redis need not be up to build: the guards start alone.
    let fleet = Fleet::builder("redis://:hunter2@127.0.0.1:1/").timeout(Duration::from_millis(20)).build().unwrap();
    let breaker = CircuitBreaker::builder("nobody-home").shared(&fleet).build();
    assert!(breaker.try_acquire().is_ok());
    assert!(!fleet.is_connected());
    assert!(!format!("{fleet:?}").contains("hunter2"));
}

#[test]
fn success_refills_never_give_the_fleet_more_than_one_bucket_of_tokens() {
    let redis = RedisServer::start();
    let (a, b) = (fleet(&redis), fleet(&redis));
    let budget = |f: &Fleet| RetryBudget::token_bucket("refills").capacity(50).shared(f).build().unwrap();
    let (spender, earner) = (budget(&a), budget(&b));
    // The spender retries: a lease goes out of the fleet's bucket.
    for _ in 0..3 {
        assert!(spender.try_withdraw(Verdict::Retry).is_some(), "a retry from the lease");
        std::thread::sleep(REFRESH);
    }
    // A thousand successes elsewhere: refills, given once a second.
    for _ in 0..1000 {
        earner.record_success(None);
    }
    let before = b.stats().round_trips;
    wait_until(Duration::from_secs(5), "the earner gave its refills", || b.stats().round_trips > before);
    let mut con = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let tokens: f64 = redis::cmd("HGET").arg("backstop:v2:{refills}:budget").arg("tokens").query(&mut con).unwrap();
    let leases: Vec<String> = redis::cmd("HVALS").arg("backstop:v2:{refills}:leases").query(&mut con).unwrap();
    let out: f64 = leases.iter().filter_map(|v| v.split(':').next()?.parse::<f64>().ok()).sum();
    assert!(tokens + out <= 50.0, "bucket {tokens} + leases out {out}: more than one bucket");
    assert!(out > 0.0, "the spender's lease is counted out");
}

#[test]
fn async_runs_through_shared_guards_on_one_thread_never_wait_on_a_stalled_redis() {
    let redis = RedisServer::start();
    let fleet = fleet(&redis);
    let breaker = breaker(&fleet, "async", Duration::from_secs(1));
    let budget = RetryBudget::token_bucket("async").capacity(50).shared(&fleet).build().unwrap();
    let policy =
        backstop::RetryPolicy::builder().max_attempts(2).backoff(Backoff::constant(Duration::ZERO)).build().unwrap();
    redis.stall(Duration::from_millis(500));
    // A current-thread runtime: a run that blocked on Redis would block every task.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let slowest = runtime.block_on(async {
        let mut slowest = Duration::ZERO;
        for i in 0..200u32 {
            let t = Instant::now();
            let _ = policy
                .retry(|| async move { if i % 3 == 0 { Err("503") } else { Ok(i) } })
                .breaker(&breaker)
                .budget(&budget)
                .await;
            slowest = slowest.max(t.elapsed());
        }
        slowest
    });
    assert!(slowest < TIMEOUT, "an async run waited {slowest:?} on a stalled Redis");
}
