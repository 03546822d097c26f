//! A private nginx for the real-server benchmarks (`scripts/nginx.sh`):
//! `/limited` is a real rate limiter (`limit_req`, 50 requests a second,
//! burst 10, 429 beyond), `/flaky` fails, shared by every client.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

/// What the benchmarks' binaries return on failure.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A private nginx, stopped (and its directory removed) when dropped, on
/// panic too.
pub struct Nginx {
    script: PathBuf,
    dir: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    keep: bool,
}

impl Nginx {
    pub fn start(keep: bool) -> Result<Self, Error> {
        let script = root().join("scripts/nginx.sh");
        let dir = std::env::temp_dir().join(format!(
            "backstop-nginx-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut nginx = Nginx { script, dir, port: 0, keep };
        // The guard exists before the start, so a half-started nginx is stopped.
        let status = Command::new("bash").arg(&nginx.script).arg("start").arg(&nginx.dir).status()?;
        if !status.success() {
            return Err(format!("{} start failed: {status}", nginx.script.display()).into());
        }
        nginx.port = fs::read_to_string(nginx.dir.join("port"))?.trim().parse()?;
        Ok(nginx)
    }

    pub fn access_log(&self) -> PathBuf {
        self.dir.join("access.log")
    }

    /// The access log's length now: a run's lines are the ones after it.
    pub fn log_len(&self) -> Result<u64, Error> {
        Ok(fs::metadata(self.access_log())?.len())
    }

    /// The lines logged since `offset` for run `tag`: `(msec, i, status)`.
    pub fn lines(&self, offset: u64, tag: &str) -> Result<Vec<(f64, usize, u16)>, Error> {
        let bytes = fs::read(self.access_log())?;
        let text = String::from_utf8_lossy(&bytes[(offset as usize).min(bytes.len())..]);
        let needle = format!("run={tag}&i=");
        let mut out = Vec::new();
        for line in text.lines() {
            let mut parts = line.split(' ');
            let (Some(msec), Some(uri), Some(status)) = (parts.next(), parts.next(), parts.next()) else { continue };
            let Some(at) = uri.find(&needle) else { continue };
            let i = uri[at + needle.len()..].split('&').next().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
            out.push((msec.parse().unwrap_or(0.0), i, status.parse().unwrap_or(0)));
        }
        Ok(out)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(&self.script).arg("stop").arg(&self.dir).status();
        if self.keep {
            eprintln!("nginx logs kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
