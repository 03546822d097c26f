//! `#[backstop_http::api_retry]` on functions that call a real server with
//! reqwest: HTTP's classifier and `Retry-After`, with `check(response)?`
//! turning an error status into an `HttpError` that keeps the headers.
#![cfg(feature = "macros")]

use std::sync::LazyLock;
use std::time::Duration;

use backstop_http::backstop::{CircuitBreaker, ManualClock};
use backstop_http::{HttpError, api_retry, check};
use backstop_testkit::{FaultServer, Reply};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

/// The seeds' `fetch_weather_data`.
#[api_retry(clock = CLOCK)]
async fn fetch_weather_data(client: &reqwest::Client, url: &str) -> Result<String, HttpError> {
    let response = check(client.get(url).send().await?)?;
    Ok(response.text().await?)
}

#[tokio::test]
async fn retry_after_is_honoured_and_a_404_is_returned_at_once() {
    let server = FaultServer::start();
    server.script([Reply::retry_after(503, "3"), Reply::status(502)]);
    server.otherwise(Reply::ok("sunny"));
    let client = reqwest::Client::new();
    assert_eq!(fetch_weather_data(&client, &server.url("/forecast")).await.unwrap(), "sunny");
    assert_eq!(server.hits(), 3);
    let sleeps = CLOCK.sleeps();
    assert_eq!(sleeps.len(), 2);
    assert!(sleeps[0] >= Duration::from_secs(3), "the server's Retry-After is a floor: {sleeps:?}");
    assert!(sleeps[1] <= Duration::from_secs(2), "then the api_call schedule (1 s, +U[0, 0.5 s]): {sleeps:?}");

    server.script([Reply::status(404)]);
    let err = fetch_weather_data(&client, &server.url("/nowhere")).await.unwrap_err();
    assert!(matches!(&err, HttpError::Status(r) if r.status() == 404), "{err:?}");
    assert_eq!(server.hits(), 4, "a 404 is not retried");
    assert_eq!(CLOCK.sleeps().len(), 2);
}

#[api_retry(max_attempts = 2, deadline = "300ms")]
async fn hung(client: &reqwest::Client, url: &str) -> Result<String, HttpError> {
    let response = check(client.get(url).send().await?)?;
    Ok(response.text().await?)
}

#[tokio::test]
async fn a_hung_server_ends_at_the_deadline_as_a_stopped_run() {
    let server = FaultServer::start();
    server.otherwise(Reply::stall(Duration::from_secs(30)));
    let err = hung(&reqwest::Client::new(), &server.url("/slow")).await.unwrap_err();
    let HttpError::Stopped(stopped) = &err else { panic!("expected a stopped run: {err:?}") };
    assert_eq!(stopped.attempts(), 1);
    assert!(err.to_string().starts_with("hung "), "{err}");
}

static OPEN: LazyLock<CircuitBreaker> = LazyLock::new(|| {
    let breaker = CircuitBreaker::builder("weather").build();
    breaker.isolate();
    breaker
});

#[api_retry(breaker = OPEN)]
async fn guarded(client: &reqwest::Client, url: &str) -> Result<String, HttpError> {
    Ok(client.get(url).send().await?.text().await?)
}

#[tokio::test]
async fn an_open_breaker_sends_nothing() {
    let server = FaultServer::start();
    let err = guarded(&reqwest::Client::new(), &server.url("/x")).await.unwrap_err();
    assert!(matches!(err, HttpError::Stopped(ref s) if s.circuit_open().is_some()), "{err:?}");
    assert_eq!(server.hits(), 0);
}

static CLOCK_POST: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

/// A POST the server deduplicates by its key may be retried, once the function says so.
#[api_retry(idempotent = true, clock = CLOCK_POST)]
async fn place_order(client: &reqwest::Client, url: &str, key: &str) -> Result<String, HttpError> {
    let request = client.post(url).header(backstop_http::IDEMPOTENCY_KEY, key).body("{}");
    Ok(check(request.send().await?)?.text().await?)
}

#[tokio::test]
async fn an_idempotent_post_is_retried_when_the_function_says_so() {
    let server = FaultServer::start();
    server.script([Reply::status(503), Reply::status(500)]);
    server.otherwise(Reply::ok("order 7"));
    let got = place_order(&reqwest::Client::new(), &server.url("/orders"), "order-7").await.unwrap();
    assert_eq!(got, "order 7");
    assert_eq!(server.hits(), 3);
}
