//! The tower layer around a real hyper client, against a real server.

use std::time::Duration;

use backstop::{Backoff, RetryPolicy};
use backstop_http::{Attempts, LayerError, Options, RetryLayer};
use backstop_testkit::{FaultServer, Reply};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_layer::Layer;
use tower_service::Service;

fn fast(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::constant(Duration::from_millis(1))).build().unwrap()
}

fn request(method: Method, url: &str) -> Request<Full<Bytes>> {
    Request::builder().method(method).uri(url).body(Full::new(Bytes::from_static(b"{}"))).unwrap()
}

async fn call<S>(svc: &mut S, req: Request<Full<Bytes>>) -> Result<(u16, Bytes), backstop_http::BoxError>
where
    S: Service<Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>, Error = backstop_http::BoxError>,
{
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
    let resp = svc.call(req).await?;
    let status = resp.status().as_u16();
    // Every response the layer returns says how many attempts it took.
    assert!(resp.extensions().get::<Attempts>().is_some_and(|a| a.0 >= 1));
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

#[tokio::test]
async fn retries_statuses_and_resets_through_a_hyper_client() {
    let server = FaultServer::start();
    server.script([Reply::status(503), Reply::reset(), Reply::ok("ok")]);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut svc = RetryLayer::new(fast(3)).layer(client);
    let (status, body) = call(&mut svc, request(Method::GET, &server.url("/"))).await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"ok"[..]));
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_response_says_how_many_attempts_it_took() {
    let server = FaultServer::start();
    server.script([Reply::status(503), Reply::status(502), Reply::ok("ok")]);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut svc = RetryLayer::new(fast(3)).layer(client);
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let resp = svc.call(request(Method::GET, &server.url("/"))).await.unwrap();
    assert_eq!(resp.extensions().get::<Attempts>(), Some(&Attempts(3)));
}

#[tokio::test]
async fn the_last_response_comes_back_when_retries_run_out() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(504));
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut svc = RetryLayer::new(fast(2)).layer(client);
    let (status, _) = call(&mut svc, request(Method::GET, &server.url("/"))).await.unwrap();
    assert_eq!(status, 504);
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn posts_are_sent_once_unless_opted_in() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(503));
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut once = RetryLayer::new(fast(3)).layer(client.clone());
    call(&mut once, request(Method::POST, &server.url("/"))).await.unwrap();
    assert_eq!(server.hits(), 1);
    let mut opted = RetryLayer::new(fast(3)).options(Options::new().retry_non_idempotent(true)).layer(client);
    call(&mut opted, request(Method::POST, &server.url("/"))).await.unwrap();
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn exhausted_transport_errors_are_reported() {
    let server = FaultServer::start();
    server.otherwise(Reply::reset());
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut svc = RetryLayer::new(fast(2)).layer(client);
    let err = call(&mut svc, request(Method::GET, &server.url("/"))).await.unwrap_err();
    assert!(err.to_string().contains("failed after 2 attempts"), "{err}");
    // The run behind the boxed error, reached by downcasting.
    let run = err.downcast_ref::<LayerError>().expect("a LayerError");
    assert_eq!((run.attempts(), run.not_retried()), (2, None));
    assert!(run.last().is_some(), "the reset is kept as the last error");
}

#[tokio::test]
async fn the_layer_adds_one_idempotency_key_and_keeps_it_on_every_attempt() {
    let server = FaultServer::start();
    server.script([Reply::status(503), Reply::status(503), Reply::ok("created")]);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut svc = RetryLayer::new(fast(3)).options(Options::new().idempotency_key(true)).layer(client);
    let (status, _) = call(&mut svc, request(Method::POST, &server.url("/orders"))).await.unwrap();
    assert_eq!(status, 200);
    let keys: Vec<_> = server.requests().iter().map(|r| r.header("idempotency-key").map(str::to_owned)).collect();
    assert_eq!(keys.len(), 3);
    let first = keys[0].clone().expect("a key on the first attempt");
    assert_eq!(first.len(), 32);
    assert!(keys.iter().all(|k| k.as_deref() == Some(first.as_str())), "{keys:?}");
}

#[tokio::test]
async fn a_post_through_the_layer_is_sent_once_and_bounded_by_the_timeout() {
    let server = FaultServer::start();
    server.otherwise(Reply::stall(Duration::from_secs(600)));
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut svc =
        RetryLayer::new(fast(3)).options(Options::new().attempt_timeout(Duration::from_millis(150))).layer(client);
    let err = call(&mut svc, request(Method::POST, &server.url("/orders?token=SECRET"))).await.unwrap_err();
    assert_eq!(server.hits(), 1);
    let printed = backstop_testkit::errors::assert_prints_well(err.as_ref(), "SECRET");
    assert!(printed.contains("(not retried: its method is not idempotent"), "{printed}");
    assert!(printed.ends_with("the attempt timed out after 0.15 seconds"), "{printed}");
    assert!(
        printed.starts_with("POST 127.0.0.1:") && printed.contains("/orders failed after 1 attempt ("),
        "{printed}"
    );
}

#[tokio::test]
async fn the_layer_hedges_a_stalled_get_and_never_a_post() {
    use backstop::hedge::{Hedge, HedgeDelay};
    let hedge =
        Hedge::builder("api").delay(HedgeDelay::fixed(Duration::from_millis(2))).min_per_sec(100.0).build().unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut svc = RetryLayer::new(fast(3)).hedge(&hedge).layer(client);
    let server = FaultServer::start();
    server.script([Reply::stall(Duration::from_secs(5)), Reply::ok("hedged")]);
    let (status, body) = call(&mut svc, request(Method::GET, &server.url("/"))).await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"hedged"[..]));
    assert_eq!(server.hits(), 2);
    let server = FaultServer::start();
    server.script([Reply::stall(Duration::from_millis(20)), Reply::ok("second")]);
    let (_, body) = call(&mut svc, request(Method::POST, &server.url("/orders"))).await.unwrap();
    assert_eq!((&body[..], server.hits()), (&b"late"[..], 1), "a POST without a key is sent once");
}

/// Guards per origin through the layer: the dead origin's breaker opens, the
/// healthy origin's requests still go.
#[tokio::test]
async fn the_layer_keeps_a_breaker_per_origin() {
    use backstop::breaker::{BreakerConfig, CircuitState};
    use backstop::keyed::Keyed;
    use backstop::{CircuitBreaker, Guards};
    let (down, up) = (FaultServer::start(), FaultServer::start());
    down.otherwise(Reply::status(503));
    let per_origin = Keyed::builder(|origin: &str| {
        let config = BreakerConfig::builder().consecutive_failures(2).build().unwrap();
        Guards::builder().breaker(&CircuitBreaker::new(origin.to_owned(), config)).build()
    })
    .build()
    .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut svc = RetryLayer::new(fast(2)).per_origin(&per_origin).layer(client);
    let _ = call(&mut svc, request(Method::GET, &down.url("/"))).await;
    let refused = call(&mut svc, request(Method::GET, &down.url("/"))).await.unwrap_err();
    assert!(refused.to_string().contains("circuit"), "{refused}");
    assert_eq!(down.hits(), 2);
    for _ in 0..10 {
        assert_eq!(call(&mut svc, request(Method::GET, &up.url("/"))).await.unwrap().0, 200);
    }
    let origin = down.url("");
    assert_eq!(per_origin.get(&origin).breaker().unwrap().state(), CircuitState::Open);
    assert_eq!(per_origin.get(&up.url("")).breaker().unwrap().state(), CircuitState::Closed);
}
