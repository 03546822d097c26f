//! The constant curve: the same delay before every retry (polling, tests).

use std::time::Duration;

/// The nominal delay: always `delay`.
pub(super) fn nominal(delay: Duration) -> Duration {
    delay
}

#[cfg(test)]
mod tests {
    use crate::Backoff;
    use std::time::Duration;

    #[test]
    fn every_retry_waits_the_same() {
        let b = Backoff::constant(Duration::from_millis(250));
        assert!((1..100).all(|n| b.nominal(n) == Duration::from_millis(250)));
        assert_eq!(b.nominal(u32::MAX), Duration::from_millis(250));
    }
}
