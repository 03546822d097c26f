//! What the helpers' errors say: the object (and part) they are about, each
//! cause once under `{:#}` and anyhow, and an abort that failed for good.

mod common;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use backstop::RetryError;
use backstop::error::Chain;
use backstop_aws::S3Error;
use backstop_testkit::Reply;
use common::{BUCKET, S3, data, fast, is_abort, is_part, logs, upload_id_of};

const MIB: usize = 1024 * 1024;

/// Checks the workspace's rule on `e`: `{}` is its own layer and names
/// `object`; `{:#}` (and anyhow's `{:#}`) is that layer then each cause of
/// `source()`, once; `{:?}` names the key too. Gives back the causes.
fn assert_prints_each_cause_once(e: S3Error, object: &str) -> Vec<String> {
    let own = e.to_string();
    let alternate = format!("{e:#}");
    let debug = format!("{e:?}");
    let mut causes = Vec::new();
    let mut next = std::error::Error::source(&e);
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    assert!(own.contains(object), "{{}} names the object: {own}");
    assert!(debug.contains(&format!("key: {:?}", e.key())) && object.ends_with(e.key()), "{debug}");
    let expected: String = std::iter::once(own.clone()).chain(causes.iter().map(|c| format!(": {c}"))).collect();
    assert_eq!(alternate, expected, "{{:#}} is the layer, then every cause");
    assert_eq!(alternate, Chain(&e).to_string());
    for (i, cause) in causes.iter().enumerate() {
        assert!(!own.contains(cause.as_str()), "cause {cause:?} is already in the layer {own:?}");
        assert_eq!(alternate.matches(cause.as_str()).count(), 1, "cause {cause:?} printed once: {alternate}");
        for other in &causes[i + 1..] {
            assert!(!cause.contains(other.as_str()), "cause {other:?} repeats {cause:?}");
        }
    }
    assert_eq!(format!("{:#}", anyhow::Error::new(e)), alternate, "anyhow prints it the same way");
    causes
}

#[tokio::test]
async fn a_part_error_names_the_key_and_part_and_prints_each_cause_once() {
    let s3 = S3::start().await;
    s3.faults().fail_matching(usize::MAX, |r| is_part(r, 2), Reply::s3_error(503, "SlowDown"));
    let err = backstop_aws::upload(&s3.client, BUCKET, "reports/q3.bin", data(11 * MIB))
        .policy(&fast(2))
        .multipart_threshold(6 * MIB as u64)
        .part_size(5 * MIB as u64)
        .await
        .unwrap_err();
    let last = err.into_inner().unwrap();
    assert_eq!(
        last.to_string(),
        "UploadPart failed for s3://bike-data/reports/q3.bin (part 2): SlowDown: injected SlowDown (HTTP 503)"
    );
    assert_eq!((last.key(), last.part()), ("reports/q3.bin", Some(2)));
    assert!(format!("{last:?}").contains("part: Some(2)"));
    let causes = assert_prints_each_cause_once(last, "s3://bike-data/reports/q3.bin");
    assert!(causes.is_empty(), "the code and message are the whole story: {causes:?}");
}

#[tokio::test]
async fn a_service_error_a_dropped_connection_and_a_cut_body_print_each_cause_once() {
    let s3 = S3::start().await;
    backstop_aws::upload(&s3.client, BUCKET, "raw/trips.csv", data(100_000)).await.unwrap();

    let missing = backstop_aws::download(&s3.client, BUCKET, "raw/missing.csv").policy(&fast(1)).await.unwrap_err();
    let last = missing.into_inner().unwrap();
    assert!(last.to_string().starts_with("GetObject failed for s3://bike-data/raw/missing.csv: NoSuchKey"), "{last}");
    let sdk = last.original().unwrap().downcast_ref::<SdkError<GetObjectError, HttpResponse>>().unwrap();
    assert!(matches!(sdk.as_service_error(), Some(GetObjectError::NoSuchKey(_))), "the SDK's error, for downcasting");
    // The SDK's own chain says `NoSuchKey` twice more; none of it is repeated.
    assert_eq!(format!("{last:#}").matches("NoSuchKey").count(), 1, "{last:#}");
    assert!(assert_prints_each_cause_once(last, "s3://bike-data/raw/missing.csv").is_empty());

    s3.script([Reply::reset()]);
    let reset = backstop_aws::download(&s3.client, BUCKET, "raw/trips.csv").policy(&fast(1)).await.unwrap_err();
    let last = reset.into_inner().unwrap();
    assert_eq!(last.to_string(), "GetObject failed for s3://bike-data/raw/trips.csv: dispatch failure");
    let causes = assert_prints_each_cause_once(last, "s3://bike-data/raw/trips.csv");
    assert!(!causes.is_empty(), "why the dispatch failed is in the causes");

    s3.script([Reply::ForwardHalfBody]);
    let cut = backstop_aws::download(&s3.client, BUCKET, "raw/trips.csv").policy(&fast(1)).await.unwrap_err();
    let last = cut.into_inner().unwrap();
    assert_eq!(last.to_string(), "GetObject failed for s3://bike-data/raw/trips.csv: the body broke off");
    assert!(!assert_prints_each_cause_once(last, "s3://bike-data/raw/trips.csv").is_empty());
}

#[tokio::test]
async fn an_abort_that_fails_for_good_is_in_the_error_and_the_log() {
    logs::capture();
    let s3 = S3::start().await;
    s3.faults().fail_matching(usize::MAX, |r| is_part(r, 2), Reply::s3_error(500, "InternalError"));
    s3.faults().fail_matching(usize::MAX, is_abort, Reply::s3_error(503, "ServiceUnavailable"));
    let err = backstop_aws::upload(&s3.client, BUCKET, "abort/fails.bin", data(11 * MIB))
        .policy(&fast(2))
        .multipart_threshold(6 * MIB as u64)
        .part_size(5 * MIB as u64)
        .await
        .unwrap_err();
    assert!(matches!(err, RetryError::Exhausted { attempts: 2, .. }), "{err}");
    assert_eq!(s3.requests_where(is_abort), backstop_aws::ABORT_ATTEMPTS as usize, "the abort is retried");
    let upload_id = s3.faults().requests().iter().find(|r| is_abort(r)).and_then(upload_id_of).unwrap();

    assert!(format!("{err:#}").contains(&format!("upload id {upload_id} is left pending")), "{err:#}");
    let last = err.into_inner().unwrap();
    assert_eq!(last.upload_id(), Some(upload_id.as_str()));
    let abort = last.abort_error().expect("the abort's error is kept");
    assert_eq!((abort.operation(), abort.code()), ("AbortMultipartUpload", Some("ServiceUnavailable")));
    assert_eq!(
        last.to_string(),
        format!(
            "UploadPart failed for s3://bike-data/abort/fails.bin (part 2): InternalError: injected InternalError \
             (HTTP 500); the abort failed too (ServiceUnavailable: injected ServiceUnavailable): upload id \
             {upload_id} is left pending"
        )
    );
    assert_eq!(
        abort.to_string(),
        format!(
            "AbortMultipartUpload failed for s3://bike-data/abort/fails.bin (upload id {upload_id}): \
             ServiceUnavailable: injected ServiceUnavailable (HTTP 503); the upload is left pending"
        )
    );
    assert_prints_each_cause_once(last, "s3://bike-data/abort/fails.bin");
    assert!(!s3.pending_uploads().is_empty(), "the error tells the truth: it is still there");

    let warned = logs::lines_with(&upload_id);
    assert_eq!(warned.len(), 1, "{warned:?}");
    for said in ["WARN", "bucket=bike-data", "key=abort/fails.bin", "left pending"] {
        assert!(warned[0].contains(said), "{said:?} in {}", warned[0]);
    }
}
