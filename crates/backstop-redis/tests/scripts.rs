//! The scripts' invariants, against a real `redis-server`: a budget's tokens
//! are never negative nor above its capacity and every token is accounted
//! for, under any sequence of takes and returns and under concurrent
//! workers; a pace grants slots on one time line at its rate, and its rate
//! stays within its bounds whatever the workers report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backstop_redis::scripts::{
    BREAKER_PROBE, BREAKER_READ, BREAKER_SET, BREAKER_TRIP, BREAKER_VERDICT, BUDGET_PUT, BUDGET_TAKE, PACE_SYNC, key,
};
use backstop_testkit::redis::RedisServer;
use proptest::prelude::*;

const TTL_MS: u64 = 60_000;

fn connect(redis: &RedisServer) -> redis::Connection {
    let client = redis::Client::open(redis.url()).unwrap();
    client.get_connection_with_timeout(Duration::from_secs(5)).unwrap()
}

/// The key of a test bucket's leases out.
fn leases(bucket: &str) -> String {
    format!("{bucket}:leases")
}

fn take(con: &mut redis::Connection, bucket: &str, asked: u64, capacity: u64, smallest: u64) -> u64 {
    let [granted, _left]: [u64; 2] = BUDGET_TAKE
        .key(bucket)
        .key(leases(bucket))
        .arg(asked)
        .arg(capacity)
        .arg(TTL_MS)
        .arg(smallest)
        .arg(0)
        .arg(0)
        .arg(0)
        .arg(60_000)
        .arg("w")
        .invoke(con)
        .unwrap();
    granted
}

/// Gives `back` lease tokens and `refills`, reporting `spent`; returns what
/// the bucket and the leases out hold together.
fn put(con: &mut redis::Connection, bucket: &str, back: u64, capacity: u64, refills: u64, spent: u64) -> u64 {
    let [together, _in_bucket]: [u64; 2] = BUDGET_PUT
        .key(bucket)
        .key(leases(bucket))
        .arg(back)
        .arg(capacity)
        .arg(TTL_MS)
        .arg(refills)
        .arg(spent)
        .arg(60_000)
        .arg("w")
        .invoke(con)
        .unwrap();
    together
}

#[derive(Debug, Clone)]
enum Op {
    /// A worker takes a lease.
    Take(u64),
    /// A worker spends tokens of its lease (and says so).
    Spend(u64),
    /// A worker returns unused lease tokens.
    Return(u64),
    /// Successes refill.
    Refill(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..40).prop_map(Op::Take),
        (0u64..40).prop_map(Op::Spend),
        (0u64..40).prop_map(Op::Return),
        (0u64..40).prop_map(Op::Refill),
    ]
}

#[test]
fn a_budget_is_never_negative_and_the_bucket_and_its_leases_never_hold_more_than_its_capacity() {
    let redis = RedisServer::start();
    let con = std::cell::RefCell::new(connect(&redis));
    let case = AtomicU64::new(0);
    proptest!(ProptestConfig::with_cases(64), |(capacity in 1u64..100, smallest in 1u64..10, ops in prop::collection::vec(op(), 1..40))| {
        let bucket = key("budget", &format!("prop-{}", case.fetch_add(1, Ordering::Relaxed)));
        let con = &mut *con.borrow_mut();
        // The model: tokens in the bucket, and tokens out on lease.
        let (mut tokens, mut out) = (capacity, 0u64);
        for op in ops {
            match op {
                Op::Take(asked) => {
                    let granted = take(con, &bucket, asked, capacity, smallest);
                    let expected = if asked.min(tokens) < smallest { 0 } else { asked.min(tokens) };
                    prop_assert_eq!(granted, expected);
                    tokens -= granted;
                    out += granted;
                }
                Op::Spend(n) => {
                    let n = n.min(out); // a worker spends only what it holds
                    out -= n;
                    prop_assert_eq!(put(con, &bucket, 0, capacity, 0, n), tokens + out);
                }
                Op::Return(n) => {
                    let n = n.min(out);
                    out -= n;
                    tokens += n;
                    prop_assert_eq!(put(con, &bucket, n, capacity, 0, 0), tokens + out);
                }
                Op::Refill(n) => {
                    tokens += n.min(capacity - tokens - out);
                    prop_assert_eq!(put(con, &bucket, 0, capacity, n, 0), tokens + out);
                }
            }
            prop_assert!(tokens + out <= capacity, "never more than one bucket of tokens");
        }
        let ttl: i64 = redis::cmd("PTTL").arg(&bucket).query(con).unwrap();
        prop_assert!(ttl > 0 && ttl <= TTL_MS as i64, "the bucket expires: {}", ttl);
    });
}

#[test]
fn a_lease_unheard_of_for_longer_than_its_worker_said_is_forgotten_and_its_room_refills() {
    let redis = RedisServer::start();
    let mut con = connect(&redis);
    let bucket = key("budget", "forget");
    let lease = |con: &mut redis::Connection, worker: &str, asked: u64, forget_ms: u64| -> [u64; 2] {
        let mut take = BUDGET_TAKE.prepare_invoke();
        take.key(&bucket).key(leases(&bucket)).arg(asked).arg(100).arg(TTL_MS).arg(1);
        take.arg(0).arg(0).arg(0).arg(forget_ms).arg(worker).invoke(con).unwrap()
    };
    let refill = |con: &mut redis::Connection, worker: &str, tokens: u64| -> u64 {
        let mut put = BUDGET_PUT.prepare_invoke();
        put.key(&bucket).key(leases(&bucket)).arg(0).arg(100).arg(TTL_MS).arg(tokens);
        put.arg(0).arg(60_000).arg(worker).invoke::<[u64; 2]>(con).unwrap()[0]
    };
    // Each worker says how long it may go unheard of: "dies" 10 ms.
    assert_eq!(lease(&mut con, "dies", 40, 10), [40, 60]);
    assert_eq!(lease(&mut con, "lives", 40, 60_000), [40, 20]);
    // Refills fill no room: the two leases are counted out.
    assert_eq!(refill(&mut con, "lives", 100), 100);
    assert_eq!(redis.command(&["HGET", &bucket, "tokens"]), "$2");
    std::thread::sleep(Duration::from_millis(20));
    // "lives" says it is alive (a take of 0): "dies", unheard of for 20 ms,
    // longer than it said, is forgotten; "lives" is not, whatever a caller
    // with a shorter time of its own says.
    assert_eq!(lease(&mut con, "lives", 0, 60_000), [0, 20]);
    assert_eq!(lease(&mut con, "hasty", 0, 1), [0, 20]);
    assert_eq!(redis.command(&["HEXISTS", &leases(&bucket), "dies"]), ":0");
    assert_eq!(redis.command(&["HEXISTS", &leases(&bucket), "lives"]), ":1");
    // The room the dead lease held refills; the living one still counts.
    assert_eq!(refill(&mut con, "lives", 100), 100);
    assert_eq!(lease(&mut con, "other", 100, 60_000)[0], 60, "100 less the living lease of 40");
}

/// Runs `work(worker, connection)` on 8 threads at once, each with its own
/// connection, and returns the sum of what they return.
fn on_eight_workers(redis: &RedisServer, work: impl Fn(u64, &mut redis::Connection) -> u64 + Sync) -> u64 {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let work = &work;
                let url = redis.url();
                scope.spawn(move || work(worker, &mut redis::Client::open(url).unwrap().get_connection().unwrap()))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

#[test]
fn eight_workers_at_once_never_take_more_than_the_bucket_holds() {
    let redis = RedisServer::start();
    let bucket = key("budget", "concurrent");
    let granted = on_eight_workers(&redis, |worker, con| {
        (0..100)
            .map(|_| {
                BUDGET_TAKE
                    .key(&bucket)
                    .key(leases(&bucket))
                    .arg(25)
                    .arg(500)
                    .arg(TTL_MS)
                    .arg(5)
                    .arg(0)
                    .arg(0)
                    .arg(0)
                    .arg(60_000)
                    .arg(format!("w{worker}"))
                    .invoke::<[u64; 2]>(con)
                    .unwrap()[0]
            })
            .sum()
    });
    assert_eq!(granted, 500, "the whole bucket, and not one token more");
    assert_eq!(redis.command(&["HGET", &bucket, "tokens"]), "$1");
}

/// One worker's report to a fleet's pace, and what it asks.
#[derive(Debug, Clone, Copy, Default)]
struct Report {
    sends: u64,
    successes: u64,
    throttled: bool,
    limit: f64,
    limit_ms: u64,
    wanted: u64,
    initial: f64,
    /// The worker's own rate (0: not pacing).
    seed: f64,
    /// How late reports may be, µs (0: 100 ms, a refresh of 50 ms).
    lag_us: u64,
}

/// The pace's settings in these tests: 1 ..= 1 000 a second, decreases at
/// most every 500 ms, a burst of 5, grants starting at most 1 s ahead.
/// Returns `[rate (milli), wait µs, granted, measured (milli)]`.
fn sync(con: &mut redis::Connection, key: &str, r: Report) -> [i64; 4] {
    let (rate, wait, granted, measured): (String, i64, i64, i64) = PACE_SYNC
        .key(key)
        .arg(r.sends)
        .arg(r.successes)
        .arg(u8::from(r.throttled))
        .arg(r.limit)
        .arg(r.limit_ms)
        .arg(r.wanted)
        .arg(1.0)
        .arg(1000.0)
        .arg(r.initial)
        .arg(500)
        .arg(5)
        .arg(1_000_000)
        .arg(TTL_MS)
        .arg(if r.lag_us == 0 { 100_000 } else { r.lag_us })
        .arg(r.seed)
        .invoke(con)
        .unwrap();
    let rate: f64 = rate.parse().unwrap();
    [(rate * 1000.0).round() as i64, wait, granted, measured]
}

/// A short lag, for the test of a refusal within it of a pace's first
/// report (the rate holds at its lowest until then).
const LAG_US: u64 = 5_000;

fn tat(con: &mut redis::Connection, key: &str) -> i64 {
    let tat: String = redis::cmd("HGET").arg(key).arg("tat").query(con).unwrap();
    tat.parse().unwrap()
}

#[test]
fn a_pace_grants_runs_of_slots_on_one_time_line_and_refuses_past_the_latest_start() {
    let redis = RedisServer::start();
    let mut con = connect(&redis);
    let pace = key("pace", "api");
    // 100 a second: slots 10 ms apart; asks of 4 slots, far faster than that.
    let ask = Report { wanted: 4, initial: 100.0, ..Report::default() };
    let [rate, wait, granted, _] = sync(&mut con, &pace, ask);
    assert_eq!((rate, wait, granted), (100_000, 0, 4), "the first run of slots starts now");
    let mut before = tat(&mut con, &pace);
    let mut refused = 0;
    for _ in 0..60 {
        let [_, wait, granted, _] = sync(&mut con, &pace, ask);
        let after = tat(&mut con, &pace);
        if granted == 0 {
            // Past the latest start (1 s): nothing reserved.
            refused += 1;
            assert_eq!(after, before, "a refused ask moved the time line");
            continue;
        }
        assert_eq!(granted, 4);
        assert!(wait <= 1_000_000, "a grant starting {wait} µs ahead");
        // GCRA: each run moves the fleet's one time line on by its slots.
        assert!(after - before >= 4 * 10_000 - 1, "the time line moved {} µs for 4 slots", after - before);
        before = after;
    }
    // 60 asks of 4 slots is 2.4 s of slots: those past 1 s ahead were refused.
    assert!(refused >= 20, "only {refused} asks refused");
}

#[test]
fn a_refusal_drops_the_fleets_rate_to_beta_of_what_the_fleet_sent_once_per_interval() {
    let redis = RedisServer::start();
    let mut con = connect(&redis);
    let pace = key("pace", "cubic");
    let [rate, _, granted, _] =
        sync(&mut con, &pace, Report { sends: 50, wanted: 3, lag_us: LAG_US, ..Report::default() });
    assert_eq!((rate, granted), (0, 0), "not pacing before a refusal: nothing is reserved");
    // Refused at once: the other workers may not have reported their sends
    // yet, so the fleet holds at its lowest rate (1/s) until they have.
    let [held, ..] = sync(&mut con, &pace, Report { sends: 50, throttled: true, lag_us: LAG_US, ..Report::default() });
    assert_eq!(held, 1_000);
    std::thread::sleep(Duration::from_micros(LAG_US + 1_000));
    let [rate, _, granted, measured] = sync(&mut con, &pace, Report { wanted: 3, lag_us: LAG_US, ..Report::default() });
    let expected = (measured as f64 * 0.7).clamp(1_000.0, 1_000_000.0);
    assert!((rate as f64 - expected).abs() <= 1.0, "rate {rate} after a refusal at {measured} (milli/s)");
    assert!(granted >= 1, "pacing: slots are reserved at once");
    // Refusals of calls sent at the old rate, within 500 ms: the same event.
    let [again, ..] = sync(&mut con, &pace, Report { throttled: true, lag_us: LAG_US, ..Report::default() });
    assert_eq!(again, rate);
    // A stated limit below the rate caps it at once.
    let [capped, ..] =
        sync(&mut con, &pace, Report { limit: 2.0, limit_ms: 60_000, lag_us: LAG_US, ..Report::default() });
    assert_eq!(capped, 2_000);
    let [grown, ..] = sync(&mut con, &pace, Report { successes: 5, lag_us: LAG_US, ..Report::default() });
    assert!(grown <= 2_000, "successes grew the rate past the stated limit: {grown}");
}

/// The fleet measures what it sends as one pacer measures its own: the
/// sends in 250 ms slices over the last 2 s, divided by the time they cover.
/// A steady 100 a second, read at any moment of the newest slice, reads
/// 100 a second (dividing by the whole 2 s would read 87.5–100).
#[test]
fn a_fleets_steady_sends_are_read_at_their_rate_at_every_phase_of_a_slice() {
    let redis = RedisServer::start();
    let mut con = connect(&redis);
    let pace = key("pace", "measure");
    for phase_ms in [0u64, 40, 100, 170, 240] {
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
        let now = secs * 1_000_000 + micros;
        // Born 20 s (80 slices) and `phase` ago: slice 80 is the newest.
        let born = now - 20_000_000 - phase_ms * 1_000;
        let mut fields = vec![("born".to_owned(), born.to_string()), ("win".to_owned(), "80".to_owned())];
        for i in 0..8 {
            // Slice 80 sits at 80 % 8 = 0 and holds `phase` of 100/s.
            let sends = if i == 0 { phase_ms / 10 } else { 25 };
            fields.push((format!("s{i}"), sends.to_string()));
        }
        let _: () = redis::cmd("DEL").arg(&pace).query(&mut con).unwrap();
        let _: () = redis::cmd("HSET").arg(&pace).arg(&fields).query(&mut con).unwrap();
        let [_, _, _, measured] = sync(&mut con, &pace, Report::default());
        assert!((measured - 100_000).abs() <= 1_000, "at {phase_ms} ms into a slice: {measured} milli-calls/s");
    }
}

/// Writes a pace's measuring state: born `age_us` ago, newest slice `win`,
/// slices `s0..s7`.
fn measuring_state(con: &mut redis::Connection, pace: &str, age_us: u64, win: u64, slices: [u64; 8]) {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(con).unwrap();
    let born = secs * 1_000_000 + micros - age_us;
    let mut fields = vec![("born".to_owned(), born.to_string()), ("win".to_owned(), win.to_string())];
    fields.extend(slices.iter().enumerate().map(|(i, n)| (format!("s{i}"), n.to_string())));
    let _: () = redis::cmd("DEL").arg(pace).query(con).unwrap();
    let _: () = redis::cmd("HSET").arg(pace).arg(&fields).query(con).unwrap();
}

/// Slices gone since the last report are emptied before the new sends are
/// counted; a Redis clock that stepped back keeps the window.
#[test]
fn a_fleets_slices_are_reused_as_time_moves_and_kept_when_the_clock_steps_back() {
    let redis = RedisServer::start();
    let mut con = connect(&redis);
    let pace = key("pace", "slices");
    // Now is 100 ms into slice 83; the last report was in slice 80. Slices
    // 81..=83 (s1, s2, s3) held counts from 2 s before: they are emptied,
    // and the 10 sends reported now go into slice 83. The window is slices
    // 76..=83: 5 × 25 + 10 sends over 1.85 s.
    measuring_state(&mut con, &pace, 83 * 250_000 + 100_000, 80, [25; 8]);
    let [.., measured] = sync(&mut con, &pace, Report { sends: 10, ..Report::default() });
    let want = 135_000.0 / 1.85;
    assert!((measured as f64 - want).abs() <= want * 0.01, "{measured} milli-calls/s, want {want:.0}");
    // The newest slice one ahead of now (the clock stepped back): the counts
    // stay; the sends go into the current slice.
    measuring_state(&mut con, &pace, 83 * 250_000 + 100_000, 84, [25; 8]);
    let [.., measured] = sync(&mut con, &pace, Report { sends: 10, ..Report::default() });
    let want = 210_000.0 / 1.85;
    assert!((measured as f64 - want).abs() <= want * 0.01, "after a step back: {measured}, want {want:.0}");
    // A garbage, fractional slice number is read as the slice it falls in.
    measuring_state(&mut con, &pace, 83 * 250_000 + 100_000, 0, [25; 8]);
    let _: () = redis::cmd("HSET").arg(&pace).arg("win").arg("80.5").query(&mut con).unwrap();
    let [.., measured] = sync(&mut con, &pace, Report { sends: 10, ..Report::default() });
    let want = 135_000.0 / 1.85;
    assert!((measured as f64 - want).abs() <= want * 0.01, "win=80.5: {measured}, want {want:.0}");
}

#[test]
fn a_pace_hash_holding_garbage_is_repaired_not_followed() {
    let redis = RedisServer::start();
    let mut con = connect(&redis);
    let pace = key("pace", "garbage");
    let ask = Report { wanted: 2, initial: 100.0, ..Report::default() };
    for (field, value) in [
        ("rate", "nan"),
        ("rate", "inf"),
        ("rate", "-5"),
        ("rate", "0"),
        ("rate", "1e308"),
        ("max", "nan"),
        ("dec", "1e300"),
        ("tat", "1e18"),
        ("tat", "nan"),
        ("win", "-inf"),
        ("win", "1e300"),
        ("s3", "nan"),
        ("s0", "-7"),
        ("born", "1e300"),
        ("ceil", "nan"),
        ("hold", "inf"),
        ("sum", "nan"),
    ] {
        let _: () = redis::cmd("DEL").arg(&pace).query(&mut con).unwrap();
        let _: () = redis::cmd("HSET").arg(&pace).arg(field).arg(value).query(&mut con).unwrap();
        let [rate, wait, granted, measured] = sync(&mut con, &pace, ask);
        // 100 a second (the initial rate, or the repaired rate within
        // bounds), and slots granted within the latest start.
        assert!((1_000..=1_000_000).contains(&rate), "{field}={value}: rate {rate}");
        assert_eq!(granted, 2, "{field}={value}: nothing granted (wait {wait} µs)");
        assert!(wait <= 1_000_000 && measured >= 0, "{field}={value}: wait {wait}, measured {measured}");
    }
}

#[test]
fn a_pace_redis_lost_carries_on_at_the_reporting_workers_rate() {
    let redis = RedisServer::start();
    let mut con = connect(&redis);
    let pace = key("pace", "lost");
    // An empty key, and a worker pacing at 133/s: the fleet paces at it,
    // rather than forget it was throttled.
    let [rate, ..] = sync(&mut con, &pace, Report { seed: 133.0, ..Report::default() });
    assert_eq!(rate, 133_000);
    // Once the fleet has a rate, a worker's own does not change it.
    let [rate, ..] = sync(&mut con, &pace, Report { seed: 500.0, ..Report::default() });
    assert_eq!(rate, 133_000);
}

/// Whatever workers report, the fleet's rate stays within its bounds, a
/// grant is never more than asked nor starts past the latest start, and
/// nothing is granted while the fleet does not pace.
#[test]
fn a_fleet_pace_stays_within_its_bounds_whatever_the_workers_report() {
    let redis = RedisServer::start();
    let con = std::cell::RefCell::new(connect(&redis));
    let case = AtomicU64::new(0);
    let report = (0u64..500, 0u64..5, any::<bool>(), prop_oneof![Just(0.0), 0.5f64..5000.0], 0u64..20);
    proptest!(ProptestConfig::with_cases(48), |(reports in prop::collection::vec(report, 1..30))| {
        let pace = key("pace", &format!("prop-{}", case.fetch_add(1, Ordering::Relaxed)));
        let con = &mut *con.borrow_mut();
        for (sends, successes, throttled, limit, wanted) in reports {
            let r = Report { sends, successes, throttled, limit, limit_ms: 1_000, wanted, ..Report::default() };
            let [rate, wait, granted, measured] = sync(con, &pace, r);
            prop_assert!(measured >= 0);
            prop_assert!(granted >= 0 && granted.unsigned_abs() <= wanted);
            prop_assert!((0..=1_000_000).contains(&wait));
            if rate == 0 {
                prop_assert_eq!(granted, 0);
            } else {
                prop_assert!((1_000..=1_000_000).contains(&rate), "rate {} outside 1 ..= 1000 /s", rate);
            }
        }
    });
}

#[test]
fn one_probe_lease_at_a_time_among_eight_workers() {
    let redis = RedisServer::start();
    let keys = [key("breaker", "s3"), key("probe", "s3")];
    let mut con = connect(&redis);
    // Open, with a period already over: the fleet is waiting for a probe.
    let _: Vec<i64> = BREAKER_TRIP.key(&keys[0]).key(&keys[1]).arg(0).arg(TTL_MS).invoke(&mut con).unwrap();
    let winners = on_eight_workers(&redis, |worker, con| {
        (0..50)
            .map(|_| -> u64 {
                BREAKER_PROBE.key(&keys[0]).key(&keys[1]).arg(format!("w{worker}")).arg(60_000).invoke(con).unwrap()
            })
            .max()
            .unwrap()
    });
    assert_eq!(winners, 1, "exactly one worker probes, however often they all ask");
}

#[derive(Debug, Clone)]
enum BreakerOp {
    Trip,
    Probe(u8),
    Verdict(u8, bool),
    Reset,
}

fn breaker_op() -> impl Strategy<Value = BreakerOp> {
    prop_oneof![
        Just(BreakerOp::Trip),
        (0u8..3).prop_map(BreakerOp::Probe),
        (0u8..3, any::<bool>()).prop_map(|(w, close)| BreakerOp::Verdict(w, close)),
        Just(BreakerOp::Reset),
    ]
}

#[test]
fn the_breaker_scripts_keep_one_probe_at_a_time_and_take_verdicts_only_from_its_holder() {
    let redis = RedisServer::start();
    let con = std::cell::RefCell::new(connect(&redis));
    let case = AtomicU64::new(0);
    // Open periods of 0 ms (over at once) so that the model needs no clock;
    // leases of a minute (none expires during a case).
    proptest!(ProptestConfig::with_cases(64), |(ops in prop::collection::vec(breaker_op(), 1..40))| {
        let name = format!("prop-{}", case.fetch_add(1, Ordering::Relaxed));
        let keys = [key("breaker", &name), key("probe", &name)];
        let con = &mut *con.borrow_mut();
        let (mut open, mut holder): (bool, Option<u8>) = (false, None);
        let mut generation = 0i64;
        for op in ops {
            match op {
                BreakerOp::Trip => {
                    let r: Vec<i64> = BREAKER_TRIP.key(&keys[0]).key(&keys[1]).arg(0).arg(TTL_MS).invoke(con).unwrap();
                    if !open {
                        open = true;
                        holder = None;
                        generation += 1;
                    }
                    prop_assert_eq!(r[0], 1);
                    prop_assert_eq!(r[2], generation);
                }
                BreakerOp::Probe(w) => {
                    let won: i64 = BREAKER_PROBE.key(&keys[0]).key(&keys[1]).arg(format!("w{w}")).arg(60_000).invoke(con).unwrap();
                    let expected = open && holder.is_none_or(|h| h == w);
                    if expected {
                        holder = Some(w);
                    }
                    prop_assert_eq!(won == 1, expected);
                }
                BreakerOp::Verdict(w, close) => {
                    let taken: i64 = BREAKER_VERDICT.key(&keys[0]).key(&keys[1]).arg(format!("w{w}")).arg(u8::from(close)).arg(0).arg(TTL_MS).invoke(con).unwrap();
                    let expected = holder == Some(w);
                    if expected {
                        open = !close;
                        holder = None;
                        generation += 1;
                    }
                    prop_assert_eq!(taken == 1, expected, "only the holder's verdict counts");
                }
                BreakerOp::Reset => {
                    let new_gen: i64 = BREAKER_SET.key(&keys[0]).key(&keys[1]).arg(0).arg(TTL_MS).invoke(con).unwrap();
                    generation += 1;
                    open = false;
                    holder = None;
                    prop_assert_eq!(new_gen, generation);
                }
            }
            let [state, _left, read_gen, probing]: [i64; 4] = BREAKER_READ.key(&keys[0]).key(&keys[1]).invoke(con).unwrap();
            prop_assert_eq!(state, if generation == 0 { -1 } else { i64::from(open) }, "-1: nothing written yet");
            prop_assert_eq!(read_gen, generation);
            prop_assert_eq!(probing == 1, holder.is_some(), "one lease at most, and only while someone probes");
            let ttl: i64 = redis::cmd("PTTL").arg(&keys[0]).query(con).unwrap();
            prop_assert!(ttl > 0 || generation == 0, "the state expires");
        }
    });
}
