//! The wait between attempts: the real clock, whose sleep draws a countdown
//! on a terminal, and ends early when `backstop` is interrupted.

use std::io::Write;
use std::time::{Duration, Instant};

use backstop::clock::SleepFuture;
use backstop::{Clock, SystemClock};

use super::signals::interrupted;

/// The real clock, whose sleep shows a countdown on a terminal.
pub struct CountdownClock {
    /// Whether to draw the countdown (on stderr).
    pub show: bool,
}

impl Clock for CountdownClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, d: Duration) {
        if !self.show {
            // Sleep in slices, so a Ctrl-C ends the wait at once.
            let end = Instant::now() + d;
            while let Some(left) = end.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
                if interrupted().is_some() {
                    return;
                }
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
            return;
        }
        let end = Instant::now() + d;
        let mut err = std::io::stderr();
        while let Some(left) = end.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
            if interrupted().is_some() {
                break;
            }
            let _ = write!(err, "\r\x1b[2K  next attempt in {} seconds", backstop::duration::Seconds(left));
            let _ = err.flush();
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
        let _ = write!(err, "\r\x1b[2K");
    }

    fn sleep_async(&self, d: Duration) -> SleepFuture {
        SystemClock.sleep_async(d)
    }
}
