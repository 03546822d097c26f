//! A new user's package, with `backstop-http` as its only dependency (as the
//! crate page says is enough), built by cargo from scratch: the core's
//! attribute works through the re-export, written either way a user would
//! (`#[backstop_http::backstop::retry]`, or `use backstop_http::backstop;`
//! then `#[backstop::retry]`), with no `crate = ..`; and a package that has
//! none of the crates gets an error that says what to add.
//!
//! Each package is built in a target directory of its own under `target/`
//! (kept between runs, so only the first run builds its dependencies), with
//! the workspace's `Cargo.lock` and `--offline`: the same versions as the
//! workspace, no network.

use std::path::{Path, PathBuf};
use std::process::Command;

const MAIN: &str = r#"
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};

use backstop_http::backstop;
use backstop_http::backstop::ManualClock;

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails twice, then succeeds.
fn flaky() -> Result<u32, std::io::Error> {
    match CALLS.fetch_add(1, Ordering::SeqCst) {
        0 | 1 => Err(std::io::Error::other("refused")),
        n => Ok(n + 1),
    }
}

#[backstop_http::backstop::retry(max_attempts = 3, base = "10ms", clock = CLOCK)]
fn by_full_path() -> Result<u32, std::io::Error> {
    flaky()
}

#[backstop::retry(max_attempts = 3, base = "10ms", clock = CLOCK)]
fn through_the_use() -> Result<u32, std::io::Error> {
    flaky()
}

fn main() {
    assert_eq!(by_full_path().unwrap(), 3);
    CALLS.store(0, Ordering::SeqCst);
    assert_eq!(through_the_use().unwrap(), 3);
    assert_eq!(CLOCK.sleeps().len(), 4);
    println!("retried through backstop_http's re-export");
}
"#;

const NOT_A_DEPENDENCY: &str = r#"
#[backstop_macros::retry(max_attempts = 3)]
fn load() -> Result<u32, std::io::Error> {
    Ok(1)
}

fn main() {
    let _ = load();
}
"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Writes a package named `name` with `dependency` and `main`, and builds
/// and runs it: the output of `cargo run`.
fn cargo_run(name: &str, dependency: &str, main: &str) -> std::process::Output {
    let root = workspace();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\n{dependency} = {{ path = {:?} }}\n\n[workspace]\n",
        root.join("crates").join(dependency)
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/main.rs"), main).unwrap();
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .args(["run", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", root.join("target/only-dependency"))
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap()
}

#[test]
fn the_core_attribute_works_through_backstop_http_alone() {
    let out = cargo_run("only-backstop-http", "backstop-http", MAIN);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the package did not build or run:\n{stderr}");
    assert!(stdout.contains("retried through backstop_http's re-export"), "{stdout}");
}

#[test]
fn without_any_of_the_crates_the_error_says_what_to_add() {
    let out = cargo_run("only-backstop-macros", "backstop-macros", NOT_A_DEPENDENCY);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "built without backstop:\n{stderr}");
    assert!(
        stderr.contains(
            "could not find `backstop` or `backstop-http` or `backstop-aws` among this package's dependencies"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("add `backstop = \""), "{stderr}");
    assert!(!stderr.contains("E0433"), "rustc's own error came too:\n{stderr}");
}
