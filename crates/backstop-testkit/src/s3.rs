//! A real S3 server in-process (the `s3` feature): [`LocalS3`], `s3s` +
//! `s3s-fs` serving a temporary directory with SigV4 authentication, behind a
//! [`FaultServer`] on 127.0.0.1 so tests can inject S3 faults
//! ([`Reply::s3_error`](crate::Reply::s3_error), resets, stalls, cut bodies).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;

use crate::{Backend, FaultServer};

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
/// The secret key the server accepts.
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// An S3 server on loopback over a temporary directory, removed on drop.
pub struct LocalS3 {
    /// The fault-injecting front: script faults on it, read its requests.
    pub faults: FaultServer,
    /// The directory the objects are stored in (`<root>/<bucket>/<key>`).
    pub root: PathBuf,
}

impl LocalS3 {
    /// Starts a server with no buckets.
    pub fn start() -> Self {
        let root = std::env::temp_dir().join(format!("backstop-s3-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(&root).expect("a temporary directory for the S3 server");
        let fs = s3s_fs::FileSystem::new(&root).expect("an s3s-fs file system");
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(fs);
            b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
        let backend: Backend = Arc::new(move |req: http::Request<Bytes>| {
            let service = service.clone();
            Box::pin(async move {
                match service.call(req.map(s3s::Body::from)).await {
                    Ok(resp) => {
                        let (head, body) = resp.into_parts();
                        let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        http::Response::from_parts(head, bytes)
                    }
                    Err(e) => {
                        let mut resp = http::Response::new(Bytes::from(format!("{e:?}")));
                        *resp.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                        resp
                    }
                }
            })
        });
        Self { faults: FaultServer::with_backend(backend), root }
    }

    /// The endpoint URL for a client (path-style addressing).
    pub fn endpoint(&self) -> String {
        self.faults.url("")
    }

    /// Where `bucket/key` is stored on disk.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Multipart uploads the server still holds (s3s-fs keeps them as
    /// `.upload-*` and `.upload_id-*` files at its root; it has no
    /// `ListMultipartUploads`).
    pub fn pending_uploads(&self) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .map(|dir| {
                dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.starts_with(".upload"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
