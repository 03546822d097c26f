//! The linear curve: `base + step · n`, for downstreams that recover steadily.

use std::time::Duration;

/// The nominal delay after `n` earlier retries, saturating at `Duration::MAX`
/// (the caller applies the cap).
pub(super) fn nominal(base: Duration, step: Duration, n: u32) -> Duration {
    step.checked_mul(n).and_then(|grown| base.checked_add(grown)).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_step_and_saturates() {
        let ms = Duration::from_millis;
        assert_eq!(nominal(ms(100), ms(50), 0), ms(100));
        assert_eq!(nominal(ms(100), ms(50), 2), ms(200));
        assert_eq!(nominal(Duration::MAX, ms(1), 1), Duration::MAX);
        assert_eq!(nominal(ms(1), Duration::MAX, u32::MAX), Duration::MAX);
    }
}
