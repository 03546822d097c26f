//! The edges of the HTTP surface, as a hostile user finds them: `Attempts`, `retry_error`,
//! `guards`. Each test asserts what a user would expect.

use std::time::Duration;

use backstop::breaker::BreakerConfig;
use backstop::{Backoff, CircuitBreaker, Guards, ManualClock, RetryError, RetryPolicy};
use backstop_http::{Attempts, HttpError, RetryLayer, RetryMiddleware};
use backstop_testkit::{FaultServer, Reply};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use tower_layer::Layer;
use tower_service::Service;

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::constant(Duration::from_millis(1))).build().unwrap()
}

fn client(middleware: RetryMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new()).with(middleware).build()
}

fn isolated() -> CircuitBreaker {
    let b = CircuitBreaker::new("api", Default::default());
    b.isolate();
    b
}

#[tokio::test]
async fn a_post_sent_once_says_one_attempt() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(503));
    let resp = client(RetryMiddleware::new(policy(3))).post(server.url("/orders")).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(server.hits(), 1);
    assert_eq!(resp.extensions().get::<Attempts>(), Some(&Attempts(1)));
}

#[tokio::test]
async fn a_response_after_the_breaker_opened_on_it_says_how_many_attempts() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(503));
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder("api")
        .config(BreakerConfig::builder().consecutive_failures(2).build().unwrap())
        .clock(&clock)
        .build();
    let resp = client(RetryMiddleware::new(policy(5)).clock(&clock).breaker(&breaker))
        .get(server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(server.hits(), 2);
    assert_eq!(resp.extensions().get::<Attempts>(), Some(&Attempts(2)));
}

#[tokio::test]
async fn a_request_refused_by_an_open_breaker_is_an_error_with_its_retry_error() {
    let server = FaultServer::start();
    let breaker = isolated();
    let err = client(RetryMiddleware::new(policy(3)).breaker(&breaker)).get(server.url("/")).send().await.unwrap_err();
    assert_eq!(server.hits(), 0);
    let retry = backstop_http::retry_error(&err).expect("a RetryError");
    assert!(matches!(retry, RetryError::CircuitOpen { last: None, .. }), "{retry:?}");
    // Nothing was sent: the count should not claim an attempt was made.
    assert_eq!(retry.attempts(), 0, "an attempt refused locally counted as made: {retry}");
}

#[tokio::test]
async fn middleware_keeps_a_breaker_set_before_guards_that_hold_none() {
    let server = FaultServer::start();
    server.otherwise(Reply::ok("ok"));
    let breaker = isolated();
    let clock = ManualClock::new();
    let g = Guards::builder().clock(&clock).build();
    let r = client(RetryMiddleware::new(policy(3)).breaker(&breaker).guards(&g)).get(server.url("/")).send().await;
    assert_eq!(server.hits(), 0, "the breaker set before .guards(&g) was dropped: the request went out ({r:?})");
    assert!(r.is_err());
}

#[tokio::test]
async fn layer_keeps_a_breaker_set_before_guards_that_hold_none() {
    let server = FaultServer::start();
    server.otherwise(Reply::ok("ok"));
    let breaker = isolated();
    let clock = ManualClock::new();
    let g = Guards::builder().clock(&clock).build();
    let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut svc = RetryLayer::new(policy(3)).breaker(&breaker).guards(&g).layer(hyper);
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let req = Request::builder().method(Method::GET).uri(server.url("/")).body(Full::new(Bytes::new())).unwrap();
    let r = svc.call(req).await;
    assert_eq!(server.hits(), 0, "the breaker set before .guards(&g) was dropped: the request went out");
    assert!(r.is_err());
}

#[tokio::test]
async fn layer_post_sent_once_and_refused_request() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(503));
    let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut svc = RetryLayer::new(policy(3)).layer(hyper.clone());
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let req = Request::builder().method(Method::POST).uri(server.url("/")).body(Full::new(Bytes::from("{}"))).unwrap();
    let resp = svc.call(req).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(server.hits(), 1);
    assert_eq!(resp.extensions().get::<Attempts>(), Some(&Attempts(1)));

    let breaker = isolated();
    let mut svc = RetryLayer::new(policy(3)).breaker(&breaker).layer(hyper);
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let req = Request::builder().method(Method::GET).uri(server.url("/")).body(Full::new(Bytes::new())).unwrap();
    let err = svc.call(req).await.unwrap_err();
    assert_eq!(server.hits(), 1);
    assert!(err.to_string().contains("circuit api"), "{err}");
}

/// An outer middleware that adds context to any error of what it wraps.
struct Context;

#[async_trait::async_trait]
impl Middleware for Context {
    async fn handle(
        &self,
        req: reqwest::Request,
        ext: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        next.run(req, ext).await.map_err(|e| match e {
            reqwest_middleware::Error::Middleware(a) => {
                reqwest_middleware::Error::Middleware(a.context("calling the weather api"))
            }
            other => other,
        })
    }
}

/// An outer middleware that wraps any error in one of its own.
struct Wrapping;

#[derive(Debug)]
struct OuterError(reqwest_middleware::Error);
impl std::fmt::Display for OuterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("outer middleware failed")
    }
}
impl std::error::Error for OuterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[async_trait::async_trait]
impl Middleware for Wrapping {
    async fn handle(
        &self,
        req: reqwest::Request,
        ext: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        next.run(req, ext).await.map_err(|e| reqwest_middleware::Error::middleware(OuterError(e)))
    }
}

/// An outer middleware that fails on its own, before the retries.
struct Refusing;

#[async_trait::async_trait]
impl Middleware for Refusing {
    async fn handle(
        &self,
        _req: reqwest::Request,
        _ext: &mut http::Extensions,
        _next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        Err(reqwest_middleware::Error::Middleware(anyhow::anyhow!("no token")))
    }
}

#[tokio::test]
async fn retry_error_is_found_under_an_outer_middlewares_context() {
    let breaker = isolated();
    let c = ClientBuilder::new(reqwest::Client::new())
        .with(Context)
        .with(RetryMiddleware::new(policy(3)).breaker(&breaker))
        .build();
    let err = c.get("http://127.0.0.1:9/").send().await.unwrap_err();
    assert!(backstop_http::retry_error(&err).is_some(), "{err:#}");
}

#[tokio::test]
async fn retry_error_is_found_under_an_outer_middlewares_own_error() {
    let breaker = isolated();
    let c = ClientBuilder::new(reqwest::Client::new())
        .with(Wrapping)
        .with(RetryMiddleware::new(policy(3)).breaker(&breaker))
        .build();
    let err = c.get("http://127.0.0.1:9/").send().await.unwrap_err();
    assert!(backstop_http::retry_error(&err).is_some(), "not found through the source chain: {err:#}");
}

#[tokio::test]
async fn retry_error_of_other_errors() {
    // An outer middleware's own error: no run, no RetryError.
    let c = ClientBuilder::new(reqwest::Client::new()).with(Refusing).with(RetryMiddleware::new(policy(3))).build();
    let err = c.get("http://127.0.0.1:9/").send().await.unwrap_err();
    assert!(backstop_http::retry_error(&err).is_none());
    // A reqwest error (connection refused) under the middleware: a run that ran out.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = client(RetryMiddleware::new(policy(2)));
    let err = c.get(format!("http://127.0.0.1:{port}/")).send().await.unwrap_err();
    let retry = backstop_http::retry_error(&err).expect("a RetryError");
    assert_eq!(retry.attempts(), 2);
    assert!(matches!(retry.last_error(), Some(HttpError::Transport { .. })), "{retry:?}");
    // A reqwest error without the middleware: none.
    let plain = ClientBuilder::new(reqwest::Client::new()).build();
    let err = plain.get(format!("http://127.0.0.1:{port}/")).send().await.unwrap_err();
    assert!(backstop_http::retry_error(&err).is_none());
}

#[tokio::test]
async fn attempts_counts_a_timed_out_attempt() {
    let server = FaultServer::start();
    server.script([Reply::stall(Duration::from_secs(30)), Reply::ok("ok")]);
    let c = client(
        RetryMiddleware::new(policy(3))
            .options(backstop_http::Options::new().attempt_timeout(Duration::from_millis(100))),
    );
    let resp = c.get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.extensions().get::<Attempts>(), Some(&Attempts(2)));
}
