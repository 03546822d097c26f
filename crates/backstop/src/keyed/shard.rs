//! One shard of a [`Keyed`](super::Keyed): its keys' guards, and which to
//! drop when it is full or they are idle.
//!
//! Each held key remembers when it was last asked for as a *stamp*: the
//! number of sweeps its shard had made then, doubled, plus one if it was
//! asked for again after it was made. Making room drops the lowest stamps:
//! keys not asked for since older sweeps first, and among those of one
//! sweep, keys made and never asked for again, so a scan of a million
//! one-off keys evicts them before a busy key. Asking
//! stores the stamp only when it changed, so a busy key writes its cache
//! line once per sweep, not once per call, and reads no clock.
//!
//! Idle keys: when a new key comes at least `idle_after` since the shard's
//! last idle sweep, the keys not asked for since that sweep (so for at least
//! `idle_after`) are dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::HashTable;

struct Held<T> {
    hash: u64,
    key: Box<str>,
    value: Arc<T>,
    stamp: AtomicU64,
}

impl<T> Held<T> {
    fn stamp(&self) -> u64 {
        self.stamp.load(Ordering::Relaxed)
    }
}

pub(super) struct Shard<T> {
    table: HashTable<Held<T>>,
    /// Sweeps so far: the stamp of a key asked for now.
    sweeps: u64,
    /// The stamp at the last idle sweep, and when it was (ns on the
    /// `Keyed`'s clock).
    idle_mark: u64,
    idle_swept_at: u64,
}

impl<T> Shard<T> {
    pub(super) fn new() -> Self {
        Self { table: HashTable::new(), sweeps: 0, idle_mark: 0, idle_swept_at: 0 }
    }

    /// The guard held for `key`, marked as asked for.
    #[inline]
    pub(super) fn get(&self, hash: u64, key: &str) -> Option<Arc<T>> {
        let held = self.table.find(hash, |h| h.hash == hash && &*h.key == key)?;
        let asked = self.sweeps << 1 | 1;
        if held.stamp() != asked {
            held.stamp.store(asked, Ordering::Relaxed);
        }
        Some(Arc::clone(&held.value))
    }

    pub(super) fn contains(&self, hash: u64, key: &str) -> bool {
        self.table.find(hash, |h| h.hash == hash && &*h.key == key).is_some()
    }

    pub(super) fn remove(&mut self, hash: u64, key: &str) -> bool {
        match self.table.find_entry(hash, |h| h.hash == hash && &*h.key == key) {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// How many sweeps the shard has made (idle sweeps and making room).
    pub(super) fn sweeps(&self) -> u64 {
        self.sweeps
    }

    /// Holds `value` for `key` (not held yet) at `now`, first dropping the
    /// idle keys (once `idle_after` has passed since the last time) and,
    /// when the whole `Keyed` is `full` or this shard holds `cap` keys,
    /// making room; returns how many were dropped.
    #[allow(clippy::too_many_arguments)] // one call site, in `Keyed::make`
    pub(super) fn insert(
        &mut self,
        hash: u64,
        key: &str,
        value: Arc<T>,
        now: u64,
        idle_after: u64,
        full: bool,
        cap: usize,
    ) -> usize {
        let before = self.table.len();
        if now.saturating_sub(self.idle_swept_at) >= idle_after {
            let mark = self.idle_mark << 1;
            self.table.retain(|h| h.stamp() >= mark);
            self.sweeps += 1;
            (self.idle_mark, self.idle_swept_at) = (self.sweeps, now);
        }
        let len = self.table.len();
        if len > 0 && ((full && len == before) || len >= cap) {
            self.make_room(len.min(cap));
        }
        let held = Held { hash, key: key.into(), value, stamp: AtomicU64::new(self.sweeps << 1) };
        self.table.insert_unique(hash, held, |h| h.hash);
        before + 1 - self.table.len()
    }

    /// Drops the least recently asked-for quarter of the shard (at least
    /// one key, and below `most`): keys from older sweeps first, then those
    /// made and not asked for again since the last one.
    fn make_room(&mut self, most: usize) {
        if self.table.len() >= most {
            let keep = (most - most / 4).min(most - 1);
            let mut stamps: Vec<u64> = self.table.iter().map(Held::stamp).collect();
            stamps.sort_unstable();
            let cut = stamps.len() - keep;
            // Every stamp below the newest dropped one goes, and as many at
            // it as make up the cut.
            let newest_dropped = stamps[cut - 1];
            let mut at_it = cut - stamps.partition_point(|&s| s < newest_dropped);
            self.table.retain(|h| match h.stamp().cmp(&newest_dropped) {
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal if at_it > 0 => {
                    at_it -= 1;
                    false
                }
                _ => true,
            });
        }
        self.sweeps += 1;
    }
}
