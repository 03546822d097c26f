//! Ready policies for the calls that fail most, as constants.
//!
//! | preset | attempts | first delay | cap | jitter |
//! |---|---|---|---|---|
//! | [`DEFAULT`] (also [`RetryPolicy::default()`]) | 5 | 1 s, doubling | 30 s | `+U[0, 1 s]` |
//! | [`S3_UPLOAD`] | 5 | 1 s, doubling | 30 s | `+U[0, 1 s]` |
//! | [`S3_DOWNLOAD`] | 5 | 1 s, doubling | 30 s | `+U[0, 1 s]` |
//! | [`API_CALL`] | 3 | 0.5 s, doubling | 10 s | `+U[0, 0.5 s]` |
//!
//! All honour a server's `Retry-After` up to 60 s and have no deadline. With
//! full jitter off, 5 attempts at 1 s doubling wait 1 + 2 + 4 + 8 = 15 s (up
//! to 19 s with the jitter) before giving up; 3 attempts at 0.5 s wait 1.5 s
//! (up to 2.5 s). A preset is a `const`: use it in a `static`, borrow it for
//! as long as you like (`&presets::S3_UPLOAD` is `'static`), or adjust a copy
//! with [`RetryPolicy::to_builder`]:
//!
//! ```
//! use std::time::Duration;
//! use backstop::presets;
//!
//! let policy = presets::API_CALL.to_builder().max_elapsed(Duration::from_secs(15)).build()?;
//! assert_eq!(policy.max_attempts(), 3);
//! # Ok::<(), backstop::ConfigError>(())
//! ```

use std::time::Duration;

use crate::backoff::{Backoff, Jitter};
use crate::policy::RetryPolicy;

const fn doubling(attempts: u32, base: Duration, cap: Duration, jitter: Duration) -> RetryPolicy {
    RetryPolicy::from_parts(
        attempts,
        Backoff::exponential(base).factor(2.0).max_delay(cap).jitter(Jitter::Additive(jitter)),
    )
}

/// The general default: 5 attempts, 1 s doubling to 30 s, `+U[0, 1 s]`;
/// what [`RetryPolicy::default()`] and [`RetryPolicy::builder()`] start from.
pub const DEFAULT: RetryPolicy = crate::policy::DEFAULT;

/// S3 uploads (`PutObject`, multipart parts): 5 attempts, 1 s doubling to 30 s,
/// `+U[0, 1 s]`. S3 asks clients to back off on `SlowDown`; this gives it
/// 15–19 s over four retries.
pub const S3_UPLOAD: RetryPolicy = DEFAULT;

/// S3 downloads (`GetObject`): the same numbers as [`S3_UPLOAD`].
pub const S3_DOWNLOAD: RetryPolicy = DEFAULT;

/// HTTP API calls: 3 attempts, 0.5 s doubling to 10 s, `+U[0, 0.5 s]`. An
/// interactive caller gives up within seconds rather than minutes.
pub const API_CALL: RetryPolicy =
    doubling(3, Duration::from_millis(500), Duration::from_secs(10), Duration::from_millis(500));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for p in [DEFAULT, S3_UPLOAD, S3_DOWNLOAD, API_CALL] {
            assert_eq!(p.to_builder().build().as_ref(), Ok(&p));
        }
    }
}
