//! The two budget builders, [`TokenBucketBuilder`] and [`RatioBuilder`]:
//! where a budget's settings are checked and the budget made.

use std::fmt;
use std::sync::Arc as StdArc;
use std::time::Duration;

use super::ratio::{FleetCounts, Grant, Ratio};
use super::retry_budget::{Inner, Kind, RetryBudget};
use super::shared::{BudgetStore, SharedBudget};
use super::shared_ratio::SharedRatio;
use super::token_bucket::{MILLI, TokenBucket};
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::sliding::SlidingCounts;
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex};

/// What a retry costs a token bucket unless set (the AWS SDKs' number).
const DEFAULT_RETRY_COST: u32 = 5;
/// What a retry after a timeout costs unless set.
const DEFAULT_TIMEOUT_COST: u32 = 10;

impl RetryBudget {
    /// A token bucket named `name` (in logs and metrics) with the AWS SDKs'
    /// standard numbers: capacity 500, a retry costs 5, a retry after a
    /// timeout 10, a success refunds 1, no refill.
    pub fn token_bucket(name: impl Into<StdArc<str>>) -> TokenBucketBuilder {
        TokenBucketBuilder {
            common: Common::new(name.into()),
            capacity: 500,
            retry_cost: None,
            timeout_cost: None,
            success_refund: 1,
            refill_per_sec: 0.0,
            store: None,
        }
    }

    /// A ratio budget named `name` (in logs and metrics) with Finagle's
    /// numbers: retries up to 20 % of the requests of the last 10 s, and at
    /// least 10 retries a second.
    pub fn ratio(name: impl Into<StdArc<str>>) -> RatioBuilder {
        RatioBuilder {
            common: Common::new(name.into()),
            ratio: 0.2,
            window: Duration::from_secs(10),
            min_per_sec: 10.0,
            store: None,
        }
    }
}

impl Default for RetryBudget {
    /// The AWS-standard token bucket (see [`RetryBudget::token_bucket`]).
    fn default() -> Self {
        Self::token_bucket("retry_budget").build().expect("the default token bucket is valid")
    }
}

/// Settings both budget builders share.
#[derive(Debug)]
struct Common {
    name: StdArc<str>,
    clock: StdArc<dyn Clock>,
}

impl Common {
    fn new(name: StdArc<str>) -> Self {
        Self { name, clock: StdArc::new(SystemClock) }
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
                link: std::sync::OnceLock::new(),
            }),
        }
    }
}

fn invalid(field: &'static str, problem: String, allowed: &'static str) -> ConfigError {
    ConfigError::of("retry budget", field, problem, allowed)
}

/// Builds a token-bucket [`RetryBudget`]; see [`RetryBudget::token_bucket`].
#[derive(Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct TokenBucketBuilder {
    common: Common,
    capacity: u32,
    /// `None`: the default, lowered to the capacity of a smaller bucket.
    retry_cost: Option<u32>,
    timeout_cost: Option<u32>,
    success_refund: u32,
    refill_per_sec: f64,
    store: Option<Store>,
}

/// A budget store, held by the builder until `build()`.
struct Store(StdArc<dyn BudgetStore>);

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BudgetStore")
    }
}

impl TokenBucketBuilder {
    /// The clock for refills (default: [`SystemClock`]).
    pub fn clock<C: Clock + Clone + 'static>(mut self, clock: &C) -> Self {
        self.common.clock = StdArc::new(clock.clone());
        self
    }

    /// Tokens when full, and at the start (default 500; allowed: ≥ 1).
    pub fn capacity(mut self, tokens: u32) -> Self {
        self.capacity = tokens;
        self
    }

    /// Tokens a retry costs (default 5, or the capacity if that is smaller;
    /// allowed: 1 ..= capacity).
    pub fn retry_cost(mut self, tokens: u32) -> Self {
        self.retry_cost = Some(tokens);
        self
    }

    /// Tokens a retry after a [`Verdict::Timeout`](crate::Verdict::Timeout) costs (default 10, or the
    /// capacity if that is smaller; allowed: 1 ..= capacity).
    pub fn timeout_cost(mut self, tokens: u32) -> Self {
        self.timeout_cost = Some(tokens);
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

    /// Shares the bucket with every process whose budget of the same name
    /// uses the same store (such as `backstop_redis::Fleet`): one bucket of
    /// `capacity` tokens for the whole fleet, refilled at `refill_per_sec`.
    /// Each process spends a small lease of it locally, with no round trip
    /// per retry; see [`BudgetStore`].
    pub fn shared<S: BudgetStore + Clone + 'static>(mut self, store: &S) -> Self {
        self.store = Some(Store(StdArc::new(store.clone())));
        self
    }

    /// Checks the settings and makes the budget: full, or, when
    /// [`shared`](Self::shared), with the lease its store takes.
    pub fn build(self) -> Result<RetryBudget, ConfigError> {
        if self.capacity == 0 {
            return Err(invalid("capacity", "is 0".into(), "1 or more tokens"));
        }
        // A default cost fits any bucket (a bucket of 5 charges 5 for a
        // timeout); a cost that was set must fit as it is.
        let retry_cost = self.retry_cost.unwrap_or(DEFAULT_RETRY_COST.min(self.capacity));
        let timeout_cost = self.timeout_cost.unwrap_or(DEFAULT_TIMEOUT_COST.min(self.capacity));
        for (field, cost) in [("retry_cost", retry_cost), ("timeout_cost", timeout_cost)] {
            if cost == 0 || cost > self.capacity {
                let problem = format!("is {cost} with capacity {}", self.capacity);
                return Err(invalid(field, problem, "1 ..= capacity (lower the cost or raise the capacity)"));
            }
        }
        if !(self.refill_per_sec.is_finite() && self.refill_per_sec >= 0.0) {
            return Err(invalid("refill_per_sec", format!("is {}", self.refill_per_sec), "a finite number ≥ 0"));
        }
        let capacity = u64::from(self.capacity) * MILLI;
        let shared = self.store.is_some();
        let budget = self.common.build(Kind::Bucket(TokenBucket {
            milli: AtomicU64::new(if shared { 0 } else { capacity }),
            capacity,
            retry_cost,
            timeout_cost,
            success_refund: self.success_refund,
            refill_per_sec: self.refill_per_sec,
            last_refill: Mutex::new(0),
            shared: AtomicBool::new(shared),
            owed: AtomicU64::new(0),
            spent: AtomicU64::new(0),
            refunded: AtomicU64::new(0),
        }));
        if let Some(Store(store)) = self.store {
            let link = store.share_budget(SharedBudget::new(Arc::clone(&budget.inner)));
            let _ = budget.inner.link.set(link);
        }
        Ok(budget)
    }
}

/// Builds a ratio [`RetryBudget`]; see [`RetryBudget::ratio`].
#[derive(Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct RatioBuilder {
    common: Common,
    ratio: f64,
    window: Duration,
    min_per_sec: f64,
    store: Option<Store>,
}

impl RatioBuilder {
    /// The clock for the window (default: [`SystemClock`]).
    pub fn clock<C: Clock + Clone + 'static>(mut self, clock: &C) -> Self {
        self.common.clock = StdArc::new(clock.clone());
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

    /// Shares the budget with every process whose ratio budget of the same
    /// name uses the same store (such as `backstop_redis::Fleet`): retries
    /// in the whole fleet may add at most `ratio` of the fleet's requests in
    /// the window, plus one floor of `min_per_sec` for the fleet (eight
    /// local budgets would allow eight floors). Each process spends its
    /// part of that room locally, with no round trip per retry; see
    /// [`SharedRatio`]. Every process should give the same settings.
    pub fn shared<S: BudgetStore + Clone + 'static>(mut self, store: &S) -> Self {
        self.store = Some(Store(StdArc::new(store.clone())));
        self
    }

    /// Checks the settings and makes the budget (when
    /// [`shared`](Self::shared), with the part of the fleet's room its store
    /// grants).
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
        let fleet = self.store.as_ref().map(|_| FleetCounts {
            shared: AtomicBool::new(true),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        });
        let budget = self.common.build(Kind::Ratio(Ratio {
            counts: SlidingCounts::new(nanos, 10),
            ratio: self.ratio,
            floor: self.min_per_sec * self.window.as_secs_f64(),
            window: self.window,
            withdraw: Mutex::new(Grant::default()),
            fleet,
        }));
        if let Some(Store(store)) = self.store {
            let link = store.share_ratio(SharedRatio::new(Arc::clone(&budget.inner)));
            let _ = budget.inner.link.set(link);
        }
        Ok(budget)
    }
}
