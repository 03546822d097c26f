//! The shared [`RetryBudget`] handle: one of the two algorithms behind an
//! `Arc`, with the name, clock and counters every budget has.

use std::fmt;
use std::sync::Arc as StdArc;
use std::time::Instant;

use super::link::BudgetLink;
use super::ratio::Ratio;
use super::token_bucket::{MILLI, TokenBucket};
use crate::clock::Clock;
use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering, lock};
use crate::verdict::Verdict;

/// A retry budget shared by any number of runs and threads; see the
/// [module docs](crate::budget). `Clone` shares the budget.
#[derive(Clone)]
pub struct RetryBudget {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) name: StdArc<str>,
    pub(super) kind: Kind,
    pub(super) clock: StdArc<dyn Clock>,
    pub(super) origin: Instant,
    pub(super) denied: AtomicU64,
    /// Set by a refusal, cleared by a grant: the WARN is logged once per dry spell.
    pub(super) dry: AtomicBool,
    /// The store of a shared budget, set once by `build()`.
    pub(super) link: std::sync::OnceLock<StdArc<dyn BudgetLink>>,
}

pub(super) enum Kind {
    Bucket(TokenBucket),
    Ratio(Ratio),
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
            if let Some(fleet) = &r.fleet {
                fleet.requests.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Asks for one retry after a failure with this verdict (a `Timeout`
    /// costs a token bucket's `timeout_cost`, anything else its `retry_cost`).
    /// `None` when the budget is spent: do not retry.
    pub fn try_withdraw(&self, verdict: Verdict) -> Option<Withdrawal> {
        let granted = match &self.inner.kind {
            Kind::Bucket(b) => {
                let cost = if verdict == Verdict::Timeout { b.timeout_cost } else { b.retry_cost };
                if !b.shared.load(Ordering::Relaxed) {
                    self.refill(b);
                }
                let milli = u64::from(cost) * MILLI;
                let granted = b.take(milli);
                if let Some(link) = self.inner.link.get() {
                    if granted && b.shared.load(Ordering::Relaxed) {
                        b.spent.fetch_add(milli, Ordering::Relaxed);
                    }
                    link.withdrew(self.level());
                }
                granted.then_some(Withdrawal { cost, at_nanos: 0 })
            }
            Kind::Ratio(r) => {
                let grant = lock(&r.withdraw);
                let now = self.now_nanos();
                let left = match r.following() {
                    Some(fleet) => r.left_of(&grant, fleet),
                    None => r.local_left(now),
                };
                let granted = (left >= 1.0).then(|| {
                    r.counts.add(now, [0, 1]);
                    if let Some(fleet) = &r.fleet {
                        fleet.retries.fetch_add(1, Ordering::AcqRel);
                    }
                    Withdrawal { cost: 1, at_nanos: now }
                });
                drop(grant);
                if let Some(link) = self.inner.link.get() {
                    link.withdrew(self.level());
                }
                granted
            }
        };
        match granted {
            Some(_) => {
                if self.inner.dry.load(Ordering::Relaxed) {
                    self.inner.dry.store(false, Ordering::Relaxed);
                }
                budget_level(&self.inner.name, self.level());
            }
            None => {
                self.inner.denied.fetch_add(1, Ordering::Relaxed);
                let ran_dry = !self.inner.dry.swap(true, Ordering::Relaxed);
                budget_denied(&self.inner.name, self.level(), ran_dry);
            }
        }
        granted
    }

    /// Gives back a withdrawal whose retry never happened (the run was
    /// cancelled during its sleep).
    pub fn refund(&self, withdrawal: Withdrawal) {
        match &self.inner.kind {
            Kind::Bucket(b) => {
                let milli = u64::from(withdrawal.cost) * MILLI;
                if b.shared.load(Ordering::Relaxed) {
                    // Back in the lease: the fleet counts it out again.
                    b.refunded.fetch_add(milli, Ordering::Relaxed);
                    if let Some(link) = self.inner.link.get() {
                        link.refunded();
                    }
                }
                b.put(milli)
            }
            Kind::Ratio(r) => {
                r.counts.sub(withdrawal.at_nanos, [0, 1]);
                if let Some(fleet) = &r.fleet {
                    // The fleet hears of it with the next counts its store reads.
                    let _ = fleet.retries.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
                    if let Some(link) = self.inner.link.get() {
                        link.refunded();
                    }
                }
            }
        }
    }

    /// Records a success: a token bucket gets back the cost of the retry that
    /// succeeded (`Some`), or its `success_refund` for a first-attempt success
    /// (`None`). Ratio budgets ignore it. A full bucket is not written.
    #[inline]
    pub fn record_success(&self, retry: Option<Withdrawal>) {
        if let Kind::Bucket(b) = &self.inner.kind {
            let refund = retry.map_or(b.success_refund, |w| w.cost);
            b.refill_by_success(u64::from(refund) * MILLI);
        }
    }

    /// What is left: tokens for a token bucket, retries available now for a
    /// ratio budget (for a shared one, of this process's part of the fleet's
    /// room).
    pub fn level(&self) -> f64 {
        match &self.inner.kind {
            Kind::Bucket(b) => b.milli.load(Ordering::Acquire) as f64 / MILLI as f64,
            Kind::Ratio(r) => match r.following() {
                Some(fleet) => r.left_of(&lock(&r.withdraw), fleet).max(0.0),
                None => r.local_left(self.now_nanos()).max(0.0),
            },
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
        let milli_per_nano = b.refill_per_sec * MILLI as f64 / 1e9;
        let gained = (now.saturating_sub(*last) as f64 * milli_per_nano) as u64;
        if gained > 0 {
            b.put(gained);
            // Only the time the whole thousandths paid for is used up: the
            // remainder carries over, so frequent calls lose nothing.
            let used = (gained as f64 / milli_per_nano) as u64;
            *last = last.saturating_add(used).min(now);
        }
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

fn budget_level(budget: &str, level: f64) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("backstop_budget_level", "budget" => budget.to_owned()).set(level);
    let _ = (budget, level);
}

fn budget_denied(budget: &str, level: f64, ran_dry: bool) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("backstop_budget_denied_total", "budget" => budget.to_owned()).increment(1);
        metrics::gauge!("backstop_budget_level", "budget" => budget.to_owned()).set(level);
    }
    #[cfg(feature = "tracing")]
    if ran_dry {
        tracing::warn!("retry budget {budget} is spent ({level:.1} left): retries are refused until it refills");
    } else {
        tracing::debug!("retry denied: retry budget {budget} is spent ({level:.1} left)");
    }
    let _ = (budget, level, ran_dry);
}
