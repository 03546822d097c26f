//! The limit's places and its FIFO queue of waiters: [`Queue`], the
//! [`Acquire`] future that waits in it, and the [`LimitPermit`] a place is.
//!
//! A place given up is handed to the first waiter still waiting (it never
//! returns to the pool while someone waits, so a newcomer cannot jump the
//! queue); a waiter that was handed a place and dropped before it took it
//! hands it on in turn.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::{ConcurrencyLimit, LimitError};
use crate::clock::SleepFuture;

/// Places taken and the waiters, in order.
#[derive(Default)]
pub(super) struct Queue {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    in_use: u32,
    next_id: u64,
    /// The waiters by id: found in one step when one polls or gives up.
    waiters: HashMap<u64, Waiter>,
    /// Ids of waiters not yet handed a place, in order; an id whose waiter
    /// gave up stays until it reaches the front (skipped then), so leaving
    /// the queue costs the same wherever one stands.
    order: VecDeque<u64>,
    /// Waiters not yet handed a place.
    waiting: u32,
}

struct Waiter {
    waker: Option<Waker>,
    /// Handed a place it has not taken yet.
    granted: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn in_use(&self) -> u32 {
        self.lock().in_use
    }

    pub(super) fn waiting(&self) -> u32 {
        self.lock().waiting
    }

    /// Takes a place if one is free and nobody waits for it.
    pub(super) fn try_take(&self, max: u32) -> bool {
        let mut s = self.lock();
        let free = s.in_use < max && s.waiting == 0;
        if free {
            s.in_use += 1;
        }
        free
    }

    /// Gives a place back: to the first waiter still waiting, or to the
    /// pool (also when the limit, now `limit`, shrank below the places in use).
    pub(super) fn give_back(&self, limit: u32) {
        let waker = {
            let mut s = self.lock();
            let mut handed = None;
            while s.in_use <= limit {
                let Some(id) = s.order.pop_front() else { break };
                if let Some(w) = s.waiters.get_mut(&id) {
                    w.granted = true;
                    handed = Some(w.waker.take());
                    break;
                }
            }
            match handed {
                Some(waker) => {
                    s.waiting -= 1;
                    waker
                }
                None => {
                    s.in_use = s.in_use.saturating_sub(1);
                    None
                }
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Lets waiters in while places are free under `limit` (it grew).
    pub(super) fn fill(&self, limit: u32) {
        let mut wake = Vec::new();
        {
            let mut s = self.lock();
            while s.in_use < limit && s.waiting > 0 {
                let Some(id) = s.order.pop_front() else { break };
                if let Some(w) = s.waiters.get_mut(&id) {
                    w.granted = true;
                    wake.extend(w.waker.take());
                    s.waiting -= 1;
                    s.in_use += 1;
                }
            }
        }
        wake.into_iter().for_each(Waker::wake);
    }

    /// Takes waiter `id` out of the queue: whether it had been handed a place.
    fn leave(s: &mut State, id: u64) -> bool {
        // Ids of waiters gone are skipped when they reach the front; when
        // they are most of the order, sweep them (bounded by `max_queue`,
        // not by how many came and went).
        if s.order.len() > 2 * s.waiters.len() + 64 {
            let State { order, waiters, .. } = &mut *s;
            order.retain(|id| waiters.contains_key(id));
        }
        match s.waiters.remove(&id) {
            Some(w) if w.granted => true,
            Some(_) => {
                s.waiting -= 1;
                false
            }
            None => false,
        }
    }
}

/// One place of a [`ConcurrencyLimit`]: dropping it gives the place to the
/// next caller in line.
#[must_use = "the place is given back when the permit is dropped"]
#[derive(Debug)]
pub struct LimitPermit {
    limit: ConcurrencyLimit,
    /// When it was taken (an adaptive limit's round trip starts here).
    taken: Option<Instant>,
}

impl LimitPermit {
    pub(super) fn new(limit: ConcurrencyLimit) -> Self {
        let taken = limit.taken_at();
        LimitPermit { limit, taken }
    }
}

impl Drop for LimitPermit {
    fn drop(&mut self) {
        self.limit.give_back(self.taken);
    }
}

/// Waiting for a place: made by [`ConcurrencyLimit::acquire`].
#[must_use = "a place is only waited for when the future is awaited"]
pub struct Acquire {
    limit: ConcurrencyLimit,
    /// Our entry in the queue, once queued.
    id: Option<u64>,
    queued_at: Option<Instant>,
    timer: Option<SleepFuture>,
    finished: bool,
}

impl std::fmt::Debug for Acquire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acquire").field("limit", &self.limit.name()).field("queued", &self.id.is_some()).finish()
    }
}

impl Acquire {
    pub(super) fn new(limit: ConcurrencyLimit) -> Self {
        Acquire { limit, id: None, queued_at: None, timer: None, finished: false }
    }
}

impl Future for Acquire {
    type Output = Result<LimitPermit, LimitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.finished {
            // Polled after it answered: it has nothing more to give.
            return Poll::Pending;
        }
        let inner = &*this.limit.inner;
        let Some(id) = this.id else {
            let mut s = inner.queue.lock();
            if s.in_use < this.limit.current_limit() && s.waiting == 0 {
                s.in_use += 1;
                drop(s);
                this.finished = true;
                return Poll::Ready(Ok(LimitPermit::new(this.limit.clone())));
            }
            if s.waiting >= inner.max_queue {
                drop(s);
                this.finished = true;
                return Poll::Ready(Err(this.limit.full()));
            }
            let id = s.next_id;
            s.next_id += 1;
            s.waiting += 1;
            s.waiters.insert(id, Waiter { waker: Some(cx.waker().clone()), granted: false });
            s.order.push_back(id);
            drop(s);
            this.limit.wants();
            this.id = Some(id);
            this.queued_at = Some(inner.clock.now());
            if let Some(limit) = inner.queue_timeout {
                let mut timer = inner.clock.timer(limit);
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(this.time_out());
                }
                this.timer = Some(timer);
            }
            return Poll::Pending;
        };
        {
            let mut s = inner.queue.lock();
            if let Some(w) = s.waiters.get_mut(&id) {
                if w.granted {
                    s.waiters.remove(&id);
                    drop(s);
                    this.finished = true;
                    return Poll::Ready(Ok(LimitPermit::new(this.limit.clone())));
                }
                w.waker = Some(cx.waker().clone());
            }
        }
        if let Some(timer) = this.timer.as_mut() {
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(this.time_out());
            }
        }
        Poll::Pending
    }
}

impl Acquire {
    /// The queue timeout passed: leave the queue (a place handed meanwhile
    /// is taken after all: it would otherwise be passed on, for nothing).
    fn time_out(&mut self) -> Result<LimitPermit, LimitError> {
        self.finished = true;
        let inner = &*self.limit.inner;
        let granted = match self.id {
            Some(id) => Queue::leave(&mut inner.queue.lock(), id),
            None => false,
        };
        if granted {
            return Ok(LimitPermit::new(self.limit.clone()));
        }
        let waited = self.queued_at.map(|at| inner.clock.now().saturating_duration_since(at)).unwrap_or_default();
        Err(LimitError::QueueTimeout { name: Arc::clone(&inner.name), waited })
    }
}

impl Drop for Acquire {
    /// A waiter that gives up leaves the queue at once; a place it was
    /// handed and did not take goes to the next in line.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let Some(id) = self.id else { return };
        let queue = &self.limit.inner.queue;
        let granted = Queue::leave(&mut queue.lock(), id);
        if granted {
            self.limit.give_back(None);
        }
    }
}
