//! The exponential curve: `base · factor^n`, the workhorse of retry schedules.

use std::time::Duration;

use super::scale_saturating;

/// The nominal delay after `n` earlier retries, saturating at `cap`.
pub(super) fn nominal(base: Duration, factor: f64, n: u32, cap: Duration) -> Duration {
    // powi keeps integer powers of 2.0 exact (1 s, 2 s, 4 s, ...); an exponent
    // too large for i32 is already past any finite cap.
    let growth = match i32::try_from(n) {
        Ok(n) => factor.powi(n),
        Err(_) if factor == 1.0 => 1.0,
        Err(_) => f64::INFINITY,
    };
    scale_saturating(base, growth, cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_then_caps() {
        let cap = Duration::from_secs(30);
        let got: Vec<u64> = (0..7).map(|n| nominal(S, 2.0, n, cap).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn huge_inputs_saturate() {
        let cap = Duration::from_secs(30);
        assert_eq!(nominal(S, 2.0, u32::MAX, cap), cap);
        assert_eq!(nominal(S, 1e300, 2, cap), cap);
        assert_eq!(nominal(S, 1.0, u32::MAX, cap), S);
        assert_eq!(nominal(S, 2.0, u32::MAX, Duration::MAX), Duration::MAX);
    }

    #[test]
    fn fractional_base_is_exact_for_small_powers() {
        let half = Duration::from_millis(500);
        assert_eq!(nominal(half, 2.0, 1, Duration::MAX), S);
        assert_eq!(nominal(half, 2.0, 0, Duration::MAX), half);
    }
}
