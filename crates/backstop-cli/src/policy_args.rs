//! The policy flags every subcommand shares: a preset, a file, or flags.

use std::path::PathBuf;
use std::time::Duration;

use backstop::{Backoff, Jitter, RetryPolicy, parse_duration};
use clap::Args;

/// The presets `--preset` names.
const PRESETS: [&str; 4] = ["default", "s3-upload", "s3-download", "api-call"];

/// `--preset`'s help: each preset and every setting it brings, as the
/// library prints it (so the help cannot drift from the presets).
fn preset_help() -> String {
    let mut help = String::from(
        "Start from a preset (default: default). The flags below change only what they name: \
         a preset's jitter stays unless --jitter is given.",
    );
    for name in PRESETS {
        if let Some(policy) = backstop::config::preset_by_name(name) {
            help.push_str(&format!("\n  {name}: {policy}"));
        }
    }
    help
}

/// How to retry: start from `--preset` or `--policy FILE`, then apply flags.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    #[arg(long, value_name = "NAME", help = preset_help())]
    pub preset: Option<String>,
    /// Start from a policy file (TOML, as backstop::config reads).
    #[arg(long, value_name = "FILE", conflicts_with = "preset")]
    pub policy: Option<PathBuf>,
    /// Attempts in all, the first included.
    #[arg(long, value_name = "N")]
    pub attempts: Option<u32>,
    /// The first delay, like 500ms or 1s.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub base: Option<Duration>,
    /// The cap on any delay, like 30s.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub max: Option<Duration>,
    /// The growth factor of the exponential backoff.
    #[arg(long, value_name = "F")]
    pub factor: Option<f64>,
    /// none, full, equal, decorrelated, additive:1s, proportional:0.25.
    #[arg(long, value_name = "KIND", value_parser = jitter)]
    pub jitter: Option<Jitter>,
    /// A deadline for the whole run, sleeps included, like 2m.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub deadline: Option<Duration>,
    /// Make the jitter reproducible.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

/// A duration flag: `500ms`, `2s`, `1m30s`.
pub fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn jitter(s: &str) -> Result<Jitter, backstop::ConfigError> {
    s.parse()
}

impl PolicyArgs {
    /// The policy, or a one-line reason why not.
    pub fn build(&self) -> Result<RetryPolicy, String> {
        let start = match (&self.preset, &self.policy) {
            (Some(name), _) => backstop::config::preset_by_name(name)
                .ok_or_else(|| format!("unknown preset {name:?}; allowed: {}", PRESETS.join(", ")))?,
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?
            }
            (None, None) => RetryPolicy::default(),
        };
        let old = *start.backoff();
        let mut b = start.to_builder();
        if self.base.is_some() || self.max.is_some() || self.factor.is_some() {
            // The curve flags describe an exponential backoff; unset ones keep the old values.
            let base = self.base.unwrap_or(old.base());
            let max = self.max.unwrap_or(old.get_max_delay().max(base));
            let factor = self.factor.or(old.get_factor()).unwrap_or(2.0);
            let jitter = self.jitter.unwrap_or(old.get_jitter());
            b = b.backoff(Backoff::exponential(base).factor(factor).max_delay(max).jitter(jitter));
        } else if let Some(jitter) = self.jitter {
            b = b.jitter(jitter);
        }
        if let Some(n) = self.attempts {
            b = b.max_attempts(n);
        }
        if let Some(d) = self.deadline {
            b = b.max_elapsed(d);
        }
        if let Some(seed) = self.seed {
            b = b.seed(seed);
        }
        b.build().map_err(|e| e.to_string())
    }
}
