//! Uploads: [`upload`] (bytes) and [`upload_file`] (a path), single or
//! multipart.
//!
//! The body is rebuilt for every attempt. Above the multipart threshold the
//! upload is split into parts, each retried on its own (a few at once); if a
//! part or the completion fails for good, the multipart upload is aborted so
//! no orphaned parts stay billed.

use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use backstop::{RetryError, Verdict, presets};
use bytes::Bytes;

use crate::error::{S3Error, verdict_of};
use crate::transfer::{Kind, Settings, Transfer, TransferFuture};

/// What an upload gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Uploaded {
    /// The object's ETag, as S3 returned it.
    pub e_tag: Option<String>,
    /// The object's version, in a versioned bucket.
    pub version_id: Option<String>,
    /// How many parts it was sent in (1 for a single `PutObject`).
    pub parts: u32,
}

/// Uploads `data` to `bucket/key`, retrying under the
/// [`S3_UPLOAD`](presets::S3_UPLOAD) preset unless [`policy`](Transfer::policy)
/// says otherwise.
///
/// ```no_run
/// # async fn demo(client: aws_sdk_s3::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let uploaded = backstop_aws::upload(&client, "bike-data", "processed/run-42.parquet", vec![1, 2, 3]).await?;
/// println!("ETag {:?}", uploaded.e_tag);
/// # Ok(()) }
/// ```
pub fn upload<'a>(client: &'a Client, bucket: &str, key: &str, data: impl Into<Bytes>) -> Transfer<'a, Upload> {
    let kind = Upload { bucket: bucket.to_owned(), key: key.to_owned(), data: data.into() };
    Transfer::new(client, kind, &presets::S3_UPLOAD)
}

/// Uploads the file at `path` to `bucket/key`, reading it again for every
/// attempt (and only the part's range for each part of a multipart upload),
/// so a large file is never held in memory.
pub fn upload_file<'a>(
    client: &'a Client,
    bucket: &str,
    key: &str,
    path: impl AsRef<Path>,
) -> Transfer<'a, UploadFile> {
    let kind = UploadFile { bucket: bucket.to_owned(), key: key.to_owned(), path: path.as_ref().to_owned() };
    Transfer::new(client, kind, &presets::S3_UPLOAD)
}

/// An upload of bytes in memory; see [`upload`].
#[derive(Debug)]
pub struct Upload {
    bucket: String,
    key: String,
    data: Bytes,
}

/// An upload of a file; see [`upload_file`].
#[derive(Debug)]
pub struct UploadFile {
    bucket: String,
    key: String,
    path: PathBuf,
}

/// Where an upload's bytes come from.
enum Source {
    Memory(Bytes),
    File(PathBuf),
}

impl Source {
    /// The bytes at `offset..offset + len`, as a fresh body.
    async fn body(&self, offset: u64, len: u64) -> Result<ByteStream, S3Error> {
        match self {
            Source::Memory(data) => Ok(ByteStream::from(data.slice(offset as usize..(offset + len) as usize))),
            Source::File(path) => ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(len))
                .build()
                .await
                .map_err(|e| S3Error::io("PutObject", "reading the file to upload", std::io::Error::other(e))),
        }
    }
}

impl<'a> Kind<'a> for Upload {
    type Output = Uploaded;

    fn run(t: Transfer<'a, Self>) -> TransferFuture<'a, Uploaded> {
        let Upload { bucket, key, data } = t.kind;
        let len = data.len() as u64;
        Box::pin(send(t.client, t.settings, bucket, key, Source::Memory(data), len))
    }
}

impl<'a> Kind<'a> for UploadFile {
    type Output = Uploaded;

    fn run(t: Transfer<'a, Self>) -> TransferFuture<'a, Uploaded> {
        let UploadFile { bucket, key, path } = t.kind;
        Box::pin(async move {
            let len = match tokio::fs::metadata(&path).await {
                Ok(meta) => meta.len(),
                Err(e) => {
                    let error = S3Error::io("PutObject", &format!("reading {}", path.display()), e);
                    let name = format!("PutObject {bucket}").into();
                    return Err(RetryError::Rejected { name, attempts: 0, error });
                }
            };
            send(t.client, t.settings, bucket, key, Source::File(path), len).await
        })
    }
}

async fn send(
    client: &Client,
    s: Settings<'_>,
    bucket: String,
    key: String,
    source: Source,
    len: u64,
) -> Result<Uploaded, RetryError<S3Error>> {
    if len <= s.multipart_threshold {
        return put_object(client, s, &bucket, &key, &source, len).await;
    }
    multipart(client, s, &bucket, &key, &source, len).await
}

async fn put_object(
    client: &Client,
    s: Settings<'_>,
    bucket: &str,
    key: &str,
    source: &Source,
    len: u64,
) -> Result<Uploaded, RetryError<S3Error>> {
    let out = s
        .run("PutObject", bucket, || async {
            let body = source.body(0, len).await?;
            let request = client.put_object().bucket(bucket).key(key).body(body).content_length(len as i64);
            send_once!(request, "PutObject")
        })
        .await?;
    Ok(Uploaded { e_tag: out.e_tag().map(str::to_owned), version_id: out.version_id().map(str::to_owned), parts: 1 })
}

async fn multipart(
    client: &Client,
    s: Settings<'_>,
    bucket: &str,
    key: &str,
    source: &Source,
    len: u64,
) -> Result<Uploaded, RetryError<S3Error>> {
    let created = s
        .run("CreateMultipartUpload", bucket, || async {
            let request = client.create_multipart_upload().bucket(bucket).key(key);
            send_once!(request, "CreateMultipartUpload")
        })
        .await?;
    let Some(upload_id) = created.upload_id().map(str::to_owned) else {
        let error = S3Error::io("CreateMultipartUpload", "the response", std::io::Error::other("it had no upload id"));
        return Err(RetryError::Rejected {
            name: format!("CreateMultipartUpload {bucket}").into(),
            attempts: 1,
            error,
        });
    };

    // Part n (from 1) covers [offset, offset + size).
    let parts: Vec<(i32, u64, u64)> = (0..len.div_ceil(s.part_size))
        .map(|i| (i as i32 + 1, i * s.part_size, s.part_size.min(len - i * s.part_size)))
        .collect();
    let upload_id = upload_id.as_str();
    let mut batch = s
        .policy
        .batch(parts, |(number, offset, size)| async move {
            let body = source.body(offset, size).await?;
            let request = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(size as i64)
                .body(body);
            let out = send_once!(request, "UploadPart")?;
            Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_owned)).build())
        })
        .when(verdict_of as fn(&S3Error) -> Verdict)
        .name(format!("UploadPart {bucket}"))
        .concurrency(s.concurrency)
        .fail_fast();
    if let Some(clock) = s.clock {
        batch = batch.clock(clock);
    }
    if let Some(breaker) = s.breaker {
        batch = batch.breaker(breaker);
    }
    if let Some(budget) = s.budget {
        batch = batch.budget(budget);
    }
    let completed = match batch.run().await.into_result() {
        Ok(parts) => parts,
        Err(e) => {
            abort(client, s, bucket, key, upload_id).await;
            return Err(e);
        }
    };

    let count = completed.len() as u32;
    let manifest = CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
    let done = s
        .run("CompleteMultipartUpload", bucket, || async {
            let request = client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(manifest.clone());
            send_once!(request, "CompleteMultipartUpload")
        })
        .await;
    match done {
        Ok(out) => Ok(Uploaded {
            e_tag: out.e_tag().map(str::to_owned),
            version_id: out.version_id().map(str::to_owned),
            parts: count,
        }),
        Err(e) => {
            abort(client, s, bucket, key, upload_id).await;
            Err(e)
        }
    }
}

/// Aborts a multipart upload, retrying; a failure here is logged by the run
/// and otherwise ignored (the upload's own error is what the caller needs).
async fn abort(client: &Client, s: Settings<'_>, bucket: &str, key: &str, upload_id: &str) {
    // The breaker may be open by now: aborting must not be blocked by it.
    let s = Settings { breaker: None, budget: None, ..s };
    let _ = s
        .run("AbortMultipartUpload", bucket, || async {
            let request = client.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id);
            send_once!(request, "AbortMultipartUpload")
        })
        .await;
}
