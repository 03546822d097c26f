//! The one place a request's run is assembled from a middleware's or layer's
//! policy and [`Guards`]: [`run`]; and what a response tells the pacer:
//! [`observe`].

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use backstop::retry::Name;
use backstop::{Guards, Pacer, RetryError, RetryPolicy, Verdict};
use http::HeaderMap;

/// The setters of [`RetryMiddleware`](crate::RetryMiddleware) and
/// [`RetryLayer`](crate::RetryLayer), the same on both; each type has an
/// `edit_setup` that applies a change to its [`Setup`](crate::setup::Setup).
macro_rules! guard_setters {
    () => {
        /// Which requests may be retried (and with which `Idempotency-Key`),
        /// and the per-attempt timeout.
        pub fn options(self, options: Options) -> Self {
            self.edit_setup(|s| s.options = options)
        }

        /// Hedges every attempt of the requests that may be sent twice (the
        /// same rule as retries: idempotent methods, or an `Idempotency-Key`;
        /// never a POST without one, nor a streamed body): past the hedge's
        /// delay the request is sent again, and the first good answer wins
        /// (see [`Hedge`](backstop::hedge::Hedge)). A hedged attempt is one
        /// attempt of the run.
        pub fn hedge(self, hedge: &backstop::hedge::Hedge) -> Self {
            self.edit_setup(|s| s.hedge = Some(hedge.clone()))
        }

        /// Takes every guard `guards` holds, and its clock if it has one (a
        /// guard set already and not in `guards` is kept): one value for
        /// every client of a downstream (see [`Guards`]).
        pub fn guards(self, guards: &Guards) -> Self {
            self.edit_guards(|g| g.merge(guards))
        }

        /// Asks `breaker` before every attempt (see [`Retry::breaker`](backstop::Retry::breaker)).
        pub fn breaker(self, breaker: &CircuitBreaker) -> Self {
            self.edit_guards(|g| g.breaker(breaker))
        }

        /// Draws every retry from `budget` (see [`Retry::budget`](backstop::Retry::budget)).
        pub fn budget(self, budget: &RetryBudget) -> Self {
            self.edit_guards(|g| g.budget(budget))
        }

        /// Waits for a slot from `pacer` before every attempt (see
        /// [`Retry::pacer`](backstop::Retry::pacer)), and tells it the rate
        /// limits responses state (`RateLimit`, `X-RateLimit-*` headers).
        pub fn pacer(self, pacer: &Pacer) -> Self {
            self.edit_guards(|g| g.pacer(pacer))
        }

        /// Takes a place from `limit` before every attempt (see
        /// [`Retry::limit`](backstop::Retry::limit)): at most its
        /// `max_concurrent` requests of this client at once, the others
        /// queued or refused.
        pub fn limit(self, limit: &backstop::limit::ConcurrencyLimit) -> Self {
            self.edit_guards(|g| g.limit(limit))
        }

        /// Guards per origin (scheme, host and port; see
        /// [`backstop::keyed`]): each request takes its origin's guards
        /// from `keyed`, made on its first request, in place of this
        /// client's guards of the same kind (those it has not are still
        /// this client's). One dead origin then trips only its own breaker;
        /// each origin is paced at its own rate.
        pub fn per_origin(self, keyed: &backstop::keyed::Keyed<Guards>) -> Self {
            self.edit_setup(|s| s.per_origin = Some(keyed.clone()))
        }

        /// Injects faults and latency into attempts (feature `chaos`; see
        /// [`backstop::chaos`]): an attempt given a fault is not sent. In
        /// the middleware it answers as a server would: 503, 429, 429 with
        /// `Retry-After` (whole seconds, rounded up), 400 (returned as it
        /// is), or a timeout; the last of them comes back as a real one
        /// would. In the layer (which cannot make a response of the inner
        /// service's body type) it is an error the run classifies as that
        /// answer, and that comes back as an error when the retries run
        /// out. A delay sleeps on the `Chaos`'s clock first.
        #[cfg(feature = "chaos")]
        pub fn chaos(self, chaos: &backstop::chaos::Chaos) -> Self {
            self.edit_setup(|s| s.chaos = Some(chaos.clone()))
        }

        fn edit_guards(
            self,
            edit: impl FnOnce(backstop::guards::GuardsBuilder) -> backstop::guards::GuardsBuilder,
        ) -> Self {
            self.edit_setup(|s| s.guards = edit(s.guards.to_builder()).build())
        }

        /// Sleeps on this clock (default: the real one); a
        /// [`ManualClock`](backstop::ManualClock) in tests.
        pub fn clock<C: Clock + Clone + 'static>(self, clock: &C) -> Self {
            self.edit_guards(|g| g.clock(clock))
        }
    };
}
pub(crate) use guard_setters;

/// Tells the pacer what a response said of the server's rate limit
/// (`RateLimit`, `X-RateLimit-*`; see `backstop::http::rate_limit`).
pub(crate) fn observe(pacer: Option<&Pacer>, headers: &HeaderMap) {
    if let Some(pacer) = pacer {
        if let Some(limit) = backstop::http::rate_limit(headers, std::time::SystemTime::now()) {
            pacer.observe_limit(limit.remaining, limit.reset);
        }
    }
}

/// Runs `op` under `policy` and `guards`, with a per-attempt timeout (when
/// set) whose error `on_timeout` makes; a success comes with its attempt count.
pub(crate) async fn run<Op, Fut, T, E>(
    policy: &RetryPolicy,
    guards: &Guards,
    name: Name,
    op: Op,
    classifier: fn(&E) -> Verdict,
    timeout: Option<Duration>,
    on_timeout: fn(Duration) -> E,
) -> Result<(T, u32), RetryError<E>>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    policy
        .retry(op)
        .when(classifier)
        .name(name)
        .guards(guards)
        .attempt_timeout(timeout.unwrap_or_default(), on_timeout)
        .with_attempts()
        .await
}
