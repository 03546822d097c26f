//! backstop's guards shared by a fleet of workers through Redis: one circuit
//! breaker, one retry budget and one pace for 50 or 500 processes calling the
//! same S3 prefix or API, instead of one of each per process.
//!
//! **Work in progress.** This first part holds the Redis side: the Lua
//! scripts that keep the fleet's state, each one atomic read-modify-write
//! (never a `GET` then a `SET`), under namespaced keys that carry a format
//! version and a time to live. The guards that use them, with their local
//! leases and their fallback when Redis is slow or gone, come next.
//!
//! | script | keeps | algorithm |
//! |---|---|---|
//! | [`scripts::BUDGET_TAKE`], [`scripts::BUDGET_PUT`] | the fleet's retry budget | a token bucket, taken in leases and given back in batches |
//! | [`scripts::PACE_RESERVE`] | the fleet's send rate | GCRA, the generic cell rate algorithm, on the Redis server's clock |

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod scripts;
