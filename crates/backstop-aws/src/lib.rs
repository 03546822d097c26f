//! backstop for the AWS SDK for Rust: an error classifier for any operation,
//! and S3 uploads and downloads that retry throttling and outages (5 attempts,
//! 1 s doubling to 30 s, `+U[0, 1 s]`, by default), abort what they leave
//! behind, and never send a request the SDK also retries.
//!
//! This crate re-exports [`backstop`], so it is the only dependency you need.
//!
//! | want | use |
//! |---|---|
//! | upload bytes / a file, multipart when large | [`upload`], [`upload_file`] |
//! | download into memory / to a file (atomically) | [`download`], [`download_to_file`] |
//! | any other SDK call, retried | [`retry!`] (or [`retry_sdk`]) |
//! | a classifier for your own loop | [`classify`] |
//!
//! Throttling (`SlowDown`, `ThrottlingException`, ...), `InternalError`,
//! `ServiceUnavailable`, HTTP 500/502/503/504, timeouts and dropped
//! connections are retried; `AccessDenied`, `NoSuchKey`, `NoSuchBucket`,
//! `InvalidAccessKeyId`, `SignatureDoesNotMatch` and other 4xx fail at once.
//! A server hint (`x-amz-retry-after`, `Retry-After`) is honoured.
//!
//! # The client
//!
//! Any `aws_sdk_s3::Client` works; in an application it usually comes from
//! `aws-config` (`aws_sdk_s3::Client::new(&aws_config::load_defaults(BehaviorVersion::latest()).await)`).
//! Made by hand, for an S3-compatible endpoint:
//!
//! ```no_run
//! use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = aws_sdk_s3::Config::builder()
//!     .behavior_version(BehaviorVersion::latest())
//!     .region(Region::new("eu-west-1"))
//!     .credentials_provider(Credentials::new("access-key", "secret-key", None, None, "static"))
//!     .endpoint_url("http://127.0.0.1:9000") // MinIO, LocalStack...; leave out for AWS
//!     .force_path_style(true)
//!     .build();
//! let client = aws_sdk_s3::Client::from_conf(config);
//! let report = backstop_aws::download(&client, "bike-data", "processed/run-42.csv").await?;
//! # let _ = report; Ok(()) }
//! ```
//!
//! The `s3_upload` example runs an upload and a download this way; the
//! `s3_faults` example shows the retries against a local S3 that throttles
//! and drops connections, without an account.
//!
//! # Cancellation
//!
//! A transfer's future may be dropped at any point (your own
//! `tokio::time::timeout`, a shutdown). A multipart upload under way is then
//! aborted in the background, so its parts do not stay pending and billed:
//! the abort is sent at once, and again once the parts that were on the wire
//! have been answered (within [`ABORT_TIMEOUT`], 10 s). A file download
//! removes its temporary file: the target is either untouched or complete.
//!
//! The abort runs on your tokio runtime, which drops it unsent if it shuts
//! down first. A program that drops uploads and then exits waits for the
//! aborts with [`finish_aborts`]:
//!
//! ```no_run
//! # async fn demo(client: aws_sdk_s3::Client, body: Vec<u8>) {
//! use std::time::Duration;
//!
//! let upload = backstop_aws::upload(&client, "bike-data", "processed/run-42.parquet", body);
//! if tokio::time::timeout(Duration::from_secs(30), upload).await.is_err() {
//!     backstop_aws::finish_aborts(Duration::from_secs(10)).await;
//!     std::process::exit(1);
//! }
//! # }
//! ```
//!
//! # Errors
//!
//! Errors are [`RetryError`]s of [`S3Error`], which names
//! the operation, the object and, for a multipart upload, the part:
//! `UploadPart failed for s3://bike-data/big.bin (part 3): SlowDown: ...`.
//! `{}` prints one layer, `{:#}` the whole chain, each cause once.
//!
//! ```no_run
//! # async fn demo(client: aws_sdk_s3::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use backstop_aws::{presets, CircuitBreaker};
//!
//! let s3_circuit = CircuitBreaker::new("s3", Default::default());
//! let uploaded = backstop_aws::upload(&client, "bike-data", "processed/run-42.parquet", vec![0u8; 1024])
//!     .breaker(&s3_circuit)
//!     .await?;
//! let bytes = backstop_aws::download(&client, "bike-data", "processed/run-42.parquet").await?;
//! # let _ = (uploaded, bytes); Ok(()) }
//! ```
//!
//! # Not multiplying attempts
//!
//! The SDK retries too (3 attempts in its standard mode). Stacked under a
//! 5-attempt policy that is 15 calls for one upload. The helpers switch the
//! SDK's retries off for their own calls; [`retry!`] does the same for any
//! fluent call. To do it by hand, override the operation's config:
//!
//! ```no_run
//! # async fn demo(client: aws_sdk_s3::Client) {
//! let out = client
//!     .list_objects_v2()
//!     .bucket("bike-data")
//!     .customize()
//!     .config_override(backstop_aws::no_sdk_retries())
//!     .send()
//!     .await;
//! # let _ = out; }
//! ```
//!
//! or build the client once with [`client`] (the SDK's retries off for every
//! call) and let backstop do all the retrying: the client to give
//! [`s3_retry`] functions, whose SDK calls are yours.
//!
//! aws-sdk-s3 is used without default features here: the TLS client comes
//! from your own `aws-sdk-s3` (or `aws-config`) dependency's defaults.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations)]

/// Sends an SDK request once (the SDK's own retries off: ours do the
/// retrying), naming the operation and its target (a `Target`) in the error.
macro_rules! send_once {
    ($request:expr, $operation:literal, $target:expr) => {
        $request
            .customize()
            .config_override($crate::no_sdk_retries())
            .send()
            .await
            .map_err(|e| $crate::S3Error::from_sdk($operation, e).at($target))
    };
}

mod abort_guard;
mod classify;
mod download;
mod error;
mod in_flight;
mod multipart;
mod pending_aborts;
mod ranged;
mod source;
mod temp_file;
mod transfer;
mod upload;

/// README.md's examples, compiled (and run where they can be) as this
/// crate's doc tests: its dependencies cover them all.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;

/// The integration examples of `backstop::docs::attribute`, compiled here:
/// the core crate's doc tests cannot name this crate.
#[cfg(doctest)]
#[doc = include_str!("../../backstop/docs/cookbook/attribute_integrations.md")]
pub struct AttributeCookbookExamples;

use std::future::Future;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::SdkError;
use backstop::retry::{Async, Retry};
use backstop::verdict::Described;

pub use abort_guard::{ABORT_ATTEMPTS, ABORT_TIMEOUT};
#[cfg(feature = "macros")]
pub use backstop_macros::s3_retry;
pub use classify::{
    PERMANENT_CODES, S3Failure, THROTTLING_CODES, TRANSIENT_CODES, classify, classify_code, retry_after,
};
pub use download::{Download, DownloadToFile, download, download_to_file};
pub use error::{S3Error, describe_sdk_error};
pub use pending_aborts::finish_aborts;
pub use source::Uploaded;
pub use transfer::{
    DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE, Kind, MIN_PART_SIZE, Transfer, TransferFuture, TransferReport,
    WithReport,
};
pub use upload::{Upload, UploadData, UploadFile, upload, upload_file};

/// The SDK's trait that gives an error's [`code`](ProvideErrorMetadata::code)
/// and [`message`](ProvideErrorMetadata::message), re-exported so that
/// `e.code()` works in a classifier with this crate alone in scope:
///
/// ```
/// use aws_sdk_s3::error::SdkError;
/// use aws_sdk_s3::operation::put_object::PutObjectError;
/// use backstop_aws::{ProvideErrorMetadata, Verdict};
///
/// fn classify(e: &SdkError<PutObjectError>) -> Verdict {
///     match e.code() {
///         Some("PreconditionFailed") => Verdict::Fail, // someone else wrote it first
///         _ => backstop_aws::classify(e),
///     }
/// }
/// # let _ = classify;
/// ```
pub use aws_sdk_s3::error::ProvideErrorMetadata;
/// The core crate, so that this one dependency is enough: `backstop_aws::backstop::Jitter`.
pub use backstop;
/// The core names this crate's docs use, re-exported from [`backstop`].
pub use backstop::{CircuitBreaker, Guards, Pacer, RetryBudget, RetryError, RetryPolicy, Verdict, presets};

/// A config override that switches the SDK's own retries off for one
/// operation: `.customize().config_override(no_sdk_retries())`.
pub fn no_sdk_retries() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default().retry_config(RetryConfig::disabled())
}

/// An S3 client with the SDK's own retries off, for code that backstop
/// retries: [`s3_retry`] functions, [`retry_sdk`], your own runs.
///
/// A client as the SDK builds it by default retries each request up to 3
/// times itself, so under a 5-attempt policy an always-throttled request is
/// sent 15 times, and the SDK absorbs throttling that backstop's log lines
/// and metrics never see. The helpers ([`upload`], [`download`], [`retry!`])
/// switch the SDK's retries off per call whatever the client; for your own
/// calls, build the client with this. It takes the shared config from
/// `aws-config` or a config builder:
///
/// ```
/// # fn demo(config: aws_types::SdkConfig) {
/// // let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let client = backstop_aws::client(&config);
/// # let _ = client; }
/// # demo(aws_types::SdkConfig::builder().behavior_version(aws_sdk_s3::config::BehaviorVersion::latest()).build());
/// ```
pub fn client(config: impl Into<aws_sdk_s3::config::Builder>) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(config.into().retry_config(RetryConfig::disabled()).build())
}

/// The classifier [`retry_sdk`] runs with: [`classify`] for one operation's error type.
pub type SdkClassifier<E> = fn(&SdkError<E, HttpResponse>) -> Verdict;

/// The run [`retry_sdk`] prepares: `.name(..)`, the guards, then `.await`.
pub type SdkRetry<'a, F, E> =
    Retry<'a, F, SdkError<E, HttpResponse>, Async, Described<SdkClassifier<E>, SdkError<E, HttpResponse>>>;

/// Retries an SDK call that `op` makes (one per attempt), classified by
/// [`classify`], its errors logged by code and message
/// ([`describe_sdk_error`]). `op` should switch the SDK's retries off (see
/// [`no_sdk_retries`]); the [`retry!`] macro writes that part for you.
///
/// A `.when(..)` of your own replaces the classifier and the describer:
/// add `.describe_error(backstop_aws::describe_sdk_error)` after it.
pub fn retry_sdk<'a, T, E, F, Fut>(policy: &'a RetryPolicy, op: F) -> SdkRetry<'a, F, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    policy.retry(op).when(classify::<E> as SdkClassifier<E>).describe_error(describe_sdk_error::<E>)
}

/// Retries any fluent SDK call, with the SDK's own retries switched off:
/// the call is rebuilt for every attempt.
///
/// ```no_run
/// # async fn demo(client: aws_sdk_s3::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use backstop_aws::presets;
///
/// let policy = presets::S3_DOWNLOAD;
/// let listing = backstop_aws::retry!(&policy, client.list_objects_v2().bucket("bike-data").prefix("raw/"))
///     .name("ListObjectsV2 bike-data")
///     .await?;
/// # let _ = listing; Ok(()) }
/// ```
#[macro_export]
macro_rules! retry {
    ($policy:expr, $call:expr $(,)?) => {
        $crate::retry_sdk($policy, || $call.customize().config_override($crate::no_sdk_retries()).send())
    };
}
