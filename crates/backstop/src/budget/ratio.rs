//! The ratio algorithm (Finagle's and tower's retry budget): retries may add
//! at most a fixed share of the requests seen in a sliding window, plus a
//! floor of retries a second.

use crate::sliding::SlidingCounts;
use crate::sync::Mutex;

pub(super) struct Ratio {
    /// Counters: requests (first attempts), retries. A refund takes its
    /// retry back out of the slice it was counted in, if that is still in
    /// the window (a refund never cancels a retry the window already forgot).
    pub(super) counts: SlidingCounts<2>,
    pub(super) ratio: f64,
    /// The floor over the whole window: `min_per_sec · window`.
    pub(super) floor: f64,
    pub(super) withdraw: Mutex<()>,
}

impl Ratio {
    /// Requests and (unrefunded) retries in the window ending at `now`.
    pub(super) fn totals(&self, now: u64) -> (u32, u32) {
        let [requests, retries] = self.counts.totals(now);
        (requests, retries)
    }
}
