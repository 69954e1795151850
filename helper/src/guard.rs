//! A guard: for kinds without the kernel's undo (POSIX), the process that gives a program's
//! counts back when the program ends, however it ends.
//!
//! `run` takes the counts plainly, starts a guard that watches `run`'s own process through
//! a pidfd, and then execs the program, which keeps that pid: when the program ends, even
//! by SIGKILL, the guard posts the counts. The guard forks once more and its first process
//! exits, so that it is nobody's child the program could wait for; it starts its own
//! session, so that a Ctrl-C or a signal to the program's process group doesn't reach it,
//! and it blocks every signal it can. Only a SIGKILL sent to the guard itself loses the
//! counts; the README says so.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use anyhow::{anyhow, Context};
use nix::sys::signal::{SigSet, SigmaskHow};
use sem::{Detail, Name};

use crate::exit_codes::ExitCode;
use crate::process::{self, Event};
use crate::sys;

/// Where a POSIX semaphore lives: its file's device and inode, so that the guard posts to
/// the very semaphore the counts came from, not to one that replaced it since.
fn identity(name: &Name) -> anyhow::Result<(u64, u64)> {
    match sem::open(name)?.status()?.detail {
        Detail::Posix { device, inode, .. } => Ok((device, inode)),
        Detail::SysV { key, id, .. } => Ok((key as u32 as u64, id as u32 as u64)),
        Detail::Redis { .. } => Err(anyhow!(
            "a Redis semaphore is held under a lease, not guarded"
        )),
    }
}

/// Start a guard that posts `n` counts of `name` once this process (and the program it is
/// about to become) has ended. Returns once the guard watches us.
///
/// # Errors
/// When the guard can't be started or doesn't confirm; the caller then gives the counts
/// back itself.
pub fn start(name: &Name, n: u32) -> anyhow::Result<()> {
    let (device, inode) = identity(name)?;
    // Our own binary, by its path (not /proc/self/exe), so that `ps` shows what it is.
    let exe = std::env::current_exe().context("cannot find our own program")?;
    let mut child = Command::new(exe)
        .arg("guard")
        .arg(std::process::id().to_string())
        .arg(n.to_string())
        .arg(format!("{device}:{inode}"))
        .arg("--")
        .arg(name.label())
        .env_remove(crate::signals::PARENT_ENV)
        .env_remove(crate::CALLER_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start a guard for the count")?;
    let out = child.stdout.take().expect("stdout was piped");
    // The guard's first process exits as soon as the second one runs.
    child.wait().context("cannot start a guard for the count")?;
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line)?;
    match line.trim_end() {
        "ok" => Ok(()),
        _ => Err(anyhow!("the guard for the count did not start")),
    }
}

/// `guard PID N DEV:INO -- NAME`: the guard's own side (see the module docs). Answers `ok`
/// once it watches PID, then posts N counts of NAME when PID has ended.
pub fn run(pid: OsString, n: OsString, id: OsString, name: OsString) -> anyhow::Result<ExitCode> {
    let bad = || anyhow!("guard: bad arguments");
    let pid: libc::pid_t = pid.to_str().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let n: u32 = n.to_str().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let want = id.into_string().map_err(|_| bad())?;
    // Nothing the caller had open may live as long as we do; no signal may end us but a
    // SIGKILL of our own.
    process::close_inherited_descriptors()?;
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None)?;
    let watched = process::Process::open(pid)?;
    let name = Name::parse(&name)?;
    let sem = sem::open(&name)?;
    let (device, inode) = identity(&name)?;
    if format!("{device}:{inode}") != want || !watched.alive() {
        return Err(anyhow!("guard: the semaphore or the process changed"));
    }
    match sys::fork()? {
        sys::Forked::Parent => sys::exit_now(0),
        sys::Forked::Child => {}
    }
    let _ = nix::unistd::setsid();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ok").and_then(|()| out.flush())?;
    }
    process::let_go_of_stdio()?;
    while process::watch(None, Some(watched.as_fd()), None, None) != Event::Ended {}
    // The program has ended: its counts come back. A semaphore destroyed meanwhile has
    // nothing to give them to.
    let _ = sem.post(n);
    Ok(ExitCode::Success)
}
