//! Randomising delays so that clients that failed together do not retry together.
//!
//! See Marc Brooker, "Exponential Backoff And Jitter" (AWS Architecture Blog,
//! 2015) for why: without jitter, every client of a failed server comes back at
//! the same instants and knocks it over again.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::scale_saturating;
use crate::duration::DurationError;
use crate::error::ConfigError;
use crate::rules::{self, Broken};

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

    /// The rule this jitter breaks, if any; usable in constants.
    pub(crate) const fn broken(self) -> Option<Broken> {
        match self {
            Jitter::Proportional(f) => rules::fraction(f),
            _ => None,
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
        Jitter::parse_const(s).map_err(|bad| {
            let problem = match bad {
                BadJitter::UnknownKind => format!("is {s:?}, not a kind of jitter"),
                BadJitter::NeedsValue { example } => format!("is {s:?}, which needs a value, like {example}"),
                BadJitter::Duration(reason) => {
                    let text = s.trim().split_once(':').map_or("", |(_, d)| d);
                    format!("is {s:?}, whose duration is invalid ({})", DurationError::new(text, reason))
                }
                BadJitter::Fraction => format!("is {s:?}, whose fraction is not a number like 0.25"),
            };
            ConfigError::new("jitter", problem, JITTER_ALLOWED)
        })
    }
}

const JITTER_ALLOWED: &str = "none, full, equal, decorrelated, additive:<duration>, proportional:<fraction>";

/// Why a text is not a [`Jitter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadJitter {
    UnknownKind,
    NeedsValue { example: &'static str },
    Duration(crate::duration::Reason),
    Fraction,
}

impl BadJitter {
    /// The whole message, for errors raised while compiling.
    pub(crate) const fn message(self) -> &'static str {
        macro_rules! jitter_error {
            ($problem:literal) => {
                concat!(
                    "invalid retry policy: jitter ",
                    $problem,
                    "; allowed: none, full, equal, decorrelated, additive:<duration>, proportional:<fraction>"
                )
            };
        }
        match self {
            BadJitter::UnknownKind => jitter_error!("is not a kind of jitter"),
            BadJitter::NeedsValue { .. } => jitter_error!("needs a value, like additive:1s or proportional:0.25"),
            BadJitter::Duration(_) => jitter_error!("has a duration that is not one; write it like additive:500ms"),
            BadJitter::Fraction => jitter_error!("has a fraction that is not a number like 0.25"),
        }
    }
}

impl Jitter {
    /// The text parser itself, usable in constants: `#[backstop::retry(jitter = "additive:500ms")]`
    /// reads its jitter with it while the program compiles.
    pub(crate) const fn parse_const(text: &str) -> Result<Jitter, BadJitter> {
        use crate::duration::eq;
        let s = text.trim_ascii().as_bytes();
        let mut colon = 0;
        while colon < s.len() && s[colon] != b':' {
            colon += 1;
        }
        let (kind, arg) = s.split_at(colon);
        let has_arg = !arg.is_empty();
        if !has_arg {
            if eq(kind, b"none") {
                return Ok(Jitter::None);
            } else if eq(kind, b"full") {
                return Ok(Jitter::Full);
            } else if eq(kind, b"equal") {
                return Ok(Jitter::Equal);
            } else if eq(kind, b"decorrelated") {
                return Ok(Jitter::Decorrelated);
            }
        }
        let additive = eq(kind, b"additive");
        if !additive && !eq(kind, b"proportional") {
            return Err(BadJitter::UnknownKind);
        }
        if !has_arg {
            let example = if additive { "additive:1s" } else { "proportional:0.25" };
            return Err(BadJitter::NeedsValue { example });
        }
        let arg = arg.split_at(1).1;
        if arg.trim_ascii().is_empty() {
            let example = if additive { "additive:1s" } else { "proportional:0.25" };
            return Err(BadJitter::NeedsValue { example });
        }
        if additive {
            // The bytes after "additive:" are valid UTF-8: `text` is, and ':' is one byte.
            let Ok(arg) = std::str::from_utf8(arg) else { return Err(BadJitter::UnknownKind) };
            return match crate::duration::parse_const(arg) {
                Ok(d) => Ok(Jitter::Additive(d)),
                Err(reason) => Err(BadJitter::Duration(reason)),
            };
        }
        match parse_fraction(arg.trim_ascii()) {
            Some(f) => Ok(Jitter::Proportional(f)),
            None => Err(BadJitter::Fraction),
        }
    }
}

/// A decimal such as `0.25`, `1` or `.5`, of at most 18 digits; correctly
/// rounded up to 15 digits (both parts are then exact in an `f64`, so their
/// quotient is).
const fn parse_fraction(s: &[u8]) -> Option<f64> {
    let (mut digits, mut scale, mut dots, mut i) = (0u64, 1u64, 0, 0);
    while i < s.len() {
        match s[i] {
            b'.' => dots += 1,
            b'0'..=b'9' if i - dots < 18 => {
                digits = digits * 10 + (s[i] - b'0') as u64;
                if dots == 1 {
                    scale *= 10;
                }
            }
            _ => return None,
        }
        i += 1;
    }
    if dots > 1 || s.len() == dots {
        return None;
    }
    Some(digits as f64 / scale as f64)
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
        assert_eq!(Jitter::Proportional(1.0).broken(), None);
        for f in [-0.1, 1.5, f64::NAN] {
            let err = Jitter::Proportional(f).broken().unwrap().into_error();
            assert_eq!(err.field(), "backoff.jitter");
        }
    }
}
