//! Processes: the parent's death, descriptors, pidfds, fork and _exit.

use nix::errno::Errno;

/// `prctl(PR_SET_PDEATHSIG, sig)`: have the kernel send `sig` when the thread that forked
/// us exits (in a single-threaded parent, when the parent exits).
///
/// # Errors
/// `EINVAL` for an invalid signal; see prctl(2).
pub fn set_parent_death_signal(sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
    Errno::result(r).map(drop)
}

/// `prctl(PR_SET_PDEATHSIG, 0)`: no signal when our parent exits. The setting survives
/// execve(2), so a program we exec would otherwise inherit it.
///
/// # Errors
/// See prctl(2).
pub fn forget_parent_death() -> Result<(), Errno> {
    // SAFETY: PR_SET_PDEATHSIG with 0 takes no pointer and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0 as libc::c_ulong, 0, 0, 0) };
    Errno::result(r).map(drop)
}

/// `close_range(first, ~0, 0)`: close every descriptor from `first` up.
///
/// # Errors
/// `ENOSYS` before Linux 5.9, `EINVAL`; see close_range(2).
pub fn close_from(first: libc::c_uint) -> Result<(), Errno> {
    // SAFETY: closing descriptors touches no memory; the caller owns no Rust object that
    // wraps a descriptor at or above `first`.
    let r = unsafe { libc::close_range(first, libc::c_uint::MAX, 0) };
    Errno::result(r).map(drop)
}

/// `pidfd_open(pid, 0)`: a descriptor that refers to process `pid` itself, immune to pid
/// reuse, and that polls readable once the process has ended.
///
/// # Errors
/// `ESRCH` when no such process exists, `ENOSYS` before Linux 5.3; see pidfd_open(2).
pub fn pidfd_open(pid: libc::pid_t) -> Result<std::os::fd::OwnedFd, Errno> {
    // SAFETY: pidfd_open takes plain integers; libc has no wrapper, hence the raw syscall.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = Errno::result(fd)? as libc::c_int;
    // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`: signal the process behind `pidfd`, which
/// can't be a later process that reused its pid. Signal 0 only checks that it still runs.
///
/// # Errors
/// `ESRCH` when the process has ended, `EPERM`, `ENOSYS` before Linux 5.1; see
/// pidfd_send_signal(2).
pub fn pidfd_send_signal(pidfd: libc::c_int, sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: a null siginfo pointer is allowed and the call touches no memory of ours;
    // libc has no wrapper, hence the raw syscall.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// Whether `fork` returned in the parent or the child.
pub enum Forked {
    /// In the parent.
    Parent,
    /// In the child.
    Child,
}

/// `fork()`, allowed only while this process has a single thread: in the child only the
/// calling thread exists, and a lock held by another thread would stay locked for ever.
///
/// # Errors
/// `EBUSY` when the process has other threads (counted in /proc/self/task); `EAGAIN`,
/// `ENOMEM`; see fork(2).
pub fn fork() -> Result<Forked, Errno> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .map_err(|_| Errno::EBUSY)?;
    if threads != 1 {
        return Err(Errno::EBUSY);
    }
    // SAFETY: we just checked that this process has one thread, the caller.
    let pid = unsafe { libc::fork() };
    match Errno::result(pid)? {
        0 => Ok(Forked::Child),
        _ => Ok(Forked::Parent),
    }
}

/// `_exit(code)`: end the process at once, running no exit handlers and flushing nothing
/// (for the parent side of a fork whose buffers belong to the child).
pub fn exit_now(code: libc::c_int) -> ! {
    // SAFETY: _exit takes an integer and never returns.
    unsafe { libc::_exit(code) }
}

/// Have `cmd`'s child, between its fork and its exec, ask for SIGKILL when we die
/// (`PR_SET_PDEATHSIG`) and take `mask` as its signal mask: a command run under a lease
/// must not outlive the helper that refreshes the lease.
pub fn die_with_us_and_mask(cmd: &mut std::process::Command, mask: nix::sys::signal::SigSet) {
    use std::os::unix::process::CommandExt;
    let us = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, and calls only prctl(2),
    // getppid(2) and sigprocmask(2), which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // We died before the prctl: no signal will come, so don't run at all.
            if libc::getppid() as u32 != us {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            if libc::sigprocmask(libc::SIG_SETMASK, mask.as_ref(), std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Overwrite `len` bytes of our own command line, `offset` bytes into it, with `*`: what
/// /proc/PID/cmdline, and so ps(1), shows. Does nothing when the range isn't inside it
/// (the kernel's `arg_start..arg_end`, read from /proc/self/stat) or that can't be read.
pub fn blank_command_line(offset: usize, len: usize) {
    let Some((start, end)) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The fields after the command's name, from the 3rd: arg_start is the 48th,
            // arg_end the 49th.
            let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
            Some((
                f.get(45)?.parse::<usize>().ok()?,
                f.get(46)?.parse::<usize>().ok()?,
            ))
        })
    else {
        return;
    };
    let Some(stop) = offset.checked_add(len).and_then(|o| o.checked_add(start)) else {
        return;
    };
    if stop > end {
        return;
    }
    // SAFETY: the range lies inside our command line's memory, which the kernel mapped
    // writable for us, as checked above; Rust holds no reference into it (std copies the
    // arguments when they are read).
    unsafe { std::ptr::write_bytes((start + offset) as *mut u8, b'*', len) }
}
