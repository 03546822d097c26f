//! The Lua scripts that keep a fleet's shared state in Redis, and the keys
//! they keep it under.
//!
//! Every script is one atomic step on one key, so any number of workers may
//! run them at once. A worker's entry in a hash of leases or grants says how
//! long the worker may go unheard of before it is taken for dead (each
//! worker its own: their refreshes may differ). Every key is [`key`]`(kind, name)`:
//! `backstop:v2:{name}:kind`, where `v2` is the format of the value (two
//! library versions that disagree about it use different keys, and never
//! read each other's state) and `{name}` is a Redis Cluster hash tag (one
//! guard's keys live on one shard). Every script sets the key's time to
//! live, so a fleet that is gone leaves nothing behind.

use std::sync::LazyLock;

use redis::Script;

/// The format version of every value the scripts keep (v2: a pace counts
/// the fleet's sends in eight 250 ms slices, where v1 kept two 1 s buckets).
pub const FORMAT: &str = "v2";

/// The key of guard `name`'s state of kind `kind` (`budget`, `pace`, ...).
///
/// ```
/// assert_eq!(backstop_redis::scripts::key("budget", "s3"), "backstop:v2:{s3}:budget");
/// ```
pub fn key(kind: &str, name: &str) -> String {
    format!("backstop:{FORMAT}:{{{name}}}:{kind}")
}

/// Takes up to `asked` tokens from a fleet's retry budget: a lease that a
/// worker spends on its next retries without asking Redis each time.
/// `KEYS`: the bucket, the leases out (worker token → tokens out and when it
/// was last heard from). `ARGV`: asked, capacity, ttl in ms, the smallest
/// grant worth having, tokens refilled per second (on Redis's clock), tokens
/// the worker spent from its lease since it last said so less those
/// refunded (may be negative), tokens the bucket keeps whatever is asked (a
/// floor), after how many ms unheard this worker's lease is forgotten (it
/// died), the worker's token. Returns `[granted, tokens left]`. A new or
/// expired bucket starts full.
pub static BUDGET_TAKE: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!(include_str!("leases.lua"), include_str!("budget_take.lua"))));

/// Gives tokens to a fleet's retry budget, batched: a lease's unused tokens,
/// and success refills (which fill only the room neither the bucket nor the
/// leases out hold). `KEYS`: the bucket, the leases out. `ARGV`: returned,
/// capacity, ttl in ms, refills, tokens spent from the lease since last said
/// (less those refunded), after how many ms unheard this worker's lease is
/// forgotten,
/// the worker's token. Returns `[tokens the bucket and the leases out hold
/// together (never above the capacity), tokens in the bucket]`.
pub static BUDGET_PUT: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!(include_str!("leases.lua"), include_str!("budget_put.lua"))));

/// One worker's sync with a fleet's ratio retry budget: adds what it
/// counted since its last sync to the fleet's window (ten slices of a tenth
/// of the window, on Redis's clock) and grants it a part of the room the
/// rule leaves (floor + ratio × the fleet's requests − its retries − what
/// the other workers were granted): at most `(its requests + 1) /
/// (the fleet's requests + workers)` of the room. `KEYS`: the window, the
/// grants out (worker token → retries granted and when it was last heard
/// from). `ARGV`: requests since the last sync, retries since (less
/// refunds; may be negative), ratio, floor (retries per window), window in
/// ms, the worker's requests in its own window, ttl in ms, after how many ms
/// unheard this worker's grant is forgotten, the worker's token, 1 if it is
/// leaving.
/// Returns `[retries granted (a string), the fleet's requests in the
/// window, its retries in the window, workers heard from]`.
pub static RATIO_SYNC: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!(include_str!("leases.lua"), include_str!("ratio_sync.lua"))));

/// One worker's sync with a fleet's shared concurrency limit: grants it the
/// places it asks for, as far as places are free; while another worker
/// wants more than it holds, at most a fair share (the places over the
/// workers that want some) or the free places the others do not need to
/// reach theirs, if more. Its calls running hold their places
/// until they end, granted or not. `KEYS`: the places held (worker token →
/// places, demand, when last heard from). `ARGV`: places wanted, demand
/// (running and waiting), places in use, the fleet's places, 1 to keep one
/// place while idle (only while half the places stay free), ttl in ms,
/// after how many ms unheard this worker's lease is forgotten, the worker's token, 1 if
/// it is leaving. Returns `[places granted, places free after, workers
/// heard from, 1 if another worker wants more than it holds]`.
pub static LIMIT_SYNC: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("limit_sync.lua")));

/// One worker's sync with a fleet's shared pace (`KEYS[1]`, a hash): adds
/// its reports to the fleet's rate, learned by CUBIC (RFC 8312) on the
/// Redis server's clock, and reserves the slots it wants by GCRA (the
/// generic cell rate algorithm, ATM Forum TM 4.0, as redis-cell uses it:
/// one theoretical arrival time for the fleet, moved on by one emission
/// interval per slot). `ARGV`: sends since the last sync, successes while
/// pacing, 1 if refused, a stated limit per second (0: none) and how long
/// it holds in ms, slots wanted, min rate, max rate, initial rate (0: none),
/// min ms between decreases, burst, the latest a grant may start (µs from
/// now), ttl in ms, how late reports may be (µs; a refusal sooner than that
/// after the pace began holds the rate at its lowest until every worker has
/// reported), the worker's own rate (0: none; carried on if Redis lost the
/// pace). Returns `[the rate in calls per second, as a string ("0": not
/// pacing), µs until the first granted slot, slots granted, the fleet's
/// measured send rate in milli-calls per second]`. Fields that are not
/// finite numbers within bounds are taken as missing.
pub static PACE_SYNC: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("pace_sync.lua")));

/// Reads a fleet breaker's state on Redis's clock. `KEYS`: the breaker, its
/// probe lease. Returns `[state, ms left open, gen, probe out]`, where state
/// is 0 closed, 1 open, 3 isolated, or −1 when Redis holds no state for it
/// (never written, expired, or lost in a restart), and `gen` grows at every
/// change.
pub static BREAKER_READ: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("breaker_read.lua")));

/// Opens a fleet's circuit after a process's breaker tripped, unless it is
/// open or isolated already. `KEYS`: the breaker, its probe lease; `ARGV`:
/// the open period in ms, ttl in ms. Returns `[state, ms left open, gen,
/// 1 if this call opened it]`.
pub static BREAKER_TRIP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("breaker_trip.lua")));

/// Asks for a fleet's probe, once its open period is over: a lease
/// (`SET NX PX`) held by one process at a time. `KEYS`: the breaker, its
/// probe lease; `ARGV`: the process's token, the lease's length in ms.
/// Returns 1 when this process holds the probe.
pub static BREAKER_PROBE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("breaker_probe.lua")));

/// The probing process's verdict: closes (`1`) or re-opens (`0`) the fleet's
/// circuit and frees the lease, if the lease is still this process's.
/// `KEYS`: the breaker, its probe lease; `ARGV`: the token, 1 or 0, the new
/// open period in ms, ttl in ms. Returns 1 when taken, 0 when ignored.
pub static BREAKER_VERDICT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("breaker_verdict.lua")));

/// Resets (`0`) or isolates (`3`) a fleet's circuit by hand, from any state.
/// `KEYS`: the breaker, its probe lease; `ARGV`: the state, ttl in ms.
/// Returns the new gen.
pub static BREAKER_SET: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("breaker_set.lua")));

/// Every script, to load on each new connection (so each call is one
/// `EVALSHA`).
pub(crate) fn all() -> [&'static Script; 10] {
    [
        &BUDGET_TAKE,
        &BUDGET_PUT,
        &RATIO_SYNC,
        &LIMIT_SYNC,
        &PACE_SYNC,
        &BREAKER_READ,
        &BREAKER_TRIP,
        &BREAKER_PROBE,
        &BREAKER_VERDICT,
        &BREAKER_SET,
    ]
}
