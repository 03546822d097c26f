//! What the fleet logs, captured from its own thread (a global subscriber:
//! this file holds one test): one WARN per outage naming the address and
//! never the URL's password, one INFO when Redis is back.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backstop::CircuitBreaker;
use backstop_redis::Fleet;
use backstop_testkit::redis::RedisServer;

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

impl Buffer {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(str::to_owned).collect()
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}: still not after 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn one_warn_per_outage_naming_the_address_never_the_password_and_one_info_when_back() {
    let buf = Buffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let mut redis = RedisServer::start();
    let url = redis.url().replace("redis://", "redis://:hunter2@");
    assert_eq!(redis.command(&["CONFIG", "SET", "requirepass", "hunter2"]), "+OK");
    let fleet = Fleet::builder(url)
        .refresh(Duration::from_millis(20))
        .reconnect_every(Duration::from_millis(20))
        .build()
        .unwrap();
    let _breaker = CircuitBreaker::builder("logged").shared(&fleet).build();
    wait_until("connected", || fleet.is_connected());
    redis.kill();
    wait_until("the outage is seen", || fleet.stats().fallbacks == 1);
    std::thread::sleep(Duration::from_millis(200)); // failed reconnects: no more WARNs
    redis.restart();
    assert_eq!(redis.command(&["CONFIG", "SET", "requirepass", "hunter2"]), "+OK");
    wait_until("back", || fleet.stats().rejoins == 1);
    drop(fleet);

    let lines = buf.lines();
    let warns: Vec<&String> = lines.iter().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warns.len(), 1, "{lines:#?}");
    let address = format!("127.0.0.1:{}", redis.port());
    assert!(warns[0].contains(&address) && warns[0].contains("work alone"), "{}", warns[0]);
    assert!(lines.iter().any(|l| l.contains("INFO") && l.contains("is back")), "{lines:#?}");
    assert!(lines.iter().all(|l| !l.contains("hunter2")), "{lines:#?}");
}
