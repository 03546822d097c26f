//! The retries at work without an AWS account: an upload throttled twice
//! (`503 SlowDown`), a download whose connection drops mid-body, and a
//! missing key that fails at once, all with the real `aws-sdk-s3` client
//! against a real S3 server (`s3s` + `s3s-fs`) running in this process on
//! 127.0.0.1 behind a fault injector (this repository's test kit, which is
//! not published). Takes a few seconds of real backoff. For the client setup
//! of your own program, see the `s3_upload` example.
//!
//! Run it with: `cargo run --example s3_faults -p backstop-aws`

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use backstop::{CircuitBreaker, RetryError};
use backstop_testkit::Reply;
use backstop_testkit::s3::{ACCESS_KEY, LocalS3, SECRET_KEY};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();

    let s3 = LocalS3::start();
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "example"))
            .endpoint_url(s3.endpoint())
            .force_path_style(true)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build(),
    );
    client.create_bucket().bucket("bike-data").send().await?;
    let upload_circuit = CircuitBreaker::new("s3_upload", Default::default());

    // Upload: S3 is throttling us twice. The S3_UPLOAD preset (5 attempts,
    // 1 s doubling to 30 s, +U[0, 1 s]) rides it out.
    s3.faults.script([Reply::s3_error(503, "SlowDown"), Reply::s3_error(503, "SlowDown")]);
    let data = "station,bikes\nCentraal,12\nNeude,4\n".repeat(1000);
    let uploaded = backstop_aws::upload(&client, "bike-data", "processed/run-42.csv", data.clone())
        .breaker(&upload_circuit)
        .await?;
    println!("uploaded processed/run-42.csv, ETag {}", uploaded.e_tag.unwrap_or_default());

    // Download: the connection drops halfway through the body; the body is
    // read inside the attempt, so it is retried rather than returned short.
    s3.faults.script([Reply::ForwardHalfBody]);
    let back = backstop_aws::download(&client, "bike-data", "processed/run-42.csv").await?;
    assert_eq!(back, data.as_bytes());
    println!("downloaded {} bytes, identical", back.len());

    // A missing key is permanent: it fails on the first attempt.
    match backstop_aws::download(&client, "bike-data", "processed/run-43.csv").await {
        // `{e:#}`: the run, then the S3 error naming the object, each said once.
        Err(e @ RetryError::Rejected { .. }) => println!("not retried: {e:#}"),
        other => return Err(format!("expected NoSuchKey, got {other:?}").into()),
    }
    println!("the server saw {} requests", s3.faults.hits());
    Ok(())
}
