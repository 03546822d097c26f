//! Chaos soak: 10,000+ operations through the real in-process HTTP server and
//! the real S3 server (`s3s` + `s3s-fs`), both behind the testkit's fault
//! proxy injecting faults into at least 30 % of the requests at random
//! (503, 429 + `Retry-After`, resets, stalls, cut bodies), mixed GET, PUT and
//! POST, some callers cancelled at random moments.
//!
//! The randomness is seeded ([`SEED`]), but the interleaving of concurrent
//! requests is not, so the assertions are invariants, never exact counts:
//!
//! - every POST without an idempotency key reached the server at most once;
//! - no request was sent more often than the policy allows, and a keyed POST
//!   carried one key on every attempt;
//! - every success is the real answer (no stalled `late`, no cut body);
//! - every write reported successful is on the server with its exact bytes,
//!   and no object holds anything but the bytes uploaded to it;
//! - no partial or temporary file of ours is left (s3s-fs's own `.tmp.*`
//!   files, left when a client hangs up mid-request, are a quirk of the test
//!   server: counted and printed, not failed);
//! - no multipart upload is left pending;
//! - no task is left alive on the runtime once the clients are dropped.
//!   (No process can leak: nothing here starts a child process.)
//!
//! The counts are printed with `--nocapture`.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use backstop::{Backoff, Jitter, RetryPolicy};
use backstop_http::{HttpError, Options, RetryMiddleware};
use backstop_testkit::s3::LocalS3;
use backstop_testkit::{FaultServer, Recorded, Reply};
use common::{BUCKET, TempDir, billed_leftovers, client_for, eventually, is_abort};
use reqwest_middleware::ClientWithMiddleware;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The seed of everything random here: the plan of operations, the faults,
/// the cancellations, the jitter. Set `BACKSTOP_SOAK_SEED` to try another.
const SEED: u64 = 0x50a4_c4a0_5eed;

const HTTP_OPS: usize = 6_000;
const S3_OPS: usize = 4_000;
/// Of the S3 operations, how many are multipart uploads (the heaviest).
const MULTIPART_OPS: usize = 60;
const HTTP_CONCURRENCY: usize = 64;
const S3_CONCURRENCY: usize = 32;
/// Every policy's attempt limit.
const ATTEMPTS: u32 = 6;

/// An attempt is cut after this long; an injected stall lasts far longer, so
/// it is always cut (a stall ends with a `200 late`, which must never be
/// taken for an answer). The margin is wide on purpose: a run whose task is
/// not polled until after its timer fired takes an answer that has arrived
/// by then (the work is done), so a stall only a few hundred milliseconds
/// longer than the timeout could be answered in time on a starved machine
/// (seen once in CI-like conditions with 400 ms stalls).
const HTTP_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(100);
const HTTP_STALL: Duration = Duration::from_millis(3_000);
const S3_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
const S3_STALL: Duration = Duration::from_millis(5_000);

/// What the HTTP server answers when no fault is injected.
fn http_body() -> bytes::Bytes {
    bytes::Bytes::from((0..4096u32).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>())
}

fn seed() -> u64 {
    std::env::var("BACKSTOP_SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED)
}

/// A policy that keeps the soak fast: 1 ms doubling to 5 ms, full jitter,
/// `Retry-After` honoured up to 1 s.
fn policy(seed: u64) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(ATTEMPTS)
        .backoff(
            Backoff::exponential(Duration::from_millis(1)).max_delay(Duration::from_millis(5)).jitter(Jitter::Full),
        )
        .max_retry_after(Duration::from_secs(1))
        .no_deadline()
        .seed(seed)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Faults

/// One kind of fault: which requests it may hit, how often, and the reply.
struct Fault {
    name: &'static str,
    percent: f64,
    applies: fn(&Recorded) -> bool,
    reply: Reply,
}

/// How many times each kind of fault was injected.
#[derive(Default)]
struct Injected(Mutex<BTreeMap<&'static str, usize>>, Mutex<Vec<(&'static str, String)>>);

impl Injected {
    fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }

    fn print(&self, label: &str) {
        let total = self.total();
        let counts = self.0.lock().unwrap();
        let shown: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        eprintln!("{label} faults injected: {total} ({})", shown.join(", "));
    }
}

/// Installs the faults on `server`: each request draws each fault that
/// applies to it, in order, with its own probability; the first that hits is
/// the reply (the server asks its rules in order, under its lock).
fn inject(server: &FaultServer, seed: u64, faults: Vec<Fault>) -> Arc<Injected> {
    let injected = Arc::new(Injected::default());
    let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(seed)));
    for Fault { name, percent, applies, reply } in faults {
        let (rng, injected) = (Arc::clone(&rng), Arc::clone(&injected));
        injected.0.lock().unwrap().insert(name, 0);
        let hit = move |r: &Recorded| {
            let hit = applies(r) && rng.lock().unwrap().f64() * 100.0 < percent;
            if hit {
                *injected.0.lock().unwrap().get_mut(name).unwrap() += 1;
                injected.1.lock().unwrap().push((name, format!("{} {}", r.method, r.path)));
            }
            hit
        };
        server.fail_matching(usize::MAX, hit, reply);
    }
    injected
}

fn any(_: &Recorded) -> bool {
    true
}

// ---------------------------------------------------------------------------
// Running operations, bounded, some cancelled

/// How one operation ended.
#[derive(Debug)]
enum Outcome {
    Ok,
    Failed(String),
    Cancelled,
}

/// Counts of outcomes per kind of operation.
#[derive(Default)]
struct Tally(BTreeMap<&'static str, [usize; 3]>, BTreeMap<String, usize>);

impl Tally {
    fn add(&mut self, kind: &'static str, outcome: &Outcome) {
        let row = self.0.entry(kind).or_default();
        match outcome {
            Outcome::Ok => row[0] += 1,
            Outcome::Failed(why) => {
                row[1] += 1;
                *self.1.entry(format!("{kind}: {why}")).or_default() += 1;
            }
            Outcome::Cancelled => row[2] += 1,
        }
    }

    fn sum(&self, column: usize) -> usize {
        self.0.values().map(|row| row[column]).sum()
    }

    fn print(&self, label: &str) {
        eprintln!(
            "{label} ops: {} ({} ok, {} failed, {} cancelled)",
            self.sum(0) + self.sum(1) + self.sum(2),
            self.sum(0),
            self.sum(1),
            self.sum(2)
        );
        for (kind, [ok, failed, cancelled]) in &self.0 {
            eprintln!(
                "  {kind:<22} {:>5} ops: {ok:>5} ok, {failed:>3} failed, {cancelled:>4} cancelled",
                ok + failed + cancelled
            );
        }
        for (why, n) in &self.1 {
            eprintln!("  failed: {n:>4} x {why}");
        }
    }
}

/// Runs `run(op)` for every op, at most `limit` at a time, each on a task of
/// its own; an op with a `cancel_after` is dropped after that long (a
/// caller's timeout). Gives back each op with its outcome.
async fn run_all<Op, F, Fut>(ops: Vec<Op>, limit: usize, run: F) -> Vec<(Op, Outcome)>
where
    Op: Planned + Clone + Send + 'static,
    F: Fn(Op) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit));
    let mut tasks = JoinSet::new();
    let mut done = Vec::with_capacity(ops.len());
    for op in ops {
        let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
        let work = run(op.clone());
        tasks.spawn(async move {
            let outcome = match op.cancel_after() {
                Some(after) => tokio::time::timeout(after, work).await.unwrap_or(Outcome::Cancelled),
                None => work.await,
            };
            drop(permit);
            (op, outcome)
        });
        while let Some(finished) = tasks.try_join_next() {
            done.push(finished.expect("an operation's task panicked"));
        }
    }
    while let Some(finished) = tasks.join_next().await {
        done.push(finished.expect("an operation's task panicked"));
    }
    done
}

trait Planned {
    fn cancel_after(&self) -> Option<Duration>;
}

// ---------------------------------------------------------------------------
// HTTP

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HttpKind {
    GetMiddleware,
    GetFetch,
    PutMiddleware,
    PutSend,
    PostMiddleware,
    PostSend,
    PostKeyedMiddleware,
    PostKeyedFetch,
}

impl HttpKind {
    const ALL: [HttpKind; 8] = [
        HttpKind::GetMiddleware,
        HttpKind::GetFetch,
        HttpKind::PutMiddleware,
        HttpKind::PutSend,
        HttpKind::PostMiddleware,
        HttpKind::PostSend,
        HttpKind::PostKeyedMiddleware,
        HttpKind::PostKeyedFetch,
    ];

    fn name(self) -> &'static str {
        match self {
            HttpKind::GetMiddleware => "GET middleware",
            HttpKind::GetFetch => "GET fetch_with",
            HttpKind::PutMiddleware => "PUT middleware",
            HttpKind::PutSend => "PUT send_with",
            HttpKind::PostMiddleware => "POST middleware",
            HttpKind::PostSend => "POST send_with",
            HttpKind::PostKeyedMiddleware => "POST+key middleware",
            HttpKind::PostKeyedFetch => "POST+key fetch_with",
        }
    }

    fn unkeyed_post(self) -> bool {
        matches!(self, HttpKind::PostMiddleware | HttpKind::PostSend)
    }

    fn keyed_post(self) -> bool {
        matches!(self, HttpKind::PostKeyedMiddleware | HttpKind::PostKeyedFetch)
    }

    fn writes(self) -> bool {
        !matches!(self, HttpKind::GetMiddleware | HttpKind::GetFetch)
    }
}

#[derive(Debug, Clone)]
struct HttpOp {
    id: usize,
    kind: HttpKind,
    cancel_after: Option<Duration>,
}

impl Planned for HttpOp {
    fn cancel_after(&self) -> Option<Duration> {
        self.cancel_after
    }
}

impl HttpOp {
    fn path(&self) -> String {
        format!("/items/{}", self.id)
    }

    /// The body a PUT or POST sends: names its operation, so the server's
    /// records tell which logical request each attempt belongs to.
    fn body(&self) -> String {
        format!("{} #{} {}", self.kind.name(), self.id, "x".repeat(self.id % 200))
    }
}

struct HttpBed {
    server: FaultServer,
    plain: reqwest::Client,
    middleware: ClientWithMiddleware,
    keyed_middleware: ClientWithMiddleware,
    policy: RetryPolicy,
    expected: bytes::Bytes,
}

/// Whether a response is the server's real answer, read whole.
fn judge_response(status: http::StatusCode, body: Result<bytes::Bytes, String>, expected: &[u8]) -> Outcome {
    if status != http::StatusCode::OK {
        return Outcome::Failed(format!("status {}", status.as_u16()));
    }
    match body {
        Ok(body) if body[..] == expected[..] => Outcome::Ok,
        Ok(body) => {
            panic!("a success with the wrong body ({} bytes: {:?}...)", body.len(), &body[..body.len().min(16)])
        }
        Err(e) => Outcome::Failed(format!("body: {e}")),
    }
}

/// A short name for how a retried call failed.
fn http_failure(e: &backstop::RetryError<HttpError>) -> String {
    let variant = format!("{e:?}");
    let variant = variant.split([' ', '{', '(']).next().unwrap_or("?").to_owned();
    let last = match e.last_error() {
        Some(HttpError::NotRetried { error, .. }) => format!("not retried: {}", last_kind(error)),
        Some(other) => last_kind(other),
        None => "none".into(),
    };
    format!("{variant}, last {last}")
}

fn last_kind(e: &HttpError) -> String {
    match e {
        HttpError::Status(r) => format!("status {}", r.status().as_u16()),
        HttpError::Transport(_) => "transport".into(),
        HttpError::TimedOut(_) => "timed out".into(),
        HttpError::Middleware(_) => "middleware".into(),
        HttpError::NotRetried { error, .. } => last_kind(error),
        _ => "other".into(),
    }
}

fn middleware_failure(e: &reqwest_middleware::Error) -> String {
    match e {
        reqwest_middleware::Error::Middleware(a) => match a.downcast_ref::<backstop::RetryError<HttpError>>() {
            Some(e) => http_failure(e),
            None => format!("middleware: {a}"),
        },
        reqwest_middleware::Error::Reqwest(_) => "reqwest".into(),
    }
}

async fn http_op(bed: Arc<HttpBed>, op: HttpOp) -> Outcome {
    let url = bed.server.url(&op.path());
    let expected = &bed.expected[..];
    let timeout = HTTP_ATTEMPT_TIMEOUT;
    let keyed = Options::new().idempotency_key(true);
    let via_middleware = |client: &ClientWithMiddleware| match op.kind {
        HttpKind::GetMiddleware => client.get(&url),
        HttpKind::PutMiddleware => client.put(&url).body(op.body()),
        _ => client.post(&url).body(op.body()),
    };
    let read = |r: reqwest::Response| async move {
        let status = r.status();
        (status, r.bytes().await.map_err(|e| if e.is_body() || e.is_decode() { "cut".into() } else { e.to_string() }))
    };
    match op.kind {
        HttpKind::GetMiddleware
        | HttpKind::PutMiddleware
        | HttpKind::PostMiddleware
        | HttpKind::PostKeyedMiddleware => {
            let client = if op.kind == HttpKind::PostKeyedMiddleware { &bed.keyed_middleware } else { &bed.middleware };
            match via_middleware(client).send().await {
                Ok(resp) => {
                    let (status, body) = read(resp).await;
                    judge_response(status, body, expected)
                }
                Err(e) => Outcome::Failed(middleware_failure(&e)),
            }
        }
        HttpKind::GetFetch | HttpKind::PostKeyedFetch => {
            let options = if op.kind == HttpKind::PostKeyedFetch { keyed } else { Options::new() };
            let make = || match op.kind {
                HttpKind::GetFetch => bed.plain.get(&url),
                _ => bed.plain.post(&url).body(op.body()),
            };
            match backstop_http::fetch_with(&bed.policy, options, make)
                .attempt_timeout(timeout, HttpError::TimedOut)
                .await
            {
                Ok(fetched) => judge_response(fetched.status, Ok(fetched.body), expected),
                Err(e) => Outcome::Failed(http_failure(&e)),
            }
        }
        HttpKind::PutSend | HttpKind::PostSend => {
            let make = || match op.kind {
                HttpKind::PutSend => bed.plain.put(&url).body(op.body()),
                _ => bed.plain.post(&url).body(op.body()),
            };
            match backstop_http::send_with(&bed.policy, Options::new(), make)
                .attempt_timeout(timeout, HttpError::TimedOut)
                .await
            {
                Ok(resp) => {
                    let (status, body) = read(resp).await;
                    judge_response(status, body, expected)
                }
                Err(e) => Outcome::Failed(http_failure(&e)),
            }
        }
    }
}

/// The HTTP half: returns how many operations it ran.
async fn http_soak(seed: u64) -> usize {
    let started = Instant::now();
    let server = FaultServer::start();
    let expected = http_body();
    server.otherwise(Reply::ok(expected.clone()));
    let injected = inject(
        &server,
        seed ^ 0x4854_5450,
        vec![
            Fault { name: "503", percent: 10.0, applies: any, reply: Reply::status(503) },
            Fault { name: "429 Retry-After: 0", percent: 8.0, applies: any, reply: Reply::retry_after(429, "0") },
            Fault { name: "429 Retry-After: 1", percent: 1.5, applies: any, reply: Reply::retry_after(429, "1") },
            Fault { name: "reset", percent: 8.0, applies: any, reply: Reply::reset() },
            Fault { name: "stall", percent: 4.0, applies: any, reply: Reply::stall(HTTP_STALL) },
            Fault { name: "half body", percent: 8.0, applies: any, reply: Reply::half_body(expected.clone()) },
        ],
    );
    let mut rng = fastrand::Rng::with_seed(seed);
    let ops: Vec<HttpOp> = (0..HTTP_OPS)
        .map(|id| HttpOp {
            id,
            kind: HttpKind::ALL[rng.usize(..HttpKind::ALL.len())],
            // About 10 % of the callers give up after 0-30 ms.
            cancel_after: (rng.u32(..100) < 10).then(|| Duration::from_micros(rng.u64(0..30_000))),
        })
        .collect();
    let policy = policy(seed);
    let middleware = |options: Options| {
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(RetryMiddleware::new(policy.clone()).options(options.attempt_timeout(HTTP_ATTEMPT_TIMEOUT)))
            .build()
    };
    let bed = Arc::new(HttpBed {
        plain: reqwest::Client::new(),
        middleware: middleware(Options::new()),
        keyed_middleware: middleware(Options::new().idempotency_key(true)),
        policy: policy.clone(),
        server,
        expected,
    });
    let outcomes = run_all(ops, HTTP_CONCURRENCY, |op| http_op(Arc::clone(&bed), op)).await;
    let elapsed = started.elapsed();

    // What the server saw, per logical request (its path).
    let requests = bed.server.requests();
    let mut seen: HashMap<String, Vec<&Recorded>> = HashMap::new();
    for r in &requests {
        seen.entry(r.path.clone()).or_default().push(r);
    }
    let mut tally = Tally::default();
    let (mut unkeyed_posts, mut unkeyed_max, mut retries, mut keys) = (0, 0, 0, HashSet::new());
    for (op, outcome) in &outcomes {
        tally.add(op.kind.name(), outcome);
        let attempts = seen.get(&op.path()).map(Vec::as_slice).unwrap_or_default();
        retries += attempts.len().saturating_sub(1);
        assert!(attempts.len() <= ATTEMPTS as usize, "{op:?} reached the server {} times", attempts.len());
        for r in attempts {
            let method = match op.kind {
                HttpKind::GetMiddleware | HttpKind::GetFetch => http::Method::GET,
                HttpKind::PutMiddleware | HttpKind::PutSend => http::Method::PUT,
                _ => http::Method::POST,
            };
            assert_eq!(r.method, method, "{op:?}");
            if op.kind.writes() {
                assert_eq!(r.body, op.body().as_bytes(), "{op:?}: the server got another body");
            }
        }
        if op.kind.unkeyed_post() {
            unkeyed_posts += 1;
            unkeyed_max = unkeyed_max.max(attempts.len());
            assert!(attempts.len() <= 1, "{op:?} (no idempotency key) reached the server {} times", attempts.len());
            assert!(attempts.iter().all(|r| r.header("idempotency-key").is_none()), "{op:?} got a key");
        }
        if op.kind.keyed_post() && !attempts.is_empty() {
            let key = attempts[0].header("idempotency-key").unwrap_or_else(|| panic!("{op:?} sent without a key"));
            assert!(attempts.iter().all(|r| r.header("idempotency-key") == Some(key)), "{op:?}: keys differ");
            assert!(keys.insert(key.to_owned()), "{op:?}: a key used by another request");
        }
        if op.kind.writes() && matches!(outcome, Outcome::Ok) {
            assert!(!attempts.is_empty(), "{op:?} reported written, never reached the server");
        }
    }
    assert_eq!(requests.len(), seen.values().map(Vec::len).sum::<usize>());
    let faults = injected.total();
    eprintln!(
        "HTTP: {} ops in {:.1}s, {} server hits, {retries} retries",
        outcomes.len(),
        elapsed.as_secs_f64(),
        requests.len()
    );
    tally.print("HTTP");
    injected.print("HTTP");
    eprintln!(
        "HTTP fault rate: {:.1}% of hits; at most once: {unkeyed_posts} POSTs without a key, each seen at most {unkeyed_max} time(s)",
        100.0 * faults as f64 / requests.len() as f64
    );
    assert!(faults * 100 >= requests.len() * 30, "only {faults} faults in {} hits", requests.len());
    assert!(tally.sum(0) >= outcomes.len() / 2, "most operations succeed through the faults");
    assert!(tally.sum(2) >= outcomes.len() / 20, "some callers were cancelled");
    outcomes.len()
}

// ---------------------------------------------------------------------------
// S3

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum S3Kind {
    Upload,
    Multipart,
    Download,
    DownloadToFile,
}

impl S3Kind {
    fn name(self) -> &'static str {
        match self {
            S3Kind::Upload => "upload (PutObject)",
            S3Kind::Multipart => "upload (multipart)",
            S3Kind::Download => "download",
            S3Kind::DownloadToFile => "download_to_file",
        }
    }
}

#[derive(Debug, Clone)]
struct S3Op {
    id: usize,
    kind: S3Kind,
    /// The object written (uploads) or read (downloads).
    key: String,
    cancel_after: Option<Duration>,
}

impl Planned for S3Op {
    fn cancel_after(&self) -> Option<Duration> {
        self.cancel_after
    }
}

/// The objects downloaded, uploaded before the faults start.
const SEEDED_OBJECTS: usize = 40;

/// The bytes of an object, by key: distinct per key, 1-24 KiB (a multipart
/// upload's: 1-4 KiB, over the 1 KiB threshold, so one part).
fn object_bytes(key: &str) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(
        key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)),
    );
    let len = if key.starts_with("mp-") { rng.usize(1025..4096) } else { rng.usize(1024..24 * 1024) };
    (0..len).map(|_| rng.u8(..)).collect()
}

struct S3Bed {
    client: Client,
    policy: RetryPolicy,
    dir: TempDir,
}

impl S3Bed {
    fn file_of(&self, op: &S3Op) -> PathBuf {
        self.dir.path(&format!("dl-{}.bin", op.id))
    }
}

fn s3_failure(e: &backstop::RetryError<backstop_aws::S3Error>) -> String {
    let variant = format!("{e:?}");
    let variant = variant.split([' ', '{', '(']).next().unwrap_or("?").to_owned();
    let code = e.last_error().and_then(|l| l.code().map(str::to_owned)).unwrap_or_else(|| "-".into());
    format!("{variant}, last code {code}")
}

async fn s3_op(bed: Arc<S3Bed>, op: S3Op) -> Outcome {
    let (client, policy) = (&bed.client, &bed.policy);
    let t = S3_ATTEMPT_TIMEOUT;
    let outcome = match op.kind {
        S3Kind::Upload | S3Kind::Multipart => {
            let upload =
                backstop_aws::upload(client, BUCKET, &op.key, object_bytes(&op.key)).policy(policy).attempt_timeout(t);
            let upload = if op.kind == S3Kind::Multipart { upload.multipart_threshold(1024) } else { upload };
            upload.await.map(|u| assert_eq!(u.parts, 1, "{op:?}"))
        }
        S3Kind::Download => {
            backstop_aws::download(client, BUCKET, &op.key).policy(policy).attempt_timeout(t).await.map(|got| {
                assert!(got[..] == object_bytes(&op.key)[..], "{op:?}: downloaded other bytes ({})", got.len())
            })
        }
        S3Kind::DownloadToFile => {
            let target = bed.file_of(&op);
            backstop_aws::download_to_file(client, BUCKET, &op.key, &target)
                .policy(policy)
                .attempt_timeout(t)
                .await
                .map(|n| {
                    assert_eq!(n as usize, object_bytes(&op.key).len(), "{op:?}");
                    assert!(std::fs::read(&target).unwrap() == object_bytes(&op.key), "{op:?}: the file differs");
                })
        }
    };
    match outcome {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::Failed(s3_failure(&e)),
    }
}

fn is_get(r: &Recorded) -> bool {
    r.method == http::Method::GET
}

/// Everything but the abort of a dropped upload, which is sent without a
/// per-attempt timeout (bounded by `ABORT_TIMEOUT` alone): the testkit's
/// stall answers `200 late` without forwarding, which that abort would take
/// for an answer, whereas a real S3 stalling would still abort.
fn not_abort(r: &Recorded) -> bool {
    !is_abort(r)
}

/// The S3 half: returns how many operations it ran.
async fn s3_soak(seed: u64) -> usize {
    let started = Instant::now();
    let server = LocalS3::start();
    let client = client_for(&server.endpoint());
    client.create_bucket().bucket(BUCKET).send().await.expect("create the test bucket");
    let seeded: Vec<String> = (0..SEEDED_OBJECTS).map(|i| format!("seed-{i}.bin")).collect();
    for key in &seeded {
        backstop_aws::upload(&client, BUCKET, key, object_bytes(key)).await.expect("seed an object");
    }
    let setup_hits = server.faults.hits();
    let injected = inject(
        &server.faults,
        seed ^ 0x5333,
        vec![
            Fault { name: "503 SlowDown", percent: 12.0, applies: any, reply: Reply::s3_error(503, "SlowDown") },
            Fault {
                name: "500 InternalError",
                percent: 8.0,
                applies: any,
                reply: Reply::s3_error(500, "InternalError"),
            },
            Fault { name: "reset", percent: 8.0, applies: any, reply: Reply::reset() },
            Fault { name: "stall", percent: 3.0, applies: not_abort, reply: Reply::stall(S3_STALL) },
            Fault { name: "cut body (GET)", percent: 15.0, applies: is_get, reply: Reply::ForwardHalfBody },
        ],
    );

    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5333);
    let multipart_every = S3_OPS / MULTIPART_OPS;
    let ops: Vec<S3Op> = (0..S3_OPS)
        .map(|id| {
            let kind = if id % multipart_every == multipart_every / 2 {
                S3Kind::Multipart
            } else {
                match rng.u32(..100) {
                    0..45 => S3Kind::Upload,
                    45..75 => S3Kind::Download,
                    _ => S3Kind::DownloadToFile,
                }
            };
            let key = match kind {
                S3Kind::Upload => format!("put-{id}.bin"),
                S3Kind::Multipart => format!("mp-{id}.bin"),
                _ => seeded[rng.usize(..seeded.len())].clone(),
            };
            // About 10 % of the callers give up after 0-40 ms; a quarter of the multipart uploads.
            let cancel_percent = if kind == S3Kind::Multipart { 25 } else { 10 };
            let cancel_after = (rng.u32(..100) < cancel_percent).then(|| Duration::from_micros(rng.u64(0..40_000)));
            S3Op { id, kind, key, cancel_after }
        })
        .collect();
    let bed = Arc::new(S3Bed { client, policy: policy(seed ^ 0x5333), dir: TempDir::new() });
    let outcomes = run_all(ops, S3_CONCURRENCY, |op| s3_op(Arc::clone(&bed), op)).await;
    let elapsed = started.elapsed();

    // The aborts of dropped multipart uploads run in the background, bounded by ABORT_TIMEOUT.
    let settle = Instant::now();
    let limit = backstop_aws::ABORT_TIMEOUT + Duration::from_secs(5);
    let settled =
        eventually(limit, || billed_leftovers(&server.pending_uploads(), &server.faults.requests()).is_empty()).await;
    let settle = settle.elapsed();
    let requests = server.faults.requests();
    let hits = requests.len() - setup_hits;
    let mut tally = Tally::default();
    let mut by_method: BTreeMap<String, usize> = BTreeMap::new();
    for r in &requests[setup_hits..] {
        let what = if is_abort(r) { "DELETE (abort)".into() } else { r.method.to_string() };
        *by_method.entry(what).or_default() += 1;
    }
    let written: HashMap<&str, &Outcome> = outcomes
        .iter()
        .filter(|(op, _)| matches!(op.kind, S3Kind::Upload | S3Kind::Multipart))
        .map(|(op, outcome)| (op.key.as_str(), outcome))
        .collect();
    let (mut present, mut ok_writes) = (0, 0);
    for (op, outcome) in &outcomes {
        tally.add(op.kind.name(), outcome);
        match op.kind {
            S3Kind::Upload | S3Kind::Multipart => {
                let stored = std::fs::read(server.object_path(BUCKET, &op.key)).ok();
                if matches!(outcome, Outcome::Ok) {
                    ok_writes += 1;
                    assert!(stored.is_some(), "{op:?} reported uploaded, but the object is missing");
                }
                if let Some(stored) = stored {
                    present += 1;
                    assert!(stored == object_bytes(&op.key), "{op:?}: the object holds other bytes ({})", stored.len());
                }
            }
            S3Kind::DownloadToFile if matches!(outcome, Outcome::Ok) => {
                assert!(bed.file_of(op).exists(), "{op:?} reported downloaded, no file")
            }
            _ => {}
        }
    }
    // Nothing in the bucket but what was meant to be there, whole.
    for entry in std::fs::read_dir(server.root.join(BUCKET)).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(name.starts_with("seed-") || written.contains_key(name.as_str()), "an unexpected object {name}");
        assert!(
            std::fs::read(server.object_path(BUCKET, &name)).unwrap() == object_bytes(&name),
            "{name} is not whole"
        );
    }
    // No temporary file of a download, and every file downloaded is whole.
    let dl_files = bed.dir.files();
    let temps: Vec<&String> = dl_files.iter().filter(|f| f.contains(".backstop-") || f.ends_with(".part")).collect();
    assert!(temps.is_empty(), "temporary download files left: {temps:?}");
    let by_id: HashMap<String, &S3Op> = outcomes.iter().map(|(op, _)| (format!("dl-{}.bin", op.id), op)).collect();
    for name in &dl_files {
        let op = by_id.get(name).unwrap_or_else(|| panic!("an unexpected file {name}"));
        assert!(std::fs::read(bed.dir.path(name)).unwrap() == object_bytes(&op.key), "{name} is not whole");
    }
    // The server's own temporary files are not checked: s3s-fs 0.14.1 leaks
    // one (`.tmp.N.internal.part`) when its handler is dropped while
    // `File::create` is on tokio's blocking pool (a client that hung up
    // mid-request), a matter of the test server, not of the client. Counted.
    let server_temps = std::fs::read_dir(&server.root)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".tmp."))
        .count();

    let faults = injected.total();
    eprintln!(
        "S3: {} ops in {:.1}s (+{:.1}s for the aborts to settle), {hits} server hits {by_method:?}",
        outcomes.len(),
        elapsed.as_secs_f64(),
        settle.as_secs_f64()
    );
    tally.print("S3");
    injected.print("S3");
    eprintln!(
        "S3 fault rate: {:.1}% of hits; {ok_writes} uploads reported ok, {present} objects present and whole; {} download files whole, 0 temporary; pending multipart uploads: {}; s3s-fs temporary files: {server_temps}",
        100.0 * faults as f64 / hits as f64,
        dl_files.len(),
        server.pending_uploads().iter().filter(|f| f.ends_with(".json")).count(),
    );
    if !settled {
        for file in server.pending_uploads().iter().filter(|f| f.ends_with(".json")) {
            let id = file.trim_start_matches(".upload-").trim_end_matches(".json");
            let seen: Vec<String> =
                requests.iter().filter(|r| r.path.contains(id)).map(|r| format!("{} {}", r.method, r.path)).collect();
            let faulted: Vec<_> = injected.1.lock().unwrap().iter().filter(|(_, p)| p.contains(id)).cloned().collect();
            eprintln!("pending {id}: requests {seen:#?}\nfaults {faulted:#?}");
        }
    }
    assert!(
        settled,
        "multipart uploads left pending: {:?}",
        billed_leftovers(&server.pending_uploads(), &server.faults.requests())
    );
    assert!(faults * 100 >= hits * 30, "only {faults} faults in {hits} hits");
    assert!(tally.sum(0) >= outcomes.len() / 2, "most operations succeed through the faults");
    assert!(tally.sum(2) >= outcomes.len() / 20, "some callers were cancelled");
    let n = outcomes.len();
    drop(bed); // the client: its connections' tasks end with it
    n
}

// ---------------------------------------------------------------------------

#[test]
fn chaos_soak() {
    let seed = seed();
    eprintln!("chaos soak, seed {seed} (BACKSTOP_SOAK_SEED={seed} to repeat)");
    // A runtime of our own, so its task count is the clients' alone: the
    // servers run on runtimes of their own, in threads of their own.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let started = Instant::now();
    let baseline = runtime.metrics().num_alive_tasks();
    let (http_ops, s3_ops) = runtime.block_on(async { tokio::join!(http_soak(seed), s3_soak(seed)) });
    let metrics = runtime.metrics();
    let tasks_after = runtime.block_on(async {
        // Every client is dropped by now; its pooled connections' tasks end with it.
        let drained = eventually(Duration::from_secs(10), || metrics.num_alive_tasks() <= baseline).await;
        (drained, metrics.num_alive_tasks())
    });
    eprintln!(
        "total: {} ops in {:.1}s; tasks alive: {} at the start, {} at the end (no child processes are started)",
        http_ops + s3_ops,
        started.elapsed().as_secs_f64(),
        baseline,
        tasks_after.1
    );
    assert!(http_ops + s3_ops >= 10_000);
    assert!(tasks_after.0, "{} tasks still alive, {baseline} at the start", tasks_after.1);
}
