//! AWS's error codes, and what each says about a retry: the tables and the
//! rule that [`backstop_aws::classify`] applies to the SDK's errors, here in
//! the core (no dependency) so that every binding (the Python package's boto3
//! classifier among them) asks the same rule.
//!
//! [`backstop_aws::classify`]: https://docs.rs/backstop-aws

use std::time::Duration;

use crate::Verdict;

/// Error codes that mean "slow down": the AWS SDKs' throttling list.
pub const THROTTLING_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes for failures that a later attempt may not hit.
pub const TRANSIENT_CODES: &[&str] =
    &["RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable"];

/// Error codes that the same request will always get again.
pub const PERMANENT_CODES: &[&str] =
    &["AccessDenied", "NoSuchKey", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchUpload"];

/// The verdict for an error code and HTTP status alone (a throttling code: `Throttled`; `RequestTimeout`: `Timeout`;
/// a transient code: `Retry`; a permanent one: `Fail`; otherwise by the
/// status: 429 `Throttled`, 500/502/503/504 `Retry`, others `Fail`).
pub fn classify_code(code: Option<&str>, status: u16) -> Verdict {
    match code {
        Some(c) if THROTTLING_CODES.contains(&c) => Verdict::Throttled,
        Some("RequestTimeout" | "RequestTimeoutException") => Verdict::Timeout,
        Some(c) if TRANSIENT_CODES.contains(&c) => Verdict::Retry,
        Some(c) if PERMANENT_CODES.contains(&c) => Verdict::Fail,
        _ => match status {
            429 => Verdict::Throttled,
            500 | 502 | 503 | 504 => Verdict::Retry,
            _ => Verdict::Fail,
        },
    }
}

/// The wait an `x-amz-retry-after` header asks for (milliseconds), at most
/// a year; `None` for a value that is not a whole number.
pub fn parse_amz_retry_after(value: &str) -> Option<Duration> {
    let ms = value.trim().parse::<u64>().ok()?;
    Some(Duration::from_millis(ms).min(crate::verdict::HINT_CEILING))
}

/// The wait an AWS error response asks for: `x-amz-retry-after`
/// (milliseconds), else `Retry-After` (seconds or an HTTP-date, against the
/// response's `Date`; see [`crate::http::parse_retry_after`]).
#[cfg(feature = "http")]
pub fn hint(
    amz_retry_after: Option<&str>,
    retry_after: Option<&str>,
    date: Option<&str>,
    now: std::time::SystemTime,
) -> Option<Duration> {
    amz_retry_after.and_then(parse_amz_retry_after).or_else(|| crate::http::parse_retry_after(retry_after?, date, now))
}

/// A retry verdict becomes `RetryAfter(hint)` when the response carries a
/// hint ([`hint`]); other verdicts stay.
#[cfg(feature = "http")]
pub fn with_hint(verdict: Verdict, hint: Option<Duration>) -> Verdict {
    match hint {
        Some(wait) if verdict.is_retry() => Verdict::RetryAfter(wait),
        _ => verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_before_statuses_and_hints_are_bounded() {
        assert_eq!(classify_code(Some("SlowDown"), 400), Verdict::Throttled);
        assert_eq!(classify_code(Some("NoSuchKey"), 503), Verdict::Fail);
        assert_eq!(classify_code(None, 503), Verdict::Retry);
        assert_eq!(classify_code(Some("Whatever"), 403), Verdict::Fail);
        assert_eq!(parse_amz_retry_after(" 1500 "), Some(Duration::from_millis(1500)));
        assert_eq!(parse_amz_retry_after("soon"), None);
        assert_eq!(parse_amz_retry_after("99999999999999"), Some(Duration::from_secs(365 * 24 * 3600)));
    }
}
