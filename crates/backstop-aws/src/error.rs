//! What one step of an S3 helper can fail with: [`S3Error`].

use std::error::Error;
use std::fmt;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use backstop::Verdict;

use crate::classify::classify;

/// The error of one attempt of an S3 helper: which operation, the service's
/// error code and HTTP status if there was a response, and the verdict the
/// classifier gave it. The SDK's error (or the I/O error) is its `source()`.
#[derive(Debug)]
pub struct S3Error {
    operation: &'static str,
    code: Option<String>,
    status: Option<u16>,
    verdict: Verdict,
    message: String,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

impl S3Error {
    /// An SDK error, classified by [`classify`](crate::classify).
    pub fn from_sdk<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        let verdict = classify(&error);
        let code = error.code().map(str::to_owned);
        let status = error.raw_response().map(|r| r.status().as_u16());
        let message = match (&code, error.message()) {
            (Some(code), Some(msg)) => format!("{code}: {msg}"),
            (Some(code), None) => code.clone(),
            _ => causes(&error),
        };
        Self { operation, code, status, verdict, message, source: Some(Box::new(error)) }
    }

    /// A body that broke off while being read: retried.
    pub(crate) fn body(operation: &'static str, error: impl Error + Send + Sync + 'static) -> Self {
        let message = format!("the body broke off: {}", causes(&error));
        Self { operation, code: None, status: None, verdict: Verdict::Retry, message, source: Some(Box::new(error)) }
    }

    /// A local file could not be read or written: not retried.
    pub(crate) fn io(operation: &'static str, what: &str, error: std::io::Error) -> Self {
        let message = format!("{what}: {error}");
        Self { operation, code: None, status: None, verdict: Verdict::Fail, message, source: Some(Box::new(error)) }
    }

    /// An attempt cut by its per-attempt timeout: retried as a timeout.
    pub(crate) fn timed_out(operation: &'static str, after: Duration) -> Self {
        let message = format!("the attempt timed out after {:.1}s", after.as_secs_f64());
        Self { operation, code: None, status: None, verdict: Verdict::Timeout, message, source: None }
    }

    /// The S3 operation (`PutObject`, `UploadPart`, `GetObject`, ...).
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The service's error code (`SlowDown`, `NoSuchKey`, ...), if it answered with one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The HTTP status of the error response, if there was one.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The verdict the classifier gave this error.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.operation, self.message)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        Ok(())
    }
}

impl Error for S3Error {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// An error and its causes, `: `-separated, each said once (the SDK's own
/// `DisplayErrorContext` also appends a `Debug` dump, too noisy for a log line).
fn causes(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The classifier of the helpers' runs: the verdict each error was made with.
pub(crate) fn verdict_of(error: &S3Error) -> Verdict {
    error.verdict
}
