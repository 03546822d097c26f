//! backstop's guards shared by a fleet of workers through Redis: one circuit
//! breaker, one retry budget and one pace for 50 or 500 processes calling
//! the same S3 prefix or API, instead of one of each per process.
//!
//! Without sharing, each of 500 workers has its own breaker (500 probes into
//! a dead service every open period), its own budget (500 × 100 retries
//! during an outage) and its own pace (500 × the rate the API accepts).
//! With a [`Fleet`]:
//!
//! ```no_run
//! use backstop::{presets, CircuitBreaker, Pacer, RetryBudget};
//! use backstop_redis::Fleet;
//!
//! let fleet = Fleet::builder("redis://127.0.0.1:6379/").build()?;
//! let breaker = CircuitBreaker::builder("weather_api").shared(&fleet).build();
//! let budget = RetryBudget::token_bucket("weather_api").shared(&fleet).build()?;
//! let pacer = Pacer::builder("weather_api").shared(&fleet).build()?;
//!
//! let forecast = presets::API_CALL
//!     .retry(|| Ok::<_, std::io::Error>("sunny"))
//!     .breaker(&breaker)
//!     .budget(&budget)
//!     .pacer(&pacer)
//!     .call()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The guards are the same `CircuitBreaker`, `RetryBudget` and `Pacer`
//! types the rest of backstop takes (runs, the middleware, the layer, the
//! S3 helpers, the attribute), built with `.shared(&fleet)`. backstop's core
//! defines the traits ([`BreakerStore`](backstop::breaker::BreakerStore),
//! [`BudgetStore`](backstop::budget::BudgetStore),
//! [`PacerStore`](backstop::pacer::PacerStore)); this crate implements
//! them, and the core knows nothing of Redis.
//!
//! # What is shared
//!
//! - **The breaker.** A trip in any process (by the breaker's own rule, on
//!   its own calls) opens the circuit for the fleet; the others follow
//!   within one refresh (200 ms by default). When the open period is over,
//!   **one process of the fleet** wins the probe (a lease, `SET NX PX`) and
//!   its verdict closes or re-opens the circuit for everyone; the others
//!   keep rejecting meanwhile.
//! - **The retry budget.** One token bucket of `capacity` tokens for the
//!   fleet, refilled at `refill_per_sec`. Each process spends a small lease
//!   of it (two retries' worth by default) and tops it up when it runs low,
//!   so total retries across the fleet stay within one bucket.
//!   Or a **ratio budget**: retries in the whole fleet may add at most
//!   `ratio` of the fleet's requests in the window, plus one floor for the
//!   fleet (where each local budget has its own). Each process reports its
//!   counts at least once a second and is granted a part of the room left,
//!   at most its part of the fleet's requests; grants not yet spent are
//!   counted out of the others', so the fleet never exceeds its room.
//! - **The concurrency limit** (a fixed one). At most `max_concurrent`
//!   calls at once in the whole fleet: each process holds some of the
//!   places (its limit's places now), which its calls take and give back
//!   locally; a call that finds none queues while the fleet's thread asks
//!   for more. While a process waits for places, each holder is cut to a
//!   fair share (the places over the processes that want some) and gives
//!   the rest back as its calls end; an idle process gives its places back.
//! - **The pace.** One rate for the fleet, learned as one pacer learns it
//!   (CUBIC) from every process's refusals, stated limits and successes;
//!   its slots are handed out by GCRA (the generic cell rate algorithm, as
//!   redis-cell uses it) on one time line, in runs sized to each process's
//!   demand, so the processes *together* send at the rate. Until the first
//!   refusal nobody waits.
//!
//! # The hot path stays local
//!
//! Every call decides on local state, exactly as with a local guard: a
//! closed breaker's check is one atomic load, a retry spends a token of the
//! local lease. All Redis traffic is on the fleet's own thread (one per
//! [`Fleet`]), so sync callers and async tasks alike never wait on Redis.
//! That traffic grows with processes and with failures, not with calls:
//! one read per breaker per refresh, a lease per two retries, one sync per
//! ratio budget a second (more while it retries), a verdict per
//! probe, one sync per pacer per refresh (and, while pacing, one more per
//! run of slots a busy process takes) (measured in BENCHMARKS.md).
//!
//! # When Redis is slow or gone
//!
//! Each step with Redis has a time limit (50 ms by default). When one
//! fails, the fleet logs one WARN, counts it ([`FleetStats::fallbacks`];
//! `backstop_fleet_fallbacks_total` with the `metrics` feature), and every
//! guard works alone: the breaker as a local breaker with the same
//! settings, the budget as a full local bucket with the same settings, the
//! pacer alone at its share of the fleet's last rate. The
//! thread tries Redis again every second; once it answers, the guards
//! rejoin: the fleet's state wins over what a process decided alone.
//!
//! # Shared or local?
//!
//! Share guards when many processes call the same downstream and its health
//! is the same for all of them (an S3 prefix, a third-party API, a database
//! primary). Keep them local when processes reach the downstream by
//! different paths (one zone's network can fail alone), when there are few
//! processes (two or three local breakers probe little), or when the extra
//! moving part is not worth it.
//!
//! # In Redis
//!
//! Every read-modify-write is one Lua script ([`scripts`]); keys are
//! `backstop:v2:{name}:kind` (a format version, a Redis Cluster hash tag)
//! with a time to live (24 h by default), so an abandoned fleet leaves
//! nothing and two library versions never read each other's state.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod breaker;
mod budget;
mod conn;
mod error;
mod fleet;
mod hub;
mod limit;
mod pace;
mod ratio;
pub mod scripts;
mod settings;

pub use error::FleetError;
pub use fleet::{Fleet, FleetBuilder, FleetStats};
