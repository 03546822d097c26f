//! Each thread's last key: the key a thread asked a [`Keyed`](super::Keyed)
//! for last, with its guard, so that asking for it again (the common case:
//! a thread calling one origin or bucket in a loop) costs a comparison of
//! the key and a reference count, with no hash and no lock.
//!
//! The entry is good while its `Keyed`'s *epoch* is unchanged: the epoch
//! moves on at every sweep, eviction and `forget`, so a thread never keeps
//! using a guard its `Keyed` dropped, and a key its thread asks for only
//! through this entry still has its stamp renewed (its shard's stamps only
//! go stale at a sweep, which moves the epoch, which sends the next call
//! through its shard). A key is remembered only when its shard held it
//! (a key just made is not: its stamp says "made, never asked again" until
//! it is asked again through the shard). The entry holds its guard weakly:
//! it keeps nothing alive. One entry a thread, for every `Keyed`: a thread
//! that alternates between keys or between `Keyed`s just goes through the
//! shards.

use std::any::Any;
use std::cell::RefCell;
use std::sync::{Arc, Weak};

struct Last {
    /// The `Keyed`'s id (unique in the process, never reused).
    keyed: u64,
    epoch: u64,
    key: String,
    guard: Weak<dyn Any + Send + Sync>,
}

thread_local! {
    static LAST: RefCell<Option<Last>> = const { RefCell::new(None) };
}

/// This thread's guard for `key` of `Keyed` `keyed` at `epoch`, if it is
/// the last one this thread asked for.
#[inline]
pub(super) fn get<T: Send + Sync + 'static>(keyed: u64, epoch: u64, key: &str) -> Option<Arc<T>> {
    LAST.try_with(|last| {
        let last = last.try_borrow().ok()?;
        let last = last.as_ref().filter(|l| l.keyed == keyed && l.epoch == epoch && l.key == key)?;
        last.guard.upgrade()?.downcast::<T>().ok()
    })
    .ok()
    .flatten()
}

/// Makes `guard` this thread's last key.
pub(super) fn set<T: Send + Sync + 'static>(keyed: u64, epoch: u64, key: &str, guard: &Arc<T>) {
    let _ = LAST.try_with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else { return };
        let guard: Weak<T> = Arc::downgrade(guard);
        let guard: Weak<dyn Any + Send + Sync> = guard;
        match &mut *last {
            Some(l) => {
                (l.keyed, l.epoch, l.guard) = (keyed, epoch, guard);
                l.key.clear();
                l.key.push_str(key); // reuses the buffer: no allocation for a key no longer than the last
            }
            None => *last = Some(Last { keyed, epoch, key: key.to_owned(), guard }),
        }
    });
}
