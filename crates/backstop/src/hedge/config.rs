//! Hedges from configuration files (the `serde` feature).
//!
//! A [`Hedge`] deserializes from any serde format, validated as it loads
//! (a bad value is an error naming the field, as [`HedgeBuilder::build`]'s).
//! Every key but `name` is optional; unknown keys are errors. `delay` is
//! `"p95"` (a percentile: `"p90"`, `"p99.9"`), a duration (`"10ms"`, or a
//! number of seconds) for a fixed delay, or `{ percentile = 0.95,
//! min_samples = 50 }`. A budget, a pacer and a clock are given in code.
//!
//! ```
//! use backstop::hedge::{Hedge, HedgeDelay};
//!
//! let hedge: Hedge = toml::from_str(r#"
//!     name = "s3-get"
//!     delay = "p99"
//!     max_hedges = 2
//!     ratio = 0.02
//!     window = "5s"
//! "#)?;
//! assert_eq!(hedge.name(), "s3-get");
//! assert_eq!(hedge.delay(), HedgeDelay::percentile(0.99));
//!
//! let err = toml::from_str::<Hedge>("name = \"x\"\ndelay = \"p30\"").unwrap_err();
//! assert!(err.to_string().contains("delay.quantile is 0.3"), "{err}");
//! # Ok::<(), toml::de::Error>(())
//! ```

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::{Hedge, HedgeDelay};
use crate::config::HumanDuration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HedgeFile {
    name: String,
    delay: Option<DelayFile>,
    max_hedges: Option<u32>,
    ratio: Option<f64>,
    min_per_sec: Option<f64>,
    window: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DelayFile {
    Percentile {
        percentile: f64,
        #[serde(default)]
        min_samples: Option<u32>,
    },
    Text(String),
    Seconds(f64),
}

impl DelayFile {
    fn into_delay(self) -> Result<HedgeDelay, String> {
        let fixed = |d: HumanDuration| HedgeDelay::fixed(d.0);
        match self {
            DelayFile::Percentile { percentile, min_samples } => {
                let delay = HedgeDelay::percentile(percentile);
                Ok(min_samples.map_or(delay, |n| delay.min_samples(n)))
            }
            DelayFile::Seconds(s) => std::time::Duration::try_from_secs_f64(s)
                .map(HedgeDelay::fixed)
                .map_err(|_| format!("invalid hedge: delay is {s:?}; allowed: \"p95\", a duration, or a number of seconds from 0")),
            DelayFile::Text(text) => match text.strip_prefix('p') {
                Some(number) => number.parse::<f64>().map(|p| HedgeDelay::percentile(p / 100.0)).map_err(|_| {
                    format!("invalid hedge: delay is {text:?}; allowed: a percentile such as \"p95\" or \"p99.9\", or a duration")
                }),
                None => crate::parse_duration(&text).map(|d| fixed(HumanDuration(d))).map_err(|e| format!("invalid hedge: delay {e}")),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Hedge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let file = HedgeFile::deserialize(d)?;
        let mut b = Hedge::builder(file.name);
        if let Some(delay) = file.delay {
            b = b.delay(delay.into_delay().map_err(de::Error::custom)?);
        }
        if let Some(n) = file.max_hedges {
            b = b.max_hedges(n);
        }
        if let Some(r) = file.ratio {
            b = b.ratio(r);
        }
        if let Some(n) = file.min_per_sec {
            b = b.min_per_sec(n);
        }
        if let Some(w) = file.window {
            b = b.window(w.0);
        }
        b.build().map_err(de::Error::custom)
    }
}
