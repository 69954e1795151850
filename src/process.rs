//! What a front end does to its own process around holding a count with `SEM_UNDO`: tie
//! its life to its parent's, drop descriptors it inherited, and undo both before exec.

use crate::error::{Error, ErrorKind, Result};
use crate::sys;

/// End this process at once, with status 125, when its parent exits (by any means,
/// SIGKILL included): a holder whose shell is gone must give its count back. Like
/// [`crate::signals::die_with_parent`], it acts only once we were really reparented.
///
/// # Errors
/// [`ErrorKind::Interrupted`] when the parent is already gone (or is not `parent`).
pub fn exit_with_parent(parent: nix::unistd::Pid) -> Result<()> {
    sys::exit_with_parent(sys::first_realtime_signal(), parent.as_raw())
        .map_err(|e| Error::sys(ErrorKind::Other, "cannot tie our life to our parent's", e))?;
    if nix::unistd::getppid() != parent {
        return Err(Error::new(
            ErrorKind::Interrupted,
            "the calling process is gone",
        ));
    }
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
