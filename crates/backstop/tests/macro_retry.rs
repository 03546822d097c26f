//! `#[backstop::retry]` through the public API: attempts, delays on a
//! `ManualClock`, the log lines with the function's name, async functions
//! with borrowed arguments, methods, generics, and how each argument reaches
//! every attempt.
#![cfg(all(feature = "macros", feature = "tokio", feature = "tracing"))]
// The generated code must not warn in the user's crate.
#![deny(warnings)]

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use backstop::retry::Stopped;
use backstop::{CircuitBreaker, ManualClock, RetryError, RetryPolicy, Verdict, presets};

mod support;

const MS: fn(u64) -> Duration = Duration::from_millis;

// ---------------------------------------------------------------- sync

static CLOCK_SYNC: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

#[backstop::retry(max_attempts = 4, base = "100ms", max = "250ms", jitter = "none", clock = CLOCK_SYNC)]
fn flaky(calls: &Cell<u32>, fail_first: u32) -> Result<u32, io::Error> {
    calls.set(calls.get() + 1);
    if calls.get() <= fail_first { Err(io::Error::other("connection reset")) } else { Ok(calls.get()) }
}

#[test]
fn a_sync_function_is_retried_with_its_schedule_and_returns_the_last_error() {
    let calls = Cell::new(0);
    assert_eq!(flaky(&calls, 2).unwrap(), 3);
    assert_eq!(CLOCK_SYNC.sleeps(), [MS(100), MS(200)]);

    let calls = Cell::new(0);
    let err = flaky(&calls, 10).unwrap_err();
    assert_eq!(calls.get(), 4, "max_attempts = 4");
    assert_eq!(err.to_string(), "connection reset", "the function's own error, unwrapped");
    // 100 ms, 200 ms, then capped at 250 ms.
    assert_eq!(CLOCK_SYNC.sleeps()[2..], [MS(100), MS(200), MS(250)]);
}

static CLOCK_LOG: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

#[backstop::retry(max_attempts = 3, jitter = "none", clock = CLOCK_LOG)]
fn upload_to_s3(calls: &Cell<u32>) -> Result<(), &'static str> {
    calls.set(calls.get() + 1);
    if calls.get() < 3 { Err("SlowDown") } else { Ok(()) }
}

#[test]
fn log_lines_name_the_function() {
    let lines = support::logged(|| upload_to_s3(&Cell::new(0)).unwrap());
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].contains("Retrying upload_to_s3 in 1.0 seconds (attempt 1/3): SlowDown"), "{lines:#?}");
    assert!(lines[1].contains("Retrying upload_to_s3 in 2.0 seconds (attempt 2/3): SlowDown"), "{lines:#?}");
    assert!(lines[2].contains("upload_to_s3 succeeded on attempt 3"), "{lines:#?}");
}

#[derive(Debug, PartialEq)]
enum FetchError {
    Throttled,
    NotFound,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

fn classify(e: &FetchError) -> Verdict {
    match e {
        FetchError::Throttled => Verdict::Retry,
        FetchError::NotFound => Verdict::Fail,
    }
}

static CLOCK_WHEN: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

#[backstop::retry(preset = api_call, when = classify, clock = CLOCK_WHEN, name = "fetch")]
fn fetch(answers: &Mutex<Vec<FetchError>>) -> Result<&'static str, FetchError> {
    match answers.lock().unwrap().pop() {
        Some(e) => Err(e),
        None => Ok("forecast"),
    }
}

#[test]
fn a_permanent_error_is_returned_at_once_and_transient_ones_are_retried() {
    let answers = Mutex::new(vec![FetchError::NotFound, FetchError::Throttled]);
    assert_eq!(fetch(&answers), Err(FetchError::NotFound));
    assert_eq!(CLOCK_WHEN.sleeps().len(), 1, "one retry after Throttled, none after NotFound");
    assert!(CLOCK_WHEN.sleeps()[0] >= MS(500), "api_call starts at 500 ms: {:?}", CLOCK_WHEN.sleeps());
}

static CLOCK_MOVED: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

/// Moves `data` into the "request" and changes `budget`: each attempt starts
/// from the caller's values.
#[backstop::retry(max_attempts = 3, clock = CLOCK_MOVED)]
fn send_owned(sent: &Mutex<Vec<(Vec<u8>, u32)>>, data: Vec<u8>, mut budget: u32) -> Result<(), String> {
    budget -= 1;
    let mut sent = sent.lock().unwrap();
    sent.push((data, budget));
    if sent.len() < 3 { Err(format!("attempt {}", sent.len())) } else { Ok(()) }
}

#[test]
fn by_value_arguments_are_fresh_on_every_attempt() {
    let sent = Mutex::new(Vec::new());
    send_owned(&sent, vec![1, 2, 3], 10).unwrap();
    assert_eq!(*sent.lock().unwrap(), vec![(vec![1, 2, 3], 9); 3]);
}

static CLOCK_GENERIC: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

#[backstop::retry(max_attempts = 2, clock = CLOCK_GENERIC)]
fn parse_all<T: std::str::FromStr<Err: std::fmt::Display>>(
    text: impl AsRef<str> + Clone,
    calls: &AtomicU32,
) -> Result<Vec<T>, T::Err> {
    calls.fetch_add(1, Ordering::Relaxed);
    text.as_ref().split(',').map(str::parse).collect()
}

#[test]
fn generic_functions_with_impl_trait_arguments() {
    let calls = AtomicU32::new(0);
    assert_eq!(parse_all::<u8>("1,2", &calls).unwrap(), [1, 2]);
    assert!(parse_all::<u8>(String::from("1,x"), &calls).is_err());
    assert_eq!(calls.load(Ordering::Relaxed), 3);
}

#[derive(Debug)]
struct ParseError(std::num::ParseIntError);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<std::num::ParseIntError> for ParseError {
    fn from(e: std::num::ParseIntError) -> Self {
        ParseError(e)
    }
}

static CLOCK_Q: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

#[backstop::retry(max_attempts = 2, clock = CLOCK_Q)]
fn question_mark(text: &str) -> Result<u32, ParseError> {
    let n: u32 = text.parse()?; // converted with From, as in any function
    if n == 0 {
        return Err(ParseError("x".parse::<u32>().unwrap_err())); // `return` ends the attempt
    }
    Ok(n)
}

#[test]
fn question_mark_and_return_in_the_body() {
    assert_eq!(question_mark("7").unwrap(), 7);
    assert!(question_mark("0").is_err());
    assert!(question_mark("x").is_err());
    assert_eq!(CLOCK_Q.sleeps().len(), 2);
}

// ---------------------------------------------------------------- methods

struct Store {
    breaker: CircuitBreaker,
    clock: ManualClock,
    calls: AtomicU32,
    log: Vec<u32>,
}

impl Store {
    fn new() -> Self {
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::builder("store").clock(&clock).build();
        Store { breaker, clock, calls: AtomicU32::new(0), log: Vec::new() }
    }

    #[backstop::retry(max_attempts = 3, breaker = self.breaker, clock = self.clock)]
    fn get(&self, key: &str) -> Result<String, io::Error> {
        if self.calls.fetch_add(1, Ordering::Relaxed) == 0 {
            return Err(io::Error::other("reset"));
        }
        Ok(format!("value of {key}"))
    }

    #[backstop::retry(max_attempts = 3, clock = self.clock)]
    fn append(&mut self, n: u32) -> Result<usize, io::Error> {
        self.log.push(n);
        if self.log.len() < 2 { Err(io::Error::other("busy")) } else { Ok(self.log.len()) }
    }

    #[backstop::retry(max_attempts = 3, breaker = self.breaker, clock = self.clock)]
    fn append_guarded(&mut self, n: u32) -> Result<usize, io::Error> {
        self.log.push(n);
        Ok(self.log.len())
    }
}

#[test]
fn methods_on_ref_and_mut_self_with_guards_on_self() {
    let mut store = Store::new();
    assert_eq!(store.get("k").unwrap(), "value of k");
    assert_eq!(store.calls.load(Ordering::Relaxed), 2);
    assert_eq!(store.append(7).unwrap(), 2);
    assert_eq!(store.log, [7, 7]);
    assert_eq!(store.append_guarded(8).unwrap(), 3);
    assert_eq!(store.clock.sleeps().len(), 2);

    store.breaker.isolate();
    let err = store.get("k").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert!(err.to_string().starts_with("get stopped before its first attempt"), "{err}");
    assert!(err.get_ref().unwrap().downcast_ref::<Stopped>().unwrap().circuit_open().is_some());
}

// ---------------------------------------------------------------- errors without a last one

#[derive(Debug)]
enum UploadError {
    Io(io::Error),
    Stopped(Stopped),
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::Io(e) => e.fmt(f),
            UploadError::Stopped(s) => s.fmt(f),
        }
    }
}

impl From<Stopped> for UploadError {
    fn from(s: Stopped) -> Self {
        UploadError::Stopped(s)
    }
}

static OPEN: LazyLock<CircuitBreaker> = LazyLock::new(|| {
    let b = CircuitBreaker::builder("s3").build();
    b.isolate();
    b
});

#[backstop::retry(breaker = OPEN)]
fn upload_behind_open_breaker(calls: &Cell<u32>) -> Result<(), UploadError> {
    calls.set(calls.get() + 1);
    Err(UploadError::Io(io::Error::other("unreachable")))
}

#[test]
fn an_open_breaker_becomes_the_functions_error_through_from_stopped() {
    let calls = Cell::new(0);
    let Err(UploadError::Stopped(stopped)) = upload_behind_open_breaker(&calls) else { panic!("expected Stopped") };
    assert_eq!(calls.get(), 0);
    assert_eq!(stopped.name(), "upload_behind_open_breaker");
    assert!(matches!(stopped, RetryError::CircuitOpen { attempts: 0, last: None, .. }));
}

// ---------------------------------------------------------------- policy expressions

fn my_policy() -> RetryPolicy {
    presets::DEFAULT.to_builder().max_attempts(2).jitter(backstop::Jitter::None).build().unwrap()
}

static CLOCK_POLICY: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

#[backstop::retry(policy = my_policy(), clock = CLOCK_POLICY)]
fn with_policy_expr(calls: &Cell<u32>) -> Result<(), &'static str> {
    calls.set(calls.get() + 1);
    Err("no")
}

#[test]
fn any_expression_gives_the_policy() {
    let calls = Cell::new(0);
    assert_eq!(with_policy_expr(&calls), Err("no"));
    assert_eq!(calls.get(), 2);
    assert_eq!(CLOCK_POLICY.sleeps(), [Duration::from_secs(1)]);
}

#[backstop::retry(preset = s3_download, max_attempts = 1)]
fn every_preset_name_compiles_download() -> Result<(), &'static str> {
    Ok(())
}
#[backstop::retry(preset = s3_upload, max_attempts = 1)]
fn every_preset_name_compiles_upload() -> Result<(), &'static str> {
    Ok(())
}
#[backstop::retry(preset = default, max_attempts = 1, factor = 3.0, deadline = "1m", max_retry_after = "5s", seed = 7)]
fn every_knob_compiles() -> Result<(), &'static str> {
    Ok(())
}

#[test]
fn presets_and_knobs() {
    assert!(every_preset_name_compiles_download().is_ok());
    assert!(every_preset_name_compiles_upload().is_ok());
    assert!(every_knob_compiles().is_ok());
}

// ---------------------------------------------------------------- async

#[backstop::retry(max_attempts = 3, jitter = "none")]
async fn fetch_weather_data(calls: &AtomicU32, city: &str, units: String) -> Result<String, io::Error> {
    let n = calls.fetch_add(1, Ordering::Relaxed) + 1;
    tokio::time::sleep(MS(10)).await;
    if n < 3 { Err(io::Error::other("503")) } else { Ok(format!("{city} in {units} after {n}")) }
}

#[tokio::test(start_paused = true)]
async fn an_async_function_with_borrowed_arguments_is_retried_on_tokios_clock() {
    let calls = AtomicU32::new(0);
    let city = String::from("Oslo");
    let start = tokio::time::Instant::now();
    let got = fetch_weather_data(&calls, &city, "metric".into()).await.unwrap();
    assert_eq!(got, "Oslo in metric after 3");
    // Three 10 ms attempts and the default 1 s and 2 s delays, on tokio's paused clock.
    assert_eq!(start.elapsed(), MS(3030));
}

#[backstop::retry(max_attempts = 5, deadline = "2s", jitter = "none")]
async fn hangs(calls: Arc<AtomicU32>) -> Result<(), io::Error> {
    calls.fetch_add(1, Ordering::Relaxed);
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_deadline_stops_a_hung_async_function_with_a_timed_out_error() {
    let calls = Arc::new(AtomicU32::new(0));
    let err = hangs(calls.clone()).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

struct Client {
    base: String,
}

impl Client {
    #[backstop::retry(max_attempts = 2)]
    async fn get(&self, path: &str) -> Result<String, io::Error> {
        Ok(format!("{}{path}", self.base))
    }
}

#[tokio::test]
async fn async_methods_and_their_futures_are_send() {
    let client = Arc::new(Client { base: "https://example.com".into() });
    let task = tokio::spawn({
        let client = client.clone();
        async move { client.get("/x").await }
    });
    assert_eq!(task.await.unwrap().unwrap(), "https://example.com/x");
    let calls = Arc::new(AtomicU32::new(0));
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&hangs(calls));
}

// ---------------------------------------------------------------- found by trying to break it

/// A body that is one expression, with no by-value argument: no `unused_braces`.
#[backstop::retry(max_attempts = 1)]
fn single_expression(path: &std::path::Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
}

static CLOCK_REF_MUT: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

/// A `mut` reference the body points elsewhere starts each attempt where the caller's did.
#[backstop::retry(max_attempts = 3, clock = CLOCK_REF_MUT)]
fn parse_header(mut input: &str, seen: &Mutex<Vec<String>>) -> Result<u32, io::Error> {
    input = input.trim_start_matches('#');
    input = &input[1..];
    seen.lock().unwrap().push(input.into());
    Err(io::Error::other("bad header"))
}

#[test]
fn a_mut_reference_is_fresh_on_every_attempt() {
    let seen = Mutex::new(Vec::new());
    assert!(parse_header("#abcdef", &seen).is_err());
    assert_eq!(*seen.lock().unwrap(), ["bcdef"; 3]);
}

/// An argument bound to `_` is not copied (and need not be `Clone`); a
/// destructured one copies what it binds; a `cfg`'d-out one is not there.
struct Token;

#[backstop::retry(max_attempts = 2)]
fn patterns(_: Token, (a, mut b): (u32, String), #[cfg(any())] gone: String) -> Result<String, io::Error> {
    b.push('!');
    Ok(format!("{a}{b}"))
}

#[test]
fn underscore_destructuring_and_cfg_arguments() {
    assert_eq!(patterns(Token, (1, "x".into())).unwrap(), "1x!");
}

macro_rules! retried_with_type {
    ($name:ident($arg:ident: $ty:ty) -> $ret:ty $body:block) => {
        #[backstop::retry(max_attempts = 2)]
        fn $name($arg: $ty) -> $ret $body
    };
}

retried_with_type!(fill(buf: &mut Vec<u8>) -> Result<usize, io::Error> {
    buf.push(1);
    Ok(buf.len())
});

#[test]
fn a_reference_type_from_a_macro_rules_is_a_reference() {
    let mut buf = Vec::new();
    assert_eq!(fill(&mut buf).unwrap(), 1);
}

#[backstop::retry(max_attempts = 1)]
fn r#type() -> Result<&'static str, &'static str> {
    Err("no")
}

#[test]
fn a_raw_identifier_is_named_without_its_prefix() {
    let lines = support::logged(|| assert!(r#type().is_err()));
    assert!(lines[0].contains("type failed") && !lines[0].contains("r#"), "{lines:?}");
}

struct Account {
    policy: RetryPolicy,
    breaker: CircuitBreaker,
    guards: backstop::Guards,
    balance: u32,
}

impl Account {
    /// Every setting may read `self` beside `&mut self` where it can be cloned first.
    #[backstop::retry(policy = self.policy, breaker = self.breaker, guards = self.guards)]
    fn deposit(&mut self, n: u32) -> Result<u32, io::Error> {
        self.balance += n;
        if self.balance < 3 * n { Err(io::Error::other("not yet")) } else { Ok(self.balance) }
    }
}

#[test]
fn a_mut_self_method_reads_its_policy_and_guards_from_self() {
    let clock = ManualClock::new();
    let mut account = Account {
        policy: my_policy().to_builder().max_attempts(3).build().unwrap(),
        breaker: CircuitBreaker::builder("account").clock(&clock).build(),
        guards: backstop::Guards::builder().clock(&clock).build(),
        balance: 0,
    };
    assert_eq!(account.deposit(5).unwrap(), 15);
    assert_eq!(clock.sleeps().len(), 2);
}

static BUDGET: LazyLock<backstop::RetryBudget> =
    LazyLock::new(|| backstop::RetryBudget::token_bucket("macro").build().unwrap());
static CLOCK_BUDGET: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

/// A budget refuses retries, never the first attempt: no `From<Stopped>` needed.
#[backstop::retry(max_attempts = 2, budget = BUDGET, clock = CLOCK_BUDGET)]
fn budgeted() -> Result<(), FetchError> {
    Err(FetchError::Throttled)
}

#[test]
fn a_budget_alone_keeps_the_error_type_free() {
    assert_eq!(budgeted(), Err(FetchError::Throttled));
}

/// The names the attribute binds do not meet the user's.
#[allow(non_upper_case_globals, non_camel_case_types, dead_code)]
mod hygiene {
    const parts: u32 = 3;
    const __BACKSTOP_POLICY: u32 = 4;
    pub struct value;
    pub struct err;

    #[backstop::retry(max_attempts = 2, base = "10ms")]
    pub fn f(__backstop_policy: u32) -> Result<u32, &'static str> {
        Ok(__backstop_policy + parts + __BACKSTOP_POLICY)
    }
}

#[test]
fn hygiene_of_the_generated_names() {
    assert_eq!(hygiene::f(1), Ok(8));
}

#[backstop::retry(max_attempts = 2)]
async fn not_sync_argument(counter: Cell<u32>) -> Result<u32, io::Error> {
    counter.set(counter.get() + 1);
    tokio::task::yield_now().await;
    Ok(counter.get())
}

#[backstop::retry(max_attempts = 2)]
async fn boxed() -> Result<Box<dyn std::fmt::Debug + Send>, io::Error> {
    Ok(Box::new(5u32))
}

impl Client {
    #[backstop::retry(max_attempts = 2)]
    async fn base(&self) -> Result<&str, io::Error> {
        Ok(&self.base)
    }
}

#[tokio::test]
async fn async_futures_are_send_with_a_send_argument_and_the_body_value_coerces() {
    assert_eq!(tokio::spawn(not_sync_argument(Cell::new(4))).await.unwrap().unwrap(), 5);
    assert_eq!(format!("{:?}", boxed().await.unwrap()), "5");
    let client = Client { base: "b".into() };
    assert_eq!(client.base().await.unwrap(), "b");
}

/// A body that diverges does not warn (`todo!()` while writing the function, a `loop` that returns).
#[backstop::retry(max_attempts = 1)]
#[allow(dead_code)]
async fn not_written_yet() -> Result<(), io::Error> {
    todo!()
}

#[backstop::retry(max_attempts = 2)]
async fn loops(calls: &AtomicU32) -> Result<u32, io::Error> {
    loop {
        if calls.fetch_add(1, Ordering::Relaxed) >= 3 {
            return Ok(calls.load(Ordering::Relaxed));
        }
    }
}

struct Pinned {
    polls: u32,
}

impl Pinned {
    /// A method on `Pin<&mut Self>` is a method on a mutable reference.
    #[backstop::retry(max_attempts = 2, clock = CLOCK_PINNED)]
    fn poll_twice(mut self: std::pin::Pin<&mut Self>) -> Result<u32, io::Error> {
        self.polls += 1;
        if self.polls < 2 { Err(io::Error::other("not ready")) } else { Ok(self.polls) }
    }
}

static CLOCK_PINNED: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

#[tokio::test]
async fn diverging_bodies_and_pinned_receivers() {
    assert_eq!(loops(&AtomicU32::new(0)).await.unwrap(), 4);
    let mut pinned = Pinned { polls: 0 };
    assert_eq!(std::pin::Pin::new(&mut pinned).poll_twice().unwrap(), 2);
}

static HEDGE: LazyLock<backstop::hedge::Hedge> = LazyLock::new(|| {
    use backstop::hedge::{Hedge, HedgeDelay};
    Hedge::builder("fetch").delay(HedgeDelay::fixed(Duration::from_millis(5))).min_per_sec(100.0).build().unwrap()
});

/// Each attempt hedged: the first request stalls for a minute, the hedge
/// (sent 5 ms in, with its own copy of `key`) answers.
#[backstop::retry(max_attempts = 2, hedge = HEDGE)]
async fn fetch_hedged(key: String, calls: &std::sync::atomic::AtomicU32) -> Result<String, String> {
    let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if n == 0 {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    Ok(format!("{key} from request {n}"))
}

#[tokio::test(start_paused = true)]
async fn the_attribute_hedges_each_attempt_of_an_async_function() {
    let calls = std::sync::atomic::AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    assert_eq!(fetch_hedged("day.parquet".to_owned(), &calls).await, Ok("day.parquet from request 1".to_owned()));
    assert_eq!(started.elapsed(), Duration::from_millis(5));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

static UPLOADS: LazyLock<backstop::limit::ConcurrencyLimit> = LazyLock::new(|| {
    backstop::limit::ConcurrencyLimit::builder("uploads").max_concurrent(1).max_queue(0).build().unwrap()
});

/// At most one at a time; a refusal comes back as the function's error (its
/// type is built from `Stopped`).
#[backstop::retry(max_attempts = 2, limit = UPLOADS)]
async fn upload_limited() -> Result<&'static str, std::io::Error> {
    Ok("uploaded")
}

#[tokio::test]
async fn the_attribute_takes_a_place_from_a_limit() {
    assert_eq!(upload_limited().await.unwrap(), "uploaded");
    let held = UPLOADS.try_acquire().unwrap();
    let refused = upload_limited().await.unwrap_err();
    assert!(refused.to_string().contains("concurrency limit uploads is full"), "{refused}");
    drop(held);
    assert_eq!(upload_limited().await.unwrap(), "uploaded");
}
