//! An upload and a download with a plain `aws-sdk-s3` client, as in your own
//! program: the quickstart of a data pipeline that writes its results to S3.
//!
//! The client is configured by hand here so that the example needs nothing
//! but `aws-sdk-s3`; an application usually loads the same settings with
//! `aws_config::load_defaults(BehaviorVersion::latest())` and
//! `aws_sdk_s3::Client::new(&config)`. Any S3-compatible endpoint works:
//!
//! ```sh
//! AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_REGION=eu-west-1 \
//! S3_ENDPOINT=http://127.0.0.1:9000 \
//!     cargo run --example s3_upload -p backstop-aws -- my-bucket
//! ```
//!
//! (This example's HTTP client speaks plain HTTP, for a local endpoint such
//! as MinIO; for AWS itself, enable a TLS feature of `aws-sdk-s3` or use
//! `aws-config`.)

use std::env;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use backstop_aws::backstop::{CircuitBreaker, Guards, RetryBudget};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let bucket = env::args().nth(1).ok_or("usage: s3_upload <bucket>")?;
    let var = |name: &str| env::var(name).map_err(|_| format!("set {name}"));

    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())))
        .credentials_provider(Credentials::new(
            var("AWS_ACCESS_KEY_ID")?,
            var("AWS_SECRET_ACCESS_KEY")?,
            None,
            None,
            "env",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http());
    if let Ok(endpoint) = env::var("S3_ENDPOINT") {
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    let client = aws_sdk_s3::Client::from_conf(config.build());

    // One set of guards for every call to this bucket, made once.
    let s3 = Guards::builder()
        .breaker(&CircuitBreaker::new("s3", Default::default()))
        .budget(&RetryBudget::default())
        .build();

    // S3_UPLOAD by default: 5 attempts, 1 s doubling to 30 s, +U[0, 1 s].
    let report = "station,bikes\nCentraal,12\nNeude,4\n";
    let (uploaded, sent) = backstop_aws::upload(&client, &bucket, "processed/run-42.csv", report)
        .guards(&s3)
        .on_retry(|event| eprintln!("retrying after: {}", event.error))
        .with_report()
        .await?;
    println!(
        "uploaded in {} request(s), {} of them retries; ETag {}",
        sent.requests,
        sent.retries,
        uploaded.e_tag.unwrap_or_default()
    );

    let back = backstop_aws::download(&client, &bucket, "processed/run-42.csv").guards(&s3).await?;
    println!("downloaded {} bytes", back.len());
    Ok(())
}
