//! How an attempt fails, and what follows from it: which failures are
//! retried (`--retry-on-exit`, `--stop-on-exit`; a timeout is, the deadline
//! and signals never), and the exit status `backstop` ends with after the
//! last one (the command's own, 124, 126, 127 or 128 + n).

use std::fmt;
use std::process::ExitStatus;
use std::time::Duration;

use backstop::Verdict;
use backstop::duration::Seconds;

/// How one attempt of the command failed.
#[derive(Debug)]
pub enum Failure {
    /// It exited with this non-zero code.
    Exit(i32),
    /// It was killed by this signal (from outside: not retried).
    Signal(i32),
    /// It ran past the attempt timeout and was ended.
    TimedOut(Duration),
    /// The run's deadline (this long) came while it ran, and it was ended:
    /// not retried.
    Deadline(Duration),
    /// It could not be started.
    Spawn(std::io::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Exit(code) => write!(f, "exit status {code}"),
            Failure::Signal(sig) => write!(f, "killed by signal {sig}"),
            Failure::TimedOut(d) => write!(f, "timed out after {} seconds", Seconds(*d)),
            Failure::Deadline(d) => {
                write!(f, "the deadline of {} seconds came, and the attempt was ended", Seconds(*d))
            }
            Failure::Spawn(e) => write!(f, "could not start: {e}"),
        }
    }
}

impl Failure {
    /// The exit status `backstop` ends with when this was the last attempt:
    /// the command's own, 124 for a timeout or the deadline (like timeout(1)), 128 + n for a
    /// signal, 127 for a command not found, 126 for one that cannot run.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Exit(code) => *code,
            Failure::Signal(sig) => 128 + sig,
            Failure::TimedOut(_) | Failure::Deadline(_) => 124,
            Failure::Spawn(e) if e.kind() == std::io::ErrorKind::NotFound => 127,
            Failure::Spawn(_) => 126,
        }
    }
}

/// Judges a failure by the exit-code options.
pub struct ExitRules {
    /// `--retry-on-exit`: the only codes retried, or any non-zero if empty.
    pub retry_on: Vec<i32>,
    /// `--stop-on-exit`: codes never retried.
    pub stop_on: Vec<i32>,
}

impl ExitRules {
    /// Retry, or not: a timeout is retried, the deadline and signals never.
    pub fn verdict(&self, failure: &Failure) -> Verdict {
        match failure {
            Failure::Exit(code) if self.stop_on.contains(code) => Verdict::Fail,
            Failure::Exit(code) => Verdict::retry_if(self.retry_on.is_empty() || self.retry_on.contains(code)),
            Failure::TimedOut(_) => Verdict::Timeout,
            Failure::Deadline(_) | Failure::Signal(_) | Failure::Spawn(_) => Verdict::Fail,
        }
    }
}

/// The failure an exit status stands for, `None` for success.
pub fn status_failure(status: ExitStatus) -> Option<Failure> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return None;
    }
    Some(match (status.code(), status.signal()) {
        (Some(code), _) => Failure::Exit(code),
        (None, Some(sig)) => Failure::Signal(sig),
        (None, None) => Failure::Exit(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_not_retried_and_exits_like_a_timeout() {
        let rules = ExitRules { retry_on: vec![], stop_on: vec![] };
        let deadline = Failure::Deadline(Duration::from_millis(500));
        assert_eq!(rules.verdict(&deadline), Verdict::Fail);
        assert_eq!(deadline.exit_code(), 124);
        assert_eq!(deadline.to_string(), "the deadline of 0.5 seconds came, and the attempt was ended");
        assert_eq!(rules.verdict(&Failure::TimedOut(Duration::from_secs(1))), Verdict::Timeout);
    }
}
