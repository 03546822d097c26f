//! Downloads: [`download`] (into memory) and [`download_to_file`] (a path).
//!
//! The body is read inside the attempt, so a connection dropped mid-body is
//! retried rather than returned as a short read. A file download writes a
//! temporary file beside the target and renames it only once complete: a
//! failed or cancelled download never leaves a partial file at the path, nor
//! its temporary file beside it, whenever it is dropped.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_s3::Client;
use backstop::{RetryError, presets};
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::error::{S3Error, Target};
use crate::temp_file::TempFile;
use crate::transfer::{Kind, Settings, Transfer, TransferFuture};

/// Downloads `bucket/key` into memory, retrying under the
/// [`S3_DOWNLOAD`](presets::S3_DOWNLOAD) preset unless
/// [`policy`](Transfer::policy) says otherwise.
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
/// download is complete. Gives back the number of bytes written.
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

/// One attempt of a download's GET, hedged or not.
type Attempt<'a, T> = Pin<Box<dyn Future<Output = Result<T, S3Error>> + Send + 'a>>;

/// A download to a file; see [`download_to_file`].
#[derive(Debug)]
pub struct DownloadToFile {
    bucket: String,
    key: String,
    path: PathBuf,
}

impl Kind for Download {
    type Output = Bytes;

    fn run<'a>(self, client: Client, settings: Settings<'a>) -> TransferFuture<'a, Bytes> {
        let Download { bucket, key } = self;
        Box::pin(async move {
            let target = Target::object(&bucket, &key);
            // One GET, its whole body read: a hedge's requests are these too.
            let get = || async {
                let request = client.get_object().bucket(&bucket).key(&key);
                let out = send_once!(request, "GetObject", target)?;
                let body = out.body.collect().await.map_err(|e| S3Error::body("GetObject", target, e))?;
                Ok(body.into_bytes())
            };
            let hedge = settings.hedge.clone();
            settings
                .run("GetObject", target, || -> Attempt<'_, Bytes> {
                    match &hedge {
                        Some(hedge) => Box::pin(hedge.run(get)),
                        None => Box::pin(get()),
                    }
                })
                .await
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
            // Nothing is sent for a file that could not be written.
            if let Err(error) = check_directory(&path).await {
                let name = target.run_name("GetObject");
                let last = S3Error::io("GetObject", target, format!("cannot write {}", path.display()), error);
                return Err(RetryError::Rejected { name, attempts: 0, last });
            }
            // One GET into its own temporary file (the guard exists before
            // the file does: see `TempFile`), renamed into place if no other
            // request of the same attempt (a hedge) got there first.
            let get_to_file = |claimed: Arc<AtomicBool>| {
                let temp = TempFile::beside(&path);
                let (client, bucket, key, path) = (&client, &bucket, &key, &path);
                async move {
                    let io = |what: &str, e| {
                        S3Error::io("GetObject", target, format!("{what} {}", temp.path().display()), e)
                    };
                    let request = client.get_object().bucket(bucket).key(key);
                    let out = send_once!(request, "GetObject", target)?;
                    let mut created = temp.create().await.map_err(|e| io("creating", e))?;
                    let mut body = out.body;
                    let mut written = 0u64;
                    while let Some(chunk) = body.try_next().await.map_err(|e| S3Error::body("GetObject", target, e))? {
                        created.file.write_all(&chunk).await.map_err(|e| io("writing", e))?;
                        written += chunk.len() as u64;
                    }
                    created.file.sync_all().await.map_err(|e| io("syncing", e))?;
                    if claimed.swap(true, Ordering::AcqRel) {
                        let lost = std::io::Error::other("another request of this attempt wrote the file first");
                        return Err(io("renaming", lost));
                    }
                    temp.persist(created, path).await.map_err(|e| io("renaming", e))?;
                    Ok(written)
                }
            };
            let hedge = settings.hedge.clone();
            settings
                .run("GetObject", target, || -> Attempt<'_, u64> {
                    let claimed = Arc::new(AtomicBool::new(false));
                    match &hedge {
                        Some(hedge) => Box::pin(hedge.run(move || get_to_file(Arc::clone(&claimed)))),
                        None => Box::pin(get_to_file(claimed)),
                    }
                })
                .await
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
