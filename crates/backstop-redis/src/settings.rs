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

    /// How long a process that says it is alive every `heard_every` is kept
    /// unheard of before the fleet forgets it: `at_least`, or three
    /// refreshes past `heard_every` if longer (it says so on a full pass,
    /// which comes once a refresh).
    pub(crate) fn forget_after(&self, at_least: Duration, heard_every: Duration) -> Duration {
        at_least.max(heard_every + 3 * self.refresh)
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_never_forgotten_between_two_of_its_syncs() {
        let settings = |refresh| Settings {
            address: String::new(),
            timeout: Duration::from_millis(50),
            refresh,
            reconnect_every: Duration::from_secs(1),
            join_wait: Duration::from_secs(1),
            key_ttl: Duration::from_secs(60),
            probe_lease: Duration::from_secs(30),
            budget_lease: None,
        };
        let s = Duration::from_secs;
        assert_eq!(settings(Duration::from_millis(200)).forget_after(s(10), s(1)), s(10));
        assert_eq!(settings(s(30)).forget_after(s(10), s(1)), s(91));
        assert_eq!(settings(s(60)).forget_after(s(60), s(20)), s(200));
    }
}
