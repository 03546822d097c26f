//! A breaker whose state is shared with other processes: the store that
//! keeps it ([`BreakerStore`]) and the handle the store drives the local
//! breaker with ([`SharedBreaker`]). The breaker reports to the store
//! through a [`BreakerLink`](super::BreakerLink).
//!
//! backstop itself knows no store; `backstop-redis` is one. The division of
//! work keeps every call local:
//!
//! - The breaker decides as always, on its own calls, with one atomic load
//!   when closed. It tells its [`BreakerLink`] of every change of state it
//!   made (a trip, a probe's verdict, `isolate`, `reset`); the link must not
//!   block, so a store queues the news and sends it from its own thread.
//! - The store tells the breaker what the others decided through the
//!   [`SharedBreaker`] handle: [`follow_open`](SharedBreaker::follow_open),
//!   [`follow_closed`](SharedBreaker::follow_closed),
//!   [`follow_isolated`](SharedBreaker::follow_isolated).
//! - When an open period is over, a shared breaker does not go half-open on
//!   its own: it asks [`BreakerLink::may_probe`], so that one process of
//!   the fleet probes while the others keep rejecting. A store that has lost
//!   its connection answers `true`, and the breaker works alone, as a local
//!   breaker with the same settings.

use std::fmt;
use std::sync::Arc as StdArc;
use std::time::Duration;

use super::config::BreakerConfig;
use super::core::Core;
use super::link::BreakerLink;
use super::state::CircuitState;
use crate::sync::Arc;

/// A store of breaker state shared by many processes (such as
/// `backstop_redis::Fleet`); given to
/// [`CircuitBreakerBuilder::shared`](super::CircuitBreakerBuilder::shared).
///
/// `Send + Sync`: a builder holding a store may build on another thread
/// (backstop's Python package builds without holding the GIL).
pub trait BreakerStore: Send + Sync {
    /// Takes a new breaker into the store: the store keeps `breaker` to
    /// follow the fleet's state, and returns the link the breaker reports
    /// to. Called once, by `build()`; it may wait a short, bounded time (to
    /// learn the fleet's state before the first call).
    fn share_breaker(&self, breaker: SharedBreaker) -> StdArc<dyn BreakerLink>;
}

/// A store's handle on a shared breaker: reads its state and makes it follow
/// the fleet's. Holding it does not keep the breaker in use:
/// [`is_orphaned`](Self::is_orphaned) says when every `CircuitBreaker` clone
/// is gone, and the store should then drop it.
#[derive(Clone)]
pub struct SharedBreaker {
    core: Arc<Core>,
}

impl SharedBreaker {
    pub(super) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// The breaker's name (shared breakers with one name share one state).
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The breaker's settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.core.config
    }

    /// The local state, as it stands (an open breaker whose period is over
    /// still reads `Open` here).
    pub fn state(&self) -> CircuitState {
        self.core.word().state()
    }

    /// How long the local breaker stays open, if it is open (zero once the
    /// period is over): what a store re-sends when the fleet has forgotten
    /// its state (a Redis that restarted empty).
    pub fn open_remaining(&self) -> Option<Duration> {
        self.core.open_remaining()
    }

    /// Whether every [`CircuitBreaker`](super::CircuitBreaker) using this
    /// state is gone, so that only store handles hold it.
    pub fn is_orphaned(&self) -> bool {
        Arc::strong_count(&self.core) == 1
    }

    /// The fleet's circuit is open for `remaining` more: a closed or
    /// half-open breaker opens (its calls, probes included, are rejected from
    /// now on), an open one takes the fleet's end of the period; an isolated
    /// one is left alone. A store must not call it while this process holds
    /// the fleet's probe (its verdict decides). Returns whether anything
    /// changed.
    pub fn follow_open(&self, remaining: Duration) -> bool {
        self.core.follow_open(remaining)
    }

    /// The fleet's circuit is closed: an open or half-open breaker closes,
    /// forgetting its counts. Returns whether it changed.
    pub fn follow_closed(&self) -> bool {
        self.core.follow(CircuitState::Closed)
    }

    /// The fleet's circuit is isolated (someone called `isolate`): the
    /// breaker rejects everything until the fleet is reset. Returns whether
    /// it changed.
    pub fn follow_isolated(&self) -> bool {
        self.core.follow(CircuitState::Isolated)
    }
}

impl fmt::Debug for SharedBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBreaker").field("name", &self.name()).field("state", &self.state()).finish()
    }
}
