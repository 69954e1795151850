//! What a front end does to its own process around holding a count with `SEM_UNDO`: watch
//! its caller's life, drop descriptors it inherited, and clean up before exec.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::error::{Error, ErrorKind, Result};
use crate::sys;

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

/// Sleep until `input` is readable or hangs up, or the process behind `pidfd` has ended.
pub fn wait_for_input_or_exit(input: BorrowedFd<'_>, pidfd: BorrowedFd<'_>) {
    while let Err(nix::errno::Errno::EINTR) =
        sys::wait_readable(input.as_raw_fd(), pidfd.as_raw_fd())
    {}
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
