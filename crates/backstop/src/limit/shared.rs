//! A concurrency limit shared with other processes: the store that keeps it
//! ([`LimitStore`]), the handle it sets the limit's places with
//! ([`SharedLimit`]) and what the limit tells it ([`LimitLink`]).
//!
//! The fleet has `max_concurrent` places in all. Each process holds a
//! *lease* of them, which is its limit's places now
//! ([`current_limit`](super::ConcurrencyLimit::current_limit)): calls take
//! and give back places locally, never waiting on the store; a call that
//! finds no place queues as usual and tells the store, which leases more
//! if the fleet has them free, and gives back places a process stopped
//! using.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Inner;

/// A store of concurrency limits shared by many processes (such as
/// `backstop_redis::Fleet`); given to
/// [`ConcurrencyLimitBuilder::shared`](super::ConcurrencyLimitBuilder::shared).
pub trait LimitStore: Send + Sync {
    /// Takes a new limit into the store: the store keeps `limit` to set its
    /// places, and returns the link the limit reports to. Called once, by
    /// `build()`, with no places; it may wait a short, bounded time (to
    /// lease the first places before the first call).
    fn share_limit(&self, limit: SharedLimit) -> Arc<dyn LimitLink>;
}

/// What a shared limit tells its store. Called on the callers' threads: it
/// must return at once, with no I/O.
pub trait LimitLink: Send + Sync {
    /// A call found no free place (it queues, or is refused): the store
    /// should lease more places, if the fleet has them.
    fn wants(&self);
}

/// A store's handle on a shared concurrency limit. Holding it does not keep
/// the limit in use: [`is_orphaned`](Self::is_orphaned) says when every
/// [`ConcurrencyLimit`](super::ConcurrencyLimit) clone is gone.
#[derive(Clone)]
pub struct SharedLimit {
    inner: Arc<Inner>,
}

impl SharedLimit {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The limit's name (shared limits with one name share one set of places).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The fleet's places in all (`max_concurrent`).
    pub fn max_concurrent(&self) -> u32 {
        self.inner.max_concurrent
    }

    /// The places this process holds now.
    pub fn places(&self) -> u32 {
        self.inner.current.load(Ordering::Acquire)
    }

    /// Calls running in this process now (places taken).
    pub fn in_use(&self) -> u32 {
        self.inner.queue.in_use()
    }

    /// Calls waiting for a place in this process now.
    pub fn waiting(&self) -> u32 {
        self.inner.queue.waiting()
    }

    /// Sets the places this process holds (at most `max_concurrent`): more
    /// let waiters in at once; fewer than the calls running take effect as
    /// they finish (their places are not handed on).
    pub fn set_places(&self, places: u32) {
        let places = places.min(self.inner.max_concurrent);
        self.inner.current.store(places, Ordering::Release);
        self.inner.queue.fill(places);
    }

    /// Whether every `ConcurrencyLimit` using these places is gone, so
    /// that only store handles hold it.
    pub fn is_orphaned(&self) -> bool {
        Arc::strong_count(&self.inner) == 1
    }
}

impl fmt::Debug for SharedLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLimit")
            .field("name", &self.name())
            .field("places", &self.places())
            .field("in_use", &self.in_use())
            .field("waiting", &self.waiting())
            .finish()
    }
}
