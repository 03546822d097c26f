//! Retrying every item of a batch: [`RetryPolicy::batch`].
//!
//! Each item gets its own run of the policy (its own attempts and backoff),
//! like the seeds' `create_batch_retry_wrapper`. A batch either collects every
//! item's outcome (the default) or stops at the first item whose retries fail
//! ([`fail_fast`](Batch::fail_fast)). Async batches run up to
//! [`concurrency`](Batch::concurrency) items at once.
//!
//! ```
//! use backstop::{ManualClock, RetryPolicy};
//!
//! let clock = ManualClock::new();
//! let policy = RetryPolicy::builder().max_attempts(3).seed(1).build()?;
//! let keys = ["a.csv", "b.csv", "missing.csv"];
//! let outcome = policy
//!     .batch(&keys, |key| if key.starts_with("missing") { Err("NoSuchKey") } else { Ok(key.len()) })
//!     .name("download_batch")
//!     .clock(&clock)
//!     .call();
//! assert_eq!(outcome.successes().count(), 2);
//! assert_eq!(outcome.failures().next().unwrap().0, 2); // the item's index
//! # Ok::<(), backstop::ConfigError>(())
//! ```

use std::fmt::Display;
use std::future::{Future, poll_fn};
use std::sync::{Mutex, PoisonError};
use std::task::Poll;

use crate::breaker::CircuitBreaker;
use crate::budget::RetryBudget;
use crate::clock::Clock;
use crate::error::{Name, RetryError};
use crate::event::{OnRetry, RetryEvent};
use crate::pacer::Pacer;
use crate::policy::RetryPolicy;
use crate::retry::{Retry, RunSettings};
use crate::throttle::AdaptiveThrottle;
use crate::verdict::{AlwaysRetry, Classify, RetryIf, Verdict};

impl RetryPolicy {
    /// Prepares a batch: `op` is run on every item, each under its own run of
    /// this policy. `op` gets a clone of the item for every attempt, so pass
    /// references (`&items`) to keep that a copy. `op` returns a `Result` for
    /// [`Batch::call`] or a future of one for [`Batch::run`]; its argument's type
    /// is inferred from the items, so async closures can borrow them:
    /// `policy.batch(&keys, |key| async move { upload(key).await })`.
    pub fn batch<I, Op, R>(&self, items: impl IntoIterator<Item = I>, op: Op) -> Batch<'_, I, Op>
    where
        Op: FnMut(I) -> R,
    {
        Batch {
            settings: RunSettings::new(self),
            items: items.into_iter().collect(),
            op,
            classifier: AlwaysRetry,
            hook: (),
            fail_fast: false,
            concurrency: 1,
        }
    }
}

/// A configured batch, made by [`RetryPolicy::batch`]; run it with
/// [`call`](Self::call) (sync) or [`run`](Self::run) (async).
#[must_use = "a batch does nothing until .call() or .run()"]
pub struct Batch<'a, I, Op, C = AlwaysRetry, H = ()> {
    settings: RunSettings<'a>,
    items: Vec<I>,
    op: Op,
    classifier: C,
    hook: H,
    fail_fast: bool,
    concurrency: usize,
}

/// A callback before every retry of any item: `Fn(item_index, &event)`, or `()`.
pub trait BatchHook<E> {
    /// Called before a retry of the item at `index`.
    fn on_retry(&self, index: usize, event: &RetryEvent<'_, E>);
}

impl<E> BatchHook<E> for () {
    fn on_retry(&self, _: usize, _: &RetryEvent<'_, E>) {}
}

impl<E, F: Fn(usize, &RetryEvent<'_, E>)> BatchHook<E> for F {
    fn on_retry(&self, index: usize, event: &RetryEvent<'_, E>) {
        self(index, event)
    }
}

/// A batch's hook, as one item's run sees it.
struct ItemHook<'h, H> {
    hook: &'h H,
    index: usize,
}

impl<E, H: BatchHook<E>> OnRetry<E> for ItemHook<'_, H> {
    fn on_retry(&mut self, event: &RetryEvent<'_, E>) {
        self.hook.on_retry(self.index, event)
    }
}

/// Lends a batch's classifier to each item's run.
struct Shared<'c, C>(&'c C);

impl<E, C: Classify<E>> Classify<E> for Shared<'_, C> {
    fn classify(&self, error: &E) -> Verdict {
        self.0.classify(error)
    }
}

/// The run of one item: the batch's settings, with its classifier and hook lent.
fn item_run<'a, 'r, F, C, H>(
    settings: &RunSettings<'a>,
    op: F,
    classifier: &'r C,
    hook: &'r H,
    index: usize,
) -> Retry<'a, F, Shared<'r, C>, ItemHook<'r, H>> {
    Retry::from_parts(settings.clone(), op, Shared(classifier), ItemHook { hook, index })
}

impl<'a, I, Op, C, H> Batch<'a, I, Op, C, H> {
    /// Sets the classifier, as [`Retry::when`].
    pub fn when<C2>(self, classifier: C2) -> Batch<'a, I, Op, C2, H> {
        Batch {
            settings: self.settings,
            items: self.items,
            op: self.op,
            classifier,
            hook: self.hook,
            fail_fast: self.fail_fast,
            concurrency: self.concurrency,
        }
    }

    /// Sets a yes/no classifier, as [`Retry::retry_if`].
    pub fn retry_if<P>(self, transient: P) -> Batch<'a, I, Op, RetryIf<P>, H> {
        self.when(RetryIf(transient))
    }

    /// Calls `hook(item_index, &event)` before every retry of any item.
    pub fn on_retry<H2>(self, hook: H2) -> Batch<'a, I, Op, C, H2> {
        Batch {
            settings: self.settings,
            items: self.items,
            op: self.op,
            classifier: self.classifier,
            hook,
            fail_fast: self.fail_fast,
            concurrency: self.concurrency,
        }
    }

    /// Names every item's run, as [`Retry::name`].
    pub fn name(mut self, name: impl Into<Name>) -> Self {
        self.settings.name = name.into();
        self
    }

    /// Runs on this clock, as [`Retry::clock`].
    pub fn clock(mut self, clock: &'a dyn Clock) -> Self {
        self.settings.clock = Some(clock);
        self
    }

    /// Asks `breaker` before every attempt of every item, as [`Retry::breaker`].
    /// Once it opens, the remaining items fail fast with
    /// [`RetryError::CircuitOpen`] instead of each waiting out its retries.
    pub fn breaker(mut self, breaker: &'a CircuitBreaker) -> Self {
        self.settings.breaker = Some(breaker);
        self
    }

    /// Draws every item's retries from `budget`, as [`Retry::budget`].
    pub fn budget(mut self, budget: &'a RetryBudget) -> Self {
        self.settings.budget = Some(budget);
        self
    }

    /// Asks `throttle` before every attempt of every item, as [`Retry::throttle`].
    pub fn throttle(mut self, throttle: &'a AdaptiveThrottle) -> Self {
        self.settings.throttle = Some(throttle);
        self
    }

    /// Waits for a slot from `pacer` before every attempt of every item, as
    /// [`Retry::pacer`].
    pub fn pacer(mut self, pacer: &'a Pacer) -> Self {
        self.settings.pacer = Some(pacer);
        self
    }

    /// Stops at the first item whose retries fail: no further item is started
    /// (async: items already running finish, and their results are kept, after
    /// the failure's if they finish later). Default: run every item.
    pub fn fail_fast(mut self) -> Self {
        self.fail_fast = true;
        self
    }

    /// How many items an async batch runs at once (default 1; 0 counts as 1).
    /// Sync batches run one at a time.
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// Runs the batch synchronously, item after item, in order.
    pub fn call<T, E>(self) -> BatchOutcome<T, E>
    where
        I: Clone,
        Op: FnMut(I) -> Result<T, E>,
        C: Classify<E>,
        H: BatchHook<E>,
        E: Display,
    {
        let Batch { settings, items, mut op, classifier, hook, fail_fast, .. } = self;
        let total = items.len();
        let mut results = Vec::with_capacity(total);
        for (index, item) in items.into_iter().enumerate() {
            let result = item_run(&settings, || op(item.clone()), &classifier, &hook, index).call();
            let failed = result.is_err();
            results.push(result);
            if failed && fail_fast {
                break;
            }
        }
        BatchOutcome { skipped: total - results.len(), results }
    }

    /// Runs the batch asynchronously, up to [`concurrency`](Self::concurrency)
    /// items at once; outcomes come back in the items' order.
    pub async fn run<T, E, Fut>(self) -> BatchOutcome<T, E>
    where
        I: Clone,
        Op: FnMut(I) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classify<E>,
        H: BatchHook<E>,
        E: Display,
    {
        let Batch { settings, items, op, classifier, hook, fail_fast, concurrency } = self;
        let total = items.len();
        // Items run concurrently but `op` is `FnMut`: calls go through a lock,
        // held only while `op` makes the attempt's future, never across an
        // await. (A `Mutex` rather than a `RefCell` keeps the batch `Send`.)
        let op = Mutex::new(op);
        let (op, classifier, hook, settings) = (&op, &classifier, &hook, &settings);
        let start_item = |index: usize, item: I| {
            let op = move || (op.lock().unwrap_or_else(PoisonError::into_inner))(item.clone());
            let run = item_run(settings, op, classifier, hook, index);
            async move { (index, run.await) }
        };
        let mut slots: Vec<Option<Result<T, RetryError<E>>>> = (0..total).map(|_| None).collect();
        let mut waiting = items.into_iter().enumerate();
        let mut running = Vec::with_capacity(concurrency.min(total));
        let mut stopped = false;
        poll_fn(|cx| {
            loop {
                while !stopped && running.len() < concurrency {
                    match waiting.next() {
                        Some((index, item)) => running.push(Box::pin(start_item(index, item))),
                        None => break,
                    }
                }
                let mut progressed = false;
                let mut k = 0;
                while k < running.len() {
                    if let Poll::Ready((index, result)) = running[k].as_mut().poll(cx) {
                        stopped |= fail_fast && result.is_err();
                        slots[index] = Some(result);
                        drop(running.swap_remove(k));
                        progressed = true;
                    } else {
                        k += 1;
                    }
                }
                if running.is_empty() && (stopped || waiting.len() == 0) {
                    return Poll::Ready(());
                }
                if !progressed {
                    return Poll::Pending;
                }
            }
        })
        .await;
        // Items start in order, so the finished ones are a prefix.
        let results: Vec<_> = slots.into_iter().map_while(|slot| slot).collect();
        BatchOutcome { skipped: total - results.len(), results }
    }
}

/// What a batch did: one outcome per item it ran, in the items' order.
#[derive(Debug)]
pub struct BatchOutcome<T, E> {
    /// One result per item started, in the items' order. With fail-fast, a
    /// sync batch's last result is the failure that stopped it; an async
    /// batch lets the items already running finish, so with a concurrency
    /// above 1 the failure may be followed by their results (use
    /// [`failures`](Self::failures) to find it).
    pub results: Vec<Result<T, RetryError<E>>>,
    /// Items never started because a fail-fast batch stopped first.
    pub skipped: usize,
}

impl<T, E> BatchOutcome<T, E> {
    /// Whether every item ran and succeeded.
    pub fn is_success(&self) -> bool {
        self.skipped == 0 && self.results.iter().all(Result::is_ok)
    }

    /// The successful values, in order.
    pub fn successes(&self) -> impl Iterator<Item = &T> {
        self.results.iter().filter_map(|r| r.as_ref().ok())
    }

    /// The failed items, as `(index, error)`, in order.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &RetryError<E>)> {
        self.results.iter().enumerate().filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e)))
    }

    /// Every value, or the first item's error.
    pub fn into_result(self) -> Result<Vec<T>, RetryError<E>> {
        self.results.into_iter().collect()
    }
}
