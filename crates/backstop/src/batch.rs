//! Retrying every item of a batch: [`RetryPolicy::batch`].
//!
//! Each item gets its own run of the policy (its own attempts and backoff),
//! as a batch wrapper in a data pipeline would: one failed key does not
//! use up another key's retries. A batch either collects every
//! item's outcome (the default) or stops at the first item whose retries fail
//! ([`fail_fast`](Batch::fail_fast)). A batch of blocking operations runs
//! with [`call`](Batch::call), item after item; a batch of async ones is
//! `.await`ed and runs up to [`concurrency`](Batch::concurrency) items at once.
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
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::policy::RetryPolicy;
use crate::retry::{
    Async, Blocking, MakeAttempt, OnRetry, Retry, RetryError, RetryEvent, RetryFuture, RunSettings, Value,
};
use crate::verdict::{AlwaysRetry, Classify, RetryIf, Verdict};

/// An operation a batch can run on each item: `FnMut(I) -> Result<T, E>`
/// (kind [`Blocking`]) or `FnMut(I) -> impl Future<Output = Result<T, E>>`
/// (kind [`Async`]). Implemented for every such closure.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an operation a batch can run on each item",
    label = "this must take an item and return `Result<T, E>`, or a future of one"
)]
pub trait ItemAttempt<I, K> {
    /// The operation's error, which the classifier judges.
    type Error;
}

impl<F, I, T, E> ItemAttempt<I, Blocking> for F
where
    F: FnMut(I) -> Result<T, E>,
{
    type Error = E;
}

impl<F, I, Fut, T, E> ItemAttempt<I, Async> for F
where
    F: FnMut(I) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Error = E;
}

impl RetryPolicy {
    /// Prepares a batch: `op` is run on every item, each under its own run of
    /// this policy. `op` gets a clone of the item for every attempt, so pass
    /// references (`&items`) to keep that a copy. `op` returns a `Result`
    /// (run the batch with [`Batch::call`]) or a future of one (`.await` the
    /// batch); its argument's type is inferred from the items, so async
    /// closures can borrow them:
    /// `policy.batch(&keys, |key| async move { upload(key).await })`.
    pub fn batch<I, Op, R, K>(
        &self,
        items: impl IntoIterator<Item = I>,
        op: Op,
    ) -> Batch<'_, I, Op, <Op as ItemAttempt<I, K>>::Error, K>
    where
        Op: FnMut(I) -> R + ItemAttempt<I, K>,
    {
        Batch {
            settings: RunSettings::new(self),
            items: items.into_iter().collect(),
            op,
            classifier: AlwaysRetry,
            hook: (),
            fail_fast: false,
            concurrency: 1,
            kind: PhantomData,
        }
    }
}

/// A configured batch, made by [`RetryPolicy::batch`]; run it with
/// [`call`](Self::call) (blocking operations) or `.await` it (async ones).
#[must_use = "a batch does nothing until .call() or .await"]
pub struct Batch<'a, I, Op, E, K, C = AlwaysRetry, H = ()> {
    settings: RunSettings<'a>,
    items: Vec<I>,
    op: Op,
    classifier: C,
    hook: H,
    fail_fast: bool,
    concurrency: usize,
    kind: PhantomData<fn() -> (E, K)>,
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

/// A batch's hook, as one item's run sees it (`P`: a reference or an `Arc`).
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct ItemHook<P> {
    hook: P,
    index: usize,
}

impl<E, P: Deref<Target: BatchHook<E>>> OnRetry<E> for ItemHook<P> {
    fn on_retry(&mut self, event: &RetryEvent<'_, E>) {
        self.hook.on_retry(self.index, event)
    }
}

/// A batch's classifier lent to each item's run (`P`: a reference or an `Arc`).
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct Shared<P>(P);

impl<E, P: Deref<Target: Classify<E>>> Classify<E> for Shared<P> {
    fn classify(&self, error: &E) -> Verdict {
        self.0.classify(error)
    }

    fn describer(&self) -> Option<crate::verdict::Describe<E>> {
        self.0.describer()
    }
}

/// One item's async attempts: the batch's operation, called on a clone of the item.
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct ItemOp<Op, I> {
    op: Arc<Mutex<Op>>,
    item: I,
}

impl<Op, I, Fut> MakeAttempt<Fut> for ItemOp<Op, I>
where
    Op: FnMut(I) -> Fut,
    I: Clone,
{
    fn make(&mut self) -> Fut {
        // Held only while `op` makes the attempt's future, never across an
        // await. (A `Mutex` rather than a `RefCell` keeps the batch `Send`.)
        (self.op.lock().unwrap_or_else(PoisonError::into_inner))(self.item.clone())
    }
}

impl<I, Op, E, K, C, H> std::fmt::Debug for Batch<'_, I, Op, E, K, C, H> {
    /// The batch's settings, its size and how it runs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("settings", &self.settings)
            .field("items", &self.items.len())
            .field("fail_fast", &self.fail_fast)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl<'a, I, Op, E, K, C, H> Batch<'a, I, Op, E, K, C, H> {
    /// Sets the classifier, as [`Retry::when`].
    pub fn when<F>(self, classifier: F) -> Batch<'a, I, Op, E, K, F, H>
    where
        F: Fn(&E) -> Verdict,
    {
        Batch {
            settings: self.settings,
            items: self.items,
            op: self.op,
            classifier,
            hook: self.hook,
            fail_fast: self.fail_fast,
            concurrency: self.concurrency,
            kind: PhantomData,
        }
    }

    /// Sets a yes/no classifier, as [`Retry::retry_if`].
    pub fn retry_if<P>(self, transient: P) -> Batch<'a, I, Op, E, K, RetryIf<P>, H>
    where
        P: Fn(&E) -> bool,
    {
        Batch {
            settings: self.settings,
            items: self.items,
            op: self.op,
            classifier: RetryIf(transient),
            hook: self.hook,
            fail_fast: self.fail_fast,
            concurrency: self.concurrency,
            kind: PhantomData,
        }
    }

    /// Calls `hook(item_index, &event)` before every retry of any item.
    pub fn on_retry<F>(self, hook: F) -> Batch<'a, I, Op, E, K, C, F>
    where
        F: Fn(usize, &RetryEvent<'_, E>),
    {
        Batch {
            settings: self.settings,
            items: self.items,
            op: self.op,
            classifier: self.classifier,
            hook,
            fail_fast: self.fail_fast,
            concurrency: self.concurrency,
            kind: PhantomData,
        }
    }

    /// Names every item's run in log lines, metrics labels and errors
    /// (default: `"operation"`).
    pub fn name(mut self, name: impl Into<crate::retry::Name>) -> Self {
        self.settings.name = name.into();
        self
    }

    crate::retry::run_setters!(Self);

    /// The batch with its settings changed by `change`.
    fn with_settings(mut self, change: impl FnOnce(&mut RunSettings<'a>)) -> Self {
        change(&mut self.settings);
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
    /// Blocking batches run one at a time.
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }
}

impl<I, Op, T, E, C, H> Batch<'_, I, Op, E, Blocking, C, H>
where
    I: Clone,
    Op: FnMut(I) -> Result<T, E>,
    C: Classify<E>,
    H: BatchHook<E>,
    E: Display,
{
    /// Runs the batch, item after item, in order.
    pub fn call(self) -> BatchOutcome<T, E> {
        let Batch { settings, items, mut op, classifier, hook, fail_fast, .. } = self;
        let total = items.len();
        let mut results = Vec::with_capacity(total);
        for (index, item) in items.into_iter().enumerate() {
            let (classifier, hook) = (Shared(&classifier), ItemHook { hook: &hook, index });
            let run: Retry<'_, _, E, Blocking, _, _, Value, RunSettings<'_>> =
                Retry::from_parts(settings.clone(), || op(item.clone()), classifier, hook);
            let result = run.call();
            let failed = result.is_err();
            results.push(result);
            if failed && fail_fast {
                break;
            }
        }
        BatchOutcome { skipped: total - results.len(), results }
    }
}

impl<'a, I, Op, Fut, T, E, C, H> IntoFuture for Batch<'a, I, Op, E, Async, C, H>
where
    I: Clone,
    Op: FnMut(I) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    C: Classify<E>,
    H: BatchHook<E>,
    E: Display,
{
    type Output = BatchOutcome<T, E>;
    type IntoFuture = BatchFuture<'a, I, Op, Fut, C, H, T, E>;

    /// Runs the batch, up to [`concurrency`](Batch::concurrency) items at
    /// once; outcomes come back in the items' order.
    fn into_future(self) -> Self::IntoFuture {
        let total = self.items.len();
        BatchFuture {
            settings: self.settings,
            op: Arc::new(Mutex::new(self.op)),
            classifier: Arc::new(self.classifier),
            hook: Arc::new(self.hook),
            waiting: self.items.into_iter().enumerate(),
            running: Vec::with_capacity(self.concurrency.min(total)),
            slots: (0..total).map(|_| None).collect(),
            fail_fast: self.fail_fast,
            concurrency: self.concurrency,
            stopped: false,
            done: false,
        }
    }
}

/// One item's run inside an async batch.
type ItemRun<'a, I, Op, Fut, C, H, E> =
    Pin<Box<RetryFuture<'a, ItemOp<Op, I>, Fut, Shared<Arc<C>>, ItemHook<Arc<H>>, E, Value, RunSettings<'a>>>>;

pin_project! {
    /// The future of an async batch; `.await` a [`Batch`] to get one. It is
    /// `Send` when the items, the operation, its futures and its results are.
    ///
    /// Dropping it cancels every item still running, as dropping a
    /// [`RetryFuture`] does.
    #[must_use = "futures do nothing unless polled"]
    pub struct BatchFuture<'a, I, Op, Fut, C, H, T, E> {
        settings: RunSettings<'a>,
        op: Arc<Mutex<Op>>,
        classifier: Arc<C>,
        hook: Arc<H>,
        waiting: std::iter::Enumerate<std::vec::IntoIter<I>>,
        running: Vec<(usize, ItemRun<'a, I, Op, Fut, C, H, E>)>,
        slots: Vec<Option<Result<T, RetryError<E>>>>,
        fail_fast: bool,
        concurrency: usize,
        stopped: bool,
        done: bool,
    }
}

impl<I, Op, Fut, C, H, T, E> std::fmt::Debug for BatchFuture<'_, I, Op, Fut, C, H, T, E> {
    /// How far the batch is: items running, waiting and done.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchFuture")
            .field("running", &self.running.len())
            .field("waiting", &self.waiting.len())
            .field("done", &self.slots.iter().filter(|s| s.is_some()).count())
            .finish_non_exhaustive()
    }
}

impl<I, Op, Fut, T, E, C, H> Future for BatchFuture<'_, I, Op, Fut, C, H, T, E>
where
    I: Clone,
    Op: FnMut(I) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    C: Classify<E>,
    H: BatchHook<E>,
    E: Display,
{
    type Output = BatchOutcome<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(!*this.done, "BatchFuture polled after it completed");
        loop {
            while !*this.stopped && this.running.len() < *this.concurrency {
                let Some((index, item)) = this.waiting.next() else { break };
                let op = ItemOp { op: Arc::clone(this.op), item };
                let classifier = Shared(Arc::clone(this.classifier));
                let hook = ItemHook { hook: Arc::clone(this.hook), index };
                let run = RetryFuture::new(this.settings.clone(), op, classifier, hook, None);
                this.running.push((index, Box::pin(run)));
            }
            let mut progressed = false;
            let mut k = 0;
            while k < this.running.len() {
                let (index, run) = &mut this.running[k];
                if let Poll::Ready(result) = run.as_mut().poll(cx) {
                    *this.stopped |= *this.fail_fast && result.is_err();
                    this.slots[*index] = Some(result);
                    drop(this.running.swap_remove(k));
                    progressed = true;
                } else {
                    k += 1;
                }
            }
            if this.running.is_empty() && (*this.stopped || this.waiting.len() == 0) {
                // Items start in order, so the finished ones are a prefix.
                let total = this.slots.len();
                let results: Vec<_> = std::mem::take(this.slots).into_iter().map_while(|slot| slot).collect();
                *this.done = true;
                return Poll::Ready(BatchOutcome { skipped: total - results.len(), results });
            }
            if !progressed {
                return Poll::Pending;
            }
        }
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
