//! The helpers' shared builder: [`Transfer`], with its retry settings.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use aws_sdk_s3::Client;
use backstop::clock::SleepFuture;
use backstop::{CircuitBreaker, Clock, Pacer, RetryBudget, RetryError, RetryPolicy, SystemClock, Verdict};

use crate::error::{S3Error, Target, verdict_of};

/// The default size above which uploads are multipart: 16 MiB.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// The default part size of a multipart upload: 8 MiB.
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// S3's smallest part (all parts but the last): 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// One S3 transfer, configured and not yet started: made by
/// [`upload`](crate::upload), [`upload_file`](crate::upload_file),
/// [`download`](crate::download) or [`download_to_file`](crate::download_to_file);
/// `.await` it to run it.
///
/// Every attempt switches the SDK's own retries off (so attempts are not
/// multiplied: 5 of ours × 3 of the SDK's would be 15), and is named by
/// operation and bucket in logs and metrics (`PutObject bike-data`); its
/// errors ([`S3Error`]) name the object, `s3://bucket/key`, and the part.
///
/// Dropping the future (a caller's timeout, a shutdown) cleans up: a
/// multipart upload under way is aborted in the background, and a file
/// download leaves no temporary file behind.
#[must_use = "a transfer does nothing until .await"]
pub struct Transfer<'a, K> {
    pub(crate) client: &'a Client,
    pub(crate) kind: K,
    pub(crate) settings: Settings<'a>,
}

/// The retry settings of a transfer.
#[derive(Clone, Copy)]
pub(crate) struct Settings<'a> {
    pub(crate) policy: &'a RetryPolicy,
    pub(crate) breaker: Option<&'a CircuitBreaker>,
    pub(crate) budget: Option<&'a RetryBudget>,
    pub(crate) pacer: Option<&'a Pacer>,
    pub(crate) clock: Option<&'a dyn Clock>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) multipart_threshold: u64,
    pub(crate) part_size: u64,
    pub(crate) concurrency: usize,
}

impl<'a> Settings<'a> {
    pub(crate) fn new(policy: &'a RetryPolicy) -> Self {
        Self {
            policy,
            breaker: None,
            budget: None,
            pacer: None,
            clock: None,
            attempt_timeout: None,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            concurrency: 4,
        }
    }

    /// Runs `op` under the settings, named `operation bucket` (the key is
    /// left out of the name, which labels metrics; the errors name it).
    pub(crate) async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        target: Target<'_>,
        op: F,
    ) -> Result<T, RetryError<S3Error>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, S3Error>>,
    {
        let name = format!("{operation} {}", target.bucket);
        let mut run = self.policy.retry(op).when(verdict_of as fn(&S3Error) -> Verdict).name(name);
        if let Some(clock) = self.clock {
            run = run.clock(clock);
        }
        if let Some(breaker) = self.breaker {
            run = run.breaker(breaker);
        }
        if let Some(budget) = self.budget {
            run = run.budget(budget);
        }
        if let Some(pacer) = self.pacer {
            run = run.pacer(pacer);
        }
        match self.attempt_timeout {
            Some(limit) => run.attempt_timeout(limit, move |after| S3Error::timed_out(operation, target, after)).await,
            None => run.await,
        }
    }

    /// The timer of one attempt's timeout, for attempts that are not run by
    /// [`run`](Self::run) (the parts of a multipart upload, sent by a batch):
    /// the settings' clock's, `None` without a per-attempt timeout.
    pub(crate) fn attempt_timer(&self) -> Option<(Duration, SleepFuture)> {
        let limit = self.attempt_timeout.filter(|limit| !limit.is_zero())?;
        let clock: &dyn Clock = self.clock.unwrap_or(&SystemClock);
        Some((limit, clock.timer(limit)))
    }
}

impl<'a, K> Transfer<'a, K> {
    pub(crate) fn new(client: &'a Client, kind: K, policy: &'a RetryPolicy) -> Self {
        Self { client, kind, settings: Settings::new(policy) }
    }

    /// The retry policy (default: [`presets::S3_UPLOAD`](backstop::presets::S3_UPLOAD)
    /// for uploads, [`presets::S3_DOWNLOAD`](backstop::presets::S3_DOWNLOAD) for downloads).
    pub fn policy(mut self, policy: &'a RetryPolicy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// Asks `breaker` before every attempt of every request of the transfer.
    pub fn breaker(mut self, breaker: &'a CircuitBreaker) -> Self {
        self.settings.breaker = Some(breaker);
        self
    }

    /// Draws every retry from `budget`.
    pub fn budget(mut self, budget: &'a RetryBudget) -> Self {
        self.settings.budget = Some(budget);
        self
    }

    /// Waits for a slot from `pacer` before every request of the transfer
    /// (each part of a multipart upload included), so that many transfers
    /// to one prefix send at the rate S3 accepts (3 500 PUTs or 5 500 GETs a
    /// second per prefix) instead of being told `SlowDown`. See
    /// [`Pacer`](backstop::Pacer).
    pub fn pacer(mut self, pacer: &'a Pacer) -> Self {
        self.settings.pacer = Some(pacer);
        self
    }

    /// Sleeps on this clock (default: the real one).
    pub fn clock(mut self, clock: &'a dyn Clock) -> Self {
        self.settings.clock = Some(clock);
        self
    }

    /// Drops an attempt that takes longer than `limit` and retries it as a
    /// timeout: every request of the transfer, each on its own (`PutObject`,
    /// `GetObject` with its body, and each step of a multipart upload: the
    /// create, every `UploadPart`, the complete and the abort). A part that
    /// stalls is cut and sent again; it cannot hang the upload.
    pub fn attempt_timeout(mut self, limit: Duration) -> Self {
        self.settings.attempt_timeout = Some(limit);
        self
    }

    /// Uploads larger than this many bytes are multipart (default 16 MiB).
    pub fn multipart_threshold(mut self, bytes: u64) -> Self {
        self.settings.multipart_threshold = bytes;
        self
    }

    /// The part size of multipart uploads (default 8 MiB). S3 rejects parts
    /// under 5 MiB (but the last) only when the upload completes, after every
    /// part was sent, so smaller sizes are raised to 5 MiB here.
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.settings.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// How many parts of a multipart upload are sent at once (default 4).
    pub fn concurrency(mut self, parts: usize) -> Self {
        self.settings.concurrency = parts.max(1);
        self
    }
}

/// A boxed future of a transfer.
pub type TransferFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RetryError<S3Error>>> + Send + 'a>>;

/// What a kind of transfer does when awaited: implemented by [`Upload`](crate::Upload),
/// [`UploadFile`](crate::UploadFile), [`Download`](crate::Download) and
/// [`DownloadToFile`](crate::DownloadToFile).
pub trait Kind<'a>: Sized {
    /// What the transfer gives back.
    type Output;
    /// Runs the transfer.
    fn run(transfer: Transfer<'a, Self>) -> TransferFuture<'a, Self::Output>;
}

impl<'a, K: Kind<'a>> IntoFuture for Transfer<'a, K> {
    type Output = Result<K::Output, RetryError<S3Error>>;
    type IntoFuture = TransferFuture<'a, K::Output>;

    fn into_future(self) -> Self::IntoFuture {
        K::run(self)
    }
}
