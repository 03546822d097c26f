//! A private Redis for tests: [`RedisServer`] runs the real `redis-server` on
//! a free loopback port, in a temporary directory of its own, without
//! persistence, and stops it when dropped. A test can kill it, restart it on
//! the same port, or make it stall, to see what a fleet's shared guards do
//! when their store is gone or slow.
//!
//! `redis-server` is installed from Debian's packages when it is missing
//! (as `scripts/nginx.sh` installs nginx for the benchmarks), so the tests
//! need nothing installed by hand.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A `redis-server` on `127.0.0.1`, stopped (and its directory removed) on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// If `redis-server` cannot be found or installed, or does not answer
    /// within 10 s: a test cannot run without it.
    pub fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("backstop-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory for redis-server");
        let mut server = RedisServer { child: None, port, dir };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:PORT/`, for a client.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (SIGKILL): clients see their connections
    /// drop and new ones refused, as when a Redis host dies.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty (it keeps no data).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Makes the server hold every client's commands for `pause` (`CLIENT
    /// PAUSE`), as a Redis stalled by a slow disk or a long script would.
    pub fn stall(&self, pause: Duration) {
        let reply = self.command(&["CLIENT", "PAUSE", &pause.as_millis().to_string(), "ALL"]);
        assert_eq!(reply, "+OK", "CLIENT PAUSE");
    }

    /// Sends one command and returns the first line of the reply (`+PONG`,
    /// `:3`, `$5`, `-ERR ...`): enough for a test to look at the store.
    ///
    /// # Panics
    ///
    /// If the server does not answer within 5 s.
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis-server");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("a read timeout");
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).expect("send a command to redis-server");
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).expect("a reply from redis-server");
        let _ = stream.shutdown(Shutdown::Both);
        line.trim_end().to_owned()
    }

    fn spawn(&mut self) {
        let binary = redis_server();
        let child = Command::new(binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.command(&["PING"]) == "+PONG" {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("redis-server on port {} did not answer PING within 10 s", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("its address").port()
}

/// The `redis-server` binary, installed from Debian's packages if missing
/// (once per process, whatever the number of tests asking).
fn redis_server() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = find() {
        return found;
    }
    let as_root = |args: &[&str]| {
        let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
        let mut cmd = if is_root { Command::new(args[0]) } else { Command::new("sudo") };
        if !is_root {
            cmd.arg(args[0]);
        }
        cmd.args(&args[1..]).env("DEBIAN_FRONTEND", "noninteractive").stdout(Stdio::null()).status()
    };
    eprintln!("redis-server not found; installing it from Debian's packages");
    let installed = as_root(&["apt-get", "install", "-y", "redis-server"]).is_ok_and(|s| s.success())
        || (as_root(&["apt-get", "update"]).is_ok()
            && as_root(&["apt-get", "install", "-y", "redis-server"]).is_ok_and(|s| s.success()));
    // The package may start a system Redis on port 6379; the tests do not use it.
    let _ = as_root(&["systemctl", "disable", "--now", "redis-server"]);
    match find() {
        Some(found) if installed => found,
        _ => panic!("redis-server is missing and could not be installed (apt-get install redis-server)"),
    }
}

fn find() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("redis-server"));
    on_path.chain([PathBuf::from("/usr/bin/redis-server")]).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_stalls_dies_and_comes_back_empty() {
        let mut redis = RedisServer::start();
        assert_eq!(redis.command(&["SET", "k", "v"]), "+OK");
        assert_eq!(redis.command(&["DBSIZE"]), ":1");

        redis.stall(Duration::from_millis(200));
        let start = Instant::now();
        assert_eq!(redis.command(&["GET", "k"]), "$1");
        assert!(start.elapsed() >= Duration::from_millis(150), "a stalled server holds commands");

        redis.kill();
        assert!(TcpStream::connect(("127.0.0.1", redis.port())).is_err(), "a killed server refuses");
        redis.restart();
        assert_eq!(redis.command(&["DBSIZE"]), ":0", "a restarted server is empty");
    }
}
