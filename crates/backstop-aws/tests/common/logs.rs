//! The log lines of the test binary, captured: one global subscriber (the
//! aborts of dropped uploads log from the runtime's worker threads), each
//! test looking for its own object's lines.

use std::io::Write;
use std::sync::{Mutex, Once, PoisonError};

static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LINES.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing (once per test binary): `INFO` and above.
pub fn capture() {
    static START: Once = Once::new();
    START.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
}

/// The captured warnings of backstop-aws (not of the core's runs) that mention `needle`.
pub fn lines_with(needle: &str) -> Vec<String> {
    every_line_with(needle).into_iter().filter(|l| l.contains("WARN") && l.contains(" backstop_aws::")).collect()
}

/// Every captured line (any crate, `INFO` and above) that mentions `needle`.
pub fn every_line_with(needle: &str) -> Vec<String> {
    let all = LINES.lock().unwrap_or_else(PoisonError::into_inner);
    String::from_utf8_lossy(&all).lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
}
