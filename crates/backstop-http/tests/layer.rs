//! The tower layer around a real hyper client, against a real server.

use std::time::Duration;

use backstop::{Backoff, RetryPolicy};
use backstop_http::{Options, RetryLayer};
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
}
