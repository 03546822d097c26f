//! The S3 helpers with the real `aws-sdk-s3` client against a real S3 server
//! (`s3s` + `s3s-fs`) in-process on 127.0.0.1, behind a fault-injecting proxy.

mod common;

use std::time::Duration;

use backstop::{CircuitBreaker, ManualClock, RetryError, Verdict};
use backstop_testkit::Reply;
use common::{BUCKET, S3, TempDir, bytes_of, data, fast, is_abort, is_part, is_put, md5_hex};

const MIB: usize = 1024 * 1024;

fn is_get(r: &backstop_testkit::Recorded, key: &str) -> bool {
    r.method == http::Method::GET && r.path.starts_with(&format!("/{BUCKET}/{key}"))
}

#[tokio::test]
async fn an_upload_is_retried_through_slowdown_and_lands_intact() {
    let s3 = S3::start().await;
    s3.script([Reply::s3_error(503, "SlowDown"), Reply::s3_error(500, "InternalError")]);
    let body = data(200_000);
    let policy = fast(5);
    let uploaded = backstop_aws::upload(&s3.client, BUCKET, "processed/run-42.parquet", body.clone())
        .policy(&policy)
        .await
        .unwrap();
    assert_eq!(bytes_of(&s3.object_path("processed/run-42.parquet")), body);
    assert_eq!(uploaded.parts, 1);
    assert_eq!(uploaded.e_tag.as_deref().map(|t| t.trim_matches('"')), Some(md5_hex(&body).as_str()));
    assert_eq!(s3.requests_where(|r| is_put(r, "processed/run-42.parquet")), 3);
}

#[tokio::test]
async fn the_sdks_own_retries_are_off_so_attempts_are_not_multiplied() {
    let s3 = S3::start().await;
    s3.faults().otherwise(Reply::s3_error(503, "SlowDown"));
    let policy = fast(3);
    let err = backstop_aws::upload(&s3.client, BUCKET, "k", vec![1u8; 10]).policy(&policy).await.unwrap_err();
    assert!(matches!(err, RetryError::Exhausted { attempts: 3, .. }), "{err}");
    assert_eq!(err.last_error().unwrap().code(), Some("SlowDown"));
    assert_eq!(err.last_error().unwrap().verdict(), Verdict::Throttled);
    assert_eq!(s3.requests_where(|r| is_put(r, "k")), 3, "3 of ours, not 3 x 3");
}

#[tokio::test]
async fn access_denied_fails_on_the_first_attempt() {
    let s3 = S3::start().await;
    s3.script([Reply::s3_error(403, "AccessDenied")]);
    let err = backstop_aws::upload(&s3.client, BUCKET, "k", vec![1u8; 10]).policy(&fast(5)).await.unwrap_err();
    assert!(matches!(err, RetryError::Rejected { attempts: 1, .. }), "{err}");
    assert_eq!(err.last_error().unwrap().code(), Some("AccessDenied"));
    let last = err.last_error().unwrap().to_string();
    assert!(last.starts_with("PutObject failed for s3://bike-data/k: AccessDenied"), "{last}");
}

#[tokio::test]
async fn a_download_is_retried_through_a_reset_mid_body() {
    let s3 = S3::start().await;
    let body = data(300_000);
    backstop_aws::upload(&s3.client, BUCKET, "raw/trips.csv", body.clone()).await.unwrap();
    s3.script([Reply::ForwardHalfBody]);
    let got = backstop_aws::download(&s3.client, BUCKET, "raw/trips.csv").policy(&fast(5)).await.unwrap();
    assert_eq!(&got[..], &body[..]);
    assert_eq!(s3.requests_where(|r| is_get(r, "raw/trips.csv")), 2);
}

#[tokio::test]
async fn no_such_key_fails_on_the_first_attempt() {
    let s3 = S3::start().await;
    let err = backstop_aws::download(&s3.client, BUCKET, "missing.csv").policy(&fast(5)).await.unwrap_err();
    assert!(matches!(err, RetryError::Rejected { attempts: 1, .. }), "{err}");
    assert_eq!(err.last_error().unwrap().code(), Some("NoSuchKey"));
    assert_eq!(err.last_error().unwrap().status(), Some(404));
    assert_eq!(s3.requests_where(|r| is_get(r, "missing.csv")), 1);
}

#[tokio::test]
async fn a_file_download_replaces_the_target_only_when_complete() {
    let s3 = S3::start().await;
    let dir = TempDir::new();
    let target = dir.path("trips.csv");
    let body = data(100_000);
    backstop_aws::upload(&s3.client, BUCKET, "raw/trips.csv", body.clone()).await.unwrap();

    s3.script([Reply::ForwardHalfBody, Reply::s3_error(500, "InternalError")]);
    let written =
        backstop_aws::download_to_file(&s3.client, BUCKET, "raw/trips.csv", &target).policy(&fast(5)).await.unwrap();
    assert_eq!(written, body.len() as u64);
    assert_eq!(bytes_of(&target), body);
    assert_eq!(dir.files(), ["trips.csv"], "no temporary file left");
}

#[tokio::test]
async fn exhausted_retries_leave_no_file_at_the_target() {
    let s3 = S3::start().await;
    let dir = TempDir::new();
    let (fresh, existing) = (dir.path("new.csv"), dir.path("old.csv"));
    std::fs::write(&existing, b"yesterday's good copy").unwrap();
    backstop_aws::upload(&s3.client, BUCKET, "raw/trips.csv", data(50_000)).await.unwrap();
    s3.faults().otherwise(Reply::ForwardHalfBody);
    for target in [&fresh, &existing] {
        let err = backstop_aws::download_to_file(&s3.client, BUCKET, "raw/trips.csv", target)
            .policy(&fast(3))
            .await
            .unwrap_err();
        assert!(matches!(err, RetryError::Exhausted { attempts: 3, .. }), "{err}");
    }
    assert!(!fresh.exists(), "no partial file");
    assert_eq!(bytes_of(&existing), b"yesterday's good copy", "the old file is untouched");
    assert_eq!(dir.files(), ["old.csv"], "no temporary file left");
}

#[tokio::test]
async fn a_multipart_upload_survives_a_part_failing_twice() {
    let s3 = S3::start().await;
    let body = data(11 * MIB); // parts of 5, 5 and 1 MiB
    s3.faults().fail_matching(2, |r| is_part(r, 2), Reply::s3_error(503, "SlowDown"));
    let uploaded = backstop_aws::upload(&s3.client, BUCKET, "big.bin", body.clone())
        .policy(&fast(5))
        .multipart_threshold(6 * MIB as u64)
        .part_size(5 * MIB as u64)
        .await
        .unwrap();
    assert_eq!(uploaded.parts, 3);
    assert_eq!(s3.requests_where(|r| is_part(r, 2)), 3, "part 2: two failures, then success");
    assert_eq!(s3.requests_where(|r| is_part(r, 1)), 1);
    // S3's multipart ETag: MD5 of the parts' MD5s, then the part count.
    let part_md5s: Vec<u8> = body.chunks(5 * MIB).flat_map(|p| md5::Md5::digest(p).to_vec()).collect();
    let expected = format!("{}-3", md5_hex(&part_md5s));
    assert_eq!(uploaded.e_tag.as_deref().map(|t| t.trim_matches('"')), Some(expected.as_str()));
    assert_eq!(bytes_of(&s3.object_path("big.bin")), body);
    assert!(s3.pending_uploads().is_empty());
}

#[tokio::test]
async fn a_part_failing_for_good_aborts_the_multipart_upload() {
    let s3 = S3::start().await;
    s3.faults().fail_matching(usize::MAX, |r| is_part(r, 2), Reply::s3_error(500, "InternalError"));
    let err = backstop_aws::upload(&s3.client, BUCKET, "big.bin", data(11 * MIB))
        .policy(&fast(3))
        .multipart_threshold(6 * MIB as u64)
        .part_size(5 * MIB as u64)
        .await
        .unwrap_err();
    assert!(matches!(err, RetryError::Exhausted { attempts: 3, .. }), "{err}");
    assert_eq!(err.last_error().unwrap().operation(), "UploadPart");
    assert_eq!(s3.requests_where(is_abort), 1);
    assert!(s3.pending_uploads().is_empty(), "orphaned parts: {:?}", s3.pending_uploads());
    assert!(!s3.object_path("big.bin").exists());
}

#[tokio::test]
async fn a_large_file_upload_reads_its_parts_from_disk() {
    let s3 = S3::start().await;
    let dir = TempDir::new();
    let (small, large) = (dir.path("small.csv"), dir.path("large.bin"));
    std::fs::write(&small, data(1000)).unwrap();
    std::fs::write(&large, data(11 * MIB)).unwrap();
    s3.script([Reply::s3_error(503, "SlowDown")]);
    let one = backstop_aws::upload_file(&s3.client, BUCKET, "small.csv", &small).policy(&fast(3)).await.unwrap();
    let many = backstop_aws::upload_file(&s3.client, BUCKET, "large.bin", &large)
        .policy(&fast(3))
        .multipart_threshold(6 * MIB as u64)
        .part_size(5 * MIB as u64)
        .await
        .unwrap();
    assert_eq!((one.parts, many.parts), (1, 3));
    assert_eq!(bytes_of(&s3.object_path("small.csv")), bytes_of(&small));
    assert_eq!(bytes_of(&s3.object_path("large.bin")), bytes_of(&large));
    let missing = backstop_aws::upload_file(&s3.client, BUCKET, "x", dir.path("nope")).await.unwrap_err();
    let why = missing.last_error().unwrap().to_string();
    assert!(missing.is_permanent() && why.contains("reading"), "{why}");
}

#[tokio::test]
async fn a_stalled_request_times_out_and_is_retried() {
    let s3 = S3::start().await;
    s3.script([Reply::stall(Duration::from_secs(30))]);
    let uploaded = backstop_aws::upload(&s3.client, BUCKET, "k", vec![7u8; 100])
        .policy(&fast(3))
        .attempt_timeout(Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(uploaded.parts, 1);
    assert_eq!(bytes_of(&s3.object_path("k")), vec![7u8; 100]);
}

// The parts are small here (a multipart threshold of 1 KiB, so 3 KiB is
// one part of 3 KiB), so that a short attempt timeout cuts only the stall.

#[tokio::test]
async fn a_stalled_part_is_cut_by_the_attempt_timeout_and_sent_again() {
    let s3 = S3::start().await;
    let body = data(3 * 1024);
    s3.faults().fail_matching(1, |r| is_part(r, 1), Reply::stall(Duration::from_secs(60)));
    let policy = fast(3);
    let upload = backstop_aws::upload(&s3.client, BUCKET, "stalled.bin", body.clone())
        .policy(&policy)
        .multipart_threshold(1024)
        .attempt_timeout(Duration::from_millis(300));
    let uploaded = tokio::time::timeout(Duration::from_secs(20), upload).await.expect("never hangs").unwrap();
    assert_eq!(uploaded.parts, 1);
    assert_eq!(s3.requests_where(|r| is_part(r, 1)), 2, "part 1: stalled, cut, sent again");
    assert_eq!(bytes_of(&s3.object_path("stalled.bin")), body);
    assert!(s3.pending_uploads().is_empty());
}

#[tokio::test]
async fn a_part_that_always_stalls_fails_as_a_timeout_naming_the_part() {
    let s3 = S3::start().await;
    s3.faults().fail_matching(usize::MAX, |r| is_part(r, 1), Reply::stall(Duration::from_secs(60)));
    let policy = fast(2);
    let upload = backstop_aws::upload(&s3.client, BUCKET, "reports/q3.bin", data(3 * 1024))
        .policy(&policy)
        .multipart_threshold(1024)
        .attempt_timeout(Duration::from_millis(300));
    let err = tokio::time::timeout(Duration::from_secs(20), upload).await.expect("never hangs").unwrap_err();
    assert!(matches!(err, RetryError::Exhausted { attempts: 2, .. }), "{err}");
    let last = err.last_error().unwrap();
    assert_eq!((last.operation(), last.part(), last.verdict()), ("UploadPart", Some(1), Verdict::Timeout));
    assert_eq!(
        last.to_string(),
        "UploadPart failed for s3://bike-data/reports/q3.bin (part 1): the attempt timed out after 0.3 seconds"
    );
    assert_eq!(s3.requests_where(is_abort), 1, "aborted once it failed");
    assert!(s3.pending_uploads().is_empty(), "orphaned parts: {:?}", s3.pending_uploads());
}

#[tokio::test]
async fn a_server_hint_in_x_amz_retry_after_is_honoured() {
    let s3 = S3::start().await;
    s3.script([Reply::s3_error(503, "SlowDown").header("x-amz-retry-after", "1500")]);
    let clock = ManualClock::new();
    backstop_aws::upload(&s3.client, BUCKET, "k", vec![1u8]).policy(&fast(3)).clock(&clock).await.unwrap();
    assert_eq!(clock.sleeps(), [Duration::from_millis(1500)]);
}

#[tokio::test]
async fn the_breaker_stops_calls_to_a_failing_s3() {
    let s3 = S3::start().await;
    // An outage, not throttling: by default a breaker does not open on `SlowDown`.
    s3.faults().otherwise(Reply::s3_error(500, "InternalError"));
    let breaker = CircuitBreaker::new("s3", backstop::breaker::BreakerConfig::default()); // 5 in a row
    let policy = fast(3);
    for _ in 0..3 {
        let _ = backstop_aws::upload(&s3.client, BUCKET, "k", vec![1u8]).policy(&policy).breaker(&breaker).await;
    }
    assert_eq!(s3.requests_where(|r| is_put(r, "k")), 5);
    assert_eq!(breaker.state(), backstop::breaker::CircuitState::Open);
}

#[tokio::test]
async fn a_pacer_spaces_the_uploads_to_a_prefix_after_slowdown() {
    // Ten uploads to one prefix sharing a pacer: the first is told SlowDown,
    // the pacer starts pacing, and the rest wait their slots (virtual time).
    let s3 = S3::start().await;
    s3.script([Reply::s3_error(503, "SlowDown")]);
    let clock = ManualClock::new();
    let pacer = backstop::Pacer::builder("s3").burst(1).min_rate(2.0).clock(&clock).build().unwrap();
    let policy = fast(3);
    for i in 0..10 {
        backstop_aws::upload(&s3.client, BUCKET, &format!("raw/{i}.csv"), vec![1u8; 10])
            .policy(&policy)
            .pacer(&pacer)
            .clock(&clock)
            .await
            .unwrap();
    }
    assert!(pacer.rate().is_some(), "pacing after SlowDown");
    assert!(clock.elapsed() >= Duration::from_millis(400), "{:?}", clock.elapsed());
    assert_eq!(s3.requests_where(|r| r.method == http::Method::PUT && r.path.contains("/raw/")), 11);
}

#[tokio::test]
async fn any_sdk_call_can_be_retried_with_the_macro() {
    let s3 = S3::start().await;
    backstop_aws::upload(&s3.client, BUCKET, "raw/a.csv", vec![1u8]).await.unwrap();
    s3.script([Reply::s3_error(503, "SlowDown"), Reply::s3_error(500, "InternalError")]);
    let policy = fast(5);
    let listing = backstop_aws::retry!(&policy, s3.client.list_objects_v2().bucket(BUCKET).prefix("raw/"))
        .name("ListObjectsV2 bike-data")
        .await
        .unwrap();
    let keys: Vec<_> = listing.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["raw/a.csv"]);
    let missing = backstop_aws::retry!(&policy, s3.client.head_bucket().bucket("no-such-bucket")).await.unwrap_err();
    assert!(missing.is_permanent(), "{missing}");
}

use md5::Digest;

#[tokio::test]
async fn a_transfer_reports_its_requests_and_every_retry() {
    let s3 = S3::start().await;
    s3.script([Reply::s3_error(503, "SlowDown"), Reply::s3_error(500, "InternalError")]);
    let retried = std::sync::Mutex::new(Vec::new());
    let (uploaded, report) = backstop_aws::upload(&s3.client, BUCKET, "k", vec![7u8; 100])
        .policy(&fast(5))
        .on_retry(|event| retried.lock().unwrap().push(event.error.code().map(str::to_owned)))
        .with_report()
        .await
        .unwrap();
    assert_eq!((uploaded.parts, report.requests, report.retries), (1, 3, 2));
    assert_eq!(*retried.lock().unwrap(), [Some("SlowDown".to_owned()), Some("InternalError".to_owned())]);

    // A multipart upload counts every request: the create, each part with
    // its retries, and the complete.
    s3.faults().fail_matching(2, |r| is_part(r, 2), Reply::s3_error(503, "SlowDown"));
    let (_, report) = backstop_aws::upload(&s3.client, BUCKET, "big.bin", data(11 * MIB))
        .policy(&fast(5))
        .multipart_threshold(6 * MIB as u64)
        .part_size(5 * MIB as u64)
        .with_report()
        .await
        .unwrap();
    assert_eq!((report.requests, report.retries), (1 + (3 + 2) + 1, 2));

    // A 20 MiB upload with no retries: five requests (create, 3 parts,
    // complete), and no retry.
    let (_, report) =
        backstop_aws::upload(&s3.client, BUCKET, "twenty.bin", data(20 * MIB)).with_report().await.unwrap();
    assert_eq!((report.requests, report.retries), (5, 0));

    // A download that succeeds at once: one request.
    let (got, report) = backstop_aws::download(&s3.client, BUCKET, "k").with_report().await.unwrap();
    assert_eq!((got.len(), report.requests, report.retries), (100, 1, 0));
}

#[tokio::test]
async fn borrowed_bytes_are_uploaded_and_a_temporary_policy_is_fine() {
    let s3 = S3::start().await;
    let buffer = data(1000);
    // A borrowed slice (copied once) and a policy made on the spot, awaited
    // on the next line.
    let upload = backstop_aws::upload(&s3.client, BUCKET, "slice.bin", &buffer[..])
        .policy(&backstop::presets::S3_UPLOAD.to_builder().max_attempts(2).build().unwrap());
    upload.await.unwrap();
    assert_eq!(bytes_of(&s3.object_path("slice.bin")), buffer);
}

#[tokio::test]
async fn a_download_into_a_missing_directory_fails_before_sending_anything() {
    let s3 = S3::start().await;
    backstop_aws::upload(&s3.client, BUCKET, "raw/trips.csv", "a,b\n1,2\n").await.unwrap();
    let dir = TempDir::new();
    let path = dir.0.join("no-such-dir").join("trips.csv");
    let err = backstop_aws::download_to_file(&s3.client, BUCKET, "raw/trips.csv", &path).await.unwrap_err();
    assert!(matches!(err, RetryError::Rejected { attempts: 0, .. }), "{err}");
    let shown = format!("{err:#}");
    assert!(shown.starts_with("GetObject s3://bike-data/raw/trips.csv failed before its first attempt"), "{shown}");
    assert!(shown.contains("does not exist"), "{shown}");
    assert_eq!(s3.requests_where(|r| is_get(r, "raw/trips.csv")), 0, "no GET was sent");
}

#[tokio::test]
async fn transfers_are_spawned_as_written_and_run_concurrently() {
    let s3 = S3::start().await;
    s3.faults().fail_matching(3, |r| r.method == http::Method::PUT, Reply::s3_error(503, "SlowDown"));
    let policy = fast(5);
    // `tokio::spawn(backstop_aws::upload(&client, ..))`: the transfer owns a
    // clone of the client and is a `'static` future.
    let uploads: Vec<_> = (0..16)
        .map(|i| {
            let key = format!("spawned/{i}.bin");
            tokio::spawn(backstop_aws::upload(&s3.client, BUCKET, &key, vec![i as u8; 1000]).policy(&policy))
        })
        .collect();
    for upload in uploads {
        upload.await.unwrap().unwrap();
    }
    let downloads: Vec<_> = (0..16)
        .map(|i| tokio::spawn(backstop_aws::download(&s3.client, BUCKET, &format!("spawned/{i}.bin"))))
        .collect();
    for (i, download) in downloads.into_iter().enumerate() {
        assert_eq!(download.await.unwrap().unwrap(), vec![i as u8; 1000]);
    }
    // The three refused PUTs were retried (a connection the proxy closed after
    // a 503 may cost another).
    assert!(s3.requests_where(|r| r.method == http::Method::PUT) >= 16 + 3, "three refused, retried");
}

#[tokio::test]
async fn runs_are_named_after_the_object_and_a_missing_key_says_no_such_key() {
    let s3 = S3::start().await;
    let names = std::sync::Mutex::new(Vec::new());
    s3.script([Reply::s3_error(503, "SlowDown")]);
    backstop_aws::upload(&s3.client, BUCKET, "raw/day.csv", "a,b")
        .policy(&fast(3))
        .on_retry(|event| names.lock().unwrap().push(event.name.to_owned()))
        .await
        .unwrap();
    assert_eq!(*names.lock().unwrap(), ["PutObject s3://bike-data/raw/day.csv"]);

    let err = backstop_aws::download(&s3.client, BUCKET, "raw/missing.csv").policy(&fast(3)).await.unwrap_err();
    assert!(matches!(err, RetryError::Rejected { attempts: 1, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "GetObject s3://bike-data/raw/missing.csv failed on attempt 1 with an error that is not retried"
    );
    let last = err.last_error().unwrap();
    assert_eq!(last.code(), Some("NoSuchKey"));
    assert!(last.to_string().starts_with("GetObject failed for s3://bike-data/raw/missing.csv: NoSuchKey"), "{last}");
}

#[tokio::test]
async fn a_stalled_get_is_hedged_and_the_first_whole_body_wins() {
    use backstop::hedge::{Hedge, HedgeDelay};
    let s3 = S3::start().await;
    backstop_aws::upload(&s3.client, BUCKET, "day.parquet", vec![3u8; 5000]).await.unwrap();
    s3.faults().fail_matching(
        1,
        |r| r.method == "GET" && r.path.contains("/day.parquet"),
        Reply::stall(Duration::from_secs(30)),
    );
    let hedge =
        Hedge::builder("s3-get").delay(HedgeDelay::fixed(Duration::from_millis(5))).min_per_sec(100.0).build().unwrap();
    let body = backstop_aws::download(&s3.client, BUCKET, "day.parquet").hedge(&hedge).with_report().await.unwrap();
    assert_eq!(body.0, vec![3u8; 5000]);
    assert_eq!(body.1.retries, 0, "the hedge answered within the attempt");
    assert_eq!(s3.requests_where(|r| r.method == "GET"), 2);
}

#[tokio::test]
async fn a_hedged_download_to_a_file_keeps_the_first_complete_file_and_no_other() {
    use backstop::hedge::{Hedge, HedgeDelay};
    let s3 = S3::start().await;
    let dir = TempDir::new();
    backstop_aws::upload(&s3.client, BUCKET, "day.csv", vec![5u8; 4000]).await.unwrap();
    s3.faults().fail_matching(
        1,
        |r| r.method == "GET" && r.path.contains("/day.csv"),
        Reply::stall(Duration::from_secs(30)),
    );
    let hedge =
        Hedge::builder("s3-get").delay(HedgeDelay::fixed(Duration::from_millis(5))).min_per_sec(100.0).build().unwrap();
    let written =
        backstop_aws::download_to_file(&s3.client, BUCKET, "day.csv", dir.path("day.csv")).hedge(&hedge).await.unwrap();
    assert_eq!(written, 4000);
    assert_eq!(bytes_of(&dir.path("day.csv")), vec![5u8; 4000]);
    assert_eq!(dir.files(), ["day.csv"], "the stalled request's temporary file is gone with it");
    assert_eq!(s3.requests_where(|r| r.method == "GET"), 2);
}

#[tokio::test]
async fn a_stalled_part_is_hedged_and_the_object_is_whole() {
    use backstop::hedge::{Hedge, HedgeDelay};
    let s3 = S3::start().await;
    let dir = TempDir::new();
    let data = data(11 * 1024 * 1024); // parts of 5, 5 and 1 MiB
    let source = dir.path("src.bin");
    std::fs::write(&source, &data).unwrap();
    s3.faults().fail_matching(1, |r| is_part(r, 2), Reply::stall(Duration::from_secs(60)));
    let hedge = Hedge::builder("s3-part")
        .delay(HedgeDelay::fixed(Duration::from_millis(5)))
        .min_per_sec(100.0)
        .build()
        .unwrap();
    let uploaded = backstop_aws::upload_file(&s3.client, BUCKET, "parts.bin", &source)
        .multipart_threshold(1024)
        .part_size(5 * 1024 * 1024)
        .hedge(&hedge)
        .with_report()
        .await
        .unwrap();
    assert_eq!(uploaded.0.parts, 3);
    assert_eq!(uploaded.1.retries, 0, "the hedge answered within the attempt");
    assert_eq!(bytes_of(&s3.object_path("parts.bin")), data);
    // Part 2 stalled and was hedged; a part slower than 5 ms here (5 MiB
    // through a proxy, unoptimised) may be too: each at most twice.
    assert_eq!(s3.requests_where(|r| is_part(r, 2)), 2, "part 2 sent twice, the stalled one dropped");
    assert!((1..=3).all(|n| s3.requests_where(|r| is_part(r, n)) <= 2));
}

#[tokio::test]
async fn transfers_sharing_a_limit_share_its_places() {
    use backstop::limit::ConcurrencyLimit;
    let s3 = S3::start().await;
    let limit = ConcurrencyLimit::builder("s3").max_concurrent(1).max_queue(0).build().unwrap();
    let held = limit.try_acquire().unwrap();
    let err = backstop_aws::upload(&s3.client, BUCKET, "k", vec![1u8; 10]).limit(&limit).await.unwrap_err();
    assert!(matches!(err, RetryError::Limited { attempts: 0, .. }), "{err}");
    assert_eq!(s3.requests_where(|r| is_put(r, "k")), 0);
    drop(held);
    backstop_aws::upload(&s3.client, BUCKET, "k", vec![1u8; 10]).limit(&limit).await.unwrap();
    assert_eq!(limit.in_use(), 0);
}

/// A pacer per prefix: `SlowDown` on one prefix paces that prefix only;
/// uploads to another go at once.
#[tokio::test]
async fn a_pacer_per_prefix_paces_only_the_prefix_told_slowdown() {
    use backstop::keyed::Keyed;
    use backstop::{Guards, Pacer};
    let s3 = S3::start().await;
    s3.script([Reply::s3_error(503, "SlowDown")]);
    let clock = ManualClock::new();
    let pacing = clock.clone();
    let per_prefix = Keyed::builder(move |prefix: &str| {
        let pacer = Pacer::builder(format!("s3 {prefix}")).burst(1).min_rate(2.0).clock(&pacing).build().unwrap();
        Guards::builder().pacer(&pacer).build()
    })
    .build()
    .unwrap();
    let upload = |key: String| {
        backstop_aws::upload(&s3.client, BUCKET, &key, vec![1u8; 10])
            .policy(&fast(3))
            .per_prefix(&per_prefix, 1)
            .clock(&clock)
    };
    upload("hot/0.csv".into()).await.unwrap();
    let hot = per_prefix.get(&format!("{BUCKET}/hot/"));
    assert!(hot.pacer().unwrap().rate().is_some(), "the prefix told SlowDown paces");
    let before = clock.elapsed();
    for i in 0..5 {
        upload(format!("cold/{i}.csv")).await.unwrap();
    }
    assert_eq!(clock.elapsed(), before, "the other prefix's uploads did not wait");
    assert_eq!(per_prefix.get(&format!("{BUCKET}/cold/")).pacer().unwrap().rate(), None);
    for i in 1..6 {
        upload(format!("hot/{i}.csv")).await.unwrap();
    }
    assert!(clock.elapsed() > before, "the hot prefix's uploads waited their slots");
}

/// A breaker per bucket: one bucket's outage opens its breaker; another
/// bucket's transfers are never refused.
#[tokio::test]
async fn a_breaker_per_bucket_stops_only_the_failing_bucket() {
    use backstop::Guards;
    use backstop::breaker::{BreakerConfig, CircuitState};
    use backstop::keyed::Keyed;
    let s3 = S3::start().await;
    s3.client.create_bucket().bucket("other-bucket").send().await.unwrap();
    let per_bucket = Keyed::builder(|bucket: &str| {
        let config = BreakerConfig::builder().consecutive_failures(2).build().unwrap();
        Guards::builder().breaker(&CircuitBreaker::new(format!("s3 {bucket}"), config)).build()
    })
    .build()
    .unwrap();
    s3.script([Reply::s3_error(500, "InternalError"), Reply::s3_error(500, "InternalError")]);
    let err = backstop_aws::upload(&s3.client, BUCKET, "k", vec![1u8]).policy(&fast(2)).per_bucket(&per_bucket).await;
    assert!(err.is_err());
    assert_eq!(per_bucket.get(BUCKET).breaker().unwrap().state(), CircuitState::Open);
    let refused = backstop_aws::upload(&s3.client, BUCKET, "k", vec![1u8]).per_bucket(&per_bucket).await.unwrap_err();
    assert!(matches!(refused, RetryError::CircuitOpen { .. }), "{refused}");
    for i in 0..5 {
        backstop_aws::upload(&s3.client, "other-bucket", &format!("k{i}"), vec![1u8])
            .policy(&fast(2))
            .per_bucket(&per_bucket)
            .await
            .unwrap();
    }
    assert_eq!(per_bucket.get("other-bucket").breaker().unwrap().state(), CircuitState::Closed);
    assert_eq!(s3.requests_where(|r| is_put(r, "k")), 2, "the open bucket's third upload was not sent");
}
