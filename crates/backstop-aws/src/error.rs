//! What one step of an S3 helper can fail with: [`S3Error`].
//!
//! # How it prints
//!
//! [`S3Error`] follows the rule of every backstop error (see
//! [`backstop::error`]): `{}` prints its own layer only, `source()` hands out
//! the cause, and `{:#}` prints the layer and then every cause, `: `-separated,
//! each once. Its own layer names the operation, the object (and the part of a
//! multipart upload), and what S3 said:
//!
//! ```text
//! UploadPart failed for s3://bike-data/processed/run-42.parquet (part 3): SlowDown: Please reduce your request rate. (HTTP 503)
//! GetObject failed for s3://bike-data/raw/trips.csv: dispatch failure: other: client error (SendRequest): connection closed before message completed
//! ```
//!
//! (the second line under `{:#}`: `{}` stops after `dispatch failure`).

use std::error::Error;
use std::fmt;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use backstop::Verdict;
use backstop::error::Chain;

use crate::classify::classify;

/// The object a step of a transfer works on: what its errors name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) bucket: &'a str,
    pub(crate) key: &'a str,
    /// The part number, for an `UploadPart`.
    pub(crate) part: Option<i32>,
    /// The multipart upload the step belongs to.
    pub(crate) upload_id: Option<&'a str>,
}

impl<'a> Target<'a> {
    /// The whole object `bucket/key`.
    pub(crate) fn object(bucket: &'a str, key: &'a str) -> Self {
        Self { bucket, key, part: None, upload_id: None }
    }

    /// A step of the multipart upload `upload_id` of this object.
    pub(crate) fn upload(self, upload_id: &'a str) -> Self {
        Self { upload_id: Some(upload_id), ..self }
    }

    /// The name of a run of `operation` on this object, in logs, metrics
    /// and errors: `PutObject s3://bike-data/raw/day.csv`.
    pub(crate) fn run_name(&self, operation: &str) -> backstop::retry::Name {
        backstop::retry::Name::Owned(format!("{operation} s3://{}/{}", self.bucket, self.key))
    }

    /// Part `number` of this object's multipart upload.
    pub(crate) fn part(self, number: i32) -> Self {
        Self { part: Some(number), ..self }
    }
}

/// The error of one attempt of an S3 helper: which operation on which object
/// (and part), the service's error code and HTTP status if there was a
/// response, and the verdict the classifier gave it.
///
/// `{}` prints this layer only; [`source()`](Error::source) hands out the
/// causes (the SDK's chain, each cause once: the SDK's own chain repeats the
/// code and message, so those are left out); `{:#}` prints both. The error
/// as the SDK returned it is kept for downcasting: [`original`](Self::original).
///
/// A multipart upload that failed and then could not be aborted says so:
/// [`abort_error`](Self::abort_error) is the abort's error, and the text ends
/// with `the abort failed too` and the upload id left pending.
pub struct S3Error(Box<Inner>);

/// The fields of an [`S3Error`], boxed: an error stays one pointer wide.
struct Inner {
    operation: &'static str,
    bucket: String,
    key: String,
    part: Option<i32>,
    upload_id: Option<String>,
    code: Option<String>,
    status: Option<u16>,
    verdict: Verdict,
    /// This layer's own words after the object: `SlowDown: ...`, `the body broke off`.
    detail: Option<String>,
    /// An `AbortMultipartUpload` that failed for good: the upload stays.
    left_pending: bool,
    abort: Option<S3Error>,
    cause: Option<Box<Cause>>,
    original: Option<Box<dyn Error + Send + Sync + 'static>>,
}

impl S3Error {
    fn new(operation: &'static str, verdict: Verdict, detail: String) -> Self {
        Self(Box::new(Inner {
            operation,
            bucket: String::new(),
            key: String::new(),
            part: None,
            upload_id: None,
            code: None,
            status: None,
            verdict,
            detail: Some(detail),
            left_pending: false,
            abort: None,
            cause: None,
            original: None,
        }))
    }

    /// Sets the causes `source()` hands out, and the original error.
    fn caused_by(mut self, cause: Option<Box<Cause>>, original: Box<dyn Error + Send + Sync + 'static>) -> Self {
        self.0.cause = cause;
        self.0.original = Some(original);
        self
    }

    /// An SDK error, classified by [`classify`](crate::classify). Name the
    /// object with [`for_object`](Self::for_object).
    pub fn from_sdk<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        let verdict = classify(&error);
        let code = error.code().map(str::to_owned);
        let status = error.raw_response().map(|r| r.status().as_u16());
        let (detail, cause) = sdk_detail(&error);
        let mut this = Self::new(operation, verdict, detail).caused_by(cause, Box::new(error));
        this.0.code = code;
        this.0.status = status;
        this
    }

    /// Names the object the error is about, `s3://bucket/key`, in its text.
    pub fn for_object(mut self, bucket: &str, key: &str) -> Self {
        bucket.clone_into(&mut self.0.bucket);
        key.clone_into(&mut self.0.key);
        self
    }

    /// Names the object, part and upload of `target`.
    pub(crate) fn at(mut self, target: Target<'_>) -> Self {
        self = self.for_object(target.bucket, target.key);
        self.0.part = target.part;
        self.0.upload_id = target.upload_id.map(str::to_owned);
        self
    }

    /// A body that broke off while being read: retried.
    pub(crate) fn body(operation: &'static str, target: Target<'_>, error: impl Error + Send + Sync + 'static) -> Self {
        let detail = "the body broke off".to_owned();
        let cause = Cause::chain(Some(&error), &detail);
        Self::new(operation, Verdict::Retry, detail).caused_by(cause, Box::new(error)).at(target)
    }

    /// A local file could not be read or written (`what`: `creating /tmp/x`): not retried.
    pub(crate) fn io(operation: &'static str, target: Target<'_>, what: String, error: std::io::Error) -> Self {
        let cause = Cause::chain(Some(&error), &what);
        Self::new(operation, Verdict::Fail, what).caused_by(cause, Box::new(error)).at(target)
    }

    /// An attempt cut by its per-attempt timeout: retried as a timeout.
    pub(crate) fn timed_out(operation: &'static str, target: Target<'_>, after: Duration) -> Self {
        let detail = format!("the attempt timed out after {} seconds", backstop::duration::Seconds(after));
        Self::new(operation, Verdict::Timeout, detail).at(target)
    }

    /// Something the helper cannot go on with (`the response had no upload id`): not retried.
    pub(crate) fn unusable(operation: &'static str, target: Target<'_>, what: &str) -> Self {
        Self::new(operation, Verdict::Fail, what.to_owned()).at(target)
    }

    /// Marks an `AbortMultipartUpload` error as final: the upload stays pending.
    pub(crate) fn left_pending(mut self) -> Self {
        self.0.left_pending = true;
        self
    }

    /// Adds the error of the abort that followed this failure and failed too.
    pub(crate) fn with_abort_error(mut self, abort: S3Error) -> Self {
        self.0.abort = Some(abort);
        self
    }

    /// The S3 operation (`PutObject`, `UploadPart`, `GetObject`, ...).
    pub fn operation(&self) -> &'static str {
        self.0.operation
    }

    /// The bucket of the object (empty if the error was made without one).
    pub fn bucket(&self) -> &str {
        &self.0.bucket
    }

    /// The key of the object (empty if the error was made without one).
    pub fn key(&self) -> &str {
        &self.0.key
    }

    /// The part number, for an error of an `UploadPart`.
    pub fn part(&self) -> Option<i32> {
        self.0.part
    }

    /// The multipart upload the failed step belonged to.
    pub fn upload_id(&self) -> Option<&str> {
        self.0.upload_id.as_deref()
    }

    /// The service's error code (`SlowDown`, `NoSuchKey`, ...), if it answered with one.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// The HTTP status of the error response, if there was one.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    /// The verdict the classifier gave this error.
    pub fn verdict(&self) -> Verdict {
        self.0.verdict
    }

    /// When a multipart upload failed and its `AbortMultipartUpload` failed
    /// too, even when retried: the abort's error. The upload, with
    /// [`upload_id`](Self::upload_id), is then left pending (and its parts
    /// billed) until it is aborted or a lifecycle rule expires it.
    pub fn abort_error(&self) -> Option<&S3Error> {
        self.0.abort.as_ref()
    }

    /// The error as the SDK (or the file system) returned it, for
    /// downcasting: `SdkError<GetObjectError, HttpResponse>` for a
    /// `GetObject`, `std::io::Error` for a local file. It is not
    /// [`source()`](Error::source), whose chain leaves out the SDK's repeats.
    pub fn original(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.0.original.as_deref()
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.0.operation)?;
        if !self.0.bucket.is_empty() {
            write!(f, " for s3://{}/{}", self.0.bucket, self.0.key)?;
        }
        if let Some(part) = self.0.part {
            write!(f, " (part {part})")?;
        } else if let (true, Some(id)) = (self.0.operation == "AbortMultipartUpload", &self.0.upload_id) {
            write!(f, " (upload id {id})")?;
        }
        if let Some(detail) = &self.0.detail {
            write!(f, ": {detail}")?;
        }
        if let Some(status) = self.0.status {
            write!(f, " (HTTP {status})")?;
        }
        if self.0.left_pending {
            f.write_str("; the upload is left pending")?;
        }
        if let Some(abort) = &self.0.abort {
            let id = abort.0.upload_id.as_deref().unwrap_or("?");
            write!(f, "; the abort failed too")?;
            if let Some(detail) = &abort.0.detail {
                write!(f, " ({detail})")?;
            }
            write!(f, ": upload id {id} is left pending")?;
        }
        if f.alternate()
            && let Some(cause) = self.source()
        {
            write!(f, ": {}", Chain(cause))?;
        }
        Ok(())
    }
}

impl fmt::Debug for S3Error {
    /// Structured, without the SDK's own `Debug` dump (see [`original`](S3Error::original)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut causes = Vec::new();
        let mut next = self.0.cause.as_deref();
        while let Some(cause) = next {
            causes.push(cause.text.as_str());
            next = cause.next.as_deref();
        }
        f.debug_struct("S3Error")
            .field("operation", &self.0.operation)
            .field("bucket", &self.0.bucket)
            .field("key", &self.0.key)
            .field("part", &self.0.part)
            .field("upload_id", &self.0.upload_id)
            .field("code", &self.0.code)
            .field("status", &self.0.status)
            .field("verdict", &self.0.verdict)
            .field("detail", &self.0.detail)
            .field("left_pending", &self.0.left_pending)
            .field("abort", &self.0.abort)
            .field("causes", &causes)
            .finish()
    }
}

/// A retried S3 call that stopped before any attempt returned an error (an
/// open breaker, a throttle, a deadline), as an `S3Error`: the error of an
/// [`s3_retry`](crate::s3_retry) function with a guard. Its
/// [`original`](S3Error::original) is the [`Stopped`](backstop::retry::Stopped).
impl From<backstop::retry::Stopped> for S3Error {
    fn from(stopped: backstop::retry::Stopped) -> Self {
        S3Error::new("a retried S3 call", Verdict::Fail, stopped.to_string()).caused_by(None, Box::new(stopped))
    }
}

impl Error for S3Error {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.cause.as_deref().map(|c| c as &(dyn Error + 'static))
    }
}

/// One cause of an [`S3Error`], kept as its text: the chain `source()`
/// hands out, with the SDK's repeats left out.
#[derive(Debug)]
struct Cause {
    text: String,
    next: Option<Box<Cause>>,
}

/// What an SDK error says: a service error's code and message are the whole
/// story (the SDK's chain below them only repeats them); otherwise the SDK's
/// top layer (`dispatch failure`, `timeout`), and its causes.
fn sdk_detail<E>(error: &SdkError<E, HttpResponse>) -> (String, Option<Box<Cause>>)
where
    E: ProvideErrorMetadata + Error + 'static,
{
    match (error.code(), error.message()) {
        (Some(code), Some(msg)) => (format!("{code}: {msg}"), None),
        (Some(code), None) => (code.to_owned(), None),
        _ => {
            let top = error.to_string();
            let cause = Cause::chain(error.source(), &top);
            (top, cause)
        }
    }
}

/// Prints an SDK error as [`S3Error`] does after the object: its code and
/// message (`SlowDown: Please reduce your request rate.`) where the SDK's own
/// `Display` says `service error`, else its chain (`dispatch failure: io:
/// connection reset`), each cause once.
///
/// The log lines of [`retry_sdk`](crate::retry_sdk), [`retry!`](crate::retry!)
/// and [`s3_retry`](crate::s3_retry) print errors with it; give it to
/// [`Retry::describe_error`](backstop::retry::Retry::describe_error) for a
/// run of your own.
pub fn describe_sdk_error<E>(error: &SdkError<E, HttpResponse>, f: &mut fmt::Formatter<'_>) -> fmt::Result
where
    E: ProvideErrorMetadata + Error + 'static,
{
    let (detail, mut cause) = sdk_detail(error);
    f.write_str(&detail)?;
    while let Some(c) = cause {
        write!(f, ": {}", c.text)?;
        cause = c.next;
    }
    Ok(())
}

impl Cause {
    /// `first` and its sources, each text kept once, leaving out texts
    /// already said by an earlier one or by `said` (the layer above).
    fn chain(first: Option<&(dyn Error + 'static)>, said: &str) -> Option<Box<Cause>> {
        let mut texts: Vec<String> = Vec::new();
        let mut next = first;
        while let Some(e) = next {
            let text = e.to_string();
            if !text.is_empty() && !said.contains(&text) && !texts.iter().any(|t| t.contains(&text)) {
                texts.push(text);
            }
            next = e.source();
        }
        texts.into_iter().rev().fold(None, |next, text| Some(Box::new(Cause { text, next })))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.next.as_deref().map(|c| c as &(dyn Error + 'static))
    }
}

/// The classifier of the helpers' runs: the verdict each error was made with.
pub(crate) fn verdict_of(error: &S3Error) -> Verdict {
    error.0.verdict
}
