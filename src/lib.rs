//! # sem: counting semaphores for shell scripts
//!
//! The core of `semctl-helper` and `sh/sem.sh`: named counting semaphores backed by
//! System V semaphore sets, so that waiters sleep in the kernel's queue and wake within
//! microseconds of a post.
//!
//! ## Names and records
//!
//! A semaphore's name is a path ([`Name`]). The regular file at that path, the *record*,
//! holds one line naming the kernel set: its random key, its id, the boot id and the IPC
//! namespace (see `record.rs`). Kernel sets outlive processes but not reboots, and
//! systemd-logind's RemoveIPC deletes a user's sets when their last session ends, so a
//! record can go *stale*; set ids are also reused. A record is therefore trusted only
//! when it is a regular file reached without following a link, parses strictly, comes
//! from this boot and namespace, its key still names its id, and the set's owner is the
//! file's owner. See `docs/DESIGN.md` for why this is safe in shared directories.
//!
//! ## Races
//!
//! * [`init`] publishes a complete record with `link(2)`, which fails if the name exists:
//!   of many concurrent inits exactly one wins, and nobody sees a half-made semaphore.
//!   [`init_or_open`] builds create-on-first-use on it: the losers open the winner's.
//! * Reclaiming a stale name and [`destroy`] lock the record with `flock(2)` and re-check
//!   that the name still refers to the locked file.
//! * Operations never use `SEM_UNDO`: the helper exits right after its operation and an
//!   undo would revert it.
//!
//! ## Example
//!
//! ```no_run
//! use sem::{Name, Semaphore, Timeout};
//! let name = Name::resolve("/tmp/build-slots".as_ref())?;
//! sem::init(&name, 3, 0o600)?;
//! let s = Semaphore::open(&name)?;
//! s.wait(Timeout::Forever)?;
//! s.post()?;
//! sem::destroy(&name)?;
//! # Ok::<(), sem::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod clock;
mod error;
mod inventory;
mod lifecycle;
mod name;
mod namespace;
pub mod parse;
#[allow(dead_code)]
mod posix;
pub mod process;
mod record;
mod semaphore;
pub mod signals;
mod store;
mod sys;
pub mod userdb;

pub use error::{Error, ErrorKind, Result};
pub use inventory::{inspect, list, prune, Entry, Pruned, Pruning, State};
pub use lifecycle::{destroy, init, init_or_open, init_with, InitOptions};
pub use name::Name;
pub use parse::{Timeout, MAX_VALUE};
pub use semaphore::{examine, Examined, Semaphore, Status};

/// Crate-private parsers made reachable for the fuzz targets in `fuzz/` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::record::{Origin, ParseError, Record, MAX_LEN, VERSION};
    pub use crate::sys::{Key, SemId};
}
