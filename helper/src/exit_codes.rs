//! The helper's exit codes: one per kind of failure, so callers can tell them apart.

use sem::ErrorKind;

/// An exit code of `semctl-helper`. `sem.sh` maps every failure to 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// The operation succeeded.
    Success = 0,
    /// The count was not available: would block, or the timeout expired.
    WouldBlock = 1,
    /// Bad usage: unknown command, missing or malformed argument.
    Usage = 2,
    /// No such semaphore here: none, a stale or untrusted record, one of another IPC
    /// namespace, or the semaphore was destroyed.
    NoSuchSemaphore = 3,
    /// Permission denied, or not the owner.
    PermissionDenied = 4,
    /// A value out of range (above 32767) or a kernel limit (SEMMNI, SEMMNS).
    OutOfRange = 5,
    /// `init`: something already stands at the name.
    AlreadyExists = 6,
    /// Any other system error.
    Failure = 7,
    /// The kind of semaphore can't do this (a POSIX semaphore can't relax), or the name's
    /// kind isn't supported yet (`redis:`).
    Unsupported = 8,
    /// A lease ran out, or its server lost it: the counts may be someone else's now.
    LeaseLost = 9,
}

/// The table printed by `--help` and copied in the README.
pub const HELP: &str = "\
Exit codes:
  0  success
  1  would block, or timed out
  2  usage error: unknown command, missing or malformed argument
  3  no such semaphore here: none, a stale or untrusted record, one of another IPC
     namespace, or destroyed while waiting
  4  permission denied, or not the owner
  5  out of range (a value above 32767, a take above the capacity) or a kernel
     limit (SEMMNI, SEMMNS)
  6  init: something already stands at the name
  7  any other system error
  8  not supported by this kind of semaphore (relax, or -n above 1, on a POSIX
     semaphore), or a kind not supported in this build
  9  hold: the lease was lost (Redis: not refreshed in time, or the server lost it)
  run: the command's own status; 122 when the lease was lost and the command stopped;
     125 when run itself failed, 126 not executable, 127 not found
  A wait ended by a signal dies of that signal (128+N in the shell).\n";

impl From<ErrorKind> for ExitCode {
    fn from(kind: ErrorKind) -> ExitCode {
        match kind {
            ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted => {
                ExitCode::WouldBlock
            }
            ErrorKind::InvalidInput => ExitCode::Usage,
            ErrorKind::NotFound
            | ErrorKind::Stale
            | ErrorKind::OtherNamespace
            | ErrorKind::Removed => ExitCode::NoSuchSemaphore,
            ErrorKind::PermissionDenied | ErrorKind::NotOwner => ExitCode::PermissionDenied,
            ErrorKind::OutOfRange => ExitCode::OutOfRange,
            ErrorKind::Unsupported => ExitCode::Unsupported,
            ErrorKind::AlreadyExists => ExitCode::AlreadyExists,
            ErrorKind::LeaseLost => ExitCode::LeaseLost,
            _ => ExitCode::Failure,
        }
    }
}

impl ExitCode {
    /// The code for an error: that of the first library error in its chain, else
    /// [`ExitCode::Failure`].
    pub fn of(e: &anyhow::Error) -> ExitCode {
        e.chain()
            .find_map(|c| c.downcast_ref::<sem::Error>())
            .map_or(ExitCode::Failure, |s| ExitCode::from(s.kind()))
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> std::process::ExitCode {
        std::process::ExitCode::from(code as u8)
    }
}
