//! When a breaker trips and how it recovers: [`BreakerConfig`].

use std::time::Duration;

use crate::backoff::Backoff;
use crate::error::ConfigError;

/// Which recent calls a rate rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last `n` calls (resilience4j's count-based window).
    Count(u32),
    /// The calls of the last `duration`, kept in `buckets` slices that expire
    /// one at a time (Polly's and resilience4j's time-based window).
    Time {
        /// How far back the window reaches.
        duration: Duration,
        /// How many slices it is kept in (more: smoother expiry, more memory).
        buckets: u32,
    },
}

/// How a breaker counts a kind of error whose answer came from a downstream
/// that is alive: an error its classifier calls permanent
/// ([`Verdict::Fail`](crate::Verdict::Fail): a 404, an `AccessDenied`; see
/// [`BreakerConfigBuilder::permanent_errors`]) and throttling
/// ([`Verdict::Throttled`](crate::Verdict::Throttled) and
/// [`Verdict::RetryAfter`](crate::Verdict::RetryAfter): a 429, a `SlowDown`;
/// see [`BreakerConfigBuilder::throttling`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountAs {
    /// As a success: the downstream is up.
    Success,
    /// As nothing at all: neither success nor failure (a half-open probe's
    /// slot is freed for another probe).
    Ignore,
    /// As a failure, like any other error.
    Failure,
}

/// The settings of a [`CircuitBreaker`](super::CircuitBreaker), made by
/// [`BreakerConfig::builder`] (validated) or [`BreakerConfig::default`] (5
/// consecutive failures trip it, it stays open 30 s, 1 successful
/// probe closes it).
///
/// ```
/// use std::time::Duration;
/// use backstop::Backoff;
/// use backstop::breaker::{BreakerConfig, Window};
///
/// let config = BreakerConfig::builder()
///     .failure_rate(0.5)                       // trip at 50 % failures...
///     .window(Window::Count(100))              // ...of the last 100 calls...
///     .minimum_calls(20)                       // ...once there are 20 of them
///     .slow_calls(Duration::from_secs(2), 0.8) // or when 80 % take over 2 s
///     .open_for(Backoff::exponential(Duration::from_secs(10)).max_delay(Duration::from_secs(300)))
///     .half_open_max_calls(3)
///     .success_threshold(3)
///     .build()?;
/// # let _ = config;
/// # Ok::<(), backstop::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) slow_calls: Option<(Duration, f64)>,
    pub(crate) window: Window,
    pub(crate) minimum_calls: u32,
    pub(crate) open_for: Backoff,
    pub(crate) half_open_max_calls: u32,
    pub(crate) success_threshold: u32,
    pub(crate) permanent_errors: CountAs,
    pub(crate) throttling: CountAs,
}

/// The most probes a half-open breaker may let through at once.
pub const MAX_HALF_OPEN_CALLS: u32 = 100_000;
/// The largest count window.
pub const MAX_WINDOW_CALLS: u32 = 1_000_000;

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: Some(5),
            failure_rate: None,
            slow_calls: None,
            window: Window::Count(100),
            minimum_calls: 10,
            open_for: Backoff::constant(Duration::from_secs(30)),
            half_open_max_calls: 1,
            success_threshold: 1,
            permanent_errors: CountAs::Success,
            throttling: CountAs::Ignore,
        }
    }
}

impl BreakerConfig {
    /// A builder with no trip rule set; `build()` falls back to 5
    /// consecutive failures if none is given.
    pub fn builder() -> BreakerConfigBuilder {
        BreakerConfigBuilder { config: BreakerConfig { consecutive_failures: None, ..BreakerConfig::default() } }
    }

    /// Whether a rate rule needs the window at all.
    pub(crate) fn uses_window(&self) -> bool {
        self.failure_rate.is_some() || self.slow_calls.is_some()
    }

    /// How long the breaker stays open (its first open period, for a growing one).
    pub fn open_for(&self) -> Duration {
        self.open_for.nominal(1)
    }
}

/// Builds a [`BreakerConfig`]; see [`BreakerConfig::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct BreakerConfigBuilder {
    config: BreakerConfig,
}

impl BreakerConfigBuilder {
    /// Trips after `n` failures in a row (allowed: ≥ 1). A success resets the count.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.config.consecutive_failures = Some(n);
        self
    }

    /// Trips when at least this fraction of the calls in the [`window`](Self::window)
    /// failed (allowed: `0 < rate ≤ 1`), once it holds
    /// [`minimum_calls`](Self::minimum_calls).
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.config.failure_rate = Some(rate);
        self
    }

    /// Trips when at least `rate` of the calls in the window took `threshold`
    /// or longer, failed or not (allowed: `0 < rate ≤ 1`, threshold > 0).
    pub fn slow_calls(mut self, threshold: Duration, rate: f64) -> Self {
        self.config.slow_calls = Some((threshold, rate));
        self
    }

    /// The window the rate rules look at (default: the last 100 calls).
    pub fn window(mut self, window: Window) -> Self {
        self.config.window = window;
        self
    }

    /// How many calls the window must hold before a rate counts (default 10;
    /// allowed: ≥ 1). Stops a single early failure from reading as 100 %.
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config.minimum_calls = n;
        self
    }

    /// How long the breaker stays open before it lets a probe through. A
    /// constant backoff is a fixed period (default 30 s); a growing one
    /// lengthens each time a probe fails, and starts over once the breaker closes.
    pub fn open_for(mut self, schedule: Backoff) -> Self {
        self.config.open_for = schedule;
        self
    }

    /// How many probes may be in flight while half-open (default 1; allowed:
    /// 1 ..= 100 000). Further calls are rejected until one finishes.
    pub fn half_open_max_calls(mut self, n: u32) -> Self {
        self.config.half_open_max_calls = n;
        self
    }

    /// How many probes must succeed to close the breaker (default 1; allowed: ≥ 1).
    pub fn success_threshold(mut self, n: u32) -> Self {
        self.config.success_threshold = n;
        self
    }

    /// How errors classified permanent count (default: as successes).
    pub fn permanent_errors(mut self, how: CountAs) -> Self {
        self.config.permanent_errors = how;
        self
    }

    /// How throttling counts: errors classified
    /// [`Throttled`](crate::Verdict::Throttled) or
    /// [`RetryAfter`](crate::Verdict::RetryAfter) (default: ignored). A
    /// server that says "slow down" is alive: opening the circuit on it would
    /// refuse every call for the open period, worse than the throttling. Pace
    /// or budget the retries instead; count throttling as
    /// [`CountAs::Failure`] only for a downstream whose throttling means it
    /// is going down.
    pub fn throttling(mut self, how: CountAs) -> Self {
        self.config.throttling = how;
        self
    }

    /// Checks every setting and returns the config, or the first bad setting.
    pub fn build(mut self) -> Result<BreakerConfig, ConfigError> {
        let c = &mut self.config;
        if c.consecutive_failures.is_none() && !c.uses_window() {
            c.consecutive_failures = Some(5);
        }
        let err = |field, problem: String, allowed| Err(ConfigError::of("circuit breaker", field, problem, allowed));
        if c.consecutive_failures == Some(0) {
            return err("consecutive_failures", "is 0".into(), "1 or more");
        }
        let rate_ok = |r: f64| r > 0.0 && r <= 1.0;
        if let Some(r) = c.failure_rate.filter(|r| !rate_ok(*r)) {
            return err("failure_rate", format!("is {r}"), "a fraction in (0, 1]: 0.5 trips at 50 % failures");
        }
        if let Some((threshold, r)) = c.slow_calls {
            if threshold.is_zero() {
                return err("slow_calls.threshold", "is 0s".into(), "more than 0s");
            }
            if !rate_ok(r) {
                return err("slow_calls.rate", format!("is {r}"), "a fraction in (0, 1]");
            }
        }
        match c.window {
            Window::Count(n) if n == 0 || n > MAX_WINDOW_CALLS => {
                return err("window", format!("is Count({n})"), "Count(1 ..= 1000000)");
            }
            Window::Time { duration, buckets } => {
                if buckets == 0 || buckets > 1000 {
                    return err("window.buckets", format!("is {buckets}"), "1 ..= 1000");
                }
                if duration < Duration::from_millis(u64::from(buckets)) {
                    return err(
                        "window.duration",
                        format!("is {duration:?} for {buckets} buckets"),
                        "at least 1ms per bucket",
                    );
                }
            }
            Window::Count(_) => {}
        }
        if c.minimum_calls == 0 {
            return err("minimum_calls", "is 0".into(), "1 or more");
        }
        if let Window::Count(n) = c.window {
            if c.uses_window() && c.minimum_calls > n {
                // The window never holds that many calls: the rate rules could never trip.
                return err(
                    "minimum_calls",
                    format!("is {}, but window is Count({n}), which never holds more than {n} calls", c.minimum_calls),
                    "at most the window's call count (lower minimum_calls or widen window)",
                );
            }
        }
        if c.half_open_max_calls == 0 || c.half_open_max_calls > MAX_HALF_OPEN_CALLS {
            return err("half_open_max_calls", format!("is {}", c.half_open_max_calls), "1 ..= 100000");
        }
        if c.success_threshold == 0 {
            return err("success_threshold", "is 0".into(), "1 or more");
        }
        c.open_for
            .validate()
            .map_err(|e| ConfigError::of("circuit breaker", "open_for", e.to_string(), "a valid backoff"))?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_five_failures_thirty_seconds_one_probe() {
        let c = BreakerConfig::default();
        assert_eq!(c.consecutive_failures, Some(5));
        assert_eq!(c.open_for(), Duration::from_secs(30));
        assert_eq!(c.success_threshold, 1);
        assert_eq!(BreakerConfig::builder().build().unwrap(), c);
    }

    #[test]
    fn bad_settings_name_their_field() {
        let b = BreakerConfig::builder;
        let cases = [
            (b().consecutive_failures(0).build(), "consecutive_failures"),
            (b().failure_rate(0.0).build(), "failure_rate"),
            (b().failure_rate(f64::NAN).build(), "failure_rate"),
            (b().slow_calls(Duration::ZERO, 0.5).build(), "slow_calls.threshold"),
            (b().slow_calls(Duration::from_secs(1), 2.0).build(), "slow_calls.rate"),
            (b().failure_rate(0.5).window(Window::Count(0)).build(), "window"),
            (b().window(Window::Time { duration: Duration::from_millis(5), buckets: 10 }).build(), "window.duration"),
            (b().minimum_calls(0).build(), "minimum_calls"),
            (b().failure_rate(0.5).window(Window::Count(5)).minimum_calls(10).build(), "minimum_calls"),
            (b().half_open_max_calls(0).build(), "half_open_max_calls"),
            (b().success_threshold(0).build(), "success_threshold"),
            (b().open_for(Backoff::exponential(Duration::from_secs(1)).factor(0.1)).build(), "open_for"),
        ];
        for (result, field) in cases {
            let e = result.unwrap_err();
            assert_eq!(e.field(), field);
            assert!(e.to_string().starts_with("invalid circuit breaker: "), "{e}");
        }
    }
}
