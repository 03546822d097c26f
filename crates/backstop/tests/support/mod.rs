//! What several test files share: capturing the log lines a closure writes.

use std::io;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The lines `f` logged through `tracing`, without times, colours or targets.
#[allow(dead_code)] // only some of the test files that share this module use it
pub fn logged(f: impl FnOnce()) -> Vec<String> {
    let buf = Buffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_owned).collect()
}

/// The JSON objects `f` logged through `tracing`, as tracing-subscriber's
/// JSON formatter writes them (what a log pipeline receives): one a line,
/// with the event's fields under `"fields"`.
#[allow(dead_code)] // only some of the test files that share this module use it
pub fn logged_json(f: impl FnOnce()) -> Vec<serde_json::Value> {
    let buf = Buffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}
