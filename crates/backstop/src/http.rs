//! HTTP semantics for classifiers (the `http` feature): which statuses are
//! worth a retry, what a server's `Retry-After` says, which methods are safe
//! to send twice.
//!
//! These depend only on the `http` crate, so any client can use them; the
//! `backstop-http` crate builds reqwest and tower integrations on them.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use backstop::Verdict;
//! use backstop::http::{classify_status, retry_after};
//! use http::{HeaderMap, HeaderValue, StatusCode};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("retry-after", HeaderValue::from_static("7"));
//! assert_eq!(classify_status(StatusCode::TOO_MANY_REQUESTS, &headers), Verdict::RetryAfter(Duration::from_secs(7)));
//! assert_eq!(classify_status(StatusCode::NOT_FOUND, &headers), Verdict::Fail);
//! assert_eq!(retry_after(&headers, SystemTime::now()), Some(Duration::from_secs(7)));
//! ```

use std::time::{Duration, SystemTime};

use http::header::{DATE, RETRY_AFTER};
use http::{HeaderMap, Method, StatusCode};

use crate::verdict::Verdict;

/// The longest hint [`retry_after`] returns: a year. Longer ones saturate
/// here rather than overflow; a policy's
/// [`max_retry_after`](crate::RetryPolicy::max_retry_after) (60 s by default)
/// then ends the run and keeps the hint.
pub const RETRY_AFTER_CEILING: Duration = crate::verdict::HINT_CEILING;

/// The verdict for a response status, with its headers for a `Retry-After`:
///
/// | status | verdict |
/// |---|---|
/// | 408 Request Timeout | `Timeout` |
/// | 429 Too Many Requests | `RetryAfter(hint)`, or `Throttled` without a hint |
/// | 503 Service Unavailable | `RetryAfter(hint)`, or `Retry` without a hint |
/// | 500, 502, 504 and other 5xx | `Retry` (a hint, if any, is honoured) |
/// | 501 Not Implemented, 505 HTTP Version Not Supported | `Fail`: asking again will not help |
/// | other 4xx | `Fail` |
/// | 1xx, 2xx, 3xx | `Fail`: not an error, nothing to retry |
pub fn classify_status(status: StatusCode, headers: &HeaderMap) -> Verdict {
    let hint = || retry_after(headers, SystemTime::now());
    match status.as_u16() {
        408 => Verdict::Timeout,
        429 => hint().map_or(Verdict::Throttled, Verdict::RetryAfter),
        501 | 505 => Verdict::Fail,
        500..=599 => hint().map_or(Verdict::Retry, Verdict::RetryAfter),
        _ => Verdict::Fail,
    }
}

/// Whether a status is worth another try (the non-`Fail` rows of [`classify_status`]).
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500..=599) && !matches!(status.as_u16(), 501 | 505)
}

/// The wait a server asked for in its `Retry-After` header (RFC 9110 §10.2.3),
/// in either form:
///
/// - delay-seconds (`Retry-After: 120`): that many seconds;
/// - an HTTP-date (`Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`): the time
///   from the response's own `Date` header to it, so a skewed local clock does
///   not distort the wait; without a `Date` header, from `now`.
///
/// Garbage, negative numbers, dates in the past and headers that are not
/// ASCII give `None` (the caller falls back to its backoff). Huge values
/// saturate at [`RETRY_AFTER_CEILING`]; nothing overflows or panics.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    let date = headers.get(DATE).and_then(|d| d.to_str().ok());
    parse_retry_after(value, date, now)
}

/// [`retry_after`] on the raw header values: `value` of `Retry-After`, and the
/// response's `Date` if it had one.
pub fn parse_retry_after(value: &str, date: Option<&str>, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: delay-seconds. Too many digits for u64 is still "a lot".
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(RETRY_AFTER_CEILING));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let base = date.and_then(|d| httpdate::parse_http_date(d.trim()).ok()).unwrap_or(now);
    let wait = at.duration_since(base).ok()?; // in the past: no hint
    Some(wait.min(RETRY_AFTER_CEILING))
}

/// What a server said of its rate limit: `remaining` requests allowed in
/// the next `reset`. Read by [`rate_limit`]; a [`Pacer`](crate::Pacer) takes
/// it through [`observe_limit`](crate::Pacer::observe_limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests left in the current window.
    pub remaining: u64,
    /// Time until the window resets (at most a day).
    pub reset: Duration,
}

/// The longest window [`rate_limit`] accepts: a day. Longer resets are
/// ignored as hostile or broken.
const RATE_LIMIT_MAX_RESET: Duration = Duration::from_secs(24 * 3600);

/// The rate limit a response states, from the first of these that parses:
///
/// | header | example |
/// |---|---|
/// | `RateLimit` (IETF httpapi draft, structured) | `"default";r=50;t=30` |
/// | `RateLimit` (earlier drafts) | `limit=100, remaining=50, reset=30` |
/// | `RateLimit-Remaining` + `RateLimit-Reset` | `50` + `30` |
/// | `X-RateLimit-Remaining` + `X-RateLimit-Reset` | `50` + `30`, or a Unix time for the reset |
/// | `RateLimit-Policy` alone (quota per window) | `100;w=60`, `"default";q=100;w=60` |
///
/// Values that do not parse, resets over a day and Unix times in the past
/// give `None`; nothing panics.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use backstop::http::{rate_limit, RateLimit};
/// use http::{HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-remaining", HeaderValue::from_static("5"));
/// headers.insert("x-ratelimit-reset", HeaderValue::from_static("10"));
/// assert_eq!(rate_limit(&headers, SystemTime::now()), Some(RateLimit { remaining: 5, reset: Duration::from_secs(10) }));
/// ```
pub fn rate_limit(headers: &HeaderMap, now: SystemTime) -> Option<RateLimit> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let checked =
        |remaining: u64, reset: Duration| (reset <= RATE_LIMIT_MAX_RESET).then_some(RateLimit { remaining, reset });
    if let Some(value) = text("ratelimit") {
        let remaining = param(value, &["r", "remaining"]);
        let reset = param(value, &["t", "reset"]);
        if let (Some(r), Some(t)) = (remaining, reset) {
            return checked(r, Duration::from_secs(t));
        }
    }
    for (remaining, reset) in
        [("ratelimit-remaining", "ratelimit-reset"), ("x-ratelimit-remaining", "x-ratelimit-reset")]
    {
        let (Some(r), Some(t)) = (text(remaining), text(reset)) else { continue };
        let (Ok(r), Ok(t)) = (r.trim().parse::<u64>(), t.trim().parse::<u64>()) else { continue };
        // Some servers send the reset as a Unix time, not a delay.
        let reset = if t > 1_000_000_000 {
            let at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(t))?;
            at.duration_since(now).ok()?
        } else {
            Duration::from_secs(t)
        };
        return checked(r, reset);
    }
    let policy = text("ratelimit-policy")?;
    let quota = param(policy, &["q"]).or_else(|| leading_number(policy))?;
    checked(quota, Duration::from_secs(param(policy, &["w"])?))
}

/// The number after `key=` for the first of `keys` found among the `;`/`,`
/// separated parameters of `value`.
fn param(value: &str, keys: &[&str]) -> Option<u64> {
    value.split([';', ',']).find_map(|part| {
        let (k, v) = part.split_once('=')?;
        keys.contains(&k.trim()).then(|| v.trim().trim_matches('"').parse().ok()).flatten()
    })
}

/// The number a policy such as `100;w=60` starts with.
fn leading_number(value: &str) -> Option<u64> {
    value.split([';', ',']).next()?.trim().parse().ok()
}

/// Whether a request with this method may be sent twice with the effect of
/// once (RFC 9110 §9.2.2): GET, HEAD, OPTIONS, TRACE, PUT, DELETE. POST and
/// PATCH are not, unless the server honours an `Idempotency-Key`.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}

/// The header that makes a request that is not idempotent safe to send
/// again, when the server honours it (the IETF draft
/// `draft-ietf-httpapi-idempotency-key-header`; Stripe's, PayPal's).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Whether a request may be sent again once it may have reached the server:
/// its method is idempotent ([`is_idempotent`]), or it carries an
/// [`IDEMPOTENCY_KEY`]. The rule every retry and hedge of an HTTP request
/// follows in backstop (the middleware, the layer, the Python package).
///
/// ```
/// use backstop::http::{may_send_twice, IDEMPOTENCY_KEY};
/// use http::{HeaderMap, Method};
///
/// let mut headers = HeaderMap::new();
/// assert!(!may_send_twice(&Method::POST, &headers));
/// headers.insert(IDEMPOTENCY_KEY, "order-42".parse().unwrap());
/// assert!(may_send_twice(&Method::POST, &headers));
/// assert!(may_send_twice(&Method::GET, &HeaderMap::new()));
/// ```
pub fn may_send_twice(method: &Method, headers: &HeaderMap) -> bool {
    is_idempotent(method) || headers.contains_key(IDEMPOTENCY_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn rate_limit_headers_in_every_common_form() {
        let rl = |r, t| Some(RateLimit { remaining: r, reset: Duration::from_secs(t) });
        let now = at(1_800_000_000);
        assert_eq!(rate_limit(&headers(&[("ratelimit", "\"default\";r=50;t=30")]), now), rl(50, 30));
        assert_eq!(rate_limit(&headers(&[("ratelimit", "limit=100, remaining=5, reset=9")]), now), rl(5, 9));
        let split = headers(&[("ratelimit-remaining", "7"), ("ratelimit-reset", "3")]);
        assert_eq!(rate_limit(&split, now), rl(7, 3));
        let epoch = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1800000012")]);
        assert_eq!(rate_limit(&epoch, now), rl(0, 12));
        assert_eq!(rate_limit(&headers(&[("ratelimit-policy", "100;w=60")]), now), rl(100, 60));
        // A reset of hours is accepted, up to a day.
        let hours = headers(&[("x-ratelimit-remaining", "5000"), ("x-ratelimit-reset", "7200")]);
        assert_eq!(rate_limit(&hours, now), rl(5000, 7200));
        let a_day = headers(&[("ratelimit-remaining", "1"), ("ratelimit-reset", "86400")]);
        assert_eq!(rate_limit(&a_day, now), rl(1, 86400));
        assert_eq!(rate_limit(&headers(&[("ratelimit-policy", "\"burst\";q=10;w=1")]), now), rl(10, 1));
        // Hostile or broken: ignored.
        for bad in [
            headers(&[("x-ratelimit-remaining", "-1"), ("x-ratelimit-reset", "5")]),
            headers(&[("x-ratelimit-remaining", "5"), ("x-ratelimit-reset", "99999999")]),
            headers(&[("x-ratelimit-remaining", "5"), ("x-ratelimit-reset", "1000000001")]),
            headers(&[("x-ratelimit-remaining", "5"), ("x-ratelimit-reset", "18446744073709551615")]),
            headers(&[("ratelimit", "r=;t=x")]),
            headers(&[("ratelimit-policy", "w=60")]),
            HeaderMap::new(),
        ] {
            assert_eq!(rate_limit(&bad, now), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn rate_limit_never_panics(a in ".{0,40}", b in ".{0,20}", c in "[0-9]{0,25}") {
            for name in ["ratelimit", "ratelimit-policy", "x-ratelimit-reset", "x-ratelimit-remaining"] {
                if let (Ok(va), Ok(vb), Ok(vc)) = (HeaderValue::from_str(&a), HeaderValue::from_str(&b), HeaderValue::from_str(&c)) {
                    let mut h = HeaderMap::new();
                    h.insert(name, va);
                    h.insert("x-ratelimit-remaining", vc.clone());
                    h.insert("ratelimit-reset", vb);
                    // Digits where a reset is read: huge Unix times must not overflow.
                    h.insert("x-ratelimit-reset", vc.clone());
                    h.insert("ratelimit-remaining", vc);
                    let _ = rate_limit(&h, at(1_800_000_000));
                }
            }
        }
    }

    #[test]
    fn the_status_table() {
        let none = HeaderMap::new();
        let hinted = headers(&[("retry-after", "3")]);
        let v = |code: u16, h: &HeaderMap| classify_status(StatusCode::from_u16(code).unwrap(), h);
        assert_eq!(v(408, &none), Verdict::Timeout);
        assert_eq!(v(429, &none), Verdict::Throttled);
        assert_eq!(v(429, &hinted), Verdict::RetryAfter(Duration::from_secs(3)));
        assert_eq!(v(503, &none), Verdict::Retry);
        assert_eq!(v(503, &hinted), Verdict::RetryAfter(Duration::from_secs(3)));
        for code in [500, 502, 504, 599] {
            assert_eq!(v(code, &none), Verdict::Retry, "{code}");
            assert!(is_retryable_status(StatusCode::from_u16(code).unwrap()));
        }
        for code in [501, 505, 400, 401, 403, 404, 409, 422, 200, 204, 301, 304] {
            assert_eq!(v(code, &none), Verdict::Fail, "{code}");
            assert!(!is_retryable_status(StatusCode::from_u16(code).unwrap()));
        }
    }

    #[test]
    fn both_forms_of_retry_after() {
        let now = at(1_800_000_000);
        assert_eq!(parse_retry_after("120", None, now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", None, now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(at(1_800_000_030));
        assert_eq!(parse_retry_after(&later, None, now), Some(Duration::from_secs(30)));
    }

    #[test]
    fn an_http_date_counts_from_the_servers_date() {
        // Our clock is an hour fast; the server says "in 10 s" by its own clock.
        let server_now = at(1_800_000_000);
        let local_now = at(1_800_003_600);
        let retry_at = httpdate::fmt_http_date(at(1_800_000_010));
        let date = httpdate::fmt_http_date(server_now);
        assert_eq!(parse_retry_after(&retry_at, Some(&date), local_now), Some(Duration::from_secs(10)));
        // Without the Date header, the same hint is already in the past.
        assert_eq!(parse_retry_after(&retry_at, None, local_now), None);
    }

    #[test]
    fn garbage_negative_and_past_values_are_ignored() {
        let now = at(1_800_000_000);
        for v in ["", "soon", "-5", "1.5", "5s", "Wed, 99 Foo 2026", "0x10"] {
            assert_eq!(parse_retry_after(v, None, now), None, "{v:?}");
        }
        let past = httpdate::fmt_http_date(at(1_700_000_000));
        assert_eq!(parse_retry_after(&past, None, now), None);
    }

    #[test]
    fn huge_values_saturate() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("1000000000000", None, now), Some(RETRY_AFTER_CEILING));
        assert_eq!(parse_retry_after(&"9".repeat(400), None, now), Some(RETRY_AFTER_CEILING));
        let far = httpdate::fmt_http_date(at(253_402_300_000)); // year 9999
        assert_eq!(parse_retry_after(&far, None, now), Some(RETRY_AFTER_CEILING));
    }

    #[test]
    fn idempotent_methods() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE, Method::PUT, Method::DELETE] {
            assert!(is_idempotent(&m), "{m}");
        }
        for m in [Method::POST, Method::PATCH, Method::CONNECT] {
            assert!(!is_idempotent(&m), "{m}");
        }
    }

    proptest! {
        #[test]
        fn the_parser_never_panics_and_stays_under_the_ceiling(
            value in "\\PC{0,40}",
            date in proptest::option::of("\\PC{0,40}"),
            now in 0u64..32_000_000_000,
        ) {
            if let Some(d) = parse_retry_after(&value, date.as_deref(), at(now)) {
                prop_assert!(d <= RETRY_AFTER_CEILING);
            }
        }

        #[test]
        fn any_number_of_seconds_is_read_or_saturates(secs in any::<u64>()) {
            let got = parse_retry_after(&secs.to_string(), None, SystemTime::now()).unwrap();
            prop_assert_eq!(got, Duration::from_secs(secs).min(RETRY_AFTER_CEILING));
        }

        #[test]
        fn dates_round_trip(base in 0u64..30_000_000_000, wait in 0u64..10_000_000) {
            let date = httpdate::fmt_http_date(at(base));
            let then = httpdate::fmt_http_date(at(base + wait));
            prop_assert_eq!(parse_retry_after(&then, Some(&date), at(0)), Some(Duration::from_secs(wait)));
        }
    }
}
