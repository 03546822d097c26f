//! The attribute form of [backstop](https://docs.rs/backstop): put
//! `#[backstop::retry]` on a function and every call to it is retried with
//! backoff and jitter, as a Python `@retry` decorator would. Use it through
//! `backstop` (feature `macros`, on by default), `backstop_aws` (`s3_retry`)
//! or `backstop_http` (`api_retry`), not from this crate.
//!
//! ```no_run
//! use backstop_http::HttpError;
//!
//! #[backstop::retry(max_attempts = 3, base = "500ms", max = "10s", jitter = "additive:500ms")]
//! async fn fetch_weather_data(client: &reqwest::Client, url: &str) -> Result<String, HttpError> {
//!     let response = backstop_http::check(client.get(url).send().await?)?;
//!     Ok(response.text().await?)
//! }
//! ```
//!
//! The arguments, the rules for the function's arguments and errors, and
//! what a failure looks like are documented on [`retry`].

mod args;
mod expand;
mod inputs;
mod krate;

use proc_macro::TokenStream;

use expand::Entry;

/// Retries a function: the body runs once per attempt, with backoff between
/// attempts, and the caller sees the function's own signature.
///
/// ```no_run
/// use std::io;
/// use std::path::Path;
/// use std::sync::LazyLock;
///
/// use backstop::{CircuitBreaker, RetryBudget, RetryPolicy, Verdict};
/// use backstop_http::HttpError;
///
/// #[backstop::retry]                                   // 5 attempts, 1 s doubling to 30 s, +U[0, 1 s]
/// fn load(path: &Path) -> io::Result<Vec<u8>> {
///     std::fs::read(path)
/// }
///
/// fn classify(e: &io::Error) -> Verdict {
///     match e.kind() {
///         io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => Verdict::Fail,
///         _ => Verdict::Retry,
///     }
/// }
///
/// #[backstop::retry(preset = s3_download, when = classify)]
/// fn read_mounted(path: &Path) -> io::Result<String> {
///     std::fs::read_to_string(path)
/// }
///
/// static WEATHER: LazyLock<CircuitBreaker> = LazyLock::new(|| CircuitBreaker::builder("weather").build());
/// static BUDGET: LazyLock<RetryBudget> = LazyLock::new(RetryBudget::default);
///
/// #[backstop::retry(max_attempts = 3, base = "500ms", max = "10s", jitter = "additive:500ms",
///                   deadline = "30s", breaker = WEATHER, budget = BUDGET, name = "fetch",
///                   when = backstop_http::classify)]
/// async fn fetch_weather_data(client: &reqwest::Client, url: &str) -> Result<String, HttpError> {
///     Ok(backstop_http::check(client.get(url).send().await?)?.text().await?)
/// }
///
/// fn my_policy() -> RetryPolicy {
///     RetryPolicy::builder().max_attempts(2).build().expect("a valid policy")
/// }
///
/// #[backstop::retry(policy = my_policy())]             // any expression giving a RetryPolicy
/// fn ping() -> io::Result<()> {
///     Ok(())
/// }
/// ```
///
/// # Arguments
///
/// | argument | value | default |
/// |---|---|---|
/// | `preset` | `default`, `s3_upload`, `s3_download` or `api_call` | `default` (5 attempts, 1 s doubling to 30 s, `+U[0, 1 s]`) |
/// | `max_attempts` | attempts counting the first, ≥ 1 | the preset's |
/// | `base`, `max` | the first delay and the cap on every delay, as `"500ms"`, `"30s"`, `"1m30s"`; `base ≤ max` | the preset's |
/// | `factor` | growth per retry, a finite `f64` ≥ 1.0 | `2.0` |
/// | `jitter` | `"none"`, `"full"`, `"equal"`, `"decorrelated"`, `"additive:1s"`, `"proportional:0.25"` | the preset's |
/// | `deadline` | the whole run's deadline, > 0 | none |
/// | `max_retry_after` | the longest server `Retry-After` to honour | `"60s"` |
/// | `seed` | a `u64` that makes the jitter reproducible (tests) | none |
/// | `policy` | any expression giving a `RetryPolicy` or a reference to one, instead of the above | |
/// | `name` | the run's name in logs, metrics and errors | the function's name |
/// | `when` | a classifier, `Fn(&E) -> Verdict` | every error is retried |
/// | `retry_if` | a predicate, `Fn(&E) -> bool`: true retries | |
/// | `breaker`, `budget`, `throttle`, `pacer`, `limit`, `guards` | an expression naming a shared guard: a `static`, a `LazyLock`, `self.breaker` (`limit`: a `backstop::limit::ConcurrencyLimit`) | none |
/// | `hedge` | an expression naming a shared `backstop::hedge::Hedge`: each attempt of an async function is hedged (the call is sent again past the hedge's delay; the first success wins) | none |
/// | `clock` | an expression naming a clock (a `ManualClock` in tests) | the system clock, or tokio's |
/// | `idempotent` | `true`: `api_retry` may retry a function that sends a POST or a PATCH | `false` |
/// | `crate` | where the crate is, when it is not a dependency of the package (it comes through a crate of yours): the path of `backstop` for `retry`, of `backstop_aws` for `s3_retry`, of `backstop_http` for `api_retry` | found in `Cargo.toml`: `backstop`, or `backstop_http::backstop` / `backstop_aws::backstop` with only those, renames followed |
///
/// Settings are checked while compiling, with the texts of
/// `RetryPolicyBuilder::build`'s errors: `max_attempts = 0` fails with
/// "invalid retry policy: max_attempts is 0; allowed: 1 or more (it counts
/// the first call)" pointing at the `0`, and a bad duration or jitter points
/// at its string.
///
/// # The function
///
/// - Sync or `async`, free or a method on `&self` (or `&mut self`, when
///   sync), generic, with borrowed or `impl Trait` arguments. It must return
///   `Result<T, E>` (or an alias of it).
/// - The body runs once per attempt, as if called again with the same
///   arguments: references are shared; an argument taken by value is cloned
///   for each attempt, so it must be `Clone` (the compile error says so at
///   the argument; take it by reference otherwise).
/// - On failure the function returns the last attempt's error, and the log
///   lines and metrics name the run (`Retrying upload_to_s3 in 1.0 seconds (attempt 1/5): SlowDown`).
///   A breaker, throttle or pacer, or a deadline passing during an async
///   attempt (`deadline`, or one an async function's `policy` may have), can
///   stop the run before any attempt returns an error: `E` must then
///   implement `From<backstop::retry::Stopped>` (`io::Error`,
///   `Box<dyn Error + Send + Sync>` and `anyhow::Error` do). A `budget` only
///   refuses retries, so the run still ends with the last error.
/// - In a `&mut self` method the attempt borrows `self` mutably while the run
///   lasts. `policy`, the guards and the `clock` may still read `self`: they
///   are cloned before the run (a guard's clone shares its state). `when`,
///   `retry_if` and `name` may read fields the body does not touch.
/// - Settings (`max_attempts` .. `seed`) are constants: literals or `const`
///   items, not `Self::..` or the function's generic parameters; `name` is a
///   `&'static str`. Arguments taken by value are cloned for every attempt,
///   the first included. A second retry attribute on the same function is an
///   error (the attempts would multiply).
#[proc_macro_attribute]
pub fn retry(attr: TokenStream, item: TokenStream) -> TokenStream {
    let entry = Entry { preset: "DEFAULT", holders: krate::CORE, backstop: "", failure: None, http: false };
    expand::expand(attr.into(), item.into(), &entry).into()
}

/// [`retry`] for S3 calls, through `backstop_aws`: preset `s3_upload`
/// (5 attempts, 1 s doubling to 30 s, `+U[0, 1 s]`) and S3's classifier
/// (`SlowDown` and 5xx retried with S3's hints, `AccessDenied` and the like
/// returned at once), for functions that return the SDK's `SdkError` or
/// `backstop_aws::S3Error`. Every argument of [`retry`] works.
///
/// Give such a function a client with the SDK's own retries off,
/// `backstop_aws::client(&config)`: a default client retries each request 3
/// times itself, under each of backstop's attempts.
///
/// ```no_run
/// use aws_sdk_s3::Client;
/// use aws_sdk_s3::error::SdkError;
/// use aws_sdk_s3::operation::put_object::PutObjectError;
///
/// #[backstop_aws::s3_retry]
/// async fn upload_to_s3(client: &Client, bucket: &str, key: &str, body: &[u8]) -> Result<(), SdkError<PutObjectError>> {
///     client.put_object().bucket(bucket).key(key).body(body.to_vec().into()).send().await?;
///     Ok(())
/// }
///
/// // `config`: aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
/// async fn upload_run(config: &aws_types::SdkConfig, rows: &[u8]) -> Result<(), SdkError<PutObjectError>> {
///     let client = backstop_aws::client(config);
///     upload_to_s3(&client, "bike-data", "processed/run-42.csv", rows).await
/// }
/// ```
#[proc_macro_attribute]
pub fn s3_retry(attr: TokenStream, item: TokenStream) -> TokenStream {
    let entry = Entry {
        preset: "S3_UPLOAD",
        holders: krate::AWS,
        backstop: "::backstop",
        failure: Some("S3Failure"),
        http: false,
    };
    expand::expand(attr.into(), item.into(), &entry).into()
}

/// [`retry`] for HTTP API calls, through `backstop_http`: preset `api_call`
/// (3 attempts, 0.5 s doubling to 10 s, `+U[0, 0.5 s]`) and
/// `backstop_http::classify` (429 and 5xx retried, `Retry-After` honoured up
/// to 60 s, other 4xx returned at once), for functions that return
/// `backstop_http::HttpError`. Turn an error status into one with
/// `backstop_http::check(response)?`, which keeps the response's status and
/// headers (`error_for_status()` drops `Retry-After`). Every argument of
/// [`retry`] works.
///
/// The whole function is retried, so a request in it is sent again after a
/// 5xx or a reset, when the server may already have acted on it. A function
/// whose body sends a POST or a PATCH (`.post(..)`, `Method::POST`) is
/// therefore a compile error unless it says `idempotent = true` (its requests
/// carry an idempotency key the server honours); otherwise send such a
/// request with `backstop_http::send`, which sends a POST once unless it has
/// an `Idempotency-Key`. A request built elsewhere is not seen: the rule is
/// yours to keep there.
///
/// ```no_run
/// use backstop_http::HttpError;
///
/// #[backstop_http::api_retry]
/// async fn fetch_weather_data(client: &reqwest::Client, url: &str) -> Result<String, HttpError> {
///     let response = backstop_http::check(client.get(url).send().await?)?;
///     Ok(response.text().await?)
/// }
/// ```
#[proc_macro_attribute]
pub fn api_retry(attr: TokenStream, item: TokenStream) -> TokenStream {
    let entry = Entry {
        preset: "API_CALL",
        holders: krate::HTTP,
        backstop: "::backstop",
        failure: Some("HttpFailure"),
        http: true,
    };
    expand::expand(attr.into(), item.into(), &entry).into()
}
