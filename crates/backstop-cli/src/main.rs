//! `backstop`: retry any command, show a policy's schedule, simulate retry
//! strategies under contention, outage and throttling.
//!
//! ```text
//! backstop run --preset api-call --attempt-timeout 10s -- curl -fsS https://example.test/
//! backstop schedule --preset s3-upload
//! backstop simulate --scenario occ --svg occ.svg
//! ```

mod policy_args;
mod run;
mod schedule;
mod simulate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Retries with backoff and jitter, from the command line.
#[derive(Debug, Parser)]
#[command(name = "backstop", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a command, retrying it on failure: `backstop run [options] -- CMD [ARGS...]`
    Run(run::RunArgs),
    /// Show the delay before each retry of a policy, with its jitter's spread.
    Schedule(schedule::ScheduleArgs),
    /// Simulate retry strategies in virtual time: occ (default), outage, throttle.
    Simulate(simulate::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => run::run(args),
        Cmd::Schedule(args) => schedule::schedule(args),
        Cmd::Simulate(args) => simulate::simulate(args),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)),
        Err(message) => {
            eprintln!("backstop: {message}");
            ExitCode::from(2)
        }
    }
}
