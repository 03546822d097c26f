//! The synchronisation primitives of shared components, swapped for `loom`'s
//! when the crate is built with `RUSTFLAGS="--cfg backstop_loom"`, so model
//! tests explore every interleaving of the real code.

#[cfg(backstop_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
#[cfg(backstop_loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

#[cfg(not(backstop_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
#[cfg(not(backstop_loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

/// Locks, recovering from poisoning: the guarded data are plain counters
/// kept consistent by each critical section, so a panic elsewhere leaves
/// nothing half-written that matters.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keeps a hot atomic on its own cache line, so writes to its neighbours do
/// not slow down its readers.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);
