//! The reqwest middleware against a real HTTP server on loopback that injects
//! faults. Sleeps run on a `ManualClock` (recorded, not waited), except where
//! a timeout needs real time (tens of milliseconds).

use std::time::{Duration, SystemTime};

use backstop::breaker::BreakerConfig;
use backstop::{Backoff, CircuitBreaker, ManualClock, RetryError, RetryPolicy};
use backstop_http::{Attempts, HttpError, NotRetried, Options, RetryMiddleware};
use backstop_testkit::{FaultServer, Reply};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

const S: fn(u64) -> Duration = Duration::from_secs;

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::exponential(Duration::from_millis(500)).max_delay(S(10)))
        .build()
        .unwrap()
}

fn client(middleware: RetryMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new()).with(middleware).build()
}

fn on_manual(attempts: u32, clock: &ManualClock) -> ClientWithMiddleware {
    client(RetryMiddleware::new(policy(attempts)).clock(clock))
}

/// The `RetryError` inside a middleware error, found the documented way.
fn retry_error(e: &reqwest_middleware::Error) -> &RetryError<HttpError> {
    backstop_http::retry_error(e).expect("a RetryError made by the middleware")
}

#[tokio::test]
async fn every_retryable_status_is_retried_then_succeeds() {
    for code in [500, 502, 503, 504, 408, 429] {
        let server = FaultServer::start();
        server.script([Reply::status(code), Reply::ok("sunny")]);
        let clock = ManualClock::new();
        let resp = on_manual(3, &clock).get(server.url("/forecast")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{code}");
        assert_eq!(resp.extensions().get::<Attempts>(), Some(&Attempts(2)), "{code}");
        assert_eq!(resp.text().await.unwrap(), "sunny");
        assert_eq!(server.hits(), 2, "{code}");
        assert_eq!(clock.sleeps(), [Duration::from_millis(500)], "{code}");
    }
}

#[tokio::test]
async fn other_statuses_are_returned_at_once() {
    for code in [501, 505, 400, 401, 403, 404, 409, 422] {
        let server = FaultServer::start();
        server.otherwise(Reply::status(code));
        let clock = ManualClock::new();
        let resp = on_manual(3, &clock).get(server.url("/")).send().await.unwrap();
        assert_eq!(resp.status(), code);
        assert_eq!(resp.extensions().get::<Attempts>(), Some(&Attempts(1)), "{code}");
        assert_eq!(server.hits(), 1, "{code}");
        assert!(clock.sleeps().is_empty());
    }
}

#[tokio::test]
async fn when_retries_run_out_the_last_response_is_returned() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(503).header("x-attempt", "any"));
    let clock = ManualClock::new();
    let resp = on_manual(3, &clock).get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.extensions().get::<Attempts>(), Some(&Attempts(3)));
    assert_eq!(server.hits(), 3);
    assert_eq!(clock.sleeps(), [Duration::from_millis(500), S(1)]);
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    let server = FaultServer::start();
    server.script([Reply::retry_after(429, "3"), Reply::ok("ok")]);
    let clock = ManualClock::new();
    let resp = on_manual(3, &clock).get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(clock.sleeps(), [S(3)]);
}

#[tokio::test]
async fn retry_after_as_an_http_date_counts_from_the_servers_date() {
    let server = FaultServer::start();
    // The server's clock is a day behind ours: the hint still means 7 s.
    let server_now = SystemTime::now() - S(86_400);
    server.script([Reply::retry_after_date(503, server_now, S(7)), Reply::ok("ok")]);
    let clock = ManualClock::new();
    let resp = on_manual(3, &clock).get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(clock.sleeps(), [S(7)]);
}

#[tokio::test]
async fn a_retry_after_of_a_trillion_seconds_stops_at_once() {
    let server = FaultServer::start();
    server.otherwise(Reply::retry_after(503, "1000000000000"));
    let clock = ManualClock::new();
    let started = std::time::Instant::now();
    let resp = on_manual(3, &clock).get(server.url("/")).send().await.unwrap();
    // Bounded, no overflow, no hang: the run stops and hands back the response.
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1000000000000");
    assert_eq!(server.hits(), 1);
    assert!(clock.sleeps().is_empty());
    assert!(started.elapsed() < S(5));
}

#[tokio::test]
async fn a_garbage_retry_after_is_ignored() {
    let server = FaultServer::start();
    server.script([Reply::retry_after(503, "soon, maybe"), Reply::ok("ok")]);
    let clock = ManualClock::new();
    on_manual(3, &clock).get(server.url("/")).send().await.unwrap();
    assert_eq!(clock.sleeps(), [Duration::from_millis(500)], "the backoff, not the hint");
}

#[tokio::test]
async fn post_is_not_retried() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(503));
    let clock = ManualClock::new();
    let resp = on_manual(3, &clock).post(server.url("/orders")).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn post_with_a_generated_idempotency_key_is_retried_with_the_same_key() {
    let server = FaultServer::start();
    server.script([Reply::status(503), Reply::reset(), Reply::ok("created")]);
    let clock = ManualClock::new();
    let c = client(RetryMiddleware::new(policy(3)).clock(&clock).options(Options::new().idempotency_key(true)));
    let resp = c.post(server.url("/orders")).body(r#"{"id":1}"#).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let keys: Vec<_> = requests.iter().map(|r| r.header("idempotency-key").unwrap().to_owned()).collect();
    assert_eq!(keys[0].len(), 32);
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert!(requests.iter().all(|r| &r.body[..] == br#"{"id":1}"#));
    // A second call gets a new key.
    server.script([Reply::ok("again")]);
    c.post(server.url("/orders")).body("{}").send().await.unwrap();
    assert_ne!(server.requests()[3].header("idempotency-key").unwrap(), keys[0]);
}

#[tokio::test]
async fn post_carrying_its_own_idempotency_key_is_retried() {
    let server = FaultServer::start();
    server.script([Reply::status(502), Reply::ok("ok")]);
    let clock = ManualClock::new();
    let resp =
        on_manual(3, &clock).post(server.url("/orders")).header("Idempotency-Key", "order-42").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(server.requests().iter().all(|r| r.header("idempotency-key") == Some("order-42")));
}

#[tokio::test]
async fn a_stream_body_is_sent_once_and_the_error_says_why() {
    let server = FaultServer::start();
    server.otherwise(Reply::reset());
    let clock = ManualClock::new();
    let chunks: Vec<Result<&'static str, std::io::Error>> = vec![Ok("part 1,"), Ok("part 2")];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let err = on_manual(3, &clock).put(server.url("/upload")).body(body).send().await.unwrap_err();
    assert_eq!(server.hits(), 1);
    let message = format!("{err:#}");
    assert!(message.contains("not retried: its body is a stream"), "{message}");
}

#[tokio::test]
async fn a_reset_connection_is_retried() {
    let server = FaultServer::start();
    server.script([Reply::reset(), Reply::reset(), Reply::ok("ok")]);
    let clock = ManualClock::new();
    let resp = on_manual(3, &clock).get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn exhausted_transport_errors_say_how_many_attempts() {
    let server = FaultServer::start();
    server.otherwise(Reply::reset());
    let clock = ManualClock::new();
    let err = on_manual(2, &clock).get(server.url("/forecast?key=secret")).send().await.unwrap_err();
    let retry = retry_error(&err);
    assert!(matches!(retry, RetryError::Exhausted { attempts: 2, last: HttpError::Transport(_), .. }));
    let message = retry.to_string();
    assert!(message.starts_with(&format!("GET {} failed after 2 attempts", server.url("/forecast"))), "{message}");
    assert!(!message.contains("secret"), "the query stays out of logs: {message}");
}

#[tokio::test]
async fn a_stalled_attempt_times_out_and_the_next_succeeds() {
    let server = FaultServer::start();
    server.script([Reply::stall(S(30)), Reply::ok("fast")]);
    let fast =
        RetryPolicy::builder().max_attempts(2).backoff(Backoff::constant(Duration::from_millis(1))).build().unwrap();
    let c = client(RetryMiddleware::new(fast).options(Options::new().attempt_timeout(Duration::from_millis(100))));
    let started = std::time::Instant::now();
    let resp = c.get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "fast");
    assert!(started.elapsed() < S(10));
}

#[tokio::test]
async fn the_total_deadline_cuts_a_stalled_attempt() {
    let server = FaultServer::start();
    server.otherwise(Reply::stall(S(30)));
    let p = policy(5).to_builder().max_elapsed(Duration::from_millis(150)).build().unwrap();
    let err = client(RetryMiddleware::new(p)).get(server.url("/")).send().await.unwrap_err();
    assert!(matches!(retry_error(&err), RetryError::DeadlineExceeded { attempts: 1, last: None, .. }));
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_503s() {
    let server = FaultServer::start();
    server.otherwise(Reply::status(503));
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder("weather_api")
        .config(BreakerConfig::builder().consecutive_failures(3).build().unwrap())
        .clock(&clock)
        .build();
    let c = client(RetryMiddleware::new(policy(2)).clock(&clock).breaker(&breaker));
    for _ in 0..2 {
        let resp = c.get(server.url("/")).send().await.unwrap();
        assert_eq!(resp.status(), 503);
    }
    assert_eq!(server.hits(), 3, "the third failure opened the breaker");
    let err = c.get(server.url("/")).send().await.unwrap_err();
    assert!(matches!(retry_error(&err), RetryError::CircuitOpen { last: None, .. }));
    assert_eq!(server.hits(), 3, "no call while open");
}

#[tokio::test]
async fn a_request_sent_once_is_still_bounded_by_the_timeouts() {
    // A POST without a key and a streaming PUT, against a server that hangs
    // for 10 minutes: each is sent once and returns when its attempt times out.
    let server = FaultServer::start();
    server.otherwise(Reply::stall(S(600)));
    let p = policy(3).to_builder().max_elapsed(S(5)).build().unwrap();
    let c = client(RetryMiddleware::new(p).options(Options::new().attempt_timeout(Duration::from_millis(150))));
    let err = c.post(server.url("/orders")).body("{}").send().await.unwrap_err();
    assert_eq!(server.hits(), 1);
    let retry = retry_error(&err);
    assert!(matches!(retry.last_error(), Some(HttpError::NotRetried { reason: NotRetried::NotIdempotent, .. })));
    assert!(
        format!("{err:#}").contains("timed out after 0.15 seconds (not retried: its method is not idempotent"),
        "{err:#}"
    );
    let chunks: Vec<Result<&'static str, std::io::Error>> = vec![Ok("part 1,"), Ok("part 2")];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let err = c.put(server.url("/upload")).body(body).send().await.unwrap_err();
    assert_eq!(server.hits(), 2);
    assert!(format!("{err:#}").contains("(not retried: its body is a stream"), "{err:#}");
    // And by the deadline alone.
    let p = policy(3).to_builder().max_elapsed(Duration::from_millis(150)).build().unwrap();
    let err = client(RetryMiddleware::new(p)).post(server.url("/orders")).body("{}").send().await.unwrap_err();
    assert_eq!(server.hits(), 3);
    assert!(matches!(retry_error(&err), RetryError::DeadlineExceeded { attempts: 1, .. }));
}

#[tokio::test]
async fn a_manual_clock_does_not_time_out_a_request_that_answers() {
    // Virtual time does not pass while a real server answers: the 2 s
    // per-attempt timeout must not fire.
    let server = FaultServer::start();
    server.otherwise(Reply::ok("sunny"));
    let clock = ManualClock::new();
    let c = client(RetryMiddleware::new(policy(3)).clock(&clock).options(Options::new().attempt_timeout(S(2))));
    for _ in 0..20 {
        let resp = c.get(server.url("/forecast")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(server.hits(), 20);
    assert_eq!(clock.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn middleware_errors_print_each_cause_once_and_never_the_query() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let clock = ManualClock::new();
    let err = on_manual(2, &clock).get(format!("http://{closed}/forecast?token=SECRET")).send().await.unwrap_err();
    let printed = backstop_testkit::errors::assert_prints_well(&err, "SECRET");
    assert!(printed.starts_with(&format!("GET http://{closed}/forecast failed after 2 attempts")), "{printed}");
    // One documented way to the cause: walk the chain.
    let io = std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| e.source())
        .find_map(|e| e.downcast_ref::<std::io::Error>());
    assert_eq!(io.map(std::io::Error::kind), Some(std::io::ErrorKind::ConnectionRefused));
}

#[tokio::test]
async fn a_pacer_learns_the_rate_a_server_states_and_spaces_requests_to_it() {
    let server = FaultServer::start();
    server.otherwise(Reply::ok("sunny").header("ratelimit", "\"default\";r=2;t=1"));
    let clock = ManualClock::new();
    let pacer = backstop::Pacer::builder("weather_api").clock(&clock).build().unwrap();
    let c = client(RetryMiddleware::new(policy(3)).clock(&clock).pacer(&pacer));
    for _ in 0..5 {
        assert_eq!(c.get(server.url("/forecast")).send().await.unwrap().status(), 200);
    }
    // The first response says 2 a second: the other four wait their slots.
    assert_eq!(pacer.rate(), Some(2.0));
    assert_eq!(server.hits(), 5);
    assert!(clock.elapsed() >= Duration::from_millis(1500), "{:?}", clock.elapsed());
}

#[tokio::test]
async fn retry_error_finds_nothing_in_an_error_the_middleware_did_not_make() {
    // No middleware of ours: reqwest's own error is not a run's.
    let c = ClientBuilder::new(reqwest::Client::new()).build();
    let err = c.get("http://127.0.0.1:1/").send().await.unwrap_err();
    assert!(backstop_http::retry_error(&err).is_none());
}

/// A hedge sending its second request 2 ms into a call.
fn hedge_after_2ms() -> backstop::hedge::Hedge {
    use backstop::hedge::{Hedge, HedgeDelay};
    Hedge::builder("api").delay(HedgeDelay::fixed(Duration::from_millis(2))).min_per_sec(100.0).build().unwrap()
}

#[tokio::test]
async fn a_stalled_get_is_hedged_and_the_first_answer_wins() {
    let server = FaultServer::start();
    server.script([Reply::stall(S(5)), Reply::ok("sunny")]);
    let client = client(RetryMiddleware::new(policy(3)).hedge(&hedge_after_2ms()));
    let resp = client.get(server.url("/forecast")).send().await.unwrap();
    assert_eq!(resp.extensions().get::<Attempts>().map(|a| a.0), Some(1), "a hedged attempt is one attempt");
    assert_eq!(resp.text().await.unwrap(), "sunny");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_post_without_an_idempotency_key_is_never_hedged() {
    let server = FaultServer::start();
    server.script([Reply::stall(Duration::from_millis(20)), Reply::ok("second")]);
    let client = client(RetryMiddleware::new(policy(3)).hedge(&hedge_after_2ms()));
    let resp = client.post(server.url("/orders")).body("{}").send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "late", "the stalled request's own answer");
    assert_eq!(server.hits(), 1);
    // With a key it may be sent twice: hedged.
    let server = FaultServer::start();
    server.script([Reply::stall(S(5)), Reply::ok("second")]);
    let keyed = client.post(server.url("/orders")).header("Idempotency-Key", "k-1").body("{}").send().await.unwrap();
    assert_eq!(keyed.text().await.unwrap(), "second");
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|r| r.header("idempotency-key") == Some("k-1")), "the hedge carries the same key");
}

#[tokio::test]
async fn a_client_with_a_full_concurrency_limit_refuses_naming_it() {
    use backstop::limit::ConcurrencyLimit;
    let server = FaultServer::start();
    let limit = ConcurrencyLimit::builder("api").max_concurrent(1).max_queue(0).build().unwrap();
    let client = client(RetryMiddleware::new(policy(3)).limit(&limit));
    assert_eq!(client.get(server.url("/")).send().await.unwrap().status(), 200);
    let held = limit.try_acquire().unwrap();
    let err = client.get(server.url("/")).send().await.unwrap_err();
    let retry = retry_error(&err);
    assert!(matches!(retry, RetryError::Limited { attempts: 0, .. }), "{retry}");
    assert_eq!(server.hits(), 1, "the refused request was not sent");
    drop(held);
    assert_eq!(client.get(server.url("/")).send().await.unwrap().status(), 200);
}

/// A breaker per origin: two servers behind one client, one of them down.
/// Its breaker opens; the healthy origin's requests are never refused, and
/// each origin's breaker carries the origin in its name.
#[tokio::test]
async fn one_dead_origin_trips_only_its_own_breaker() {
    use backstop::Guards;
    use backstop::breaker::CircuitState;
    use backstop::keyed::Keyed;
    let (down, up) = (FaultServer::start(), FaultServer::start());
    down.otherwise(Reply::status(503));
    let per_origin = Keyed::builder(|origin: &str| {
        let config =
            BreakerConfig::builder().consecutive_failures(2).open_for(Backoff::constant(S(60))).build().unwrap();
        Guards::builder().breaker(&CircuitBreaker::new(format!("api {origin}"), config)).build()
    })
    .build()
    .unwrap();
    let clock = ManualClock::new();
    let client = client(RetryMiddleware::new(policy(2)).clock(&clock).per_origin(&per_origin));
    for _ in 0..3 {
        let _ = client.get(down.url("/x?token=secret")).send().await;
        assert_eq!(client.get(up.url("/y")).send().await.unwrap().status(), 200);
    }
    let down_origin = down.url("").trim_end_matches('/').to_owned();
    let breaker = per_origin.get(&down_origin);
    let breaker = breaker.breaker().unwrap();
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(breaker.name(), format!("api {down_origin}"));
    assert!(!breaker.name().contains("secret"));
    let refused = client.get(down.url("/x")).send().await.unwrap_err();
    assert!(matches!(retry_error(&refused), RetryError::CircuitOpen { .. }), "{refused}");
    assert_eq!(down.hits(), 2, "the open breaker stopped the dead origin's requests");
    for _ in 0..20 {
        assert_eq!(client.get(up.url("/y")).send().await.unwrap().status(), 200);
    }
    assert_eq!(up.hits(), 23);
    assert_eq!(per_origin.len(), 2);
}
