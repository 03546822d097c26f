//! A ratio retry budget shared by a fleet, against a real `redis-server`:
//! the sync script never grants more than the rule's room, whatever order
//! the workers sync in and whatever they report; its window ages and
//! survives garbage; and `Fleet`s in one process (standing for processes)
//! share one floor and one ratio. (`fleet_processes.rs` runs real worker
//! processes on a shared ratio budget too.)

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backstop::{RetryBudget, Verdict};
use backstop_redis::scripts::{RATIO_SYNC, key};
use backstop_testkit::redis::RedisServer;
use proptest::prelude::*;
use support::{fleet, retries_granted};

const TTL_MS: u64 = 60_000;
const FLOOR: f64 = 20.0;
const RATIO: f64 = 0.1;

/// What one sync returns: the grant, and the fleet's requests, retries and
/// workers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Synced {
    grant: f64,
    requests: u64,
    retries: u64,
    workers: u64,
}

/// Worker `me` reports `requests` and `retries` (its own window holding
/// `mine` requests) to the window `name` (10 s, ratio 0.1, floor 20).
fn sync(con: &mut redis::Connection, name: &str, me: &str, requests: u64, retries: i64, mine: u64) -> Synced {
    sync_with(con, name, me, [requests.to_string(), retries.to_string(), mine.to_string()], false)
}

fn sync_with(con: &mut redis::Connection, name: &str, me: &str, counts: [String; 3], leaving: bool) -> Synced {
    let [requests, retries, mine] = counts;
    let (grant, requests, retries, workers): (String, u64, u64, u64) = RATIO_SYNC
        .key(key("ratio", name))
        .key(key("grants", name))
        .arg(requests)
        .arg(retries)
        .arg(RATIO)
        .arg(FLOOR)
        .arg(10_000)
        .arg(mine)
        .arg(TTL_MS)
        .arg(10_000)
        .arg(me)
        .arg(u8::from(leaving))
        .invoke(con)
        .unwrap();
    Synced { grant: grant.parse().unwrap(), requests, retries, workers }
}

fn connect(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url()).unwrap().get_connection_with_timeout(Duration::from_secs(5)).unwrap()
}

/// One worker's step: it makes `requests` requests, spends `spend` (0..=1)
/// of what its grant lets it (the grant plus the ratio of those requests),
/// reports, and takes its new grant; or it leaves.
#[derive(Debug, Clone, Copy)]
struct Step {
    worker: usize,
    requests: u64,
    spend: f64,
    leaves: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (0..4usize, 0..60u64, 0.0..=1.0f64, prop::bool::weighted(0.1)).prop_map(|(worker, requests, spend, leaves)| Step {
        worker,
        requests,
        spend,
        leaves,
    })
}

#[test]
fn the_fleets_retries_and_grants_out_never_exceed_the_rules_room_in_any_order_of_syncs() {
    let redis = RedisServer::start();
    let con = std::cell::RefCell::new(connect(&redis));
    let case = AtomicU32::new(0);
    proptest!(ProptestConfig::with_cases(64), |(steps in prop::collection::vec(step(), 1..40))| {
        let name = format!("prop{}", case.fetch_add(1, Ordering::Relaxed));
        let con = &mut *con.borrow_mut();
        let mut grants = [0.0f64; 4];
        let (mut requests, mut retries) = (0u64, 0u64);
        for s in steps {
            let may = (grants[s.worker] + RATIO * s.requests as f64 + 1e-9).floor();
            let spent = (may * s.spend).floor() as u64;
            let mine = s.requests; // its own window: about what it reported
            let counts = [s.requests.to_string(), spent.to_string(), mine.to_string()];
            let got = sync_with(con, &name, &format!("w{}", s.worker), counts, s.leaves);
            requests += s.requests;
            retries += spent;
            prop_assert_eq!((got.requests, got.retries), (requests, retries));
            let room = FLOOR + RATIO * requests as f64 - retries as f64;
            prop_assert!(got.grant >= 0.0);
            let share = ((mine + 1) as f64 / (requests + got.workers) as f64).min(1.0);
            prop_assert!(got.grant <= room * share + 1e-9, "{got:?}: more than its share of {room}");
            grants[s.worker] = got.grant;
            if s.leaves {
                prop_assert_eq!(got.grant, 0.0);
            }
            let out: f64 = grants.iter().sum();
            prop_assert!(retries as f64 + out <= FLOOR + RATIO * requests as f64 + 1e-6,
                "{retries} retries and {out} granted out, room for {}", FLOOR + RATIO * requests as f64);
        }
    });
}

#[test]
fn a_lone_worker_is_granted_the_whole_room_and_a_second_shares_what_is_left() {
    let redis = RedisServer::start();
    let mut con = connect(&redis);
    let a = sync(&mut con, "pair", "a", 0, 0, 0);
    assert_eq!(a, Synced { grant: 20.0, requests: 0, retries: 0, workers: 1 });
    let b = sync(&mut con, "pair", "b", 0, 0, 0);
    assert_eq!((b.grant, b.workers), (0.0, 2), "a holds the whole floor until it syncs again");
    let a = sync(&mut con, "pair", "a", 0, 4, 0);
    assert_eq!((a.grant, a.retries), (8.0, 4), "half of what is left: 20 - 4 spent = 16");
    let b = sync(&mut con, "pair", "b", 100, 0, 100);
    // Room: 20 + 10 - 4 = 26; a holds 8; b's share is 101/102 of 26.
    assert_eq!(b.grant, 18.0);
}

#[test]
fn a_window_with_garbage_in_it_is_repaired_not_followed() {
    let redis = RedisServer::start();
    let mut con = connect(&redis);
    let window = key("ratio", "junk");
    for (field, value) in [("q0", "nan"), ("r1", "-inf"), ("r2", "1e400"), ("q3", "hello"), ("win", "1e17")] {
        redis.command(&["HSET", &window, field, value]);
    }
    redis.command(&["HSET", &key("grants", "junk"), "ghost", "not-a-grant"]);
    let got = sync(&mut con, "junk", "w", 10, 1, 10);
    assert_eq!((got.requests, got.retries), (10, 1), "garbage counts nothing: {got:?}");
    let got = sync_with(&mut con, "junk", "w", ["-5".into(), "nan".into(), "inf".into()], false);
    assert_eq!((got.requests, got.retries), (10, 1), "hostile reports count nothing: {got:?}");
    assert!(got.grant.is_finite() && got.grant >= 0.0);
}

#[test]
fn a_window_forgets_what_left_it_and_keeps_counting_when_the_clock_steps_back() {
    let redis = RedisServer::start();
    let mut con = connect(&redis);
    let window = key("ratio", "aging");
    sync(&mut con, "aging", "w", 50, 5, 50);
    // Move the newest slice back by 10 slices (10 s): everything counted
    // is now a window old and is forgotten at the next sync.
    let win: i64 = redis::cmd("HGET").arg(&window).arg("win").query(&mut con).unwrap();
    redis.command(&["HSET", &window, "win", &(win - 10).to_string()]);
    let got = sync(&mut con, "aging", "w", 0, 0, 0);
    assert_eq!((got.requests, got.retries), (0, 0), "a window ago");
    // A newest slice 3 slices ahead of Redis's clock (it stepped back):
    // counting goes on in it, and nothing is forgotten.
    sync(&mut con, "aging", "w", 7, 1, 7);
    redis.command(&["HSET", &window, "win", &(win + 3).to_string()]);
    let got = sync(&mut con, "aging", "w", 3, 1, 10);
    assert_eq!((got.requests, got.retries), (10, 2));
}

#[test]
fn fleets_share_one_floor_where_local_budgets_would_each_have_one() {
    let redis = RedisServer::start();
    let fleets: Vec<_> = (0..4).map(|_| fleet(&redis)).collect();
    // Floor: 2 a second over 10 s = 20 retries for the whole fleet.
    let budgets: Vec<RetryBudget> = fleets
        .iter()
        .map(|f| RetryBudget::ratio("quiet").ratio(0.1).min_per_sec(2.0).shared(f).build().unwrap())
        .collect();
    let granted = retries_granted(&budgets, Duration::from_millis(600));
    assert!(granted <= 20, "one floor for the fleet (four local budgets: 80): {granted}");
    assert!(granted >= 15, "the floor is spent, not hoarded: {granted}");
}

#[test]
fn fleets_retries_stay_within_the_ratio_of_the_fleets_requests() {
    let redis = RedisServer::start();
    let fleets: Vec<_> = (0..4).map(|_| fleet(&redis)).collect();
    let budgets: Vec<RetryBudget> = fleets
        .iter()
        .map(|f| RetryBudget::ratio("busy").ratio(0.1).min_per_sec(1.0).shared(f).build().unwrap())
        .collect();
    let (requests, granted) = (AtomicU32::new(0), AtomicU32::new(0));
    std::thread::scope(|s| {
        for (i, b) in budgets.iter().enumerate() {
            let (requests, granted) = (&requests, &granted);
            s.spawn(move || {
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(600) {
                    // Worker 0 sends most of the requests; every worker
                    // retries whenever it may.
                    for _ in 0..if i == 0 { 8 } else { 1 } {
                        b.record_request();
                        requests.fetch_add(1, Ordering::SeqCst);
                    }
                    for _ in 0..3 {
                        if b.try_withdraw(Verdict::Retry).is_some() {
                            granted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        }
    });
    let (requests, granted) = (requests.load(Ordering::SeqCst), granted.load(Ordering::SeqCst));
    let room = 10.0 + 0.1 * f64::from(requests);
    assert!(f64::from(granted) <= room, "{granted} retries for {requests} requests: room for {room}");
    assert!(f64::from(granted) >= 0.7 * room, "{granted} retries for {requests} requests: room for {room}");
}
