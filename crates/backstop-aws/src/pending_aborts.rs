//! The clean-up of dropped uploads still under way, and waiting for it
//! before a program exits: [`finish_aborts`].
//!
//! A multipart upload whose future is dropped is aborted from a task of its
//! own (see [`Transfer`](crate::Transfer)'s drop behaviour). That task runs
//! on the caller's tokio runtime, and a runtime that shuts down (`main`
//! returning) drops it unsent: the upload stays pending, its parts billed.
//! Each such task, and each `CreateMultipartUpload` whose answer may still
//! need an abort, holds a [`Pending`] token while it runs; [`finish_aborts`]
//! waits until no token is left.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::watch;

/// How many clean-ups are under way, in the whole process.
static PENDING: LazyLock<watch::Sender<usize>> = LazyLock::new(|| watch::Sender::new(0));

/// One clean-up under way: counted from [`start`](Self::start) until dropped
/// (when the task holding it ends, or is dropped by its runtime).
#[derive(Debug)]
pub(crate) struct Pending(());

impl Pending {
    /// Counts a clean-up as under way.
    pub(crate) fn start() -> Self {
        PENDING.send_modify(|n| *n += 1);
        Pending(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        PENDING.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Waits, up to `within`, for the aborts of dropped multipart uploads to be
/// sent and answered; returns how many were still under way when it
/// returned (0: all done).
///
/// Call it before a program exits after dropping uploads (a timeout, a
/// shutdown signal): a dropped upload is aborted by a task on the tokio
/// runtime, and a runtime that shuts down drops that task unsent, leaving
/// the upload and its parts stored and billed until S3's lifecycle rule
/// `AbortIncompleteMultipartUpload` (if the bucket has one) removes them.
///
/// The first abort is sent as soon as the upload is dropped; when parts were
/// on the wire, a second is sent once they have been answered (S3 may store
/// a part that overtakes an abort), up to 5 seconds later. The aborts of an
/// upload take at most [`ABORT_TIMEOUT`](crate::ABORT_TIMEOUT) (10 s), so
/// `within` of 10 seconds suffices, except for an upload dropped while its
/// `CreateMultipartUpload` was still unanswered: its answer is waited for
/// up to 10 s more (20 s in all). A shorter `within` returns sooner with
/// what is left. It counts the clean-ups of the whole process, on any
/// runtime; with nothing pending it returns 0 at once.
///
/// ```no_run
/// # async fn example(client: aws_sdk_s3::Client, body: Vec<u8>) {
/// use std::time::Duration;
///
/// let upload = backstop_aws::upload(&client, "bike-data", "2026/12/07/trips.parquet", body);
/// if tokio::time::timeout(Duration::from_secs(60), upload).await.is_err() {
///     eprintln!("the upload took over a minute: giving up");
/// }
/// // Before returning from main: let the abort of the dropped upload go out.
/// let left = backstop_aws::finish_aborts(Duration::from_secs(10)).await;
/// if left > 0 {
///     eprintln!("{left} dropped upload(s) may be left pending");
/// }
/// # }
/// ```
pub async fn finish_aborts(within: Duration) -> usize {
    let mut pending = PENDING.subscribe();
    let _ = tokio::time::timeout(within, pending.wait_for(|n| *n == 0)).await;
    *PENDING.borrow()
}
