//! Child processes of the harness: each in its own process group, killed with the harness
//! (PR_SET_PDEATHSIG), signalled by PID only — never by name.

use anyhow::Context;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Whether a process `pid` exists on this host (its /proc entry).
pub fn exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The harness PID in `name` when it names what a run left (`<prefix><pid><separator>…`, as the
/// runs name their namespaces and containers) and that harness is gone (a harness killed with
/// SIGKILL runs no destructor, so what it made is stale).
pub fn dead_harness(name: &str, prefix: &str, separator: char) -> Option<u32> {
    let pid = name
        .strip_prefix(prefix)?
        .split(separator)
        .next()?
        .parse::<u32>()
        .ok()?;
    (!exists(pid)).then_some(pid)
}

/// A command whose process gets its own process group and dies if the harness dies.
///
/// Children must be spawned from the thread that lives as long as the harness (the runtime is
/// single-threaded for that reason): the parent-death signal follows the spawning thread.
pub fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.process_group(0).kill_on_drop(true).stdin(Stdio::null());
    set_parent_death_signal(&mut cmd);
    cmd
}

/// Like [`command`], with the child in the network namespace bound at `netns` (`/run/netns/<name>`):
/// only its network namespace changes (setns(2) with CLONE_NEWNET after fork), so it shares the
/// harness's mounts (lazyfs) and is signalled by PID as any other child.
pub fn command_in_netns(program: &Path, netns: &Path) -> std::io::Result<Command> {
    let ns = std::fs::File::open(netns)?;
    let mut cmd = command(program);
    enter_netns(&mut cmd, ns);
    Ok(cmd)
}

#[allow(unsafe_code)]
fn enter_netns(cmd: &mut Command, ns: std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the closure runs in the forked child before exec and only calls setns(2), which is
    // async-signal-safe; the file it names is owned by the closure, so it is open until the spawn
    // (std opens it close-on-exec, so the broker does not inherit it).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `signal` to the process group led by `pid` (our children lead their own groups).
pub fn signal_group(pid: u32, signal: Signal) -> nix::Result<()> {
    match killpg(Pid::from_raw(pid as i32), signal) {
        Err(nix::errno::Errno::ESRCH) => Ok(()),
        other => other,
    }
}

/// SIGSTOPs (`pause = true`) or SIGCONTs the process group led by `pid` (a node's broker, a
/// client); `what` names it in the error.
pub fn pause_group(pid: u32, pause: bool, what: &str) -> anyhow::Result<()> {
    let signal = if pause {
        Signal::SIGSTOP
    } else {
        Signal::SIGCONT
    };
    signal_group(pid, signal).with_context(|| format!("sending {signal} to {what}"))
}

/// Asks a child to stop with SIGTERM, waits up to `grace`, then SIGKILLs its group. Returns how
/// it ended.
pub async fn stop(child: &mut Child, grace: Duration) -> std::io::Result<std::process::ExitStatus> {
    if let Some(pid) = child.id() {
        let _ = signal_group(pid, Signal::SIGTERM);
        if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
            return status;
        }
        let _ = signal_group(pid, Signal::SIGKILL);
    }
    child.wait().await
}

/// SIGKILLs a child's whole group and reaps it.
pub async fn kill(child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
    if let Some(pid) = child.id() {
        let _ = signal_group(pid, Signal::SIGKILL);
    }
    child.wait().await
}

/// Best-effort synchronous SIGKILL for Drop paths (errors, Ctrl-C).
pub fn kill_now(child: &Child) {
    if let Some(pid) = child.id() {
        let _ = signal_group(pid, Signal::SIGKILL);
    }
}
