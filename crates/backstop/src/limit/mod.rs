//! Concurrency limits (bulkheads): [`ConcurrencyLimit`].
//!
//! A pipeline that starts 500 uploads at once, or a service whose downstream
//! slows down, queues work until everything times out. A concurrency limit
//! lets at most `max_concurrent` calls run at once; the others wait in a
//! bounded FIFO queue (at most `max_queue` of them, each at most
//! `queue_timeout`), and past that are refused at once with a clear error:
//! the caller learns the downstream is saturated instead of waiting behind
//! it. A caller that gives up while it waits (its future dropped) leaves the
//! queue at once; a place it was just handed goes to the next in line.
//!
//! ```
//! use std::time::Duration;
//! use backstop::limit::ConcurrencyLimit;
//!
//! # async fn upload(_key: &str) {}
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let uploads = ConcurrencyLimit::builder("s3-uploads")
//!     .max_concurrent(32)
//!     .max_queue(100)
//!     .queue_timeout(Duration::from_secs(5))
//!     .build()?;
//! let permit = uploads.acquire().await?;   // waits for a place, or refuses
//! upload("day.parquet").await;
//! drop(permit);                            // the next caller in line goes
//! # Ok(()) }
//! ```
//!
//! **Adaptive**: with [`ConcurrencyLimitBuilder::adaptive`] the limit learns
//! from latency how many calls the downstream takes at once (Little's law:
//! past its capacity, calls only queue and take longer): see [`Gradient`].
//! `max_concurrent` is then its cap, and [`current_limit`](ConcurrencyLimit::current_limit)
//! what it allows now.
//!
//! **Shared**: with [`ConcurrencyLimitBuilder::shared`] a fixed limit is the
//! fleet's (through a [`LimitStore`] such as `backstop_redis::Fleet`): at
//! most `max_concurrent` calls at once across every process; each process
//! holds a lease of the places, which its calls take locally (see
//! [`SharedLimit`]).
//!
//! A limit also loads from a configuration file (the `serde` feature):
//! `name`, `max_concurrent`, `max_queue`, `queue_timeout` (`"5s"`, `"none"`).
//!
//! Waits run on the limit's [`Clock`], so tests run in virtual
//! time. A queue timeout is a timer of that clock: tokio's inside a tokio
//! runtime; elsewhere the system clock's timer takes a thread per waiting
//! call, so keep large queues inside tokio.
//!
//! A guard like the others: give it to runs and batches
//! ([`Retry::limit`](crate::Retry::limit)), to [`Guards`](crate::Guards),
//! the HTTP middleware and layer, S3 transfers and the attribute; a place is
//! taken before each attempt and given back at its outcome (not held through
//! the sleeps between attempts), and a refusal ends the run with
//! [`RetryError::Limited`](crate::RetryError::Limited).

mod builder;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
mod config;
mod gradient;
mod queue;
mod shared;

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use builder::ConcurrencyLimitBuilder;
pub use gradient::Gradient;
pub use queue::{Acquire, LimitPermit};
pub use shared::{LimitLink, LimitStore, SharedLimit};

use crate::clock::Clock;
use gradient::Estimator;
use queue::Queue;

/// At most `max_concurrent` calls at once; see the [module docs](self).
/// `Clone` shares the limit.
#[derive(Clone)]
pub struct ConcurrencyLimit {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    max_concurrent: u32,
    /// The places now: `max_concurrent` for a fixed limit; an adaptive
    /// one's estimate.
    current: AtomicU32,
    /// An adaptive limit's estimator.
    adaptive: Option<Mutex<Estimator>>,
    max_queue: u32,
    queue_timeout: Option<Duration>,
    clock: Arc<dyn Clock>,
    queue: Queue,
    /// The store of a shared limit, set once by `build()`.
    link: std::sync::OnceLock<Arc<dyn LimitLink>>,
}

impl fmt::Debug for ConcurrencyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimit")
            .field("name", &self.inner.name)
            .field("max_concurrent", &self.inner.max_concurrent)
            .field("max_queue", &self.inner.max_queue)
            .field("in_use", &self.in_use())
            .field("waiting", &self.waiting())
            .finish_non_exhaustive()
    }
}

/// Why a call was refused a place.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitError {
    /// Every place was taken and the queue was full: refused at once.
    QueueFull {
        /// The limit's name.
        name: Arc<str>,
        /// Its places.
        max_concurrent: u32,
        /// Its queue's length.
        max_queue: u32,
    },
    /// The call waited its `queue_timeout` without a place.
    QueueTimeout {
        /// The limit's name.
        name: Arc<str>,
        /// How long it waited.
        waited: Duration,
    },
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::QueueFull { name, max_concurrent, max_queue } => {
                write!(f, "concurrency limit {name} is full: {max_concurrent} running and {max_queue} waiting")
            }
            LimitError::QueueTimeout { name, waited } => write!(
                f,
                "concurrency limit {name}: no place after waiting {} seconds",
                crate::duration::Seconds(*waited)
            ),
        }
    }
}

impl std::error::Error for LimitError {}

impl ConcurrencyLimit {
    /// A limit named `name` (in its errors): by default 10 calls at once, a
    /// queue of 100, waits of at most 30 s.
    pub fn builder(name: impl Into<Arc<str>>) -> ConcurrencyLimitBuilder {
        ConcurrencyLimitBuilder::new(name.into())
    }

    /// The limit's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Calls that may run at once at most (an adaptive limit's cap).
    pub fn max_concurrent(&self) -> u32 {
        self.inner.max_concurrent
    }

    /// Calls that may run at once now: `max_concurrent` for a fixed limit,
    /// the current estimate for an adaptive one, the places this process
    /// holds of its fleet's for a [shared](ConcurrencyLimitBuilder::shared) one.
    pub fn current_limit(&self) -> u32 {
        self.inner.current.load(Ordering::Acquire)
    }

    /// Calls that may wait for a place.
    pub fn max_queue(&self) -> u32 {
        self.inner.max_queue
    }

    /// The longest a call waits for a place, if bounded.
    pub fn queue_timeout(&self) -> Option<Duration> {
        self.inner.queue_timeout
    }

    /// Calls running now (places taken).
    pub fn in_use(&self) -> u32 {
        self.inner.queue.in_use()
    }

    /// Calls waiting for a place now.
    pub fn waiting(&self) -> u32 {
        self.inner.queue.waiting()
    }

    /// A place now, or `None` when every place is taken (never queues).
    pub fn try_acquire(&self) -> Option<LimitPermit> {
        let taken = self.inner.queue.try_take(self.current_limit());
        if !taken {
            self.wants();
        }
        taken.then(|| LimitPermit::new(self.clone()))
    }

    /// A call found no free place: a shared limit's store hears of it.
    fn wants(&self) {
        if let Some(link) = self.inner.link.get() {
            link.wants();
        }
    }

    /// Waits for a place (in FIFO order, at most `queue_timeout`), or is
    /// refused at once when the queue is full. Dropping the future leaves
    /// the queue at once.
    pub fn acquire(&self) -> Acquire {
        Acquire::new(self.clone())
    }

    /// The refusal of a full queue.
    pub(crate) fn full(&self) -> LimitError {
        self.wants();
        self.refuse_full()
    }

    /// The refusal of a call that waited `waited`.
    pub(crate) fn timed_out(&self, waited: Duration) -> LimitError {
        LimitError::QueueTimeout { name: Arc::clone(&self.inner.name), waited }
    }

    fn refuse_full(&self) -> LimitError {
        LimitError::QueueFull {
            name: Arc::clone(&self.inner.name),
            max_concurrent: self.inner.max_concurrent,
            max_queue: self.inner.max_queue,
        }
    }
}

impl ConcurrencyLimit {
    /// When a place is taken: the time, for an adaptive limit's sample.
    fn taken_at(&self) -> Option<Instant> {
        self.inner.adaptive.as_ref().map(|_| self.inner.clock.now())
    }

    /// A place taken at `taken` is given back: an adaptive limit takes the
    /// round trip as a sample first, and a limit that grew lets waiters in.
    fn give_back(&self, taken: Option<Instant>) {
        let inner = &*self.inner;
        if let (Some(estimator), Some(taken)) = (&inner.adaptive, taken) {
            let rtt = inner.clock.now().saturating_duration_since(taken).as_secs_f64();
            let in_flight = inner.queue.in_use();
            let limit = estimator.lock().unwrap_or_else(PoisonError::into_inner).sample(rtt, in_flight);
            inner.current.store(limit, Ordering::Release);
        }
        let limit = self.current_limit();
        inner.queue.give_back(limit);
        inner.queue.fill(limit);
    }
}
