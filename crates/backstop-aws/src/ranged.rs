//! Large downloads in ranged parts. The first `GetObject` asks for the
//! whole object: one no larger than the transfer's `multipart_threshold`
//! (or without an ETag) is read whole from it, and the SDK checks its
//! checksum. A larger one gives its first `part_size` bytes from that answer
//! (the rest of its body is dropped), and its other parts come in ranged
//! GETs of `part_size` bytes, `concurrency` at a time, each its own request
//! with its own retries and hedge, and each asking for the version the
//! first answer came from (`If-Match` its ETag: an object replaced meanwhile
//! fails the download with `PreconditionFailed` rather than mixing two
//! versions). Every answer is checked against what was asked (its range,
//! the object's size, its length). S3 sends no checksum with a ranged
//! answer, so a ranged download's bytes are checked only by TLS and TCP
//! (as with boto3's and the AWS CLI's ranged downloads).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

use aws_sdk_s3::Client;
use backstop::RetryError;
use bytes::{Bytes, BytesMut};

use crate::error::{S3Error, Target};
use crate::transfer::{Attempt, Settings, hedged};

/// An answer's bytes, with the object's size and ETag.
pub(crate) struct Piece {
    pub(crate) body: Bytes,
    /// The object's size, in bytes.
    pub(crate) total: u64,
    pub(crate) etag: Option<String>,
}

/// An answer that is not what was asked for.
fn unexpected(target: Target<'_>, what: String) -> S3Error {
    S3Error::unusable("GetObject", target, &what)
}

/// The first GET of the object: all of it when it is no larger than
/// `threshold` (or `part_size`) bytes or has no ETag, else its first
/// `part_size` bytes.
pub(crate) async fn first(
    client: &Client,
    target: Target<'_>,
    part_size: u64,
    threshold: u64,
) -> Result<Piece, S3Error> {
    let request = client.get_object().bucket(target.bucket).key(target.key);
    let out = send_once!(request, "GetObject", target)?;
    let etag = out.e_tag().map(str::to_owned);
    let length = out.content_length().and_then(|n| u64::try_from(n).ok());
    let Some(total) = length.filter(|&total| total > threshold.max(part_size) && etag.is_some()) else {
        let body = out.body.collect().await.map_err(|e| S3Error::body("GetObject", target, e))?.into_bytes();
        if let Some(length) = length.filter(|&n| n != body.len() as u64) {
            return Err(unexpected(target, format!("{} bytes in an answer of {length}", body.len())));
        }
        return Ok(Piece { total: body.len() as u64, body, etag });
    };
    // Only the first part is read; dropping the body ends the answer.
    let mut body = out.body;
    let mut read = BytesMut::new();
    while (read.len() as u64) < part_size {
        match body.try_next().await.map_err(|e| S3Error::body("GetObject", target, e))? {
            Some(chunk) => read.extend_from_slice(&chunk),
            None => return Err(unexpected(target, format!("{} bytes in an answer of {total}", read.len()))),
        }
    }
    read.truncate(usize::try_from(part_size).unwrap_or(usize::MAX));
    Ok(Piece { body: read.freeze(), total, etag })
}

/// One ranged GET of `[start, end)` of an object of `total` bytes, version
/// `etag`, its body read in the attempt (a connection dropped mid-body is
/// retried) and checked against what was asked.
async fn part(
    client: &Client,
    target: Target<'_>,
    (start, end): (u64, u64),
    total: u64,
    etag: &str,
) -> Result<Bytes, S3Error> {
    let request = client.get_object().bucket(target.bucket).key(target.key);
    let request = request.range(format!("bytes={start}-{}", end - 1)).if_match(etag);
    let out = send_once!(request, "GetObject", target)?;
    let range = out.content_range().map(str::to_owned);
    let body = out.body.collect().await.map_err(|e| S3Error::body("GetObject", target, e))?.into_bytes();
    let asked = format!("bytes {start}-{}/{total}", end - 1);
    if range.as_deref().and_then(content_range) != Some((start, end - 1, total)) {
        let got = range.unwrap_or_else(|| "no Content-Range".to_owned());
        return Err(unexpected(target, format!("an answer with {got} where {asked} was asked for")));
    }
    if body.len() as u64 != end - start {
        return Err(unexpected(target, format!("{} bytes where {asked} was asked for", body.len())));
    }
    Ok(body)
}

/// The first byte, last byte and size in a `Content-Range`
/// (`bytes 0-99/1234`), if it gives all three.
fn content_range(value: &str) -> Option<(u64, u64, u64)> {
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?, total.trim().parse().ok()?))
}

/// The parts after `first`, `[part_size, total)` in ranges of `part_size`,
/// each handed to `put(offset, bytes)` as it arrives (in any order), in the
/// attempt that fetched it. `first` has an ETag (see [`first`]).
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
    let etag = first.etag.as_deref().unwrap_or_default();
    // Part n (from 2) covers [offset, end).
    let parts: Vec<(i32, u64, u64)> = (1..total.div_ceil(size))
        .map(|i| (i32::try_from(i + 1).unwrap_or(i32::MAX), i * size, total.min((i + 1) * size)))
        .collect();
    let put = &put;
    let parts = s.run_parts(target.run_name("GetObject"), parts, |(number, offset, end)| -> Attempt<'_, ()> {
        let target = target.part(number);
        Box::pin(async move {
            let request = hedged(s, move || part(client, target, (offset, end), total, etag));
            let bytes = within_attempt_timeout(s, target, request).await?;
            put(offset, bytes).await
        })
    });
    parts.await.map(|_| ())
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
    use super::content_range;

    #[test]
    fn a_content_range_gives_its_range_and_size_or_nothing() {
        assert_eq!(content_range("bytes 0-5242879/11534336"), Some((0, 5_242_879, 11_534_336)));
        assert_eq!(content_range("bytes */42"), None);
        assert_eq!(content_range("bytes 0-9/*"), None);
        assert_eq!(content_range("bytes 0-9/99999999999999999999999"), None);
        assert_eq!(content_range("garbage"), None);
    }
}
