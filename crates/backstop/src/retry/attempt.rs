//! What a run retries: an [`Attempt`], a closure called once per attempt that
//! returns a `Result` ([`Blocking`], run with `.call()`) or a future of one
//! ([`Async`], run with `.await`).
//!
//! The kind is found from the closure's return type when the run is made, so
//! the error type is known from then on: the classifier and the callbacks
//! given later need no type annotations.

use std::future::Future;

/// The kind of an operation whose attempts return a `Result` directly: its
/// run is made with [`Retry::call`](super::Retry::call), sleeping the thread
/// between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {}

/// The kind of an operation whose attempts return a future of a `Result`:
/// its run is `.await`ed, sleeping on the async timer between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Async {}

/// An operation backstop can retry: `FnMut() -> Result<T, E>` (kind
/// [`Blocking`]) or `FnMut() -> impl Future<Output = Result<T, E>>` (kind
/// [`Async`]). Implemented for every such closure; there is nothing to
/// implement by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an operation backstop can retry",
    label = "this must return `Result<T, E>`, or a future of one",
    note = "an operation is a closure called once per attempt: `|| client.get(url)` returning a `Result` \
            (run with `.call()`), or `|| async {{ .. }}` returning a future of one (run with `.await`)"
)]
pub trait Attempt<K> {
    /// The operation's error, which the classifier judges.
    type Error;
}

impl<F, T, E> Attempt<Blocking> for F
where
    F: FnMut() -> Result<T, E>,
{
    type Error = E;
}

impl<F, Fut, T, E> Attempt<Async> for F
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Error = E;
}

/// Makes one attempt's future: what an async run calls once per attempt.
/// Every `FnMut() -> Fut` is one; the trait exists so that a batch's item
/// runs have a type that can be named.
#[doc(hidden)]
pub trait MakeAttempt<Fut> {
    /// Starts the next attempt.
    fn make(&mut self) -> Fut;
}

impl<F, Fut> MakeAttempt<Fut> for F
where
    F: FnMut() -> Fut,
{
    #[inline(always)]
    fn make(&mut self) -> Fut {
        self()
    }
}
