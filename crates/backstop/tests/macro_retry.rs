//! `#[backstop::retry]` through the public API: attempts, delays on a
//! `ManualClock`, the log lines with the function's name, async functions
//! with borrowed arguments, methods, generics, and how each argument reaches
//! every attempt.
#![cfg(all(feature = "macros", feature = "tokio", feature = "tracing"))]

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use backstop::retry::Stopped;
use backstop::{CircuitBreaker, ManualClock, RetryError, RetryPolicy, Verdict, presets};

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
    let lines = logging::logged(|| upload_to_s3(&Cell::new(0)).unwrap());
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

// ---------------------------------------------------------------- logging helper

mod logging {
    use std::io;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    pub(crate) fn logged(f: impl FnOnce()) -> Vec<String> {
        let buf = Buffer::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }
}
