//! Counters through the `metrics` facade.
#![cfg(feature = "metrics")]

use std::time::Duration;

use backstop::{Backoff, ManualClock, RetryPolicy, Verdict};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

fn counter(
    snapshot: &[(CompositeKey, Option<metrics::Unit>, Option<metrics::SharedString>, DebugValue)],
    name: &str,
    labels: &[(&str, &str)],
) -> u64 {
    snapshot
        .iter()
        .filter(|(k, ..)| k.kind() == MetricKind::Counter && k.key().name() == name)
        .filter(|(k, ..)| labels.iter().all(|(lk, lv)| k.key().labels().any(|l| l.key() == *lk && l.value() == *lv)))
        .map(|(.., v)| match v {
            DebugValue::Counter(n) => *n,
            other => panic!("{other:?}"),
        })
        .sum()
}

#[test]
fn attempts_retries_and_give_ups_are_counted_by_name_and_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let clock = ManualClock::new();
    let policy =
        RetryPolicy::builder().max_attempts(3).backoff(Backoff::constant(Duration::from_secs(1))).build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        let mut left = 1;
        policy
            .retry(|| {
                if left > 0 {
                    left -= 1;
                    Err("SlowDown")
                } else {
                    Ok(())
                }
            })
            .name("upload")
            .clock(&clock)
            .call()
            .unwrap();
        let _ = policy.retry(|| Err::<(), _>("down")).name("upload").clock(&clock).call();
        let _ =
            policy.retry(|| Err::<(), _>("denied")).when(|_: &&str| Verdict::Fail).name("upload").clock(&clock).call();
    });
    let snap = snapshotter.snapshot().into_vec();
    let up = [("name", "upload")];
    assert_eq!(counter(&snap, "backstop_attempts_total", &[up[0], ("outcome", "success")]), 1);
    assert_eq!(counter(&snap, "backstop_attempts_total", &[up[0], ("outcome", "failure")]), 1 + 3 + 1);
    assert_eq!(counter(&snap, "backstop_retries_total", &up), 1 + 2);
    assert_eq!(counter(&snap, "backstop_exhausted_total", &[up[0], ("reason", "attempts")]), 1);
    assert_eq!(counter(&snap, "backstop_exhausted_total", &[up[0], ("reason", "rejected")]), 1);
}

#[test]
fn a_breaker_reports_its_state_rejections_and_transitions() {
    use backstop::breaker::BreakerConfig;
    use backstop::{CircuitBreaker, ManualClock};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let clock = ManualClock::new();
    metrics::with_local_recorder(&recorder, || {
        let b = CircuitBreaker::builder("s3")
            .config(BreakerConfig::builder().consecutive_failures(1).build().unwrap())
            .clock(&clock)
            .build();
        b.try_acquire().unwrap().failure();
        assert!(b.try_acquire().is_err());
        assert!(b.try_acquire().is_err());
    });
    let snap = snapshotter.snapshot().into_vec();
    let name = ("name", "s3");
    assert_eq!(counter(&snap, "backstop_circuit_rejected_total", &[name]), 2);
    assert_eq!(counter(&snap, "backstop_circuit_transitions_total", &[name, ("to", "open")]), 1);
    let gauge = snap
        .iter()
        .find(|(k, ..)| k.kind() == MetricKind::Gauge && k.key().name() == "backstop_circuit_state")
        .map(|(.., v)| v);
    assert_eq!(gauge, Some(&DebugValue::Gauge(1.0.into())));
}

#[test]
fn a_budget_reports_its_level_and_denials() {
    use backstop::{RetryBudget, Verdict};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let budget = RetryBudget::token_bucket("s3").capacity(10).build().unwrap();
        let _ = budget.try_withdraw(Verdict::Retry);
        let _ = budget.try_withdraw(Verdict::Retry);
        assert!(budget.try_withdraw(Verdict::Retry).is_none());
    });
    let snap = snapshotter.snapshot().into_vec();
    assert_eq!(counter(&snap, "backstop_budget_denied_total", &[("budget", "s3")]), 1);
    let level = snap
        .iter()
        .find(|(k, ..)| k.kind() == MetricKind::Gauge && k.key().name() == "backstop_budget_level")
        .map(|(.., v)| v);
    assert_eq!(level, Some(&DebugValue::Gauge(0.0.into())));
}

#[test]
fn keyed_guards_count_the_keys_they_drop_by_name() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let keyed = backstop::keyed::Keyed::builder(|key: &str| key.len()).name("origins").max_keys(10).build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..100 {
            let _ = keyed.get(&format!("https://host-{i}.example"));
        }
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let dropped = counter(&snapshot, "backstop_keyed_evictions_total", &[("name", "origins")]);
    assert_eq!(dropped, keyed.evicted());
    assert!(dropped >= 90, "{dropped}");
    assert_eq!(keyed.name(), "origins");
}
