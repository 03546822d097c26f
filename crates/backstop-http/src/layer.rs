//! Retries for any tower HTTP client: [`RetryLayer`] and [`RetryService`].

use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use std::time::Duration;

use backstop::http::{classify_status, is_retryable_status};
use backstop::retry::Name;
use backstop::{CircuitBreaker, Clock, Guards, Pacer, RetryBudget, RetryError, RetryPolicy, Verdict, presets};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxFuture;
use crate::attempts::Attempts;
use crate::guards;
use crate::layer_error::{BoxError, LayerError};
use crate::options::{Options, fresh_key};
use crate::origin;
use crate::replay::Replay;
use crate::setup::Setup;

/// A tower [`Layer`] that retries HTTP requests under a [`RetryPolicy`]
/// (default: [`presets::API_CALL`]), with the same rules as
/// [`RetryMiddleware`](crate::RetryMiddleware): retryable statuses and
/// transport errors are retried, `Retry-After` honoured, only requests safe to
/// send twice are retried (with the same generated `Idempotency-Key` on every
/// attempt when [`Options::idempotency_key`] asks for one), a request sent
/// once is still bounded by the timeouts, and the last response is returned
/// when the retries run out on a status.
///
/// A call that ends with no response to give back fails with a
/// [`LayerError`](crate::LayerError) (boxed: downcast it) saying how many
/// attempts were made and keeping the last attempt's error.
///
/// The request body must be `Clone` (`Full<Bytes>`, `String`, ...), so every
/// attempt sends the same request.
#[derive(Debug, Clone)]
pub struct RetryLayer {
    shared: Arc<Setup>,
}

impl Default for RetryLayer {
    fn default() -> Self {
        Self::new(presets::API_CALL)
    }
}

impl RetryLayer {
    /// Retries under `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { shared: Arc::new(Setup::new(policy)) }
    }

    guards::guard_setters!();

    fn edit_setup(self, edit: impl FnOnce(&mut Setup)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.shared);
        edit(&mut shared);
        Self { shared: Arc::new(shared) }
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
    shared: Arc<Setup>,
}

impl<S> fmt::Debug for RetryService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryService").field("policy", &self.shared.policy).finish_non_exhaustive()
    }
}

/// One attempt's failure inside a [`RetryService`].
enum Attempt<R> {
    /// A retryable status; its response goes back if the retries run out.
    Status(Response<R>),
    /// The inner service's error, or [`TimedOut`].
    Failed(BoxError),
}

impl<R> fmt::Display for Attempt<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempt::Status(r) => write!(f, "HTTP {}", r.status()),
            Attempt::Failed(e) if f.alternate() => write!(f, "{}", backstop::error::Chain(e.as_ref())),
            Attempt::Failed(e) => write!(f, "{e}"),
        }
    }
}

fn classify_attempt<R>(a: &Attempt<R>) -> Verdict {
    match a {
        Attempt::Status(r) => classify_status(r.status(), r.headers()),
        Attempt::Failed(e) if e.is::<TimedOut>() => Verdict::Timeout,
        #[cfg(feature = "chaos")]
        Attempt::Failed(e) if e.is::<crate::chaos::Injected>() => {
            e.downcast_ref::<crate::chaos::Injected>().map_or(Verdict::Retry, crate::chaos::Injected::verdict)
        }
        // The inner service's errors are transport errors: worth a retry.
        Attempt::Failed(_) => Verdict::Retry,
    }
}

/// An attempt cut by the per-attempt timeout.
#[derive(Debug)]
struct TimedOut(Duration);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the attempt timed out after {} seconds", backstop::duration::Seconds(self.0))
    }
}

impl StdError for TimedOut {}

fn timed_out<R>(after: Duration) -> Attempt<R> {
    Attempt::Failed(Box::new(TimedOut(after)))
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

/// `POST example.test/orders`: the method and URI without query or
/// credentials, which may hold secrets.
fn run_name<B>(req: &Request<B>) -> Name {
    let uri = req.uri();
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    Name::Owned(format!("{} {host}{port}{}", req.method(), uri.path()))
}

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

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The ready service answers the first attempt; clones answer the rest.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let method = req.method().clone();
            let replay = shared.options.prepare(&method, req.headers_mut(), fresh_key);
            let name = run_name(&req);
            let guards = origin::guards_for(&shared.guards, shared.per_origin.as_ref(), || origin::of_request(&req));
            // The first attempt uses the service that was polled ready; later
            // ones use clones, polled ready in their turn.
            // The ready service, then the one its clones are made from (in a
            // mutex: a hedge's requests are made from a future that may move
            // between threads, and `S` need only be `Send`).
            let template = ready.clone();
            let services = std::sync::Mutex::new((Some(ready), template));
            let pacer = guards.pacer().cloned();
            // One request: a service (the ready one first, then clones) and a copy.
            let request = || {
                let mut svc = {
                    let mut s = services.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    s.0.take().unwrap_or_else(|| s.1.clone())
                };
                let req = copy_request(&req);
                let pacer = pacer.clone();
                #[cfg(feature = "chaos")]
                let (chaos, timeout) = (shared.chaos.clone(), shared.options.attempt_timeout);
                async move {
                    #[cfg(feature = "chaos")]
                    if let Some(fault) = crate::chaos::inject(chaos, timeout).await {
                        return Err(Attempt::Failed(Box::new(crate::chaos::Injected(fault))));
                    }
                    poll_fn(|cx| svc.poll_ready(cx)).await.map_err(|e| Attempt::Failed(e.into()))?;
                    let sent = svc.call(req).await;
                    if let Ok(resp) = &sent {
                        guards::observe(pacer.as_ref(), resp.headers());
                    }
                    match sent {
                        Ok(resp) if is_retryable_status(resp.status()) => Err(Attempt::Status(resp)),
                        Ok(resp) => Ok(resp),
                        Err(e) => Err(Attempt::Failed(e.into())),
                    }
                }
            };
            let hedge = shared.hedge.as_ref().filter(|_| replay == Replay::Allowed);
            let attempt = || -> BoxFuture<'_, Result<Response<R>, Attempt<R>>> {
                match hedge {
                    Some(hedge) => Box::pin(hedge.run(request)),
                    None => Box::pin(request()),
                }
            };
            let policy = replay.policy(&shared.policy, &shared.once);
            let timeout = shared.options.attempt_timeout;
            let classify = classify_attempt::<R>;
            let result = guards::run(policy, &guards, name, attempt, classify, timeout, timed_out::<R>).await;
            let (mut resp, attempts) = result.or_else(|err: RetryError<Attempt<R>>| {
                let (message, attempts) = (err.to_string(), err.attempts());
                match err.into_inner() {
                    Some(Attempt::Status(resp)) => Ok((resp, attempts)),
                    last => {
                        let not_retried = match replay {
                            Replay::Once(reason) => Some(reason),
                            Replay::Allowed => None,
                        };
                        let last = match last {
                            Some(Attempt::Failed(e)) => Some(e),
                            _ => None,
                        };
                        Err(Box::new(LayerError { message, attempts, not_retried, last }) as BoxError)
                    }
                }
            })?;
            resp.extensions_mut().insert(Attempts(attempts));
            Ok(resp)
        })
    }
}
