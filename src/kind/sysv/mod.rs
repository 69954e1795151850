//! System V semaphores, named by paths: the default kind, which needs nothing but the
//! kernel. A name's file (its *record*, `record.rs`, kept by `store.rs`) says which kernel
//! set it stands for; `lifecycle.rs` creates and destroys them, `inventory.rs` lists and
//! prunes a directory's, `namespace.rs` tells whether another IPC namespace still exists.
//!
//! An open, verified semaphore and its operations.
//!
//! Opening a name checks, in this order, that the record is a regular file reached without
//! following a link, that it parses strictly, that it comes from this boot and IPC
//! namespace, that its random key still names the recorded set id, and that the set's
//! owner is the file's owner and the set holds one semaphore. Only then is the id used.
//!
//! A record from this boot but another IPC namespace (containers sharing a directory) is
//! stale only once that namespace is provably gone; until then it is the live semaphore of
//! the other namespace, which is neither used nor replaced from here.

pub mod cache;
pub mod inventory;
pub mod lifecycle;
mod namespace;
pub mod path;
pub mod record;
mod store;

use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::cancel::Cancel;
use crate::kind::{Capabilities, InitOptions, Kind};
use crate::name::Name;
use crate::status::{Detail, Entry, Pruned, Status};

use crate::error::{Error, ErrorKind, Result};
use crate::parse::Timeout;
use crate::sys::sysv_sem::{self as sys, Key, SemId};
use namespace::{ipc_presence, Presence};
use path::PathName;
use record::{Origin, ParseError, Record};
use store::{Dir, Found, RecordFile};

/// An infinite wait sleeps in slices this long, so that the kernel always has a timeout
/// that a cancel can zero (see `sys::WaitSlot`). A slice ending is invisible.
const FOREVER_SLICE: Duration = Duration::from_secs(24 * 60 * 60);

/// A semaphore whose record was verified against its kernel set.
#[derive(Debug)]
pub struct Semaphore {
    name: PathName,
    key: Key,
    id: SemId,
    owner: u32,
    capacity: Option<u16>,
}

/// What a record file turned out to be.
pub(crate) enum Verdict {
    /// A record whose set is alive and owned by the file's owner.
    Live { key: Key, id: SemId },
    /// A well-formed record whose set is gone, replaced, or not the file owner's.
    Stale(String),
    /// A record of this boot from another IPC namespace that may still exist: its set may
    /// be live there. `seen` says a task in that namespace was found (else we could not
    /// tell, see [`Presence::Unknown`]).
    OtherNamespace { ipcns: u64, seen: bool },
    /// Not a record we can read: garbage, or another format version.
    NotARecord(String),
}

/// Check a record file against the kernel, as described in the module docs.
pub(crate) fn verify(file: &RecordFile, origin: &Origin) -> Result<Verdict> {
    let rec = match Record::parse(file.bytes()) {
        Ok(rec) => rec,
        Err(ParseError::OtherVersion(v)) => {
            return Ok(Verdict::NotARecord(format!(
                "the record has format version {v}, which this version of sem does not read"
            )))
        }
        Err(ParseError::Malformed) => {
            return Ok(Verdict::NotARecord(
                "the file at the name is not a semaphore record".into(),
            ))
        }
    };
    if rec.origin.boot != origin.boot {
        return Ok(Verdict::Stale(
            "stale: the record is from an earlier boot".into(),
        ));
    }
    if rec.origin.ipcns != origin.ipcns {
        // Its set dies with its namespace, and not before.
        let ipcns = rec.origin.ipcns;
        return Ok(match ipc_presence(ipcns) {
            Presence::Gone => Verdict::Stale(format!(
                "stale: the record is from IPC namespace ipc:[{ipcns}], which is gone"
            )),
            p => Verdict::OtherNamespace {
                ipcns,
                seen: p == Presence::InUse,
            },
        });
    }
    let gone = || {
        Ok(Verdict::Stale(
            "stale: its kernel set is gone (ipcrm, RemoveIPC or reboot)".into(),
        ))
    };
    match sys::lookup_set(rec.key) {
        Ok(id) if id == rec.id => {}
        Ok(_) => return gone(),
        Err(Errno::ENOENT) => return gone(),
        Err(e) => {
            return Err(Error::sys(
                crate::error::kind_of(e),
                "cannot look up the kernel set",
                e,
            ))
        }
    }
    let ds = match sys::stat(rec.id) {
        Ok(ds) => ds,
        Err(Errno::EINVAL | Errno::EIDRM) => return gone(),
        Err(Errno::EACCES) => return Err(set_denied(rec.id)),
        Err(e) => {
            return Err(Error::sys(
                crate::error::kind_of(e),
                "cannot examine the kernel set",
                e,
            ))
        }
    };
    if ds.sem_perm.uid != file.uid() {
        return Ok(Verdict::Stale(format!(
            "untrusted record: the file's owner (uid {}) does not own the set it names (uid {})",
            file.uid(),
            ds.sem_perm.uid
        )));
    }
    if ds.sem_nsems != 1 {
        return Ok(Verdict::Stale(
            "untrusted record: the set it names is not a sem semaphore".into(),
        ));
    }
    Ok(Verdict::Live {
        key: rec.key,
        id: rec.id,
    })
}

/// The permission error for a set whose mode keeps us out, saying whose it is. IPC_STAT
/// needs read permission, so without it the owner, group and mode come from
/// /proc/sysvipc/sem, which everyone may read.
pub(crate) fn set_denied(id: SemId) -> Error {
    let perm = match sys::stat(id) {
        Ok(ds) => Some((
            ds.sem_perm.uid,
            ds.sem_perm.gid,
            u32::from(ds.sem_perm.mode),
        )),
        Err(_) => proc_sysvipc_perm(id),
    };
    match perm {
        Some((uid, gid, mode)) => crate::error::denied("the semaphore", uid, gid, mode & 0o777),
        None => Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "permission denied: the semaphore's mode does not admit you ({})",
                crate::error::caller_text()
            ),
        ),
    }
}

/// The owner, group and mode of set `id` from /proc/sysvipc/sem, whose columns are
/// `key semid perms nsems uid gid ...` (perms in octal).
fn proc_sysvipc_perm(id: SemId) -> Option<(u32, u32, u32)> {
    let table = std::fs::read_to_string("/proc/sysvipc/sem").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[1].parse::<i32>().ok()? != id.0 {
            return None;
        }
        let mode = u32::from_str_radix(f[2], 8).ok()?;
        Some((f[4].parse().ok()?, f[5].parse().ok()?, mode))
    })
}

/// The one line that says a record belongs to another IPC namespace, naming both.
pub(crate) fn other_namespace(theirs: u64, ours: u64) -> String {
    format!(
        "the semaphore lives in another IPC namespace (ipc:[{theirs}]; this process is in ipc:[{ours}])"
    )
}

/// What [`examine`] found at a name that holds a record.
#[derive(Debug)]
pub enum Examined {
    /// A verified, live semaphore.
    Live(Semaphore),
    /// A well-formed record that can't be trusted: its set is gone, replaced, or not the
    /// file owner's.
    Stale {
        /// The recorded key.
        key: i32,
        /// The recorded set id.
        id: i32,
        /// The record file's owner.
        owner: u32,
        /// The recorded IPC namespace (the inode of its `/proc/PID/ns/ipc`).
        ipcns: u64,
        /// Why the record is stale, for people.
        reason: String,
    },
    /// A record whose set's mode does not admit the caller, so it can't be verified.
    NoAccess {
        /// The recorded key.
        key: i32,
        /// The recorded set id.
        id: i32,
        /// The record file's owner.
        owner: u32,
        /// The recorded IPC namespace.
        ipcns: u64,
        /// Why, for people: whose it is and who the caller is.
        reason: String,
    },
    /// A record of this boot from another IPC namespace, whose set may be live there.
    OtherNamespace {
        /// The recorded key.
        key: i32,
        /// The recorded set id.
        id: i32,
        /// The record file's owner.
        owner: u32,
        /// The recorded IPC namespace.
        ipcns: u64,
        /// What that means, for people: both namespaces.
        reason: String,
    },
}

/// Look at `name`: a live semaphore, or a stale record, one out of reach, or one of
/// another IPC namespace (which [`Semaphore::open`] refuses).
///
/// # Errors
/// [`ErrorKind::NotFound`] when nothing is at the name; [`ErrorKind::Stale`] when what is
/// there is not a record at all; [`ErrorKind::PermissionDenied`] when the file or the set's
/// mode keeps us out.
pub fn examine(name: &PathName) -> Result<Examined> {
    let dir = Dir::open(name)?;
    let file = match dir.open_record()? {
        Found::Nothing => {
            return Err(Error::new(ErrorKind::NotFound, "no such semaphore").at(name.path()))
        }
        Found::NotAFile(what) => return Err(Error::new(ErrorKind::Stale, what).at(name.path())),
        Found::File(f) => f,
    };
    let origin = Origin::current()?;
    // verify() parses the record first, so wherever it reached a verdict this parse works.
    let recorded = || {
        Record::parse(file.bytes())
            .map(|r| (r.key.0, r.id.0, r.origin.ipcns))
            .unwrap_or((0, -1, 0))
    };
    // The capacity is not part of what makes a record trustworthy: read it on its own.
    let capacity = Record::parse(file.bytes()).ok().and_then(|r| r.capacity);
    let verdict = match verify(&file, &origin) {
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            let (key, id, ipcns) = recorded();
            return Ok(Examined::NoAccess {
                key,
                id,
                owner: file.uid(),
                ipcns,
                reason: e.message().to_owned(),
            });
        }
        v => v.map_err(|e| e.at(name.path()))?,
    };
    match verdict {
        Verdict::Live { key, id } => Ok(Examined::Live(Semaphore {
            name: name.clone(),
            key,
            id,
            owner: file.uid(),
            capacity,
        })),
        Verdict::Stale(reason) => {
            let (key, id, ipcns) = recorded();
            Ok(Examined::Stale {
                key,
                id,
                owner: file.uid(),
                ipcns,
                reason,
            })
        }
        Verdict::OtherNamespace { ipcns, .. } => {
            let (key, id, _) = recorded();
            Ok(Examined::OtherNamespace {
                key,
                id,
                owner: file.uid(),
                ipcns,
                reason: other_namespace(ipcns, origin.ipcns),
            })
        }
        Verdict::NotARecord(why) => Err(Error::new(ErrorKind::Stale, why).at(name.path())),
    }
}

impl Semaphore {
    /// Open the semaphore named `name`, verifying its record.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when nothing is at the name (or its directory is missing);
    /// [`ErrorKind::Stale`] when the record is stale, untrusted, or not a record at all;
    /// [`ErrorKind::OtherNamespace`] when it belongs to another IPC namespace;
    /// [`ErrorKind::PermissionDenied`] when the file or the set's mode keeps us out.
    pub fn open(name: &PathName) -> Result<Semaphore> {
        match examine(name)? {
            Examined::Live(sem) => Ok(sem),
            Examined::Stale { reason, .. } => {
                Err(Error::new(ErrorKind::Stale, reason).at(name.path()))
            }
            Examined::OtherNamespace { reason, .. } => {
                Err(Error::new(ErrorKind::OtherNamespace, reason).at(name.path()))
            }
            Examined::NoAccess { reason, .. } => {
                Err(Error::new(ErrorKind::PermissionDenied, reason).at(name.path()))
            }
        }
    }

    /// The resolved name.
    pub fn name(&self) -> &PathName {
        &self.name
    }

    /// The set's key.
    pub fn key(&self) -> i32 {
        self.key.0
    }

    /// The set's id.
    pub fn id(&self) -> i32 {
        self.id.0
    }

    /// The uid that owns the record and the set.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// The value the semaphore was created with, its capacity, as its record says; `None`
    /// for a record written before sem recorded it. Posts may raise the value above it.
    pub fn capacity(&self) -> Option<u16> {
        self.capacity
    }

    fn op_error(&self, e: Errno) -> Error {
        let (kind, what) = match e {
            Errno::EIDRM | Errno::EINVAL => (ErrorKind::Removed, "the semaphore was destroyed"),
            Errno::EACCES => return set_denied(self.id).at(self.name.path()),
            Errno::ERANGE => {
                return Error::new(
                    ErrorKind::OutOfRange,
                    "the value would pass its maximum, 32767 (nothing was added)",
                )
                .at(self.name.path())
            }
            Errno::EAGAIN => {
                return Error::new(ErrorKind::WouldBlock, "would block: the value is 0")
                    .at(self.name.path())
            }
            _ => (ErrorKind::Other, "the operation failed"),
        };
        Error::sys(kind, what, e).at(self.name.path())
    }

    /// Add one to the value, waking the longest-waiting process that can proceed
    /// (semop(2)). Never uses `SEM_UNDO`: the count must outlive this process.
    ///
    /// # Errors
    /// [`ErrorKind::OutOfRange`] at 32767 (the value is unchanged);
    /// [`ErrorKind::Removed`], [`ErrorKind::PermissionDenied`].
    pub fn post(&self) -> Result<()> {
        sys::semop(self.id, 1, 0).map_err(|e| self.op_error(e))
    }

    /// Take one count if one is available now, without blocking.
    ///
    /// # Errors
    /// [`ErrorKind::WouldBlock`] when the value is 0; [`ErrorKind::Removed`],
    /// [`ErrorKind::PermissionDenied`].
    pub fn try_wait(&self) -> Result<()> {
        sys::semop(self.id, -1, libc::IPC_NOWAIT as libc::c_short).map_err(|e| self.op_error(e))
    }

    /// Add `n` (1..=32767) to the value at once, in one semop(2), waking up to `n` waiters.
    ///
    /// # Errors
    /// [`ErrorKind::OutOfRange`] when the sum would pass 32767 (the value is unchanged);
    /// [`ErrorKind::Removed`], [`ErrorKind::PermissionDenied`].
    pub fn post_n(&self, n: u16) -> Result<()> {
        let delta = i16::try_from(n).map_err(|_| {
            Error::new(ErrorKind::OutOfRange, "a post adds at most 32767").at(self.name.path())
        })?;
        sys::semop(self.id, delta, 0).map_err(|e| self.op_error(e))
    }

    /// Release every process blocked on the semaphore now, as if posted once for each
    /// (msem's "relax"): the value rises by the number of waiters counted (`GETNCNT`), so
    /// nothing is left over for later waiters. Returns how many were released.
    ///
    /// A waiter that times out between the count and the post leaves its count behind,
    /// exactly as if it had timed out just after an ordinary post.
    ///
    /// # Errors
    /// [`ErrorKind::Removed`], [`ErrorKind::PermissionDenied`], [`ErrorKind::OutOfRange`].
    pub fn relax(&self) -> Result<u32> {
        let n = self.waiters()?;
        if n == 0 {
            return Ok(0);
        }
        // Waiters exist only while the value is 0, and at most 32767 can be released at once.
        let n = n.min(u32::from(crate::parse::MAX_VALUE));
        self.post_n(n as u16)?;
        Ok(n)
    }

    /// Take `n` counts (1..=32767) in one step, sleeping in the kernel's queue
    /// (semtimedop(2)) for at most `timeout`: the kernel takes all of them at once or
    /// none, so the waiter sleeps until the value is at least `n`. `EINTR` (a
    /// SIGSTOP/SIGCONT, a handled signal) is retried against a monotonic deadline, so the
    /// total wait is neither lengthened nor shortened. With `undo`, the counts are taken
    /// with `SEM_UNDO`: the kernel gives them back when this process ends, however it ends,
    /// even by SIGKILL; the adjustment survives execve(2) and is not inherited by fork(2),
    /// so a process that holds a count and then execs a program ties the count to that
    /// program's life. A take that can never succeed fails at once rather than wait for
    /// ever: when the capacity is known and `n` is above both it and the value now. (A
    /// semaphore created with 0 is a gate that only posts fill: no take on it is refused.)
    ///
    /// # Errors
    /// [`ErrorKind::TimedOut`] (or [`ErrorKind::WouldBlock`] for [`Timeout::Never`]);
    /// [`ErrorKind::Interrupted`] when `cancel` ended the wait, taking nothing;
    /// [`ErrorKind::Removed`] when the semaphore was destroyed meanwhile;
    /// [`ErrorKind::OutOfRange`] for an impossible take, or an `n` above 32767;
    /// [`ErrorKind::InvalidInput`] for an `n` of 0.
    pub fn take(&self, n: u16, timeout: Timeout, undo: bool, cancel: &Cancel) -> Result<()> {
        self.check_possible(n)?;
        let deadline = match timeout {
            Timeout::Never => {
                let mut flags = libc::IPC_NOWAIT as libc::c_short;
                if undo {
                    flags |= libc::SEM_UNDO as libc::c_short;
                }
                // check_possible keeps n within 1..=32767.
                let delta = -(n as i16);
                return match sys::semop(self.id, delta, flags) {
                    Err(Errno::EAGAIN) if n > 1 => Err(Error::new(
                        ErrorKind::WouldBlock,
                        format!("would block: the value is below {n}"),
                    )
                    .at(self.name.path())),
                    r => r.map_err(|e| self.op_error(e)),
                };
            }
            Timeout::Forever => None,
            Timeout::After(d) => Some(Instant::now() + d),
        };
        let interrupted = || Error::new(ErrorKind::Interrupted, "interrupted").at(self.name.path());
        loop {
            let left = match deadline {
                None => FOREVER_SLICE,
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            let Ok(slot) = cancel.arm(left) else {
                return Err(interrupted());
            };
            match sys::take_within(self.id, n, slot, undo) {
                Ok(()) => return Ok(()),
                Err(Errno::EINTR | Errno::EAGAIN) if cancel.reason().is_some() => {
                    return Err(interrupted())
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => match deadline {
                    Some(d) if Instant::now() >= d => {
                        return Err(
                            Error::new(ErrorKind::TimedOut, "timed out").at(self.name.path())
                        )
                    }
                    _ => continue,
                },
                Err(Errno::EIDRM | Errno::EINVAL) => {
                    return Err(Error::new(
                        ErrorKind::Removed,
                        "the semaphore was destroyed while waiting",
                    )
                    .at(self.name.path()))
                }
                Err(e) => return Err(self.op_error(e)),
            }
        }
    }

    /// Refuse a take of `n` that can never succeed: more than the semaphore was created
    /// with and more than it holds now. Posts could still raise the value that far, but a
    /// slot semaphore's value comes back to its capacity, not above, and a waiter that
    /// waited for ever would be the worse surprise.
    fn check_possible(&self, n: u16) -> Result<()> {
        if n == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a take is of 1 to {} counts, not 0",
                    crate::parse::MAX_VALUE
                ),
            )
            .at(self.name.path()));
        }
        if n > crate::parse::MAX_VALUE {
            return Err(Error::new(
                ErrorKind::OutOfRange,
                format!(
                    "asks for {n} counts, but a semaphore holds at most {}",
                    crate::parse::MAX_VALUE
                ),
            )
            .at(self.name.path()));
        }
        match self.capacity {
            // Capacity 0 is a gate, filled only by posts: nothing is impossible on it.
            Some(cap) if cap > 0 && n > cap && self.below(n)? => Err(Error::new(
                ErrorKind::OutOfRange,
                format!(
                    "asks for {n} counts, but the semaphore holds at most {cap} (its initial value)"
                ),
            )
            .at(self.name.path())),
            _ => Ok(()),
        }
    }

    /// Whether the value is below `n` now. A mode that lets us take but not read (0620 for
    /// the group) counts as below: the value can't be seen to make the take possible.
    fn below(&self, n: u16) -> Result<bool> {
        match self.value() {
            Ok(v) => Ok(v < n),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The current value (`GETVAL`).
    ///
    /// # Errors
    /// [`ErrorKind::Removed`], [`ErrorKind::PermissionDenied`].
    pub fn value(&self) -> Result<u16> {
        let v = sys::get_val(self.id).map_err(|e| self.op_error(e))?;
        // The kernel keeps values within 0..=SEMVMX.
        Ok(u16::try_from(v).unwrap_or(u16::MAX))
    }

    /// How many processes are blocked decrementing (`GETNCNT`).
    ///
    /// # Errors
    /// [`ErrorKind::Removed`], [`ErrorKind::PermissionDenied`].
    pub fn waiters(&self) -> Result<u32> {
        let n = sys::get_ncnt(self.id).map_err(|e| self.op_error(e))?;
        Ok(u32::try_from(n).unwrap_or(0))
    }
}

impl Semaphore {
    /// The kernel's view of the semaphore (`IPC_STAT`, `GETVAL`, `GETNCNT`, `GETZCNT`,
    /// `GETPID`), read in that order; it may change while it is read.
    ///
    /// # Errors
    /// [`ErrorKind::Removed`], [`ErrorKind::PermissionDenied`].
    pub fn snapshot(&self) -> Result<Status> {
        let ds = sys::stat(self.id).map_err(|e| self.op_error(e))?;
        let value = self.value()?;
        let waiters = self.waiters()?;
        let zero_waiters = sys::get_zcnt(self.id).map_err(|e| self.op_error(e))?;
        let pid = sys::get_pid(self.id).map_err(|e| self.op_error(e))?;
        // sem_otime stays 0 until the first semop; SETVAL at init sets the pid but is
        // not an operation, so both are reported only once an operation happened.
        let last_op = (ds.sem_otime != 0).then_some(ds.sem_otime);
        Ok(Status {
            value: u32::from(value),
            capacity: self.capacity.map(u32::from),
            waiters: Some(waiters),
            last_pid: last_op.and((pid > 0).then_some(pid)),
            last_op,
            changed: Some(ds.sem_ctime),
            owner: ds.sem_perm.uid,
            group: ds.sem_perm.gid,
            mode: u32::from(ds.sem_perm.mode) & 0o777,
            detail: Detail::SysV {
                key: self.key.0,
                id: self.id.0,
                zero_waiters: Some(u32::try_from(zero_waiters).unwrap_or(0)),
                ipcns: Origin::current()?.ipcns,
            },
        })
    }
}

/// System V names: paths, whose file records which kernel set they stand for.
pub struct SysV;

/// What System V semaphores can do: everything, by the kernel's own atomic operations.
const CAPABILITIES: Capabilities = Capabilities {
    atomic_post_n: true,
    take_n: true,
    waiters: true,
    relax: true,
    undo: true,
    lease: false,
    last_op: true,
    max_value: crate::parse::MAX_VALUE as u32,
};

/// A value or count within a System V semaphore's 1..=32767 (0 for values).
fn small(n: u32, what: &str) -> Result<u16> {
    u16::try_from(n)
        .ok()
        .filter(|&v| v <= crate::parse::MAX_VALUE)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::OutOfRange,
                format!(
                    "{what} {n} is out of range: a System V semaphore holds at most {}",
                    crate::parse::MAX_VALUE
                ),
            )
        })
}

fn path_of(name: &Name) -> &PathName {
    match name {
        Name::Path(p) => p,
        // The name parser sends only paths to this kind.
        _ => unreachable!("a System V name is a path"),
    }
}

impl Kind for SysV {
    fn label(&self) -> &'static str {
        "sysv"
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn open(&self, name: &Name) -> Result<Box<dyn crate::Semaphore>> {
        Ok(Box::new(Semaphore::open(path_of(name))?))
    }

    fn init(&self, name: &Name, value: u32, opts: &InitOptions) -> Result<()> {
        let value = small(value, "value").map_err(|e| e.at(name.label()))?;
        lifecycle::init_with(path_of(name), value, opts)
    }

    fn destroy(&self, name: &Name) -> Result<()> {
        lifecycle::destroy(path_of(name))
    }

    fn inspect(&self, name: &Name) -> Result<Entry> {
        inventory::inspect(path_of(name))
    }

    fn list(&self, place: &Path) -> Result<Vec<Entry>> {
        inventory::list(place)
    }

    fn prune(&self, place: &Path) -> Result<Vec<Pruned>> {
        inventory::prune(place)
    }
}

impl crate::Semaphore for Semaphore {
    fn name(&self) -> Name {
        Name::Path(self.name.clone())
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn post(&self, n: u32) -> Result<()> {
        let n = small(n, "count").map_err(|e| e.at(self.name.path()))?;
        self.post_n(n)
    }

    fn try_take(&self, n: u32) -> Result<()> {
        let n = small(n, "count").map_err(|e| e.at(self.name.path()))?;
        self.take(n, Timeout::Never, false, &Cancel::new())
    }

    fn take(&self, n: u32, timeout: Timeout, cancel: &Cancel) -> Result<()> {
        let n = small(n, "count").map_err(|e| e.at(self.name.path()))?;
        Semaphore::take(self, n, timeout, false, cancel)
    }

    fn hold(&self, n: u32, timeout: Timeout, cancel: &Cancel) -> Result<()> {
        let n = small(n, "count").map_err(|e| e.at(self.name.path()))?;
        Semaphore::take(self, n, timeout, true, cancel)
    }

    fn value(&self) -> Result<u32> {
        Semaphore::value(self).map(u32::from)
    }

    fn relax(&self) -> Result<u32> {
        Semaphore::relax(self)
    }

    fn status(&self) -> Result<Status> {
        self.snapshot()
    }

    fn owner(&self) -> u32 {
        self.owner
    }
}

/// A random non-zero 32-bit number from the kernel.
pub(crate) fn random_u32() -> Result<u32> {
    loop {
        let mut b = [0u8; 4];
        match crate::sys::random::random_bytes(&mut b) {
            Ok(()) => {}
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            Err(e) => return Err(Error::sys(ErrorKind::Other, "cannot get random bytes", e)),
        }
        match u32::from_ne_bytes(b) {
            0 => continue,
            v => return Ok(v),
        }
    }
}
