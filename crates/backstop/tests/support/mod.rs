//! What several test files share: capturing the log lines a closure writes.

use std::io;
use std::sync::{Arc, Mutex};

use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber, span};

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
    on_this_thread(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_owned).collect()
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Dispatch>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `subscriber` receiving this thread's events.
///
/// Not `tracing::subscriber::with_default`: tracing caches, for the whole
/// process, which call sites and levels any subscriber wants, and with
/// per-thread subscribers coming and going in tests running side by side
/// that cache can be rebuilt from a stale view and drop a test's lines. One
/// global subscriber that always wants everything, handing each event to
/// the thread's own, keeps the cache still.
fn on_this_thread(subscriber: impl Subscriber + Send + Sync + 'static, f: impl FnOnce()) {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| tracing::subscriber::set_global_default(PerThread).expect("the only global subscriber"));
    CURRENT.with(|c| *c.borrow_mut() = Some(Dispatch::new(subscriber)));
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| *c.borrow_mut() = None);
        }
    }
    let _reset = Reset;
    f();
}

/// The global subscriber of [`on_this_thread`].
struct PerThread;

impl PerThread {
    fn with<T>(&self, f: impl FnOnce(&Dispatch) -> T) -> Option<T> {
        CURRENT.with(|c| c.borrow().as_ref().map(f))
    }
}

impl Subscriber for PerThread {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.with(|d| d.enabled(metadata)).unwrap_or(false)
    }
    fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
        self.with(|d| d.new_span(span)).unwrap_or_else(|| span::Id::from_u64(u64::MAX))
    }
    fn record(&self, span: &span::Id, values: &span::Record<'_>) {
        self.with(|d| d.record(span, values));
    }
    fn record_follows_from(&self, span: &span::Id, follows: &span::Id) {
        self.with(|d| d.record_follows_from(span, follows));
    }
    fn event(&self, event: &Event<'_>) {
        self.with(|d| d.event(event));
    }
    fn enter(&self, span: &span::Id) {
        self.with(|d| d.enter(span));
    }
    fn exit(&self, span: &span::Id) {
        self.with(|d| d.exit(span));
    }
}

/// The JSON objects `f` logged through `tracing`, as tracing-subscriber's
/// JSON formatter writes them (what a log pipeline receives): one a line,
/// with the event's fields under `"fields"`.
#[allow(dead_code)] // only some of the test files that share this module use it
pub fn logged_json(f: impl FnOnce()) -> Vec<serde_json::Value> {
    let buf = Buffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish();
    on_this_thread(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}
