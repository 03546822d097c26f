//! What a successful run hands back: its value alone ([`Value`], the
//! default), or the value with the number of attempts it took
//! ([`WithAttempts`], chosen by [`Retry::with_attempts`](super::Retry::with_attempts)).
//!
//! The choice is made in the run's type, so a run that does not ask for the
//! count pays nothing for it.

/// Hands back a successful run's value: `T` or `(T, attempts)`.
pub trait Report<T> {
    /// What `.call()` or `.await` returns on success.
    type Output;
    /// Makes the output from the value and the attempts made (the successful one included).
    fn report(value: T, attempts: u32) -> Self::Output;
}

/// A run returns its value alone (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {}

impl<T> Report<T> for Value {
    type Output = T;
    #[inline(always)]
    fn report(value: T, _: u32) -> T {
        value
    }
}

/// A run returns `(value, attempts)`: how many attempts the success took, the
/// successful one included (1 when the first attempt succeeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithAttempts {}

impl<T> Report<T> for WithAttempts {
    type Output = (T, u32);
    #[inline(always)]
    fn report(value: T, attempts: u32) -> (T, u32) {
        (value, attempts)
    }
}
