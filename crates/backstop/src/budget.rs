//! No retry storms: a [`RetryBudget`] caps retries across every caller that
//! shares it.
//!
//! Retries multiply load exactly when a downstream is weakest: five attempts
//! at each layer of a three-layer stack is 125 calls per request. A budget is
//! shared by many runs (every call to one downstream, say) and grants a retry
//! only while retries stay a small part of the traffic. Two kinds:
//!
//! - **Token bucket** (the AWS SDKs' standard retry quota): a bucket of 500
//!   tokens; a retry costs 5 (10 after a timeout), a success puts 1 back (a
//!   successful retry puts its cost back). With no successes, 500 tokens allow
//!   exactly 100 retries, then none until successes refill it.
//! - **Ratio** (Finagle's and tower's): retries may add at most `ratio`
//!   (20 %) of the requests of the last `window` (10 s), plus a floor of
//!   `min_per_sec` (10) retries a second so a quiet client can still retry.
//!
//! ```
//! use backstop::{presets, ManualClock, RetryBudget, RetryError};
//!
//! let budget = RetryBudget::token_bucket().capacity(10).build()?; // 2 retries of cost 5
//! let clock = ManualClock::new();
//! let err = presets::s3_upload()
//!     .retry(|| Err::<(), _>("503"))
//!     .budget(&budget)
//!     .clock(&clock)
//!     .call()
//!     .unwrap_err();
//! assert!(matches!(err, RetryError::BudgetExhausted { attempts: 3, .. }));
//! # Ok::<(), backstop::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc as StdArc;
use std::time::{Duration, Instant};

use crate::clock::{Clock, SystemClock};
use crate::event::emit;
use crate::policy::ConfigError;
use crate::sliding::SlidingCounts;
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex, Ordering, lock};
use crate::verdict::Verdict;

/// Tokens are kept in thousandths, so refill rates can be fractional.
const MILLI: u64 = 1000;

/// A retry budget shared by any number of runs and threads; see the
/// [module docs](self). `Clone` shares the budget.
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    name: StdArc<str>,
    kind: Kind,
    clock: StdArc<dyn Clock>,
    origin: Instant,
    denied: AtomicU64,
    /// Set by a refusal, cleared by a grant: the WARN is logged once per dry spell.
    dry: AtomicBool,
}

enum Kind {
    Bucket(TokenBucket),
    Ratio(Ratio),
}

struct TokenBucket {
    /// Tokens available, in thousandths.
    milli: AtomicU64,
    capacity: u64,
    retry_cost: u32,
    timeout_cost: u32,
    success_refund: u32,
    /// Tokens per second added back with time (0: none), and when last added.
    refill_per_sec: f64,
    last_refill: Mutex<u64>,
}

struct Ratio {
    /// Counters: requests (first attempts), retries. A refund takes its
    /// retry back out of the slice it was counted in, if that is still in
    /// the window (a refund never cancels a retry the window already forgot).
    counts: SlidingCounts<2>,
    ratio: f64,
    /// The floor over the whole window: `min_per_sec · window`.
    floor: f64,
    withdraw: Mutex<()>,
}

/// A retry granted by [`RetryBudget::try_withdraw`]: how much it cost, to
/// [`refund`](RetryBudget::refund) it if the retry never happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a withdrawal not used should be refunded"]
pub struct Withdrawal {
    cost: u32,
    /// When it was granted, on the budget's clock (ratio budgets refund it
    /// from the slice of time it was counted in).
    at_nanos: u64,
}

impl Withdrawal {
    /// The cost: tokens for a token bucket, 1 for a ratio budget.
    pub fn cost(&self) -> u32 {
        self.cost
    }
}

impl RetryBudget {
    /// A token bucket with the AWS SDKs' standard numbers: capacity 500, a
    /// retry costs 5, a retry after a timeout 10, a success refunds 1, no refill.
    pub fn token_bucket() -> TokenBucketBuilder {
        TokenBucketBuilder {
            common: Common::new("retry_budget"),
            capacity: 500,
            retry_cost: 5,
            timeout_cost: 10,
            success_refund: 1,
            refill_per_sec: 0.0,
        }
    }

    /// A ratio budget with Finagle's numbers: retries up to 20 % of the
    /// requests of the last 10 s, and at least 10 retries a second.
    pub fn ratio() -> RatioBuilder {
        RatioBuilder {
            common: Common::new("retry_budget"),
            ratio: 0.2,
            window: Duration::from_secs(10),
            min_per_sec: 10.0,
        }
    }

    fn now_nanos(&self) -> u64 {
        let since = self.inner.clock.now().saturating_duration_since(self.inner.origin);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    /// The budget's name, in logs and metrics.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Counts one request (a run's first attempt). Ratio budgets grow with
    /// requests; token buckets ignore this.
    #[inline]
    pub fn record_request(&self) {
        if let Kind::Ratio(r) = &self.inner.kind {
            r.counts.add(self.now_nanos(), [1, 0]);
        }
    }

    /// Asks for one retry after a failure with this verdict (a `Timeout`
    /// costs a token bucket's `timeout_cost`, anything else its `retry_cost`).
    /// `None` when the budget is spent: do not retry.
    pub fn try_withdraw(&self, verdict: Verdict) -> Option<Withdrawal> {
        let granted = match &self.inner.kind {
            Kind::Bucket(b) => {
                let cost = if verdict == Verdict::Timeout { b.timeout_cost } else { b.retry_cost };
                self.refill(b);
                b.take(u64::from(cost) * MILLI).then_some(Withdrawal { cost, at_nanos: 0 })
            }
            Kind::Ratio(r) => {
                let _one_at_a_time = lock(&r.withdraw);
                let now = self.now_nanos();
                let (requests, retries) = r.totals(now);
                let allowed = r.floor + r.ratio * f64::from(requests);
                (f64::from(retries) + 1.0 <= allowed).then(|| {
                    r.counts.add(now, [0, 1]);
                    Withdrawal { cost: 1, at_nanos: now }
                })
            }
        };
        match granted {
            Some(_) => {
                if self.inner.dry.load(Ordering::Relaxed) {
                    self.inner.dry.store(false, Ordering::Relaxed);
                }
                emit::budget_level(&self.inner.name, self.level());
            }
            None => {
                self.inner.denied.fetch_add(1, Ordering::Relaxed);
                let ran_dry = !self.inner.dry.swap(true, Ordering::Relaxed);
                emit::budget_denied(&self.inner.name, self.level(), ran_dry);
            }
        }
        granted
    }

    /// Gives back a withdrawal whose retry never happened (the run was
    /// cancelled during its sleep).
    pub fn refund(&self, withdrawal: Withdrawal) {
        match &self.inner.kind {
            Kind::Bucket(b) => b.put(u64::from(withdrawal.cost) * MILLI),
            Kind::Ratio(r) => r.counts.sub(withdrawal.at_nanos, [0, 1]),
        }
    }

    /// Records a success: a token bucket gets back the cost of the retry that
    /// succeeded (`Some`), or its `success_refund` for a first-attempt success
    /// (`None`). Ratio budgets ignore it. A full bucket is not written.
    #[inline]
    pub fn record_success(&self, retry: Option<Withdrawal>) {
        if let Kind::Bucket(b) = &self.inner.kind {
            let refund = retry.map_or(b.success_refund, |w| w.cost);
            b.put(u64::from(refund) * MILLI);
        }
    }

    /// What is left: tokens for a token bucket, retries available now for a
    /// ratio budget.
    pub fn level(&self) -> f64 {
        match &self.inner.kind {
            Kind::Bucket(b) => b.milli.load(Ordering::Acquire) as f64 / MILLI as f64,
            Kind::Ratio(r) => {
                let (requests, retries) = r.totals(self.now_nanos());
                (r.floor + r.ratio * f64::from(requests) - f64::from(retries)).max(0.0)
            }
        }
    }

    /// How many retries this budget has refused.
    pub fn denied(&self) -> u64 {
        self.inner.denied.load(Ordering::Relaxed)
    }

    fn refill(&self, b: &TokenBucket) {
        if b.refill_per_sec <= 0.0 {
            return;
        }
        let now = self.now_nanos();
        let mut last = lock(&b.last_refill);
        let gained = (now.saturating_sub(*last) as f64 / 1e9 * b.refill_per_sec * MILLI as f64) as u64;
        if gained > 0 {
            b.put(gained);
            *last = now;
        }
    }
}

impl Ratio {
    /// Requests and (unrefunded) retries in the window ending at `now`.
    fn totals(&self, now: u64) -> (u32, u32) {
        let [requests, retries] = self.counts.totals(now);
        (requests, retries)
    }
}

impl TokenBucket {
    /// Takes `milli` if there is that much.
    fn take(&self, milli: u64) -> bool {
        self.milli.fetch_update(Ordering::AcqRel, Ordering::Acquire, |have| have.checked_sub(milli)).is_ok()
    }

    /// Adds `milli`, up to capacity; writes nothing when already full.
    #[inline]
    fn put(&self, milli: u64) {
        if self.milli.load(Ordering::Relaxed) >= self.capacity {
            return;
        }
        let _ = self.milli.fetch_update(Ordering::AcqRel, Ordering::Acquire, |have| {
            (have < self.capacity).then(|| have.saturating_add(milli).min(self.capacity))
        });
    }
}

impl Default for RetryBudget {
    /// The AWS-standard token bucket (see [`RetryBudget::token_bucket`]).
    fn default() -> Self {
        Self::token_bucket().build().expect("the default token bucket is valid")
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner.kind {
            Kind::Bucket(_) => "token_bucket",
            Kind::Ratio(_) => "ratio",
        };
        f.debug_struct("RetryBudget")
            .field("name", &self.name())
            .field("kind", &kind)
            .field("level", &self.level())
            .finish()
    }
}

/// Settings both budget builders share.
struct Common {
    name: StdArc<str>,
    clock: StdArc<dyn Clock>,
}

impl Common {
    fn new(name: &str) -> Self {
        Self { name: name.into(), clock: StdArc::new(SystemClock) }
    }

    fn build(self, kind: Kind) -> RetryBudget {
        let origin = self.clock.now();
        RetryBudget {
            inner: Arc::new(Inner {
                name: self.name,
                kind,
                clock: self.clock,
                origin,
                denied: AtomicU64::new(0),
                dry: AtomicBool::new(false),
            }),
        }
    }
}

fn invalid(field: &'static str, problem: String, allowed: &'static str) -> ConfigError {
    ConfigError::of("retry budget", field, problem, allowed)
}

/// Builds a token-bucket [`RetryBudget`]; see [`RetryBudget::token_bucket`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct TokenBucketBuilder {
    common: Common,
    capacity: u32,
    retry_cost: u32,
    timeout_cost: u32,
    success_refund: u32,
    refill_per_sec: f64,
}

impl TokenBucketBuilder {
    /// Names the budget in logs and metrics.
    pub fn name(mut self, name: &str) -> Self {
        self.common.name = name.into();
        self
    }

    /// The clock for refills (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.common.clock = StdArc::new(clock);
        self
    }

    /// Tokens when full, and at the start (default 500; allowed: ≥ 1).
    pub fn capacity(mut self, tokens: u32) -> Self {
        self.capacity = tokens;
        self
    }

    /// Tokens a retry costs (default 5; allowed: 1 ..= capacity).
    pub fn retry_cost(mut self, tokens: u32) -> Self {
        self.retry_cost = tokens;
        self
    }

    /// Tokens a retry after a [`Verdict::Timeout`] costs (default 10; allowed:
    /// 1 ..= capacity).
    pub fn timeout_cost(mut self, tokens: u32) -> Self {
        self.timeout_cost = tokens;
        self
    }

    /// Tokens a first-attempt success puts back (default 1; 0 allowed).
    pub fn success_refund(mut self, tokens: u32) -> Self {
        self.success_refund = tokens;
        self
    }

    /// Tokens added back per second whatever happens (default 0: only
    /// successes refill; allowed: a finite number ≥ 0).
    pub fn refill_per_sec(mut self, tokens: f64) -> Self {
        self.refill_per_sec = tokens;
        self
    }

    /// Checks the settings and makes the budget, full.
    pub fn build(self) -> Result<RetryBudget, ConfigError> {
        if self.capacity == 0 {
            return Err(invalid("capacity", "is 0".into(), "1 or more tokens"));
        }
        for (field, cost) in [("retry_cost", self.retry_cost), ("timeout_cost", self.timeout_cost)] {
            if cost == 0 || cost > self.capacity {
                return Err(invalid(field, format!("is {cost} with capacity {}", self.capacity), "1 ..= capacity"));
            }
        }
        if !(self.refill_per_sec.is_finite() && self.refill_per_sec >= 0.0) {
            return Err(invalid("refill_per_sec", format!("is {}", self.refill_per_sec), "a finite number ≥ 0"));
        }
        let capacity = u64::from(self.capacity) * MILLI;
        Ok(self.common.build(Kind::Bucket(TokenBucket {
            milli: AtomicU64::new(capacity),
            capacity,
            retry_cost: self.retry_cost,
            timeout_cost: self.timeout_cost,
            success_refund: self.success_refund,
            refill_per_sec: self.refill_per_sec,
            last_refill: Mutex::new(0),
        })))
    }
}

/// Builds a ratio [`RetryBudget`]; see [`RetryBudget::ratio`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct RatioBuilder {
    common: Common,
    ratio: f64,
    window: Duration,
    min_per_sec: f64,
}

impl RatioBuilder {
    /// Names the budget in logs and metrics.
    pub fn name(mut self, name: &str) -> Self {
        self.common.name = name.into();
        self
    }

    /// The clock for the window (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.common.clock = StdArc::new(clock);
        self
    }

    /// Retries allowed per request in the window (default 0.2; allowed: 0 ..= 1000).
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// How far back requests and retries count (default 10 s; allowed: 1 s ..= 1 h).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Retries a second allowed whatever the request rate (default 10;
    /// allowed: a finite number ≥ 0).
    pub fn min_per_sec(mut self, retries: f64) -> Self {
        self.min_per_sec = retries;
        self
    }

    /// Checks the settings and makes the budget.
    pub fn build(self) -> Result<RetryBudget, ConfigError> {
        if !(self.ratio.is_finite() && (0.0..=1000.0).contains(&self.ratio)) {
            return Err(invalid("ratio", format!("is {}", self.ratio), "0 ..= 1000 (0.2: retries add at most 20 %)"));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.window) {
            return Err(invalid("window", format!("is {:?}", self.window), "1s ..= 1h"));
        }
        if !(self.min_per_sec.is_finite() && self.min_per_sec >= 0.0) {
            return Err(invalid("min_per_sec", format!("is {}", self.min_per_sec), "a finite number ≥ 0"));
        }
        let nanos = u64::try_from(self.window.as_nanos()).unwrap_or(u64::MAX);
        Ok(self.common.build(Kind::Ratio(Ratio {
            counts: SlidingCounts::new(nanos, 10),
            ratio: self.ratio,
            floor: self.min_per_sec * self.window.as_secs_f64(),
            withdraw: Mutex::new(()),
        })))
    }
}
