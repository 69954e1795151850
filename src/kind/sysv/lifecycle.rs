//! Creating and destroying semaphores: the two operations that change what a name means.
//!
//! `init` is exclusive without a lock: the record appears through `link`, which fails when
//! anything stands at the name, so of N concurrent inits exactly one links. Reclaiming a
//! stale name must replace a file, which `link` can't; there the reclaimer takes the
//! `flock` of the stale file and re-checks under it that the name still refers to that
//! file, so of N concurrent reclaimers exactly one replaces it and the others see a live
//! record on their next look. `destroy` uses the same lock.
//!
//! A record of another IPC namespace of this boot (containers sharing a directory) may name
//! a set that is live there: init refuses it, unless its owner asks to replace it
//! (`force`), and destroy refuses it. Its set is not ours to remove from here; it lives
//! until its namespace ends.

use nix::errno::Errno;

use super::path::PathName;
use super::record::{Origin, Record};
use super::store::{Dir, Found};
use super::{other_namespace, random_u32, verify, Verdict};
use crate::error::{kind_of, Error, ErrorKind, Result};
use crate::kind::InitOptions;
use crate::status::Pruning;
use crate::sys::sysv_sem::{self as sys, Key, SemId};

/// How often init re-examines a name that changed under it before giving up.
const ATTEMPTS: usize = 16;

/// A kernel set we created, removed again on drop unless its record was published.
struct NewSet {
    id: SemId,
    record: Record,
    published: bool,
}

impl NewSet {
    /// Create a set with a fresh random key, set its value and, if asked, its group.
    fn create(value: u16, mode: u32, group: Option<u32>, origin: &Origin) -> Result<NewSet> {
        for _ in 0..64 {
            // Keys are random so that a stale record's key is unlikely ever to be taken
            // again; the non-zero check keeps clear of IPC_PRIVATE.
            let key = Key(random_u32()? as i32);
            let id = match sys::create_set(key, mode) {
                Ok(id) => id,
                Err(Errno::EEXIST) => continue,
                Err(Errno::ENOSPC) => {
                    return Err(Error::sys(
                        ErrorKind::OutOfRange,
                        "kernel limit reached: no more semaphore sets (SEMMNI or SEMMNS in /proc/sys/kernel/sem)",
                        Errno::ENOSPC,
                    ))
                }
                Err(Errno::ENOMEM) => {
                    return Err(Error::sys(ErrorKind::OutOfRange, "the kernel is out of memory for semaphores", Errno::ENOMEM))
                }
                Err(e) => return Err(Error::sys(crate::error::kind_of(e), "cannot create the kernel set", e)),
            };
            let set = NewSet {
                id,
                record: Record {
                    key,
                    id,
                    origin: origin.clone(),
                    capacity: Some(value),
                },
                published: false,
            };
            sys::set_val(id, i32::from(value))
                .map_err(|e| Error::sys(ErrorKind::Other, "cannot set the initial value", e))?;
            if let Some(gid) = group {
                // The kernel lets the owner give the set any group; init_in has checked
                // that the caller may choose this one.
                let mut ds = sys::stat(id)
                    .map_err(|e| Error::sys(ErrorKind::Other, "cannot examine the new set", e))?;
                ds.sem_perm.gid = gid;
                sys::set_perm(id, &ds).map_err(|e| {
                    Error::sys(kind_of(e), "cannot set the group of the new set", e)
                })?;
            }
            return Ok(set);
        }
        Err(Error::new(
            ErrorKind::Other,
            "cannot find a free key for a new kernel set",
        ))
    }
}

impl Drop for NewSet {
    fn drop(&mut self) {
        if !self.published {
            // Best effort: the set is ours and nothing refers to it.
            let _ = sys::remove(self.id);
        }
    }
}

/// The permissions of the name file for a set of `mode`: writable by its owner only, and
/// readable by the classes the set admits, since they need the record to find the set.
fn file_mode(mode: u32) -> u32 {
    let mut m = 0o600;
    if mode & 0o070 != 0 {
        m |= 0o040;
    }
    if mode & 0o007 != 0 {
        m |= 0o004;
    }
    m
}

/// Create the semaphore `name` with `value` and set permissions `mode`.
///
/// A stale record owned by the caller is reclaimed: replaced by the new semaphore. Nothing
/// is left behind on failure: no file and no kernel set.
///
/// # Errors
/// [`ErrorKind::AlreadyExists`] when a live semaphore, a stale record of another user, a
/// record of another IPC namespace, or anything that isn't a record stands at the name;
/// [`ErrorKind::NotFound`] when the parent directory is missing;
/// [`ErrorKind::PermissionDenied`] when it isn't writable; [`ErrorKind::OutOfRange`] at
/// the kernel's limits.
pub fn init(name: &PathName, value: u16, mode: u32) -> Result<()> {
    init_with(
        name,
        value,
        &InitOptions {
            mode,
            ..InitOptions::default()
        },
    )
}

/// [`init`] with options: replace a record of another IPC namespace, choose the group.
///
/// # Errors
/// As for [`init`]; [`ErrorKind::PermissionDenied`] when a caller other than root asks
/// for a group it is not a member of (nothing is created).
pub fn init_with(name: &PathName, value: u16, opts: &InitOptions) -> Result<()> {
    init_in(name, value, opts.mode, opts).map_err(|e| e.at(name.path()))
}

/// Refuse a group the caller may not give away: root may choose any; anyone else only
/// its effective group or one of its supplementary groups (the kernel itself would let a
/// set's owner choose any group at all).
fn check_group(gid: u32) -> Result<()> {
    if nix::unistd::geteuid().is_root() || nix::unistd::getegid().as_raw() == gid {
        return Ok(());
    }
    let groups = nix::unistd::getgroups()
        .map_err(|e| Error::sys(ErrorKind::Other, "cannot read your groups", e))?;
    if groups.iter().any(|g| g.as_raw() == gid) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::PermissionDenied,
        format!("you are not a member of {}", crate::error::gid_text(gid)),
    ))
}

fn init_in(name: &PathName, value: u16, mode: u32, opts: &InitOptions) -> Result<()> {
    if let Some(gid) = opts.group {
        check_group(gid)?;
    }
    let dir = Dir::open(name)?;
    let origin = Origin::current()?;
    let euid = nix::unistd::geteuid().as_raw();
    for _ in 0..ATTEMPTS {
        let stale = match dir.open_record()? {
            Found::Nothing => None,
            Found::NotAFile(what) => return Err(Error::new(ErrorKind::AlreadyExists, what)),
            Found::File(file) => match verify(&file, &origin)? {
                Verdict::Live { .. } => return Err(Error::new(ErrorKind::AlreadyExists, "the semaphore already exists")),
                Verdict::NotARecord(why) => return Err(Error::new(ErrorKind::AlreadyExists, why)),
                Verdict::Stale(_) if file.uid() != euid => {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!("a stale record of uid {} stands at the name; only its owner can reclaim it", file.uid()),
                    ))
                }
                Verdict::OtherNamespace { ipcns, .. } if file.uid() != euid => {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!(
                            "{}; use it from there (only its owner, uid {}, can replace it here)",
                            other_namespace(ipcns, origin.ipcns),
                            file.uid()
                        ),
                    ))
                }
                // A namespace seen alive keeps its set: replacing the record here would
                // leave that set without a name for as long as the namespace lives (for
                // ever, if it is the host's). Only a namespace nobody can be seen in may
                // be replaced, and only deliberately.
                Verdict::OtherNamespace { ipcns, seen: true } => {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!(
                            "{}, where processes still run: use it or destroy it from there",
                            other_namespace(ipcns, origin.ipcns)
                        ),
                    ))
                }
                Verdict::OtherNamespace { ipcns, .. } if !opts.force => {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!(
                            "{}, which can't be seen from here: use it from there, or if it is gone replace it here with sem_init --force (semctl-helper init --force)",
                            other_namespace(ipcns, origin.ipcns)
                        ),
                    ))
                }
                Verdict::Stale(_) | Verdict::OtherNamespace { .. } => Some(file),
            },
        };
        let mut set = NewSet::create(value, mode, opts.group, &origin)?;
        let line = set.record.to_string();
        if let Some(file) = &stale {
            file.lock()?;
            if !dir.still_names(file)? {
                continue; // another init or destroy got there first: look again
            }
            dir.unlink(file)?;
        }
        match dir.publish(line.as_bytes(), file_mode(mode), opts.group) {
            Ok(()) => {
                set.published = true;
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::new(
        ErrorKind::Other,
        "the name keeps changing; try again",
    ))
}

/// Remove the semaphore `name`: its kernel set, which wakes every waiter with an error,
/// and then its record. Only the uid that owns the record may do this. A stale record is
/// simply removed; a file that isn't a record is left alone.
///
/// # Errors
/// [`ErrorKind::NotFound`] when nothing is at the name; [`ErrorKind::NotOwner`] when the
/// caller doesn't own it; [`ErrorKind::Stale`] when the file isn't a record;
/// [`ErrorKind::PermissionDenied`] when the directory isn't writable.
pub fn destroy(name: &PathName) -> Result<()> {
    destroy_in(name).map_err(|e| e.at(name.path()))
}

fn destroy_in(name: &PathName) -> Result<()> {
    let dir = Dir::open(name)?;
    let origin = Origin::current()?;
    let euid = nix::unistd::geteuid().as_raw();
    for _ in 0..ATTEMPTS {
        let file = match dir.open_record()? {
            Found::Nothing => return Err(Error::new(ErrorKind::NotFound, "no such semaphore")),
            Found::NotAFile(what) => return Err(Error::new(ErrorKind::Stale, what)),
            Found::File(f) => f,
        };
        if file.uid() != euid {
            return Err(Error::new(
                ErrorKind::NotOwner,
                format!(
                    "not the owner: the semaphore belongs to {}",
                    crate::userdb::describe_user(file.uid())
                ),
            ));
        }
        file.lock()?;
        if !dir.still_names(&file)? {
            continue;
        }
        let verdict = match verify(&file, &origin) {
            // Our own record names a set we may not read. If it is ours after all (its
            // mode was changed to keep even us out), removing it is what destroy means; if
            // it isn't, the kernel refuses (EPERM) and the record is merely untrusted.
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                let rec = Record::parse(file.bytes()).map_err(|_| e)?;
                dir.check_writable()?;
                match sys::remove(rec.id) {
                    Ok(()) | Err(Errno::EPERM | Errno::EINVAL | Errno::EIDRM) => {}
                    Err(e) => {
                        return Err(Error::sys(
                            crate::error::kind_of(e),
                            "cannot remove the kernel set",
                            e,
                        ))
                    }
                }
                Verdict::Stale(String::new())
            }
            v => v?,
        };
        match verdict {
            Verdict::NotARecord(why) => {
                return Err(Error::new(
                    ErrorKind::Stale,
                    format!("{why}; left in place"),
                ))
            }
            Verdict::Live { id, .. } => {
                dir.check_writable()?;
                match sys::remove(id) {
                    Ok(()) | Err(Errno::EINVAL | Errno::EIDRM) => {}
                    Err(Errno::EPERM) => {
                        return Err(Error::sys(
                            ErrorKind::NotOwner,
                            "cannot remove the kernel set",
                            Errno::EPERM,
                        ))
                    }
                    Err(e) => {
                        return Err(Error::sys(
                            crate::error::kind_of(e),
                            "cannot remove the kernel set",
                            e,
                        ))
                    }
                }
            }
            Verdict::OtherNamespace { ipcns, .. } => {
                return Err(Error::new(
                    ErrorKind::OtherNamespace,
                    format!(
                        "{}; destroy it from there, or if it is gone replace it here with sem_init --force (semctl-helper init --force)",
                        other_namespace(ipcns, origin.ipcns)
                    ),
                ))
            }
            Verdict::Stale(_) => {}
        }
        return dir.unlink(&file);
    }
    Err(Error::new(
        ErrorKind::Other,
        "the name keeps changing; try again",
    ))
}

/// Remove `name` if it is a stale record owned by the caller (one of an IPC namespace
/// that is provably gone included), saying why it was stale; keep, saying why, one of
/// another namespace that we can't tell is gone; leave anything else alone (`Ok(None)`).
/// Uses the same lock as [`destroy`], and re-verifies under it, so a name re-initialised
/// meanwhile is never touched.
///
/// # Errors
/// [`ErrorKind::PermissionDenied`] when the directory isn't writable; lock and system
/// errors.
pub(crate) fn prune_one(name: &PathName) -> Result<Option<Pruning>> {
    let dir = Dir::open(name)?;
    let origin = Origin::current()?;
    let euid = nix::unistd::geteuid().as_raw();
    let file = match dir.open_record() {
        Ok(Found::File(f)) if f.uid() == euid => f,
        Ok(_) | Err(_) => return Ok(None),
    };
    file.lock()?;
    if !dir.still_names(&file)? {
        return Ok(None);
    }
    match verify(&file, &origin)? {
        Verdict::Stale(why) => {
            dir.check_writable()?;
            dir.unlink(&file)?;
            Ok(Some(Pruning::Removed(why)))
        }
        Verdict::OtherNamespace { ipcns, seen: false } => Ok(Some(Pruning::Kept(format!(
            "its IPC namespace ipc:[{ipcns}] may still be in use (no process is seen in it, \
             but not every process's namespace can be read from here); if it is gone, \
             `sem_init --force {} VALUE` replaces the record",
            name.path().display()
        )))),
        Verdict::Live { .. } | Verdict::OtherNamespace { .. } | Verdict::NotARecord(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::file_mode;

    #[test]
    fn file_modes_follow_the_set_mode() {
        assert_eq!(file_mode(0o600), 0o600);
        assert_eq!(file_mode(0o660), 0o640);
        assert_eq!(file_mode(0o620), 0o640);
        assert_eq!(file_mode(0o666), 0o644);
        assert_eq!(file_mode(0o606), 0o604);
    }
}
