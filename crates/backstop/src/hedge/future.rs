//! [`HedgeFuture`]: one hedged call, the race of its requests.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use super::{Hedge, emit};
use crate::clock::SleepFuture;

pin_project! {
    /// A call with hedges, made by [`Hedge::run`]: resolves to the first
    /// success, or to the first error once every request has failed.
    /// Dropping it drops every request in flight.
    ///
    /// A call that completes at its first poll (no I/O) costs nothing
    /// beyond the call: no clock read, no timer, no count.
    #[must_use = "a hedged call does nothing until awaited"]
    pub struct HedgeFuture<'h, Op, Fut>
    where
        Fut: Future,
    {
        hedge: &'h Hedge,
        op: Op,
        #[pin]
        primary: Option<Fut>,
        // The hedges in flight, each with when it started (ns on the hedge's clock).
        hedges: Vec<(Pin<Box<Fut>>, u64)>,
        // When the primary went pending (its latency's start), then when the
        // last request went out (the next hedge's delay counts from it).
        started: Option<u64>,
        last_sent: u64,
        timer: Option<SleepFuture>,
        sent: u32,
        // No more hedges for this call: the budget refused.
        done: bool,
        first_error: Option<Fut::Output>,
    }
}

impl<'h, Op, Fut, T, E> HedgeFuture<'h, Op, Fut>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    pub(super) fn new(hedge: &'h Hedge, mut op: Op) -> Self {
        let primary = Some(op());
        HedgeFuture {
            hedge,
            op,
            primary,
            hedges: Vec::new(),
            started: None,
            last_sent: 0,
            timer: None,
            sent: 0,
            done: false,
            first_error: None,
        }
    }
}

impl<Op, Fut, T, E> Future for HedgeFuture<'_, Op, Fut>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let hedge = *this.hedge;
        let latencies = &hedge.inner.latencies;
        // Read when first needed (a call ready at its first poll reads no
        // clock), and again after a timer fires.
        let mut now = None;

        if let Some(primary) = this.primary.as_mut().as_pin_mut() {
            if let Poll::Ready(out) = primary.poll(cx) {
                this.primary.set(None);
                if let Some(started) = *this.started {
                    let at = read_now(&mut now, hedge);
                    latencies.record(at, Duration::from_nanos(at.saturating_sub(started)));
                }
                match out {
                    Ok(value) => {
                        // The winner: hedges still in flight are dropped now,
                        // not when the future is.
                        this.hedges.clear();
                        *this.timer = None;
                        return Poll::Ready(Ok(value));
                    }
                    Err(e) => keep_first(this.first_error, Err(e)),
                }
            }
        }
        let mut i = 0;
        while i < this.hedges.len() {
            match this.hedges[i].0.as_mut().poll(cx) {
                Poll::Pending => i += 1,
                Poll::Ready(out) => {
                    let (_, started) = this.hedges.swap_remove(i);
                    let at = read_now(&mut now, hedge);
                    latencies.record(at, Duration::from_nanos(at.saturating_sub(started)));
                    match out {
                        Ok(value) => {
                            this.primary.set(None);
                            this.hedges.clear();
                            *this.timer = None;
                            return Poll::Ready(Ok(value));
                        }
                        Err(e) => keep_first(this.first_error, Err(e)),
                    }
                }
            }
        }
        if this.primary.is_none() && this.hedges.is_empty() {
            // Every request has failed (at least the primary was made).
            return Poll::Ready(this.first_error.take().unwrap_or_else(unreachable_failure));
        }
        if this.started.is_none() {
            let at = read_now(&mut now, hedge);
            *this.started = Some(at);
            *this.last_sent = at;
            latencies.record_call(at);
        }
        let inner = &hedge.inner;
        while *this.sent < inner.max_hedges && !*this.done {
            if this.timer.is_none() {
                let at = read_now(&mut now, hedge);
                let since = Duration::from_nanos(at.saturating_sub(*this.last_sent));
                match hedge.delay_at(at) {
                    Some(delay) if delay <= since => {}
                    Some(delay) => *this.timer = Some(inner.clock.timer(delay - since)),
                    // Too few samples yet: look again in a twentieth of the
                    // window (a call that stalls while the hedge is still
                    // learning is hedged once it knows).
                    None => *this.timer = Some(inner.clock.timer(inner.window / 20)),
                }
            }
            if let Some(timer) = this.timer.as_mut() {
                if timer.as_mut().poll(cx).is_pending() {
                    break;
                }
                *this.timer = None;
                // The delay may have grown (or is still unknown): look again.
                now = None;
                let at = read_now(&mut now, hedge);
                let since = Duration::from_nanos(at.saturating_sub(*this.last_sent));
                if hedge.delay_at(at).is_none_or(|delay| delay > since + RECHECK_SLACK) {
                    continue;
                }
            }
            let at = read_now(&mut now, hedge);
            if !hedge.may_hedge(at) {
                *this.done = true;
                break;
            }
            *this.sent += 1;
            emit::hedged(&inner.name, Duration::from_nanos(at.saturating_sub(*this.last_sent)), *this.sent);
            *this.last_sent = at;
            let mut request = Box::pin((this.op)());
            match request.as_mut().poll(cx) {
                Poll::Pending => this.hedges.push((request, at)),
                Poll::Ready(Ok(value)) => {
                    this.primary.set(None);
                    this.hedges.clear();
                    *this.timer = None;
                    return Poll::Ready(Ok(value));
                }
                Poll::Ready(Err(e)) => keep_first(this.first_error, Err(e)),
            }
        }
        Poll::Pending
    }
}

/// A timer that fired this close to a delay that grew meanwhile sends the
/// hedge anyway (no timer is armed for less).
const RECHECK_SLACK: Duration = Duration::from_millis(1);

/// Nanoseconds on the hedge's clock, read once until `cache` is cleared.
fn read_now(cache: &mut Option<u64>, hedge: &Hedge) -> u64 {
    *cache.get_or_insert_with(|| hedge.now_nanos())
}

/// Keeps the first failure of the call.
fn keep_first<O>(slot: &mut Option<O>, failure: O) {
    if slot.is_none() {
        *slot = Some(failure);
    }
}

/// A call whose every request failed holds the first failure: this is never reached.
#[cold]
fn unreachable_failure<O>() -> O {
    unreachable!("a hedged call ended with no request made")
}
