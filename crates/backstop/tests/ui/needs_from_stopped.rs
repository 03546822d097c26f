use std::sync::LazyLock;

use backstop::CircuitBreaker;

static S3: LazyLock<CircuitBreaker> = LazyLock::new(|| CircuitBreaker::builder("s3").build());

#[derive(Debug)]
struct UploadError;

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upload failed")
    }
}

#[backstop::retry(breaker = S3)]
fn upload() -> Result<(), UploadError> {
    Err(UploadError)
}

fn main() {}
