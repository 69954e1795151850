//! # sem: counting semaphores for shell scripts
//!
//! The library behind `semctl-helper` and `sh/sem.sh`: named counting semaphores of
//! several kinds behind one interface, for any front end to embed. It holds the
//! semaphore logic and nothing of a process's policy: it installs no signal handler,
//! never exits or prints, and doesn't assume `panic=abort`. A blocking wait ends when the
//! caller's [`Cancel`] says so.
//!
//! ## Kinds, chosen by the name
//!
//! * A path ([`Name::Path`]) is a System V semaphore set (`kind::sysv`): the default,
//!   which needs nothing but the kernel. The regular file at the path, the *record*,
//!   holds one line naming the kernel set (its random key, its id, the boot id and the
//!   IPC namespace), trusted only when it checks out against the kernel. Waiters sleep
//!   in the kernel's queue; `SEM_UNDO` gives a holder's count back when it dies.
//! * `posix:/NAME` ([`Name::Posix`]) is a POSIX named semaphore (`kind::posix`), glibc's
//!   `/dev/shm/sem.NAME`, shared with C, Python, Node, Go and Julia programs.
//!
//! Each kind says what it can do ([`Capabilities`]); what it can't do fails with
//! [`ErrorKind::Unsupported`]. See `docs/DESIGN.md` for why each is safe in shared
//! directories.
//!
//! ## Example
//!
//! ```no_run
//! use sem::{Cancel, Name, Timeout};
//! let name = Name::parse("/tmp/build-slots".as_ref())?;
//! sem::init(&name, 3, &sem::InitOptions::default())?;
//! let s = sem::open(&name)?;
//! s.take(1, Timeout::Forever, &Cancel::new())?;
//! s.post(1)?;
//! sem::destroy(&name)?;
//! # Ok::<(), sem::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod cancel;
mod error;
pub mod kind;
mod name;
pub mod parse;
mod status;
mod sys;
pub mod userdb;

pub use cancel::{Cancel, PROBE_SLICE};
pub use error::{Error, ErrorKind, Result};
pub use kind::{
    init_or_open, lease_from_env, Capabilities, InitOptions, Kind, Lease, Semaphore, LEASE_ENV,
};
pub use name::{Name, Place};
pub use parse::{Timeout, MAX_VALUE};
pub use status::{Detail, Entry, Holder, Pruned, Pruning, State, Status};

/// Open the semaphore `name`, of whatever kind, verified.
///
/// # Errors
/// See [`Kind::open`].
pub fn open(name: &Name) -> Result<Box<dyn Semaphore>> {
    name.kind().open(name)
}

/// Create the semaphore `name` with `value`, exclusively.
///
/// # Errors
/// See [`Kind::init`].
pub fn init(name: &Name, value: u32, opts: &InitOptions) -> Result<()> {
    name.kind().init(name, value, opts)
}

/// Remove the semaphore `name` (its owner only).
///
/// # Errors
/// See [`Kind::destroy`].
pub fn destroy(name: &Name) -> Result<()> {
    name.kind().destroy(name)
}

/// What `name` stands for now, live or not.
///
/// # Errors
/// See [`Kind::inspect`].
pub fn inspect(name: &Name) -> Result<Entry> {
    name.kind().inspect(name)
}

/// The semaphores in `place`.
///
/// # Errors
/// See [`Kind::list`].
pub fn list(place: &Place) -> Result<Vec<Entry>> {
    place.kind().list(place.path())
}

/// Remove the caller's stale names in `place`.
///
/// # Errors
/// See [`Kind::prune`].
pub fn prune(place: &Place) -> Result<Vec<Pruned>> {
    place.kind().prune(place.path())
}

/// Crate-private parsers made reachable for the fuzz targets in `fuzz/` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::kind::sysv::record::{Origin, ParseError, Record, MAX_LEN, VERSION};
    pub use crate::sys::sysv_sem::{Key, SemId};
}
