//! Policies from configuration files (the `serde` feature).
//!
//! A [`RetryPolicy`] deserializes from any serde format (TOML, JSON, YAML)
//! and is validated as it loads: a bad value is a deserialization error whose
//! message names the field, exactly as [`ConfigError`](crate::ConfigError) does. Durations are
//! strings like `"500ms"` or `"1m30s"` (see [`crate::parse_duration`]), or numbers of
//! seconds. Every key is optional: missing ones come from `preset` (default:
//! `"default"`), unknown ones are errors, so a typo never passes silently.
//! `jitter` is one of `"none"`, `"full"`, `"equal"`, `"decorrelated"`,
//! `{ additive = "1s" }` or `{ proportional = 0.25 }`.
//!
//! ```
//! use std::time::Duration;
//! use backstop::{Jitter, RetryPolicy};
//!
//! let policy: RetryPolicy = toml::from_str(r#"
//!     preset = "s3-upload"         # start from a preset (optional)
//!     max_attempts = 8
//!     max_elapsed = "2m"
//!
//!     [backoff]
//!     kind = "exponential"          # or "linear", "constant"
//!     base = "500ms"
//!     factor = 3.0
//!     max_delay = "20s"            # "none" for no cap
//!     jitter = "full"
//! "#)?;
//! assert_eq!(policy.max_attempts(), 8);
//! assert_eq!(policy.max_elapsed(), Some(Duration::from_secs(120)));
//! assert_eq!(policy.backoff().get_jitter(), Jitter::Full);
//!
//! let err = toml::from_str::<RetryPolicy>("[backoff]\nfactor = 0.5").unwrap_err();
//! assert!(err.to_string().contains("backoff.factor is 0.5"), "{err}");
//! # Ok::<(), toml::de::Error>(())
//! ```

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::backoff::{Backoff, Curve, Jitter};
use crate::duration::{format_duration, parse_duration};
use crate::policy::RetryPolicy;
use crate::presets;

/// A duration in a config file: `"500ms"`, `"1m30s"`, or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HumanDuration(pub(crate) Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like \"500ms\" or \"30s\", or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                if v == "none" {
                    // Only meaningful for a cap: "no cap at all".
                    return Ok(HumanDuration(Duration::MAX));
                }
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                u64::try_from(v)
                    .map(|s| HumanDuration(Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("durations cannot be negative, got {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                Duration::try_from_secs_f64(v)
                    .map(HumanDuration)
                    .map_err(|_| E::custom(format!("{v} is not a duration in seconds (negative or too large)")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == Duration::MAX {
            return s.serialize_str("none");
        }
        s.serialize_str(&format_duration(self.0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum CurveKind {
    Exponential,
    Linear,
    Constant,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum JitterFile {
    None,
    Full,
    Equal,
    Decorrelated,
    Additive(HumanDuration),
    Proportional(f64),
}

impl From<JitterFile> for Jitter {
    fn from(j: JitterFile) -> Self {
        match j {
            JitterFile::None => Jitter::None,
            JitterFile::Full => Jitter::Full,
            JitterFile::Equal => Jitter::Equal,
            JitterFile::Decorrelated => Jitter::Decorrelated,
            JitterFile::Additive(d) => Jitter::Additive(d.0),
            JitterFile::Proportional(f) => Jitter::Proportional(f),
        }
    }
}

impl From<Jitter> for JitterFile {
    fn from(j: Jitter) -> Self {
        match j {
            Jitter::None => JitterFile::None,
            Jitter::Full => JitterFile::Full,
            Jitter::Equal => JitterFile::Equal,
            Jitter::Decorrelated => JitterFile::Decorrelated,
            Jitter::Additive(d) => JitterFile::Additive(HumanDuration(d)),
            Jitter::Proportional(f) => JitterFile::Proportional(f),
        }
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BackoffFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<CurveKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    factor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_delay: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jitter: Option<JitterFile>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    preset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_elapsed: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_retry_after: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_on_open_circuit: Option<bool>,
    #[serde(default)]
    backoff: BackoffFile,
}

/// The preset named in a file or on a command line: `default`, `s3-upload`,
/// `s3-download` or `api-call` (underscores work too).
pub fn preset_by_name(name: &str) -> Option<RetryPolicy> {
    match name.replace('_', "-").as_str() {
        "default" => Some(presets::DEFAULT),
        "s3-upload" => Some(presets::S3_UPLOAD),
        "s3-download" => Some(presets::S3_DOWNLOAD),
        "api-call" => Some(presets::API_CALL),
        _ => None,
    }
}

impl PolicyFile {
    fn into_policy(self) -> Result<RetryPolicy, String> {
        let preset = self.preset.as_deref().unwrap_or("default");
        let start = preset_by_name(preset)
            .ok_or_else(|| format!("unknown preset {preset:?}; allowed: default, s3-upload, s3-download, api-call"))?;
        let b = self.backoff;
        let old = start.backoff;
        let base = b.base.map_or(old.base(), |d| d.0);
        let kind = b.kind.unwrap_or(match old.curve {
            Curve::Exponential { .. } => CurveKind::Exponential,
            Curve::Linear { .. } => CurveKind::Linear,
            Curve::Constant { .. } => CurveKind::Constant,
        });
        let old_factor = match old.curve {
            Curve::Exponential { factor, .. } => factor,
            _ => 2.0,
        };
        let curve = match kind {
            CurveKind::Exponential => Backoff::exponential(base).factor(b.factor.unwrap_or(old_factor)),
            CurveKind::Linear => Backoff::linear(base).step(b.step.map_or(base, |d| d.0)),
            CurveKind::Constant => Backoff::constant(base),
        };
        let backoff = curve
            .max_delay(b.max_delay.map_or(old.max_delay, |d| d.0))
            .jitter(b.jitter.map_or(old.jitter, Jitter::from));
        let mut builder = start.to_builder().backoff(backoff);
        if let Some(n) = self.max_attempts {
            builder = builder.max_attempts(n);
        }
        if let Some(d) = self.max_elapsed {
            builder = builder.max_elapsed(d.0);
        }
        if let Some(d) = self.max_retry_after {
            builder = builder.max_retry_after(d.0);
        }
        if let Some(wait) = self.wait_on_open_circuit {
            builder = builder.wait_on_open_circuit(wait);
        }
        if let Some(seed) = self.seed {
            builder = builder.seed(seed);
        }
        builder.build().map_err(|e| e.to_string())
    }
}

impl<'de> Deserialize<'de> for RetryPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PolicyFile::deserialize(d)?.into_policy().map_err(de::Error::custom)
    }
}

impl Serialize for RetryPolicy {
    /// Writes every setting explicitly (no `preset` key), in the layout
    /// deserialization reads, so a policy round-trips.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = &self.backoff;
        let (kind, factor, step) = match b.curve {
            Curve::Exponential { factor, .. } => (CurveKind::Exponential, Some(factor), None),
            Curve::Linear { step, .. } => (CurveKind::Linear, None, Some(HumanDuration(step))),
            Curve::Constant { .. } => (CurveKind::Constant, None, None),
        };
        PolicyFile {
            preset: None,
            max_attempts: Some(self.max_attempts),
            max_elapsed: self.max_elapsed.map(HumanDuration),
            max_retry_after: Some(HumanDuration(self.max_retry_after)),
            seed: self.seed,
            wait_on_open_circuit: Some(self.wait_on_open_circuit),
            backoff: BackoffFile {
                kind: Some(kind),
                base: Some(HumanDuration(b.base())),
                factor,
                step,
                max_delay: Some(HumanDuration(b.max_delay)),
                jitter: Some(b.jitter.into()),
            },
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let p: RetryPolicy = toml::from_str("").unwrap();
        assert_eq!(p, RetryPolicy::default());
    }

    #[test]
    fn preset_then_overrides() {
        let p: RetryPolicy = toml::from_str("preset = \"api_call\"\nmax_attempts = 4").unwrap();
        assert_eq!(p.max_attempts(), 4);
        assert_eq!(p.backoff().base(), Duration::from_millis(500));
    }

    #[test]
    fn json_with_numbers_of_seconds() {
        let p: RetryPolicy = serde_json::from_str(
            r#"{"max_attempts": 3, "backoff": {"kind": "constant", "base": 0.25, "jitter": {"proportional": 0.1}}}"#,
        )
        .unwrap();
        assert_eq!(p.backoff().nominal(3), Duration::from_millis(250));
        assert_eq!(p.backoff().get_jitter(), Jitter::Proportional(0.1));
    }

    #[test]
    fn errors_name_the_field() {
        for (text, needle) in [
            ("max_attempts = 0", "max_attempts is 0"),
            ("[backoff]\njitter = { proportional = 1.5 }", "backoff.jitter"),
            ("[backoff]\nbase = \"1m\"\nmax_delay = \"1s\"", "backoff.base"),
            ("max_elapsed = \"soon\"", "invalid duration \"soon\""),
            ("max_elapsed = -3", "cannot be negative"),
            ("max_atempts = 3", "unknown field `max_atempts`"),
            ("preset = \"s4\"", "unknown preset \"s4\""),
        ] {
            let err = toml::from_str::<RetryPolicy>(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn round_trips_through_toml_and_json() {
        let policies = [
            presets::S3_UPLOAD,
            presets::API_CALL
                .to_builder()
                .seed(9)
                .max_elapsed(Duration::from_secs(15))
                .wait_on_open_circuit(true)
                .build()
                .unwrap(),
            RetryPolicy::builder()
                .backoff(Backoff::linear(Duration::from_millis(100)).step(Duration::from_millis(30)))
                .jitter(Jitter::Decorrelated)
                .build()
                .unwrap(),
        ];
        for p in policies {
            let text = toml::to_string(&p).unwrap();
            assert_eq!(toml::from_str::<RetryPolicy>(&text).unwrap(), p, "{text}");
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<RetryPolicy>(&json).unwrap(), p, "{json}");
        }
    }
}
