//! Retries for every request of a client: [`RetryMiddleware`] for
//! `reqwest-middleware`.

use std::sync::Arc;

use async_trait::async_trait;
use backstop::error::Name;
use backstop::{CircuitBreaker, Clock, RetryBudget, RetryError, RetryPolicy, presets};
use http::{Extensions, HeaderValue};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::error::{HttpError, NotRetried, classify};
use crate::options::{IDEMPOTENCY_KEY, Options, fresh_key};

/// Retries a client's requests under a [`RetryPolicy`] (default:
/// [`presets::api_call`]), optionally through a [`CircuitBreaker`] and a
/// [`RetryBudget`] shared by every request.
///
/// - Retryable statuses (5xx but 501/505, 429, 408) and transport errors are
///   retried; `Retry-After` (both forms) is honoured up to the policy's
///   `max_retry_after`.
/// - Only requests that are safe to send twice are retried (see [`Options`]);
///   a request whose body is a stream is sent once, and if it fails, the error
///   says why it was not retried.
/// - When the retries run out on a retryable status, the last response is
///   returned as it is, as without the middleware. Other failures come back
///   as `reqwest_middleware::Error::Middleware` wrapping a
///   [`RetryError<HttpError>`](backstop::RetryError), which says how many
///   attempts were made and keeps the last error (downcast to read it).
///
/// ```no_run
/// use backstop_http::RetryMiddleware;
/// use reqwest_middleware::ClientBuilder;
///
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(RetryMiddleware::default())
///     .build();
/// ```
#[derive(Clone)]
pub struct RetryMiddleware {
    policy: RetryPolicy,
    breaker: Option<CircuitBreaker>,
    budget: Option<RetryBudget>,
    clock: Option<Arc<dyn Clock>>,
    options: Options,
}

impl Default for RetryMiddleware {
    fn default() -> Self {
        Self::new(presets::api_call())
    }
}

impl RetryMiddleware {
    /// Retries under `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy, breaker: None, budget: None, clock: None, options: Options::default() }
    }

    /// Asks `breaker` before every attempt (see [`Retry::breaker`](backstop::retry::Retry::breaker)).
    pub fn breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Draws every retry from `budget` (see [`Retry::budget`](backstop::retry::Retry::budget)).
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Which requests may be retried, and the per-attempt timeout.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Sleeps on this clock (default: the real one); a
    /// [`ManualClock`](backstop::ManualClock) in tests.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }
}

/// `GET example.test/forecast`: the method and URL without query or
/// credentials, which may hold secrets.
fn run_name(req: &Request) -> Name {
    Name::Owned(format!("{} {}", req.method(), crate::redacted(req.url())))
}

#[async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        mut req: Request,
        ext: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let adds_key =
            self.options.idempotency_key && matches!(*req.method(), http::Method::POST | http::Method::PATCH);
        if adds_key && !req.headers().contains_key(IDEMPOTENCY_KEY) {
            if let Ok(key) = HeaderValue::from_str(&fresh_key()) {
                req.headers_mut().insert(IDEMPOTENCY_KEY, key);
            }
        }
        if !self.options.may_retry(req.method(), req.headers()) {
            return next.run(req, ext).await;
        }
        if req.try_clone().is_none() {
            return next.run(req, ext).await.map_err(|e| {
                let error = HttpError::NotRetried { reason: NotRetried::StreamBody, error: Box::new(e.into()) };
                reqwest_middleware::Error::Middleware(anyhow::Error::new(error))
            });
        }
        let name = run_name(&req);
        let attempt = || {
            let (next, mut ext) = (next.clone(), ext.clone());
            let req = req.try_clone();
            async move {
                // Checked above: a buffered body clones every time.
                let Some(req) = req else {
                    return Err(HttpError::NotRetried {
                        reason: NotRetried::StreamBody,
                        error: Box::new(HttpError::Middleware(anyhow::anyhow!("the request could not be cloned"))),
                    });
                };
                match next.run(req, &mut ext).await {
                    Ok(resp) if backstop::http::is_retryable_status(resp.status()) => Err(HttpError::Status(resp)),
                    Ok(resp) => Ok(resp),
                    Err(e) => Err(HttpError::from(e)),
                }
            }
        };
        let mut run = self.policy.retry(attempt).when(classify).name(name);
        if let Some(clock) = &self.clock {
            run = run.clock(clock.as_ref());
        }
        if let Some(breaker) = &self.breaker {
            run = run.breaker(breaker);
        }
        if let Some(budget) = &self.budget {
            run = run.budget(budget);
        }
        let result = match self.options.attempt_timeout {
            Some(limit) => run.attempt_timeout(limit, HttpError::TimedOut).await,
            None => run.await,
        };
        result.or_else(give_back_last_response)
    }
}

/// When the run ends on a retryable status, the caller gets that last
/// response, as without the middleware; anything else is an error.
fn give_back_last_response(err: RetryError<HttpError>) -> reqwest_middleware::Result<Response> {
    if !matches!(err.last_error(), Some(HttpError::Status(_))) {
        return Err(reqwest_middleware::Error::Middleware(anyhow::Error::new(err)));
    }
    match err.into_inner() {
        Some(HttpError::Status(resp)) => Ok(resp),
        _ => Err(reqwest_middleware::Error::Middleware(anyhow::anyhow!("the last response was lost"))),
    }
}
