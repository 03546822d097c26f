//! Human durations: `"500ms"`, `"30s"`, `"1m30s"`, `"1.5h"` read, and
//! [`Seconds`] written.
//!
//! Read by policy files (the `serde` feature) and the `backstop` CLI. The
//! grammar is one or more `<number><unit>` pairs, optionally separated by
//! spaces, with units `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, `d`; a number
//! may have a fraction. `"0"` alone is zero. Anything else, negative values
//! and values past `Duration::MAX` are errors, never panics.
//!
//! ```
//! use std::time::Duration;
//! use backstop::parse_duration;
//!
//! assert_eq!(parse_duration("500ms")?, Duration::from_millis(500));
//! assert_eq!(parse_duration("1m 30s")?, Duration::from_secs(90));
//! assert_eq!(parse_duration("1.5s")?, Duration::from_millis(1500));
//! assert!(parse_duration("30").is_err()); // a unit is required
//! # Ok::<(), backstop::DurationError>(())
//! ```

use std::fmt;
use std::time::Duration;

/// A string that is not a duration, from [`parse_duration`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    reason: Reason,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}: {}; {HOW_TO_WRITE}", self.input, self.reason.text())
    }
}

impl std::error::Error for DurationError {}

const HOW_TO_WRITE: &str = "write a number and a unit (ns, us, ms, s, m, h, d) like \"500ms\", \"30s\" or \"1m30s\"";

/// Why a string is not a duration. Each reason has its whole message as a
/// `&'static str` too, for errors raised while compiling (see [`parse_const`]).
macro_rules! reasons {
    ($($name:ident => $text:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Reason { $($name,)* }

        impl Reason {
            const fn text(self) -> &'static str {
                match self { $(Reason::$name => $text,)* }
            }

            /// The whole message, without the input (which a compile error shows by pointing at it).
            pub(crate) const fn message(self) -> &'static str {
                match self {
                    $(Reason::$name => concat!(
                        "invalid duration: ", $text,
                        "; write a number and a unit (ns, us, ms, s, m, h, d) like \"500ms\", \"30s\" or \"1m30s\""
                    ),)*
                }
            }
        }
    };
}

reasons! {
    Empty => "it is empty",
    Negative => "durations cannot be negative",
    NoNumber => "expected a number",
    NoUnit => "a number has no unit",
    UnknownUnit => "unknown unit",
    Malformed => "malformed number",
    TooLarge => "too large",
}

impl DurationError {
    /// The error for `input` (its first 64 characters are kept).
    pub(crate) fn new(input: &str, reason: Reason) -> Self {
        Self { input: input.chars().take(64).collect(), reason }
    }
}

/// A duration as every backstop line prints it, in seconds: two significant
/// digits with at least one decimal (`1.0`, `2.5`, `30.0`, `0.11`, `0.048`),
/// trailing zeros past the first decimal dropped (`0.5`, not `0.50`). The log
/// lines, the errors and the `backstop` command write `in 1.0 seconds`, as
/// the seeds' `Retrying upload_to_s3 in 1.0 seconds (attempt 1/5)` does.
///
/// ```
/// use std::time::Duration;
/// use backstop::duration::Seconds;
///
/// assert_eq!(Seconds(Duration::from_secs(1)).to_string(), "1.0");
/// assert_eq!(Seconds(Duration::from_millis(1566)).to_string(), "1.6");
/// assert_eq!(Seconds(Duration::from_millis(107)).to_string(), "0.11");
/// assert_eq!(Seconds(Duration::from_millis(48)).to_string(), "0.048");
/// assert_eq!(Seconds(Duration::from_millis(500)).to_string(), "0.5");
/// assert_eq!(Seconds(Duration::from_secs(90)).to_string(), "90.0");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs_f64();
        // Decimals for two significant digits, at least one; at most 9 (nanoseconds).
        let decimals =
            if secs >= 1.0 || secs == 0.0 { 1 } else { (1 - secs.log10().floor() as i32).clamp(1, 9) as usize };
        let text = format!("{secs:.decimals$}");
        // A value that rounded up to the next power of ten (0.0996 -> "0.100") has one digit too many.
        let text = match text.find('.') {
            Some(dot) => {
                let trimmed = text.trim_end_matches('0');
                let keep = trimmed.len().max(dot + 2);
                text[..keep].to_owned()
            }
            None => text,
        };
        f.pad(&text)
    }
}

/// Parses a human duration such as `"500ms"` or `"1m30s"`; see the [module docs](self).
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    parse_const(input).map_err(|reason| DurationError::new(input, reason))
}

/// The parser itself, usable in constants: `#[backstop::retry(base = "500ms")]`
/// reads its durations with it while the program compiles.
pub(crate) const fn parse_const(input: &str) -> Result<Duration, Reason> {
    let s = input.trim_ascii().as_bytes();
    if s.is_empty() {
        return Err(Reason::Empty);
    }
    if eq(s, b"0") {
        return Ok(Duration::ZERO);
    }
    if s[0] == b'-' {
        return Err(Reason::Negative);
    }
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < s.len() {
        // <whole>[.<fraction>]
        let (mut whole, mut fraction, mut scale, mut dots, start) = (0u128, 0u128, 1u128, 0, i);
        while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'.') {
            if s[i] == b'.' {
                dots += 1;
            } else if dots == 0 {
                whole = match checked_mul_add(whole, 10, (s[i] - b'0') as u128) {
                    Some(w) => w,
                    None => return Err(Reason::TooLarge),
                };
            } else if scale < 1_000_000_000_000_000_000 {
                // Digits past the 18th of a fraction are below a nanosecond of any unit.
                fraction = fraction * 10 + (s[i] - b'0') as u128;
                scale *= 10;
            }
            i += 1;
        }
        if i == start {
            return Err(Reason::NoNumber);
        }
        if dots > 1 || i - start == dots {
            return Err(Reason::Malformed);
        }
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1; // "5 s" reads like "5s"
        }
        let unit_start = i;
        while i < s.len() && !(s[i].is_ascii_digit() || s[i] == b'.' || s[i].is_ascii_whitespace()) {
            i += 1;
        }
        let nanos_per_unit: u128 = match unit_nanos(s.split_at(unit_start).1.split_at(i - unit_start).0) {
            Ok(n) => n,
            Err(reason) => return Err(reason),
        };
        // Whole numbers are exact ("1500us"); a fraction is exact to the nanosecond, rounded down.
        let nanos = match checked_mul_add(whole, nanos_per_unit, fraction * nanos_per_unit / scale) {
            Some(n) => n,
            None => return Err(Reason::TooLarge),
        };
        let secs = nanos / 1_000_000_000;
        if secs > u64::MAX as u128 {
            return Err(Reason::TooLarge);
        }
        total = match total.checked_add(Duration::new(secs as u64, (nanos % 1_000_000_000) as u32)) {
            Some(t) => t,
            None => return Err(Reason::TooLarge),
        };
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
    }
    Ok(total)
}

/// `a · b + c`, or `None` past `u128::MAX`.
const fn checked_mul_add(a: u128, b: u128, c: u128) -> Option<u128> {
    match a.checked_mul(b) {
        Some(ab) => ab.checked_add(c),
        None => None,
    }
}

/// Nanoseconds in one `unit`.
const fn unit_nanos(unit: &[u8]) -> Result<u128, Reason> {
    const UNITS: [(&str, u128); 15] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("sec", 1_000_000_000),
        ("secs", 1_000_000_000),
        ("m", 60_000_000_000),
        ("min", 60_000_000_000),
        ("mins", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("hr", 3_600_000_000_000),
        ("hrs", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
        ("", 0),
    ];
    let mut k = 0;
    while k < UNITS.len() {
        if eq(unit, UNITS[k].0.as_bytes()) {
            return if UNITS[k].1 == 0 { Err(Reason::NoUnit) } else { Ok(UNITS[k].1) };
        }
        k += 1;
    }
    Err(Reason::UnknownUnit)
}

/// Byte-wise equality that constants can use.
pub(crate) const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Formats a duration exactly, in the largest unit that divides it
/// (`"2m"`, `"30s"`, `"1500ms"`), so [`parse_duration`] reads it back unchanged.
pub fn format_duration(d: Duration) -> String {
    const UNITS: [(u128, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    let (size, unit) = UNITS.into_iter().find(|(size, _)| nanos % size == 0).unwrap_or((1, "ns"));
    format!("{}{unit}", nanos / size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seconds_print_two_significant_digits_and_at_least_one_decimal() {
        let shown = |d: Duration| Seconds(d).to_string();
        assert_eq!(shown(Duration::ZERO), "0.0");
        assert_eq!(shown(Duration::from_nanos(1)), "0.000000001");
        assert_eq!(shown(Duration::from_micros(99_600)), "0.1");
        assert_eq!(shown(Duration::from_millis(5)), "0.005");
        assert_eq!(shown(Duration::from_millis(150)), "0.15");
        assert_eq!(shown(Duration::from_millis(9_960)), "10.0");
        assert_eq!(shown(Duration::from_millis(1_250)), "1.2");
        assert_eq!(shown(Duration::from_secs(3_600)), "3600.0");
        assert_eq!(shown(Duration::MAX).split('.').nth(1), Some("0"));
    }

    #[test]
    fn reads_every_unit() {
        let cases = [
            ("10ns", Duration::from_nanos(10)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1d", Duration::from_secs(86_400)),
            ("1m30s", Duration::from_secs(90)),
            (" 1h 2m 3s ", Duration::from_secs(3723)),
            ("0.5s", Duration::from_millis(500)),
            ("0", Duration::ZERO),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        for (text, reason) in [
            ("", "it is empty"),
            ("30", "a number has no unit"),
            ("-1s", "durations cannot be negative"),
            ("5 parsecs", "unknown unit"),
            ("1.2.3s", "malformed number"),
            ("ms", "expected a number"),
            ("1e300h", "unknown unit"),
            ("99999999999999999999999d", "too large"),
        ] {
            let err = parse_duration(text).unwrap_err();
            assert_eq!(err.reason.text(), reason, "{text}");
            assert!(err.to_string().contains("like \"500ms\""));
        }
    }

    #[test]
    fn formats_round_trip() {
        for d in ["1500ms", "250ms", "2m", "1h", "0s", "30s", "1500us", "7ns"] {
            let parsed = parse_duration(d).unwrap();
            assert_eq!(format_duration(parsed), d);
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn round_trip(secs in 0u64..u64::MAX, nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
