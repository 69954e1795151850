//! An open, verified semaphore and its operations.
//!
//! Opening a name checks, in this order, that the record is a regular file reached without
//! following a link, that it parses strictly, that it comes from this boot and IPC
//! namespace, that its random key still names the recorded set id, and that the set's
//! owner is the file's owner and the set holds one semaphore. Only then is the id used.

use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::error::{Error, ErrorKind, Result};
use crate::name::Name;
use crate::parse::Timeout;
use crate::record::{Origin, ParseError, Record};
use crate::store::{Dir, Found, RecordFile};
use crate::sys::{self, Key, SemId};

/// An infinite wait sleeps in slices this long, so that the kernel always has a timeout
/// that a stop signal can zero (see `sys::take_one_within`). A slice ending is invisible.
const FOREVER_SLICE: Duration = Duration::from_secs(24 * 60 * 60);

/// A semaphore whose record was verified against its kernel set.
#[derive(Debug)]
pub struct Semaphore {
    name: Name,
    key: Key,
    id: SemId,
    owner: u32,
}

/// What a record file turned out to be.
pub(crate) enum Verdict {
    /// A record whose set is alive and owned by the file's owner.
    Live { key: Key, id: SemId },
    /// A well-formed record whose set is gone, replaced, or not the file owner's.
    Stale(String),
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
        return Ok(Verdict::Stale(
            "stale: the record is from another IPC namespace".into(),
        ));
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
        Err(Errno::EACCES) => {
            return Err(Error::sys(
                ErrorKind::PermissionDenied,
                "the semaphore's mode does not admit you",
                Errno::EACCES,
            ))
        }
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

impl Semaphore {
    /// Open the semaphore named `name`, verifying its record.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when nothing is at the name (or its directory is missing);
    /// [`ErrorKind::Stale`] when the record is stale, untrusted, or not a record at all;
    /// [`ErrorKind::PermissionDenied`] when the file or the set's mode keeps us out.
    pub fn open(name: &Name) -> Result<Semaphore> {
        let dir = Dir::open(name)?;
        let file = match dir.open_record()? {
            Found::Nothing => {
                return Err(Error::new(ErrorKind::NotFound, "no such semaphore").at(name.path()))
            }
            Found::NotAFile(what) => return Err(Error::new(ErrorKind::Stale, what).at(name.path())),
            Found::File(f) => f,
        };
        let origin = Origin::current()?;
        match verify(&file, &origin).map_err(|e| e.at(name.path()))? {
            Verdict::Live { key, id } => Ok(Semaphore {
                name: name.clone(),
                key,
                id,
                owner: file.uid(),
            }),
            Verdict::Stale(why) | Verdict::NotARecord(why) => {
                Err(Error::new(ErrorKind::Stale, why).at(name.path()))
            }
        }
    }

    /// The resolved name.
    pub fn name(&self) -> &Name {
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

    fn op_error(&self, e: Errno) -> Error {
        let (kind, what) = match e {
            Errno::EIDRM | Errno::EINVAL => (ErrorKind::Removed, "the semaphore was destroyed"),
            Errno::EACCES => (
                ErrorKind::PermissionDenied,
                "the semaphore's mode does not admit you",
            ),
            Errno::ERANGE => (ErrorKind::OutOfRange, "the value is at its maximum, 32767"),
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

    /// Take one count, sleeping in the kernel's queue (semtimedop(2)) for at most
    /// `timeout`. `EINTR` (a SIGSTOP/SIGCONT, a handled signal) is retried against a
    /// monotonic deadline, so the total wait is neither lengthened nor shortened.
    ///
    /// # Errors
    /// [`ErrorKind::TimedOut`] (or [`ErrorKind::WouldBlock`] for [`Timeout::Never`]);
    /// [`ErrorKind::Interrupted`] when a stop signal caught by
    /// [`crate::signals::abort_waits_on_stop_signals`] ended the wait, taking nothing;
    /// [`ErrorKind::Removed`] when the semaphore was destroyed meanwhile.
    pub fn wait(&self, timeout: Timeout) -> Result<()> {
        let deadline = match timeout {
            Timeout::Never => return self.try_wait(),
            Timeout::Forever => None,
            Timeout::After(d) => Some(Instant::now() + d),
        };
        loop {
            let slice = match deadline {
                None => FOREVER_SLICE,
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            match sys::take_one_within(self.id, slice) {
                Ok(()) => return Ok(()),
                Err(Errno::EINTR | Errno::EAGAIN) if sys::stop_signal().is_some() => {
                    return Err(
                        Error::new(ErrorKind::Interrupted, "interrupted by a signal")
                            .at(self.name.path()),
                    )
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

/// A random non-zero 32-bit number from the kernel.
pub(crate) fn random_u32() -> Result<u32> {
    loop {
        let mut b = [0u8; 4];
        match sys::random_bytes(&mut b) {
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
