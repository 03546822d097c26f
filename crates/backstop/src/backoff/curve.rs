//! The growth curves of a [`Backoff`](super::Backoff), before cap and jitter:
//! exponential (`base · factor^n`, the workhorse of retry schedules), linear
//! (`base + step · n`, for downstreams that recover steadily) and constant
//! (the same delay every time: polling, tests).

use std::time::Duration;

use super::scale_saturating;

/// A growth curve: the nominal delay after `n` earlier retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Curve {
    Exponential { base: Duration, factor: f64 },
    Linear { base: Duration, step: Duration },
    Constant { delay: Duration },
}

impl Curve {
    /// The first delay: `base`, or the constant `delay`.
    pub(crate) const fn base(&self) -> Duration {
        match *self {
            Curve::Exponential { base, .. } | Curve::Linear { base, .. } => base,
            Curve::Constant { delay } => delay,
        }
    }

    /// This curve starting at `base` (the constant delay for a constant curve).
    pub(crate) const fn with_base(self, base: Duration) -> Curve {
        match self {
            Curve::Exponential { factor, .. } => Curve::Exponential { base, factor },
            Curve::Linear { step, .. } => Curve::Linear { base, step },
            Curve::Constant { .. } => Curve::Constant { delay: base },
        }
    }

    /// The nominal delay after `n` earlier retries, saturating at `cap`
    /// (the caller applies the cap to the linear and constant curves too).
    pub(crate) fn nominal(&self, n: u32, cap: Duration) -> Duration {
        match *self {
            Curve::Exponential { base, factor } => {
                // powi keeps integer powers of 2.0 exact (1 s, 2 s, 4 s, ...);
                // an exponent too large for i32 is already past any finite cap.
                let growth = match i32::try_from(n) {
                    Ok(n) => factor.powi(n),
                    Err(_) if factor == 1.0 => 1.0,
                    Err(_) => f64::INFINITY,
                };
                scale_saturating(base, growth, cap)
            }
            Curve::Linear { base, step } => {
                step.checked_mul(n).and_then(|grown| base.checked_add(grown)).unwrap_or(Duration::MAX)
            }
            Curve::Constant { delay } => delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn exponential(base: Duration, factor: f64) -> Curve {
        Curve::Exponential { base, factor }
    }

    #[test]
    fn exponential_doubles_then_caps() {
        let cap = Duration::from_secs(30);
        let got: Vec<u64> = (0..7).map(|n| exponential(S, 2.0).nominal(n, cap).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn exponential_saturates_on_huge_inputs() {
        let cap = Duration::from_secs(30);
        assert_eq!(exponential(S, 2.0).nominal(u32::MAX, cap), cap);
        assert_eq!(exponential(S, 1e300).nominal(2, cap), cap);
        assert_eq!(exponential(S, 1.0).nominal(u32::MAX, cap), S);
        assert_eq!(exponential(S, 2.0).nominal(u32::MAX, Duration::MAX), Duration::MAX);
    }

    #[test]
    fn exponential_is_exact_for_small_powers_of_a_fractional_base() {
        assert_eq!(exponential(MS(500), 2.0).nominal(1, Duration::MAX), S);
        assert_eq!(exponential(MS(500), 2.0).nominal(0, Duration::MAX), MS(500));
    }

    #[test]
    fn linear_grows_by_step_and_saturates() {
        let linear = |base, step| Curve::Linear { base, step };
        assert_eq!(linear(MS(100), MS(50)).nominal(0, Duration::MAX), MS(100));
        assert_eq!(linear(MS(100), MS(50)).nominal(2, Duration::MAX), MS(200));
        assert_eq!(linear(Duration::MAX, MS(1)).nominal(1, Duration::MAX), Duration::MAX);
        assert_eq!(linear(MS(1), Duration::MAX).nominal(u32::MAX, Duration::MAX), Duration::MAX);
    }

    #[test]
    fn constant_waits_the_same_before_every_retry() {
        let constant = Curve::Constant { delay: MS(250) };
        assert!((0..100).chain([u32::MAX]).all(|n| constant.nominal(n, Duration::MAX) == MS(250)));
    }
}
