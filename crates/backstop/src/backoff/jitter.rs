//! Randomising delays so that clients that failed together do not retry together.
//!
//! See Marc Brooker, "Exponential Backoff And Jitter" (AWS Architecture Blog,
//! 2015) for why: without jitter, every client of a failed server comes back at
//! the same instants and knocks it over again.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::scale_saturating;
use crate::error::ConfigError;

/// How a nominal delay `d` is randomised. Every result is capped at the
/// backoff's `max_delay`.
///
/// | kind | delay |
/// |---|---|
/// | `None` | `d` |
/// | `Full` | `U[0, d]` |
/// | `Equal` | `d/2 + U[0, d/2]` |
/// | `Decorrelated` | `min(cap, U[base, 3·prev])` (prev: the last delay, starting at base) |
/// | `Additive(j)` | `d + U[0, j]` (tenacity's `wait_exponential_jitter`; the presets' `+U[0, 1 s]`) |
/// | `Proportional(f)` | `d · (1 + U[-f, f])` (±25 % is `Proportional(0.25)`) |
///
/// ```
/// use std::time::Duration;
/// use backstop::{Backoff, Jitter};
///
/// let b = Backoff::constant(Duration::from_secs(4)).jitter(Jitter::Equal);
/// for d in b.delays(Some(1)).take(100) {
///     assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(4));
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Jitter {
    /// No randomness: the nominal delay exactly. Good for tests and schedules
    /// shown to people; bad for fleets.
    #[default]
    None,
    /// Uniform in `[0, d]`: the fewest total calls under contention.
    Full,
    /// Uniform in `[d/2, d]`: never retries sooner than half the nominal delay.
    Equal,
    /// Uniform in `[base, 3·prev]`, capped: each delay depends on the last one
    /// rather than on the retry number.
    Decorrelated,
    /// The nominal delay plus uniform `[0, j]`.
    Additive(Duration),
    /// The nominal delay times `1 ± f`, with `f` in `[0, 1]`.
    Proportional(f64),
}

impl Jitter {
    /// Draws the delay for nominal delay `d`, given the backoff's `base`, the
    /// previous delay `prev` and the cap, from the uniform sample `r` in `[0, 1)`.
    pub(crate) fn apply(self, d: Duration, base: Duration, prev: Duration, cap: Duration, r: f64) -> Duration {
        let jittered = match self {
            Jitter::None => d,
            Jitter::Full => scale_saturating(d, r, cap),
            Jitter::Equal => {
                let half = d / 2;
                half.saturating_add(scale_saturating(d - half, r, cap))
            }
            Jitter::Decorrelated => {
                let hi = prev.saturating_mul(3).max(base);
                base.saturating_add(scale_saturating(hi - base, r, cap))
            }
            Jitter::Additive(j) => d.saturating_add(scale_saturating(j, r, cap)),
            Jitter::Proportional(f) => scale_saturating(d, 1.0 + f * (2.0 * r - 1.0), cap),
        };
        jittered.min(cap)
    }

    /// How far past a server's hint `hint` a retry may be spread (see
    /// [`Delays::after_hint`](super::Delays::after_hint)): nothing without
    /// randomness; otherwise at least the hint again (the server's hint is
    /// the time scale of its recovery: clients told "1 s" come back over
    /// [1 s, 2 s], not all at 1 s or within a jitter of a few hundred
    /// milliseconds), or this jitter's own width for a delay that long, if
    /// wider (`Decorrelated`: 2 × the hint, `Additive(j)`: `j`).
    pub(crate) fn spread(self, hint: Duration) -> Duration {
        let own = match self {
            Jitter::None => return Duration::ZERO,
            Jitter::Full => hint,
            Jitter::Equal => hint / 2,
            Jitter::Decorrelated => hint.saturating_mul(2),
            Jitter::Additive(j) => j,
            Jitter::Proportional(f) => scale_saturating(hint, f, Duration::MAX),
        };
        if self.is_random() { own.max(hint) } else { own }
    }

    /// Whether this jitter draws random numbers at all.
    pub(crate) fn is_random(self) -> bool {
        !matches!(self, Jitter::None | Jitter::Additive(Duration::ZERO))
    }

    pub(crate) fn validate(self) -> Result<(), ConfigError> {
        match self {
            Jitter::Proportional(f) if !(0.0..=1.0).contains(&f) => Err(ConfigError::new(
                "backoff.jitter",
                format!("is Proportional({f})"),
                "a fraction in 0.0 ..= 1.0 (0.25 spreads delays by ±25 %)",
            )),
            _ => Ok(()),
        }
    }
}

/// Reads `none`, `full`, `equal`, `decorrelated`, `additive:<duration>` or
/// `proportional:<fraction>` (the form [`Display`](fmt::Display) writes).
///
/// ```
/// use std::time::Duration;
/// use backstop::Jitter;
///
/// assert_eq!("full".parse::<Jitter>(), Ok(Jitter::Full));
/// assert_eq!("additive:500ms".parse::<Jitter>(), Ok(Jitter::Additive(Duration::from_millis(500))));
/// assert_eq!(Jitter::Proportional(0.25).to_string(), "proportional:0.25");
/// assert!("wobbly".parse::<Jitter>().is_err());
/// ```
impl FromStr for Jitter {
    type Err = ConfigError;

    /// Parses the form [`Display`](fmt::Display) writes: `none`, `full`,
    /// `equal`, `decorrelated`, `additive:<duration>` (`additive:500ms`) or
    /// `proportional:<fraction>` (`proportional:0.25`). The error names the
    /// field `jitter` and lists what is allowed.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        const ALLOWED: &str = "none, full, equal, decorrelated, additive:<duration>, proportional:<fraction>";
        let (kind, arg) = match s.trim().split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s.trim(), None),
        };
        let bad = |problem: String| ConfigError::new("jitter", problem, ALLOWED);
        match (kind, arg) {
            ("none", None) => Ok(Jitter::None),
            ("full", None) => Ok(Jitter::Full),
            ("equal", None) => Ok(Jitter::Equal),
            ("decorrelated", None) => Ok(Jitter::Decorrelated),
            ("additive", Some(d)) => crate::duration::parse_duration(d)
                .map(Jitter::Additive)
                .map_err(|e| bad(format!("is {s:?}, whose duration is invalid ({e})"))),
            ("proportional", Some(f)) => f
                .trim()
                .parse::<f64>()
                .map(Jitter::Proportional)
                .map_err(|_| bad(format!("is {s:?}, whose fraction {f:?} is not a number"))),
            ("additive" | "proportional", None) => {
                let example = if kind == "additive" { "additive:1s" } else { "proportional:0.25" };
                Err(bad(format!("is {s:?}, which needs a value, like {example}")))
            }
            _ => Err(bad(format!("is {s:?}, not a kind of jitter"))),
        }
    }
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jitter::None => f.write_str("none"),
            Jitter::Full => f.write_str("full"),
            Jitter::Equal => f.write_str("equal"),
            Jitter::Decorrelated => f.write_str("decorrelated"),
            Jitter::Additive(d) => write!(f, "additive:{}", crate::duration::format_duration(*d)),
            Jitter::Proportional(x) => write!(f, "proportional:{x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_secs(30);
    const BASE: Duration = Duration::from_secs(1);

    fn at(j: Jitter, d: u64, r: f64) -> Duration {
        j.apply(Duration::from_secs(d), BASE, Duration::from_secs(d), CAP, r)
    }

    #[test]
    fn bounds_of_each_kind_at_the_extremes() {
        assert_eq!(at(Jitter::None, 4, 0.9), Duration::from_secs(4));
        assert_eq!(at(Jitter::Full, 4, 0.0), Duration::ZERO);
        assert_eq!(at(Jitter::Full, 4, 0.5), Duration::from_secs(2));
        assert_eq!(at(Jitter::Equal, 4, 0.0), Duration::from_secs(2));
        assert_eq!(at(Jitter::Equal, 4, 0.5), Duration::from_secs(3));
        assert_eq!(at(Jitter::Additive(BASE), 4, 0.5), Duration::from_millis(4500));
        assert_eq!(at(Jitter::Proportional(0.25), 4, 0.0), Duration::from_secs(3));
        assert_eq!(at(Jitter::Proportional(0.25), 4, 0.5), Duration::from_secs(4));
        assert_eq!(at(Jitter::Decorrelated, 4, 0.0), BASE);
        assert_eq!(at(Jitter::Decorrelated, 4, 0.5), Duration::from_millis(6500));
    }

    #[test]
    fn never_above_cap() {
        for j in [Jitter::Additive(Duration::MAX), Jitter::Proportional(1.0), Jitter::Decorrelated] {
            assert_eq!(at(j, 30, 0.999), CAP, "{j:?}");
        }
    }

    #[test]
    fn text_round_trips() {
        for j in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
            Jitter::Additive(Duration::from_millis(1500)),
            Jitter::Proportional(0.1),
        ] {
            assert_eq!(j.to_string().parse::<Jitter>(), Ok(j));
        }
        let err = "additive".parse::<Jitter>().unwrap_err();
        assert_eq!(err.field(), "jitter");
        assert!(err.to_string().contains("needs a value, like additive:1s"), "{err}");
        assert_eq!(
            "wobbly".parse::<Jitter>().unwrap_err().to_string(),
            "invalid retry policy: jitter is \"wobbly\", not a kind of jitter; allowed: none, full, equal, \
             decorrelated, additive:<duration>, proportional:<fraction>"
        );
        assert!("proportional:lots".parse::<Jitter>().is_err());
    }

    #[test]
    fn proportional_fraction_is_validated() {
        assert!(Jitter::Proportional(1.0).validate().is_ok());
        for f in [-0.1, 1.5, f64::NAN] {
            let err = Jitter::Proportional(f).validate().unwrap_err();
            assert_eq!(err.field(), "backoff.jitter");
        }
    }
}
