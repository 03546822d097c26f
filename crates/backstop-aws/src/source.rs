//! What an upload sends and gives back: the [`Source`] of its bytes (memory
//! or a file, read again for every attempt and every part) and the
//! [`Uploaded`] result. Below both the single and the multipart upload.

use std::path::PathBuf;

use aws_sdk_s3::primitives::{ByteStream, Length};
use bytes::Bytes;

use crate::error::{S3Error, Target};

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

/// Where an upload's bytes come from.
pub(crate) enum Source {
    Memory(Bytes),
    File(PathBuf),
}

impl Source {
    /// The bytes at `offset..offset + len`, as a fresh body for `operation` on `target`.
    pub(crate) async fn body(
        &self,
        operation: &'static str,
        target: Target<'_>,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream, S3Error> {
        match self {
            Source::Memory(data) => Ok(ByteStream::from(data.slice(offset as usize..(offset + len) as usize))),
            Source::File(path) => {
                ByteStream::read_from().path(path).offset(offset).length(Length::Exact(len)).build().await.map_err(
                    |e| S3Error::io(operation, target, format!("reading {}", path.display()), std::io::Error::other(e)),
                )
            }
        }
    }
}
