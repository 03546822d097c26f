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

use std::fmt;
use std::time::Duration;

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

/// A `delay` as written: see the module docs.
struct DelayFile(HedgeDelay);

/// `p99.9` as the quantile 0.999, exactly (99.9 / 100 is not).
fn quantile_of_percent(percent: f64) -> f64 {
    (percent * 1e7).round() / 1e9
}

impl<'de> Deserialize<'de> for DelayFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = DelayFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "delay: \"p95\", a duration like \"10ms\", a number of seconds, or { percentile, min_samples }",
                )
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<DelayFile, E> {
                match text.strip_prefix('p') {
                    Some(number) => number
                        .parse::<f64>()
                        .ok()
                        .filter(|p| p.is_finite())
                        .map(|p| DelayFile(HedgeDelay::percentile(quantile_of_percent(p))))
                        .ok_or_else(|| E::custom(format!(
                            "invalid hedge: delay is {text:?}; allowed: a percentile such as \"p95\" or \"p99.9\", or a duration"
                        ))),
                    None => crate::parse_duration(text)
                        .map(|d| DelayFile(HedgeDelay::fixed(d)))
                        .map_err(|e| E::custom(format!("invalid hedge: delay {e}"))),
                }
            }
            fn visit_f64<E: de::Error>(self, s: f64) -> Result<DelayFile, E> {
                Duration::try_from_secs_f64(s).map(|d| DelayFile(HedgeDelay::fixed(d))).map_err(|_| {
                    E::custom(format!("invalid hedge: delay is {s:?}; allowed: a number of seconds from 0"))
                })
            }
            fn visit_u64<E: de::Error>(self, s: u64) -> Result<DelayFile, E> {
                Ok(DelayFile(HedgeDelay::fixed(Duration::from_secs(s))))
            }
            fn visit_i64<E: de::Error>(self, s: i64) -> Result<DelayFile, E> {
                u64::try_from(s)
                    .map_err(|_| E::custom(format!("invalid hedge: delay is {s}; allowed: a number of seconds from 0")))
                    .and_then(|s| self.visit_u64(s))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<DelayFile, A::Error> {
                let (mut quantile, mut min_samples) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "percentile" => {
                            quantile = Some(map.next_value::<f64>().map_err(|e| named("delay.percentile", e))?)
                        }
                        "min_samples" => {
                            min_samples = Some(map.next_value::<u32>().map_err(|e| named("delay.min_samples", e))?)
                        }
                        other => {
                            return Err(de::Error::custom(format!(
                                "invalid hedge: unknown key delay.{other}; allowed: percentile, min_samples"
                            )));
                        }
                    }
                }
                let quantile =
                    quantile.ok_or_else(|| de::Error::custom("invalid hedge: delay.percentile is missing"))?;
                let delay = HedgeDelay::percentile(quantile);
                Ok(DelayFile(min_samples.map_or(delay, |n| delay.min_samples(n))))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value's error, saying which field it was for.
fn named<E: de::Error>(field: &str, e: E) -> E {
    E::custom(format!("invalid hedge: {field}: {e}"))
}

impl<'de> Deserialize<'de> for Hedge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let file = HedgeFile::deserialize(d)?;
        let mut b = Hedge::builder(file.name);
        if let Some(DelayFile(delay)) = file.delay {
            b = b.delay(delay);
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
