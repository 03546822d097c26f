//! `Retry-After` parsing, on raw strings and on a `HeaderMap` of arbitrary bytes.
//!
//! Invariants: never panics; a hint, when there is one, is at most
//! `RETRY_AFTER_CEILING` (a year, where longer hints saturate); a digits-only
//! value is read exactly (or saturates); and `retry_after` on a header map
//! agrees with `parse_retry_after` on the same header text.
#![no_main]

use std::time::{Duration, SystemTime};

use backstop::http::{RETRY_AFTER_CEILING, parse_retry_after, retry_after};
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, Option<&str>, i64, &[u8], Option<&[u8]>)| {
    let (value, date, now_secs, raw_value, raw_date) = input;
    // Any instant within ±35,000 years of 1970 (SystemTime arithmetic itself
    // panics far beyond that, which is not the parser's business).
    let offset = Duration::from_secs(now_secs.unsigned_abs() % (1 << 40));
    let now = if now_secs < 0 { SystemTime::UNIX_EPOCH - offset } else { SystemTime::UNIX_EPOCH + offset };

    let got = parse_retry_after(value, date, now);
    if let Some(d) = got {
        assert!(d <= RETRY_AFTER_CEILING, "{value:?} gave {d:?}");
    }
    let trimmed = value.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let secs = trimmed.parse::<u64>().unwrap_or(u64::MAX);
        assert_eq!(got, Some(Duration::from_secs(secs).min(RETRY_AFTER_CEILING)), "{value:?}");
    }

    // The same through a header map built from arbitrary bytes.
    let Ok(v) = HeaderValue::from_bytes(raw_value) else { return };
    let mut headers = HeaderMap::new();
    headers.insert(header::RETRY_AFTER, v.clone());
    let d = raw_date.and_then(|d| HeaderValue::from_bytes(d).ok());
    if let Some(d) = &d {
        headers.insert(header::DATE, d.clone());
    }
    let got = retry_after(&headers, now);
    if let Some(hint) = got {
        assert!(hint <= RETRY_AFTER_CEILING);
    }
    let expected =
        v.to_str().ok().and_then(|text| parse_retry_after(text, d.as_ref().and_then(|d| d.to_str().ok()), now));
    assert_eq!(got, expected);
});
