//! The library's error type: what was attempted, on which name, and why.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// What kind of failure happened. Front ends map these to exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The count was not available and the caller did not want to wait.
    WouldBlock,
    /// The count did not become available within the timeout.
    TimedOut,
    /// A malformed argument: name, value, timeout or mode.
    InvalidInput,
    /// No semaphore at the name, or its parent directory is missing.
    NotFound,
    /// The name's record is stale (its kernel set is gone or was replaced), untrusted,
    /// or something other than a semaphore record stands at the name.
    Stale,
    /// The record names a set in another IPC namespace of this boot, which may be live
    /// there: it can't be used from here, and `init` won't reclaim it without `--force`.
    OtherNamespace,
    /// The set was removed while we waited on it.
    Removed,
    /// The caller lacks permission on the file or on the kernel set.
    PermissionDenied,
    /// The caller does not own the semaphore it tried to destroy or reclaim.
    NotOwner,
    /// A value beyond 32767 (SEMVMX), or a kernel limit such as SEMMNI.
    OutOfRange,
    /// `init` found a live semaphore (or another file) at the name.
    AlreadyExists,
    /// A cancel (a stop signal, say) ended a blocking call before it took anything.
    Interrupted,
    /// The kind of semaphore can't do this (a POSIX semaphore can't relax), or the name
    /// selects a kind that isn't supported yet.
    Unsupported,
    /// A semaphore's server can't be reached (refused, timed out, connection lost).
    Unreachable,
    /// A lease ran out, or the server no longer knows it: the counts may be someone
    /// else's now.
    LeaseLost,
    /// Any other system error.
    Other,
}

/// A failed semaphore operation.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    path: Option<PathBuf>,
    message: String,
    errno: Option<Errno>,
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            path: None,
            message: message.into(),
            errno: None,
        }
    }

    /// An error caused by a system call failing with `errno`.
    pub fn sys(kind: ErrorKind, message: impl Into<String>, errno: Errno) -> Self {
        Error {
            errno: Some(errno),
            ..Error::new(kind, message)
        }
    }

    /// The same error, about the semaphore at `path`.
    pub fn at(mut self, path: &Path) -> Self {
        if self.path.is_none() {
            self.path = Some(path.to_path_buf());
        }
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The errno behind the failure, if a system call failed.
    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }

    /// The name the failure is about, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// What failed, without the name and the errno.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

/// "uid 0 (root)", or "uid 1234" when the password database has no such user.
pub(crate) fn uid_text(uid: u32) -> String {
    match crate::userdb::user_name(uid) {
        Some(n) => format!("uid {uid} ({n})"),
        None => format!("uid {uid}"),
    }
}

/// "group 0 (root)", or "group 1234" when the group database has no such group.
pub(crate) fn gid_text(gid: u32) -> String {
    match crate::userdb::group_name(gid) {
        Some(n) => format!("group {gid} ({n})"),
        None => format!("group {gid}"),
    }
}

/// Who the caller is, for a permission message: "uid 65534 (nobody), group 65534", with
/// the supplementary groups when there are any: "uid 1000 (al), groups 1000, 27".
pub(crate) fn caller_text() -> String {
    let egid = nix::unistd::getegid().as_raw();
    let mut groups = vec![egid];
    for g in nix::unistd::getgroups().unwrap_or_default() {
        if !groups.contains(&g.as_raw()) {
            groups.push(g.as_raw());
        }
    }
    let list: Vec<String> = groups.iter().map(u32::to_string).collect();
    format!(
        "{}, group{} {}",
        uid_text(nix::unistd::geteuid().as_raw()),
        if list.len() > 1 { "s" } else { "" },
        list.join(", ")
    )
}

/// A permission error that says why: whose `what` is, with what mode, and who we are.
/// `what` reads as the subject of "belongs to": "the semaphore", "its directory".
pub(crate) fn denied(what: &str, uid: u32, gid: u32, mode: u32) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!(
            "permission denied: {what} belongs to {}, {}, mode {:04o}; you are {}",
            uid_text(uid),
            gid_text(gid),
            mode & 0o7777,
            caller_text()
        ),
    )
}

impl Error {
    /// What went wrong and why, without the name it is about (for a report that shows
    /// the name already).
    pub fn reason(&self) -> String {
        match self.errno {
            Some(e) => format!("{}: {}", self.message, e.desc()),
            None => self.message.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            // Debug-quote only names that would otherwise be ambiguous on one line.
            let shown = p.display().to_string();
            if shown.contains(['\n', '\r']) || shown.contains('\u{FFFD}') {
                write!(f, "{p:?}: ")?;
            } else {
                write!(f, "{shown}: ")?;
            }
        }
        f.write_str(&self.message)?;
        if let Some(e) = self.errno {
            write!(f, ": {}", e.desc())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e.kind {
            ErrorKind::WouldBlock => io::ErrorKind::WouldBlock,
            ErrorKind::TimedOut => io::ErrorKind::TimedOut,
            ErrorKind::InvalidInput => io::ErrorKind::InvalidInput,
            ErrorKind::NotFound
            | ErrorKind::Stale
            | ErrorKind::OtherNamespace
            | ErrorKind::Removed => io::ErrorKind::NotFound,
            ErrorKind::PermissionDenied | ErrorKind::NotOwner => io::ErrorKind::PermissionDenied,
            ErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
            ErrorKind::Interrupted => io::ErrorKind::Interrupted,
            ErrorKind::Unsupported => io::ErrorKind::Unsupported,
            ErrorKind::Unreachable => io::ErrorKind::ConnectionRefused,
            ErrorKind::OutOfRange | ErrorKind::LeaseLost | ErrorKind::Other => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// The kind that an unexpected errno from a file or IPC call belongs to.
pub(crate) fn kind_of(errno: Errno) -> ErrorKind {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => ErrorKind::NotFound,
        Errno::EACCES | Errno::EPERM | Errno::EROFS => ErrorKind::PermissionDenied,
        Errno::ENAMETOOLONG => ErrorKind::InvalidInput,
        Errno::EIDRM | Errno::EINVAL => ErrorKind::Stale,
        Errno::ERANGE | Errno::ENOSPC => ErrorKind::OutOfRange,
        Errno::EEXIST => ErrorKind::AlreadyExists,
        _ => ErrorKind::Other,
    }
}
