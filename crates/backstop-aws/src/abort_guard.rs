//! Aborting a multipart upload that will not be completed: [`AbortGuard`].
//!
//! An upload S3 has created stays pending, its parts stored and billed, until
//! it is completed or aborted. The guard is made as soon as
//! `CreateMultipartUpload` has answered with an upload id
//! ([`AbortGuard::create`]: even when the attempt that sent it was dropped
//! before the answer came), and stays armed until the upload is completed or
//! its failure handled:
//!
//! - the upload fails (a part or the completion fails for good): the abort is
//!   sent and awaited, retried a few times ([`AbortGuard::abort`]); if it
//!   still fails, the upload's error says so, naming the upload id;
//!   The abort is sent once the upload's part requests still on the wire
//!   have been answered (see [`InFlight`]): the caller is waiting anyway,
//!   and no part lands after it;
//! - the upload's future is dropped (the caller's own timeout, a shutdown):
//!   the guard's `Drop` spawns the abort on the current tokio runtime and
//!   sends it at once (a program that times out usually exits next); if
//!   parts were on the wire, it sends it again once they have been answered
//!   (S3 may store a part that overtakes an abort: "it might be necessary
//!   to abort a given multipart upload multiple times"). Each round is tried
//!   up to [`ABORT_ATTEMPTS`] times, all within [`ABORT_TIMEOUT`]; a warning
//!   names the bucket, key and upload id if it fails (or if there is no
//!   runtime to send it on). The task holds a [`Pending`] token, so
//!   [`finish_aborts`](crate::finish_aborts) can wait for it before the
//!   program exits; a runtime that shuts down first drops it unsent, and
//!   S3's lifecycle rule `AbortIncompleteMultipartUpload` is the backstop
//!   for that.

use std::time::Duration;

use aws_sdk_s3::Client;
use backstop::duration::Seconds;
use backstop::error::Chain;
use backstop::{Backoff, Jitter, RetryError, RetryPolicy, Verdict};

use crate::error::{S3Error, Target, verdict_of};
use crate::in_flight::InFlight;
use crate::pending_aborts::Pending;
use crate::transfer::Settings;

/// How long the abort of a dropped upload may take, waiting for its part
/// requests still on the wire included, and each attempt of the abort of a
/// failed one when the transfer has no
/// [`attempt_timeout`](crate::Transfer::attempt_timeout) of its own: 10 s.
pub const ABORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times the abort of a failed or dropped upload is tried, 50 ms
/// doubling to 500 ms apart (full jitter), all within [`ABORT_TIMEOUT`]: 10.
/// An abort must get through (until it does, the parts stay billed), and
/// one tried 10 times fails only if S3 refuses it for seconds on end.
pub const ABORT_ATTEMPTS: u32 = 10;

/// The retry policy of an abort: [`ABORT_ATTEMPTS`] tries, quick ones,
/// within [`ABORT_TIMEOUT`].
fn abort_policy() -> Result<RetryPolicy, backstop::ConfigError> {
    RetryPolicy::builder()
        .max_attempts(ABORT_ATTEMPTS)
        .backoff(Backoff::exponential(Duration::from_millis(50)).max_delay(Duration::from_millis(500)))
        .jitter(Jitter::Full)
        .max_elapsed(ABORT_TIMEOUT)
        .build()
}

/// How long one attempt of an abort may take, unless the transfer sets its
/// own per-attempt timeout: a stalled attempt must leave time for others.
const ABORT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long an abort waits for the upload's part requests still on the wire
/// to be answered (S3 may store a part that overtakes the abort).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// A pending multipart upload, aborted unless [`disarm`](Self::disarm)ed or
/// [`abort`](Self::abort)ed in time; see the [module docs](self).
pub(crate) struct AbortGuard {
    client: Client,
    in_flight: InFlight,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl AbortGuard {
    /// Sends one `CreateMultipartUpload` for `target` and guards the upload
    /// it creates.
    ///
    /// The request is sent from a task of its own, and the guard is made
    /// there as soon as the answer is read: if this attempt is dropped first
    /// (the transfer's future dropped, or the attempt cut by its timeout),
    /// the guard is dropped with nobody to take it, and the upload that S3
    /// created is aborted rather than lost.
    pub(crate) async fn create(client: &Client, target: Target<'_>) -> Result<Self, S3Error> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return create_once(client, target.bucket, target.key).await;
        };
        let (client, bucket, key) = (client.clone(), target.bucket.to_owned(), target.key.to_owned());
        let (mut tx, rx) = tokio::sync::oneshot::channel();
        // Counted as pending (for `finish_aborts`) from now, so that a caller
        // that drops the upload and calls `finish_aborts` at once finds it,
        // until the guard, if dropped with the message below, has spawned
        // its abort.
        let pending = Pending::start();
        runtime.spawn(async move {
            let create = create_once(&client, &bucket, &key);
            tokio::pin!(create);
            // Once the caller has gone, its answer is waited for no longer
            // than an abort would be.
            let created = tokio::select! {
                created = &mut create => created,
                () = tx.closed() => {
                    match tokio::time::timeout(ABORT_TIMEOUT, create).await {
                        Ok(created) => created,
                        Err(_) => {
                            tracing::warn!(
                                bucket = %bucket,
                                key = %key,
                                "the multipart upload s3://{bucket}/{key} was dropped while CreateMultipartUpload \
                                 was on the wire, and it got no answer in {} seconds: an upload S3 created is \
                                 left pending (S3's lifecycle rule AbortIncompleteMultipartUpload removes it)",
                                Seconds(ABORT_TIMEOUT)
                            );
                            return;
                        }
                    }
                }
            };
            // Dropped with the message if nobody receives it: then it aborts.
            let _ = tx.send(created);
            drop(pending);
        });
        rx.await.unwrap_or_else(|_| {
            Err(S3Error::unusable("CreateMultipartUpload", target, "the task sending it was cancelled"))
        })
    }

    /// Guards the upload `upload_id` of `bucket/key`.
    fn new(client: &Client, bucket: &str, key: &str, upload_id: &str) -> Self {
        Self {
            client: client.clone(),
            in_flight: InFlight::default(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            armed: true,
        }
    }

    /// The upload id S3 gave the upload.
    pub(crate) fn upload_id(&self) -> &str {
        &self.upload_id
    }

    /// The upload's part and complete requests on the wire, which an abort waits for.
    pub(crate) fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// The upload has been completed: nothing to abort.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }

    /// Aborts the upload now, retrying up to [`ABORT_ATTEMPTS`] times on
    /// the transfer's clock (without its breaker, budget or pacer: an open
    /// breaker must not keep the parts billed). Returns the abort's error,
    /// marked "left pending", if it failed for good, and logs it. The guard
    /// stays armed until the abort has returned, so dropping this future
    /// spawns it.
    pub(crate) async fn abort(mut self, settings: &Settings<'_>) -> Result<(), S3Error> {
        let target = Target::object(&self.bucket, &self.key).upload(&self.upload_id);
        let policy = abort_policy();
        let s = Settings {
            policy: policy.unwrap_or_else(|_| settings.policy.clone()),
            guards: settings.guards.clock_only(),
            attempt_timeout: Some(settings.attempt_timeout.unwrap_or(ABORT_ATTEMPT_TIMEOUT)),
            ..settings.clone()
        };
        self.in_flight.settle(SETTLE_TIMEOUT).await;
        let client = &self.client;
        let result = s.run("AbortMultipartUpload", target, || abort_once(client, target)).await;
        self.armed = false;
        let Err(e) = result else { return Ok(()) };
        let error = match e {
            RetryError::DeadlineExceeded { last: None, .. } => {
                S3Error::unusable("AbortMultipartUpload", target, "the policy's deadline came before it was answered")
            }
            e => e.into_inner().unwrap_or_else(|| S3Error::unusable("AbortMultipartUpload", target, "not sent")),
        }
        .left_pending();
        tracing::warn!(
            bucket = %self.bucket,
            key = %self.key,
            upload_id = %self.upload_id,
            error = %Chain(&error),
            "the multipart upload s3://{}/{} failed and could not be aborted: upload id {} is left pending",
            self.bucket,
            self.key,
            self.upload_id,
        );
        Err(error)
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (bucket, key, upload_id) =
            (std::mem::take(&mut self.bucket), std::mem::take(&mut self.key), std::mem::take(&mut self.upload_id));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                bucket = %bucket,
                key = %key,
                upload_id = %upload_id,
                "the multipart upload s3://{bucket}/{key} was dropped outside a tokio runtime, so it cannot \
                 be aborted: upload id {upload_id} is left pending",
            );
            return;
        };
        let (client, in_flight, pending) = (self.client.clone(), self.in_flight.clone(), Pending::start());
        let parts_on_the_wire = in_flight.busy();
        runtime.spawn(async move {
            let _pending = pending;
            let target = Target::object(&bucket, &key).upload(&upload_id);
            // Retried like the abort of a failed upload (a 503 or a reset must
            // not leave the parts billed), all within ABORT_TIMEOUT.
            // `Err((aborted_once, error))` when a round failed for good.
            let mut aborted_once = false;
            let outcome = tokio::time::timeout(ABORT_TIMEOUT, async {
                abort_retried(&client, target).await.map_err(|e| (false, e))?;
                aborted_once = true;
                if parts_on_the_wire {
                    in_flight.settle(SETTLE_TIMEOUT).await;
                    abort_retried(&client, target).await.map_err(|e| (true, e))?;
                }
                Ok(())
            })
            .await
            .unwrap_or_else(|_| Err((aborted_once, format!("no answer in {} seconds", Seconds(ABORT_TIMEOUT)))));
            match outcome {
                Ok(()) => tracing::info!(
                    bucket = %bucket,
                    key = %key,
                    upload_id = %upload_id,
                    "aborted the multipart upload s3://{bucket}/{key} (upload id {upload_id}): it was dropped before it completed",
                ),
                Err((false, error)) => tracing::warn!(
                    bucket = %bucket,
                    key = %key,
                    upload_id = %upload_id,
                    error = %error,
                    "the multipart upload s3://{bucket}/{key} was dropped and its abort failed: upload id {upload_id} \
                     is left pending: {error}",
                ),
                Err((true, error)) => tracing::warn!(
                    bucket = %bucket,
                    key = %key,
                    upload_id = %upload_id,
                    error = %error,
                    "the multipart upload s3://{bucket}/{key} was dropped and aborted, but the abort sent again once \
                     its parts on the wire were answered failed: a part stored after the first abort may be left \
                     pending under upload id {upload_id}: {error}",
                ),
            }
        });
    }
}

/// One `CreateMultipartUpload`, the SDK's retries off, guarded as soon as it is answered.
async fn create_once(client: &Client, bucket: &str, key: &str) -> Result<AbortGuard, S3Error> {
    let target = Target::object(bucket, key);
    let request = client.create_multipart_upload().bucket(bucket).key(key);
    let created = send_once!(request, "CreateMultipartUpload", target)?;
    match created.upload_id() {
        Some(upload_id) => Ok(AbortGuard::new(client, bucket, key, upload_id)),
        None => Err(S3Error::unusable("CreateMultipartUpload", target, "the response had no upload id")),
    }
}

/// One `AbortMultipartUpload`, the SDK's retries off. An upload S3 no longer
/// knows (`NoSuchUpload`: completed or aborted already) counts as aborted.
/// The abort of a dropped upload: retried under [`abort_policy`], each try
/// bounded; the error, if it failed for good, as text for the log.
async fn abort_retried(client: &Client, target: Target<'_>) -> Result<(), String> {
    let policy = abort_policy().map_err(|e| e.to_string())?;
    let timed_out = |after| S3Error::timed_out("AbortMultipartUpload", target, after);
    policy
        .retry(|| abort_once(client, target))
        .when(verdict_of as fn(&S3Error) -> Verdict)
        .name("AbortMultipartUpload")
        .attempt_timeout(ABORT_ATTEMPT_TIMEOUT, timed_out)
        .await
        .map_err(|e| format!("{e:#}"))
}

async fn abort_once(client: &Client, target: Target<'_>) -> Result<(), S3Error> {
    let request = client
        .abort_multipart_upload()
        .bucket(target.bucket)
        .key(target.key)
        .upload_id(target.upload_id.unwrap_or_default());
    match send_once!(request, "AbortMultipartUpload", target) {
        Err(e) if e.code() == Some("NoSuchUpload") => Ok(()),
        other => other.map(drop),
    }
}
