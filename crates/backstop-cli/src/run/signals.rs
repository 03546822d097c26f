//! The SIGINT and SIGTERM that `backstop` itself receives (a Ctrl-C, a
//! `kill`): caught and recorded, so that the wait loops see them, pass them
//! on to the running attempt ([`super::child`]), and start no new one.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal (SIGINT, SIGTERM) backstop itself received, or 0.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// Records a signal backstop received, for the wait loops to see.
extern "C" fn on_signal(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(signal, Ordering::SeqCst);
}

/// Catches SIGINT and SIGTERM, to pass them on to the command: each attempt
/// runs in its own process group (so a timeout can end the command's own
/// children too), outside the terminal's foreground group, so Ctrl-C must be
/// forwarded by hand.
pub fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` is an `extern "C" fn(c_int)` that only stores to
        // an atomic, which is async-signal-safe; signal(2) has no other
        // preconditions.
        unsafe {
            libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
    }
}

/// The signal backstop received, if it received one.
pub fn interrupted() -> Option<i32> {
    Some(INTERRUPTED.load(Ordering::SeqCst)).filter(|s| *s != 0)
}
