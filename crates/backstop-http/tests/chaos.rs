//! Injected faults in the middleware and the layer (feature `chaos`),
//! against a real server on loopback that never fails: the server sees
//! only the attempts not given a fault; a throttle with a hint is waited
//! out; a permanent fault comes back as a 400; the same seed, the same
//! outcome; switched off, nothing is injected.
#![cfg(feature = "chaos")]

use std::time::Duration;

use backstop::chaos::{Chaos, Fault};
use backstop::{Backoff, ManualClock, RetryPolicy};
use backstop_http::{Attempts, RetryLayer, RetryMiddleware};
use backstop_testkit::FaultServer;
use reqwest_middleware::ClientBuilder;

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::constant(Duration::from_millis(100)))
        .seed(1)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_server_sees_only_the_attempts_not_given_a_fault_and_a_hint_is_waited_out() {
    let server = FaultServer::start();
    let clock = ManualClock::new();
    let chaos = Chaos::builder("api")
        .fault(0.3, Fault::Unavailable)
        .fault(0.2, Fault::RetryAfter(Duration::from_secs(2)))
        .seed(5)
        .clock(&clock)
        .build()
        .unwrap();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(policy(10)).clock(&clock).chaos(&chaos))
        .build();
    let mut attempts = 0;
    for _ in 0..20 {
        let resp = client.get(server.url("/forecast")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        attempts += resp.extensions().get::<Attempts>().unwrap().0;
    }
    assert!(chaos.injected() >= 5, "{} injected", chaos.injected());
    assert_eq!(server.hits() as u64, u64::from(attempts) - chaos.injected());
    // Every injected hint of 2 s was waited out (at least; the jitter spreads it).
    let hinted = clock.sleeps().iter().filter(|d| **d >= Duration::from_secs(2)).count();
    assert!(hinted >= 1, "{:?}", clock.sleeps());
}

#[tokio::test]
async fn a_permanent_fault_comes_back_as_a_400_and_switched_off_nothing_is_injected() {
    let server = FaultServer::start();
    let chaos = Chaos::builder("api").fault(1.0, Fault::Permanent).build().unwrap();
    let client = ClientBuilder::new(reqwest::Client::new()).with(RetryMiddleware::new(policy(3)).chaos(&chaos)).build();
    let resp = client.get(server.url("/reports?day=7")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.url().as_str(), server.url("/reports?day=7"), "the injected answer is the request's URL's");
    assert_eq!(server.hits(), 0);
    chaos.set_enabled(false);
    assert_eq!(client.get(server.url("/")).send().await.unwrap().status(), 200);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn the_layer_injects_faults_and_the_same_seed_gives_the_same_outcome() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tower_layer::Layer;
    use tower_service::Service;
    let run = |seed| async move {
        let server = FaultServer::start();
        let clock = ManualClock::new();
        let chaos = Chaos::builder("layer").fault(0.5, Fault::Throttled).seed(seed).clock(&clock).build().unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
        let mut svc = RetryLayer::new(policy(20)).clock(&clock).chaos(&chaos).layer(client);
        let mut statuses = Vec::new();
        for _ in 0..10 {
            std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
            let req = http::Request::get(server.url("/")).body(Full::new(bytes::Bytes::new())).unwrap();
            let resp = svc.call(req).await.unwrap();
            statuses.push(resp.status().as_u16());
            let _ = resp.into_body().collect().await;
        }
        (statuses, chaos.injected(), server.hits())
    };
    let (statuses, injected, hits) = run(9).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(injected >= 3, "{injected}");
    assert_eq!(hits, 10, "the server saw one request per call: every fault was injected before it");
    assert_eq!(run(9).await.1, injected, "the same seed, the same faults");
}

/// An injected timeout hangs the attempt until the client's own per-attempt
/// timeout cuts it, as a server that does not answer would (real time, 2 ×
/// 20 ms: a timeout needs it): the run reports that timeout.
#[tokio::test]
async fn an_injected_timeout_is_cut_by_the_clients_attempt_timeout() {
    let server = FaultServer::start();
    let chaos = Chaos::builder("api").fault(1.0, Fault::Timeout).build().unwrap();
    let options = backstop_http::Options::new().attempt_timeout(Duration::from_millis(20));
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(policy(2)).options(options).chaos(&chaos))
        .build();
    let err = client.get(server.url("/")).send().await.unwrap_err();
    let retry = backstop_http::retry_error(&err).expect("the run's error");
    assert_eq!(retry.attempts(), 2);
    let last = retry.last_error();
    assert!(matches!(last, Some(backstop_http::HttpError::TimedOut(d)) if *d == Duration::from_millis(20)), "{last:?}");
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn an_injected_faults_error_never_prints_the_urls_query() {
    let server = FaultServer::start();
    let mut errors = 0;
    for fault in [Fault::Unavailable, Fault::Timeout, Fault::Throttled] {
        let chaos = Chaos::builder("api").fault(1.0, fault).build().unwrap();
        let client =
            ClientBuilder::new(reqwest::Client::new()).with(RetryMiddleware::new(policy(2)).chaos(&chaos)).build();
        // A response given back is reqwest's own (its Debug shows its URL, as
        // a real server's does); an error is ours.
        let shown = match client.get(server.url("/reports?token=hunter2")).send().await {
            Ok(resp) => {
                assert!(resp.status().is_server_error() || resp.status() == 429, "{fault:?}");
                continue;
            }
            Err(e) => {
                errors += 1;
                let mut shown = format!("{e} | {e:#} | {e:?}");
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    shown.push_str(&format!(" | {s} | {s:?}"));
                    source = s.source();
                }
                shown
            }
        };
        assert!(!shown.contains("hunter2"), "{fault:?}: {shown}");
    }
    assert!(errors >= 1, "an injected timeout ends in an error");
}
