//! What a shared pacer tells its store: [`PacerLink`].

use std::time::Duration;

/// What a shared pacer tells its store. Called on the callers' threads: it
/// must return at once, with no I/O (a store queues the news and sends it
/// from its own thread).
pub trait PacerLink: Send + Sync {
    /// A call was refused for its rate (a `Throttled` or `RetryAfter`
    /// verdict): the fleet's rate should fall. The pacer waits for the
    /// fleet's slots from now on.
    fn throttled(&self);

    /// The server stated its limit: at most `per_sec` calls a second until
    /// `reset` has passed (from [`Pacer::observe_limit`](super::Pacer::observe_limit)).
    fn limited(&self, per_sec: f64, reset: Duration);

    /// A caller waits for a slot that no grant covers yet, or the granted
    /// slots have run low (half of the last grant is handed out): the store
    /// should ask the fleet for slots soon.
    fn waiting(&self);
}
