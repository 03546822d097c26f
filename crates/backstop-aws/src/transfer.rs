//! The helpers' shared builder: [`Transfer`], with its retry settings.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_s3::Client;
use backstop::clock::SleepFuture;
use backstop::guards::GuardsBuilder;
use backstop::{CircuitBreaker, Clock, Guards, Pacer, RetryBudget, RetryError, RetryEvent, RetryPolicy, SystemClock};

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
///
/// A transfer borrows its client, so to spawn one, move the client in:
/// `tokio::spawn(async move { backstop_aws::download(&client, bucket, key).await })`.
/// The future is `Send`.
#[must_use = "a transfer does nothing until .await"]
pub struct Transfer<'a, K> {
    pub(crate) client: &'a Client,
    pub(crate) kind: K,
    pub(crate) settings: Settings<'a>,
}

/// A callback before every retry of any request of a transfer.
type OnRetry<'a> = Arc<dyn Fn(&RetryEvent<'_, S3Error>) + Send + Sync + 'a>;

/// The retry settings of a transfer.
#[derive(Clone)]
pub(crate) struct Settings<'a> {
    pub(crate) policy: RetryPolicy,
    pub(crate) guards: Guards,
    pub(crate) on_retry: Option<OnRetry<'a>>,
    /// Attempts made by every request of the transfer, counted as they succeed.
    pub(crate) attempts: Arc<AtomicU32>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) multipart_threshold: u64,
    pub(crate) part_size: u64,
    pub(crate) concurrency: usize,
}

impl<'a> Settings<'a> {
    pub(crate) fn new(policy: &RetryPolicy) -> Self {
        Self {
            policy: policy.clone(),
            guards: Guards::default(),
            on_retry: None,
            attempts: Arc::default(),
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
        let (value, attempts) = self
            .policy
            .retry(op)
            .when(verdict_of)
            .name(name)
            .guards(&self.guards)
            .on_retry(|event| self.retrying(event))
            .attempt_timeout(self.attempt_timeout.unwrap_or_default(), move |after| {
                S3Error::timed_out(operation, target, after)
            })
            .with_attempts()
            .await?;
        self.attempts.fetch_add(attempts, Ordering::Relaxed);
        Ok(value)
    }

    /// Tells the transfer's callback, if any, of a retry.
    pub(crate) fn retrying(&self, event: &RetryEvent<'_, S3Error>) {
        if let Some(hook) = &self.on_retry {
            hook(event);
        }
    }

    /// The timer of one attempt's timeout, for attempts that are not run by
    /// [`run`](Self::run) (the parts of a multipart upload, sent by a batch):
    /// the settings' clock's, `None` without a per-attempt timeout.
    pub(crate) fn attempt_timer(&self) -> Option<(Duration, SleepFuture)> {
        let limit = self.attempt_timeout.filter(|limit| !limit.is_zero())?;
        let clock: &dyn Clock = self.guards.clock().unwrap_or(&SystemClock);
        Some((limit, clock.timer(limit)))
    }

    fn edit_guards(&mut self, edit: impl FnOnce(GuardsBuilder) -> GuardsBuilder) {
        self.guards = edit(self.guards.to_builder()).build();
    }
}

impl<K: std::fmt::Debug> std::fmt::Debug for Transfer<'_, K> {
    /// What the transfer moves and its retry settings (the client is left out).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("kind", &self.kind)
            .field("policy", &self.settings.policy)
            .field("guards", &self.settings.guards)
            .field("attempt_timeout", &self.settings.attempt_timeout)
            .finish_non_exhaustive()
    }
}

impl<'a, K> Transfer<'a, K> {
    pub(crate) fn new(client: &'a Client, kind: K, policy: &RetryPolicy) -> Self {
        Self { client, kind, settings: Settings::new(policy) }
    }

    /// The retry policy (default: [`presets::S3_UPLOAD`](backstop::presets::S3_UPLOAD)
    /// for uploads, [`presets::S3_DOWNLOAD`](backstop::presets::S3_DOWNLOAD) for
    /// downloads). The transfer keeps a copy, so a temporary is fine:
    /// `.policy(&presets::S3_UPLOAD.to_builder().max_attempts(8).build()?)`.
    pub fn policy(mut self, policy: &RetryPolicy) -> Self {
        self.settings.policy = policy.clone();
        self
    }

    /// Takes every guard `guards` holds, and its clock if it has one (a
    /// guard set already and not in `guards` is kept): one value for every
    /// transfer to a bucket (see [`Guards`]).
    pub fn guards(mut self, guards: &Guards) -> Self {
        self.settings.edit_guards(|g| g.merge(guards));
        self
    }

    /// Asks `breaker` before every attempt of every request of the transfer.
    pub fn breaker(mut self, breaker: &CircuitBreaker) -> Self {
        self.settings.edit_guards(|g| g.breaker(breaker));
        self
    }

    /// Draws every retry from `budget`.
    pub fn budget(mut self, budget: &RetryBudget) -> Self {
        self.settings.edit_guards(|g| g.budget(budget));
        self
    }

    /// Waits for a slot from `pacer` before every request of the transfer
    /// (each part of a multipart upload included), so that many transfers
    /// to one prefix send at the rate S3 accepts (3 500 PUTs or 5 500 GETs a
    /// second per prefix) instead of being told `SlowDown`. See
    /// [`Pacer`](backstop::Pacer).
    pub fn pacer(mut self, pacer: &Pacer) -> Self {
        self.settings.edit_guards(|g| g.pacer(pacer));
        self
    }

    /// Sleeps on this clock (default: the real one); a
    /// [`ManualClock`](backstop::ManualClock) in tests.
    pub fn clock<C: Clock + Clone + 'static>(mut self, clock: &C) -> Self {
        self.settings.edit_guards(|g| g.clock(clock));
        self
    }

    /// Calls `hook` before every retry of any request of the transfer (each
    /// part of a multipart upload included), with the failed attempt's error.
    pub fn on_retry<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RetryEvent<'_, S3Error>) + Send + Sync + 'a,
    {
        self.settings.on_retry = Some(Arc::new(hook));
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

    /// Makes the transfer return `(output, attempts)`: how many requests it
    /// sent, retries included (a single `PutObject` or `GetObject` that
    /// succeeded at once: 1; a multipart upload: its create, parts and
    /// complete, with their retries).
    pub fn with_attempts(self) -> Transfer<'a, WithAttempts<K>> {
        Transfer { client: self.client, kind: WithAttempts(self.kind), settings: self.settings }
    }
}

/// A transfer that also returns its attempt count; see [`Transfer::with_attempts`].
#[derive(Debug)]
pub struct WithAttempts<K>(K);

impl<'a, K: Kind<'a>> Kind<'a> for WithAttempts<K>
where
    K::Output: Send + 'a,
{
    type Output = (K::Output, u32);

    fn run(t: Transfer<'a, Self>) -> TransferFuture<'a, Self::Output> {
        let attempts = Arc::clone(&t.settings.attempts);
        let inner = Transfer { client: t.client, kind: t.kind.0, settings: t.settings };
        let run = K::run(inner);
        Box::pin(async move {
            let output = run.await?;
            Ok((output, attempts.load(Ordering::Relaxed)))
        })
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
