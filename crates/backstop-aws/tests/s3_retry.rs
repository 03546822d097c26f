//! `#[backstop_aws::s3_retry]` on functions that call the real `aws-sdk-s3`
//! client against the in-process S3 server: S3's classifier with no
//! arguments, for the SDK's errors and the helpers' `S3Error`.
#![cfg(feature = "macros")]

mod common;

use std::sync::LazyLock;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use backstop_aws::backstop::{CircuitBreaker, ManualClock};
use backstop_aws::{S3Error, s3_retry};
use backstop_testkit::Reply;
use common::{BUCKET, S3, logs};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

/// The seeds' `upload_to_s3`, on the SDK's own error type.
#[s3_retry(clock = CLOCK)]
async fn upload_to_s3(
    client: &Client,
    key: &str,
    data: &[u8],
) -> Result<(), SdkError<aws_sdk_s3::operation::put_object::PutObjectError>> {
    upload_once(client, key, data).await
}

static CLOCK_GET: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

/// A `GetObject` returning the helpers' `S3Error`.
#[s3_retry(preset = s3_download, clock = CLOCK_GET)]
async fn object_size(client: &Client, key: &str) -> Result<i64, S3Error> {
    let to_s3 = |e: SdkError<GetObjectError>| S3Error::from_sdk("GetObject", e).for_object(BUCKET, key);
    let object = client.get_object().bucket(BUCKET).key(key).send().await.map_err(to_s3)?;
    Ok(object.content_length().unwrap_or(-1))
}

/// The test server's client with the SDK's own retries off, as the crate's docs advise.
fn client(s3: &S3) -> Client {
    let config = s3.client.config().to_builder().retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled());
    Client::from_conf(config.build())
}

#[tokio::test]
async fn slow_down_is_retried_and_access_denied_is_not() {
    let s3 = S3::start().await;
    let client = client(&s3);
    s3.script([Reply::s3_error(503, "SlowDown"), Reply::s3_error(500, "InternalError")]);
    upload_to_s3(&client, "run-1.parquet", b"rows").await.unwrap();
    assert_eq!(std::fs::read(s3.object_path("run-1.parquet")).unwrap(), b"rows");
    assert_eq!(CLOCK.sleeps().len(), 2, "two retries, on the s3_upload preset's schedule");
    assert!(CLOCK.sleeps()[0] >= Duration::from_secs(1));

    s3.script([Reply::s3_error(403, "AccessDenied")]);
    let err = upload_to_s3(&client, "run-2.parquet", b"rows").await.unwrap_err();
    assert_eq!(aws_sdk_s3::error::ProvideErrorMetadata::code(&err), Some("AccessDenied"));
    assert_eq!(CLOCK.sleeps().len(), 2, "AccessDenied is returned at once");
}

#[tokio::test]
async fn the_helpers_s3_error_is_classified_too() {
    let s3 = S3::start().await;
    let client = client(&s3);
    upload_to_s3(&client, "in.csv", b"a,b").await.unwrap();
    s3.script([Reply::s3_error(503, "SlowDown")]);
    assert_eq!(object_size(&client, "in.csv").await.unwrap(), 3);
    assert_eq!(CLOCK_GET.sleeps().len(), 1);

    let err = object_size(&client, "missing.csv").await.unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"));
    assert_eq!(CLOCK_GET.sleeps().len(), 1, "NoSuchKey is returned at once");
}

static OPEN: LazyLock<CircuitBreaker> = LazyLock::new(|| {
    let breaker = CircuitBreaker::builder("s3").build();
    breaker.isolate();
    breaker
});

#[s3_retry(breaker = OPEN)]
async fn behind_an_open_breaker(client: &Client) -> Result<Vec<u8>, S3Error> {
    let _ = client;
    Ok(Vec::new())
}

#[tokio::test]
async fn an_open_breaker_is_an_s3_error_that_keeps_the_stopped_run() {
    let s3 = S3::start().await;
    let err = behind_an_open_breaker(&s3.client).await.unwrap_err();
    assert!(err.to_string().contains("behind_an_open_breaker stopped before its first attempt"), "{err}");
    assert!(err.original().unwrap().downcast_ref::<backstop_aws::backstop::retry::Stopped>().is_some());
}

static CLOCK_THROTTLED: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

/// `upload_to_s3` again, on a clock of its own (for a key S3 always throttles).
#[s3_retry(clock = CLOCK_THROTTLED)]
async fn upload_throttled(
    client: &Client,
    key: &str,
    data: &[u8],
) -> Result<(), SdkError<aws_sdk_s3::operation::put_object::PutObjectError>> {
    upload_once(client, key, data).await
}

/// One `PutObject`: the body of both.
async fn upload_once(
    client: &Client,
    key: &str,
    data: &[u8],
) -> Result<(), SdkError<aws_sdk_s3::operation::put_object::PutObjectError>> {
    client.put_object().bucket(BUCKET).key(key).body(ByteStream::from(data.to_vec())).send().await?;
    Ok(())
}

#[tokio::test]
async fn with_the_documented_client_each_attempt_is_one_put_and_the_log_says_slow_down() {
    let s3 = S3::start().await;
    // Built from a config as an application's is: the test server's sets no
    // retry config, so the SDK's default (standard mode, 3 tries a request)
    // would apply.
    assert!(s3.client.config().retry_config().is_none());
    let client = backstop_aws::client(s3.client.config().to_builder());
    s3.faults().fail_matching(usize::MAX, |r| common::is_put(r, "throttled.bin"), Reply::s3_error(503, "SlowDown"));
    logs::capture();
    let err = upload_throttled(&client, "throttled.bin", b"rows").await.unwrap_err();
    let lines = logs::every_line_with("upload_throttled");
    assert_eq!(aws_sdk_s3::error::ProvideErrorMetadata::code(&err), Some("SlowDown"));
    assert_eq!(s3.requests_where(|r| common::is_put(r, "throttled.bin")), 5, "5 attempts, one PUT each");
    let retrying: Vec<_> = lines.iter().filter(|l| l.contains("Retrying upload_throttled")).collect();
    assert_eq!(retrying.len(), 4, "{lines:#?}");
    assert!(retrying[0].contains("(attempt 1/5): SlowDown: injected SlowDown"), "{}", retrying[0]);
    assert!(retrying[0].contains("error=SlowDown: injected SlowDown"), "the field too: {}", retrying[0]);
    let gave_up = lines.iter().find(|l| l.contains("WARN")).expect("a give-up line");
    assert!(gave_up.contains("upload_throttled failed after 5 attempts"), "{gave_up}");
    assert!(gave_up.contains(": SlowDown: injected SlowDown"), "{gave_up}");
    assert!(!lines.iter().any(|l| l.contains("service error")), "{lines:#?}");
}
