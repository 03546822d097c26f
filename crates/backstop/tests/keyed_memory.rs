//! A million distinct keys through a `Keyed` of 1,000 do not grow memory
//! past its bound: the most bytes live over the last 500,000 keys are no
//! more than over the first 500,000 (within a page), and under 400 kB.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

use backstop::keyed::Keyed;

struct Live;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: defers every call to the system allocator unchanged; the counter
// is a static atomic that allocates nothing.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

#[test]
fn a_million_distinct_keys_do_not_grow_memory_past_the_bound() {
    // A guard the size of a `Guards` (six words).
    let keyed = Keyed::builder(|_: &str| [0u64; 6]).max_keys(1_000).build().unwrap();
    let mut key = String::with_capacity(32);
    let mut live_at = |n: u32, from: u32| {
        for i in from..n {
            use std::fmt::Write;
            key.clear();
            let _ = write!(key, "https://host-{i}.example:443");
            let _ = keyed.get(&key);
        }
        LIVE.load(Ordering::Relaxed)
    };
    // Live bytes every 100,000 keys.
    let live: Vec<i64> = (0..10u32).map(|k| live_at((k + 1) * 100_000, k * 100_000)).collect();
    assert!(keyed.len() <= 1_000);
    let (first, second) = live.split_at(5);
    let (max_first, max_second) = (first.iter().max().unwrap(), second.iter().max().unwrap());
    assert!(
        max_second - max_first <= 4096,
        "live bytes grew from at most {max_first} (first 500,000 keys) to {max_second} (next 500,000): {live:?}"
    );
    // And the bound itself is small: 1,000 keys of ~30 bytes with their
    // guards, in tables that may hold twice that.
    assert!(live.iter().all(|&b| b < 400_000), "bytes live for 1,000 keys: {live:?}");
}
