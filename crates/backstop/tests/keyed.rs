//! Guards per key, through the public API: one origin's breaker never
//! refuses another's calls; settings per key; the bound on keys holds
//! through a million distinct keys while a busy key keeps its guard; idle
//! keys are dropped; concurrent first calls of a key share one guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backstop::breaker::{BreakerConfig, CircuitState};
use backstop::keyed::Keyed;
use backstop::{CircuitBreaker, Guards, ManualClock, RetryError, RetryPolicy};

fn one_attempt() -> RetryPolicy {
    RetryPolicy::builder().max_attempts(1).build().unwrap()
}

/// A breaker per origin; `https://flaky.example` trips after 2 failures,
/// the others after 5.
fn per_origin() -> Keyed<Guards> {
    Keyed::builder(|origin: &str| {
        let failures = if origin == "https://flaky.example" { 2 } else { 5 };
        let config = BreakerConfig::builder().consecutive_failures(failures).build().unwrap();
        Guards::builder().breaker(&CircuitBreaker::new(format!("api {origin}"), config)).build()
    })
    .build()
    .unwrap()
}

fn call(keyed: &Keyed<Guards>, origin: &str, ok: bool) -> Result<(), RetryError<&'static str>> {
    let guards = keyed.get(origin);
    one_attempt().retry(|| if ok { Ok(()) } else { Err("503") }).guards(&guards).call()
}

#[test]
fn one_origins_open_breaker_never_refuses_another_origins_calls() {
    let keyed = per_origin();
    // The dead origin trips its breaker after its 2 failures...
    for _ in 0..2 {
        assert!(matches!(call(&keyed, "https://flaky.example", false), Err(RetryError::Exhausted { .. })));
    }
    assert!(matches!(call(&keyed, "https://flaky.example", true), Err(RetryError::CircuitOpen { .. })));
    let flaky = keyed.get("https://flaky.example");
    assert_eq!(flaky.breaker().unwrap().state(), CircuitState::Open);
    // ...and the healthy one is never refused.
    for _ in 0..100 {
        call(&keyed, "https://api.example", true).unwrap();
    }
    assert_eq!(keyed.get("https://api.example").breaker().unwrap().state(), CircuitState::Closed);
    assert_eq!(keyed.len(), 2);
}

#[test]
fn settings_per_key_come_from_the_function_of_the_key() {
    let keyed = per_origin();
    // The healthy origin's breaker takes 5 failures to trip, not 2.
    for _ in 0..4 {
        let _ = call(&keyed, "https://api.example", false);
    }
    assert_eq!(keyed.get("https://api.example").breaker().unwrap().state(), CircuitState::Closed);
    let _ = call(&keyed, "https://api.example", false);
    assert_eq!(keyed.get("https://api.example").breaker().unwrap().state(), CircuitState::Open);
    assert_eq!(keyed.get("https://api.example").breaker().unwrap().name(), "api https://api.example");
}

#[test]
fn a_million_distinct_keys_stay_within_the_bound_and_a_busy_key_keeps_its_guard() {
    let made = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&made);
    let keyed = Keyed::builder(move |_: &str| counter.fetch_add(1, Ordering::Relaxed)).max_keys(1_000).build().unwrap();
    let busy = keyed.get("busy");
    for i in 0..1_000_000u32 {
        let _ = keyed.get(&format!("key-{i}"));
        if i % 50 == 0 {
            assert!(Arc::ptr_eq(&keyed.get("busy"), &busy), "the busy key lost its guard after {i} keys");
        }
        if i % 10_000 == 0 {
            assert!(keyed.len() <= 1_000, "{} keys held after {i}", keyed.len());
        }
    }
    assert!(keyed.len() <= keyed.max_keys() && keyed.max_keys() == 1_000);
    assert_eq!(keyed.evicted() + keyed.len() as u64, 1_000_001, "every key made is held or was dropped");
    assert_eq!(made.load(Ordering::Relaxed), 1_000_001, "the busy key was made once");
}

#[test]
fn keys_idle_for_the_idle_time_are_dropped_when_new_keys_come() {
    let clock = ManualClock::new();
    let keyed = Keyed::builder(|key: &str| key.len())
        .max_keys(100)
        .idle_after(Duration::from_secs(60))
        .clock(&clock)
        .build()
        .unwrap();
    let _ = keyed.get("idle");
    let _ = keyed.get("used");
    for _ in 0..4 {
        clock.advance(Duration::from_secs(40));
        let _ = keyed.get("used");
        let _ = keyed.get(&format!("new-{:?}", clock.elapsed()));
    }
    // 160 s without a call (dropped between 60 s and 120 s after its last,
    // at a new key): "idle" is gone; "used" was asked for every 40 s.
    assert!(!keyed.contains("idle"));
    assert!(keyed.contains("used"));
    assert!(keyed.evicted() >= 1);
    // Without new keys nothing is swept (and nothing grows).
    clock.advance(Duration::from_secs(600));
    assert!(keyed.contains("used"));
}

#[test]
fn a_key_one_thread_asks_for_again_and_again_stays_fresh_and_is_never_dropped_as_idle() {
    let clock = ManualClock::new();
    let keyed = Keyed::builder(|key: &str| key.to_owned())
        .max_keys(100)
        .idle_after(Duration::from_secs(60))
        .clock(&clock)
        .build()
        .unwrap();
    let busy = keyed.get("busy");
    let _ = keyed.get("idle");
    for round in 0..6 {
        clock.advance(Duration::from_secs(40));
        // New keys come from another thread: this thread's last key stays
        // "busy", asked for without its shard while nothing is swept.
        std::thread::scope(|s| {
            s.spawn(|| keyed.get(&format!("new-{round}")));
        });
        for _ in 0..3 {
            assert!(Arc::ptr_eq(&keyed.get("busy"), &busy), "round {round}");
        }
    }
    assert!(keyed.contains("busy"), "asked for every 40 s, through the thread's last key");
    assert!(!keyed.contains("idle"));
    // Forgotten on another thread: this thread's next call makes a new guard.
    std::thread::scope(|s| {
        s.spawn(|| assert!(keyed.forget("busy")));
    });
    assert!(!Arc::ptr_eq(&keyed.get("busy"), &busy));
}

#[test]
fn a_new_key_asked_for_again_on_its_thread_is_never_evicted_as_a_one_off() {
    for round in 0..50 {
        let keyed = Keyed::builder(|k: &str| k.to_owned()).max_keys(8).build().unwrap();
        let busy = keyed.get("busy");
        for _ in 0..3 {
            assert!(Arc::ptr_eq(&keyed.get("busy"), &busy));
        }
        // One-off keys from another thread fill the bound; "busy" is asked
        // for between each.
        for i in 0..8 {
            std::thread::scope(|s| {
                s.spawn(|| keyed.get(&format!("one-off-{i}")));
            });
            let _ = keyed.get("busy");
        }
        assert!(Arc::ptr_eq(&keyed.get("busy"), &busy), "round {round}: the busy key lost its guard");
    }
}

#[test]
fn a_threads_last_key_keeps_no_guard_alive() {
    let keyed = Keyed::builder(|k: &str| k.to_owned()).build().unwrap();
    let _ = keyed.get("gone");
    let weak = Arc::downgrade(&keyed.get("gone")); // remembered now
    assert!(keyed.forget("gone"));
    assert!(weak.upgrade().is_none(), "forgotten and unused: freed, though this thread asked for it last");
}

#[test]
fn concurrent_first_calls_of_a_key_share_one_guard() {
    let keyed = Keyed::builder(|key: &str| key.to_owned()).build().unwrap();
    for round in 0..50 {
        let key = format!("origin-{round}");
        let got: Vec<Arc<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| keyed.get(&key))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let held = keyed.get(&key);
        assert!(got.iter().all(|g| Arc::ptr_eq(g, &held)), "round {round}: callers got different guards");
    }
}

#[test]
fn the_function_may_ask_for_another_key_and_a_forgotten_key_is_made_again() {
    let keyed: Arc<std::sync::OnceLock<Keyed<String>>> = Arc::new(std::sync::OnceLock::new());
    let inner = Arc::clone(&keyed);
    let k = Keyed::builder(move |key: &str| match key.split_once('/') {
        // "bucket/prefix" shares its bucket's guard name
        Some((bucket, _)) => format!("{} (prefix)", inner.get().unwrap().get(bucket)),
        None => key.to_owned(),
    })
    .max_keys(1)
    .build()
    .unwrap();
    keyed.set(k.clone()).unwrap();
    assert_eq!(*k.get("logs/2026/"), "logs (prefix)");
    assert!(k.len() <= 1);
    let first = k.get("logs");
    assert!(k.forget("logs"));
    assert!(!k.contains("logs"));
    assert!(!Arc::ptr_eq(&first, &k.get("logs")));
}

#[test]
fn bad_settings_name_their_field() {
    let e = Keyed::builder(|_: &str| ()).max_keys(0).build().unwrap_err();
    assert_eq!(e.field(), "max_keys");
    assert!(e.to_string().contains("1 ..= 10000000"), "{e}");
    let e = Keyed::builder(|_: &str| ()).idle_after(Duration::ZERO).build().unwrap_err();
    assert_eq!(e.field(), "idle_after");
}

/// Keys hash unevenly over the shards: 9,500 keys in steady use within a
/// bound of 10,000 are all held, none made twice (a breaker per origin is
/// never silently reset below the bound).
#[test]
fn keys_in_steady_use_below_the_bound_are_never_dropped() {
    let made = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&made);
    let keyed =
        Keyed::builder(move |_: &str| counter.fetch_add(1, Ordering::Relaxed)).max_keys(10_000).build().unwrap();
    for _ in 0..5 {
        for i in 0..9_500 {
            let _ = keyed.get(&format!("https://origin-{i}.example"));
        }
    }
    assert_eq!((keyed.evicted(), keyed.len()), (0, 9_500));
    assert_eq!(made.load(Ordering::Relaxed), 9_500);
}
