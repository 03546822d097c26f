//! `backstop run`: run a command, retrying it on failure under a policy.
//!
//! Each attempt is one child process whose stdout and stderr pass through
//! untouched. The run loop is the library's: the child's failure is the
//! error, a classifier built from `--retry-on-exit` / `--stop-on-exit` judges
//! it, and the clock's sleep draws a countdown on a terminal. This module
//! ties those pieces together; each is in its own file:
//!
//! - [`args`]: the command line;
//! - [`child`]: how an attempt is started, watched and ended (its process
//!   group, the attempt timeout, the `--deadline`, forwarded signals);
//! - [`signals`]: the Ctrl-C or TERM that backstop itself receives;
//! - [`failure`]: how an attempt failed, whether that is retried, and the
//!   exit status backstop ends with;
//! - [`countdown`]: the wait between attempts;
//! - [`report`]: the lines backstop prints of its own.

mod args;
mod child;
mod countdown;
mod failure;
mod report;
mod signals;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use backstop::RetryEvent;

pub use args::RunArgs;
use child::{Ended, Limits};
use countdown::CountdownClock;
use failure::{ExitRules, Failure, status_failure};
use report::Report;
use signals::{catch_signals, interrupted};

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
    let report =
        Report { shown: args.command.join(" "), quiet: args.quiet, json: args.json_log, verbose: args.verbose };
    report.starting(&policy);
    let clock = CountdownClock { show: !report.quiet && !report.json && std::io::stderr().is_terminal() };
    let result = policy
        .retry(|| attempt(&args.command, launch))
        .when(|f: &Failure| rules.verdict(f))
        .on_retry(|e: &RetryEvent<'_, Failure>| report.retrying(e))
        .name(report.shown.clone())
        .clock(&clock)
        .call();
    match result {
        Ok(()) => Ok(0),
        Err(err) => {
            report.gave_up(&err, policy.max_attempts());
            Ok(err.into_inner().map_or(1, |f| f.exit_code()))
        }
    }
}
