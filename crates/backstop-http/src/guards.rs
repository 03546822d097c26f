//! The shared guards of a middleware or layer, and the one place a request's
//! run is assembled from them: [`Guards::run`].

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backstop::error::Name;
use backstop::{CircuitBreaker, Classify, Clock, Pacer, RetryBudget, RetryError, RetryPolicy};
use http::HeaderMap;

/// The breaker, budget, pacer and clock every request of a middleware or
/// layer shares.
#[derive(Clone, Default)]
pub(crate) struct Guards {
    pub(crate) breaker: Option<CircuitBreaker>,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) pacer: Option<Pacer>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
}

impl Guards {
    /// Tells the pacer what a response said of the server's rate limit
    /// (`RateLimit`, `X-RateLimit-*`; see `backstop::http::rate_limit`).
    pub(crate) fn observe(pacer: Option<&Pacer>, headers: &HeaderMap) {
        if let Some(pacer) = pacer {
            if let Some(limit) = backstop::http::rate_limit(headers, std::time::SystemTime::now()) {
                pacer.observe_limit(limit.remaining, limit.reset);
            }
        }
    }

    /// Runs `op` under `policy`, these guards and, when set, a per-attempt
    /// timeout whose error `on_timeout` makes.
    pub(crate) async fn run<Op, Fut, T, E, C>(
        &self,
        policy: &RetryPolicy,
        name: Name,
        op: Op,
        classifier: C,
        timeout: Option<Duration>,
        on_timeout: fn(Duration) -> E,
    ) -> Result<T, RetryError<E>>
    where
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classify<E>,
        E: Display,
    {
        let mut run = policy.retry(op).when(classifier).name(name);
        if let Some(clock) = &self.clock {
            run = run.clock(clock.as_ref());
        }
        if let Some(breaker) = &self.breaker {
            run = run.breaker(breaker);
        }
        if let Some(budget) = &self.budget {
            run = run.budget(budget);
        }
        if let Some(pacer) = &self.pacer {
            run = run.pacer(pacer);
        }
        match timeout {
            Some(limit) => run.attempt_timeout(limit, on_timeout).await,
            None => run.await,
        }
    }
}
