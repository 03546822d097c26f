//! No retry storms: a [`RetryBudget`] caps retries across every caller that
//! shares it.
//!
//! Retries multiply load exactly when a downstream is weakest: five attempts
//! at each layer of a three-layer stack is 125 calls per request. A budget is
//! shared by many runs (every call to one downstream, say) and grants a retry
//! only while retries stay a small part of the traffic. Two kinds:
//!
//! - **Token bucket** (the AWS SDKs' standard retry quota): a bucket of 500
//!   tokens; a retry costs 5 (10 after a timeout), a success puts 1 back (a
//!   successful retry puts its cost back). With no successes, 500 tokens allow
//!   exactly 100 retries, then none until successes refill it.
//! - **Ratio** (Finagle's and tower's): retries may add at most `ratio`
//!   (20 %) of the requests of the last `window` (10 s), plus a floor of
//!   `min_per_sec` (10) retries a second so a quiet client can still retry.
//!
//! Either kind can be shared by a fleet of processes through a
//! [`BudgetStore`] (such as `backstop_redis::Fleet`): one bucket, or one
//! window of the fleet's requests and retries with one floor, spent
//! locally with no round trip per retry.
//!
//! ```
//! use backstop::{presets, ManualClock, RetryBudget, RetryError};
//!
//! let budget = RetryBudget::token_bucket("s3").capacity(10).build()?; // 2 retries of cost 5
//! let clock = ManualClock::new();
//! let err = presets::S3_UPLOAD
//!     .retry(|| Err::<(), _>("503"))
//!     .budget(&budget)
//!     .clock(&clock)
//!     .call()
//!     .unwrap_err();
//! assert!(matches!(err, RetryError::BudgetExhausted { attempts: 3, .. }));
//! # Ok::<(), backstop::ConfigError>(())
//! ```

mod builder;
mod link;
mod ratio;
mod retry_budget;
mod shared;
mod shared_ratio;
mod token_bucket;

pub use builder::{RatioBuilder, TokenBucketBuilder};
pub use link::BudgetLink;
pub use retry_budget::{RetryBudget, Withdrawal};
pub use shared::{BudgetStore, SharedBudget};
pub use shared_ratio::{RatioCounts, SharedRatio};
