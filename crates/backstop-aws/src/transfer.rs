//! The helpers' shared builder: [`Transfer`], with its retry settings.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_s3::Client;
use backstop::clock::SleepFuture;
use backstop::guards::GuardsBuilder;
use backstop::hedge::Hedge;
use backstop::keyed::Keyed;
use backstop::{CircuitBreaker, Clock, Guards, Pacer, RetryBudget, RetryError, RetryEvent, RetryPolicy, SystemClock};

use crate::error::{S3Error, Target, verdict_of};

/// The default size above which uploads are multipart: 16 MiB.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// The default part size of a multipart upload: 8 MiB.
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// S3's smallest part (all parts but the last): 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// One S3 transfer: made by [`upload`](crate::upload),
/// [`upload_file`](crate::upload_file), [`download`](crate::download) or
/// [`download_to_file`](crate::download_to_file), configured with the
/// methods below, then `.await`ed (or spawned) to run it.
///
/// Every attempt switches the SDK's own retries off (so attempts are not
/// multiplied: 5 of ours × 3 of the SDK's would be 15), and its run is named
/// by operation and object in logs and metrics (`PutObject s3://bike-data/raw/day.csv`);
/// its errors ([`S3Error`]) name the object and the part.
///
/// A transfer is a future of its own, `Send`, and `'static` unless an
/// [`on_retry`](Self::on_retry) callback borrows: it keeps a clone of the
/// client (a `Client` is a handle, cheap to clone), so pipelines spawn
/// transfers as they are written:
///
/// ```no_run
/// # async fn demo(client: aws_sdk_s3::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let mut uploads = Vec::new();
/// for day in 1..=28 {
///     let key = format!("raw/2026-02-{day:02}.csv");
///     uploads.push(tokio::spawn(backstop_aws::upload(&client, "bike-data", &key, vec![0u8; 1024])));
/// }
/// for upload in uploads {
///     upload.await??;
/// }
/// # Ok(()) }
/// ```
///
/// Dropping the future (a caller's timeout, a shutdown) cleans up: a
/// multipart upload under way is aborted at once (and again once its parts
/// on the wire are answered; [`finish_aborts`](crate::finish_aborts) waits
/// for that before a program exits), and a file download leaves no
/// temporary file behind.
#[must_use = "a transfer does nothing until .await"]
pub struct Transfer<'a, K: Kind> {
    pub(crate) client: Client,
    /// What it moves; taken when the transfer starts.
    pub(crate) kind: Option<K>,
    pub(crate) settings: Settings<'a>,
    /// The transfer under way, once polled.
    running: Option<TransferFuture<'a, K::Output>>,
}

/// A callback before every retry of any request of a transfer.
type OnRetry<'a> = Arc<dyn Fn(&RetryEvent<'_, S3Error>) + Send + Sync + 'a>;

/// The retry settings of a transfer (public in a private module: a kind of
/// transfer is made here only).
#[derive(Clone)]
pub struct Settings<'a> {
    pub(crate) policy: RetryPolicy,
    pub(crate) guards: Guards,
    pub(crate) on_retry: Option<OnRetry<'a>>,
    /// What the transfer sent, counted as its requests succeed.
    pub(crate) report: Arc<Counts>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) multipart_threshold: u64,
    pub(crate) part_size: u64,
    pub(crate) concurrency: usize,
    /// Hedges the GETs of downloads and the parts of uploads.
    pub(crate) hedge: Option<Hedge>,
}

impl std::fmt::Debug for Settings<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("policy", &self.policy)
            .field("guards", &self.guards)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl<'a> Settings<'a> {
    pub(crate) fn new(policy: &RetryPolicy) -> Self {
        Self {
            policy: policy.clone(),
            guards: Guards::default(),
            on_retry: None,
            report: Arc::default(),
            attempt_timeout: None,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            concurrency: 4,
            hedge: None,
        }
    }

    /// Runs `op` under the settings, named `operation s3://bucket/key`.
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
        let name = target.run_name(operation);
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
        self.report.requests.fetch_add(attempts, Ordering::Relaxed);
        self.report.retries.fetch_add(attempts - 1, Ordering::Relaxed);
        Ok(value)
    }

    /// Sends one request per part, `concurrency` at a time, each retried on
    /// its own under the settings (their guards; each attempt counted in the
    /// report, each retry told to `on_retry`), stopping at the first part
    /// that fails for good: the parts of a multipart upload and of a ranged
    /// download. Gives back the parts' outputs in their order.
    pub(crate) async fn run_parts<'s, P, T, F>(
        &'s self,
        name: backstop::retry::Name,
        parts: Vec<P>,
        op: F,
    ) -> Result<Vec<T>, RetryError<S3Error>>
    where
        P: Clone + Send + 's,
        T: Send + 's,
        F: FnMut(P) -> Attempt<'s, T> + Send + 's,
    {
        // Each part's first attempt, then one more per retry.
        self.report.requests.fetch_add(u32::try_from(parts.len()).unwrap_or(u32::MAX), Ordering::Relaxed);
        self.policy
            .batch(parts, op)
            .when(verdict_of)
            .name(name)
            .guards(&self.guards)
            .on_retry(|_, event| {
                self.report.requests.fetch_add(1, Ordering::Relaxed);
                self.report.retries.fetch_add(1, Ordering::Relaxed);
                self.retrying(event);
            })
            .concurrency(self.concurrency)
            .fail_fast()
            .await
            .into_result()
    }

    /// Tells the transfer's callback, if any, of a retry.
    pub(crate) fn retrying(&self, event: &RetryEvent<'_, S3Error>) {
        if let Some(hook) = &self.on_retry {
            hook(event);
        }
    }

    /// The timer of one attempt's timeout, for attempts that are not run by
    /// [`run`](Self::run) (the parts of a multipart upload or of a ranged
    /// download, sent by a batch):
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

impl<K: Kind + std::fmt::Debug> std::fmt::Debug for Transfer<'_, K> {
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

impl<'a, K: Kind> Transfer<'a, K> {
    pub(crate) fn new(client: &Client, kind: K, policy: &RetryPolicy) -> Self {
        Self { client: client.clone(), kind: Some(kind), settings: Settings::new(policy), running: None }
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

    /// Hedges the `GetObject`s of a [`download`](crate::download) or a
    /// [`download_to_file`](crate::download_to_file), each ranged part of a
    /// large object on its own: past the hedge's delay the GET is sent again
    /// and the first whole body wins (see [`Hedge`]); a body is written to
    /// the file only once its request has won. An upload's parts are hedged
    /// the same way (a part may be sent twice: the same bytes under the same
    /// part number, the last write wins); its `PutObject`,
    /// `CreateMultipartUpload` and `CompleteMultipartUpload` are not. A
    /// hedged attempt is one attempt; the report counts each hedge sent as a
    /// request and a hedge ([`TransferReport::hedges`]).
    pub fn hedge(mut self, hedge: &Hedge) -> Self {
        self.settings.hedge = Some(hedge.clone());
        self
    }

    /// Guards per bucket (see [`backstop::keyed`]): the transfer takes its
    /// bucket's guards from `keyed` (made on the bucket's first transfer),
    /// in place of those of the same kind set so far. One bucket's open
    /// breaker then stops no other bucket's transfers.
    pub fn per_bucket(self, keyed: &Keyed<Guards>) -> Self {
        self.keyed_by(keyed, |bucket, _| bucket.to_owned())
    }

    /// Guards per prefix: the transfer takes the guards of its bucket and
    /// the first `segments` `/`-separated segments of its key's directory
    /// from `keyed` (key `bucket/logs/2026/` for `logs/2026/12/07.json` and
    /// 2 segments; fewer if the key has fewer). S3's request rates are per
    /// prefix (3,500 PUT/COPY/POST/DELETE and 5,500 GET/HEAD a second per
    /// partitioned prefix): a pacer per prefix paces each at its own rate.
    pub fn per_prefix(self, keyed: &Keyed<Guards>, segments: usize) -> Self {
        self.keyed_by(keyed, |bucket, key| prefix_key(bucket, key, segments))
    }

    fn keyed_by(mut self, keyed: &Keyed<Guards>, key_of: impl FnOnce(&str, &str) -> String) -> Self {
        if let Some((bucket, key)) = self.kind.as_ref().map(Kind::object) {
            let guards = keyed.get(&key_of(bucket, key));
            self.settings.edit_guards(|g| g.merge(&guards));
        }
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

    /// Takes a place from `limit` before every attempt of every request of
    /// the transfer (a multipart upload's parts included): every transfer
    /// given the same limit shares its places.
    pub fn limit(mut self, limit: &backstop::limit::ConcurrencyLimit) -> Self {
        self.settings.edit_guards(|g| g.limit(limit));
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
    /// A hook that borrows makes the transfer borrow for as long (it is then
    /// awaited where it was made, not spawned).
    pub fn on_retry<'b, F>(self, hook: F) -> Transfer<'b, K>
    where
        'a: 'b,
        F: Fn(&RetryEvent<'_, S3Error>) + Send + Sync + 'b,
    {
        let Transfer { client, kind, settings, running: _ } = self;
        let mut settings: Settings<'b> = settings;
        settings.on_retry = Some(Arc::new(hook));
        Transfer { client, kind, settings, running: None }
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

    /// Uploads larger than this many bytes are multipart, and downloads
    /// larger than this come in ranged parts (default 16 MiB).
    pub fn multipart_threshold(mut self, bytes: u64) -> Self {
        self.settings.multipart_threshold = bytes;
        self
    }

    /// The part size of multipart uploads and of ranged downloads (default
    /// 8 MiB). S3 rejects upload
    /// parts under 5 MiB (but the last) only when the upload completes, after
    /// every part was sent, so smaller sizes are raised to 5 MiB here.
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.settings.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// How many parts of a multipart upload are sent, or of a ranged
    /// download asked for, at once (default 4).
    pub fn concurrency(mut self, parts: usize) -> Self {
        self.settings.concurrency = parts.max(1);
        self
    }

    /// Makes the transfer return `(output, report)`: what it sent to do it
    /// ([`TransferReport`]: requests and retries).
    pub fn with_report(self) -> Transfer<'a, WithReport<K>> {
        Transfer { client: self.client, kind: self.kind.map(WithReport), settings: self.settings, running: None }
    }
}

/// What a transfer sent, from [`Transfer::with_report`]: every request to S3,
/// and how many of them were retries. An attempt is one try of one request,
/// as everywhere in backstop; a transfer is several requests, each with its
/// own attempts:
///
/// | transfer | `requests` with no retries |
/// |---|---|
/// | a `PutObject`, or a download of an object of at most `part_size` bytes | 1 |
/// | a multipart upload of `n` parts | `n + 2` (the create, each part, the complete) |
/// | a download of `n` parts of `part_size` bytes | `n` |
///
/// Each retry adds one to `requests` and `retries`; each hedge one to
/// `requests` and `hedges`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TransferReport {
    /// Requests sent, retries and hedges included.
    pub requests: u32,
    /// Of those, how many were retries of a failed attempt.
    pub retries: u32,
    /// Of those, how many were hedges: a second request of an attempt that
    /// was slow (see [`Transfer::hedge`]).
    pub hedges: u32,
}

/// The counts behind a [`TransferReport`], shared by a transfer's requests.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) requests: AtomicU32,
    pub(crate) retries: AtomicU32,
    pub(crate) hedges: AtomicU32,
}

impl Counts {
    fn report(&self) -> TransferReport {
        TransferReport {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            hedges: self.hedges.load(Ordering::Relaxed),
        }
    }
}

/// One attempt of one of a transfer's requests, hedged or not.
pub(crate) type Attempt<'a, T> = Pin<Box<dyn Future<Output = Result<T, S3Error>> + Send + 'a>>;

/// One attempt of a request made by `op`: hedged when the transfer has a
/// hedge, each request the hedge sends beyond the first counted in the
/// report as a request and a hedge.
pub(crate) fn hedged<'a, T, F, Fut>(s: &'a Settings<'_>, mut op: F) -> Attempt<'a, T>
where
    T: Send + 'a,
    F: FnMut() -> Fut + Send + 'a,
    Fut: Future<Output = Result<T, S3Error>> + Send + 'a,
{
    match &s.hedge {
        None => Box::pin(op()),
        Some(hedge) => {
            let (report, mut sent) = (&*s.report, 0u32);
            Box::pin(hedge.run(move || {
                sent += 1;
                if sent > 1 {
                    report.requests.fetch_add(1, Ordering::Relaxed);
                    report.hedges.fetch_add(1, Ordering::Relaxed);
                }
                op()
            }))
        }
    }
}

/// A transfer that also returns its [`TransferReport`]; see [`Transfer::with_report`].
#[derive(Debug)]
pub struct WithReport<K>(K);

impl<K: Kind> Kind for WithReport<K> {
    type Output = (K::Output, TransferReport);

    fn run<'a>(self, client: Client, settings: Settings<'a>) -> TransferFuture<'a, Self::Output> {
        let counts = Arc::clone(&settings.report);
        let run = self.0.run(client, settings);
        Box::pin(async move {
            let output = run.await?;
            Ok((output, counts.report()))
        })
    }

    fn object(&self) -> (&str, &str) {
        self.0.object()
    }
}

/// A boxed future of a transfer.
pub type TransferFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RetryError<S3Error>>> + Send + 'a>>;

/// What a kind of transfer does when it starts: implemented by
/// [`Upload`](crate::Upload), [`UploadFile`](crate::UploadFile),
/// [`Download`](crate::Download) and [`DownloadToFile`](crate::DownloadToFile)
/// (and only by this crate).
pub trait Kind: Sized {
    /// What the transfer gives back.
    type Output: Send + 'static;
    /// Starts the transfer with its client and settings.
    fn run<'a>(self, client: Client, settings: Settings<'a>) -> TransferFuture<'a, Self::Output>;
    /// The object it moves: `(bucket, key)`.
    fn object(&self) -> (&str, &str);
}

impl<K: Kind + Unpin> Future for Transfer<'_, K> {
    type Output = Result<K::Output, RetryError<S3Error>>;

    /// Starts the transfer on the first poll (the settings are final by
    /// then), and runs it.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let running = match (&mut this.running, this.kind.take()) {
            (Some(running), _) => running,
            (None, Some(kind)) => this.running.insert(kind.run(this.client.clone(), this.settings.clone())),
            // Only a transfer that was never made can have neither.
            (None, None) => return Poll::Pending,
        };
        running.as_mut().poll(cx)
    }
}

/// `bucket/` and the first `segments` segments of `key`'s directory, each
/// with its `/` (the object's own name is never part of it).
fn prefix_key(bucket: &str, key: &str, segments: usize) -> String {
    let dir = key.rfind('/').map_or("", |end| &key[..=end]);
    let end = match segments {
        0 => 0,
        n => dir.match_indices('/').nth(n - 1).map_or(dir.len(), |(i, _)| i + 1),
    };
    format!("{bucket}/{}", &dir[..end])
}

#[cfg(test)]
mod tests {
    use super::prefix_key;

    #[test]
    fn a_prefix_key_is_the_bucket_and_the_first_segments_of_the_directory() {
        assert_eq!(prefix_key("logs", "app/2026/12/07.json", 2), "logs/app/2026/");
        assert_eq!(prefix_key("logs", "app/2026/12/07.json", 9), "logs/app/2026/12/");
        assert_eq!(prefix_key("logs", "07.json", 2), "logs/");
        assert_eq!(prefix_key("logs", "app/07.json", 0), "logs/");
        assert_eq!(prefix_key("logs", "a//b/c", 2), "logs/a//");
    }
}
