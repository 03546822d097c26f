//! Downloads in ranged parts: the first `GetObject` asks for the first
//! `part_size` bytes, and its answer (`Content-Range`) tells the object's
//! size and its ETag. An object no larger than that is done; a larger one's
//! other parts come in ranged GETs of `part_size` bytes, `concurrency` at a
//! time, each its own request with its own retries and hedge, and each
//! asking for the version the first part came from (`If-Match` its ETag: an
//! object replaced meanwhile fails the download with `PreconditionFailed`
//! rather than mixing two versions).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::Poll;

use aws_sdk_s3::Client;
use backstop::RetryError;
use bytes::Bytes;

use crate::error::{S3Error, Target, verdict_of};
use crate::transfer::{Attempt, Settings, hedged};

/// One ranged GET's answer, its body read.
pub(crate) struct Piece {
    pub(crate) body: Bytes,
    /// The object's size, in bytes.
    pub(crate) total: u64,
    pub(crate) etag: Option<String>,
}

/// One GET of `[start, end)` of the object (the whole object when `range`
/// is `None`), asking for version `etag` when given; the body read in the
/// attempt, so a connection dropped mid-body is retried.
pub(crate) async fn get(
    client: &Client,
    target: Target<'_>,
    range: Option<(u64, u64)>,
    etag: Option<&str>,
) -> Result<Piece, S3Error> {
    let mut request = client.get_object().bucket(target.bucket).key(target.key);
    if let Some((start, end)) = range {
        request = request.range(format!("bytes={start}-{}", end - 1));
    }
    if let Some(etag) = etag {
        request = request.if_match(etag);
    }
    let out = send_once!(request, "GetObject", target)?;
    let etag = out.e_tag().map(str::to_owned);
    let total = out.content_range().and_then(total_of);
    let body = out.body.collect().await.map_err(|e| S3Error::body("GetObject", target, e))?.into_bytes();
    // No `Content-Range`: the answer is the whole object.
    let total = total.unwrap_or(body.len() as u64);
    Ok(Piece { body, total, etag })
}

/// The first part: the first `part_size` bytes, or the whole object when it
/// is empty (a range of an empty object is not satisfiable).
pub(crate) async fn first(client: &Client, target: Target<'_>, part_size: u64) -> Result<Piece, S3Error> {
    match get(client, target, Some((0, part_size)), None).await {
        Err(e) if e.code() == Some("InvalidRange") => get(client, target, None, None).await,
        answer => answer,
    }
}

/// The size in a `Content-Range` (`bytes 0-99/1234`), if it is given.
fn total_of(content_range: &str) -> Option<u64> {
    content_range.rsplit_once('/')?.1.trim().parse().ok()
}

/// The parts after `first`, `[part_size, total)` in ranges of `part_size`,
/// each handed to `put(offset, bytes)` as it arrives (in any order), in the
/// attempt that fetched it.
pub(crate) async fn rest<P, Fut>(
    client: &Client,
    s: &Settings<'_>,
    target: Target<'_>,
    first: &Piece,
    put: P,
) -> Result<(), RetryError<S3Error>>
where
    P: Fn(u64, Bytes) -> Fut + Sync,
    Fut: Future<Output = Result<(), S3Error>> + Send,
{
    let (total, size) = (first.total, s.part_size);
    let etag = first.etag.as_deref();
    // Part n (from 2) covers [offset, end).
    let parts: Vec<(i32, u64, u64)> = (1..total.div_ceil(size))
        .map(|i| (i32::try_from(i + 1).unwrap_or(i32::MAX), i * size, total.min((i + 1) * size)))
        .collect();
    // Each part's first attempt, then one more per retry (see `Settings::report`).
    s.report.requests.fetch_add(u32::try_from(parts.len()).unwrap_or(u32::MAX), Ordering::Relaxed);
    let put = &put;
    s.policy
        .batch(parts, |(number, offset, end)| -> Attempt<'_, ()> {
            let target = target.part(number);
            Box::pin(async move {
                let request = hedged(s, move || get(client, target, Some((offset, end)), etag));
                let piece = within_attempt_timeout(s, target, request).await?;
                if piece.body.len() as u64 != end - offset {
                    let what = format!("{} bytes where {} were asked for", piece.body.len(), end - offset);
                    return Err(S3Error::unusable("GetObject", target, &what));
                }
                put(offset, piece.body).await
            })
        })
        .when(verdict_of)
        .name(target.run_name("GetObject"))
        .guards(&s.guards)
        .on_retry(|_, event| {
            s.report.requests.fetch_add(1, Ordering::Relaxed);
            s.report.retries.fetch_add(1, Ordering::Relaxed);
            s.retrying(event);
        })
        .concurrency(s.concurrency)
        .fail_fast()
        .await
        .into_result()
        .map(|_| ())
}

/// `attempt`, cut at the transfer's attempt timeout, if it has one (the
/// parts are not run by `Settings::run`, which applies it to the others).
async fn within_attempt_timeout<T>(
    s: &Settings<'_>,
    target: Target<'_>,
    attempt: impl Future<Output = Result<T, S3Error>>,
) -> Result<T, S3Error> {
    let Some((limit, mut timer)) = s.attempt_timer() else { return attempt.await };
    let mut attempt = pin!(attempt);
    poll_fn(|cx| match attempt.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(out),
        Poll::Pending => timer.as_mut().poll(cx).map(|()| Err(S3Error::timed_out("GetObject", target, limit))),
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::total_of;

    #[test]
    fn the_size_is_read_from_a_content_range() {
        assert_eq!(total_of("bytes 0-5242879/11534336"), Some(11_534_336));
        assert_eq!(total_of("bytes */42"), Some(42));
        assert_eq!(total_of("bytes 0-9/*"), None);
        assert_eq!(total_of("garbage"), None);
    }
}
