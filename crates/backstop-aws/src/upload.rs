//! Uploads: [`upload`] (bytes) and [`upload_file`] (a path), single or
//! multipart.
//!
//! The body is rebuilt for every attempt. Above the multipart threshold the
//! upload is split into parts, each retried on its own (a few at once). A
//! multipart upload that fails, or whose future is dropped, is aborted, so
//! no parts stay pending and billed.

use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use backstop::{RetryError, presets};
use bytes::Bytes;

use crate::error::{S3Error, Target};
use crate::multipart::multipart;
use crate::source::{Source, Uploaded};
use crate::transfer::{Kind, Settings, Transfer, TransferFuture};

/// Uploads `data` to `bucket/key`, retrying under the
/// [`S3_UPLOAD`](presets::S3_UPLOAD) preset unless [`policy`](Transfer::policy)
/// says otherwise.
///
/// Above [`multipart_threshold`](Transfer::multipart_threshold) it is a
/// multipart upload. If that fails, it is aborted before the error is
/// returned; if the abort fails too, the error says so
/// ([`S3Error::abort_error`]). If the future is dropped midway, the abort is
/// sent in the background (within [`ABORT_TIMEOUT`](crate::ABORT_TIMEOUT)).
///
/// `data` is anything [`UploadData`] is made from: owned bytes (kept as
/// they are) or a borrowed slice (copied once).
///
/// ```no_run
/// # async fn demo(client: aws_sdk_s3::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let uploaded = backstop_aws::upload(&client, "bike-data", "processed/run-42.parquet", vec![1, 2, 3]).await?;
/// println!("ETag {:?}", uploaded.e_tag);
///
/// let buffer = [0u8; 512];
/// backstop_aws::upload(&client, "bike-data", "processed/header.bin", &buffer[..]).await?;
/// # Ok(()) }
/// ```
pub fn upload(client: &Client, bucket: &str, key: &str, data: impl Into<UploadData>) -> Transfer<'static, Upload> {
    let kind = Upload { bucket: bucket.to_owned(), key: key.to_owned(), data: data.into().0 };
    Transfer::new(client, kind, &presets::S3_UPLOAD)
}

/// Uploads the file at `path` to `bucket/key`, reading it again for every
/// attempt (and only the part's range for each part of a multipart upload),
/// so a large file is never held in memory.
pub fn upload_file(client: &Client, bucket: &str, key: &str, path: impl AsRef<Path>) -> Transfer<'static, UploadFile> {
    let kind = UploadFile { bucket: bucket.to_owned(), key: key.to_owned(), path: path.as_ref().to_owned() };
    Transfer::new(client, kind, &presets::S3_UPLOAD)
}

/// The bytes of an [`upload`]: owned bytes are taken as they are (`Bytes`,
/// `Vec<u8>`, `String`, `&'static str` via `Bytes::from_static`), borrowed
/// ones (`&[u8]`, `&Vec<u8>`, `&str`) are copied once, so the upload does not
/// borrow them for its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadData(Bytes);

impl From<Bytes> for UploadData {
    fn from(bytes: Bytes) -> Self {
        UploadData(bytes)
    }
}

impl From<Vec<u8>> for UploadData {
    fn from(bytes: Vec<u8>) -> Self {
        UploadData(bytes.into())
    }
}

impl From<String> for UploadData {
    fn from(text: String) -> Self {
        UploadData(text.into())
    }
}

impl From<&[u8]> for UploadData {
    /// Copies the slice once.
    fn from(bytes: &[u8]) -> Self {
        UploadData(Bytes::copy_from_slice(bytes))
    }
}

impl<const N: usize> From<&[u8; N]> for UploadData {
    /// Copies the array once.
    fn from(bytes: &[u8; N]) -> Self {
        UploadData(Bytes::copy_from_slice(bytes))
    }
}

impl From<&Vec<u8>> for UploadData {
    /// Copies the bytes once.
    fn from(bytes: &Vec<u8>) -> Self {
        UploadData(Bytes::copy_from_slice(bytes))
    }
}

impl From<&String> for UploadData {
    /// Copies the text once.
    fn from(text: &String) -> Self {
        UploadData(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<&str> for UploadData {
    /// Copies the text once.
    fn from(text: &str) -> Self {
        UploadData(Bytes::copy_from_slice(text.as_bytes()))
    }
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

impl Kind for Upload {
    type Output = Uploaded;

    fn run<'a>(self, client: Client, settings: Settings<'a>) -> TransferFuture<'a, Uploaded> {
        let Upload { bucket, key, data } = self;
        let len = data.len() as u64;
        Box::pin(async move { send(&client, settings, bucket, key, Source::Memory(data), len).await })
    }

    fn object(&self) -> (&str, &str) {
        (&self.bucket, &self.key)
    }
}

impl Kind for UploadFile {
    type Output = Uploaded;

    fn run<'a>(self, client: Client, settings: Settings<'a>) -> TransferFuture<'a, Uploaded> {
        let UploadFile { bucket, key, path } = self;
        Box::pin(async move {
            let len = match tokio::fs::metadata(&path).await {
                Ok(meta) => meta.len(),
                Err(e) => {
                    let target = Target::object(&bucket, &key);
                    let error = S3Error::io("PutObject", target, format!("reading {}", path.display()), e);
                    let name = target.run_name("PutObject");
                    return Err(RetryError::Rejected { name, attempts: 0, last: error });
                }
            };
            send(&client, settings, bucket, key, Source::File(path), len).await
        })
    }

    fn object(&self) -> (&str, &str) {
        (&self.bucket, &self.key)
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
    let target = Target::object(bucket, key);
    let out = s
        .run("PutObject", target, || async {
            let body = source.body("PutObject", target, 0, len).await?;
            let request = client.put_object().bucket(bucket).key(key).body(body).content_length(len as i64);
            send_once!(request, "PutObject", target)
        })
        .await?;
    Ok(Uploaded { e_tag: out.e_tag().map(str::to_owned), version_id: out.version_id().map(str::to_owned), parts: 1 })
}
