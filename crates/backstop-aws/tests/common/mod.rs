//! The test bed: the testkit's in-process S3 server (`s3s` + `s3s-fs`
//! behind a fault-injecting proxy on 127.0.0.1) and a real `aws-sdk-s3`
//! client pointed at it over plain HTTP.

#![allow(dead_code)]

pub mod logs;
pub mod throttle;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use backstop::{Backoff, RetryPolicy};
use backstop_testkit::s3::{ACCESS_KEY, LocalS3, SECRET_KEY};
use backstop_testkit::{FaultServer, Recorded, Reply};

pub const BUCKET: &str = "bike-data";

pub struct S3 {
    server: LocalS3,
    pub client: Client,
}

impl S3 {
    /// A server with one bucket, [`BUCKET`].
    pub async fn start() -> Self {
        let server = LocalS3::start();
        let client = client_for(&server.endpoint());
        client.create_bucket().bucket(BUCKET).send().await.expect("create the test bucket");
        S3 { server, client }
    }

    /// The fault server's address (to put another proxy in front of it).
    pub fn addr(&self) -> SocketAddr {
        self.faults().addr()
    }

    pub fn faults(&self) -> &FaultServer {
        &self.server.faults
    }

    pub fn object_path(&self, key: &str) -> PathBuf {
        self.server.object_path(BUCKET, key)
    }

    pub fn pending_uploads(&self) -> Vec<String> {
        self.server.pending_uploads()
    }

    pub fn requests_where(&self, f: impl Fn(&Recorded) -> bool) -> usize {
        self.faults().requests().iter().filter(|r| f(r)).count()
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.faults().script(replies)
    }
}

/// A client of the test server at `endpoint` (the server itself, or a proxy in front of it).
pub fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(config)
}

/// A temporary directory for local files, removed with the guard.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("backstop-aws-files-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Every file in the directory (to check no partial file is left).
    pub fn files(&self) -> Vec<String> {
        std::fs::read_dir(&self.0).unwrap().filter_map(|e| e.ok()?.file_name().into_string().ok()).collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A policy that keeps the tests fast: attempts 1 ms apart.
pub fn fast(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::constant(Duration::from_millis(1))).build().unwrap()
}

/// A `PutObject` of `key` (not a part).
pub fn is_put(r: &Recorded, key: &str) -> bool {
    r.method == http::Method::PUT && r.path.starts_with(&format!("/{BUCKET}/{key}")) && !r.path.contains("partNumber")
}

/// An `UploadPart` of part `n`.
pub fn is_part(r: &Recorded, n: u32) -> bool {
    r.method == http::Method::PUT && r.path.split(['?', '&']).any(|q| q == format!("partNumber={n}"))
}

/// An `AbortMultipartUpload`.
pub fn is_abort(r: &Recorded) -> bool {
    r.method == http::Method::DELETE && r.path.contains("uploadId=")
}

/// The upload id in a recorded multipart request's query.
pub fn upload_id_of(r: &Recorded) -> Option<String> {
    let query = r.path.split_once('?')?.1;
    query.split('&').find_map(|q| q.strip_prefix("uploadId=")).map(str::to_owned)
}

/// Of s3s-fs's upload files (`pending`), what S3 would still hold and bill
/// after the `requests` the server saw: every file, except a part of an
/// upload that was aborted a second time.
///
/// A dropped upload is aborted at once and, if parts were on the wire, again
/// once they have been answered. S3 keeps a part that overtakes the first
/// abort under the upload, and the second abort frees it; s3s-fs stores it
/// under an upload it no longer knows, where no abort reaches it. So such a
/// part file stays here, and the second abort (which the server saw) is
/// what frees it on S3.
pub fn billed_leftovers(pending: &[String], requests: &[Recorded]) -> Vec<String> {
    let aborted_twice =
        |id: &str| requests.iter().filter(|r| is_abort(r) && upload_id_of(r).as_deref() == Some(id)).count() >= 2;
    pending
        .iter()
        .filter(|file| {
            let orphan_part = file.strip_prefix(".upload_id-").and_then(|rest| rest.split_once(".part-"));
            !orphan_part.is_some_and(|(id, _)| aborted_twice(id))
        })
        .cloned()
        .collect()
}

/// Distinct, non-repeating bytes, so a part in the wrong place would show.
pub fn data(len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(len as u64);
    (0..len).map(|_| rng.u8(..)).collect()
}

/// Waits (polling) until `done` holds, up to `limit`; whether it did.
pub async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn bytes_of(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}
