//! Ready policies with the seeds' numbers, for the calls that fail most.
//!
//! | preset | attempts | first delay | cap | jitter |
//! |---|---|---|---|---|
//! | [`DEFAULT`] / [`default()`] | 5 | 1 s, doubling | 30 s | `+U[0, 1 s]` |
//! | [`S3_UPLOAD`] / [`s3_upload()`] | 5 | 1 s, doubling | 30 s | `+U[0, 1 s]` |
//! | [`S3_DOWNLOAD`] / [`s3_download()`] | 5 | 1 s, doubling | 30 s | `+U[0, 1 s]` |
//! | [`API_CALL`] / [`api_call()`] | 3 | 0.5 s, doubling | 10 s | `+U[0, 0.5 s]` |
//!
//! All honour a server's `Retry-After` up to 60 s and have no deadline. Each
//! exists as a `const` (for `static`s) and as a function (for call sites);
//! adjust one with [`RetryPolicy::to_builder`]:
//!
//! ```
//! use std::time::Duration;
//! use backstop::presets;
//!
//! let policy = presets::api_call().to_builder().max_elapsed(Duration::from_secs(15)).build()?;
//! assert_eq!(policy.max_attempts(), 3);
//! # Ok::<(), backstop::ConfigError>(())
//! ```

use std::time::Duration;

use crate::{Backoff, Jitter, RetryPolicy};

const fn doubling(attempts: u32, base: Duration, cap: Duration, jitter: Duration) -> RetryPolicy {
    RetryPolicy::from_parts(
        attempts,
        Backoff::exponential(base).factor(2.0).max_delay(cap).jitter(Jitter::Additive(jitter)),
    )
}

/// The general default: 5 attempts, 1 s doubling to 30 s, `+U[0, 1 s]`.
pub const DEFAULT: RetryPolicy = RetryPolicy::DEFAULT;

/// S3 uploads (`PutObject`, multipart parts): 5 attempts, 1 s doubling to 30 s,
/// `+U[0, 1 s]`. S3 asks clients to back off on `SlowDown`; this gives it ~60 s.
pub const S3_UPLOAD: RetryPolicy = doubling(5, Duration::from_secs(1), Duration::from_secs(30), Duration::from_secs(1));

/// S3 downloads (`GetObject`): the same numbers as [`S3_UPLOAD`].
pub const S3_DOWNLOAD: RetryPolicy = S3_UPLOAD;

/// HTTP API calls: 3 attempts, 0.5 s doubling to 10 s, `+U[0, 0.5 s]`. An
/// interactive caller gives up within seconds rather than minutes.
pub const API_CALL: RetryPolicy =
    doubling(3, Duration::from_millis(500), Duration::from_secs(10), Duration::from_millis(500));

/// [`DEFAULT`], as a function.
pub fn default() -> RetryPolicy {
    DEFAULT
}

/// [`S3_UPLOAD`], as a function.
pub fn s3_upload() -> RetryPolicy {
    S3_UPLOAD
}

/// [`S3_DOWNLOAD`], as a function.
pub fn s3_download() -> RetryPolicy {
    S3_DOWNLOAD
}

/// [`API_CALL`], as a function.
pub fn api_call() -> RetryPolicy {
    API_CALL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for p in [default(), s3_upload(), s3_download(), api_call()] {
            assert_eq!(p.to_builder().build().as_ref(), Ok(&p));
        }
    }
}
