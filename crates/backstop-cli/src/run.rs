//! `backstop run`: run a command, retrying it on failure under a policy.
//!
//! Each attempt is one child process whose stdout and stderr pass through
//! untouched. The run loop is the library's: the child's failure is the
//! error, a classifier built from `--retry-on-exit` / `--stop-on-exit` judges
//! it, and the clock's sleep draws a countdown on a terminal. How an
//! attempt is started, watched and ended (its process group, the attempt
//! timeout, the `--deadline`, forwarded signals) is in [`crate::child`].

use std::fmt;
use std::io::{IsTerminal, Write};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use backstop::clock::SleepFuture;
use backstop::{Clock, RetryError, RetryEvent, SystemClock, Verdict};
use clap::Args;

use crate::child::{self, Ended, Limits, catch_signals, interrupted};
use crate::policy_args::{PolicyArgs, duration};

/// `backstop run [policy options] -- CMD [ARGS...]`
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Retry only these exit codes (comma-separated); default: any non-zero.
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub retry_on_exit: Vec<i32>,
    /// Never retry these exit codes (comma-separated).
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub stop_on_exit: Vec<i32>,
    /// End an attempt that runs longer (TERM, then KILL after --kill-after); retried.
    /// (`--deadline` ends a running attempt the same way, but is not retried.)
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub attempt_timeout: Option<Duration>,
    /// How long an ended attempt gets between TERM and KILL (the KILL goes to
    /// its whole process group, even if the command itself already exited).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "2s")]
    pub kill_after: Duration,
    /// Keep the command in backstop's process group, so it can read the
    /// terminal and gets Ctrl-C itself; a timeout then ends only the command,
    /// not what it started (as timeout(1)'s --foreground).
    #[arg(long)]
    pub foreground: bool,
    /// Print nothing of our own.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print retry lines as JSON objects, one a line.
    #[arg(long)]
    pub json_log: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

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
            Failure::TimedOut(d) => write!(f, "timed out after {}", crate::fmt_secs(*d)),
            Failure::Deadline(d) => write!(f, "the {} deadline came, and the attempt was ended", crate::fmt_secs(*d)),
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
struct ExitRules {
    retry_on: Vec<i32>,
    stop_on: Vec<i32>,
}

impl ExitRules {
    /// Retry, or not: a timeout is retried, the deadline and signals never.
    fn verdict(&self, failure: &Failure) -> Verdict {
        match failure {
            Failure::Exit(code) if self.stop_on.contains(code) => Verdict::Fail,
            Failure::Exit(code) => Verdict::retry_if(self.retry_on.is_empty() || self.retry_on.contains(code)),
            Failure::TimedOut(_) => Verdict::Timeout,
            Failure::Deadline(_) | Failure::Signal(_) | Failure::Spawn(_) => Verdict::Fail,
        }
    }
}

/// The failure an exit status stands for, `None` for success.
fn status_failure(status: ExitStatus) -> Option<Failure> {
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

/// How attempts are started and ended.
#[derive(Debug, Clone, Copy)]
struct Launch {
    /// The timeout, grace period, deadline and group of each attempt.
    limits: Limits,
    /// The `--deadline` as given, for the messages.
    deadline: Option<Duration>,
}

/// One attempt: start the command in its own process group and wait for it.
fn attempt(command: &[String], launch: Launch) -> Result<(), Failure> {
    if let Some(sig) = interrupted() {
        return Err(Failure::Signal(sig)); // stopped by the user: no new attempt
    }
    let deadline = launch.deadline.unwrap_or_default();
    if launch.limits.deadline.is_some_and(|at| Instant::now() >= at) {
        return Err(Failure::Deadline(deadline)); // no time left to start one
    }
    match child::run(command, launch.limits).map_err(Failure::Spawn)? {
        Ended::Exited(status) => status_failure(status).map_or(Ok(()), Err),
        Ended::TimedOut => Err(Failure::TimedOut(launch.limits.timeout.unwrap_or_default())),
        Ended::Deadline => Err(Failure::Deadline(deadline)),
        Ended::Interrupted(sig) => Err(Failure::Signal(sig)),
    }
}

/// The real clock, whose sleep shows a countdown on a terminal.
struct CountdownClock {
    show: bool,
}

impl Clock for CountdownClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, d: Duration) {
        if !self.show {
            // Sleep in slices, so a Ctrl-C ends the wait at once.
            let end = Instant::now() + d;
            while let Some(left) = end.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
                if interrupted().is_some() {
                    return;
                }
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
            return;
        }
        let end = Instant::now() + d;
        let mut err = std::io::stderr();
        while let Some(left) = end.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
            if interrupted().is_some() {
                break;
            }
            let _ = write!(err, "\r\x1b[2K  next attempt in {:.1}s", left.as_secs_f64());
            let _ = err.flush();
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
        let _ = write!(err, "\r\x1b[2K");
    }

    fn sleep_async(&self, d: Duration) -> SleepFuture {
        SystemClock.sleep_async(d)
    }
}

/// Runs the command; gives the exit status to end with.
pub fn run(args: RunArgs) -> Result<i32, String> {
    let policy = args.policy.build()?;
    catch_signals();
    let rules = ExitRules { retry_on: args.retry_on_exit, stop_on: args.stop_on_exit };
    // Read before the library's own start, so the attempt is never cut later
    // than the library's deadline.
    let deadline_at = args.policy.deadline.and_then(|d| Instant::now().checked_add(d));
    let limits = Limits {
        timeout: args.attempt_timeout,
        deadline: deadline_at,
        kill_after: args.kill_after,
        foreground: args.foreground,
    };
    let launch = Launch { limits, deadline: args.policy.deadline };
    let shown = args.command.join(" ");
    let (quiet, json) = (args.quiet, args.json_log);
    let clock = CountdownClock { show: !quiet && !json && std::io::stderr().is_terminal() };
    let log = |e: &RetryEvent<'_, Failure>| {
        if quiet {
            return;
        }
        let line = if json {
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
    };
    let result = policy
        .retry(|| attempt(&args.command, launch))
        .when(|f: &Failure| rules.verdict(f))
        .on_retry(log)
        .name(shown.clone())
        .clock(&clock)
        .call();
    match result {
        Ok(()) => Ok(0),
        Err(err) => {
            if !quiet {
                let summary = match &err {
                    RetryError::Exhausted { attempts, .. } => format!("gave up after {attempts} attempts"),
                    RetryError::DeadlineExceeded { attempts, .. }
                    | RetryError::Rejected { attempts, error: Failure::Deadline(_), .. } => {
                        format!("deadline reached after {attempts} attempts")
                    }
                    RetryError::Rejected { attempts, .. } => format!("not retried (attempt {attempts})"),
                    other => other.to_string(),
                };
                let last = err.last_error().map(ToString::to_string).unwrap_or_default();
                if json {
                    eprintln!(
                        "{}",
                        serde_json::json!({"event": "gave_up", "command": shown, "attempts": err.attempts(), "error": last})
                    );
                } else {
                    eprintln!("backstop: {shown}: {summary}: {last}");
                }
            }
            Ok(err.into_inner().map_or(1, |f| f.exit_code()))
        }
    }
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
        assert_eq!(deadline.to_string(), "the 0.5s deadline came, and the attempt was ended");
        assert_eq!(rules.verdict(&Failure::TimedOut(Duration::from_secs(1))), Verdict::Timeout);
    }
}
