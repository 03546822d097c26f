//! One attempt of `backstop run`: the child process, the process group it
//! leads, the signals backstop passes on to it (caught in
//! [`super::signals`]), and how it is ended.
//!
//! Unless `--foreground`, each attempt starts as the leader of a new process
//! group, so that ending it ends what it started too. An attempt that runs
//! past its timeout, or past the run's deadline, is ended in three steps:
//! TERM to the group; the grace period (`--kill-after`); KILL to the group,
//! whether or not the leader is still there, since a child that ignores TERM
//! outlives a leader that does not. Only when the leader has exited and no
//! live process is left in the group (as `/proc` shows) is the rest of the
//! grace period skipped; the group is then still sent its KILL, in case a
//! process escaped the scan.
//!
//! # Why signalling the group by its id is safe
//!
//! A group's id is its leader's pid, and the kernel gives that number to no
//! other process or group while the leader is unreaped (alive or a zombie):
//! the zombie still holds its pid, and so the group id. So the leader's exit
//! is only *observed* with `waitid(.., WNOWAIT)`, which leaves it a zombie,
//! and it is reaped only after the last signal to its group. Every
//! `kill(-pgid, ..)` is thus made while the id can name nothing but the group
//! this attempt created; after [`Attempt::reap`] the group is never signalled
//! again. (A member that moved itself to another group or session has left
//! ours, and is out of reach, as with timeout(1).)

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use super::signals::interrupted;

/// When a running attempt is ended, and how.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long one attempt may run.
    pub timeout: Option<Duration>,
    /// When the whole run must be over.
    pub deadline: Option<Instant>,
    /// The grace period between TERM and KILL.
    pub kill_after: Duration,
    /// Keep the command in backstop's own process group: signals then go to
    /// the command alone, never to a group.
    pub foreground: bool,
}

/// How an attempt ended.
#[derive(Debug)]
pub enum Ended {
    /// The command exited by itself, with this status.
    Exited(ExitStatus),
    /// It ran past the attempt timeout and was ended.
    TimedOut,
    /// The run's deadline came while it ran, and it was ended.
    Deadline,
    /// backstop received this signal and passed it on; the command has exited.
    Interrupted(i32),
}

/// How often a running attempt is looked at.
const POLL: Duration = Duration::from_millis(5);

/// How often, during a grace period, `/proc` is scanned for the group's
/// remaining members.
const SCAN: Duration = Duration::from_millis(50);

/// A started attempt: the child, and the group it leads.
struct Attempt {
    /// The command's process, unreaped until [`Attempt::reap`].
    child: Child,
    /// The child's pid.
    pid: libc::pid_t,
    /// The id of the group the child leads (its pid), or `None` with
    /// `--foreground`, where the command shares backstop's group.
    group: Option<libc::pid_t>,
}

impl Attempt {
    /// Starts the command, as the leader of a new process group unless
    /// `foreground`.
    fn spawn(command: &[String], foreground: bool) -> io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(&command[0]);
        cmd.args(&command[1..]);
        if !foreground {
            cmd.process_group(0);
        }
        let mut child = cmd.spawn()?;
        let Ok(pid) = libc::pid_t::try_from(child.id()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("the child's pid does not fit a pid_t"));
        };
        // `process_group(0)` made the child its own group's leader: the group
        // id is its pid, remembered here for when the leader is gone.
        Ok(Self { child, pid, group: (!foreground).then_some(pid) })
    }

    /// Whether the command has exited, leaving it unreaped (a zombie) so
    /// that its pid, and so its group id, stay ours.
    fn has_exited(&self) -> io::Result<bool> {
        // SAFETY: `siginfo_t` is plain integers and padding, for which all
        // zero bytes are a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let Ok(id) = libc::id_t::try_from(self.pid) else { return Err(io::Error::other("negative pid")) };
        // SAFETY: `info` is a valid, writable `siginfo_t` that outlives the
        // call, and waitid(2) writes nothing else. WNOWAIT leaves the child
        // waitable, so `Child::wait` still reaps it later; WNOHANG: no block.
        let rc = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
        if rc == -1 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(err) };
        }
        // SAFETY: `info` was zeroed, then filled by a successful waitid(2):
        // its `si_pid` is the child's pid if it exited, else still 0 (with
        // WNOHANG and nothing to report, as waitid(2) advises checking).
        Ok(unsafe { info.si_pid() } != 0)
    }

    /// Sends `signal` to the group, or with `--foreground` to the command
    /// alone. Harmless once they are gone (ESRCH, or a zombie leader).
    fn signal(&self, signal: libc::c_int) {
        let target = self.group.map_or(self.pid, |group| -group);
        // SAFETY: kill(2) touches no memory. The target is our unreaped child
        // or the group it leads, ids that cannot have been reused (see the
        // module docs); the result is ignored on purpose: ESRCH means
        // nothing was left to signal.
        unsafe {
            libc::kill(target, signal);
        }
    }

    /// Whether no live process is left in the group, zombies aside: always so
    /// with `--foreground` once the command exited (nothing else is ours), and
    /// never as far as we know when `/proc` cannot tell (not Linux), so the
    /// full grace period is waited.
    fn group_is_empty(&self) -> bool {
        let Some(group) = self.group else { return true };
        let Ok(entries) = std::fs::read_dir("/proc") else { return false };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
                continue;
            }
            // A process gone meanwhile has no stat to read: not a member.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parens.
            let Some((_, rest)) = stat.rsplit_once(')') else { continue };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("Z");
            let pgrp = fields.nth(1).and_then(|p| p.parse::<libc::pid_t>().ok());
            if pgrp == Some(group) && !matches!(state, "Z" | "X" | "x") {
                return false;
            }
        }
        true
    }

    /// KILLs what is left of the group (the group's last signal), then reaps
    /// the command. Call only once the command has exited, so this does not
    /// block.
    fn reap(mut self) -> io::Result<ExitStatus> {
        if self.group.is_some() {
            self.signal(libc::SIGKILL);
        }
        self.child.wait()
    }
}

/// Why a running attempt is being ended, and since when.
#[derive(Debug, Clone, Copy)]
struct Ending {
    /// What ended it: [`Ended::TimedOut`] or [`Ended::Deadline`].
    timed_out: bool,
    /// When the group was sent TERM.
    termed_at: Instant,
    /// Whether the group was sent KILL yet.
    killed: bool,
}

/// The earliest moment the attempt must be ended, and whether that is its
/// own timeout (`true`) or the run's deadline (`false`, which wins a tie).
fn cutoff(started: Instant, limits: Limits) -> Option<(Instant, bool)> {
    let timeout = limits.timeout.and_then(|t| started.checked_add(t)).map(|at| (at, true));
    let deadline = limits.deadline.map(|at| (at, false));
    match (timeout, deadline) {
        (Some(t), Some(d)) => Some(if t.0 < d.0 { t } else { d }),
        (t, d) => t.or(d),
    }
}

/// Runs one attempt of `command`: starts it, passes on a signal backstop
/// receives, ends it at its timeout or the run's deadline, and reaps it.
pub fn run(command: &[String], limits: Limits) -> io::Result<Ended> {
    let attempt = Attempt::spawn(command, limits.foreground)?;
    let cutoff = cutoff(Instant::now(), limits);
    let mut ending = None::<Ending>;
    let (mut forwarded, mut next_scan) = (false, Instant::now());
    loop {
        let exited = match attempt.has_exited() {
            Ok(exited) => exited,
            Err(err) => {
                // Cannot watch it: end it rather than leave it behind.
                attempt.signal(libc::SIGKILL);
                let _ = attempt.reap();
                return Err(err);
            }
        };
        if let Some(sig) = interrupted().filter(|_| !forwarded && !limits.foreground) {
            // In the foreground the terminal already sent it to the command.
            attempt.signal(sig);
            forwarded = true;
        }
        let now = Instant::now();
        match &mut ending {
            None if exited => {
                let status = attempt.reap()?;
                return Ok(interrupted().map_or(Ended::Exited(status), Ended::Interrupted));
            }
            None => {
                if let Some((_, timed_out)) = cutoff.filter(|(at, _)| now >= *at) {
                    attempt.signal(libc::SIGTERM);
                    ending = Some(Ending { timed_out, termed_at: now, killed: false });
                }
            }
            Some(end) => {
                // The leader gone, the group may be empty before the grace
                // period is over: no need to wait it out then.
                let emptied = exited && now >= next_scan && {
                    next_scan = now + SCAN;
                    attempt.group_is_empty()
                };
                if !end.killed && (now.duration_since(end.termed_at) >= limits.kill_after || emptied) {
                    attempt.signal(libc::SIGKILL);
                    end.killed = true;
                }
                if end.killed && exited {
                    let timed_out = end.timed_out;
                    attempt.reap()?;
                    return Ok(match interrupted() {
                        Some(sig) => Ended::Interrupted(sig),
                        None if timed_out => Ended::TimedOut,
                        None => Ended::Deadline,
                    });
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_cuts_an_attempt_short_and_wins_a_tie() {
        let now = Instant::now();
        let limits = |timeout: Option<u64>, deadline: Option<u64>| Limits {
            timeout: timeout.map(Duration::from_millis),
            deadline: deadline.map(|ms| now + Duration::from_millis(ms)),
            kill_after: Duration::ZERO,
            foreground: false,
        };
        let ms = |ms| now + Duration::from_millis(ms);
        assert_eq!(cutoff(now, limits(None, None)), None);
        assert_eq!(cutoff(now, limits(Some(100), None)), Some((ms(100), true)));
        assert_eq!(cutoff(now, limits(None, Some(100))), Some((ms(100), false)));
        assert_eq!(cutoff(now, limits(Some(100), Some(300))), Some((ms(100), true)));
        assert_eq!(cutoff(now, limits(Some(300), Some(100))), Some((ms(100), false)));
        assert_eq!(cutoff(now, limits(Some(100), Some(100))), Some((ms(100), false)));
    }
}
