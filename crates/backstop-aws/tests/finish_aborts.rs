//! A multipart upload dropped while a part is on the wire is aborted at once,
//! not after the part settles, and again once it has; `finish_aborts` waits
//! for those aborts before a program exits.
//!
//! One test in a binary of its own: `finish_aborts` counts the clean-ups of
//! the whole process, which other tests running beside it would add to.

mod common;

use std::future::IntoFuture;
use std::time::Duration;

use backstop_testkit::Reply;
use common::{BUCKET, S3, data, eventually, fast, is_abort, is_part, upload_id_of};

/// The aborts S3 received for `upload_id`.
fn aborts_of(s3: &S3, upload_id: &str) -> usize {
    s3.requests_where(|r| is_abort(r) && upload_id_of(r).as_deref() == Some(upload_id))
}

/// Starts a one-part multipart upload of `key` whose part S3 holds for
/// `stall`, and drops it once the part is on the wire, as a caller's
/// timeout would; returns its upload id.
async fn drop_while_the_part_is_on_the_wire(s3: &S3, key: &str, stall: Duration) -> String {
    let key_path = format!("/{BUCKET}/{key}?");
    s3.faults().fail_matching(1, move |r| is_part(r, 1) && r.path.starts_with(&key_path), Reply::stall(stall));
    let policy = fast(3);
    let upload = backstop_aws::upload(&s3.client, BUCKET, key, data(2048))
        .policy(&policy)
        .multipart_threshold(1024)
        .into_future();
    let sent = |s3: &S3| {
        s3.faults()
            .requests()
            .iter()
            .find(|r| is_part(r, 1) && r.path.starts_with(&format!("/{BUCKET}/{key}?")))
            .cloned()
    };
    let part = tokio::select! {
        out = upload => panic!("the upload should hang on its part: {out:?}"),
        _ = eventually(Duration::from_secs(10), || sent(s3).is_some()) => sent(s3).expect("the part was sent"),
    };
    // The upload's future is dropped here.
    upload_id_of(&part).expect("the part names its upload")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_upload_is_aborted_at_once_and_again_after_its_parts_and_finish_aborts_waits() {
    let s3 = S3::start().await;
    assert_eq!(backstop_aws::finish_aborts(Duration::ZERO).await, 0, "nothing pending: returns at once");

    // A part answered 300 ms after the drop: aborted at once, and again once
    // the part has been answered; finish_aborts returns when both are done.
    let upload_id = drop_while_the_part_is_on_the_wire(&s3, "short-stall.bin", Duration::from_millis(300)).await;
    assert_eq!(backstop_aws::finish_aborts(Duration::ZERO).await, 1, "the abort is pending as soon as it is dropped");
    assert_eq!(backstop_aws::finish_aborts(Duration::from_secs(10)).await, 0);
    assert_eq!(aborts_of(&s3, &upload_id), 2, "at once, and after the part on the wire");
    assert!(s3.pending_uploads().is_empty(), "{:?}", s3.pending_uploads());

    // Dropped while its CreateMultipartUpload is unanswered: pending at once
    // (a program that exits next must wait for the answer, to abort what it
    // created), done when the answer has come.
    let is_create =
        |r: &backstop_testkit::Recorded| r.method == http::Method::POST && r.path.contains("/created-late.bin?uploads");
    s3.faults().fail_matching(1, is_create, Reply::stall(Duration::from_millis(300)));
    let policy = fast(1);
    let upload = backstop_aws::upload(&s3.client, BUCKET, "created-late.bin", data(2048))
        .policy(&policy)
        .multipart_threshold(1024)
        .into_future();
    tokio::select! {
        out = upload => panic!("the create should hang: {out:?}"),
        _ = eventually(Duration::from_secs(10), || s3.requests_where(is_create) == 1) => {}
    }
    assert_eq!(backstop_aws::finish_aborts(Duration::ZERO).await, 1, "the create's answer is awaited");
    assert_eq!(backstop_aws::finish_aborts(Duration::from_secs(10)).await, 0);

    // A part that hangs for a minute: the abort does not wait for it (the
    // settling is bounded at 5 s; the abort comes well before that), and
    // the second abort is still pending while the part is on the wire.
    let upload_id = drop_while_the_part_is_on_the_wire(&s3, "hung.bin", Duration::from_secs(60)).await;
    assert!(
        eventually(Duration::from_secs(2), || aborts_of(&s3, &upload_id) == 1).await,
        "the abort was sent at once, not after the hung part"
    );
    assert!(eventually(Duration::from_secs(2), || s3.pending_uploads().is_empty()).await, "{:?}", s3.pending_uploads());
    assert_eq!(backstop_aws::finish_aborts(Duration::from_millis(50)).await, 1, "the second abort waits for the part");
}
