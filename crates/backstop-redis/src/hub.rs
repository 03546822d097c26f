//! The fleet's thread and what it shares with the guards: all of a
//! [`Fleet`](crate::Fleet)'s Redis traffic happens here, never on a caller's
//! thread.
//!
//! The thread wakes every `refresh` for a full pass (each breaker reads the
//! fleet's state; each budget tops up or gives back its lease), and sooner
//! when a guard nudges it (a trip, a probe's verdict, a probe wanted, a lease
//! running low) for just that guard's news. When a round trip fails or
//! times out, every guard goes local (one WARN, counted) and the thread
//! tries to reconnect every `reconnect_every`; once back, every guard
//! rejoins the fleet's state.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::{Client, RedisError};

use crate::conn::Conn;
use crate::settings::Settings;

/// A guard the fleet keeps in step (a shared breaker or budget).
pub(crate) trait Member: Send + Sync {
    /// The guard's name, for the WARN.
    fn name(&self) -> &str;
    /// Whether every user of the guard is gone (the fleet drops it then).
    fn is_orphaned(&self) -> bool;
    /// Redis is gone: work alone.
    fn go_local(&self);
    /// Redis is there (again): follow the fleet's state.
    fn rejoin(&self);
    /// Sends this guard's news and, on a `full` pass, catches up.
    fn sync(&self, io: &mut Io<'_>, full: bool) -> Result<(), RedisError>;
    /// The guard is leaving (its users are gone, or the fleet's thread is
    /// stopping) while Redis is there: hand back what it holds of the fleet's.
    fn leave(&self, _io: &mut Io<'_>) -> Result<(), RedisError> {
        Ok(())
    }
    /// Lets go of the guard's local state (the handle), so that the guard,
    /// which holds this member as its link, can be freed.
    fn detach(&self);
}

/// The connection and what a member's sync needs besides.
pub(crate) struct Io<'a> {
    pub(crate) conn: &'a mut Conn,
    pub(crate) hub: &'a Hub,
}

/// What the fleet's thread and its guards share.
pub(crate) struct Hub {
    pub(crate) settings: Settings,
    /// This process's token: names its probe leases.
    pub(crate) token: String,
    pub(crate) origin: Instant,
    wake: Mutex<Wake>,
    cv: Condvar,
    up: AtomicBool,
    pub(crate) round_trips: AtomicU64,
    pub(crate) fallbacks: AtomicU64,
    pub(crate) rejoins: AtomicU64,
    /// Guards in the fleet's care (orphans are dropped at each pass).
    pub(crate) guards: AtomicUsize,
}

#[derive(Default)]
struct Wake {
    nudged: bool,
    stop: bool,
    joining: Vec<Arc<dyn Member>>,
    /// How many times the thread has taken in the joining guards, and the
    /// last intake a finished pass has synced: a joining guard waits for
    /// the intake after it joined.
    intake: u64,
    synced: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    pub(crate) fn new(settings: Settings) -> Self {
        static PROCESSES: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let token = format!("{}-{nanos}-{}", std::process::id(), PROCESSES.fetch_add(1, Ordering::Relaxed));
        Hub {
            settings,
            token,
            origin: Instant::now(),
            wake: Mutex::new(Wake::default()),
            cv: Condvar::new(),
            up: AtomicBool::new(false),
            round_trips: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            rejoins: AtomicU64::new(0),
            guards: AtomicUsize::new(0),
        }
    }

    /// Nanoseconds since the hub was made, on the real clock.
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the fleet's thread is connected to Redis.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Asks the thread for a pass soon (never waits).
    pub(crate) fn nudge(&self) {
        let mut wake = lock(&self.wake);
        if !wake.nudged {
            wake.nudged = true;
            self.cv.notify_all();
        }
    }

    /// Hands a new guard to the thread and waits (at most `join_wait`) for
    /// a pass to take it in, so it starts from the fleet's state.
    pub(crate) fn join(&self, member: Arc<dyn Member>) {
        let mut wake = lock(&self.wake);
        wake.joining.push(member);
        wake.nudged = true;
        self.cv.notify_all();
        // The next intake takes this guard in; wait until its pass is done.
        let target = wake.intake + 1;
        let deadline = Instant::now() + self.settings.join_wait;
        while wake.synced < target && !wake.stop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            wake = self.cv.wait_timeout(wake, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    pub(crate) fn stop(&self) {
        lock(&self.wake).stop = true;
        self.cv.notify_all();
    }

    /// Waits up to `timeout` for a nudge; returns whether to stop, the new
    /// members, and the number of this intake (for `pass_done`).
    fn wait(&self, timeout: Duration) -> (bool, Vec<Arc<dyn Member>>, u64) {
        let mut wake = lock(&self.wake);
        if !wake.nudged && !wake.stop && !timeout.is_zero() {
            wake = self.cv.wait_timeout(wake, timeout).unwrap_or_else(PoisonError::into_inner).0;
        }
        wake.nudged = false;
        wake.intake += 1;
        (wake.stop, std::mem::take(&mut wake.joining), wake.intake)
    }

    fn pass_done(&self, intake: u64) {
        lock(&self.wake).synced = intake;
        self.cv.notify_all();
    }
}

/// The shortest time between two passes: a storm of nudges costs Redis at
/// most this rate of passes per process.
const MIN_GAP: Duration = Duration::from_millis(2);

/// A guard in the thread's care.
struct Slot {
    member: Arc<dyn Member>,
    /// Its own state in Redis failed (a key of the wrong type, a script
    /// error, a panicking callback): it works alone until then, while the
    /// other guards go on.
    broken_until: Option<Instant>,
}

/// Whether an error means Redis itself is gone or slow (rather than one
/// guard's key being wrong).
fn is_outage(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// The fleet's thread: runs until the last `Fleet` handle is dropped.
pub(crate) fn run(hub: Arc<Hub>, client: Client) {
    let settings = hub.settings.clone();
    let mut slots: Vec<Slot> = Vec::new();
    let mut conn: Option<Conn> = None;
    let mut next_connect = Instant::now();
    let mut next_full = Instant::now();
    // From the first failure until a full pass succeeds again: one outage,
    // one WARN, one count, however many reconnects fail or half-succeed.
    let mut outage: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let until = if conn.is_some() { next_full } else { next_connect.min(next_full) };
        let (stop, joined, intake) = hub.wait(until.saturating_duration_since(now));
        if stop {
            // A clean exit hands back what the guards hold of the fleet's;
            // the first failure ends that (a stalled Redis costs one timeout).
            if let Some(c) = conn.as_mut() {
                let mut io = Io { conn: c, hub: &hub };
                for s in &slots {
                    if s.member.leave(&mut io).is_err() {
                        break;
                    }
                }
            }
            for s in &slots {
                s.member.go_local();
                s.member.detach();
            }
            hub.guards.store(0, Ordering::Relaxed);
            break;
        }
        let fresh = !joined.is_empty();
        for member in joined {
            // A guard joins the fleet's state if Redis is there, or starts
            // alone until it is.
            if conn.is_some() {
                member.rejoin()
            } else {
                member.go_local()
            }
            slots.push(Slot { member, broken_until: None });
        }
        // Guards nobody uses any more leave, handing back what they hold.
        let mut kept = Vec::with_capacity(slots.len());
        for s in slots {
            if !s.member.is_orphaned() {
                kept.push(s);
                continue;
            }
            if let Some(c) = conn.as_mut() {
                let _ = s.member.leave(&mut Io { conn: c, hub: &hub });
            }
            s.member.detach();
        }
        slots = kept;
        hub.guards.store(slots.len(), Ordering::Relaxed);
        let now = Instant::now();
        if conn.is_none() && now >= next_connect {
            match Conn::open(&client, settings.timeout, &hub.round_trips) {
                Ok(c) => {
                    conn = Some(c);
                    hub.up.store(true, Ordering::Release);
                    for s in &slots {
                        s.member.rejoin();
                    }
                }
                Err(e) => {
                    next_connect = now + settings.reconnect_every;
                    if outage.is_none() {
                        outage = Some(now);
                        went_local(&hub, &settings, &e, &slots);
                    }
                }
            }
        }
        let full = now >= next_full || fresh;
        if full {
            next_full = now + settings.refresh;
        }
        let Some(c) = conn.as_mut() else {
            for s in &slots {
                s.member.go_local();
            }
            hub.pass_done(intake);
            std::thread::sleep(MIN_GAP);
            continue;
        };
        let mut io = Io { conn: c, hub: &hub };
        let mut lost = None;
        for s in &mut slots {
            if s.broken_until.is_some_and(|t| now < t) {
                continue;
            }
            if s.broken_until.take().is_some() {
                s.member.rejoin();
            }
            let member = &s.member;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| member.sync(&mut io, full)));
            let broken = match result {
                Ok(Ok(())) => continue,
                Ok(Err(e)) if is_outage(&e) => {
                    lost = Some(e);
                    break;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "a callback panicked on the fleet's thread".to_owned(),
            };
            s.broken_until = Some(now + settings.reconnect_every);
            s.member.go_local();
            guard_broken(&settings, s.member.name(), &broken);
        }
        match lost {
            Some(e) => {
                conn = None;
                hub.up.store(false, Ordering::Release);
                next_connect = now + settings.reconnect_every;
                if outage.is_none() {
                    outage = Some(now);
                    went_local(&hub, &settings, &e, &slots);
                } else {
                    for s in &slots {
                        s.member.go_local();
                    }
                }
            }
            None if full => {
                if let Some(since) = outage.take() {
                    hub.rejoins.fetch_add(1, Ordering::Relaxed);
                    rejoined(&settings, since.elapsed());
                }
            }
            None => {}
        }
        hub.pass_done(intake);
        std::thread::sleep(MIN_GAP);
    }
}

/// Redis is gone or slow: every guard works alone. One WARN per outage,
/// naming the address (never the URL: it may hold a password).
fn went_local(hub: &Hub, settings: &Settings, error: &RedisError, slots: &[Slot]) {
    hub.up.store(false, Ordering::Release);
    hub.fallbacks.fetch_add(1, Ordering::Relaxed);
    for s in slots {
        s.member.go_local();
    }
    #[cfg(feature = "metrics")]
    metrics::counter!("backstop_fleet_fallbacks_total", "redis" => settings.address.clone()).increment(1);
    #[cfg(feature = "tracing")]
    {
        tracing::warn!(
            "Redis at {} is unreachable or slow ({}): {} shared guards work alone on local state until it is back",
            settings.address,
            error,
            slots.len()
        );
    }
    let _ = (settings, error, slots.len());
}

/// One guard's own state in Redis failed: that guard works alone for a
/// while; the others go on.
fn guard_broken(settings: &Settings, name: &str, why: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        "shared guard {name} works alone for {} seconds: its state in Redis at {} failed ({why})",
        backstop::duration::Seconds(settings.reconnect_every),
        settings.address
    );
    let _ = (settings, name, why);
}

fn rejoined(settings: &Settings, after: Duration) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        "Redis at {} is back after {} seconds: guards rejoin the fleet's state",
        settings.address,
        backstop::duration::Seconds(after)
    );
    let _ = (settings, after);
}
