//! Support for backstop's benchmarks: a private nginx ([`nginx`]), a
//! counting global allocator, and the allocation records the report reads
//! beside criterion's timings.
//!
//! Counts are thread-local (a `Cell` per thread), so counting costs the
//! measured code no atomic operation.

pub mod botocore;
pub mod nginx;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::PathBuf;

thread_local! {
    static COUNT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// The system allocator, counting this thread's allocations and bytes.
pub struct CountingAllocator;

// SAFETY: every call is passed on to the system allocator unchanged; the
// bookkeeping is a thread-local `Cell` of plain integers, which allocates
// nothing itself.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| {
            let (n, bytes) = c.get();
            c.set((n + 1, bytes + layout.size() as u64));
        });
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// This thread's allocation count and bytes so far.
pub fn allocated() -> (u64, u64) {
    COUNT.with(Cell::get)
}

/// Allocations per call of each case of one benchmark group.
pub struct Allocations {
    group: String,
    cases: BTreeMap<String, (f64, f64)>,
}

impl Allocations {
    /// Records for `group`.
    pub fn new(group: &str) -> Self {
        Self { group: group.to_owned(), cases: BTreeMap::new() }
    }

    /// Runs `f` (after a warm-up) and records its allocations and bytes per call.
    pub fn measure(&mut self, case: &str, mut f: impl FnMut()) {
        const CALLS: u64 = 1000;
        for _ in 0..10 {
            f();
        }
        let (n0, b0) = allocated();
        for _ in 0..CALLS {
            f();
        }
        let (n1, b1) = allocated();
        self.cases.insert(case.to_owned(), ((n1 - n0) as f64 / CALLS as f64, (b1 - b0) as f64 / CALLS as f64));
    }
}

/// Where the records go: `target/backstop-bench/allocations.json`.
pub fn records_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join("backstop-bench").join("allocations.json")
}

/// The records so far: group -> case -> (allocations, bytes) per call.
pub type Records = BTreeMap<String, BTreeMap<String, (f64, f64)>>;

/// Reads the records written so far (none if there are none).
pub fn read_records() -> Records {
    std::fs::read_to_string(records_path()).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// Adds one group's allocations to the records.
pub fn record_allocations(a: Allocations) {
    let mut all = read_records();
    all.insert(a.group, a.cases);
    let path = records_path();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(text) = serde_json::to_string_pretty(&all) {
        let _ = std::fs::write(path, text);
    }
}
