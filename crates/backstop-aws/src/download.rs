//! Downloads: [`download`] (into memory) and [`download_to_file`] (a path).
//!
//! The body is read inside the attempt, so a connection dropped mid-body is
//! retried rather than returned as a short read. An object larger than the
//! transfer's part size comes in ranged parts (see `ranged`). A file download writes a
//! temporary file beside the target and renames it only once complete: a
//! failed or cancelled download never leaves a partial file at the path, nor
//! its temporary file beside it, whenever it is dropped.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_s3::Client;
use backstop::{RetryError, presets};
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::error::{S3Error, Target};
use crate::ranged::{self, Piece};
use crate::temp_file::TempFile;
use crate::transfer::{Kind, Settings, Transfer, TransferFuture, hedged};

/// The largest object S3 stores (5 TiB): a larger size in an answer is not
/// believed.
const LARGEST_OBJECT: u64 = 5 << 40;

/// Downloads `bucket/key` into memory, retrying under the
/// [`S3_DOWNLOAD`](presets::S3_DOWNLOAD) preset unless
/// [`policy`](Transfer::policy) says otherwise. An object larger than
/// [`multipart_threshold`](Transfer::multipart_threshold) (16 MiB) comes in
/// ranged parts of [`part_size`](Transfer::part_size) (8 MiB),
/// [`concurrency`](Transfer::concurrency) (4) at a time, each retried (and
/// [hedged](Transfer::hedge)) on its own; a smaller one in one GET, whose
/// checksum the SDK checks (S3 sends none with a ranged answer).
///
/// ```no_run
/// # async fn demo(client: aws_sdk_s3::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let csv = backstop_aws::download(&client, "bike-data", "raw/2026-11-22.csv").await?;
/// # let _ = csv; Ok(()) }
/// ```
pub fn download(client: &Client, bucket: &str, key: &str) -> Transfer<'static, Download> {
    Transfer::new(client, Download { bucket: bucket.to_owned(), key: key.to_owned() }, &presets::S3_DOWNLOAD)
}

/// Downloads `bucket/key` to the file at `path`, replacing it only when the
/// download is complete. Gives back the number of bytes written. A large
/// object comes in ranged parts, as with [`download`], each held in memory
/// until written (at most `part_size × concurrency` bytes, and a hedge's).
///
/// The bytes go to a temporary file beside `path`
/// (`.<name>.backstop-<random>.part`), renamed into place at the end. A
/// failed download, or one whose future is dropped at any moment, leaves
/// `path` as it was and no temporary file behind.
pub fn download_to_file(
    client: &Client,
    bucket: &str,
    key: &str,
    path: impl AsRef<Path>,
) -> Transfer<'static, DownloadToFile> {
    let kind = DownloadToFile { bucket: bucket.to_owned(), key: key.to_owned(), path: path.as_ref().to_owned() };
    Transfer::new(client, kind, &presets::S3_DOWNLOAD)
}

/// A download into memory; see [`download`].
#[derive(Debug)]
pub struct Download {
    bucket: String,
    key: String,
}

/// A download to a file; see [`download_to_file`].
#[derive(Debug)]
pub struct DownloadToFile {
    bucket: String,
    key: String,
    path: PathBuf,
}

/// The first part of the object (all of it, if it is small), retried and
/// hedged; its size checked against S3's largest.
async fn first_part(client: &Client, s: &Settings<'_>, target: Target<'_>) -> Result<Piece, RetryError<S3Error>> {
    let (part_size, threshold) = (s.part_size, s.multipart_threshold);
    let first =
        s.run("GetObject", target, || hedged(s, || ranged::first(client, target, part_size, threshold))).await?;
    if first.total > LARGEST_OBJECT || (first.body.len() as u64) > first.total {
        let what = format!("an answer of {} bytes of an object of {}", first.body.len(), first.total);
        let last = S3Error::unusable("GetObject", target, &what);
        return Err(RetryError::Rejected { name: target.run_name("GetObject"), attempts: 1, last });
    }
    Ok(first)
}

impl Kind for Download {
    type Output = Bytes;

    fn run<'a>(self, client: Client, settings: Settings<'a>) -> TransferFuture<'a, Bytes> {
        let Download { bucket, key } = self;
        Box::pin(async move {
            let target = Target::object(&bucket, &key);
            let first = first_part(&client, &settings, target).await?;
            if first.body.len() as u64 == first.total {
                return Ok(first.body);
            }
            // Room for the whole object before asking for the rest; each
            // part is copied to its place as it comes.
            let mut whole = Vec::new();
            let total = usize::try_from(first.total).ok().filter(|&n| whole.try_reserve_exact(n).is_ok());
            let Some(total) = total else {
                let what = format!("an object of {} bytes does not fit in memory", first.total);
                let last = S3Error::unusable("GetObject", target, &what);
                return Err(RetryError::Rejected { name: target.run_name("GetObject"), attempts: 1, last });
            };
            whole.extend_from_slice(&first.body);
            whole.resize(total, 0);
            let whole = Mutex::new(whole);
            ranged::rest(&client, &settings, target, &first, |offset, bytes| {
                let at = offset as usize; // within `total`, a usize
                whole.lock().unwrap_or_else(PoisonError::into_inner)[at..at + bytes.len()].copy_from_slice(&bytes);
                async { Ok(()) }
            })
            .await?;
            Ok(Bytes::from(whole.into_inner().unwrap_or_else(PoisonError::into_inner)))
        })
    }

    fn object(&self) -> (&str, &str) {
        (&self.bucket, &self.key)
    }
}

impl Kind for DownloadToFile {
    type Output = u64;

    fn run<'a>(self, client: Client, settings: Settings<'a>) -> TransferFuture<'a, u64> {
        let DownloadToFile { bucket, key, path } = self;
        Box::pin(async move {
            let target = Target::object(&bucket, &key);
            let rejected = |what: &str, error| RetryError::Rejected {
                name: target.run_name("GetObject"),
                attempts: 0,
                last: S3Error::io("GetObject", target, format!("{what} {}", path.display()), error),
            };
            // Nothing is sent for a file that could not be written.
            check_directory(&path).await.map_err(|e| rejected("cannot write", e))?;
            let first = first_part(&client, &settings, target).await?;
            // The guard exists before the file does (see `TempFile`).
            let temp = TempFile::beside(&path);
            let io = |what: &str, e| RetryError::Rejected {
                name: target.run_name("GetObject"),
                attempts: 0,
                last: S3Error::io("GetObject", target, format!("{what} {}", temp.path().display()), e),
            };
            let mut created = temp.create().await.map_err(|e| io("creating", e))?;
            created.file.write_all(&first.body).await.map_err(|e| io("writing", e))?;
            // tokio's file finishes its last write in the background: its
            // error comes from `flush`, not from `sync_all`.
            created.file.flush().await.map_err(|e| io("writing", e))?;
            if (first.body.len() as u64) < first.total {
                // The other parts, each written at its place as it comes.
                let file = created.file.try_clone().await.map_err(|e| io("opening", e))?.into_std().await;
                let file = Arc::new(Mutex::new(file));
                ranged::rest(&client, &settings, target, &first, |offset, bytes| {
                    let file = Arc::clone(&file);
                    async move {
                        let written = tokio::task::spawn_blocking(move || {
                            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
                            file.seek(SeekFrom::Start(offset))?;
                            file.write_all(&bytes)
                        })
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                        written.map_err(|e| S3Error::io("GetObject", target, "writing a part".into(), e))
                    }
                })
                .await?;
            }
            created.file.sync_all().await.map_err(|e| io("syncing", e))?;
            temp.persist(created, &path).await.map_err(|e| io("renaming", e))?;
            Ok(first.total)
        })
    }

    fn object(&self) -> (&str, &str) {
        (&self.bucket, &self.key)
    }
}

/// Checks that `path`'s directory exists and that `path` is not a directory,
/// so that a download to a file that could not be written fails before its
/// `GetObject` is sent.
async fn check_directory(path: &Path) -> std::io::Result<()> {
    // Both looks in one trip to tokio's blocking pool.
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || directory_problem(&path))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// Why a file could not be written at `path`, if it could not.
fn directory_problem(path: &Path) -> std::io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|meta| meta.is_dir()) {
        let problem = format!("{} is a directory, not a file to replace", path.display());
        return Err(std::io::Error::new(std::io::ErrorKind::IsADirectory, problem));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => {
            Err(std::io::Error::new(std::io::ErrorKind::NotADirectory, format!("{} is not a directory", dir.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(std::io::Error::new(e.kind(), format!("the directory {} does not exist", dir.display())))
        }
        Err(e) => Err(e),
    }
}
