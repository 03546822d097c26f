//! A cookbook of real situations, each a page of compiling examples.
//!
//! - [`attribute`]: `#[backstop::retry]` on a function, beside the builder form
//! - [`s3_upload`]: retrying an S3 upload: throttling, transient errors, permanent ones
//! - [`weather_api`]: an HTTP API with `Retry-After` and a deadline
//! - [`breaker`]: a circuit breaker around an upload
//! - [`closures`]: arguments, borrows, `&mut self`, `Ok` values that mean failure
//! - [`no_retry_storms`]: retry budgets, adaptive throttling, timeouts
//! - [`batch`]: every item of a batch, sync or async with a concurrency limit
//! - [`testing`]: testing your own retrying code in virtual time
//! - [`observability`]: every log line, counter and gauge, and when it is emitted

#[doc = include_str!("../docs/cookbook/attribute.md")]
// Its examples need backstop-aws and backstop-http, which depend on this
// crate: they compile with backstop-aws's doc tests instead.
#[cfg_attr(not(doctest), doc = include_str!("../docs/cookbook/attribute_integrations.md"))]
pub mod attribute {}

#[doc = include_str!("../docs/cookbook/s3_upload.md")]
pub mod s3_upload {}

#[doc = include_str!("../docs/cookbook/weather_api.md")]
pub mod weather_api {}

#[doc = include_str!("../docs/cookbook/breaker.md")]
pub mod breaker {}

#[doc = include_str!("../docs/cookbook/closures.md")]
pub mod closures {}

#[doc = include_str!("../docs/cookbook/no_retry_storms.md")]
pub mod no_retry_storms {}

#[doc = include_str!("../docs/cookbook/batch.md")]
pub mod batch {}

#[doc = include_str!("../docs/cookbook/testing.md")]
pub mod testing {}

#[doc = include_str!("../docs/cookbook/observability.md")]
pub mod observability {}
