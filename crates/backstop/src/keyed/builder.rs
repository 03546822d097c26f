//! [`KeyedBuilder`]: the bound on keys, the idle time, the clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::shard::Shard;
use super::{Inner, Keyed, Make};
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;

/// The most keys a [`Keyed`] may be allowed to hold.
const MOST_KEYS: usize = 10_000_000;
/// Below this many keys per shard, fewer shards.
const KEYS_PER_SHARD: usize = 256;
/// The most shards.
const SHARDS: usize = 16;

/// Builds a [`Keyed`]; see [`Keyed::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct KeyedBuilder<T> {
    name: Arc<str>,
    make: Box<Make<T>>,
    max_keys: usize,
    idle_after: Duration,
    clock: Arc<dyn Clock>,
}

impl<T> std::fmt::Debug for KeyedBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedBuilder")
            .field("name", &self.name)
            .field("max_keys", &self.max_keys)
            .field("idle_after", &self.idle_after)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> KeyedBuilder<T> {
    pub(super) fn new(make: Box<Make<T>>) -> Self {
        Self {
            name: Arc::from("keyed"),
            make,
            max_keys: 10_000,
            idle_after: Duration::from_secs(600),
            clock: Arc::new(SystemClock),
        }
    }

    /// Its name (default `keyed`): the `name` label of its metric,
    /// `backstop_keyed_evictions_total` (keys dropped, idle or to make
    /// room). Each key's guards carry their own names (see the module
    /// docs), so their logs and metrics say which key.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The most keys held at once (default 10,000; allowed: 1 ..=
    /// 10,000,000). Past it, a new key makes room by dropping idle or
    /// least recently used keys (see the [module docs](super)).
    pub fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = n;
        self
    }

    /// How long a key may go unasked before it is dropped (default 10
    /// minutes; allowed: 1 ms ..= 30 days): it goes between one and two
    /// `idle_after` after its last call, when a new key comes to its shard
    /// (a `Keyed` that sees no new keys keeps its keys, and its memory does
    /// not grow either).
    pub fn idle_after(mut self, d: Duration) -> Self {
        self.idle_after = d;
        self
    }

    /// The clock idle time is measured on (default: [`SystemClock`]); a
    /// [`ManualClock`](crate::ManualClock) in tests.
    pub fn clock<C: Clock + Clone + 'static>(mut self, clock: &C) -> Self {
        self.clock = Arc::new(clock.clone());
        self
    }

    /// Checks the settings and returns the `Keyed`, or the first bad setting.
    pub fn build(self) -> Result<Keyed<T>, ConfigError> {
        let err = |field, problem: String, allowed| Err(ConfigError::of("keyed guards", field, problem, allowed));
        if !(1..=MOST_KEYS).contains(&self.max_keys) {
            return err("max_keys", format!("is {}", self.max_keys), "1 ..= 10000000");
        }
        if !(Duration::from_millis(1)..=Duration::from_secs(30 * 86_400)).contains(&self.idle_after) {
            return err("idle_after", format!("is {:?}", self.idle_after), "1ms ..= 30 days");
        }
        // A power of two, so a shard is the hash's low bits.
        let shards = (self.max_keys / KEYS_PER_SHARD).clamp(1, SHARDS);
        let shards = if shards.is_power_of_two() { shards } else { shards.next_power_of_two() / 2 };
        let origin = self.clock.now();
        Ok(Keyed {
            inner: Arc::new(Inner {
                name: self.name,
                make: self.make,
                hasher: foldhash::fast::RandomState::default(),
                shards: (0..shards).map(|_| RwLock::new(Shard::new())).collect(),
                max_keys: self.max_keys,
                held: std::sync::atomic::AtomicUsize::new(0),
                idle_after: self.idle_after,
                clock: self.clock,
                origin,
                evicted: AtomicU64::new(0),
                id: super::NEXT_ID.fetch_add(1, Ordering::Relaxed),
                epoch: AtomicU64::new(0),
            }),
        })
    }
}
