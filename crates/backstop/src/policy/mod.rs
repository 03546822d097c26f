//! What to retry and for how long: the [`RetryPolicy`].
//!
//! A policy is plain, immutable data: how many attempts, which [`Backoff`],
//! an optional overall deadline, how long a server's `Retry-After` may make
//! us wait, and an optional jitter seed. It is cheap to clone, `Send + Sync`,
//! and meant to live in a `static`, a config struct or an `Arc`, shared by
//! every call. Running it is [`RetryPolicy::retry`]'s job (see [`mod@crate::retry`]).
//!
//! Policies are only made through [`RetryPolicy::builder`], whose `build()`
//! checks every setting and returns a [`ConfigError`](crate::ConfigError) naming the bad one, or
//! through the [`presets`](crate::presets), which are valid by construction.

mod builder;

use std::time::Duration;

pub use builder::RetryPolicyBuilder;

use crate::backoff::{Backoff, Delays, Jitter};
use crate::rules::{self, Broken};

/// How a call is retried: attempts, backoff, deadline, server hints, seed.
///
/// ```
/// use std::time::Duration;
/// use backstop::{Backoff, Jitter, RetryPolicy};
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(5) // counts the first call
///     .backoff(
///         Backoff::exponential(Duration::from_secs(1))
///             .factor(2.0)
///             .max_delay(Duration::from_secs(30))
///             .jitter(Jitter::Additive(Duration::from_secs(1))),
///     )
///     .max_elapsed(Duration::from_secs(120))
///     .build()?;
/// assert_eq!(policy.max_attempts(), 5);
/// # Ok::<(), backstop::ConfigError>(())
/// ```
///
/// `RetryPolicy::default()` ([`presets::DEFAULT`](crate::presets::DEFAULT)): 5 attempts, exponential
/// from 1 s doubling to a 30 s cap, plus `U[0, 1 s]` of jitter, no deadline,
/// `Retry-After` honoured up to 60 s.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) max_retry_after: Duration,
    pub(crate) seed: Option<u64>,
    pub(crate) wait_on_open_circuit: bool,
}

/// The longest `Retry-After` hint a policy honours unless told otherwise.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The general default, published as [`presets::DEFAULT`](crate::presets::DEFAULT):
/// 5 attempts, 1 s doubling to 30 s, `+U[0, 1 s]`.
pub(crate) const DEFAULT: RetryPolicy = RetryPolicy::from_parts(
    5,
    Backoff::exponential(Duration::from_secs(1))
        .factor(2.0)
        .max_delay(Duration::from_secs(30))
        .jitter(Jitter::Additive(Duration::from_secs(1))),
);

impl RetryPolicy {
    /// A builder that starts from the default's settings ([`presets::DEFAULT`](crate::presets::DEFAULT)).
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder::from_policy(DEFAULT)
    }

    /// A builder that starts from this policy's settings, to adjust a preset:
    ///
    /// ```
    /// use backstop::presets;
    ///
    /// let policy = presets::S3_UPLOAD.to_builder().max_attempts(8).build()?;
    /// assert_eq!(policy.max_attempts(), 8);
    /// # Ok::<(), backstop::ConfigError>(())
    /// ```
    pub fn to_builder(&self) -> RetryPolicyBuilder {
        RetryPolicyBuilder::from_policy(self.clone())
    }

    /// For presets: a valid policy from attempts and backoff, other settings at
    /// their defaults. Callers guarantee validity (checked by the presets' tests).
    pub(crate) const fn from_parts(max_attempts: u32, backoff: Backoff) -> Self {
        Self {
            max_attempts,
            backoff,
            max_elapsed: None,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            seed: None,
            wait_on_open_circuit: false,
        }
    }

    /// The first rule these settings break, if any; usable in constants.
    pub(crate) const fn broken(&self) -> Option<Broken> {
        if let Some(b) = rules::attempts(self.max_attempts) {
            return Some(b);
        }
        if let Some(b) = rules::deadline(self.max_elapsed) {
            return Some(b);
        }
        self.backoff.broken()
    }

    /// This policy with a single attempt and everything else kept (the
    /// deadline above all): for a call that must not be sent twice but
    /// should still be bounded in time and guarded like the others.
    ///
    /// ```
    /// use std::time::Duration;
    /// use backstop::presets;
    ///
    /// let policy = presets::API_CALL.to_builder().max_elapsed(Duration::from_secs(5)).build()?;
    /// let once = policy.once();
    /// assert_eq!(once.max_attempts(), 1);
    /// assert_eq!(once.max_elapsed(), Some(Duration::from_secs(5)));
    /// # Ok::<(), backstop::ConfigError>(())
    /// ```
    pub fn once(&self) -> RetryPolicy {
        Self { max_attempts: 1, ..self.clone() }
    }

    /// The most attempts a run makes, the first call included (≥ 1).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The delay schedule.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// The deadline for a whole run, attempts and sleeps together, if any.
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.max_elapsed
    }

    /// The longest server `Retry-After` hint the run waits for; a longer hint
    /// ends the run with [`RetryError::RetryAfterTooLong`](crate::RetryError::RetryAfterTooLong).
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The jitter seed, if the policy was made reproducible with
    /// [`RetryPolicyBuilder::seed`].
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// Whether a run whose breaker is open waits for the next probe (within
    /// the attempts, the deadline and `max_retry_after`) rather than stopping
    /// at once; see [`RetryPolicyBuilder::wait_on_open_circuit`].
    pub fn waits_on_open_circuit(&self) -> bool {
        self.wait_on_open_circuit
    }

    /// The delays this policy would sleep before each of its
    /// `max_attempts - 1` retries, drawn with the policy's seed (or a fresh one),
    /// ignoring server hints and the deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use backstop::{presets, Jitter};
    ///
    /// let policy = presets::API_CALL.to_builder().jitter(Jitter::None).build()?;
    /// let delays: Vec<Duration> = policy.delays().collect();
    /// assert_eq!(delays, [Duration::from_millis(500), Duration::from_secs(1)]);
    /// # Ok::<(), backstop::ConfigError>(())
    /// ```
    pub fn delays(&self) -> std::iter::Take<Delays> {
        self.backoff.delays(self.seed).take(self.max_attempts.saturating_sub(1) as usize)
    }
}

impl std::fmt::Display for RetryPolicy {
    /// Every setting, in the config files' words (what `backstop run -v` and
    /// `backstop schedule` print):
    ///
    /// ```
    /// assert_eq!(
    ///     backstop::presets::S3_UPLOAD.to_string(),
    ///     "5 attempts; exponential from 1s, ×2, capped at 30s, jitter additive:1s; no deadline; Retry-After up to 1m"
    /// );
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::duration::format_duration as d;
        let plural = if self.max_attempts == 1 { "" } else { "s" };
        write!(f, "{} attempt{plural}; {}; ", self.max_attempts, self.backoff)?;
        match self.max_elapsed {
            Some(deadline) => write!(f, "deadline {}", d(deadline))?,
            None => f.write_str("no deadline")?,
        }
        write!(f, "; Retry-After up to {}", d(self.max_retry_after))?;
        if let Some(seed) = self.seed {
            write!(f, "; seed {seed}")?;
        }
        if self.wait_on_open_circuit {
            f.write_str("; waits for an open circuit's probe")?;
        }
        Ok(())
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        DEFAULT
    }
}
