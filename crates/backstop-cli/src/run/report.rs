//! What `backstop run` prints of its own, on stderr: a line before each
//! retry and one when it gives up, as text or, with `--json-log`, as JSON
//! objects; nothing with `--quiet`.
//!
//! The lines follow the library's own (see `backstop::docs::observability`):
//! the same words (`Retrying CMD in 1.0 seconds (attempt 1/5): exit status 1`,
//! where the attempt is the one that failed), the same durations
//! ([`Seconds`]), and in JSON the same field names (`name`, `attempt`,
//! `max_attempts`, `delay_ms`, `elapsed_ms`, `error`, and `message`, the text line).

use backstop::duration::Seconds;
use backstop::{RetryError, RetryEvent, RetryPolicy};

use super::failure::Failure;

/// The lines printed about one command's run.
pub struct Report {
    /// The command as shown: its words joined by spaces.
    pub shown: String,
    /// `--quiet`: print nothing.
    pub quiet: bool,
    /// `--json-log`: JSON objects, one a line, instead of text.
    pub json: bool,
    /// `--verbose`: also the effective policy, before the first attempt.
    pub verbose: bool,
}

impl Report {
    /// With `--verbose`, the policy the run uses, every setting (a preset's
    /// jitter included), before the first attempt.
    pub fn starting(&self, policy: &RetryPolicy) {
        if self.quiet || !self.verbose {
            return;
        }
        let message = format!("Running {} under {policy}", self.shown);
        self.print(&message, serde_json::json!({"event": "start", "name": self.shown, "policy": policy.to_string()}));
    }

    /// The line before a retry: which attempt failed, how, and the delay.
    pub fn retrying(&self, e: &RetryEvent<'_, Failure>) {
        if self.quiet {
            return;
        }
        let message = format!(
            "Retrying {} in {} seconds (attempt {}/{}): {}",
            self.shown,
            Seconds(e.delay),
            e.attempt,
            e.max_attempts,
            e.error
        );
        let fields = serde_json::json!({
            "event": "retry",
            "name": self.shown,
            "attempt": e.attempt,
            "max_attempts": e.max_attempts,
            "delay_ms": e.delay.as_millis() as u64,
            "elapsed_ms": e.elapsed.as_millis() as u64,
            "error": e.error.to_string(),
        });
        self.print(&message, fields);
    }

    /// The line when backstop gives up: why, after how many attempts, and
    /// the last failure.
    pub fn gave_up(&self, err: &RetryError<Failure>, max_attempts: u32) {
        if self.quiet {
            return;
        }
        let shown = &self.shown;
        let summary = match err {
            RetryError::Exhausted { attempts, .. } => format!("gave up after {}", attempts_text(*attempts)),
            RetryError::DeadlineExceeded { attempts, .. }
            | RetryError::Rejected { attempts, last: Failure::Deadline(_), .. } => {
                format!("deadline reached after {}", attempts_text(*attempts))
            }
            RetryError::Rejected { attempts, .. } => format!("not retried (attempt {attempts})"),
            other => other.to_string(),
        };
        let last = err.last_error().map(ToString::to_string).unwrap_or_default();
        let message = format!("backstop: {shown}: {summary}: {last}");
        let fields = serde_json::json!({
            "event": "gave_up",
            "name": shown,
            "attempt": err.attempts(),
            "max_attempts": max_attempts,
            "error": last,
        });
        self.print(&message, fields);
    }

    /// The text line, or the JSON object with the text line as its `message`.
    fn print(&self, message: &str, mut fields: serde_json::Value) {
        if !self.json {
            eprintln!("{message}");
            return;
        }
        if let Some(object) = fields.as_object_mut() {
            object.insert("message".into(), message.into());
        }
        eprintln!("{fields}");
    }
}

/// `1 attempt` / `3 attempts`.
fn attempts_text(n: u32) -> String {
    if n == 1 { "1 attempt".to_owned() } else { format!("{n} attempts") }
}
