//! `send` and `fetch` against a real server on loopback.

use std::time::Duration;

use backstop::{Backoff, CircuitBreaker, ManualClock, RetryBudget, RetryError, RetryPolicy, Verdict};
use backstop_http::{HttpError, NotRetried, Options, fetch, fetch_with, send, send_with};
use backstop_testkit::{FaultServer, Reply};

/// The server saw two attempts, carrying the same generated key.
fn assert_two_attempts_with_one_key(server: &FaultServer) {
    let keys: Vec<_> = server.requests().iter().map(|r| r.header("idempotency-key").unwrap().to_owned()).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::constant(Duration::from_millis(200)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn send_retries_a_503_then_returns_the_response() {
    let server = FaultServer::start();
    server.script([Reply::status(503), Reply::ok("sunny")]);
    let client = reqwest::Client::new();
    let url = server.url("/forecast");
    let clock = ManualClock::new();
    let p = policy(3);
    let resp = send(&p, || client.get(&url)).clock(&clock).await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "sunny");
    assert_eq!(clock.sleeps(), [Duration::from_millis(200)]);
}

#[tokio::test]
async fn send_keeps_the_last_response_when_retries_run_out() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(502));
    let client = reqwest::Client::new();
    let url = server.url("/");
    let clock = ManualClock::new();
    let p = policy(2);
    let err = send(&p, || client.get(&url)).name("fetch_weather_data").clock(&clock).await.unwrap_err();
    assert_eq!(err.last_error().and_then(HttpError::status), Some(http::StatusCode::BAD_GATEWAY));
    assert!(err.to_string().starts_with("fetch_weather_data failed after 2 attempts"), "{err}");
    let resp = err.into_inner().and_then(HttpError::into_response).unwrap();
    assert_eq!(resp.status(), 502);
}

#[tokio::test]
async fn send_rejects_a_404_at_once() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(404));
    let client = reqwest::Client::new();
    let url = server.url("/");
    let p = policy(3);
    let resp = send(&p, || client.get(&url)).await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn send_does_not_retry_a_post_and_says_why() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(503));
    let client = reqwest::Client::new();
    let url = server.url("/orders");
    let p = policy(3);
    let err = send(&p, || client.post(&url).body("{}")).await.unwrap_err();
    assert_eq!(server.hits(), 1);
    assert!(matches!(
        err,
        RetryError::Rejected { last: HttpError::NotRetried { reason: NotRetried::NotIdempotent, .. }, .. }
    ));
    assert!(
        format!("{err:#}").contains("HTTP 503 Service Unavailable (not retried: its method is not idempotent"),
        "{err:#}"
    );
}

#[tokio::test]
async fn send_with_an_idempotency_key_retries_a_post_with_one_key() {
    let server = FaultServer::start();
    server.script([Reply::status(500), Reply::ok("created")]);
    let client = reqwest::Client::new();
    let url = server.url("/orders");
    let clock = ManualClock::new();
    let p = policy(3);
    let resp = send_with(&p, Options::new().idempotency_key(true), || client.post(&url).body("{}"))
        .clock(&clock)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_two_attempts_with_one_key(&server);
}

#[tokio::test]
async fn fetch_retries_a_body_cut_short() {
    let server = FaultServer::start();
    server.script([Reply::half_body("0123456789abcdef"), Reply::ok("0123456789abcdef")]);
    let client = reqwest::Client::new();
    let url = server.url("/data.csv");
    let clock = ManualClock::new();
    let p = policy(3);
    let fetched = fetch(&p, || client.get(&url)).clock(&clock).await.unwrap();
    assert_eq!(fetched.status, 200);
    assert_eq!(&fetched.body[..], b"0123456789abcdef");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn send_composes_with_breaker_and_budget() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(503));
    let client = reqwest::Client::new();
    let url = server.url("/");
    let clock = ManualClock::new();
    let budget = RetryBudget::token_bucket("retry_budget").capacity(5).timeout_cost(5).build().unwrap();
    let breaker = CircuitBreaker::new("api", Default::default());
    let p = policy(5);
    let err = send(&p, || client.get(&url)).budget(&budget).breaker(&breaker).clock(&clock).await.unwrap_err();
    assert!(matches!(err, RetryError::BudgetExhausted { attempts: 2, .. }), "{err}");
}

#[tokio::test]
async fn an_attempt_timeout_on_send() {
    let server = FaultServer::start();
    server.script([Reply::stall(Duration::from_secs(30)), Reply::ok("ok")]);
    let client = reqwest::Client::new();
    let url = server.url("/");
    let fast =
        RetryPolicy::builder().max_attempts(2).backoff(Backoff::constant(Duration::from_millis(1))).build().unwrap();
    let resp = send(&fast, || client.get(&url))
        .attempt_timeout(Duration::from_millis(100), HttpError::TimedOut)
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
}

/// A server that reads every request and never answers.
fn hanging() -> FaultServer {
    let server = FaultServer::start();
    server.otherwise(Reply::stall(Duration::from_secs(600)));
    server
}

#[tokio::test]
async fn a_post_cut_by_its_attempt_timeout_is_sent_once() {
    let server = hanging();
    let client = reqwest::Client::new();
    let url = server.url("/orders");
    let p = policy(3);
    let err = send_with(&p, Options::new(), || client.post(&url).body("{}"))
        .attempt_timeout(Duration::from_millis(100), HttpError::TimedOut)
        .await
        .unwrap_err();
    assert_eq!(server.hits(), 1, "a timed-out POST may have been carried out: never sent again");
    assert!(matches!(err, RetryError::Rejected { attempts: 1, last: HttpError::TimedOut(_), .. }), "{err:?}");
    // The same for fetch.
    let err = fetch_with(&p, Options::new(), || client.post(&url).body("{}"))
        .attempt_timeout(Duration::from_millis(100), HttpError::TimedOut)
        .await
        .unwrap_err();
    assert_eq!(server.hits(), 2);
    assert!(matches!(err, RetryError::Rejected { attempts: 1, .. }), "{err:?}");
}

#[tokio::test]
async fn a_post_is_not_sent_twice_even_under_a_classifier_that_retries_everything() {
    let server = hanging();
    let client = reqwest::Client::new();
    let url = server.url("/orders");
    // Real time: a virtual timer would wait for virtual time that never
    // passes while the server hangs.
    let p = policy(3);
    let err = send(&p, || client.post(&url).body("{}"))
        .when(|_: &HttpError| Verdict::Retry)
        .attempt_timeout(Duration::from_millis(100), HttpError::TimedOut)
        .await
        .unwrap_err();
    assert_eq!(server.hits(), 1);
    let message = format!("{err:#}");
    assert!(message.contains("not sent again"), "{message}");
    assert!(message.contains("it ended: cut off before it was answered"), "what became of it: {message}");
    // An attempt that was answered (here: the connection reset) is named.
    let resetting = FaultServer::start();
    resetting.otherwise(Reply::reset());
    let url = resetting.url("/orders");
    let clock = ManualClock::new();
    let err =
        send(&p, || client.post(&url).body("{}")).when(|_: &HttpError| Verdict::Retry).clock(&clock).await.unwrap_err();
    assert_eq!(resetting.hits(), 1);
    let message = format!("{err:#}");
    assert!(message.contains("it ended: error sending request"), "{message}");
}

#[tokio::test]
async fn a_post_with_a_key_is_retried_after_a_timeout() {
    let server = FaultServer::start();
    server.script([Reply::stall(Duration::from_secs(600)), Reply::ok("created")]);
    let client = reqwest::Client::new();
    let url = server.url("/orders");
    let p = policy(3);
    let resp = send_with(&p, Options::new().idempotency_key(true), || client.post(&url).body("{}"))
        .attempt_timeout(Duration::from_millis(100), HttpError::TimedOut)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_two_attempts_with_one_key(&server);
}

#[tokio::test]
async fn send_errors_print_each_cause_once_and_never_the_query() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://user:hunter2@{closed}/forecast?token=SECRET");
    let client = reqwest::Client::new();
    let clock = ManualClock::new();
    let p = policy(2);
    let err = send(&p, || client.get(&url)).clock(&clock).await.unwrap_err();
    let printed = backstop_testkit::errors::assert_prints_well(&err, "SECRET");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(
        printed.starts_with(&format!("GET http://{closed}/forecast failed after 2 attempts")),
        "named after the request, without its query or credentials: {printed}"
    );
    // A raw reqwest error a caller wraps itself, or another middleware hands
    // on, loses its query too.
    let raw = || async { client.get(format!("http://{closed}/x?token=SECRET")).send().await.unwrap_err() };
    backstop_testkit::errors::assert_prints_well(&HttpError::Transport(raw().await), "SECRET");
    let wrapped = reqwest_middleware::Error::Middleware(anyhow::Error::new(raw().await));
    let err = HttpError::from(wrapped);
    assert!(matches!(err, HttpError::Transport(_)));
    backstop_testkit::errors::assert_prints_well(&err, "SECRET");
    // A status error's Debug names the URL without its query.
    let server = FaultServer::start();
    server.otherwise(Reply::status(503));
    let url = server.url("/forecast?token=SECRET");
    let err = send(&p, || client.get(&url)).clock(&clock).await.unwrap_err();
    backstop_testkit::errors::assert_prints_well(&err, "SECRET");
}

/// A function of the user's own, retried: `check` keeps a 429's response,
/// so `classify` waits what `Retry-After` asked; a 404 fails at once.
#[tokio::test]
async fn check_keeps_the_response_so_retry_after_is_honoured_in_your_own_function() {
    async fn fetch_forecast(client: &reqwest::Client, url: &str) -> Result<String, HttpError> {
        let response = backstop_http::check(client.get(url).send().await?)?;
        Ok(response.text().await?)
    }
    let server = FaultServer::start();
    server.script([Reply::status(429).header("retry-after", "7"), Reply::status(503), Reply::ok("sunny")]);
    let client = reqwest::Client::new();
    let url = server.url("/forecast");
    let clock = ManualClock::new();
    let p = RetryPolicy::builder().max_attempts(5).backoff(Backoff::constant(Duration::from_secs(1))).build().unwrap();
    let (forecast, attempts) = p
        .retry(|| fetch_forecast(&client, &url))
        .when(backstop_http::classify)
        .clock(&clock)
        .with_attempts()
        .await
        .unwrap();
    assert_eq!((forecast.as_str(), attempts), ("sunny", 3));
    // The hint is a floor (up to twice it with the policy's jitter), then the backoff.
    let sleeps = clock.sleeps();
    assert!(sleeps[0] >= Duration::from_secs(7) && sleeps[0] <= Duration::from_secs(14), "{sleeps:?}");
    assert_eq!(sleeps.len(), 2);

    server.script([Reply::status(404)]);
    let err = p.retry(|| fetch_forecast(&client, &url)).when(backstop_http::classify).clock(&clock).await.unwrap_err();
    assert!(matches!(err, RetryError::Rejected { attempts: 1, .. }), "{err}");
    assert_eq!(err.last_error().and_then(HttpError::status), Some(http::StatusCode::NOT_FOUND));
}
