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
use std::time::Duration;

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

/// A duration in seconds, as short as it is exact to the millisecond:
/// `0.5s`, `1s`, `1.25s`, `30s`.
pub(crate) fn fmt_secs(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    let text = format!("{:.3}", ms.round() / 1000.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}s")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_well() {
        assert_eq!(fmt_secs(Duration::from_millis(500)), "0.5s");
        assert_eq!(fmt_secs(Duration::from_secs(1)), "1s");
        assert_eq!(fmt_secs(Duration::from_millis(1250)), "1.25s");
        assert_eq!(fmt_secs(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_secs(Duration::ZERO), "0s");
    }
}
