//! The built `backstop` binary, run on real small shell commands.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn backstop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backstop")).args(args).output().expect("the backstop binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A scratch directory for counter files.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("backstop-cli-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_command_failing_twice_then_succeeding_takes_three_attempts() {
    let dir = Scratch::new();
    let counter = dir.0.join("n");
    let script = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; echo \"attempt $n\"; [ $n -ge 3 ]",
        c = counter.display()
    );
    let out = backstop(&["run", "--attempts", "5", "--base", "5ms", "--jitter", "none", "--", "sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&counter).unwrap().trim(), "3");
    assert_eq!(stdout(&out), "attempt 1\nattempt 2\nattempt 3\n", "stdout passes through");
    let err = stderr(&out);
    assert!(err.contains("Retrying sh -c"), "{err}");
    assert!(err.contains("in 0.005 seconds (attempt 1/5): exit status 1"), "{err}");
    assert!(err.contains("in 0.01 seconds (attempt 2/5): exit status 1"), "{err}");
}

#[test]
fn a_command_that_always_fails_keeps_its_exit_status() {
    let out = backstop(&[
        "run",
        "--attempts",
        "3",
        "--base",
        "1ms",
        "--jitter",
        "none",
        "--",
        "sh",
        "-c",
        "echo oops >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    let err = stderr(&out);
    assert_eq!(err.lines().filter(|l| *l == "oops").count(), 3, "stderr passes through: {err}");
    assert!(err.contains("(attempt 2/3): exit status 7"), "the attempt that failed: {err}");
    assert!(!err.contains("(attempt 3/3)"), "the last failure is the give-up line: {err}");
    assert!(err.contains("backstop: sh -c echo oops >&2; exit 7: gave up after 3 attempts: exit status 7"), "{err}");
}

#[test]
fn a_hung_command_is_ended_and_reported_like_timeout() {
    let started = Instant::now();
    let out = backstop(&["run", "--attempts", "2", "--base", "1ms", "--attempt-timeout", "150ms", "--", "sleep", "30"]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(10), "ended, not waited for");
    assert!(stderr(&out).contains("timed out after 0.15 seconds"), "{}", stderr(&out));
}

#[test]
fn a_command_ignoring_term_is_killed_with_its_children() {
    let started = Instant::now();
    let out = backstop(&[
        "run",
        "--attempts",
        "1",
        "--attempt-timeout",
        "100ms",
        "--kill-after",
        "100ms",
        "--",
        "sh",
        "-c",
        "trap '' TERM; sleep 30",
    ]);
    assert_eq!(out.status.code(), Some(124));
    // `output()` waits for the pipes to close: the `sleep` child was ended too.
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

/// A `sleep` argument no other process has, to find leftovers by: `secs`
/// and six random decimals.
fn unique_sleep(secs: u32) -> String {
    format!("{secs}.{:06}", fastrand::u32(0..1_000_000))
}

/// The live processes with `arg` among their arguments, as /proc shows.
fn processes_with_arg(arg: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            // A zombie's cmdline is empty; a process gone meanwhile has none.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes())
        })
        .collect()
}

/// The processes with `arg` still alive a second after backstop exited (a
/// KILLed process takes a moment to die); KILLed here, not to outlive a
/// failed test.
fn leftovers(arg: &str) -> Vec<i32> {
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        let found = processes_with_arg(arg);
        if found.is_empty() || Instant::now() >= until {
            for pid in &found {
                // SAFETY: kill(2) touches no memory. The pid was just seen
                // running our unique argument; pids are handed out in turn
                // up to pid_max, so it is not reused in the meantime.
                unsafe {
                    libc::kill(*pid, libc::SIGKILL);
                }
            }
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The command: the leader `sh` dies of TERM at once, while a child
/// ignoring TERM (its output away from backstop's pipes, so that a leftover
/// shows as one rather than as a hang) lives on unless its group is KILLed.
fn term_ignoring_child(stray: &str) -> String {
    format!("(trap '' TERM; exec sleep {stray}) >/dev/null 2>&1 & sleep 30")
}

#[test]
fn a_timed_out_attempt_leaves_no_process_of_its_group_behind() {
    let stray = unique_sleep(37);
    let script = term_ignoring_child(&stray);
    let started = Instant::now();
    let out = backstop(&[
        "run",
        "--attempt-timeout",
        "300ms",
        "--kill-after",
        "300ms",
        "--attempts",
        "2",
        "--base",
        "1ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(leftovers(&stray), Vec::<i32>::new(), "`sleep {stray}` outlived its attempt");
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(stderr(&out).contains("gave up after 2 attempts: timed out after 0.3 seconds"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn a_child_cleaning_up_after_term_gets_the_grace_period_though_the_leader_is_gone() {
    let dir = Scratch::new();
    let done = dir.0.join("cleaned");
    // The subshell waits (interruptibly) on a sleep; on TERM it takes 200 ms
    // to clean up. The leader `sh` dies of the TERM at once.
    let script = format!(
        "(trap 'sleep 0.2; echo cleaned > {f}; exit 0' TERM; sleep {s} & wait) >/dev/null 2>&1 & sleep 30",
        f = done.display(),
        s = unique_sleep(39),
    );
    let started = Instant::now();
    let out = backstop(&[
        "run",
        "--attempt-timeout",
        "200ms",
        "--kill-after",
        "10s",
        "--attempts",
        "1",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&done).unwrap_or_default(), "cleaned\n", "not KILLed before the grace ended");
    // Once no process of the group is left, the rest of the grace is not waited.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn the_deadline_ends_a_running_attempt_and_its_group_and_is_not_retried() {
    let stray = unique_sleep(38);
    let script = term_ignoring_child(&stray);
    let started = Instant::now();
    let out = backstop(&[
        "run",
        "--deadline",
        "500ms",
        "--kill-after",
        "200ms",
        "--attempts",
        "3",
        "--base",
        "1ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let (err, left) = (stderr(&out), leftovers(&stray));
    assert_eq!(left, Vec::<i32>::new(), "`sleep {stray}` outlived the deadline");
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(!err.contains("Retrying"), "{err}");
    assert!(
        err.contains("deadline reached after 1 attempt: the deadline of 0.5 seconds came, and the attempt was ended"),
        "{err}"
    );
}

#[test]
fn the_deadline_cuts_the_attempt_after_timed_out_ones() {
    // Attempts time out at about 0.4 s and 0.8 s; the third is cut at 1 s.
    let sleep = unique_sleep(30);
    let started = Instant::now();
    let out = backstop(&[
        "run",
        "--deadline",
        "1s",
        "--attempt-timeout",
        "400ms",
        "--attempts",
        "10",
        "--base",
        "1ms",
        "--jitter",
        "none",
        "--",
        "sleep",
        &sleep,
    ]);
    let (err, left) = (stderr(&out), leftovers(&sleep));
    assert_eq!(left, Vec::<i32>::new());
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(err.contains("timed out after 0.4 seconds"), "a timed-out attempt is retried: {err}");
    assert!(err.lines().last().unwrap_or_default().contains("deadline reached after"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn in_the_foreground_a_timeout_still_ends_the_command() {
    let out = backstop(&["run", "--foreground", "--attempts", "1", "--attempt-timeout", "100ms", "--", "sleep", "30"]);
    assert_eq!(out.status.code(), Some(124));
}

#[test]
fn a_signal_to_backstop_reaches_the_command_and_stops_the_retries() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_backstop"))
        .args(["run", "--attempts", "5", "--base", "1ms", "--", "sleep", "30"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own, unreaped child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "killed by TERM, not retried");
}

#[test]
fn stop_on_exit_is_not_retried() {
    let out = backstop(&["run", "--attempts", "5", "--base", "1ms", "--stop-on-exit", "2", "--", "sh", "-c", "exit 2"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(!err.contains("Retrying"), "{err}");
    assert!(err.contains("not retried (attempt 1)"), "{err}");
}

#[test]
fn retry_on_exit_limits_what_is_retried() {
    let out =
        backstop(&["run", "--attempts", "5", "--base", "1ms", "--retry-on-exit", "75,1", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!stderr(&out).contains("Retrying"));
    let out =
        backstop(&["run", "--attempts", "2", "--base", "1ms", "--retry-on-exit", "75,1", "--", "sh", "-c", "exit 75"]);
    assert!(stderr(&out).contains("Retrying"));
}

#[test]
fn a_missing_command_exits_127() {
    let out = backstop(&["run", "--", "/no/such/command"]);
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn quiet_and_json_logs() {
    let out = backstop(&["run", "--attempts", "2", "--base", "1ms", "--quiet", "--", "sh", "-c", "exit 1"]);
    assert_eq!(stderr(&out), "");
    let out = backstop(&["run", "--attempts", "2", "--base", "1ms", "--json-log", "--", "sh", "-c", "exit 1"]);
    let lines: Vec<serde_json::Value> = stderr(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["event"], "retry");
    assert_eq!(lines[0]["attempt"], 1);
    assert_eq!(lines[0]["max_attempts"], 2);
    assert_eq!(lines[0]["name"], "sh -c exit 1");
    let message = lines[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Retrying sh -c exit 1 in ") && message.ends_with(" seconds (attempt 1/2): exit status 1")
    );
    assert_eq!(lines[1]["event"], "gave_up");
}

#[test]
fn verbose_shows_the_effective_policy_and_help_shows_what_a_preset_brings() {
    let out = backstop(&["run", "-v", "--attempts", "1", "--base", "100ms", "--", "true"]);
    assert_eq!(
        stderr(&out).lines().next().unwrap_or_default(),
        "Running true under 1 attempt; exponential from 100ms, ×2, capped at 30s, jitter additive:1s; \
         no deadline; Retry-After up to 1m",
        "the preset's jitter stays, and -v says so"
    );
    let help = stdout(&backstop(&["run", "--help"]));
    assert!(
        help.contains("api-call: 3 attempts; exponential from 500ms, ×2, capped at 10s, jitter additive:500ms"),
        "{help}"
    );
}

#[test]
fn each_study_ends_with_what_to_conclude() {
    let out = backstop(&["simulate", "--clients", "50", "--runs", "3"]);
    let text = stdout(&out);
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("conclusion: use jitter: "), "{text}");
    assert!(last.contains("`none` looks fastest only because it never waits"), "{text}");
}

#[test]
fn bad_input_is_a_one_line_error_and_exit_2() {
    for args in [
        vec!["run", "--base", "5parsecs", "--", "true"],
        vec!["run", "--preset", "s4-upload", "--", "true"],
        vec!["run", "--attempts", "0", "--", "true"],
        vec!["run", "--jitter", "wobbly", "--", "true"],
        vec!["schedule", "--factor", "0.5"],
        vec!["run", "--policy", "/no/such/policy.toml", "--", "true"],
    ] {
        let out = backstop(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            err.lines().filter(|l| l.contains("error") || l.starts_with("backstop:")).count() >= 1,
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_policy_file_is_read() {
    let dir = Scratch::new();
    let file = dir.0.join("policy.toml");
    std::fs::write(&file, "max_attempts = 4\n[backoff]\nbase = \"250ms\"\njitter = \"none\"\n").unwrap();
    let out = backstop(&["schedule", "--policy", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("policy: 4 attempts; exponential from 250ms, ×2, capped at 30s, jitter none;"),
        "the header shows the whole policy: {text}"
    );
    let rows: Vec<Vec<&str>> = text.lines().skip(3).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0][1], "0.25", "{text}");
    assert_eq!(rows[2][5], "1.8", "two significant digits, as every duration backstop prints: {text}");
}

#[test]
fn the_api_call_schedule_without_jitter_is_exact() {
    let out = backstop(&["schedule", "--preset", "api-call", "--jitter", "none"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.lines().nth(1).unwrap_or_default().starts_with("delays in seconds"), "{text}");
    let rows: Vec<Vec<&str>> = text.lines().skip(3).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, [vec!["1", "0.5", "0.5", "0.5", "0.5", "0.5"], vec!["2", "1.0", "1.0", "1.0", "1.0", "1.5"]]);
}

#[test]
fn the_schedule_warns_when_the_worst_case_passes_the_deadline() {
    let out = backstop(&["schedule", "--preset", "s3-upload", "--deadline", "10s", "--format", "table"]);
    assert!(
        stdout(&out)
            .contains("warning: in the worst case the sleeps alone pass the deadline of 10.0 seconds at retry 4"),
        "{}",
        stdout(&out)
    );
    let json = backstop(&["schedule", "--preset", "s3-upload", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["retries"].as_array().unwrap().len(), 4);
    let min = v["retries"][0]["min_ms"].as_f64().unwrap();
    assert!((1000.0..1001.0).contains(&min), "{min}"); // 1 s + U[0, 1 s], sampled
}

fn occ(seed: &str) -> serde_json::Value {
    let out = backstop(&["simulate", "--scenario", "occ", "--seed", seed, "--runs", "20", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn mean(v: &serde_json::Value, strategy: &str, metric: &str) -> f64 {
    let row = v["rows"].as_array().unwrap().iter().find(|r| r["name"] == strategy).unwrap();
    let m = row["metrics"].as_array().unwrap().iter().find(|m| m[0] == metric).unwrap();
    m[1]["mean"].as_f64().unwrap()
}

#[test]
fn the_occ_study_is_reproducible_and_ranks_as_brooker_found() {
    let a = occ("1");
    assert_eq!(a, occ("1"), "same seed, same numbers");
    assert_ne!(a, occ("2"));
    let calls = |s| mean(&a, s, "calls");
    let time = |s| mean(&a, s, "completion_ms");
    assert!(calls("full") < calls("none"), "full {} vs none {}", calls("full"), calls("none"));
    assert!(calls("full") < calls("exponential"), "full {} vs exponential {}", calls("full"), calls("exponential"));
    assert!(time("exponential") > 5.0 * time("full"), "exponential {} vs full {}", time("exponential"), time("full"));
}

#[test]
fn the_other_scenarios_and_the_chart() {
    let dir = Scratch::new();
    let svg = dir.0.join("occ.svg");
    let out = backstop(&["simulate", "--clients", "50", "--runs", "5", "--svg", svg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("decorrelated"));

    let out = backstop(&["simulate", "--scenario", "outage", "--clients", "50", "--runs", "3", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let amp = |g| mean(&v, g, "amplification");
    assert!(amp("retries") > 4.0, "{}", amp("retries"));
    assert!(amp("retries+budget") < 2.0 && amp("retries+breaker") < 1.0);

    let out = backstop(&["simulate", "--scenario", "throttle", "--clients", "50", "--runs", "3"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("Retry-After: 1"));
}

#[test]
fn on_a_terminal_a_countdown_shows_while_waiting() {
    // script(1) (util-linux, essential on Debian) gives backstop a pty.
    let cmd =
        format!("{} run --attempts 2 --base 300ms --jitter none -- sh -c 'exit 1'", env!("CARGO_BIN_EXE_backstop"));
    let out = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().expect("script(1) runs");
    let text = stdout(&out);
    assert!(text.contains("next attempt in 0.2"), "{text:?}");
    // Without a terminal, no countdown.
    let plain = backstop(&["run", "--attempts", "2", "--base", "50ms", "--jitter", "none", "--", "sh", "-c", "exit 1"]);
    assert!(!stderr(&plain).contains("next attempt in"));
}
