//! The rules a retry policy's settings follow, in one place, checked both
//! when a program runs ([`RetryPolicyBuilder::build`](crate::RetryPolicyBuilder::build),
//! [`Backoff::validate`](crate::Backoff::validate)) and while it compiles
//! (`#[backstop::retry(max_attempts = 0)]` is a compile error).
//!
//! The checks are `const fn`s that say which rule is broken; a broken rule
//! becomes a [`ConfigError`] with the offending value in it at run time, or a
//! compile error with the same field and allowed range (a constant cannot
//! format a value; the error points at it instead).

use std::time::Duration;

use crate::error::ConfigError;

/// A rule that a setting broke, with the offending value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Broken {
    /// `max_attempts` is 0.
    ZeroAttempts,
    /// The deadline is zero.
    ZeroDeadline,
    /// The exponential factor is not finite or below 1.
    Factor(f64),
    /// The first delay is above the cap.
    BaseAboveMax { base: Duration, max: Duration },
    /// A proportional jitter outside `0 ..= 1`.
    Fraction(f64),
}

/// Each rule's field, its problem in fixed words, and its allowed range, as
/// literals, so that the compile-time message can be put together by `concat!`.
macro_rules! rules {
    ($($rule:pat => $field:literal, $problem:literal, $allowed:literal;)*) => {
        impl Broken {
            const fn field_and_allowed(self) -> (&'static str, &'static str) {
                match self { $($rule => ($field, $allowed),)* }
            }

            /// The whole message, for an error raised while compiling.
            pub(crate) const fn message(self) -> &'static str {
                match self {
                    $($rule => concat!("invalid retry policy: ", $field, " ", $problem, "; allowed: ", $allowed),)*
                }
            }
        }
    };
}

rules! {
    Broken::ZeroAttempts => "max_attempts", "is 0", "1 or more (it counts the first call)";
    Broken::ZeroDeadline => "max_elapsed", "is 0s", "more than 0s (or no deadline at all)";
    Broken::Factor(_) => "backoff.factor", "is not a finite number ≥ 1.0",
        "a finite number ≥ 1.0 (2.0 doubles the delay after each retry)";
    Broken::BaseAboveMax { .. } => "backoff.base", "is above max_delay",
        "0 ..= max_delay (raise max_delay or lower the base)";
    Broken::Fraction(_) => "backoff.jitter", "is a proportion outside 0.0 ..= 1.0",
        "a fraction in 0.0 ..= 1.0 (0.25 spreads delays by ±25 %)";
}

impl Broken {
    /// The error a program gets at run time, with the offending value.
    pub(crate) fn into_error(self) -> ConfigError {
        let problem = match self {
            Broken::ZeroAttempts => "is 0".to_owned(),
            Broken::ZeroDeadline => "is 0s".to_owned(),
            Broken::Factor(factor) => format!("is {factor}"),
            Broken::BaseAboveMax { base, max } => format!("is {base:?}, above max_delay {max:?}"),
            Broken::Fraction(f) => format!("is Proportional({f})"),
        };
        let (field, allowed) = self.field_and_allowed();
        ConfigError::new(field, problem, allowed)
    }
}

/// The rule `max_attempts` follows.
pub(crate) const fn attempts(n: u32) -> Option<Broken> {
    if n == 0 { Some(Broken::ZeroAttempts) } else { None }
}

/// The rule a deadline follows.
pub(crate) const fn deadline(d: Option<Duration>) -> Option<Broken> {
    match d {
        Some(d) if d.is_zero() => Some(Broken::ZeroDeadline),
        _ => None,
    }
}

/// The rule an exponential factor follows.
pub(crate) const fn factor(factor: f64) -> Option<Broken> {
    if factor.is_finite() && factor >= 1.0 { None } else { Some(Broken::Factor(factor)) }
}

/// The rule the first delay and the cap follow together.
pub(crate) const fn base_and_max(base: Duration, max: Duration) -> Option<Broken> {
    if base.as_nanos() > max.as_nanos() { Some(Broken::BaseAboveMax { base, max }) } else { None }
}

/// The rule a proportional jitter follows.
pub(crate) const fn fraction(f: f64) -> Option<Broken> {
    if f >= 0.0 && f <= 1.0 { None } else { Some(Broken::Fraction(f)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compile_time_message_matches_the_run_time_error_but_for_the_value() {
        let err = Broken::ZeroAttempts.into_error();
        assert_eq!(Broken::ZeroAttempts.message(), err.to_string());
        let err = Broken::Factor(0.5).into_error();
        assert_eq!(
            err.to_string(),
            "invalid retry policy: backoff.factor is 0.5; allowed: a finite number ≥ 1.0 (2.0 doubles the delay after each retry)"
        );
        assert!(Broken::Factor(0.5).message().ends_with(&format!("; allowed: {}", err.allowed())));
    }
}
