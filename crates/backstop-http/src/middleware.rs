//! Retries for every request of a client: [`RetryMiddleware`] for
//! `reqwest-middleware`.

use async_trait::async_trait;
use backstop::{CircuitBreaker, Clock, Guards, Pacer, RetryBudget, RetryError, RetryPolicy, presets};
use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::BoxFuture;
use crate::attempts::Attempts;
use crate::error::{HttpError, NotRetried, classify};
use crate::guards;
use crate::options::{Options, fresh_key};
use crate::origin;
use crate::replay::Replay;
use crate::setup::Setup;

/// Retries a client's requests under a [`RetryPolicy`] (default:
/// [`presets::API_CALL`]), optionally through a [`CircuitBreaker`] and a
/// [`RetryBudget`] shared by every request.
///
/// - Retryable statuses (5xx but 501/505, 429, 408) and transport errors are
///   retried; `Retry-After` (both forms) is honoured up to the policy's
///   `max_retry_after`.
/// - Only requests that are safe to send twice are retried (see [`Options`]);
///   a request whose body is a stream is sent once, and if it fails, the error
///   says why it was not retried. A request sent once is still bounded by the
///   per-attempt timeout and the deadline, and is not sent again whatever ends
///   its attempt (a timeout included: the server may have done the work).
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
#[derive(Debug, Clone)]
pub struct RetryMiddleware {
    setup: Setup,
}

impl Default for RetryMiddleware {
    fn default() -> Self {
        Self::new(presets::API_CALL)
    }
}

impl RetryMiddleware {
    /// Retries under `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { setup: Setup::new(policy) }
    }

    guards::guard_setters!();

    fn edit_setup(mut self, edit: impl FnOnce(&mut Setup)) -> Self {
        edit(&mut self.setup);
        self
    }
}

#[async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        mut req: Request,
        ext: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let setup = &self.setup;
        let method = req.method().clone();
        let mut replay = setup.options.prepare(&method, req.headers_mut(), fresh_key);
        // A copy to send again, when it may be sent again and can be.
        let template = match replay {
            Replay::Allowed => req.try_clone(),
            Replay::Once(_) => None,
        };
        if replay == Replay::Allowed && template.is_none() {
            replay = Replay::Once(NotRetried::StreamBody);
        }
        let name = crate::request_name(&req);
        let guards = origin::guards_for(&setup.guards, setup.per_origin.as_ref(), || origin::of_url(req.url()));
        let first = std::sync::Mutex::new(Some(req));
        let pacer = guards.pacer();
        // The request to send: the caller's the first time, a copy after.
        let request = || {
            let first = first.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            first.or_else(|| template.as_ref().and_then(Request::try_clone))
        };
        let send = |req: Option<Request>| {
            let (next, mut ext) = (next.clone(), ext.clone());
            #[cfg(feature = "chaos")]
            let chaos = setup.chaos.clone();
            #[cfg(feature = "chaos")]
            let timeout = setup.options.attempt_timeout;
            async move {
                // Only a single-attempt run can get here twice with nothing to send.
                let Some(req) = req else {
                    return Err(HttpError::Middleware(anyhow::anyhow!("the request cannot be sent again")));
                };
                #[cfg(feature = "chaos")]
                if let Some(fault) = crate::chaos::inject(chaos, timeout).await {
                    return crate::chaos::response(fault, req.url());
                }
                let sent = next.run(req, &mut ext).await;
                if let Ok(resp) = &sent {
                    guards::observe(pacer, resp.headers());
                }
                match sent {
                    Ok(resp) if backstop::http::is_retryable_status(resp.status()) => Err(HttpError::Status(resp)),
                    Ok(resp) => Ok(resp),
                    Err(e) => Err(HttpError::from(e)),
                }
            }
        };
        let hedge = setup.hedge.as_ref().filter(|_| replay == Replay::Allowed);
        let attempt = || -> BoxFuture<'_, Result<Response, HttpError>> {
            match hedge {
                Some(hedge) => Box::pin(hedge.run(|| send(request()))),
                None => Box::pin(send(request())),
            }
        };
        let policy = replay.policy(&setup.policy, &setup.once);
        let timeout = setup.options.attempt_timeout;
        let result = guards::run(policy, &guards, name, attempt, classify, timeout, HttpError::TimedOut).await;
        let result = match replay {
            Replay::Allowed => result,
            Replay::Once(reason) => result.map_err(|e| e.map_err(|e| e.not_retried(reason))),
        };
        let (mut resp, attempts) = result.or_else(give_back_last_response)?;
        resp.extensions_mut().insert(Attempts(attempts));
        Ok(resp)
    }
}

/// When the run ends on a retryable status, the caller gets that last
/// response, as without the middleware; anything else is an error.
fn give_back_last_response(err: RetryError<HttpError>) -> reqwest_middleware::Result<(Response, u32)> {
    let attempts = err.attempts();
    if err.last_error().and_then(HttpError::response).is_none() {
        return Err(reqwest_middleware::Error::Middleware(anyhow::Error::new(err)));
    }
    match err.into_inner().and_then(HttpError::into_response) {
        Some(resp) => Ok((resp, attempts)),
        None => Err(reqwest_middleware::Error::Middleware(anyhow::anyhow!("the last response was lost"))),
    }
}
