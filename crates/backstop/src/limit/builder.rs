//! [`ConcurrencyLimitBuilder`]: a limit's settings, checked.

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::gradient::{Estimator, Gradient};
use super::queue::Queue;
use super::shared::{LimitStore, SharedLimit};
use super::{ConcurrencyLimit, Inner};
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;

/// Builds a [`ConcurrencyLimit`]; made by [`ConcurrencyLimit::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct ConcurrencyLimitBuilder {
    name: Arc<str>,
    max_concurrent: u32,
    max_queue: u32,
    queue_timeout: Option<Duration>,
    adaptive: Option<Gradient>,
    clock: Arc<dyn Clock>,
    store: Option<Arc<dyn LimitStore>>,
}

impl std::fmt::Debug for ConcurrencyLimitBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcurrencyLimitBuilder")
            .field("name", &self.name)
            .field("max_concurrent", &self.max_concurrent)
            .field("max_queue", &self.max_queue)
            .field("queue_timeout", &self.queue_timeout)
            .finish_non_exhaustive()
    }
}

impl ConcurrencyLimitBuilder {
    pub(super) fn new(name: Arc<str>) -> Self {
        ConcurrencyLimitBuilder {
            name,
            max_concurrent: 10,
            max_queue: 100,
            queue_timeout: Some(Duration::from_secs(30)),
            adaptive: None,
            clock: Arc::new(SystemClock),
            store: None,
        }
    }

    /// Calls that may run at once (default 10; allowed: 1 ..= 1 000 000).
    pub fn max_concurrent(mut self, n: u32) -> Self {
        self.max_concurrent = n;
        self
    }

    /// Calls that may wait for a place (default 100; allowed: 0 ..=
    /// 1 000 000; 0: refuse at once when every place is taken).
    pub fn max_queue(mut self, n: u32) -> Self {
        self.max_queue = n;
        self
    }

    /// The longest a call waits for a place (default 30 s; allowed: 1 ms ..=
    /// 1 h). Without one ([`no_queue_timeout`](Self::no_queue_timeout)) a
    /// call waits until it gets one or is dropped.
    pub fn queue_timeout(mut self, limit: Duration) -> Self {
        self.queue_timeout = Some(limit);
        self
    }

    /// Waits without a time limit (a run's deadline still bounds it).
    pub fn no_queue_timeout(mut self) -> Self {
        self.queue_timeout = None;
        self
    }

    /// Learns the limit from latency (see [`Gradient`]): it starts at the
    /// gradient's `initial` and moves between its `min_limit` and
    /// [`max_concurrent`](Self::max_concurrent), which becomes the cap.
    pub fn adaptive(mut self, gradient: Gradient) -> Self {
        self.adaptive = Some(gradient);
        self
    }

    /// The clock waits run on (default: [`SystemClock`]); a
    /// [`ManualClock`](crate::ManualClock) in tests.
    pub fn clock<C: Clock + Clone + 'static>(mut self, clock: &C) -> Self {
        self.clock = Arc::new(clock.clone());
        self
    }

    /// Shares the limit with every process whose limit of the same name uses
    /// the same store (such as `backstop_redis::Fleet`): at most
    /// `max_concurrent` calls at once in the whole fleet. Each process holds
    /// a lease of the fleet's places, taken and given back locally; a call
    /// that finds none queues (as always) while the store leases more. Every
    /// process should give the same `max_concurrent`. A fixed limit only:
    /// an adaptive limit is learned by each process from its own latency.
    /// See [`SharedLimit`].
    pub fn shared<S: LimitStore + Clone + 'static>(mut self, store: &S) -> Self {
        self.store = Some(Arc::new(store.clone()));
        self
    }

    /// Checks every setting and returns the limit, or the first bad setting.
    pub fn build(self) -> Result<ConcurrencyLimit, ConfigError> {
        let err = |field, problem: String, allowed| Err(ConfigError::of("concurrency limit", field, problem, allowed));
        if !(1..=1_000_000).contains(&self.max_concurrent) {
            return err("max_concurrent", format!("is {}", self.max_concurrent), "1 ..= 1000000");
        }
        if self.max_queue > 1_000_000 {
            return err("max_queue", format!("is {}", self.max_queue), "0 ..= 1000000");
        }
        if let Some(t) =
            self.queue_timeout.filter(|t| !(Duration::from_millis(1)..=Duration::from_secs(3600)).contains(t))
        {
            return err("queue_timeout", format!("is {t:?}"), "1ms ..= 1h");
        }
        if self.store.is_some() && self.adaptive.is_some() {
            return err(
                "shared",
                "is set with adaptive".into(),
                "a fixed limit (each process learns an adaptive limit from its own latency)",
            );
        }
        if let Some(g) = &self.adaptive {
            if g.min_limit == 0 || g.min_limit > self.max_concurrent {
                return err(
                    "adaptive.min_limit",
                    format!("is {} with max_concurrent {}", g.min_limit, self.max_concurrent),
                    "1 ..= max_concurrent",
                );
            }
            if !(g.min_limit..=self.max_concurrent).contains(&g.initial) {
                return err("adaptive.initial", format!("is {}", g.initial), "min_limit ..= max_concurrent");
            }
            if !(1.0..=10.0).contains(&g.tolerance) {
                return err("adaptive.tolerance", format!("is {:?}", g.tolerance), "1 ..= 10");
            }
            if !(g.smoothing > 0.0 && g.smoothing <= 1.0) {
                return err("adaptive.smoothing", format!("is {:?}", g.smoothing), "more than 0, at most 1");
            }
            if !(10..=1_000_000).contains(&g.long_window) {
                return err("adaptive.long_window", format!("is {}", g.long_window), "10 ..= 1000000");
            }
        }
        // A shared limit starts with no places: its store leases them.
        let current = if self.store.is_some() { 0 } else { self.adaptive.map_or(self.max_concurrent, |g| g.initial) };
        let limit = ConcurrencyLimit {
            inner: Arc::new(Inner {
                name: self.name,
                max_concurrent: self.max_concurrent,
                current: AtomicU32::new(current),
                adaptive: self.adaptive.map(|g| Mutex::new(Estimator::new(g, self.max_concurrent))),
                max_queue: self.max_queue,
                queue_timeout: self.queue_timeout,
                clock: self.clock,
                queue: Queue::default(),
                link: std::sync::OnceLock::new(),
            }),
        };
        if let Some(store) = self.store {
            let link = store.share_limit(SharedLimit::new(Arc::clone(&limit.inner)));
            let _ = limit.inner.link.set(link);
        }
        Ok(limit)
    }
}
