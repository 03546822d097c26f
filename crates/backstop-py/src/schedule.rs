//! A validated retry policy for Python: [`Schedule`].

use std::collections::HashMap;
use std::time::Duration;

use backstop::{Backoff, ConfigError, Jitter, RetryPolicy};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A retry policy built and checked by the core: attempts, an exponential
/// backoff and its jitter. Made by the Python layer from its own parameters
/// (`RetryPolicy(max_retries=..)`, `RetryConfig(..)`, the presets).
#[pyclass(frozen, module = "backstop._backstop")]
pub(crate) struct Schedule {
    pub(crate) policy: RetryPolicy,
}

/// `seconds` as a duration, or the error naming `name`.
fn seconds(name: &str, seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        PyValueError::new_err(format!("{name} is {seconds:?}; allowed: a number of seconds from 0 to 1.8e19"))
    })
}

/// The core's error, its fields named as the caller's parameters (`names`
/// maps the core's field, `backoff.factor`, to it, `exponential_base`),
/// where it names the field and where its words name another one
/// (`above max_delay 1s`).
fn config_error(e: &ConfigError, names: &HashMap<String, String>) -> PyErr {
    let field = names.get(e.field()).map_or(e.field(), String::as_str);
    let renamed = |text: &str| {
        names.iter().fold(text.to_owned(), |text, (core, python)| {
            let word = core.rsplit('.').next().unwrap_or(core);
            replace_word(&text, word, python)
        })
    };
    PyValueError::new_err(format!(
        "invalid retry policy: {field} {}; allowed: {}",
        renamed(e.problem()),
        renamed(e.allowed())
    ))
}

/// `text` with each whole-word `word` (not part of a longer identifier) made `by`.
fn replace_word(text: &str, word: &str, by: &str) -> String {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            out.push_str(word);
        } else {
            out.push_str(by);
        }
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

#[pymethods]
impl Schedule {
    /// `max_attempts` in all (the first included), delays from `base`
    /// seconds growing by `factor` up to `max` seconds, `jitter` in the
    /// core's syntax (`none`, `full`, `proportional:0.25`, `additive:1s`).
    #[new]
    #[pyo3(signature = (max_attempts, base, max, factor, jitter, names = None))]
    fn new(
        max_attempts: i64,
        base: f64,
        max: f64,
        factor: f64,
        jitter: &str,
        names: Option<HashMap<String, String>>,
    ) -> PyResult<Self> {
        let names = names.unwrap_or_default();
        let named = |field: &str| names.get(field).cloned().unwrap_or_else(|| field.to_owned());
        let attempts = u32::try_from(max_attempts).map_err(|_| {
            PyValueError::new_err(format!(
                "invalid retry policy: {} is {max_attempts}; allowed: 1 ..= {}",
                named("max_attempts"),
                u32::MAX
            ))
        })?;
        let jitter: Jitter = jitter.parse().map_err(|e: backstop::ConfigError| PyValueError::new_err(e.to_string()))?;
        let backoff = Backoff::exponential(seconds(&named("backoff.base"), base)?)
            .factor(factor)
            .max_delay(seconds(&named("backoff.max_delay"), max)?);
        let policy = RetryPolicy::builder()
            .max_attempts(attempts)
            .backoff(backoff)
            .jitter(jitter)
            .build()
            .map_err(|e| config_error(&e, &names))?;
        Ok(Self { policy })
    }

    /// The core's preset `name`: `default`, `s3_upload`, `s3_download` or
    /// `api_call`.
    #[staticmethod]
    fn preset(name: &str) -> PyResult<Self> {
        let policy = match name {
            "default" => backstop::presets::DEFAULT,
            "s3_upload" => backstop::presets::S3_UPLOAD,
            "s3_download" => backstop::presets::S3_DOWNLOAD,
            "api_call" => backstop::presets::API_CALL,
            other => {
                return Err(PyValueError::new_err(format!(
                    "no preset {other:?}; allowed: default, s3_upload, s3_download, api_call"
                )));
            }
        };
        Ok(Self { policy })
    }

    /// The first delay, in seconds.
    #[getter]
    fn base(&self) -> f64 {
        self.policy.backoff().base().as_secs_f64()
    }

    /// The cap on any delay, in seconds.
    #[getter]
    fn max_delay(&self) -> f64 {
        self.policy.backoff().get_max_delay().as_secs_f64()
    }

    /// The growth per retry (1.0 for a constant backoff).
    #[getter]
    fn factor(&self) -> f64 {
        self.policy.backoff().get_factor().unwrap_or(1.0)
    }

    /// The jitter, in the core's syntax (`additive:1s`).
    #[getter]
    fn jitter(&self) -> String {
        self.policy.backoff().get_jitter().to_string()
    }

    /// The most an additive jitter adds, in seconds (0 for other kinds).
    #[getter]
    fn additive_jitter(&self) -> f64 {
        match self.policy.backoff().get_jitter() {
            Jitter::Additive(d) => d.as_secs_f64(),
            _ => 0.0,
        }
    }

    /// Attempts in all, the first included.
    #[getter]
    fn max_attempts(&self) -> u32 {
        self.policy.max_attempts()
    }

    /// The delay before retry `retry` (from 1) without jitter, in seconds.
    fn nominal(&self, retry: u32) -> f64 {
        self.policy.backoff().nominal(retry).as_secs_f64()
    }

    /// The delay before retry `retry` (from 1) for the jitter's uniform draw
    /// `sample` in `[0, 1)`, in seconds.
    fn delay(&self, retry: u32, sample: f64) -> f64 {
        let backoff = self.policy.backoff();
        let prev = backoff.nominal(retry.saturating_sub(1));
        backoff.delay_at(retry, prev, sample).as_secs_f64()
    }

    fn __str__(&self) -> String {
        self.policy.to_string()
    }

    fn __repr__(&self) -> String {
        format!("Schedule({})", self.policy)
    }
}
