//! The command line of `backstop run`: the shared policy flags, the
//! exit-code rules, the attempt timeout and its grace period, the output
//! switches, and the command itself.

use std::time::Duration;

use clap::Args;

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
    /// Also print the policy the run uses, every setting (a preset's jitter
    /// included), before the first attempt.
    #[arg(long, short)]
    pub verbose: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}
