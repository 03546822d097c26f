//! A fleet's settings, as its thread and guards read them.

use std::time::Duration;

/// A fleet's settings; see [`FleetBuilder`](crate::FleetBuilder).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `host:port`, for logs (never the URL: it may hold a password).
    pub(crate) address: String,
    pub(crate) timeout: Duration,
    pub(crate) refresh: Duration,
    pub(crate) reconnect_every: Duration,
    pub(crate) join_wait: Duration,
    pub(crate) key_ttl: Duration,
    pub(crate) probe_lease: Duration,
    pub(crate) budget_lease: Option<u32>,
}

impl Settings {
    pub(crate) fn ttl_ms(&self) -> u64 {
        millis(self.key_ttl)
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
