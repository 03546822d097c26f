//! Which AWS errors are worth another try: [`classify`].

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use backstop::Verdict;

pub use backstop::aws::{PERMANENT_CODES, THROTTLING_CODES, TRANSIENT_CODES, classify_code};

/// The verdict for an error of any SDK operation (`put_object`, `get_object`,
/// `list_objects_v2`, ...):
///
/// | error | verdict |
/// |---|---|
/// | a throttling code (`SlowDown`, `ThrottlingException`, ... see [`THROTTLING_CODES`]) | `Throttled`, or `RetryAfter` with a server hint |
/// | `RequestTimeout`, `RequestTimeoutException` | `Timeout` |
/// | `InternalError`, `ServiceUnavailable` | `Retry` |
/// | `AccessDenied`, `NoSuchKey`, `NoSuchBucket`, `InvalidAccessKeyId`, `SignatureDoesNotMatch` | `Fail` |
/// | another code: HTTP 500, 502, 503, 504 | `Retry`; 429: `Throttled`; else `Fail` |
/// | the SDK's timeout, or a dispatch timeout | `Timeout` |
/// | a dispatch (connection) failure | `Retry`, unless the SDK calls it a user error |
/// | a response cut short or unparseable | `Retry` |
/// | the request could not be built | `Fail` |
///
/// A server hint (`x-amz-retry-after` in milliseconds, or `Retry-After`)
/// turns a retry into `RetryAfter(hint)`.
pub fn classify<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> Verdict {
    match error {
        SdkError::ConstructionFailure(_) => Verdict::Fail,
        SdkError::TimeoutError(_) => Verdict::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => Verdict::Timeout,
        SdkError::DispatchFailure(d) if d.is_user() => Verdict::Fail,
        SdkError::DispatchFailure(_) => Verdict::Retry,
        SdkError::ResponseError(_) => Verdict::Retry,
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            with_hint(classify_code(ctx.err().code(), status), ctx.raw())
        }
        _ => Verdict::Retry,
    }
}

/// An error that S3's classifier judges: the SDK's `SdkError` and this
/// crate's [`S3Error`](crate::S3Error). [`s3_retry`](crate::s3_retry) uses
/// it when no classifier is given.
#[diagnostic::on_unimplemented(
    message = "`#[s3_retry]` cannot judge `{Self}` on its own",
    label = "it judges the SDK's `SdkError<_, HttpResponse>` and `backstop_aws::S3Error`",
    note = "give a classifier for `{Self}`: `#[s3_retry(when = my_classify)]`, a `fn(&{Self}) -> Verdict` \
            that can call `backstop_aws::classify` on the SDK error inside"
)]
pub trait S3Failure {
    /// The verdict for this error: see [`classify`].
    fn verdict(&self) -> Verdict;

    /// How the run's log lines print this error: an SDK error by its code
    /// and message ([`describe_sdk_error`](crate::describe_sdk_error)),
    /// anything else by its `{:#}` form (the default).
    fn describe(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result
    where
        Self: std::fmt::Display,
    {
        write!(f, "{self:#}")
    }
}

impl<E: ProvideErrorMetadata + std::error::Error + 'static> S3Failure for SdkError<E, HttpResponse> {
    fn verdict(&self) -> Verdict {
        classify(self)
    }

    fn describe(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result
    where
        Self: std::fmt::Display,
    {
        crate::describe_sdk_error(self, f)
    }
}

impl S3Failure for crate::S3Error {
    fn verdict(&self) -> Verdict {
        crate::S3Error::verdict(self)
    }
}

/// A transient verdict becomes `RetryAfter` when the response carries a hint.
fn with_hint(verdict: Verdict, response: &HttpResponse) -> Verdict {
    if !verdict.is_retry() {
        return verdict;
    }
    backstop::aws::with_hint(verdict, retry_after(response))
}

/// The wait a response asks for: `x-amz-retry-after` (milliseconds), else
/// `Retry-After` (seconds or an HTTP-date), bounded like
/// [`backstop::http::retry_after`].
pub fn retry_after(response: &HttpResponse) -> Option<Duration> {
    let headers = response.headers();
    backstop::aws::hint(
        headers.get("x-amz-retry-after"),
        headers.get("retry-after"),
        headers.get("date"),
        SystemTime::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_before_statuses() {
        for code in THROTTLING_CODES {
            assert_eq!(classify_code(Some(code), 503), Verdict::Throttled, "{code}");
            assert_eq!(classify_code(Some(code), 400), Verdict::Throttled, "{code}");
        }
        assert_eq!(classify_code(Some("RequestTimeout"), 400), Verdict::Timeout);
        assert_eq!(classify_code(Some("InternalError"), 500), Verdict::Retry);
        assert_eq!(classify_code(Some("ServiceUnavailable"), 503), Verdict::Retry);
        for code in PERMANENT_CODES {
            assert_eq!(classify_code(Some(code), 403), Verdict::Fail, "{code}");
        }
        // Unknown codes fall back to the status.
        assert_eq!(classify_code(Some("Weird"), 502), Verdict::Retry);
        assert_eq!(classify_code(Some("Weird"), 400), Verdict::Fail);
        assert_eq!(classify_code(None, 429), Verdict::Throttled);
        assert_eq!(classify_code(None, 404), Verdict::Fail);
        assert_eq!(classify_code(None, 504), Verdict::Retry);
    }

    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::primitives::SdkBody;
    use proptest::prelude::*;

    proptest! {
        // What a fuzzer would throw at the classifier (a fuzz target would
        // need aws-sdk-s3 built under the fuzzer's instrumentation): any
        // status, any error code, any hint headers. Never a panic; a hint
        // is bounded; the same error gets the same verdict.
        #[test]
        fn any_error_response_gets_a_bounded_verdict(
            status in 100u16..1000,
            code in proptest::option::of("[A-Za-z.]{0,40}"),
            amz in "[ -~]{0,30}",
            retry in "[ -~]{0,40}",
            date in "[ -~]{0,40}",
        ) {
            let mut response = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
            for (name, value) in [("x-amz-retry-after", amz), ("retry-after", retry), ("date", date)] {
                let _ = response.headers_mut().try_insert(name, value);
            }
            let mut meta = ErrorMetadata::builder();
            if let Some(code) = &code {
                meta = meta.code(code);
            }
            let error = SdkError::service_error(meta.build(), response);
            let verdict = classify(&error);
            if let Verdict::RetryAfter(hint) = verdict {
                prop_assert!(hint <= backstop::http::RETRY_AFTER_CEILING);
            }
            prop_assert_eq!(classify(&error), verdict);
        }
    }
}
