//! [`Fleet`]: the handle users build once per process and give to the
//! guards' builders, and its settings.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use backstop::breaker::{BreakerLink, BreakerStore, SharedBreaker};
use backstop::budget::{BudgetLink, BudgetStore, SharedBudget, SharedRatio};
use backstop::limit::{LimitLink, LimitStore, SharedLimit};
use backstop::pacer::{PacerLink, PacerStore, SharedPacer};
use redis::{Client, ConnectionAddr};

use crate::breaker::BreakerShare;
use crate::budget::BudgetShare;
use crate::error::FleetError;
use crate::hub::{self, Hub};
use crate::limit::LimitShare;
use crate::pace::PaceShare;
use crate::ratio::RatioShare;
use crate::settings::Settings;

/// A connection to the Redis that a fleet of workers shares guard state
/// through; give it to a guard's builder with `.shared(&fleet)`:
///
/// ```no_run
/// use backstop::{CircuitBreaker, RetryBudget};
/// use backstop_redis::Fleet;
///
/// let fleet = Fleet::builder("redis://10.0.0.5:6379/").build()?;
/// let breaker = CircuitBreaker::builder("s3_uploads").shared(&fleet).build();
/// let budget = RetryBudget::token_bucket("s3_uploads").shared(&fleet).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// One `Fleet` per process is enough for any number of guards: it runs one
/// thread, which makes every round trip to Redis (callers never wait on
/// Redis). `Clone` shares it; the thread stops when the last clone is
/// dropped, and its guards then go on alone, on local state.
#[derive(Clone)]
pub struct Fleet {
    owner: Arc<Owner>,
}

struct Owner {
    hub: Arc<Hub>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.hub.stop();
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Fleet {
    /// A builder for a fleet on the Redis at `url` (`redis://host:port/db`,
    /// `redis://:password@host:port/`; `rediss://` needs the `redis` crate's
    /// TLS features). Defaults: 50 ms timeout, a refresh every 200 ms,
    /// reconnecting every 1 s, keys kept 24 h, probe leases of 30 s,
    /// budget leases of two retries' worth.
    pub fn builder(url: impl Into<String>) -> FleetBuilder {
        FleetBuilder {
            url: url.into(),
            timeout: Duration::from_millis(50),
            refresh: Duration::from_millis(200),
            reconnect_every: Duration::from_secs(1),
            key_ttl: Duration::from_secs(24 * 3600),
            probe_lease: Duration::from_secs(30),
            budget_lease: None,
        }
    }

    /// Whether the fleet's thread is connected to Redis now (when not, every
    /// guard works alone on its local state).
    pub fn is_connected(&self) -> bool {
        self.owner.hub.is_up()
    }

    /// Counts of the fleet's traffic and outages since it was built.
    pub fn stats(&self) -> FleetStats {
        let hub = &self.owner.hub;
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        FleetStats {
            round_trips: get(&hub.round_trips),
            fallbacks: get(&hub.fallbacks),
            rejoins: get(&hub.rejoins),
            guards: hub.guards.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

impl BreakerStore for Fleet {
    fn share_breaker(&self, breaker: SharedBreaker) -> Arc<dyn BreakerLink> {
        let share = Arc::new(BreakerShare::new(breaker, &self.owner.hub));
        self.owner.hub.join(Arc::clone(&share) as Arc<dyn hub::Member>);
        share
    }
}

impl BudgetStore for Fleet {
    fn share_budget(&self, budget: SharedBudget) -> Arc<dyn BudgetLink> {
        let share = Arc::new(BudgetShare::new(budget, &self.owner.hub));
        self.owner.hub.join(Arc::clone(&share) as Arc<dyn hub::Member>);
        share
    }

    fn share_ratio(&self, budget: SharedRatio) -> Arc<dyn BudgetLink> {
        let share = Arc::new(RatioShare::new(budget, &self.owner.hub));
        self.owner.hub.join(Arc::clone(&share) as Arc<dyn hub::Member>);
        share
    }
}

impl LimitStore for Fleet {
    fn share_limit(&self, limit: SharedLimit) -> Arc<dyn LimitLink> {
        let share = Arc::new(LimitShare::new(limit, &self.owner.hub));
        self.owner.hub.join(Arc::clone(&share) as Arc<dyn hub::Member>);
        share
    }
}

impl PacerStore for Fleet {
    fn share_pacer(&self, pacer: SharedPacer) -> Arc<dyn PacerLink> {
        let share = Arc::new(PaceShare::new(pacer, &self.owner.hub));
        self.owner.hub.join(Arc::clone(&share) as Arc<dyn hub::Member>);
        share
    }
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("redis", &self.owner.hub.settings.address)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// Counts from [`Fleet::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FleetStats {
    /// Commands sent to Redis (each one round trip).
    pub round_trips: u64,
    /// Times Redis was lost (unreachable, or slower than the timeout) and
    /// the guards went local.
    pub fallbacks: u64,
    /// Times the guards rejoined the fleet after an outage.
    pub rejoins: u64,
    /// Shared guards in use now (a guard whose every clone is dropped
    /// leaves at the next pass).
    pub guards: usize,
}

/// Builds a [`Fleet`]; made by [`Fleet::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct FleetBuilder {
    url: String,
    timeout: Duration,
    refresh: Duration,
    reconnect_every: Duration,
    key_ttl: Duration,
    probe_lease: Duration,
    budget_lease: Option<u32>,
}

impl fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("FleetBuilder")
            .field("timeout", &self.timeout)
            .field("refresh", &self.refresh)
            .field("reconnect_every", &self.reconnect_every)
            .field("key_ttl", &self.key_ttl)
            .field("probe_lease", &self.probe_lease)
            .field("budget_lease", &self.budget_lease)
            .finish_non_exhaustive()
    }
}

impl FleetBuilder {
    /// The longest any one step with Redis may take (connect, send, read)
    /// before the fleet counts Redis as gone and its guards go local
    /// (default 50 ms; allowed: 1 ms ..= 10 s). Callers never wait on it: it
    /// bounds the fleet's own thread, and a new guard's first sync.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often every guard catches up with the fleet's state (default
    /// 200 ms; allowed: 10 ms ..= 60 s). This bounds how long after a trip
    /// elsewhere this process still sends calls (refresh + timeout), and
    /// sets the steady Redis traffic: one read per shared breaker per
    /// refresh.
    pub fn refresh(mut self, every: Duration) -> Self {
        self.refresh = every;
        self
    }

    /// How often to try Redis again while it is gone (default 1 s;
    /// allowed: 10 ms ..= 10 min).
    pub fn reconnect_every(mut self, every: Duration) -> Self {
        self.reconnect_every = every;
        self
    }

    /// How long Redis keeps a guard's state after its last write (default
    /// 24 h; allowed: 1 s ..= 30 days): an abandoned fleet leaves nothing
    /// behind. Keep it above the longest open period.
    pub fn key_ttl(mut self, ttl: Duration) -> Self {
        self.key_ttl = ttl;
        self
    }

    /// How long the process that won a half-open probe holds it (default
    /// 30 s; allowed: 4 × `timeout` ..= 1 h): if it has sent no verdict by
    /// then (it died, or its call hangs), another process may probe. Keep it
    /// above the longest call. The winner gives it up locally two timeouts
    /// early, so that its verdict reaches Redis while the lease holds.
    pub fn probe_lease(mut self, lease: Duration) -> Self {
        self.probe_lease = lease;
        self
    }

    /// Tokens a shared budget takes from the fleet's bucket at a time
    /// (default: twice the largest retry cost, 20 tokens with the standard
    /// costs; allowed: ≥ 1, and a budget raises it to its largest retry cost).
    /// Larger leases mean fewer round trips and more tokens idle in
    /// processes that are retrying.
    pub fn budget_lease(mut self, tokens: u32) -> Self {
        self.budget_lease = Some(tokens);
        self
    }

    /// Checks the settings and starts the fleet's thread. Redis need not be
    /// up: until it is, the guards work alone.
    ///
    /// # Errors
    ///
    /// A [`FleetError`] naming the setting, for a URL that does not parse
    /// or a setting outside its range.
    pub fn build(self) -> Result<Fleet, FleetError> {
        let ms = Duration::from_millis;
        let secs = Duration::from_secs;
        check("timeout", self.timeout, ms(1), secs(10))?;
        check("refresh", self.refresh, ms(10), secs(60))?;
        check("reconnect_every", self.reconnect_every, ms(10), secs(600))?;
        check("key_ttl", self.key_ttl, secs(1), secs(30 * 24 * 3600))?;
        check("probe_lease", self.probe_lease, (self.timeout * 4).max(ms(10)), secs(3600))?;
        if self.budget_lease == Some(0) {
            return Err(FleetError::setting("budget_lease", "is 0".into(), "1 or more tokens"));
        }
        let client = Client::open(self.url.as_str()).map_err(|e| FleetError::url(&e))?;
        let address = match &client.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port}"),
            ConnectionAddr::Unix(path) => path.display().to_string(),
            _ => "redis".to_owned(),
        };
        let settings = Settings {
            address,
            timeout: self.timeout,
            refresh: self.refresh,
            reconnect_every: self.reconnect_every,
            join_wait: (self.timeout * 3).min(Duration::from_millis(200)),
            key_ttl: self.key_ttl,
            probe_lease: self.probe_lease,
            budget_lease: self.budget_lease,
        };
        let hub = Arc::new(Hub::new(settings));
        let thread = std::thread::Builder::new()
            .name("backstop-fleet".into())
            .spawn({
                let hub = Arc::clone(&hub);
                move || hub::run(hub, client)
            })
            .map_err(FleetError::thread)?;
        Ok(Fleet { owner: Arc::new(Owner { hub, thread: Mutex::new(Some(thread)) }) })
    }
}

fn check(field: &'static str, value: Duration, low: Duration, high: Duration) -> Result<(), FleetError> {
    if (low..=high).contains(&value) {
        return Ok(());
    }
    let allowed = format!("{low:?} ..= {high:?}");
    Err(FleetError::setting(field, format!("is {value:?}"), &allowed))
}
