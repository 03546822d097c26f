//! What `backstop run` prints of its own, on stderr: a line before each
//! retry and one when it gives up, as text or, with `--json-log`, as JSON
//! objects; nothing with `--quiet`.

use backstop::{RetryError, RetryEvent};

use super::failure::Failure;

/// The lines printed about one command's run.
pub struct Report {
    /// The command as shown: its words joined by spaces.
    pub shown: String,
    /// `--quiet`: print nothing.
    pub quiet: bool,
    /// `--json-log`: JSON objects, one a line, instead of text.
    pub json: bool,
}

impl Report {
    /// The line before a retry: which attempt failed, how, and the delay.
    pub fn retrying(&self, e: &RetryEvent<'_, Failure>) {
        if self.quiet {
            return;
        }
        let shown = &self.shown;
        let line = if self.json {
            serde_json::json!({
                "event": "retry",
                "command": shown,
                "attempt": e.attempt,
                "max_attempts": e.max_attempts,
                "delay_ms": e.delay.as_millis() as u64,
                "error": e.error.to_string(),
            })
            .to_string()
        } else {
            format!(
                "Retrying {shown} in {} (attempt {}/{}): {}",
                crate::fmt_secs(e.delay),
                e.attempt + 1,
                e.max_attempts,
                e.error
            )
        };
        eprintln!("{line}");
    }

    /// The line when backstop gives up: why, after how many attempts, and
    /// the last failure.
    pub fn gave_up(&self, err: &RetryError<Failure>) {
        if self.quiet {
            return;
        }
        let shown = &self.shown;
        let summary = match err {
            RetryError::Exhausted { attempts, .. } => format!("gave up after {attempts} attempts"),
            RetryError::DeadlineExceeded { attempts, .. }
            | RetryError::Rejected { attempts, last: Failure::Deadline(_), .. } => {
                format!("deadline reached after {attempts} attempts")
            }
            RetryError::Rejected { attempts, .. } => format!("not retried (attempt {attempts})"),
            other => other.to_string(),
        };
        let last = err.last_error().map(ToString::to_string).unwrap_or_default();
        if self.json {
            eprintln!(
                "{}",
                serde_json::json!({"event": "gave_up", "command": shown, "attempts": err.attempts(), "error": last})
            );
        } else {
            eprintln!("backstop: {shown}: {summary}: {last}");
        }
    }
}
