//! PID 1 duties, like tini: all signals blocked in every thread and taken by one thread with
//! `sigwait`; `SIGCHLD` reaps every child until none is left (orphans included: the entrypoint
//! is a child subreaper when it is not PID 1); other signals are handed to the supervisor, which
//! forwards them to the children's process groups.

use nix::sys::signal::{kill, killpg, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// What the signal thread reports.
#[derive(Debug)]
pub(crate) enum SysEvent {
    /// A signal other than `SIGCHLD` arrived.
    Signal(Signal),
    /// A process was reaped: its exit code, or 128 + signal number when killed.
    Reaped { pid: i32, code: i32 },
}

/// Blocks every signal in the calling thread (threads spawned later inherit the mask; children
/// would too, through `fork` and `exec`: `std` does not reset it, so `unblock_in_child` does),
/// makes this process a child subreaper, and starts
/// the thread that waits for signals and reaps.
pub(crate) fn start(tx: impl Fn(SysEvent) + Send + 'static) -> nix::Result<()> {
    let all = SigSet::all();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&all), None)?;
    // Orphans (Ray daemons, forked helpers) are re-parented to us and reaped here, not left as
    // zombies, even when we are not PID 1.
    if std::process::id() != 1 {
        nix::sys::prctl::set_child_subreaper(true)?;
    }
    let mut wanted = SigSet::all();
    // Synchronous faults are never queued for sigwait.
    for s in [Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGFPE, Signal::SIGILL, Signal::SIGTRAP, Signal::SIGSYS] {
        wanted.remove(s);
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            match wanted.wait() {
                Ok(Signal::SIGCHLD) => reap_all(&tx),
                Ok(sig) => tx(SysEvent::Signal(sig)),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        })
        .map(|_| ())
        .map_err(|_| nix::errno::Errno::EAGAIN)
}

/// Reaps until no exited child is left (one `SIGCHLD` may stand for many exits).
fn reap_all(tx: &impl Fn(SysEvent)) {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => tx(SysEvent::Reaped { pid: pid.as_raw(), code }),
            Ok(WaitStatus::Signaled(pid, sig, _)) => tx(SysEvent::Reaped { pid: pid.as_raw(), code: 128 + sig as i32 }),
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

/// Makes the child start with an empty signal mask: the mask is inherited through `fork` and
/// `exec`, and ours blocks everything (the signal thread takes them with `sigwait`).
#[allow(unsafe_code)]
pub(crate) fn unblock_signals_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls `sigprocmask`, which is
    // async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).map_err(std::io::Error::from));
    }
}

/// The process-table side of supervision (signalling, listing descendants), behind a trait so
/// the stop logic is tested with a double; [`System`] is the real one.
pub(crate) trait ProcessTable: Send {
    /// Sends `sig` to process group `pgid` (children are spawned as group leaders).
    fn signal_group(&self, pgid: i32, sig: Signal);
    fn signal_pid(&self, pid: i32, sig: Signal);
    /// Every live descendant of this process, zombies included.
    fn descendants(&self) -> Vec<i32>;
}

/// The real process table: `kill(2)`, `killpg(2)` and `/proc`.
pub(crate) struct System;

impl ProcessTable for System {
    fn signal_group(&self, pgid: i32, sig: Signal) {
        signal_group(pgid, sig);
    }
    fn signal_pid(&self, pid: i32, sig: Signal) {
        signal_pid(pid, sig);
    }
    fn descendants(&self) -> Vec<i32> {
        descendants()
    }
}

/// Sends `sig` to process group `pgid` (children are spawned as group leaders).
pub(crate) fn signal_group(pgid: i32, sig: Signal) {
    let _ = killpg(Pid::from_raw(pgid), sig);
}

pub(crate) fn signal_pid(pid: i32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid), sig);
}

/// Every live descendant of this process, from `/proc/*/stat` (parent links), zombies included.
pub(crate) fn descendants() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                if let Some(ppid) = parse_stat_ppid(&stat) {
                    parent_of.push((pid, ppid));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![me];
    while let Some(p) = frontier.pop() {
        for (child, _) in parent_of.iter().filter(|(_, pp)| *pp == p) {
            if !out.contains(child) {
                out.push(*child);
                frontier.push(*child);
            }
        }
    }
    out
}

/// The parent pid of a `/proc/<pid>/stat` line; the command name may contain spaces and `)`.
pub fn parse_stat_ppid(stat: &str) -> Option<i32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Maps a signal name or number from the set the entrypoint treats as "stop".
pub(crate) fn is_stop_signal(sig: Signal) -> bool {
    matches!(sig, Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT | Signal::SIGHUP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_after_a_command_name_with_spaces_and_parens() {
        assert_eq!(parse_stat_ppid("1234 (ray::IDLE) S 77 1234 1234 0 -1"), Some(77));
        assert_eq!(parse_stat_ppid("99 (a b) c)) Z 1 99 99"), Some(1));
    }
}
