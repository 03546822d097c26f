//! The edges of the S3 surface, as a hostile user finds them: borrowed uploads,
//! `download_to_file` paths, `Transfer::with_report`, `on_retry`, `guards`.
//! Each test asserts what a user would expect.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backstop::{CircuitBreaker, Guards, ManualClock, RetryError, presets};
use backstop_testkit::{Recorded, Reply};
use common::{BUCKET, S3, TempDir, bytes_of, data, eventually, fast, is_abort, is_part};

const MIB: usize = 1024 * 1024;

fn is_get(r: &Recorded) -> bool {
    r.method == http::Method::GET && r.path.starts_with(&format!("/{BUCKET}/"))
}

fn is_create(r: &Recorded) -> bool {
    r.method == http::Method::POST && r.path.contains("uploads")
}

#[tokio::test]
async fn borrowed_bytes_upload_as_they_are() {
    let s3 = S3::start().await;
    let owned = data(1000);
    backstop_aws::upload(&s3.client, BUCKET, "slice.bin", &owned[10..20]).policy(&fast(2)).await.unwrap();
    assert_eq!(bytes_of(&s3.object_path("slice.bin")), &owned[10..20]);
    backstop_aws::upload(&s3.client, BUCKET, "str.csv", "a,b\n1,2\n").policy(&fast(2)).await.unwrap();
    assert_eq!(bytes_of(&s3.object_path("str.csv")), b"a,b\n1,2\n");
    backstop_aws::upload(&s3.client, BUCKET, "vec.bin", &owned).policy(&fast(2)).await.unwrap();
    assert_eq!(bytes_of(&s3.object_path("vec.bin")), owned);
    backstop_aws::upload(&s3.client, BUCKET, "empty.bin", &[][..]).policy(&fast(2)).await.unwrap();
    assert_eq!(bytes_of(&s3.object_path("empty.bin")), b"");
    // A temporary policy is fine: the transfer keeps a copy.
    let t = backstop_aws::upload(&s3.client, BUCKET, "tmp.bin", "x")
        .policy(&presets::S3_UPLOAD.to_builder().max_attempts(2).build().unwrap());
    t.await.unwrap();
}

#[tokio::test]
async fn download_to_a_path_whose_parent_is_a_file_fails_before_the_get() {
    let s3 = S3::start().await;
    backstop_aws::upload(&s3.client, BUCKET, "k.csv", "x").policy(&fast(1)).await.unwrap();
    let dir = TempDir::new();
    std::fs::write(dir.path("plain"), b"i am a file").unwrap();
    let err = backstop_aws::download_to_file(&s3.client, BUCKET, "k.csv", dir.path("plain").join("out.csv"))
        .policy(&fast(3))
        .await
        .unwrap_err();
    assert_eq!(s3.requests_where(is_get), 0, "the GET was sent");
    assert!(matches!(err, RetryError::Rejected { attempts: 0, .. }), "{err:?}");
    assert!(format!("{err:#}").contains("not a directory"), "{err:#}");
    assert!(err.to_string().contains("failed before its first attempt"), "{err}");
    assert_eq!(bytes_of(&dir.path("plain")), b"i am a file");
}

#[tokio::test]
async fn download_to_a_bare_file_name_writes_in_the_current_directory() {
    let s3 = S3::start().await;
    backstop_aws::upload(&s3.client, BUCKET, "k.csv", "a,b").policy(&fast(1)).await.unwrap();
    let name = format!("redteam-{:016x}.csv", fastrand::u64(..));
    let r = backstop_aws::download_to_file(&s3.client, BUCKET, "k.csv", &name).policy(&fast(2)).await;
    let written = std::fs::read(&name);
    let _ = std::fs::remove_file(&name);
    assert_eq!(r.unwrap(), 3);
    assert_eq!(written.unwrap(), b"a,b");
}

#[tokio::test]
async fn download_onto_an_existing_directory_fails_and_leaves_nothing() {
    let s3 = S3::start().await;
    backstop_aws::upload(&s3.client, BUCKET, "k.csv", "a,b").policy(&fast(1)).await.unwrap();
    let dir = TempDir::new();
    std::fs::create_dir(dir.path("target")).unwrap();
    let r = backstop_aws::download_to_file(&s3.client, BUCKET, "k.csv", dir.path("target")).policy(&fast(3)).await;
    assert!(r.is_err(), "{r:?}");
    assert!(dir.path("target").is_dir());
    assert_eq!(dir.files(), ["target"], "a temporary file was left behind");
    assert!(s3.requests_where(is_get) <= 1, "an error that cannot go away was retried");
    // Best: nothing sent for a target that can never be written.
    assert_eq!(s3.requests_where(is_get), 0, "the GET was sent although the target is a directory: {r:?}");
}

#[tokio::test]
async fn download_to_a_dot_dot_path_leaves_nothing_outside_its_directory() {
    let s3 = S3::start().await;
    backstop_aws::upload(&s3.client, BUCKET, "k.csv", "a,b").policy(&fast(1)).await.unwrap();
    let dir = TempDir::new();
    std::fs::create_dir(dir.path("sub")).unwrap();
    let r =
        backstop_aws::download_to_file(&s3.client, BUCKET, "k.csv", dir.path("sub").join("..")).policy(&fast(2)).await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(dir.files(), ["sub"], "a temporary file was left behind");
}

#[tokio::test]
async fn with_report_counts_a_retried_create_of_a_multipart_upload() {
    let s3 = S3::start().await;
    s3.faults().fail_matching(1, is_create, Reply::s3_error(503, "ServiceUnavailable"));
    let (up, report) = backstop_aws::upload(&s3.client, BUCKET, "big.bin", data(11 * MIB))
        .policy(&fast(3))
        .multipart_threshold(6 * MIB as u64)
        .part_size(5 * MIB as u64)
        .with_report()
        .await
        .unwrap();
    assert_eq!(up.parts, 3);
    // create ×2, 3 parts, complete: 6 requests, one of them a retry.
    assert_eq!((report.requests, report.retries), (2 + 3 + 1, 1));
}

#[tokio::test]
async fn a_part_failing_for_good_is_an_error_and_the_upload_is_aborted() {
    let s3 = S3::start().await;
    s3.faults().fail_matching(100, |r| is_part(r, 2), Reply::s3_error(403, "AccessDenied"));
    let r = backstop_aws::upload(&s3.client, BUCKET, "big.bin", data(11 * MIB))
        .policy(&fast(3))
        .multipart_threshold(6 * MIB as u64)
        .part_size(5 * MIB as u64)
        .with_report()
        .await;
    let err = r.unwrap_err();
    assert!(matches!(err, RetryError::Rejected { attempts: 1, .. }), "{err:?}");
    assert!(format!("{err:#}").contains("part 2"), "{err:#}");
    assert!(
        eventually(Duration::from_secs(10), || s3.pending_uploads().is_empty()).await,
        "{:?}",
        s3.pending_uploads()
    );
}

#[tokio::test]
async fn a_panicking_on_retry_hook_propagates_and_the_upload_is_aborted() {
    let s3 = S3::start().await;
    s3.faults().fail_matching(1, |r| is_part(r, 2), Reply::s3_error(503, "SlowDown"));
    let client = s3.client.clone();
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let handle = tokio::spawn(async move {
        backstop_aws::upload(&client, BUCKET, "big.bin", data(11 * MIB))
            .policy(&fast(3))
            .multipart_threshold(6 * MIB as u64)
            .part_size(5 * MIB as u64)
            .on_retry(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
                panic!("hook panicked")
            })
            .await
    });
    let joined = tokio::time::timeout(Duration::from_secs(20), handle).await.expect("the upload hung after the panic");
    assert!(joined.is_err_and(|e| e.is_panic()), "the hook's panic did not reach the caller");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        eventually(Duration::from_secs(10), || s3.pending_uploads().is_empty()).await,
        "orphaned upload after a panicking hook: {:?}",
        s3.pending_uploads()
    );
    assert!(s3.requests_where(is_abort) >= 1);
    assert!(!s3.object_path("big.bin").exists());
}

#[tokio::test]
async fn transfer_keeps_a_breaker_set_before_guards_that_hold_none() {
    let s3 = S3::start().await;
    let breaker = CircuitBreaker::new("s3", Default::default());
    breaker.isolate();
    let clock = ManualClock::new();
    let g = Guards::builder().clock(&clock).build();
    let r = backstop_aws::upload(&s3.client, BUCKET, "k.bin", "x").policy(&fast(2)).breaker(&breaker).guards(&g).await;
    assert!(
        matches!(r, Err(RetryError::CircuitOpen { .. })),
        "the breaker set before .guards(&g) was dropped: {r:?}, {} requests",
        s3.faults().hits()
    );
}

#[tokio::test]
async fn transfer_with_report_counts_one_request_for_a_plain_put_and_get() {
    let s3 = S3::start().await;
    let (_, r) = backstop_aws::upload(&s3.client, BUCKET, "k.bin", "x").policy(&fast(2)).with_report().await.unwrap();
    assert_eq!((r.requests, r.retries), (1, 0));
    s3.faults().fail_matching(1, is_get, Reply::s3_error(503, "SlowDown"));
    let (b, r) = backstop_aws::download(&s3.client, BUCKET, "k.bin").policy(&fast(3)).with_report().await.unwrap();
    assert_eq!((&b[..], r.requests, r.retries), (&b"x"[..], 2, 1));
}

#[tokio::test]
async fn a_borrowed_string_uploads() {
    let s3 = S3::start().await;
    let csv = String::from("a,b\n");
    // FINDING: `&csv` (a `&String`) does not compile: `UploadData: From<&String>`
    // is not implemented (E0277); `&Vec<u8>` is. Written `.as_str()` here.
    backstop_aws::upload(&s3.client, BUCKET, "s.csv", csv.as_str()).policy(&fast(1)).await.unwrap();
    assert_eq!(bytes_of(&s3.object_path("s.csv")), b"a,b\n");
}
