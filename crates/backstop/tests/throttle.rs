//! The adaptive throttle: its formula, its window, and in runs.

use std::time::Duration;

use backstop::{AdaptiveThrottle, ManualClock, RetryError, RetryPolicy, Verdict};

fn throttle(clock: &ManualClock) -> AdaptiveThrottle {
    AdaptiveThrottle::builder("adaptive_throttle").seed(3).clock(clock).build().unwrap()
}

#[test]
fn a_healthy_downstream_is_never_throttled() {
    let clock = ManualClock::new();
    let t = throttle(&clock);
    for _ in 0..10_000 {
        t.try_acquire().unwrap();
        t.record(true);
    }
    assert_eq!(t.rejection_probability(), 0.0);
    assert_eq!(t.rejected(), 0);
}

#[test]
fn the_probability_follows_the_sre_formula() {
    let clock = ManualClock::new();
    let t = throttle(&clock);
    // 10 requests, 3 accepted, K = 2: (10 - 6) / 11.
    for i in 0..10 {
        t.try_acquire().unwrap();
        t.record(i < 3);
    }
    assert!((t.rejection_probability() - 4.0 / 11.0).abs() < 1e-12);
}

#[test]
fn refusals_raise_local_rejections_and_recovery_lowers_them() {
    let clock = ManualClock::new();
    let t = throttle(&clock);
    let mut sent = 0;
    for _ in 0..1000 {
        if t.try_acquire().is_ok() {
            sent += 1;
            t.record(false);
        }
    }
    // Almost everything is rejected locally, but never everything.
    assert!(t.rejected() > 900, "{}", t.rejected());
    assert!(sent > 0);
    // The window (2 min) passes: the history expires.
    clock.advance(Duration::from_secs(121));
    assert_eq!(t.rejection_probability(), 0.0);
}

#[test]
fn bad_settings_name_their_field() {
    assert_eq!(AdaptiveThrottle::builder("adaptive_throttle").k(0.5).build().unwrap_err().field(), "k");
    assert_eq!(
        AdaptiveThrottle::builder("adaptive_throttle").window(Duration::ZERO).build().unwrap_err().field(),
        "window"
    );
}

#[test]
fn a_run_ends_when_the_throttle_rejects_locally() {
    let clock = ManualClock::new();
    let t = throttle(&clock);
    let policy = RetryPolicy::builder().max_attempts(50).build().unwrap();
    let err = policy
        .retry(|| Err::<(), _>("429"))
        .when(|_: &&str| Verdict::Throttled)
        .throttle(&t)
        .clock(&clock)
        .call()
        .unwrap_err();
    assert!(matches!(err, RetryError::Throttled { last: Some("429"), .. }), "{err}");
    assert!(err.attempts() < 50);
    assert!(err.to_string().contains("the adaptive throttle rejected it locally"));
}

#[test]
fn transient_errors_that_are_not_refusals_count_as_accepts() {
    let clock = ManualClock::new();
    let t = throttle(&clock);
    let policy = RetryPolicy::builder().max_attempts(5).build().unwrap();
    for _ in 0..20 {
        let _ = policy.retry(|| Err::<(), _>("connection reset")).throttle(&t).clock(&clock).call();
    }
    // The downstream answered (badly) every time: nothing to throttle.
    assert_eq!(t.rejection_probability(), 0.0);
}
