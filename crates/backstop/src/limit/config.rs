//! Concurrency limits from configuration files (the `serde` feature).
//!
//! A [`ConcurrencyLimit`] deserializes from any serde format, validated as
//! it loads (errors name the field, as [`ConcurrencyLimitBuilder::build`]'s
//! do). Every key but `name` is optional; unknown keys are errors;
//! `queue_timeout` is a duration (`"5s"`, or seconds) or `"none"`.
//!
//! ```
//! use std::time::Duration;
//! use backstop::limit::ConcurrencyLimit;
//!
//! let limit: ConcurrencyLimit = toml::from_str(r#"
//!     name = "s3-uploads"
//!     max_concurrent = 32
//!     max_queue = 200
//!     queue_timeout = "5s"
//! "#)?;
//! assert_eq!(limit.name(), "s3-uploads");
//! assert_eq!(limit.max_concurrent(), 32);
//!
//! let err = toml::from_str::<ConcurrencyLimit>("name = \"x\"\nmax_concurrent = 0").unwrap_err();
//! assert!(err.to_string().contains("max_concurrent is 0"), "{err}");
//! # Ok::<(), toml::de::Error>(())
//! ```

use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::{ConcurrencyLimit, ConcurrencyLimitBuilder};
use crate::config::HumanDuration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitFile {
    name: String,
    max_concurrent: Option<u32>,
    max_queue: Option<u32>,
    queue_timeout: Option<HumanDuration>,
}

impl<'de> Deserialize<'de> for ConcurrencyLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let file = LimitFile::deserialize(d)?;
        let mut b: ConcurrencyLimitBuilder = ConcurrencyLimit::builder(file.name);
        if let Some(n) = file.max_concurrent {
            b = b.max_concurrent(n);
        }
        if let Some(n) = file.max_queue {
            b = b.max_queue(n);
        }
        match file.queue_timeout {
            Some(HumanDuration(Duration::MAX)) => b = b.no_queue_timeout(),
            Some(HumanDuration(t)) => b = b.queue_timeout(t),
            None => {}
        }
        b.build().map_err(de::Error::custom)
    }
}
