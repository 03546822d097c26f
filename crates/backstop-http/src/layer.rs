//! Retries for any tower HTTP client: [`RetryLayer`] and [`RetryService`].

use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use backstop::http::{classify_status, is_retryable_status};
use backstop::{CircuitBreaker, RetryBudget, RetryError, RetryPolicy, Verdict, presets};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::options::Options;

/// The error type of a [`RetryService`]: boxed, as tower's own layers do.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A tower [`Layer`] that retries HTTP requests under a [`RetryPolicy`]
/// (default: [`presets::api_call`]), with the same rules as
/// [`RetryMiddleware`](crate::RetryMiddleware): retryable statuses and
/// transport errors are retried, `Retry-After` honoured, only requests safe to
/// send twice are retried, and the last response is returned when the retries
/// run out on a status.
///
/// The request body must be `Clone` (`Full<Bytes>`, `String`, ...), so every
/// attempt sends the same request.
#[derive(Clone)]
pub struct RetryLayer {
    shared: Arc<Shared>,
}

struct Shared {
    policy: RetryPolicy,
    breaker: Option<CircuitBreaker>,
    budget: Option<RetryBudget>,
    options: Options,
}

impl Default for RetryLayer {
    fn default() -> Self {
        Self::new(presets::api_call())
    }
}

impl RetryLayer {
    /// Retries under `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self::from_shared(Shared { policy, breaker: None, budget: None, options: Options::default() })
    }

    fn from_shared(shared: Shared) -> Self {
        Self { shared: Arc::new(shared) }
    }

    fn edit(self, f: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::try_unwrap(self.shared).unwrap_or_else(|arc| Shared {
            policy: arc.policy.clone(),
            breaker: arc.breaker.clone(),
            budget: arc.budget.clone(),
            options: arc.options,
        });
        f(&mut shared);
        Self::from_shared(shared)
    }

    /// Asks `breaker` before every attempt.
    pub fn breaker(self, breaker: CircuitBreaker) -> Self {
        self.edit(|s| s.breaker = Some(breaker))
    }

    /// Draws every retry from `budget`.
    pub fn budget(self, budget: RetryBudget) -> Self {
        self.edit(|s| s.budget = Some(budget))
    }

    /// Which requests may be retried, and the per-attempt timeout.
    pub fn options(self, options: Options) -> Self {
        self.edit(|s| s.options = options)
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> RetryService<S> {
        RetryService { inner, shared: Arc::clone(&self.shared) }
    }
}

/// The service made by [`RetryLayer`].
#[derive(Clone)]
pub struct RetryService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for RetryService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryService").field("policy", &self.shared.policy).finish_non_exhaustive()
    }
}

/// One attempt's failure inside a [`RetryService`].
enum Attempt<R> {
    Status(Response<R>),
    Failed(BoxError),
    TimedOut(std::time::Duration),
}

impl<R> fmt::Display for Attempt<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempt::Status(r) => write!(f, "HTTP {}", r.status()),
            Attempt::Failed(e) => write!(f, "{e}"),
            Attempt::TimedOut(d) => {
                write!(f, "the attempt timed out after {:.1}s", d.as_secs_f64())
            }
        }
    }
}

impl<R> fmt::Debug for Attempt<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<R> StdError for Attempt<R> {}

fn classify_attempt<R>(a: &Attempt<R>) -> Verdict {
    match a {
        Attempt::Status(r) => classify_status(r.status(), r.headers()),
        // The inner service's errors are transport errors: worth a retry.
        Attempt::Failed(_) => Verdict::Retry,
        Attempt::TimedOut(_) => Verdict::Timeout,
    }
}

/// A copy of the request for one attempt.
fn copy_request<B: Clone>(req: &Request<B>) -> Request<B> {
    let mut copy = Request::new(req.body().clone());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    copy
}

/// An error for a run that ended with no response to give back.
#[derive(Debug)]
struct Failed(String);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Failed {}

impl<S, B, R> Service<Request<B>> for RetryService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The ready service answers the first attempt; clones answer the rest.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            if !shared.options.may_retry(req.method(), req.headers()) {
                let mut ready = ready;
                return ready.call(req).await.map_err(Into::into);
            }
            // The first attempt uses the service that was polled ready; later
            // ones use clones, polled ready in their turn.
            let template = ready.clone();
            let mut first = Some(ready);
            let attempt = move || {
                let mut svc = first.take().unwrap_or_else(|| template.clone());
                let req = copy_request(&req);
                async move {
                    poll_fn(|cx| svc.poll_ready(cx)).await.map_err(|e| Attempt::Failed(e.into()))?;
                    match svc.call(req).await {
                        Ok(resp) if is_retryable_status(resp.status()) => Err(Attempt::Status(resp)),
                        Ok(resp) => Ok(resp),
                        Err(e) => Err(Attempt::Failed(e.into())),
                    }
                }
            };
            let mut run = shared.policy.retry(attempt).when(classify_attempt::<R>);
            if let Some(b) = &shared.breaker {
                run = run.breaker(b);
            }
            if let Some(b) = &shared.budget {
                run = run.budget(b);
            }
            let result = match shared.options.attempt_timeout {
                Some(limit) => run.attempt_timeout(limit, Attempt::TimedOut).await,
                None => run.await,
            };
            result.or_else(|err: RetryError<Attempt<R>>| match err.last_error() {
                Some(Attempt::Status(_)) => match err.into_inner() {
                    Some(Attempt::Status(resp)) => Ok(resp),
                    _ => Err(Box::new(Failed("the last response was lost".into())) as BoxError),
                },
                _ => Err(Box::new(Failed(err.to_string())) as BoxError),
            })
        })
    }
}
