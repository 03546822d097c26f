//! Human durations: `"500ms"`, `"30s"`, `"1m30s"`, `"1.5h"`.
//!
//! Used by policy files (the `serde` feature) and the `backstop` CLI. The
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
    reason: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: {}; write a number and a unit (ns, us, ms, s, m, h, d) like \"500ms\", \"30s\" or \"1m30s\"",
            self.input, self.reason
        )
    }
}

impl std::error::Error for DurationError {}

/// Parses a human duration such as `"500ms"` or `"1m30s"`; see the [module docs](self).
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError { input: input.chars().take(64).collect(), reason };
    let s = input.trim();
    if s.is_empty() {
        return Err(fail("it is empty"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(fail("durations cannot be negative"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, tail) = rest.split_at(num_len);
        if number.is_empty() {
            return Err(fail("expected a number"));
        }
        let tail = tail.trim_start(); // "5 s" reads like "5s"
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per_unit: u64 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" | "sec" | "secs" => 1_000_000_000,
            "m" | "min" | "mins" => 60_000_000_000,
            "h" | "hr" | "hrs" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "" => return Err(fail("a number has no unit")),
            _ => return Err(fail("unknown unit")),
        };
        let part = if number.contains('.') {
            let value: f64 = number.parse().map_err(|_| fail("malformed number"))?;
            Duration::try_from_secs_f64(value * nanos_per_unit as f64 / 1e9).map_err(|_| fail("too large"))?
        } else {
            // Whole numbers are exact: no float rounding of "1500us".
            let value: u128 = number.parse().map_err(|_| fail("too large"))?;
            let nanos = value.checked_mul(u128::from(nanos_per_unit)).ok_or_else(|| fail("too large"))?;
            let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| fail("too large"))?;
            Duration::new(secs, (nanos % 1_000_000_000) as u32)
        };
        total = total.checked_add(part).ok_or_else(|| fail("too large"))?;
        rest = tail.trim_start();
    }
    Ok(total)
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
            assert_eq!(err.reason, reason, "{text}");
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
