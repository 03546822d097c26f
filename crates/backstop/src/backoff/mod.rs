//! How long to wait before each retry.
//!
//! A [`Backoff`] is a pure schedule: given the number of the retry (1 for the
//! first retry, 2 for the second, ...) it gives a *nominal* delay, and its
//! [`Jitter`] spreads that delay at random so that many clients failing
//! together do not retry together. A [`RetryPolicy`](crate::RetryPolicy) owns
//! one `Backoff`; the run loop draws the delays from it with [`Backoff::delays`].
//!
//! Three growth curves are built in:
//!
//! | constructor | nominal delay before retry `n` |
//! |---|---|
//! | [`Backoff::exponential(base)`](Backoff::exponential) | `base · factor^(n-1)` |
//! | [`Backoff::linear(base)`](Backoff::linear) | `base + step · (n-1)` |
//! | [`Backoff::constant(delay)`](Backoff::constant) | `delay` |
//!
//! Every delay, jittered or not, is at most [`max_delay`](Backoff::max_delay).
//! All arithmetic saturates: retry number `u32::MAX` or a factor of `1e300`
//! gives `max_delay`, never a panic or an overflow.
//!
//! ```
//! use std::time::Duration;
//! use backstop::{Backoff, Jitter};
//!
//! let backoff = Backoff::exponential(Duration::from_secs(1))
//!     .factor(2.0)
//!     .max_delay(Duration::from_secs(30));
//! assert_eq!(backoff.nominal(1), Duration::from_secs(1));
//! assert_eq!(backoff.nominal(3), Duration::from_secs(4));
//! assert_eq!(backoff.nominal(1_000_000), Duration::from_secs(30));
//!
//! // The same schedule with additive jitter: d + U[0, 1 s], still capped at 30 s.
//! let jittered = backoff.jitter(Jitter::Additive(Duration::from_secs(1)));
//! let first: Vec<Duration> = jittered.delays(Some(7)).take(3).collect();
//! assert!(first[0] >= Duration::from_secs(1) && first[0] <= Duration::from_secs(2));
//! ```

mod curve;
mod delays;
mod jitter;

use std::time::Duration;

pub(crate) use curve::Curve;
pub use delays::Delays;
pub use jitter::Jitter;

use crate::error::ConfigError;
use crate::rules::{self, Broken};

/// A retry delay schedule: a growth curve, a cap and a jitter.
///
/// Build one with [`Backoff::exponential`], [`Backoff::linear`] or
/// [`Backoff::constant`], then refine it with the chained setters. The setters
/// never fail; [`Backoff::validate`] (called by
/// [`RetryPolicyBuilder::build`](crate::RetryPolicyBuilder::build)) rejects
/// nonsense such as a factor below 1 or a base above the cap.
///
/// ```
/// use std::time::Duration;
/// use backstop::{Backoff, Jitter};
///
/// let backoff = Backoff::linear(Duration::from_millis(100))
///     .step(Duration::from_millis(50))
///     .max_delay(Duration::from_millis(300))
///     .jitter(Jitter::None);
/// let delays: Vec<_> = backoff.delays(None).take(5).collect();
/// assert_eq!(delays, [100, 150, 200, 250, 300].map(Duration::from_millis));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub(crate) curve: Curve,
    pub(crate) max_delay: Duration,
    pub(crate) jitter: Jitter,
}

impl std::fmt::Display for Backoff {
    /// The schedule in the config files' words: `exponential from 1s, ×2,
    /// capped at 30s, jitter additive:1s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::duration::format_duration as d;
        match self.curve {
            Curve::Exponential { base, factor } => write!(f, "exponential from {}, ×{factor}", d(base))?,
            Curve::Linear { base, step } => write!(f, "linear from {}, +{} per retry", d(base), d(step))?,
            Curve::Constant { delay } => write!(f, "constant {}", d(delay))?,
        }
        if self.max_delay != Duration::MAX {
            write!(f, ", capped at {}", d(self.max_delay))?;
        }
        write!(f, ", jitter {}", self.jitter)
    }
}

impl Backoff {
    /// A delay that multiplies by [`factor`](Self::factor) (default 2.0) after
    /// every retry: `base`, `2·base`, `4·base`, ... No cap and no jitter until
    /// you set them.
    pub const fn exponential(base: Duration) -> Self {
        Self::with_curve(Curve::Exponential { base, factor: 2.0 })
    }

    /// A delay that grows by [`step`](Self::step) (default: `base`) after every
    /// retry: `base`, `2·base`, `3·base`, ...
    pub const fn linear(base: Duration) -> Self {
        Self::with_curve(Curve::Linear { base, step: base })
    }

    /// The same delay before every retry.
    pub const fn constant(delay: Duration) -> Self {
        Self::with_curve(Curve::Constant { delay })
    }

    const fn with_curve(curve: Curve) -> Self {
        Self { curve, max_delay: Duration::MAX, jitter: Jitter::None }
    }

    /// Sets the growth factor of an exponential backoff (allowed: a finite
    /// number ≥ 1.0). Has no effect on the other curves.
    #[must_use]
    pub const fn factor(mut self, factor: f64) -> Self {
        if let Curve::Exponential { base, .. } = self.curve {
            self.curve = Curve::Exponential { base, factor };
        }
        self
    }

    /// Sets the increment of a linear backoff. Has no effect on the other curves.
    #[must_use]
    pub const fn step(mut self, step: Duration) -> Self {
        if let Curve::Linear { base, .. } = self.curve {
            self.curve = Curve::Linear { base, step };
        }
        self
    }

    /// Caps every delay, jittered or not. Defaults to no cap (`Duration::MAX`).
    #[must_use]
    pub const fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets how the nominal delay is randomised. Defaults to [`Jitter::None`].
    #[must_use]
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The first delay of the curve: `base` for exponential and linear,
    /// `delay` for constant. Decorrelated jitter never goes below it.
    pub const fn base(&self) -> Duration {
        self.curve.base()
    }

    /// The growth factor set by [`factor`](Self::factor), for an exponential backoff.
    pub const fn get_factor(&self) -> Option<f64> {
        match self.curve {
            Curve::Exponential { factor, .. } => Some(factor),
            _ => None,
        }
    }

    /// The cap set by [`max_delay`](Self::max_delay).
    pub const fn get_max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The jitter set by [`jitter`](Self::jitter).
    pub const fn get_jitter(&self) -> Jitter {
        self.jitter
    }

    /// The nominal (unjittered, capped) delay before retry number `retry`,
    /// counted from 1. `nominal(0)` is the same as `nominal(1)`.
    pub fn nominal(&self, retry: u32) -> Duration {
        let n = retry.max(1) - 1;
        self.curve.nominal(n, self.max_delay).min(self.max_delay)
    }

    /// The jittered delay before retry number `retry` when the jitter's uniform
    /// draw is `sample` (in `[0, 1)`; clamped) and the previous delay was
    /// `prev` (only [`Jitter::Decorrelated`] looks at it).
    ///
    /// This is the function [`delays`](Self::delays) calls with random
    /// samples; calling it with chosen ones gives a schedule's percentiles:
    ///
    /// ```
    /// use std::time::Duration;
    /// use backstop::{Backoff, Jitter};
    ///
    /// let b = Backoff::exponential(Duration::from_secs(1)).jitter(Jitter::Full);
    /// let median_of_third = b.delay_at(3, Duration::ZERO, 0.5);
    /// assert_eq!(median_of_third, Duration::from_secs(2));
    /// ```
    pub fn delay_at(&self, retry: u32, prev: Duration, sample: f64) -> Duration {
        let sample = if sample.is_nan() { 0.0 } else { sample.clamp(0.0, 1.0) };
        self.jitter.apply(self.nominal(retry), self.base(), prev, self.max_delay, sample)
    }

    /// An endless iterator over the jittered delays of this schedule, the
    /// first item being the delay before retry 1.
    ///
    /// With `Some(seed)` the sequence is reproducible; with `None` it draws a
    /// fresh seed. The run loop uses exactly this iterator, so what you see
    /// here is what a [`RetryPolicy`](crate::RetryPolicy) sleeps.
    pub fn delays(&self, seed: Option<u64>) -> Delays {
        Delays::new(*self, seed)
    }

    /// Checks the settings, naming the offending field and its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.broken().map_or(Ok(()), |b| Err(b.into_error()))
    }

    /// The first rule these settings break, if any; usable in constants.
    pub(crate) const fn broken(&self) -> Option<Broken> {
        if let Curve::Exponential { factor, .. } = self.curve {
            if let Some(b) = rules::factor(factor) {
                return Some(b);
            }
        }
        if let Some(b) = rules::base_and_max(self.base(), self.max_delay) {
            return Some(b);
        }
        self.jitter.broken()
    }
}

/// Multiplies a duration by a non-negative factor, saturating at `cap`.
///
/// `NaN` or infinite products (a huge factor, a huge exponent) give `cap`;
/// a zero duration stays zero whatever the factor.
pub(crate) fn scale_saturating(d: Duration, k: f64, cap: Duration) -> Duration {
    if d.is_zero() || k <= 0.0 {
        return Duration::ZERO;
    }
    let secs = d.as_secs_f64() * k;
    // NaN (0 · ∞ cannot happen here, but a NaN factor could) and anything at
    // or past the cap saturate.
    if secs.is_nan() || secs >= cap.as_secs_f64() {
        return cap;
    }
    Duration::try_from_secs_f64(secs).map_or(cap, |v| v.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_field() {
        let err = Backoff::exponential(Duration::from_secs(1)).factor(0.5).validate().unwrap_err();
        assert_eq!(err.field(), "backoff.factor");
        let err = Backoff::exponential(Duration::from_secs(1)).factor(f64::NAN).validate().unwrap_err();
        assert_eq!(err.field(), "backoff.factor");
        let err = Backoff::constant(Duration::from_secs(5)).max_delay(Duration::from_secs(1)).validate().unwrap_err();
        assert_eq!(err.field(), "backoff.base");
        assert!(err.to_string().contains("max_delay"), "{err}");
    }

    #[test]
    fn scale_saturates() {
        let cap = Duration::from_secs(30);
        assert_eq!(scale_saturating(Duration::from_secs(1), f64::INFINITY, cap), cap);
        assert_eq!(scale_saturating(Duration::from_secs(1), f64::NAN, cap), cap);
        assert_eq!(scale_saturating(Duration::ZERO, f64::INFINITY, cap), Duration::ZERO);
        assert_eq!(scale_saturating(Duration::MAX, 2.0, Duration::MAX), Duration::MAX);
        assert_eq!(scale_saturating(Duration::from_secs(3), 0.5, cap), Duration::from_millis(1500));
    }
}
