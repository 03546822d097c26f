//! The quickstart: an S3 upload and a weather API call, each
//! failing a few times before it works, retried with the ready presets, and a
//! permanent error handled at once. Real time, real sleeps (about 5 s).
//!
//! Run it with: `cargo run --example quickstart -p backstop`

use std::cell::Cell;
use std::fmt;

use backstop::{RetryError, Verdict, presets};

/// The errors a simulated S3 client returns.
#[derive(Debug)]
enum S3Error {
    SlowDown,
    AccessDenied,
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Error::SlowDown => f.write_str("SlowDown: Please reduce your request rate."),
            S3Error::AccessDenied => f.write_str("AccessDenied: Access Denied"),
        }
    }
}

impl std::error::Error for S3Error {}

/// Throttling is transient; a denied request will be denied again.
fn classify_s3(e: &S3Error) -> Verdict {
    match e {
        S3Error::SlowDown => Verdict::Retry,
        S3Error::AccessDenied => Verdict::Fail,
    }
}

/// A simulated HTTP error: a status code.
#[derive(Debug)]
struct HttpError(u16);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.0)
    }
}

impl std::error::Error for HttpError {}

/// 5xx, 408 and 429 are worth another try; other 4xx are not.
fn classify_http(e: &HttpError) -> Verdict {
    Verdict::retry_if(matches!(e.0, 408 | 429 | 500..=599) && e.0 != 501)
}

/// A fake `put_object` that is throttled `throttled` times, then succeeds.
fn put_object(throttled: &Cell<u32>, key: &str) -> Result<String, S3Error> {
    if throttled.get() > 0 {
        throttled.set(throttled.get() - 1);
        return Err(S3Error::SlowDown);
    }
    Ok(format!("\"etag-of-{key}\""))
}

/// A fake weather API that answers 503 `failures` times, then a forecast.
fn fetch_weather_data(failures: &Cell<u32>, city: &str) -> Result<String, HttpError> {
    if failures.get() > 0 {
        failures.set(failures.get() - 1);
        return Err(HttpError(503));
    }
    Ok(format!("{{\"city\": \"{city}\", \"temp_c\": 11.5}}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The log lines: "Retrying upload_to_s3 in 1.0 seconds (attempt 1/5)".
    tracing_subscriber::fmt().with_target(false).init();

    // S3 upload: 5 attempts, 1 s doubling to 30 s, +U[0, 1 s].
    let throttled = Cell::new(2);
    let etag = presets::S3_UPLOAD
        .retry(|| put_object(&throttled, "processed/run-42.parquet"))
        .when(classify_s3)
        .name("upload_to_s3")
        .call()?;
    println!("uploaded, ETag {etag}");

    // Weather API: 3 attempts, 0.5 s doubling to 10 s, +U[0, 0.5 s].
    let failures = Cell::new(1);
    let forecast = presets::API_CALL
        .retry(|| fetch_weather_data(&failures, "Utrecht"))
        .when(classify_http)
        .name("fetch_weather_data")
        .call()?;
    println!("forecast {forecast}");

    // A permanent error is not retried: it comes back at once.
    let denied = presets::S3_UPLOAD
        .retry(|| Err::<String, _>(S3Error::AccessDenied))
        .when(classify_s3)
        .name("upload_to_s3")
        .call();
    match denied {
        Err(e @ RetryError::Rejected { .. }) => println!("not retried: {e}"),
        other => return Err(format!("expected a permanent error, got {other:?}").into()),
    }
    Ok(())
}
