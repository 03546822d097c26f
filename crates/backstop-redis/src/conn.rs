//! One connection to Redis, with a time limit on every step, and the calls
//! the fleet makes through it: each one script, each one round trip.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::{Client, Connection, FromRedisValue, RedisResult, Script, ScriptInvocation};

use crate::scripts;

/// A connection whose connect, reads and writes each give up after the
/// fleet's timeout, so a slow or vanished Redis costs the fleet's thread at
/// most that long, and never a caller anything.
pub(crate) struct Conn {
    con: Connection,
}

impl Conn {
    /// Connects and loads every script (so each later call is one `EVALSHA`).
    pub(crate) fn open(client: &Client, timeout: Duration, round_trips: &AtomicU64) -> RedisResult<Self> {
        let con = client.get_connection_with_timeout(timeout)?;
        con.set_read_timeout(Some(timeout))?;
        con.set_write_timeout(Some(timeout))?;
        let mut conn = Conn { con };
        for script in scripts::all() {
            round_trips.fetch_add(1, Ordering::Relaxed);
            script.prepare_invoke().load(&mut conn.con)?;
        }
        Ok(conn)
    }

    /// Runs a script prepared by `build` (its keys and arguments).
    pub(crate) fn run<T: FromRedisValue>(
        &mut self,
        script: &Script,
        round_trips: &AtomicU64,
        build: impl FnOnce(&mut ScriptInvocation<'_>),
    ) -> RedisResult<T> {
        let mut invocation = script.prepare_invoke();
        build(&mut invocation);
        round_trips.fetch_add(1, Ordering::Relaxed);
        invocation.invoke(&mut self.con)
    }
}
