//! Hostile uses of the fleet guards, each through the public API with a
//! real redis-server: leases that idle, leak or get refunded; probes
//! abandoned, re-granted or lost in a restart; bad keys, panicking
//! callbacks, stalls and failovers; dropped guards and fleets; names and
//! settings a user should not pass. Each was a defect found by a red-team
//! pass, and is a regression test now.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use backstop::breaker::{BreakerConfig, CircuitState, Transition};
use backstop::{Backoff, CircuitBreaker, RetryBudget, Verdict};
use backstop_redis::Fleet;
use backstop_testkit::redis::RedisServer;
use support::{REFRESH, TIMEOUT, breaker, fleet, trip, wait_until, wait_until_permit};

fn con(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url()).unwrap().get_connection().unwrap()
}

fn bucket(redis: &RedisServer, name: &str) -> (String, String) {
    let mut c = con(redis);
    let key = format!("backstop:v2:{{{name}}}:budget");
    let tokens: Option<String> = redis::cmd("HGET").arg(&key).arg("tokens").query(&mut c).unwrap();
    let leases: Vec<String> = redis::cmd("HVALS").arg(format!("backstop:v2:{{{name}}}:leases")).query(&mut c).unwrap();
    let out: f64 = leases.iter().filter_map(|v| v.split(':').next()?.parse::<f64>().ok()).sum();
    (tokens.unwrap_or_default(), out.to_string())
}

/// A healthy fleet of 8 processes sharing 100 tokens, nobody retrying: quiet processes keep at most one
/// retry's worth, within half the bucket, so the last process can still retry.
#[test]
fn quiet_processes_hold_at_most_half_the_bucket_so_every_process_can_retry() {
    let redis = RedisServer::start();
    let fleets: Vec<Fleet> = (0..8).map(|_| fleet(&redis)).collect();
    // capacity 100, retry cost 5, lease 20 (the default: twice the timeout cost)
    let budgets: Vec<RetryBudget> =
        fleets.iter().map(|f| RetryBudget::token_bucket("idle").capacity(100).shared(f).build().unwrap()).collect();
    // Every process is healthy: successes everywhere, for 3 s.
    let start = Instant::now();
    let mut granted = None;
    while start.elapsed() < Duration::from_secs(3) {
        for b in &budgets {
            b.record_success(None);
        }
        if granted.is_none() {
            granted = budgets[7].try_withdraw(Verdict::Retry);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let levels: Vec<f64> = budgets.iter().map(RetryBudget::level).collect();
    let (tokens, out) = bucket(&redis, "idle");
    assert!(
        granted.is_some(),
        "process 7's first retry in a healthy fleet was refused for 3 s; leases {levels:?}, Redis tokens={tokens} out={out}"
    );
}

/// Budgets dropped by their users give their leases back: the bucket is not drained by processes that
/// are gone.
#[test]
fn a_dropped_budget_gives_its_lease_back() {
    let redis = RedisServer::start();
    let fleet = fleet(&redis);
    let make =
        || RetryBudget::token_bucket("orphans").capacity(100).refill_per_sec(1000.0).shared(&fleet).build().unwrap();
    for _ in 0..5 {
        let b = make();
        assert!(b.level() > 0.0, "took a lease at build");
        drop(b);
        wait_until(Duration::from_secs(5), "the dropped budget leaves", || fleet.stats().guards == 0);
    }
    // 1000 tokens a second on Redis's clock: 2 s refill a 100-token bucket 20 times.
    std::thread::sleep(Duration::from_secs(2));
    let b = make();
    let granted = (0..40)
        .filter(|_| {
            let g = b.try_withdraw(Verdict::Retry).is_some();
            std::thread::sleep(Duration::from_millis(20));
            g
        })
        .count();
    let (tokens, out) = bucket(&redis, "orphans");
    assert!(granted > 0, "no retry at all from a bucket refilling 1000/s: Redis tokens={tokens} out={out}");
}

/// Redis blips (stalls): each process gives back on its return the lease it held when Redis went away.
#[test]
fn leases_held_through_redis_blips_go_back_on_the_return() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    let _reads = breaker(&f, "blips", Duration::from_secs(1)); // some traffic so a stall is noticed
    let budget = RetryBudget::token_bucket("blips").capacity(100).refill_per_sec(1000.0).shared(&f).build().unwrap();
    for i in 0..6u64 {
        redis.stall(Duration::from_millis(300));
        wait_until(Duration::from_secs(5), "the fleet sees the stall", || f.stats().fallbacks == i + 1);
        wait_until(Duration::from_secs(5), "and rejoins", || f.is_connected() && f.stats().rejoins == i + 1);
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1)); // 1000 tokens of time refill
    let granted = (0..40)
        .filter(|_| {
            let g = budget.try_withdraw(Verdict::Retry).is_some();
            std::thread::sleep(Duration::from_millis(20));
            g
        })
        .count();
    let (tokens, out) = bucket(&redis, "blips");
    assert!(granted > 0, "after 6 short stalls no retry at all: Redis tokens={tokens} out={out}");
}

/// A refund after the spend was reported: the fleet hears of it, and no token is created.
#[test]
fn a_refund_after_the_spend_was_reported_creates_no_token() {
    let redis = RedisServer::start();
    let (fa, fb) = (fleet(&redis), fleet(&redis));
    // capacity 20, cost 5, lease min(20, 20): a takes the whole bucket at build.
    let make = |f: &Fleet| RetryBudget::token_bucket("mint").capacity(20).shared(f).build().unwrap();
    let a = make(&fa);
    let b = make(&fb);
    let spent: Vec<_> = (0..2).map(|_| a.try_withdraw(Verdict::Retry).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200)); // the low lease asks for more, reporting 15 spent
    for w in spent {
        a.refund(w); // the three runs were stopped before their retries
    }
    for _ in 0..20 {
        b.record_success(None); // successes elsewhere
    }
    std::thread::sleep(Duration::from_millis(1500)); // refills are given once a second
    let mut retries = 0;
    for _ in 0..20 {
        retries += usize::from(a.try_withdraw(Verdict::Retry).is_some());
        retries += usize::from(b.try_withdraw(Verdict::Retry).is_some());
        std::thread::sleep(Duration::from_millis(30));
    }
    let (tokens, out) = bucket(&redis, "mint");
    assert!(retries <= 4, "{retries} retries of cost 5 from a 20-token bucket (Redis tokens={tokens} out={out})");
}

/// Denied retries on a dry bucket: Redis is asked again at most once a refresh, not at every denial.
#[test]
fn denied_retries_on_a_dry_bucket_cost_redis_at_most_a_round_trip_per_refresh() {
    let redis = RedisServer::start();
    let f = Fleet::builder(redis.url()).build().unwrap(); // default refresh: 200 ms
    let b = RetryBudget::token_bucket("dry").capacity(10).shared(&f).build().unwrap();
    while b.try_withdraw(Verdict::Retry).is_some() {}
    std::thread::sleep(Duration::from_millis(300));
    let before = f.stats().round_trips;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let _ = b.try_withdraw(Verdict::Retry);
        std::thread::sleep(Duration::from_micros(200));
    }
    let trips = f.stats().round_trips - before;
    assert!(trips <= 40, "{trips} Redis round trips in 2 s for one process's denied retries (refresh 200 ms)");
}

/// A probe abandoned by its process: once the lease passes to another, the first process admits no
/// probe.
#[test]
fn a_half_open_breaker_whose_lease_passed_on_admits_no_probe() {
    let redis = RedisServer::start();
    let lease = Duration::from_millis(300);
    let make = || Fleet::builder(redis.url()).refresh(REFRESH).timeout(TIMEOUT).probe_lease(lease).build().unwrap();
    let (a, b) = (make(), make());
    let open_for = Duration::from_millis(50);
    let (ba, bb) = (breaker(&a, "double", open_for), breaker(&b, "double", open_for));
    trip(&ba);
    wait_until(Duration::from_secs(5), "b follows", || bb.state() != CircuitState::Closed);
    let probe = wait_until_permit(&ba);
    probe.ignore(); // e.g. a 429: counts as nothing, frees the slot (a dropped permit does the same)
    let other = wait_until_permit(&bb); // b wins the lease once a's is over, and probes
    assert_eq!(other.state(), CircuitState::HalfOpen);
    std::thread::sleep(Duration::from_millis(500));
    let second = ba.try_acquire();
    assert!(
        second.is_err(),
        "a probes ({:?}) while b holds the fleet's probe lease and its probe is in flight",
        second.map(|p| p.state())
    );
}

/// A probe lease granted again to its holder is extended in Redis: never two probes.
#[test]
fn a_regranted_probe_lease_is_extended_in_redis() {
    let redis = RedisServer::start();
    let lease = Duration::from_millis(1000);
    let timeout = Duration::from_millis(200); // kept locally: lease - 2 × timeout = 600 ms
    let make = || Fleet::builder(redis.url()).refresh(REFRESH).timeout(timeout).probe_lease(lease).build().unwrap();
    let (a, b) = (make(), make());
    let open_for = Duration::from_millis(100);
    let (ba, bb) = (breaker(&a, "regrant", open_for), breaker(&b, "regrant", open_for));
    trip(&ba);
    wait_until(Duration::from_secs(5), "b follows", || bb.state() != CircuitState::Closed);
    std::thread::sleep(Duration::from_millis(150));
    let mut c = con(&redis);
    let pttl =
        |c: &mut redis::Connection| -> i64 { redis::cmd("PTTL").arg("backstop:v2:{regrant}:probe").query(c).unwrap() };
    assert!(ba.try_acquire().is_err(), "the first call asks for the probe");
    wait_until(Duration::from_secs(2), "a wins the lease", || pttl(&mut c) > 0);
    let t0 = Instant::now();
    // No call in a for 700 ms (past its local 600 ms); then one asks again.
    std::thread::sleep(Duration::from_millis(700));
    assert!(ba.try_acquire().is_err());
    std::thread::sleep(Duration::from_millis(60));
    let left = pttl(&mut c);
    // b asks once the lease in Redis is over
    std::thread::sleep((t0 + Duration::from_millis(1020)).saturating_duration_since(Instant::now()));
    let pb = wait_until_permit(&bb);
    let pa = ba.try_acquire();
    assert!(
        pa.is_err(),
        "two probes at once: b's ({:?}) and a's ({:?}); the re-grant left the Redis lease at {left} ms",
        pb.state(),
        pa.map(|p| p.state())
    );
}

/// A Redis restart (empty): the processes re-send their open state, so nothing closes without a probe.
#[test]
fn a_redis_restart_keeps_open_breakers_open() {
    let mut redis = RedisServer::start();
    let (fa, fb) = (fleet(&redis), fleet(&redis));
    let (ba, bb) = (breaker(&fa, "restart", Duration::from_secs(60)), breaker(&fb, "restart", Duration::from_secs(60)));
    trip(&ba);
    wait_until(Duration::from_secs(5), "b follows", || bb.state() == CircuitState::Open);
    redis.restart();
    wait_until(Duration::from_secs(5), "both rejoin", || fa.stats().rejoins == 1 && fb.stats().rejoins == 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        (ba.state(), bb.state()),
        (CircuitState::Open, CircuitState::Open),
        "60 s open periods, 1 s in: an empty Redis closed them"
    );
}

/// One guard's key of the wrong type: only that guard works alone; the fleet counts no outage.
#[test]
fn one_bad_key_takes_only_its_own_guard_local() {
    let redis = RedisServer::start();
    assert_eq!(redis.command(&["SET", "backstop:v2:{poisoned}:breaker", "garbage"]), "+OK");
    let f = Fleet::builder(redis.url())
        .refresh(REFRESH)
        .timeout(TIMEOUT)
        .reconnect_every(Duration::from_millis(100))
        .build()
        .unwrap();
    let _poisoned = breaker(&f, "poisoned", Duration::from_secs(1));
    let good = RetryBudget::token_bucket("good").capacity(10).shared(&f).build().unwrap();
    let start = Instant::now();
    let mut retries = 0;
    while start.elapsed() < Duration::from_secs(2) {
        retries += usize::from(good.try_withdraw(Verdict::Retry).is_some());
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = f.stats();
    assert!(
        stats.fallbacks <= 1 && retries <= 2,
        "{} fallbacks (a WARN each) in 2 s; {retries} retries of cost 5 from a 10-token bucket",
        stats.fallbacks
    );
}

/// A non-numeric field in a guard's state: only that guard works alone.
#[test]
fn a_non_numeric_field_takes_only_its_own_guard_local() {
    let redis = RedisServer::start();
    assert_eq!(redis.command(&["HSET", "backstop:v2:{junk}:breaker", "state", "1", "until", "soon"]), ":2");
    let f = fleet(&redis);
    let _junk = breaker(&f, "junk", Duration::from_secs(1));
    std::thread::sleep(Duration::from_secs(1));
    assert!(f.stats().fallbacks <= 1, "{:?}", f.stats());
}

/// An on_state_change callback that panics on the fleet's thread: the thread goes on, and the breaker
/// follows the fleet.
#[test]
fn a_panicking_callback_does_not_stop_the_fleets_thread() {
    let redis = RedisServer::start();
    let (fa, fb) = (fleet(&redis), fleet(&redis));
    let config = BreakerConfig::builder()
        .consecutive_failures(2)
        .open_for(Backoff::constant(Duration::from_millis(100)))
        .build();
    let ba = CircuitBreaker::builder("callback")
        .config(config.unwrap())
        .on_state_change(|e| {
            if e.cause == Transition::Shared && e.to == CircuitState::Open {
                panic!("a bug in the user's callback");
            }
        })
        .shared(&fa)
        .build();
    let bb = breaker(&fb, "callback", Duration::from_millis(100));
    trip(&bb);
    wait_until(Duration::from_secs(5), "a follows", || ba.state() != CircuitState::Closed);
    // b probes and closes the fleet's circuit.
    wait_until_permit(&bb).success();
    std::thread::sleep(Duration::from_secs(2));
    let state = ba.state();
    let connected = fa.is_connected();
    assert!(
        ba.try_acquire().is_ok(),
        "2 s after the fleet closed: a is {state:?}, is_connected() = {connected}, stats {:?}",
        fa.stats()
    );
}

/// A shared breaker dropped by its users is freed (no cycle of Arcs through its link).
#[test]
fn a_dropped_shared_breaker_is_freed() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    let token = Arc::new(());
    for _ in 0..10 {
        let t = Arc::clone(&token);
        let b = CircuitBreaker::builder("leak")
            .on_state_change(move |_| {
                let _ = &t;
            })
            .shared(&f)
            .build();
        drop(b);
    }
    wait_until(Duration::from_secs(5), "the dropped guards leave", || f.stats().guards == 0);
    drop(f);
    assert_eq!(Arc::strong_count(&token), 1, "10 dropped breakers (and their fleet) still alive");
}

/// Dropping a fleet on a stalled Redis: at most one timeout, whatever the number of budgets.
#[test]
fn dropping_a_fleet_on_a_stalled_redis_waits_at_most_one_timeout() {
    let redis = RedisServer::start();
    let timeout = Duration::from_millis(200);
    let f = Fleet::builder(redis.url()).timeout(timeout).refresh(Duration::from_secs(5)).build().unwrap();
    let budgets: Vec<RetryBudget> =
        (0..10).map(|i| RetryBudget::token_bucket(format!("drop-{i}")).shared(&f).build().unwrap()).collect();
    redis.stall(Duration::from_secs(10));
    let start = Instant::now();
    drop(f);
    let took = start.elapsed();
    drop(budgets);
    assert!(took <= timeout * 2, "drop(Fleet) blocked the caller {took:?}");
}

/// FleetBuilder's Debug output never prints the URL (it may hold a password).
#[test]
fn fleet_builder_debug_never_prints_the_url() {
    let builder = Fleet::builder("redis://:hunter2@10.0.0.5:6379/");
    let shown = format!("{builder:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

/// Building a guard on a stalled Redis waits a bounded time.
#[test]
fn building_a_guard_on_a_stalled_redis_waits_a_bounded_time() {
    let redis = RedisServer::start();
    let f = Fleet::builder(redis.url()).timeout(Duration::from_secs(2)).build().unwrap();
    let _warm = breaker(&f, "warm", Duration::from_secs(1));
    redis.stall(Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(250)); // a pass starts and blocks on Redis
    let start = Instant::now();
    let _b = breaker(&f, "late", Duration::from_secs(1));
    let took = start.elapsed();
    assert!(took <= Duration::from_millis(500), "build() blocked {took:?}");
}

/// A 4 MiB breaker name: no fallback.
#[test]
fn a_huge_breaker_name_works() {
    let redis = RedisServer::start();
    let f = fleet(&redis);
    let huge = "x".repeat(4 << 20);
    let _huge = breaker(&f, &huge, Duration::from_secs(1));
    let _small = breaker(&f, "small", Duration::from_secs(1));
    std::thread::sleep(Duration::from_secs(2));
    assert!(f.stats().fallbacks == 0, "{:?}", f.stats());
}

/// A budget_lease below the retry cost is raised to it: retries are granted.
#[test]
fn a_budget_lease_below_the_retry_cost_is_raised_to_it() {
    let redis = RedisServer::start();
    let f = Fleet::builder(redis.url()).refresh(REFRESH).timeout(TIMEOUT).budget_lease(4).build().unwrap();
    let b = RetryBudget::token_bucket("small-lease").capacity(100).shared(&f).build().unwrap();
    let granted = (0..50)
        .filter(|_| {
            let g = b.try_withdraw(Verdict::Retry).is_some();
            std::thread::sleep(Duration::from_millis(20));
            g
        })
        .count();
    assert!(granted > 0, "a 100-token fleet bucket, lease {} locally, no retry in 1 s", b.level());
}

/// The errors the WARN prints (wrong password, unknown host, refused connection) never quote the URL or
/// its password.
#[test]
fn redis_errors_never_print_the_password() {
    let redis = RedisServer::start();
    assert_eq!(redis.command(&["CONFIG", "SET", "requirepass", "right"]), "+OK");
    let url = format!("redis://:hunter2@127.0.0.1:{}/", redis.port());
    for url in [url.as_str(), "redis://bob:hunter2@no-such-host.invalid:6379/", "redis://:hunter2@127.0.0.1:1/"] {
        let err = redis::Client::open(url).unwrap().get_connection_with_timeout(Duration::from_millis(500)).err();
        let shown = format!("{}", err.unwrap());
        assert!(!shown.contains("hunter2") && !shown.contains("bob"), "{shown}");
    }
}

/// CLIENT PAUSE WRITE (as failovers do) for 3 s: one outage, not one per reconnect.
#[test]
fn a_write_pause_is_one_outage() {
    let redis = RedisServer::start();
    let f = Fleet::builder(redis.url())
        .refresh(Duration::from_millis(100))
        .timeout(TIMEOUT)
        .reconnect_every(Duration::from_millis(200))
        .build()
        .unwrap();
    let _b = breaker(&f, "failover", Duration::from_secs(1));
    assert_eq!(redis.command(&["CLIENT", "PAUSE", "3000", "WRITE"]), "+OK");
    std::thread::sleep(Duration::from_millis(3500));
    let stats = f.stats();
    assert!(stats.fallbacks <= 1, "one 3 s pause: {stats:?}");
}

fn bucket_fields(redis: &RedisServer, name: &str) -> String {
    let key = format!("backstop:v2:{{{name}}}:budget");
    let v: Vec<String> = redis::cmd("HGETALL").arg(&key).query(&mut con(redis)).unwrap();
    v.join(" ")
}

/// Twelve short Redis blips, each with a lease partly spent and not yet
/// reported: the spend is reported on the return, and the fleet's bucket
/// refills to one bucket (nothing stays counted out for good).
#[test]
fn short_blips_with_a_lease_partly_spent_lose_no_token() {
    let redis = RedisServer::start();
    let f = Fleet::builder(redis.url())
        .refresh(support::REFRESH)
        .timeout(support::TIMEOUT)
        .reconnect_every(Duration::from_millis(20))
        .budget_lease(20)
        .build()
        .unwrap();
    let _traffic = breaker(&f, "leak", Duration::from_secs(1));
    let b = RetryBudget::token_bucket("leak")
        .capacity(100)
        .retry_cost(5)
        .timeout_cost(5)
        .refill_per_sec(1000.0)
        .shared(&f)
        .build()
        .unwrap();
    for i in 0..12u64 {
        // get a full lease (20), spend 3 retries (15) without falling low: the spend is unreported
        let t = Instant::now();
        while b.level() < 15.0 && t.elapsed() < Duration::from_secs(2) {
            if b.level() <= 5.0 {
                let _ = b.try_withdraw(Verdict::Retry);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if b.level() < 15.0 {
            break; // the fleet has no lease left to give
        }
        for _ in 0..2 {
            let _ = b.try_withdraw(Verdict::Retry);
        }
        redis.stall(Duration::from_millis(300));
        wait_until(Duration::from_secs(5), "stall seen", || f.stats().fallbacks == i + 1);
        wait_until(Duration::from_secs(5), "rejoin", || f.is_connected() && f.stats().rejoins == i + 1);
        std::thread::sleep(Duration::from_millis(100));
    }
    // Quiet for 3 s with a 1000/s refill: the fleet's bucket is full again (tokens in Redis + this
    // process's lease, the only lease there is, make one bucket).
    std::thread::sleep(Duration::from_secs(3));
    let mut c = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let tokens: f64 = redis::cmd("HGET").arg("backstop:v2:{leak}:budget").arg("tokens").query(&mut c).unwrap();
    let _ = b.try_withdraw(Verdict::Retry); // a take: Redis refills by time
    std::thread::sleep(Duration::from_millis(100));
    let tokens2: f64 = redis::cmd("HGET").arg("backstop:v2:{leak}:budget").arg("tokens").query(&mut c).unwrap();
    assert!(
        tokens.max(tokens2) + b.level() >= 90.0,
        "a 100-token fleet bucket refilling 1000/s holds {tokens}/{tokens2} + lease {} after blips: {}",
        b.level(),
        bucket_fields(&redis, "leak")
    );
}
