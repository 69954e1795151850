//! What a front end does to its own process around holding a count with `SEM_UNDO`: watch
//! its caller's life, drop descriptors it inherited, and clean up before exec.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::sys;
use sem::{Error, ErrorKind, Result};

/// Leave our caller's process tree while staying tied to its life: returns, in a child of
/// ours, a descriptor that polls readable once `parent` has ended; our own process exits
/// at once (status 0) so that the caller, a shell that started us as a process
/// substitution, doesn't wait for us (bash's bare `wait` waits for those). A pidfd
/// refers to the process itself, so a reused pid can't fool it.
///
/// Call it while single-threaded.
///
/// # Errors
/// [`ErrorKind::Interrupted`] when `parent` is already gone or is not our parent;
/// [`ErrorKind::Other`] when pidfd_open(2) (Linux 5.3) or fork(2) fails.
pub fn detach_watching(parent: nix::unistd::Pid) -> Result<OwnedFd> {
    let gone = || Error::new(ErrorKind::Interrupted, "the calling process is gone");
    let pidfd = match sys::pidfd_open(parent.as_raw()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ESRCH) => return Err(gone()),
        Err(e) => {
            return Err(Error::sys(
                ErrorKind::Other,
                "cannot watch the calling process (pidfd_open needs Linux 5.3)",
                e,
            ))
        }
    };
    // The pidfd may name a process that was already a stranger when we opened it.
    if nix::unistd::getppid() != parent {
        return Err(gone());
    }
    match sys::fork().map_err(|e| Error::sys(ErrorKind::Other, "cannot fork", e))? {
        sys::Forked::Parent => sys::exit_now(0),
        sys::Forked::Child => Ok(pidfd),
    }
}

/// What ended a [`watch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The input is readable: a byte arrived, or every writer of the pipe has gone.
    Input,
    /// The watched process has ended.
    Ended,
    /// Nobody reads the output any more (a pipe whose reader has gone).
    ReaderGone,
    /// A request arrived (the signalfd polled readable).
    Requested,
}

/// Sleep until the first of: `input` readable or at its end; the process behind the pidfd
/// `ended` has ended; `output`'s reader gone; `request` (a signalfd) readable. A `None` is
/// not watched; a signal that interrupts the sleep is ignored.
pub fn watch(
    input: Option<BorrowedFd<'_>>,
    ended: Option<BorrowedFd<'_>>,
    output: Option<BorrowedFd<'_>>,
    request: Option<BorrowedFd<'_>>,
) -> Event {
    let entry = |fd: Option<BorrowedFd<'_>>, events: libc::c_short| libc::pollfd {
        fd: fd.map_or(-1, |f| f.as_raw_fd()),
        events,
        revents: 0,
    };
    let mut fds = [
        entry(input, libc::POLLIN),
        entry(ended, libc::POLLIN),
        entry(output, 0),
        entry(request, libc::POLLIN),
    ];
    loop {
        match sys::poll(&mut fds, None) {
            Ok(_) if fds[0].revents != 0 => return Event::Input,
            Ok(_) if fds[1].revents != 0 => return Event::Ended,
            Ok(_) if fds[2].revents != 0 => return Event::ReaderGone,
            Ok(_) if fds[3].revents != 0 => return Event::Requested,
            // Only interruptions and spurious wake-ups are left; neither ends the watch.
            _ => continue,
        }
    }
}

/// A process of ours to act on, by pidfd, so that a pid reused meanwhile can't be hit.
pub struct Process {
    pidfd: OwnedFd,
}

impl Process {
    /// Refer to process `pid` from now on. Check what it is (its /proc entries) only
    /// after this, then [`Process::alive`]: a process alive at both ends was the one
    /// read in between, since a pid is not reused while its process lives.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when no such process exists; [`ErrorKind::Other`] when
    /// pidfd_open(2) fails otherwise (it needs Linux 5.3).
    pub fn open(pid: libc::pid_t) -> Result<Process> {
        match sys::pidfd_open(pid) {
            Ok(pidfd) => Ok(Process { pidfd }),
            Err(nix::errno::Errno::ESRCH) => {
                Err(Error::new(ErrorKind::NotFound, "no such process"))
            }
            Err(e) => Err(Error::sys(
                ErrorKind::Other,
                "cannot refer to the process",
                e,
            )),
        }
    }

    /// The pidfd, to poll: readable once the process has ended.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.pidfd)
    }

    /// Whether the process still runs.
    pub fn alive(&self) -> bool {
        sys::pidfd_send_signal(self.pidfd.as_raw_fd(), 0).is_ok()
    }

    /// Send it `sig`; nothing if it has ended.
    pub fn signal(&self, sig: libc::c_int) -> Result<()> {
        match sys::pidfd_send_signal(self.pidfd.as_raw_fd(), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(Error::sys(ErrorKind::Other, "cannot signal the process", e)),
        }
    }

    /// Sleep until it has ended (a child: until it can be reaped), at most `d`, or less
    /// when a handled signal arrives; whether it has ended.
    pub fn ended_within(&self, d: std::time::Duration) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        matches!(sys::poll(&mut fds, Some(d)), Ok(1))
    }

    /// Send it `sig` and wait until it has ended, at most `patience`: its System V undo
    /// adjustments are applied as it exits, before its end is reported.
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] when we may not signal it; [`ErrorKind::TimedOut`]
    /// when it has not ended in time.
    pub fn signal_and_wait(&self, sig: libc::c_int, patience: std::time::Duration) -> Result<()> {
        match sys::pidfd_send_signal(self.pidfd.as_raw_fd(), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(Error::sys(
                    match e {
                        nix::errno::Errno::EPERM => ErrorKind::PermissionDenied,
                        _ => ErrorKind::Other,
                    },
                    "cannot end the process",
                    e,
                ))
            }
        }
        let mut fds = [libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let deadline = std::time::Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match sys::poll(&mut fds, Some(left)) {
                Ok(1) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                _ if left.is_zero() => {
                    return Err(Error::new(
                        ErrorKind::TimedOut,
                        "the process did not end in time",
                    ))
                }
                _ => continue,
            }
        }
    }
}

/// Point our stdin, stdout and stderr at /dev/null: a process that outlives its answer
/// must hold nothing of its caller's pipes (a `$(...)` would wait for our end of it).
///
/// # Errors
/// When /dev/null can't be opened or dup2(2) fails.
pub fn let_go_of_stdio() -> std::io::Result<()> {
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    Ok(())
}

/// Stop watching the parent, before exec: the setting would otherwise pass to the program,
/// which must outlive a killed shell.
///
/// # Errors
/// [`ErrorKind::Other`] if prctl(2) fails.
pub fn forget_parent() -> Result<()> {
    sys::forget_parent_death()
        .map_err(|e| Error::sys(ErrorKind::Other, "cannot stop watching our parent", e))
}

/// Close every descriptor from 3 up. A holder lives as long as a command, and must not
/// keep alive what its caller opened (an flock'd file, a pipe whose end signals EOF).
///
/// # Errors
/// [`ErrorKind::Other`] if close_range(2) fails.
pub fn close_inherited_descriptors() -> Result<()> {
    sys::close_from(3).map_err(|e| Error::sys(ErrorKind::Other, "cannot close descriptors", e))
}
