//! Multipart uploads: create, send the parts (each retried on its own, a few
//! at once, each attempt under the transfer's per-attempt timeout), complete.
//!
//! From the moment S3 has created the upload, an [`AbortGuard`] makes sure it
//! does not stay pending: a failed upload is aborted before its error is
//! returned, and a dropped one is aborted in the background, in both cases
//! once the part (and complete) requests on the wire have been answered (see
//! [`InFlight`]).

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use backstop::RetryError;

use crate::abort_guard::AbortGuard;
use crate::error::{S3Error, Target};
use crate::in_flight::{InFlight, Sent};
use crate::source::{Source, Uploaded};
use crate::transfer::{Attempt, Settings, hedged};

/// Uploads `len` bytes of `source` to `bucket/key` in parts of `s.part_size`.
pub(crate) async fn multipart(
    client: &Client,
    s: Settings<'_>,
    bucket: &str,
    key: &str,
    source: &Source,
    len: u64,
) -> Result<Uploaded, RetryError<S3Error>> {
    let object = Target::object(bucket, key);
    // From the answer on, the upload exists: it is completed, or aborted.
    let guard = s.run("CreateMultipartUpload", object, || AbortGuard::create(client, object)).await?;
    let upload_id = guard.upload_id().to_owned();
    let upload_id = upload_id.as_str();
    let upload = object.upload(upload_id);

    let completed = match send_parts(client, &s, upload, guard.in_flight(), source, len).await {
        Ok(parts) => parts,
        Err(e) => return Err(failed(guard, &s, e).await),
    };
    let count = completed.len() as u32;
    let manifest = CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
    let in_flight = guard.in_flight();
    let done = s
        .run("CompleteMultipartUpload", upload, || async {
            let request = client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(manifest.clone())
                .customize()
                .config_override(crate::no_sdk_retries())
                .send();
            // Sent like a part: if dropped, it runs to its answer before the abort.
            sent("CompleteMultipartUpload", upload, in_flight.send_timed(request, s.attempt_timer()).await)
        })
        .await;
    match done {
        Ok(out) => {
            guard.disarm();
            Ok(Uploaded {
                e_tag: out.e_tag().map(str::to_owned),
                version_id: out.version_id().map(str::to_owned),
                parts: count,
            })
        }
        Err(e) => Err(failed(guard, &s, e).await),
    }
}

/// Sends every part, a few at once (each request tracked by `in_flight`),
/// and gives back the manifest's entries in part order; stops at the first
/// part that fails for good.
async fn send_parts(
    client: &Client,
    s: &Settings<'_>,
    upload: Target<'_>,
    in_flight: &InFlight,
    source: &Source,
    len: u64,
) -> Result<Vec<CompletedPart>, RetryError<S3Error>> {
    // Part n (from 1) covers [offset, offset + size).
    let parts: Vec<(i32, u64, u64)> = (0..len.div_ceil(s.part_size))
        .map(|i| (i as i32 + 1, i * s.part_size, s.part_size.min(len - i * s.part_size)))
        .collect();
    s.run_parts(upload.run_name("UploadPart"), parts, |(number, offset, size)| -> Attempt<'_, CompletedPart> {
        // One request for the part, its body read afresh from the source.
        let send = move || async move {
            let target = upload.part(number);
            let timer = s.attempt_timer();
            let body = source.body("UploadPart", target, offset, size).await?;
            let request = client
                .upload_part()
                .bucket(upload.bucket)
                .key(upload.key)
                .upload_id(upload.upload_id.unwrap_or_default())
                .part_number(number)
                .content_length(size as i64)
                .body(body)
                .customize()
                .config_override(crate::no_sdk_retries())
                .send();
            let out = sent("UploadPart", target, in_flight.send_timed(request, timer).await)?;
            Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_owned)).build())
        };
        // A part may be sent twice: the same bytes under the same number,
        // the last write wins, and both answers carry the same ETag.
        hedged(s, send)
    })
    .await
}

/// The outcome of a request sent by [`InFlight::send_timed`], as an attempt's.
fn sent<T, E>(
    operation: &'static str,
    target: Target<'_>,
    outcome: Sent<Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, S3Error>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match outcome {
        Sent::Done(out) => out.map_err(|e| S3Error::from_sdk(operation, e).at(target)),
        Sent::TimedOut(after) => Err(S3Error::timed_out(operation, target, after)),
        Sent::Cancelled => Err(S3Error::unusable(operation, target, "the upload is being aborted")),
    }
}

/// The upload failed with `e`: aborts it, and if the abort fails too, says
/// so in the error (see [`S3Error::abort_error`]).
async fn failed(guard: AbortGuard, s: &Settings<'_>, e: RetryError<S3Error>) -> RetryError<S3Error> {
    let Err(abort) = guard.abort(s).await else { return e };
    match e {
        // No attempt's error to attach it to: the abort's is the error to see.
        RetryError::DeadlineExceeded { name, attempts, elapsed, deadline, last: None } => {
            RetryError::DeadlineExceeded { name, attempts, elapsed, deadline, last: Some(abort) }
        }
        RetryError::CircuitOpen { name, attempts, open, last: None } => {
            RetryError::CircuitOpen { name, attempts, open, last: Some(abort) }
        }
        RetryError::Throttled { name, attempts, last: None } => {
            RetryError::Throttled { name, attempts, last: Some(abort) }
        }
        e => e.map_err(|last| last.with_abort_error(abort)),
    }
}
