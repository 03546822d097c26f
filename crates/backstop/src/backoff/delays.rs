//! The stream of jittered delays a run sleeps, one per retry.

use std::time::Duration;

use super::Backoff;

/// An endless iterator over a [`Backoff`]'s jittered delays, made by
/// [`Backoff::delays`]. Item `k` (from 0) is the delay before retry `k + 1`.
///
/// It allocates nothing; its random generator is seeded once, from the given
/// seed or from a fresh one, and is only consulted by jitters that need it.
#[derive(Debug, Clone)]
pub struct Delays {
    backoff: Backoff,
    rng: fastrand::Rng,
    retry: u32,
    prev: Duration,
}

impl Delays {
    pub(super) fn new(backoff: Backoff, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None if backoff.jitter.is_random() => fastrand::Rng::new(),
            // A deterministic schedule never draws: skip seeding from the thread RNG.
            None => fastrand::Rng::with_seed(0),
        };
        Self { backoff, rng, retry: 0, prev: backoff.base() }
    }

    /// The wait after a server's `Retry-After`-style hint: never less than
    /// the hint (it is the earliest time to come back), spread past it by
    /// the jitter's width for a delay that long, grown like the backoff for
    /// each retry already made (×factor per retry for an exponential backoff),
    /// so that clients told the same thing do not come back together, and a
    /// crowd refused twice spreads wider; never past `limit` (the policy's
    /// `max_retry_after`) unless the hint itself is.
    pub(crate) fn after_hint(&mut self, hint: Duration, limit: Duration) -> Duration {
        let growth = self.backoff.get_factor().unwrap_or(1.0).powi(self.retry.saturating_sub(1).min(64) as i32);
        let width = self.backoff.jitter.spread(hint);
        let width = super::scale_saturating(width, growth, limit.saturating_sub(hint));
        if width.is_zero() {
            return hint;
        }
        hint.saturating_add(super::scale_saturating(width, self.rng.f64(), width))
    }

    /// The number of delays handed out so far.
    pub fn retries(&self) -> u32 {
        self.retry
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.retry = self.retry.saturating_add(1);
        let b = &self.backoff;
        let sample = if b.jitter.is_random() { self.rng.f64() } else { 0.0 };
        let delay = b.delay_at(self.retry, self.prev, sample);
        self.prev = delay;
        Some(delay)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

#[cfg(test)]
mod tests {
    use crate::backoff::{Backoff, Jitter};
    use std::time::Duration;

    #[test]
    fn same_seed_same_delays() {
        let b = Backoff::exponential(Duration::from_millis(10)).jitter(Jitter::Full);
        let a: Vec<_> = b.delays(Some(42)).take(20).collect();
        let c: Vec<_> = b.delays(Some(42)).take(20).collect();
        let d: Vec<_> = b.delays(Some(43)).take(20).collect();
        assert_eq!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn decorrelated_grows_from_previous_delay() {
        let cap = Duration::from_secs(10);
        let b = Backoff::exponential(Duration::from_millis(100)).max_delay(cap).jitter(Jitter::Decorrelated);
        let mut prev = Duration::from_millis(100);
        for d in b.delays(Some(5)).take(200) {
            assert!(d >= Duration::from_millis(100) && d <= cap.min(prev * 3).max(Duration::from_millis(100)));
            prev = d;
        }
    }
}
