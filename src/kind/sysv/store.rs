//! The name file in the file system: found without following links, published atomically.
//!
//! All access goes through a descriptor of the parent directory (`O_PATH`), so the
//! directory can't be swapped between steps, and through `*at` calls on the last component
//! with `AT_SYMLINK_NOFOLLOW`/`O_NOFOLLOW`, so a symlink planted at the name is never
//! followed. A new record is written to an unnamed `O_TMPFILE` and then `linkat`ed into
//! place: the name appears complete or not at all, `link` refuses to replace anything that
//! exists (which makes init exclusive), and a crash before the link leaves no file behind.
//! Reclaiming and destroying take an `flock` on the record and re-check, under the lock,
//! that the name still refers to the locked file.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use fs2::FileExt;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::{AccessFlags, UnlinkatFlags};

use super::path::PathName;
use super::record::{MAX_LEN, MIN_LEN};
use crate::error::{kind_of, Error, ErrorKind, Result};

/// How long init and destroy wait for a record's lock before giving up.
pub(crate) const LOCK_PATIENCE: Duration = Duration::from_secs(5);

/// The directory that holds a name, opened once.
pub(crate) struct Dir<'a> {
    fd: OwnedFd,
    name: &'a PathName,
}

/// What stands at a name that is not a regular file.
fn describe(st: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFLNK => "a symbolic link stands at the name (never followed)",
        SFlag::S_IFDIR => "a directory stands at the name, not a semaphore record",
        SFlag::S_IFIFO => "a FIFO stands at the name, not a semaphore record",
        SFlag::S_IFSOCK => "a socket stands at the name, not a semaphore record",
        SFlag::S_IFCHR | SFlag::S_IFBLK => {
            "a device node stands at the name, not a semaphore record"
        }
        _ => "something other than a semaphore record stands at the name",
    }
}

/// A record file, opened read-only and read in full.
pub(crate) struct RecordFile {
    file: File,
    dev: u64,
    ino: u64,
    uid: u32,
    bytes: Vec<u8>,
}

/// What [`Dir::open_record`] found at the name.
pub(crate) enum Found {
    /// Nothing.
    Nothing,
    /// Something that can't be a record; the message says what.
    NotAFile(&'static str),
    /// A regular file, which may or may not hold a record.
    File(RecordFile),
}

impl RecordFile {
    /// The file's owner.
    pub(crate) fn uid(&self) -> u32 {
        self.uid
    }

    /// The file's contents (at most [`MAX_LEN`] + 1 bytes).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Take the exclusive `flock` on this file. Our own holders keep it for microseconds
    /// (a reclaim or a destroy); anyone who can read the record can also take it, so the
    /// wait is bounded rather than left to a stranger's goodwill.
    ///
    /// # Errors
    /// [`ErrorKind::Other`] when the lock stays taken for [`LOCK_PATIENCE`].
    pub(crate) fn lock(&self) -> Result<()> {
        let deadline = Instant::now() + LOCK_PATIENCE;
        let mut pause = Duration::from_micros(100);
        loop {
            match self.file.try_lock_exclusive() {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == fs2::lock_contended_error().raw_os_error() => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Error::sys(
                        ErrorKind::Other,
                        "cannot lock the record",
                        io_errno(&e),
                    ))
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Other,
                    "another process has held the record's lock for too long; try again",
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

impl<'a> Dir<'a> {
    /// Open the directory that holds `name`.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when it doesn't exist or isn't a directory,
    /// [`ErrorKind::PermissionDenied`] when it can't be searched.
    pub(crate) fn open(name: &'a PathName) -> Result<Dir<'a>> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match nix::fcntl::open(name.dir(), flags, Mode::empty()) {
            Ok(fd) => Ok(Dir { fd, name }),
            Err(e) => {
                let (kind, what) = match e {
                    Errno::ENOENT => (ErrorKind::NotFound, "the parent directory does not exist"),
                    Errno::ENOTDIR => (ErrorKind::NotFound, "the parent is not a directory"),
                    Errno::EACCES => {
                        // stat needs search permission on the directory's ancestors only.
                        if let Ok(st) = nix::sys::stat::stat(name.dir()) {
                            return Err(denied_in("cannot reach the name: its directory", &st)
                                .at(name.path()));
                        }
                        (
                            ErrorKind::PermissionDenied,
                            "cannot search the parent directory",
                        )
                    }
                    _ => (kind_of(e), "cannot open the parent directory"),
                };
                Err(Error::sys(kind, what, e).at(name.path()))
            }
        }
    }

    fn file(&self) -> &OsStr {
        self.name.file()
    }

    fn err(&self, kind: ErrorKind, what: &str, errno: Errno) -> Error {
        Error::sys(kind, what, errno).at(self.name.path())
    }

    fn lstat(&self) -> std::result::Result<FileStat, Errno> {
        nix::sys::stat::fstatat(&self.fd, self.file(), AtFlags::AT_SYMLINK_NOFOLLOW)
    }

    /// Look at the name without following a link, and open and read it if it is a regular
    /// file of plausible size.
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] when the file can't be read; other errors as the
    /// system calls report them.
    pub(crate) fn open_record(&self) -> Result<Found> {
        // The name can change between the lstat and the open; a few tries settle it.
        for _ in 0..8 {
            let st = match self.lstat() {
                Ok(st) => st,
                Err(Errno::ENOENT) => return Ok(Found::Nothing),
                Err(Errno::EACCES) => {
                    return Err(
                        self.dir_denied("cannot reach the name: its directory", Errno::EACCES)
                    )
                }
                Err(e) => return Err(self.err(kind_of(e), "cannot examine the name", e)),
            };
            if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
                return Ok(Found::NotAFile(describe(&st)));
            }
            if st.st_size as u64 > MAX_LEN {
                return Ok(Found::NotAFile(
                    "the file at the name is too large to be a semaphore record",
                ));
            }
            if (st.st_size as u64) < MIN_LEN {
                return Ok(Found::NotAFile(
                    "the file at the name is not a semaphore record",
                ));
            }
            // O_NONBLOCK: should a FIFO replace the file after the lstat, don't hang on it.
            let flags = OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_CLOEXEC
                | OFlag::O_NOCTTY;
            let fd = match nix::fcntl::openat(&self.fd, self.file(), flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ELOOP | Errno::ENXIO) => continue,
                Err(Errno::EACCES) => {
                    return Err(denied_in("the record file", &st).at(self.name.path()))
                }
                Err(e) => return Err(self.err(kind_of(e), "cannot open the record", e)),
            };
            let file = File::from(fd);
            let meta = file.metadata().map_err(|e| {
                self.err(ErrorKind::Other, "cannot examine the record", io_errno(&e))
            })?;
            if !meta.is_file() || meta.dev() != st.st_dev || meta.ino() != st.st_ino {
                continue;
            }
            if !(MIN_LEN..=MAX_LEN).contains(&meta.len()) {
                continue; // it changed since the lstat: look again
            }
            let mut bytes = Vec::with_capacity(MAX_LEN as usize + 1);
            (&file)
                .take(MAX_LEN + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| self.err(ErrorKind::Other, "cannot read the record", io_errno(&e)))?;
            return Ok(Found::File(RecordFile {
                dev: meta.dev(),
                ino: meta.ino(),
                uid: meta.uid(),
                file,
                bytes,
            }));
        }
        Err(Error::new(ErrorKind::Other, "the name keeps changing; try again").at(self.name.path()))
    }

    /// Whether the name still refers to `rec` (checked under its lock before replacing or
    /// removing it).
    pub(crate) fn still_names(&self, rec: &RecordFile) -> Result<bool> {
        match self.lstat() {
            Ok(st) => Ok(st.st_dev == rec.dev && st.st_ino == rec.ino),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(self.err(kind_of(e), "cannot examine the name", e)),
        }
    }

    /// Fail early, before anything is removed, if we could not unlink the name.
    pub(crate) fn check_writable(&self) -> Result<()> {
        let how = AccessFlags::W_OK | AccessFlags::X_OK;
        nix::unistd::faccessat(&self.fd, ".", how, AtFlags::AT_EACCESS).map_err(|e| match e {
            Errno::EACCES => self.dir_denied("cannot remove the record: its directory", e),
            _ => self.err(kind_of(e), "cannot remove names in the parent directory", e),
        })
    }

    /// A permission error about the directory, saying whose it is, or `errno`'s plain
    /// message if even that can't be found out.
    fn dir_denied(&self, what: &str, errno: Errno) -> Error {
        match nix::sys::stat::fstat(&self.fd) {
            Ok(st) => denied_in(what, &st).at(self.name.path()),
            Err(_) => self.err(ErrorKind::PermissionDenied, what, errno),
        }
    }

    /// Remove the name, which must be `rec` and locked by us.
    pub(crate) fn unlink(&self, _locked: &RecordFile) -> Result<()> {
        nix::unistd::unlinkat(&self.fd, self.file(), UnlinkatFlags::NoRemoveDir)
            .map_err(|e| self.err(kind_of(e), "cannot remove the record", e))
    }

    /// Create the name holding `contents` with permissions `mode` and, if given, group
    /// `group`, atomically: the name appears complete or not at all.
    ///
    /// # Errors
    /// [`ErrorKind::AlreadyExists`] when something already stands at the name;
    /// [`ErrorKind::PermissionDenied`] when the directory is not writable.
    pub(crate) fn publish(&self, contents: &[u8], mode: u32, group: Option<u32>) -> Result<()> {
        match self.publish_unnamed(contents, mode, group) {
            Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL | Errno::ENOENT) => {
                self.publish_via_temp_name(contents, mode, group)
            }
            r => r.map_err(|e| self.publish_error(e)),
        }
    }

    fn publish_error(&self, e: Errno) -> Error {
        match e {
            Errno::EEXIST => self.err(ErrorKind::AlreadyExists, "the name already exists", e),
            Errno::EACCES => self.dir_denied("cannot create the record: its directory", e),
            Errno::EPERM | Errno::EROFS => self.err(
                ErrorKind::PermissionDenied,
                "cannot create the record in the parent directory",
                e,
            ),
            Errno::ENOSPC | Errno::EDQUOT => {
                self.err(ErrorKind::Other, "cannot write the record", e)
            }
            _ => self.err(kind_of(e), "cannot create the record", e),
        }
    }

    /// Write to an `O_TMPFILE` and link it into place through /proc/self/fd.
    fn publish_unnamed(
        &self,
        contents: &[u8],
        mode: u32,
        group: Option<u32>,
    ) -> std::result::Result<(), Errno> {
        let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, ".", flags, Mode::from_bits_truncate(0o600))?;
        fill(&fd, contents, mode, group)?;
        let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        nix::unistd::linkat(
            nix::fcntl::AT_FDCWD,
            proc_path.as_str(),
            &self.fd,
            self.file(),
            AtFlags::AT_SYMLINK_FOLLOW,
        )
        // An ENOENT here means /proc is missing (the directory is open, so it exists),
        // which publish() answers by falling back to a named temporary file.
    }

    /// The fallback where `O_TMPFILE` is unsupported: a uniquely named temporary file,
    /// linked to the name and then removed.
    fn publish_via_temp_name(&self, contents: &[u8], mode: u32, group: Option<u32>) -> Result<()> {
        let mut tmp = OsString::from(".sem-tmp.");
        tmp.push(format!(
            "{}.{:08x}",
            std::process::id(),
            super::random_u32()?
        ));
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(
            &self.fd,
            tmp.as_os_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| self.publish_error(e))?;
        let linked = fill(&fd, contents, mode, group).and_then(|()| {
            nix::unistd::linkat(
                &self.fd,
                tmp.as_os_str(),
                &self.fd,
                self.file(),
                AtFlags::empty(),
            )
        });
        let _ = nix::unistd::unlinkat(&self.fd, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        linked.map_err(|e| self.publish_error(e))
    }
}

/// Write `contents`, give the file `group` if asked (so that the group-read bit of `mode`
/// means the set's group), and set the final permissions (explicitly, whatever the umask;
/// after the chown, which may clear mode bits).
fn fill(
    fd: &OwnedFd,
    contents: &[u8],
    mode: u32,
    group: Option<u32>,
) -> std::result::Result<(), Errno> {
    let mut f: &File = &File::from(fd.try_clone().map_err(|e| io_errno(&e))?);
    f.write_all(contents).map_err(|e| io_errno(&e))?;
    if let Some(gid) = group {
        nix::unistd::fchown(fd.as_fd(), None, Some(nix::unistd::Gid::from_raw(gid)))?;
    }
    nix::sys::stat::fchmod(fd.as_fd(), Mode::from_bits_truncate(mode))
}

/// A permission error about a file or directory whose status is `st`.
fn denied_in(what: &str, st: &FileStat) -> Error {
    crate::error::denied(what, st.st_uid, st.st_gid, st.st_mode & 0o7777)
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
