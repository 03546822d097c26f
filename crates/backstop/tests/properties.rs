//! Property tests of the delay arithmetic: for any valid backoff and any
//! retry number, every delay is within its jitter's bounds and the cap, and
//! nothing panics.

use std::time::Duration;

use backstop::{Backoff, Jitter, RetryPolicy};
use proptest::prelude::*;

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![Just(Duration::ZERO), (0u64..10_000_000_000_000).prop_map(Duration::from_nanos), Just(Duration::MAX),]
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        duration().prop_map(Jitter::Additive),
        (0.0f64..=1.0).prop_map(Jitter::Proportional),
    ]
}

/// Valid backoffs of every curve: base <= cap, factor >= 1.
fn backoff() -> impl Strategy<Value = Backoff> {
    (duration(), duration(), 1.0f64..1e300, duration(), jitter(), 0..3u8).prop_map(
        |(a, b, factor, step, jitter, curve)| {
            let (base, cap) = if a <= b { (a, b) } else { (b, a) };
            let curve = match curve {
                0 => Backoff::exponential(base).factor(factor),
                1 => Backoff::linear(base).step(step),
                _ => Backoff::constant(base),
            };
            curve.max_delay(cap).jitter(jitter)
        },
    )
}

/// The bounds of one jittered delay around its nominal delay `d`.
fn bounds(b: &Backoff, d: Duration, prev: Duration) -> (Duration, Duration) {
    let cap = b.get_max_delay();
    let (lo, hi) = match b.get_jitter() {
        Jitter::None => (d, d),
        Jitter::Full => (Duration::ZERO, d),
        Jitter::Equal => (d / 2, d),
        Jitter::Decorrelated => (b.base(), prev.saturating_mul(3).max(b.base())),
        Jitter::Additive(j) => (d, d.saturating_add(j)),
        Jitter::Proportional(f) => (
            Duration::try_from_secs_f64(d.as_secs_f64() * (1.0 - f)).unwrap_or(Duration::MAX),
            Duration::try_from_secs_f64(d.as_secs_f64() * (1.0 + f)).unwrap_or(Duration::MAX),
        ),
    };
    (lo.min(cap), hi.min(cap))
}

/// Durations computed through f64 may be off by a few nanoseconds.
fn within(v: Duration, (lo, hi): (Duration, Duration)) -> bool {
    let slack = Duration::from_nanos(2).saturating_add(hi / 1_000_000_000);
    v.saturating_add(slack) >= lo && v <= hi.saturating_add(slack)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_delay_is_within_its_jitters_bounds_and_the_cap(
        b in backoff(), retry in any::<u32>(), prev in duration(), sample in 0.0f64..1.0,
    ) {
        prop_assert!(b.validate().is_ok());
        let prev = prev.min(b.get_max_delay());
        let v = b.delay_at(retry, prev, sample);
        prop_assert!(v <= b.get_max_delay());
        prop_assert!(within(v, bounds(&b, b.nominal(retry), prev)), "{v:?} not in {:?}", bounds(&b, b.nominal(retry), prev));
    }

    #[test]
    fn the_delay_stream_stays_in_bounds(b in backoff(), seed in any::<u64>()) {
        let mut prev = b.base();
        for (i, v) in b.delays(Some(seed)).take(64).enumerate() {
            prop_assert!(v <= b.get_max_delay());
            prop_assert!(within(v, bounds(&b, b.nominal(i as u32 + 1), prev)));
            prev = v;
        }
    }

    #[test]
    fn unjittered_exponential_never_decreases(
        base in duration(), cap in duration(), factor in 1.0f64..1e6, n in any::<u32>(),
    ) {
        let b = Backoff::exponential(base.min(cap)).factor(factor).max_delay(cap);
        prop_assert!(b.nominal(n) <= b.nominal(n.saturating_add(1)));
        prop_assert!(b.nominal(n) <= cap);
    }

    #[test]
    fn any_factor_or_fraction_is_accepted_or_named(factor in any::<f64>(), f in any::<f64>()) {
        let built = RetryPolicy::builder()
            .backoff(Backoff::exponential(Duration::from_secs(1)).factor(factor).jitter(Jitter::Proportional(f)))
            .build();
        match built {
            Ok(_) => prop_assert!(factor >= 1.0 && factor.is_finite() && (0.0..=1.0).contains(&f)),
            Err(e) => prop_assert!(e.field() == "backoff.factor" || e.field() == "backoff.jitter"),
        }
    }
}
