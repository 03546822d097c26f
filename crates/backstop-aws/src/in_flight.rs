//! The requests of a multipart upload that are on the wire: [`InFlight`].
//!
//! S3 may still store a part it has received in full after the upload was
//! aborted, if the abort overtook it ("it might be necessary to abort a
//! given multipart upload multiple times", says `AbortMultipartUpload`'s
//! documentation). A part request dropped on the client's side (the upload's
//! future dropped, or the other parts stopped when one failed for good) may
//! be exactly that, and so may a `CompleteMultipartUpload` (S3 may complete
//! the upload after all). So each part request, and the complete, runs in a
//! task of its own, which the upload's future only waits on: dropping the
//! future leaves the request to finish (within the per-attempt timeout, if
//! any), and an abort is sent (again, for a dropped upload) once every such
//! request has been answered ([`InFlight::settle`], bounded).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use backstop::clock::SleepFuture;
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinSet;

/// The tasks sending an upload's part and complete requests; cheap to clone (shared).
#[derive(Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<JoinSet<CutShort>>>);

/// Whether a request's task dropped it before it was answered (its attempt
/// timed out): S3 may still store it.
type CutShort = bool;

/// How a request sent by [`InFlight::send_timed`] ended.
pub(crate) enum Sent<T> {
    /// It was answered (or failed) in time.
    Done(T),
    /// The attempt's timer fired first, after this long: the request was dropped.
    TimedOut(Duration),
    /// The upload is being aborted: the request was dropped.
    Cancelled,
}

impl InFlight {
    /// Sends `request` from a task of its own and waits for it, dropping it
    /// when `timer` (the attempt's timeout: its limit and timer) fires first.
    /// If this future is dropped, the request carries on until it ends or
    /// times out.
    pub(crate) async fn send_timed<T: Send + 'static>(
        &self,
        request: impl Future<Output = T> + Send + 'static,
        timer: Option<(Duration, SleepFuture)>,
    ) -> Sent<T> {
        let (tx, rx) = oneshot::channel();
        self.0.lock().await.spawn(async move {
            let sent = match timer {
                None => Sent::Done(request.await),
                Some((limit, mut timer)) => {
                    let mut request = pin!(request);
                    poll_fn(|cx| match request.as_mut().poll(cx) {
                        Poll::Ready(out) => Poll::Ready(Sent::Done(out)),
                        Poll::Pending => timer.as_mut().poll(cx).map(|()| Sent::TimedOut(limit)),
                    })
                    .await
                }
            };
            let cut_short = matches!(sent, Sent::TimedOut(_));
            let _ = tx.send(sent);
            cut_short
        });
        rx.await.unwrap_or(Sent::Cancelled)
    }

    /// Whether a request may still reach S3: one still running, or one its
    /// attempt's timeout dropped before it was answered (it may be stored yet).
    pub(crate) fn busy(&self) -> bool {
        let Ok(mut tasks) = self.0.try_lock() else { return true };
        let mut cut_short = false;
        while let Some(ended) = tasks.try_join_next() {
            cut_short |= ended.unwrap_or(true);
        }
        cut_short || !tasks.is_empty()
    }

    /// Waits until every request sent so far has ended, up to `within`;
    /// then drops those still running.
    pub(crate) async fn settle(&self, within: Duration) {
        let mut tasks = self.0.lock().await;
        let _ = tokio::time::timeout(within, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
    }
}
