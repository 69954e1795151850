//! Many names at once: the state of one name whether live or stale, and the records in a
//! directory (`list`), with the removal of the caller's stale ones (`prune`).

use std::path::Path;

use super::lifecycle::prune_one;
use super::path::PathName;
use super::record::Origin;
use super::{examine, Examined};
use crate::error::{Error, Result};
use crate::name::Name;
use crate::status::{Detail, Entry, Pruned, State};

/// The state of `name`, live or stale.
///
/// # Errors
/// [`crate::ErrorKind::NotFound`] when nothing is at the name; [`crate::ErrorKind::Stale`]
/// when what is there isn't a record; [`crate::ErrorKind::PermissionDenied`] when the file
/// can't be read; [`crate::ErrorKind::Removed`] when the set vanished while being read.
pub fn inspect(name: &PathName) -> Result<Entry> {
    let (key, id, owner, ipcns, state) = match examine(name)? {
        Examined::Live(sem) => {
            let ipcns = Origin::current()?.ipcns;
            let state = State::Live(sem.snapshot()?);
            (sem.key(), sem.id(), sem.owner(), ipcns, state)
        }
        Examined::Stale {
            key,
            id,
            owner,
            ipcns,
            reason,
        } => (key, id, owner, ipcns, State::Stale(reason)),
        Examined::NoAccess {
            key,
            id,
            owner,
            ipcns,
            reason,
        } => (key, id, owner, ipcns, State::NoAccess(reason)),
        Examined::OtherNamespace {
            key,
            id,
            owner,
            ipcns,
            reason,
        } => (key, id, owner, ipcns, State::OtherNamespace(reason)),
    };
    Ok(Entry {
        name: Name::Path(name.clone()),
        owner,
        state,
        detail: Detail::SysV {
            key,
            id,
            zero_waiters: None,
            ipcns,
        },
    })
}

/// The names of the entries of `dir` (not recursive), sorted.
fn names_in(dir: &Path) -> Result<Vec<PathName>> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
        Error::sys(
            crate::error::kind_of(errno),
            "cannot read the directory",
            errno,
        )
        .at(dir)
    })?;
    let mut names = Vec::new();
    for ent in rd {
        // An entry that vanished while we read the directory is no longer of interest.
        let Ok(ent) = ent else { continue };
        if let Ok(name) = PathName::resolve(dir.join(ent.file_name()).as_os_str()) {
            names.push(name);
        }
    }
    names.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(names)
}

/// The semaphore records directly in `dir`, live or stale, sorted by name. Files that are
/// not records, links, records in another format, and files the caller can't read are
/// skipped; a record whose set the caller may not read is listed as [`State::NoAccess`].
///
/// # Errors
/// When `dir` can't be read.
pub fn list(dir: &Path) -> Result<Vec<Entry>> {
    // A name that isn't a record, or vanished, or can't be read, is simply not listed.
    Ok(names_in(dir)?
        .iter()
        .filter_map(|name| inspect(name).ok())
        .collect())
}

/// Remove the stale records in `dir` (not recursive) that the caller owns, including those
/// of an IPC namespace that provably no longer exists (no process is in it). Live records,
/// other users' records and files that are not records are left alone; a record of
/// another namespace that may still exist is kept, and reported as [`crate::status::Pruning::Kept`] when
/// the caller can't see every process to tell (see `namespace.rs`).
///
/// # Errors
/// When `dir` can't be read; failures on single names are reported in [`Pruned`].
pub fn prune(dir: &Path) -> Result<Vec<Pruned>> {
    let mut out = Vec::new();
    for name in names_in(dir)? {
        match prune_one(&name) {
            Ok(None) => {}
            Ok(Some(done)) => out.push(Pruned {
                name: Name::Path(name),
                outcome: Ok(done),
            }),
            Err(e) => out.push(Pruned {
                outcome: Err(e.at(name.path())),
                name: Name::Path(name),
            }),
        }
    }
    Ok(out)
}
