//! Human durations (`"500ms"`, `"1m30s"`).
//!
//! Invariants: never panics; whatever parses formats back (with
//! `format_duration`, which is exact in the largest unit dividing the value)
//! to text that parses to the same `Duration`. The property is on values,
//! not text: `"90s"` and `"1m30s"` both format as `"90s"`.
#![no_main]

use backstop::duration::format_duration;
use backstop::parse_duration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Ok(d) = parse_duration(s) {
        let text = format_duration(d);
        assert_eq!(parse_duration(&text), Ok(d), "{s:?} -> {d:?} -> {text:?}");
    }
});
