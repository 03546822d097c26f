//! Large downloads in ranged parts, with the real `aws-sdk-s3` client against
//! `s3s` + `s3s-fs` in-process behind the fault proxy: the parts come whole
//! into memory and into a file; a part that fails is retried on its own,
//! and a slow one hedged on its own; every part after the first asks for the
//! first's version; an answer that is not the range asked for fails the
//! download; an object up to the threshold takes one GET, whose checksum
//! the SDK checks; a large file download dropped at any moment leaves no
//! temporary file.

mod common;

use std::sync::Arc;
use std::time::Duration;

use backstop::RetryError;
use backstop::hedge::{Hedge, HedgeDelay};
use backstop_testkit::{Backend, FaultServer, Recorded, Reply};
use common::{BUCKET, S3, TempDir, bytes_of, client_for, data, fast};

const MIB: u64 = 1024 * 1024;
const PART: u64 = 5 * MIB;

/// The GET of `key`'s part at `offset`: the first is the plain GET (no
/// range), the others ranged GETs.
fn is_range(r: &Recorded, key: &str, offset: u64) -> bool {
    r.method == http::Method::GET
        && r.path.starts_with(&format!("/{BUCKET}/{key}"))
        && match r.header("range") {
            Some(range) => range.starts_with(&format!("bytes={offset}-")),
            None => offset == 0,
        }
}

/// Puts an 11 MiB object (parts of 5, 5 and 1 MiB) at `key`.
async fn large(s3: &S3, key: &str) -> Vec<u8> {
    let body = data(11 * MIB as usize);
    backstop_aws::upload(&s3.client, BUCKET, key, body.clone()).await.unwrap();
    body
}

#[tokio::test]
async fn a_large_object_comes_whole_in_ranged_parts_into_memory_and_into_a_file() {
    let s3 = S3::start().await;
    let body = large(&s3, "big.bin").await;
    let (got, report) = backstop_aws::download(&s3.client, BUCKET, "big.bin")
        .part_size(PART)
        .multipart_threshold(PART)
        .with_report()
        .await
        .unwrap();
    assert_eq!(got.len(), body.len());
    assert!(got == body, "the parts joined are the object");
    assert_eq!((report.requests, report.retries, report.hedges), (3, 0, 0));
    for offset in [0, PART, 2 * PART] {
        assert_eq!(s3.requests_where(|r| is_range(r, "big.bin", offset)), 1, "part at {offset}");
    }
    // Every part after the first asks for the first's version.
    let etags: Vec<String> = s3
        .faults()
        .requests()
        .iter()
        .filter(|r| is_range(r, "big.bin", PART))
        .filter_map(|r| r.header("if-match").map(str::to_owned))
        .collect();
    assert_eq!(etags.len(), 1, "part 2 carries If-Match");

    let dir = TempDir::new();
    let written = backstop_aws::download_to_file(&s3.client, BUCKET, "big.bin", dir.path("big.bin"))
        .part_size(PART)
        .multipart_threshold(PART)
        .concurrency(2)
        .await
        .unwrap();
    assert_eq!(written, body.len() as u64);
    assert!(bytes_of(&dir.path("big.bin")) == body, "the file is the object");
    assert_eq!(dir.files(), ["big.bin"]);
}

#[tokio::test]
async fn a_part_that_fails_is_retried_on_its_own() {
    let s3 = S3::start().await;
    let body = large(&s3, "flaky.bin").await;
    s3.faults().fail_matching(2, |r| is_range(r, "flaky.bin", PART), Reply::s3_error(503, "SlowDown"));
    let (got, report) = backstop_aws::download(&s3.client, BUCKET, "flaky.bin")
        .part_size(PART)
        .multipart_threshold(PART)
        .policy(&fast(5))
        .with_report()
        .await
        .unwrap();
    assert!(got == body);
    assert_eq!((report.requests, report.retries), (5, 2));
    assert_eq!(s3.requests_where(|r| is_range(r, "flaky.bin", 0)), 1, "the first part is not sent again");
    assert_eq!(s3.requests_where(|r| is_range(r, "flaky.bin", 2 * PART)), 1);
}

#[tokio::test]
async fn a_stalled_part_is_hedged_on_its_own() {
    let s3 = S3::start().await;
    let body = large(&s3, "slow.bin").await;
    s3.faults().fail_matching(1, |r| is_range(r, "slow.bin", 2 * PART), Reply::stall(Duration::from_secs(60)));
    let hedge = Hedge::builder("s3-get")
        .delay(HedgeDelay::fixed(Duration::from_millis(50)))
        .min_per_sec(100.0)
        .build()
        .unwrap();
    let (got, report) = backstop_aws::download(&s3.client, BUCKET, "slow.bin")
        .part_size(PART)
        .multipart_threshold(PART)
        .hedge(&hedge)
        .with_report()
        .await
        .unwrap();
    assert!(got == body);
    assert_eq!(report.retries, 0, "the hedge answered within the attempt");
    assert!(report.hedges >= 1, "{report:?}");
    assert_eq!(report.requests, 3 + report.hedges);
    assert_eq!(s3.requests_where(|r| is_range(r, "slow.bin", 2 * PART)), 2, "the stalled part sent twice");
}

#[tokio::test]
async fn an_object_replaced_between_its_parts_fails_the_download_and_leaves_no_file() {
    let s3 = S3::start().await;
    large(&s3, "moving.bin").await;
    // S3's answer to a part whose If-Match no longer holds.
    s3.faults().fail_matching(
        1,
        |r| is_range(r, "moving.bin", PART) && r.header("if-match").is_some(),
        Reply::s3_error(412, "PreconditionFailed"),
    );
    let dir = TempDir::new();
    let err = backstop_aws::download_to_file(&s3.client, BUCKET, "moving.bin", dir.path("moving.bin"))
        .part_size(PART)
        .multipart_threshold(PART)
        .policy(&fast(5))
        .await
        .unwrap_err();
    assert!(matches!(err, RetryError::Rejected { .. }), "{err}");
    assert_eq!(err.last_error().unwrap().code(), Some("PreconditionFailed"));
    assert_eq!(dir.files(), Vec::<String>::new(), "no file, and no temporary file");
}

#[tokio::test]
async fn an_object_up_to_the_threshold_takes_one_get_and_its_checksum_is_checked() {
    let s3 = S3::start().await;
    backstop_aws::upload(&s3.client, BUCKET, "empty", Vec::new()).await.unwrap();
    backstop_aws::upload(&s3.client, BUCKET, "small", vec![7u8; 1000]).await.unwrap();
    let (empty, report) = backstop_aws::download(&s3.client, BUCKET, "empty").with_report().await.unwrap();
    assert!(empty.is_empty());
    assert_eq!(report.requests, 1);
    // 11 MiB, under the default threshold of 16 MiB: one GET.
    let body = large(&s3, "medium.bin").await;
    let (got, report) = backstop_aws::download(&s3.client, BUCKET, "medium.bin").with_report().await.unwrap();
    assert!(got == body);
    assert_eq!(report.requests, 1);
    // A byte flipped on the server's disk: the SDK's checksum check fails it.
    let path = s3.object_path("medium.bin");
    let mut stored = std::fs::read(&path).unwrap();
    stored[9 * MIB as usize] ^= 0xff;
    std::fs::write(&path, &stored).unwrap();
    let rotten = backstop_aws::download(&s3.client, BUCKET, "medium.bin").policy(&fast(1)).await;
    assert!(rotten.is_err(), "bytes that are not the object's were returned");
    let (small, report) = backstop_aws::download(&s3.client, BUCKET, "small").with_report().await.unwrap();
    assert_eq!(small, vec![7u8; 1000]);
    assert_eq!(report.requests, 1);
    let dir = TempDir::new();
    let written = backstop_aws::download_to_file(&s3.client, BUCKET, "empty", dir.path("empty")).await.unwrap();
    assert_eq!((written, bytes_of(&dir.path("empty"))), (0, Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_downloads_dropped_at_random_moments_leave_no_temporary_file() {
    let s3 = S3::start().await;
    let body = Arc::new(large(&s3, "drop.bin").await);
    let dir = Arc::new(TempDir::new());
    let mut rng = fastrand::Rng::with_seed(0x5eed_0b1e);
    let (mut dropped, mut finished) = (0, 0);
    for round in 0..12 {
        let mut downloads = tokio::task::JoinSet::new();
        for i in 0..3 {
            let limit = Duration::from_micros(rng.u64(0..400_000));
            let (dir, client) = (Arc::clone(&dir), s3.client.clone());
            downloads.spawn(async move {
                let target = dir.path(&format!("drop-{round}-{i}.bin"));
                let download = backstop_aws::download_to_file(&client, BUCKET, "drop.bin", &target)
                    .part_size(PART)
                    .multipart_threshold(PART);
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
    assert!(dropped >= 5, "{dropped} dropped, {finished} finished");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for name in dir.files() {
        assert!(!name.ends_with(".part"), "a temporary file is left: {name}");
        assert!(bytes_of(&dir.path(&name)) == *body, "{name} is complete or absent");
    }
}

/// A fake S3 that answers every part of `object` right, but for the ranged
/// GET at `bad_offset`, answered with `content_range` and `body`.
fn fake_with_a_bad_part(
    object: Arc<Vec<u8>>,
    bad_offset: u64,
    content_range: &'static str,
    body: usize,
) -> FaultServer {
    let backend: Backend = Arc::new(move |req: http::Request<bytes::Bytes>| {
        let object = Arc::clone(&object);
        Box::pin(async move {
            let total = object.len() as u64;
            let range = req.headers().get("range").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let response = http::Response::builder().header("etag", "\"v1\"");
            let Some(range) = range else {
                let length = object.len().to_string();
                return response
                    .status(200)
                    .header("content-length", length)
                    .body(bytes::Bytes::from(object.to_vec()))
                    .unwrap();
            };
            let (a, b) = range.strip_prefix("bytes=").unwrap().split_once('-').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse::<u64>().unwrap().min(total - 1));
            if a == bad_offset {
                let body = bytes::Bytes::copy_from_slice(&object[..body]);
                return response.status(206).header("content-range", content_range).body(body).unwrap();
            }
            let body = bytes::Bytes::copy_from_slice(&object[a as usize..=b as usize]);
            response.status(206).header("content-range", format!("bytes {a}-{b}/{total}")).body(body).unwrap()
        })
    });
    FaultServer::with_backend(backend)
}

#[tokio::test]
async fn an_answer_that_is_not_the_range_asked_for_fails_the_download() {
    let object = Arc::new(data(12 * MIB as usize));
    let part = PART as usize;
    for (content_range, body, what) in [
        ("bytes 0-5242879/12582912", part, "part 1's bytes for part 2"),
        ("bytes 5242880-10485759/99999999", part, "another size"),
        ("bytes 5242880-10485759/*", part, "no size"),
        ("garbage", part, "an unreadable range"),
        ("bytes 5242880-10485759/12582912", part / 2, "half the bytes"),
    ] {
        let server = fake_with_a_bad_part(Arc::clone(&object), PART, content_range, body);
        let client = client_for(&server.url(""));
        let got = backstop_aws::download(&client, BUCKET, "k")
            .part_size(PART)
            .multipart_threshold(PART)
            .policy(&fast(2))
            .await;
        assert!(got.is_err(), "{what}: accepted: {:?}", got.as_ref().map(|b| b.len()));
        let dir = TempDir::new();
        let got = backstop_aws::download_to_file(&client, BUCKET, "k", dir.path("k"))
            .part_size(PART)
            .multipart_threshold(PART)
            .policy(&fast(2))
            .await;
        assert!(got.is_err(), "{what}: accepted to a file");
        assert_eq!(dir.files(), Vec::<String>::new(), "{what}: a file is left");
    }
    // The same server with every part right: whole, in three GETs.
    let server = fake_with_a_bad_part(Arc::clone(&object), u64::MAX, "", 0);
    let client = client_for(&server.url(""));
    let (got, report) = backstop_aws::download(&client, BUCKET, "k")
        .part_size(PART)
        .multipart_threshold(PART)
        .with_report()
        .await
        .unwrap();
    assert!(got == *object);
    assert_eq!((report.requests, server.requests().len()), (3, 3));
}
