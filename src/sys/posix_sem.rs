//! POSIX named semaphores: the files under `/dev/shm` and glibc's `sem_*` functions on
//! a mapping of our own.
//!
//! glibc's `sem_open(3)` follows whatever stands at `/dev/shm/sem.NAME` and maps it
//! without checking its size, so this module never calls it: the caller opens the file
//! with [`openat`] (never following a link), checks it with [`fstat`], and only then
//! [`Mapping::map`]s it. One system call or libc call per `unsafe` block; every result
//! becomes a `Result` at once.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use nix::errno::Errno;

/// The size of glibc's `sem_t` (32 bytes on 64-bit targets): the exact size of a
/// semaphore's file.
pub const SEM_SIZE: usize = size_of::<libc::sem_t>();

/// `openat(dir, name, flags | O_CLOEXEC, mode)`.
///
/// # Errors
/// Whatever openat(2) reports: `ENOENT`, `EEXIST` with `O_EXCL`, `ELOOP` for a symlink
/// with `O_NOFOLLOW`, `EACCES`, `EOPNOTSUPP` for `O_TMPFILE` on a file system without it.
pub fn openat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> Result<OwnedFd, Errno> {
    // SAFETY: `name` is a NUL-terminated string that outlives the call; openat reads only
    // it, and the mode is passed as the variadic argument O_CREAT/O_TMPFILE expect.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)`: a directory to work relative to.
///
/// # Errors
/// `ENOENT`, `ENOTDIR`, `EACCES`; see open(2).
pub fn open_dir(path: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: open just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstat(fd)`.
///
/// # Errors
/// `EBADF`, `EIO`; see fstat(2).
pub fn fstat(fd: BorrowedFd<'_>) -> Result<libc::stat, Errno> {
    let mut st = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is a valid, writable `struct stat` for the whole call.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) };
    Errno::result(r)?;
    // SAFETY: fstat filled `st` on success, and it was zeroed before.
    Ok(unsafe { st.assume_init() })
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: what stands at `name` itself.
///
/// # Errors
/// `ENOENT` when nothing does, `EACCES`; see fstatat(2).
pub fn lstatat(dir: BorrowedFd<'_>, name: &CStr) -> Result<libc::stat, Errno> {
    let mut st = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `name` is NUL-terminated and `st` a valid, writable `struct stat`, both for
    // the whole call.
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    Errno::result(r)?;
    // SAFETY: fstatat filled `st` on success, and it was zeroed before.
    Ok(unsafe { st.assume_init() })
}

/// The birth time of the open file `fd` in Unix seconds, when the file system records
/// one (`statx(fd, "", AT_EMPTY_PATH, STATX_BTIME)`).
///
/// # Errors
/// `ENOSYS` on kernels before 4.11, `EBADF`; see statx(2).
pub fn birth_time(fd: BorrowedFd<'_>) -> Result<Option<i64>, Errno> {
    let mut stx = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: the empty path is a NUL-terminated literal, `stx` a valid, writable
    // `struct statx`, both for the whole call.
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_BTIME,
            stx.as_mut_ptr(),
        )
    };
    Errno::result(r)?;
    // SAFETY: statx filled `stx` on success, and it was zeroed before.
    let stx = unsafe { stx.assume_init() };
    Ok((stx.stx_mask & libc::STATX_BTIME != 0).then_some(stx.stx_btime.tv_sec))
}

/// `fchmod(fd, mode)`: set the permission bits exactly, whatever the umask was.
///
/// # Errors
/// `EPERM` unless we own the file; see fchmod(2).
pub fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: fchmod takes plain integers and touches no memory of ours.
    let r = unsafe { libc::fchmod(fd.as_raw_fd(), mode) };
    Errno::result(r).map(drop)
}

/// `linkat(olddir, old, newdir, new, flags)` (`None` for `AT_FDCWD`): give a file a new name; fails with `EEXIST`
/// if anything stands there, which makes it an exclusive publish.
///
/// With `AT_SYMLINK_FOLLOW` and `old` = `/proc/self/fd/N` this names an `O_TMPFILE`
/// without the `CAP_DAC_READ_SEARCH` that `AT_EMPTY_PATH` needs (see open(2), O_TMPFILE).
///
/// # Errors
/// `EEXIST`, `ENOENT`, `EXDEV`, `EPERM`; see linkat(2).
pub fn linkat(
    olddir: Option<BorrowedFd<'_>>,
    old: &CStr,
    newdir: BorrowedFd<'_>,
    new: &CStr,
    flags: libc::c_int,
) -> Result<(), Errno> {
    // SAFETY: both names are NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::linkat(
            olddir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd()),
            old.as_ptr(),
            newdir.as_raw_fd(),
            new.as_ptr(),
            flags,
        )
    };
    Errno::result(r).map(drop)
}

/// `unlinkat(dir, name, 0)`: remove a name (never a directory).
///
/// # Errors
/// `ENOENT`, `EPERM` in a sticky directory unless we own the file, `EISDIR`; see unlinkat(2).
pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let r = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
    Errno::result(r).map(drop)
}

/// The bytes of a process-shared semaphore holding `value`, as glibc's `sem_open` writes
/// them to a new file: `sem_init(&tmp, 1, value)` on a local `sem_t`.
///
/// # Errors
/// `EINVAL` above `SEM_VALUE_MAX`; see sem_init(3).
pub fn initial_sem(value: u32) -> Result<[u8; SEM_SIZE], Errno> {
    let mut sem = MaybeUninit::<libc::sem_t>::zeroed();
    // SAFETY: `sem` is a valid, writable, suitably aligned sem_t for the whole call; it
    // is never used as a semaphore here, only copied out as bytes.
    let r = unsafe { libc::sem_init(sem.as_mut_ptr(), 1, value) };
    Errno::result(r)?;
    let mut bytes = [0u8; SEM_SIZE];
    // SAFETY: `sem` is SEM_SIZE initialised bytes (zeroed, then set by sem_init), `bytes`
    // is SEM_SIZE writable bytes, and the two do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(sem.as_ptr().cast::<u8>(), bytes.as_mut_ptr(), SEM_SIZE)
    };
    Ok(bytes)
}

/// A shared mapping of a semaphore's file, `SEM_SIZE` bytes, unmapped on drop.
///
/// The file must be a regular file of at least `SEM_SIZE` bytes when mapped (check with
/// [`fstat`] first). If somebody later truncates it, touching the mapping raises
/// SIGBUS: that is a crash, not memory corruption, and is why callers only map files of
/// owners they trust.
#[derive(Debug)]
pub struct Mapping {
    sem: NonNull<libc::sem_t>,
    writable: bool,
}

// SAFETY: the mapping is owned by this value alone, and glibc's sem_* functions are
// safe to call on one semaphore from several threads (and processes) at once.
unsafe impl Send for Mapping {}
// SAFETY: as for Send: every method takes `&self` and glibc synchronises with atomics.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `mmap(NULL, SEM_SIZE, PROT_READ[|PROT_WRITE], MAP_SHARED, fd, 0)`. A read-only
    /// mapping (for an `O_RDONLY` descriptor) serves only [`sem_getvalue`].
    ///
    /// # Errors
    /// `EACCES` when the descriptor's access mode doesn't allow the protection, `ENODEV`,
    /// `ENOMEM`; see mmap(2).
    pub fn map(fd: BorrowedFd<'_>, writable: bool) -> Result<Mapping, Errno> {
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a new mapping at an address the kernel chooses overlaps nothing of ours;
        // the descriptor is open for the duration of the call.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SEM_SIZE,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        // mmap returns page-aligned, non-null addresses on success.
        let sem = NonNull::new(p.cast::<libc::sem_t>()).ok_or(Errno::ENOMEM)?;
        Ok(Mapping { sem, writable })
    }

    /// Whether the mapping allows the operations that change the value.
    pub fn writable(&self) -> bool {
        self.writable
    }

    fn writable_sem(&self) -> Result<*mut libc::sem_t, Errno> {
        // glibc's post and waits write the sem_t (its waiter count): on a read-only
        // mapping they would fault, so refuse them here.
        if self.writable {
            Ok(self.sem.as_ptr())
        } else {
            Err(Errno::EBADF)
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `sem` is the start of a SEM_SIZE mapping this value owns; nothing
        // borrows it past this point. munmap can only fail for bad arguments.
        unsafe { libc::munmap(self.sem.as_ptr().cast(), SEM_SIZE) };
    }
}

/// `sem_post(3)`: add one.
///
/// # Errors
/// `EOVERFLOW` at `SEM_VALUE_MAX`; `EBADF` on a read-only mapping.
pub fn sem_post(m: &Mapping) -> Result<(), Errno> {
    let sem = m.writable_sem()?;
    // SAFETY: `sem` points to SEM_SIZE bytes of a live, writable, shared mapping.
    let r = unsafe { libc::sem_post(sem) };
    Errno::result(r).map(drop)
}

/// `sem_trywait(3)`: take one if the value is positive.
///
/// # Errors
/// `EAGAIN` when it is 0; `EBADF` on a read-only mapping.
pub fn sem_trywait(m: &Mapping) -> Result<(), Errno> {
    let sem = m.writable_sem()?;
    // SAFETY: `sem` points to SEM_SIZE bytes of a live, writable, shared mapping.
    let r = unsafe { libc::sem_trywait(sem) };
    Errno::result(r).map(drop)
}

/// `sem_timedwait(3)`: take one, blocking until `deadline` on CLOCK_REALTIME.
///
/// # Errors
/// `ETIMEDOUT`, `EINTR` (a signal handler ran), `EINVAL` for a malformed deadline;
/// `EBADF` on a read-only mapping.
pub fn sem_timedwait(m: &Mapping, deadline: &libc::timespec) -> Result<(), Errno> {
    let sem = m.writable_sem()?;
    // SAFETY: `sem` points to SEM_SIZE bytes of a live, writable, shared mapping, and
    // `deadline` is a valid timespec for the whole call.
    let r = unsafe { libc::sem_timedwait(sem, deadline) };
    Errno::result(r).map(drop)
}

/// `sem_getvalue(3)`: the value (glibc never reports a negative one).
///
/// # Errors
/// None in practice; glibc's sem_getvalue always succeeds.
pub fn sem_getvalue(m: &Mapping) -> Result<i32, Errno> {
    let mut v: libc::c_int = 0;
    // SAFETY: `m.sem` points to SEM_SIZE bytes of a live mapping, which glibc only reads
    // here, and `v` is a valid, writable int.
    let r = unsafe { libc::sem_getvalue(m.sem.as_ptr(), &mut v) };
    Errno::result(r)?;
    Ok(v)
}
