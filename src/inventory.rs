//! Many names at once: the state of one name whether live or stale, and the records in a
//! directory (`list`), with the removal of the caller's stale ones (`prune`).

use std::path::Path;

use crate::error::{Error, Result};
use crate::lifecycle::prune_one;
use crate::name::Name;
use crate::record::Origin;
use crate::semaphore::{examine, Examined, Status};

/// What a record's name stands for now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// A live semaphore, and its kernel state.
    Live(Status),
    /// A stale or untrusted record; the text says why.
    Stale(String),
    /// A live-looking record whose set's mode keeps the caller out; the text says whose
    /// it is and who the caller is.
    NoAccess(String),
    /// A record of this boot from another IPC namespace, whose set may be live there; the
    /// text names both namespaces.
    OtherNamespace(String),
}

/// One record and its state.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name.
    pub name: Name,
    /// The recorded key.
    pub key: i32,
    /// The recorded set id.
    pub id: i32,
    /// The record file's owner.
    pub owner: u32,
    /// The IPC namespace the record was made in (the inode of its `/proc/PID/ns/ipc`).
    pub ipcns: u64,
    /// Live, stale, out of reach, or in another IPC namespace.
    pub state: State,
}

/// The state of `name`, live or stale.
///
/// # Errors
/// [`crate::ErrorKind::NotFound`] when nothing is at the name; [`crate::ErrorKind::Stale`]
/// when what is there isn't a record; [`crate::ErrorKind::PermissionDenied`] when the file
/// can't be read; [`crate::ErrorKind::Removed`] when the set vanished while being read.
pub fn inspect(name: &Name) -> Result<Entry> {
    let (key, id, owner, ipcns, state) = match examine(name)? {
        Examined::Live(sem) => {
            let ipcns = Origin::current()?.ipcns;
            let state = State::Live(sem.status()?);
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
        name: name.clone(),
        key,
        id,
        owner,
        ipcns,
        state,
    })
}

/// The names of the entries of `dir` (not recursive), sorted.
fn names_in(dir: &Path) -> Result<Vec<Name>> {
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
        if let Ok(name) = Name::resolve(dir.join(ent.file_name()).as_os_str()) {
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

/// What [`prune`] did with one of the caller's records that it could not call live.
#[derive(Debug)]
pub enum Pruning {
    /// Removed; the text says why it was stale.
    Removed(String),
    /// Kept: its IPC namespace may still exist, but we can't tell; the text says so.
    Kept(String),
}

/// One outcome of [`prune`].
#[derive(Debug)]
pub struct Pruned {
    /// The name.
    pub name: Name,
    /// What was done, or why the record could not be removed.
    pub outcome: Result<Pruning>,
}

/// Remove the stale records in `dir` (not recursive) that the caller owns, including those
/// of an IPC namespace that provably no longer exists (no process is in it). Live records,
/// other users' records and files that are not records are left alone; a record of
/// another namespace that may still exist is kept, and reported as [`Pruning::Kept`] when
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
                name,
                outcome: Ok(done),
            }),
            Err(e) => out.push(Pruned {
                name: name.clone(),
                outcome: Err(e.at(name.path())),
            }),
        }
    }
    Ok(out)
}
