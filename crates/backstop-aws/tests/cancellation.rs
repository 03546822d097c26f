//! Transfers whose futures are dropped midway (a caller's timeout, a
//! shutdown): a multipart upload is aborted, not left pending and billed,
//! and a file download leaves no temporary file behind, whatever the moment.

mod common;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use backstop_testkit::Reply;
use common::throttle::Throttle;
use common::{
    BUCKET, S3, TempDir, billed_leftovers, bytes_of, client_for, data, eventually, fast, is_abort, is_part, logs,
    upload_id_of,
};

const MIB: usize = 1024 * 1024;

/// The upload id of the first recorded request of part `n`.
fn upload_id_of_part(s3: &S3, n: u32) -> String {
    s3.faults().requests().iter().find(|r| is_part(r, n)).and_then(upload_id_of).expect("part was sent")
}

#[tokio::test]
async fn a_multipart_upload_dropped_midway_is_aborted() {
    let s3 = S3::start().await;
    let policy = fast(3);
    // Part 2 hangs; parts 1 and 3 are stored by then.
    s3.faults().fail_matching(1, |r| is_part(r, 2), Reply::stall(Duration::from_secs(60)));
    let upload = backstop_aws::upload(&s3.client, BUCKET, "big.bin", data(11 * MIB))
        .policy(&policy)
        .multipart_threshold(6 * MIB as u64)
        .part_size(5 * MIB as u64)
        .into_future();
    let parts_stored = || s3.pending_uploads().iter().filter(|f| f.contains(".part-")).count() == 2;
    tokio::select! {
        out = upload => panic!("the upload should hang on part 2: {out:?}"),
        stored = eventually(Duration::from_secs(10), || parts_stored() && s3.requests_where(|r| is_part(r, 2)) == 1) => {
            assert!(stored, "parts 1 and 3 stored, part 2 sent: {:?}", s3.pending_uploads());
        }
    }
    // The upload future is dropped here, as a caller's timeout would.
    assert!(
        eventually(Duration::from_secs(10), || s3.pending_uploads().is_empty()).await,
        "orphaned upload: {:?}",
        s3.pending_uploads()
    );
    assert_eq!(s3.requests_where(is_abort), 1);
    assert!(!s3.object_path("big.bin").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_dropped_at_random_moments_are_all_aborted() {
    let s3 = S3::start().await;
    // Over a slow link (answers at 64 bytes a millisecond) each step takes a
    // few milliseconds, so the drops land in every step: before the create,
    // while its answer is on the way, during the part, during the complete.
    let slow = Throttle::start(s3.addr(), 64, Duration::from_millis(1)).await;
    let client = client_for(&slow.url());
    let policy = fast(3);
    // The smallest multipart upload: a byte over the threshold, one part.
    let upload =
        |key: String| backstop_aws::upload(&client, BUCKET, &key, data(1025)).policy(&policy).multipart_threshold(1024);
    // A warm upload's time: the fastest of three (the first pays for the
    // connection, and would stretch every limit below).
    let mut whole = u64::MAX;
    for _ in 0..3 {
        let start = std::time::Instant::now();
        assert_eq!(upload("whole.bin".into()).await.unwrap().parts, 1);
        whole = whole.min(start.elapsed().as_micros() as u64);
    }
    let mut rng = fastrand::Rng::with_seed(0xab02);
    let (mut dropped, mut finished) = (0, 0);
    for i in 0..40 {
        let limit = Duration::from_micros(rng.u64(0..whole * 3 / 2));
        match tokio::time::timeout(limit, upload(format!("small-{i}.bin"))).await {
            Ok(done) => finished += done.map(|_| 1).unwrap(),
            Err(_) => dropped += 1,
        }
    }
    assert!(dropped >= 20 && finished >= 1, "{dropped} dropped, {finished} finished (a whole upload: {whole} µs)");
    assert!(
        eventually(Duration::from_secs(10), || billed_leftovers(&s3.pending_uploads(), &s3.faults().requests())
            .is_empty())
        .await,
        "orphaned uploads: {:?}",
        s3.pending_uploads()
    );
}

#[tokio::test]
async fn a_failing_abort_of_a_dropped_upload_is_logged_with_bucket_key_and_upload_id() {
    logs::capture();
    let s3 = S3::start().await;
    s3.faults().fail_matching(1, |r| is_part(r, 1), Reply::stall(Duration::from_secs(60)));
    s3.faults().fail_matching(usize::MAX, is_abort, Reply::s3_error(500, "InternalError"));
    let policy = fast(3);
    let upload = backstop_aws::upload(&s3.client, BUCKET, "dropped/abort-fails.bin", data(2048))
        .policy(&policy)
        .multipart_threshold(1024)
        .into_future();
    tokio::select! {
        out = upload => panic!("the upload should hang on part 1: {out:?}"),
        _ = eventually(Duration::from_secs(10), || s3.requests_where(|r| is_part(r, 1)) == 1) => {}
    }
    let upload_id = upload_id_of_part(&s3, 1);
    assert!(eventually(Duration::from_secs(10), || !logs::lines_with(&upload_id).is_empty()).await, "no warning");
    let warned = logs::lines_with(&upload_id);
    assert_eq!(warned.len(), 1, "{warned:?}");
    for said in ["WARN", "bucket=bike-data", "key=dropped/abort-fails.bin", "left pending", "InternalError"] {
        assert!(warned[0].contains(said), "{said:?} in {}", warned[0]);
    }
    assert_eq!(
        s3.requests_where(is_abort),
        backstop_aws::ABORT_ATTEMPTS as usize,
        "retried a bounded number of times, the SDK's retries off"
    );
}

#[test]
fn an_upload_dropped_outside_a_runtime_warns_that_it_is_left_pending() {
    logs::capture();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let s3 = runtime.block_on(S3::start());
    s3.faults().fail_matching(1, |r| is_part(r, 1), Reply::stall(Duration::from_secs(60)));
    let policy = fast(3);
    let mut upload = backstop_aws::upload(&s3.client, BUCKET, "dropped/no-runtime.bin", data(2048))
        .policy(&policy)
        .multipart_threshold(1024)
        .into_future();
    runtime.block_on(async {
        tokio::select! {
            out = &mut upload => panic!("the upload should hang on part 1: {out:?}"),
            _ = eventually(Duration::from_secs(10), || s3.requests_where(|r| is_part(r, 1)) == 1) => {}
        }
    });
    drop(upload); // outside the runtime: nothing to send the abort on
    let upload_id = upload_id_of_part(&s3, 1);
    let warned = logs::lines_with(&upload_id);
    assert_eq!(warned.len(), 1, "{warned:?}");
    for said in ["WARN", "bucket=bike-data", "key=dropped/no-runtime.bin", "outside a tokio runtime", "left pending"] {
        assert!(warned[0].contains(said), "{said:?} in {}", warned[0]);
    }
    assert!(!s3.pending_uploads().is_empty(), "the warning tells the truth");
}

/// Whether a file name is a download's temporary file.
fn is_temp(name: &str) -> bool {
    name.contains(".backstop-") && name.ends_with(".part")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_downloads_dropped_at_random_moments_leave_no_temporary_file() {
    let s3 = S3::start().await;
    let body = data(64 * 1024);
    backstop_aws::upload(&s3.client, BUCKET, "raw/trips.csv", body.clone()).await.unwrap();
    // Half the downloads over a slow link (4 KiB a millisecond: the body
    // takes ~20 ms), so the drops land before the GET, mid-body, during the
    // sync and the rename.
    let slow = Throttle::start(s3.addr(), 4096, Duration::from_millis(1)).await;
    let clients = [s3.client.clone(), client_for(&slow.url())];
    let dir = Arc::new(TempDir::new());
    let policy = Arc::new(fast(3));
    let mut rng = fastrand::Rng::with_seed(0x0d0e_5eed);
    let (mut dropped, mut finished) = (0, 0);
    for round in 0..30 {
        let mut downloads = tokio::task::JoinSet::new();
        for i in 0..8 {
            let client = clients[rng.usize(..2)].clone();
            let limit = Duration::from_micros(rng.u64(0..30_000));
            let (dir, policy) = (Arc::clone(&dir), Arc::clone(&policy));
            downloads.spawn(async move {
                let target = dir.path(&format!("trips-{round}-{i}.csv"));
                let download =
                    backstop_aws::download_to_file(&client, BUCKET, "raw/trips.csv", &target).policy(&policy);
                tokio::time::timeout(limit, download).await.map(|done| done.unwrap())
            });
        }
        while let Some(outcome) = downloads.join_next().await {
            match outcome.unwrap() {
                Ok(_) => finished += 1,
                Err(_) => dropped += 1,
            }
        }
    }
    assert!(dropped >= 100 && finished >= 10, "{dropped} dropped, {finished} finished");
    let left = |dir: &TempDir| dir.files().into_iter().filter(|f| is_temp(f)).collect::<Vec<_>>();
    assert_eq!(left(&dir), Vec::<String>::new(), "temporary files left right after the drops");
    // A file system call already on tokio's blocking pool must not bring one back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(left(&dir), Vec::<String>::new(), "temporary files left after a while");
    for name in dir.files() {
        assert_eq!(bytes_of(&dir.path(&name)), body, "{name} is complete or absent");
    }
}
