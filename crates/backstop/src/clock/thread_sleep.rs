//! A sleep for any executor: a short-lived thread that wakes the task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A runtime-agnostic sleep: a short-lived thread that wakes the task.
/// Dropping the sleep wakes the thread so it exits at once.
pub(super) struct ThreadSleep {
    shared: Arc<Mutex<TimerState>>,
    thread: Option<std::thread::Thread>,
}

#[derive(Default)]
struct TimerState {
    done: bool,
    cancelled: bool,
    waker: Option<Waker>,
}

impl ThreadSleep {
    pub(super) fn new(d: Duration) -> Self {
        let shared = Arc::new(Mutex::new(TimerState { done: d.is_zero(), ..TimerState::default() }));
        let mut thread = None;
        if !d.is_zero() {
            let remote = Arc::clone(&shared);
            let deadline = Instant::now().checked_add(d);
            let handle = std::thread::spawn(move || {
                loop {
                    let left = deadline.map(|t| t.saturating_duration_since(Instant::now()));
                    if remote.lock().unwrap_or_else(PoisonError::into_inner).cancelled {
                        return;
                    }
                    match left {
                        Some(left) if left.is_zero() => break,
                        Some(left) => std::thread::park_timeout(left),
                        None => std::thread::park(), // past Instant's range: until cancelled
                    }
                }
                let mut state = remote.lock().unwrap_or_else(PoisonError::into_inner);
                state.done = true;
                if let Some(w) = state.waker.take() {
                    w.wake();
                }
            });
            thread = Some(handle.thread().clone());
        }
        Self { shared, thread }
    }
}

impl Future for ThreadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if state.done {
            Poll::Ready(())
        } else {
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Drop for ThreadSleep {
    fn drop(&mut self) {
        if let Some(thread) = &self.thread {
            self.shared.lock().unwrap_or_else(PoisonError::into_inner).cancelled = true;
            thread.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_thread_sleep_ends_its_thread() {
        let sleep = ThreadSleep::new(Duration::from_secs(3600));
        let shared = Arc::clone(&sleep.shared);
        drop(sleep);
        // The thread saw the cancellation and let go of its handle.
        let started = Instant::now();
        while Arc::strong_count(&shared) > 1 {
            assert!(started.elapsed() < Duration::from_secs(10), "timer thread still running");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn thread_sleep_completes_outside_any_runtime() {
        let mut fut = Box::pin(ThreadSleep::new(Duration::from_millis(2)));
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        while fut.as_mut().poll(&mut cx).is_pending() {
            std::thread::yield_now();
        }
    }
}
