//! Guards per key: a breaker, pacer, budget or limit — or a whole
//! [`Guards`](crate::Guards) — for each origin, bucket or prefix, made on
//! first use. [`Keyed`].
//!
//! One breaker for "the HTTP client" means one dead origin stops calls to
//! every healthy one; one pacer for "S3" ignores that S3's request rates are
//! per prefix (3,500 PUT/COPY/POST/DELETE and 5,500 GET/HEAD a second per
//! partitioned prefix). A [`Keyed`] holds one guard per key and makes a
//! key's guard the first time the key is asked for, from a function of the
//! key — so settings per key are an `if` in that function, and each guard
//! can carry its key in its name (its logs and metrics then say which key).
//!
//! The HTTP middleware and layer key by origin (scheme, host and port:
//! `RetryMiddleware::per_origin`); S3 transfers by bucket or by bucket and
//! prefix (`Transfer::per_bucket`, `Transfer::per_prefix`); a run takes a
//! key's guards like any other (`.guards(&keyed.get(key))`).
//!
//! # Bounded memory
//!
//! A `Keyed` holds at most [`max_keys`](KeyedBuilder::max_keys) keys
//! (default 10,000), spread over up to 16 shards (a shard may hold up to
//! twice its share, as keys do not hash evenly). When a new key comes with
//! the bound reached (or its shard at twice its share), its shard drops its
//! least recently asked-for quarter. Keys not
//! asked for in [`idle_after`](KeyedBuilder::idle_after) (default 10
//! minutes) are dropped when a new key comes to their shard (each shard looks
//! for them once per `idle_after`, so a key goes between one and two
//! `idle_after` after its last call, at a new key). A dropped key's guard lives
//! on while a call still holds it; the key's next call makes a new one (an
//! evicted breaker starts closed). A million distinct keys through a
//! `Keyed` of 10,000 hold 10,000 at most.
//!
//! Keys dropped are counted in [`evicted`](Keyed::evicted) and, with the
//! `metrics` feature, in `backstop_keyed_evictions_total` labelled with the
//! `Keyed`'s [`name`](KeyedBuilder::name); nothing is logged per key.
//!
//! # Cost
//!
//! Asking for a key that is held: one hash of the key, a read lock on its
//! shard (not contended by other shards' keys), one reference count. The
//! first call of a key runs the function that makes its guard, outside any
//! lock.
//!
//! ```
//! use backstop::keyed::Keyed;
//! use backstop::{CircuitBreaker, Guards, RetryPolicy};
//!
//! // A breaker per origin; the flaky one trips sooner.
//! let per_origin = Keyed::builder(|origin: &str| {
//!     let failures = if origin == "https://flaky.example" { 2 } else { 5 };
//!     let config = backstop::breaker::BreakerConfig::builder().consecutive_failures(failures).build().unwrap();
//!     Guards::builder().breaker(&CircuitBreaker::new(format!("api {origin}"), config)).build()
//! })
//! .max_keys(1_000)
//! .build()?;
//!
//! let guards = per_origin.get("https://api.example");
//! let answer = RetryPolicy::default().retry(|| Ok::<_, std::io::Error>("ok")).guards(&guards).call()?;
//! assert_eq!(answer, "ok");
//! assert_eq!(guards.breaker().map(|b| b.name()), Some("api https://api.example"));
//! assert_eq!(per_origin.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;
mod last;
mod shard;

use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

pub use builder::KeyedBuilder;

use crate::clock::Clock;
use shard::Shard;

/// One guard (or one [`Guards`](crate::Guards)) per key, made on first use,
/// with bounded memory; see the [module docs](self). `Clone` shares it.
pub struct Keyed<T> {
    inner: Arc<Inner<T>>,
}

type Make<T> = dyn Fn(&str) -> T + Send + Sync;

struct Inner<T> {
    name: Arc<str>,
    make: Box<Make<T>>,
    hasher: foldhash::fast::RandomState,
    shards: Box<[RwLock<Shard<T>>]>,
    max_keys: usize,
    /// Keys held, in every shard.
    held: AtomicUsize,
    idle_after: Duration,
    clock: Arc<dyn Clock>,
    origin: Instant,
    evicted: AtomicU64,
    /// This `Keyed`'s id, unique in the process (see `last`).
    id: u64,
    /// Moves on at every sweep, eviction and `forget`: a thread's last key
    /// is good only while it is unchanged.
    epoch: AtomicU64,
}

/// The id of the next `Keyed` built.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl<T> Clone for Keyed<T> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<T: Send + Sync + 'static> Keyed<T> {
    /// Starts a `Keyed` whose guard for a key is `make(key)`.
    pub fn builder(make: impl Fn(&str) -> T + Send + Sync + 'static) -> KeyedBuilder<T> {
        KeyedBuilder::new(Box::new(make))
    }

    /// The guard for `key`: the one held, or a new one made by the builder's
    /// function (then held, within [`max_keys`](Self::max_keys)).
    #[inline]
    pub fn get(&self, key: &str) -> Arc<T> {
        let inner = &*self.inner;
        let epoch = inner.epoch.load(Ordering::Acquire);
        match last::get(inner.id, epoch, key) {
            Some(held) => held,
            None => self.get_from_shard(epoch, key),
        }
    }

    /// The key's guard from its shard (made if it is not held), made this
    /// thread's last key if the shard held it.
    #[inline(never)]
    fn get_from_shard(&self, epoch: u64, key: &str) -> Arc<T> {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(key);
        let shard = &inner.shards[(hash as usize) & (inner.shards.len() - 1)];
        let held = shard.read().unwrap_or_else(PoisonError::into_inner).get(hash, key);
        match held {
            Some(held) => {
                last::set(inner.id, epoch, key, &held);
                held
            }
            // Not remembered yet: its next call renews its stamp in the shard.
            None => self.make(shard, hash, key),
        }
    }

    #[cold]
    #[inline(never)]
    fn make(&self, shard: &RwLock<Shard<T>>, hash: u64, key: &str) -> Arc<T> {
        let inner = &*self.inner;
        let now =
            u64::try_from(inner.clock.now().saturating_duration_since(inner.origin).as_nanos()).unwrap_or(u64::MAX);
        // Made outside the lock: the function may be slow, or ask this
        // `Keyed` for another key.
        let made = Arc::new((inner.make)(key));
        // A shard may hold up to twice its share while the whole is under
        // the bound (keys do not hash evenly); at the bound, the shard a new
        // key falls in makes room.
        let cap = (inner.max_keys / inner.shards.len()).saturating_mul(2).max(1);
        let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = shard.get(hash, key) {
            return held; // another caller made it first
        }
        let full = inner.held.load(Ordering::Acquire) >= inner.max_keys;
        let idle_after = u64::try_from(inner.idle_after.as_nanos()).unwrap_or(u64::MAX);
        let sweeps = shard.sweeps();
        let evicted = shard.insert(hash, key, Arc::clone(&made), now, idle_after, full, cap);
        if evicted > 0 || shard.sweeps() != sweeps {
            inner.epoch.fetch_add(1, Ordering::AcqRel);
        }
        // (Two shards making keys at once may both see room for the last
        // place: the bound is passed by at most one key a shard, until the
        // next new key makes room.)
        inner.held.fetch_add(1, Ordering::AcqRel);
        inner.held.fetch_sub(evicted, Ordering::AcqRel);
        drop(shard);
        if evicted > 0 {
            inner.evicted.fetch_add(evicted as u64, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            metrics::counter!("backstop_keyed_evictions_total", "name" => inner.name.to_string())
                .increment(evicted as u64);
        }
        made
    }

    /// Whether `key` has a guard held now (without making one).
    pub fn contains(&self, key: &str) -> bool {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(key);
        let shard = &inner.shards[(hash as usize) & (inner.shards.len() - 1)];
        shard.read().unwrap_or_else(PoisonError::into_inner).contains(hash, key)
    }

    /// Drops `key`'s guard (a call holding it keeps it); returns whether one
    /// was held.
    pub fn forget(&self, key: &str) -> bool {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(key);
        let shard = &inner.shards[(hash as usize) & (inner.shards.len() - 1)];
        let removed = shard.write().unwrap_or_else(PoisonError::into_inner).remove(hash, key);
        if removed {
            inner.held.fetch_sub(1, Ordering::AcqRel);
            inner.epoch.fetch_add(1, Ordering::AcqRel);
        }
        removed
    }

    /// How many keys have a guard held now (at most
    /// [`max_keys`](Self::max_keys)).
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }

    /// Whether no key has a guard held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys held at once (the builder's
    /// [`max_keys`](KeyedBuilder::max_keys)).
    pub fn max_keys(&self) -> usize {
        self.inner.max_keys
    }

    /// Its name (see [`KeyedBuilder::name`]).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How many keys have been dropped so far, idle or to make room.
    pub fn evicted(&self) -> u64 {
        self.inner.evicted.load(Ordering::Relaxed)
    }
}

impl<T> fmt::Debug for Keyed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyed")
            .field("name", &self.inner.name)
            .field("max_keys", &self.inner.max_keys)
            .field("idle_after", &self.inner.idle_after)
            .field("evicted", &self.inner.evicted.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
