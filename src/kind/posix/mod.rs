//! POSIX named semaphores (`posix:/NAME`): glibc's `/dev/shm/sem.NAME`, opened safely.
//!
//! glibc keeps the named semaphore `/NAME` as the file `/dev/shm/sem.NAME`, exactly
//! `size_of::<sem_t>()` bytes holding a process-shared `sem_t`, and C, Python
//! (`posix_ipc`), Node, Go and Julia programs operate on it through a shared mapping.
//! We never call `sem_open(3)`, which follows symlinks and maps whatever it finds
//! (glibc's own `sem_getvalue` takes a SIGBUS on a planted empty file). We open the
//! file ourselves, check it, map it, and then call glibc's `sem_*` functions on our
//! mapping, so we interoperate fully and refuse what glibc would follow or crash on.
//!
//! ## Whose files we map
//!
//! `/dev/shm` is world-writable (sticky), so anyone can create `sem.NAME` before us. A
//! mapped file that somebody truncates raises SIGBUS in every process that touches the
//! mapping: a crash we cannot catch without a signal handler, which the library never
//! installs. Who can truncate a file? Its owner (who can always `chmod` it writable),
//! root, and whoever its mode lets write it. So [`open`] maps a file only when its
//! owner is
//!
//! * our effective uid: nobody but us and root can truncate it unless *we* chose a mode
//!   that lets them write (and then we chose to trust them);
//! * root, who can do anything to us anyway; or
//! * a uid the caller names in [`Trust`]: the owner of a semaphore the user explicitly
//!   chose to share (`Trust::default().owner(uid)`). Sharing a semaphore with other users
//!   means trusting everyone who may write it, exactly as with glibc's `sem_open`.
//!
//! Anything else is [`ErrorKind::PermissionDenied`], naming the owner: a file that
//! another user planted at a name our scripts use (name squatting) is not silently
//! adopted. [`list`] reads the values only of files it would open with the default trust.
//!
//! What is checked before mapping: the name holds a regular file, reached without
//! following a symlink, of exactly [`SEM_SIZE`] bytes, owned by a trusted uid. A
//! trusted writer can still truncate it later; that is outside what we can prevent.
//!
//! ## Operations
//!
//! * [`init`] creates exclusively, as glibc does: `sem_init` on a local `sem_t`, its
//!   bytes written to an `O_TMPFILE` in `/dev/shm` (or a uniquely named temporary file),
//!   `fchmod` to the exact mode, then `linkat` to `sem.NAME`, which fails if anything
//!   stands there. Nobody ever sees a half-made semaphore and nothing is left on failure.
//! * [`Posix::post`] calls `sem_post` n times: POSIX has no atomic "post n", so other
//!   processes may take counts between our posts.
//! * [`Posix::take`] waits in slices of at most 50 ms with `sem_timedwait` (which waits
//!   on CLOCK_REALTIME, so only a monotonic [`Instant`] decides the total). Between
//!   slices it asks `cancelled()` and checks that the name still names the file it
//!   mapped: glibc's waiters stay blocked for ever after `sem_unlink`, ours end with
//!   [`ErrorKind::Removed`] within a slice.
//! * [`destroy`] unlinks the name; only the file's owner may (root is not special).
//!   glibc's waiters on a destroyed semaphore are not woken.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;

use crate::cancel::Cancel;
use crate::error::{kind_of, Error, ErrorKind, Result};
use crate::kind::{Capabilities, InitOptions, Kind};
use crate::name::Name;
use crate::parse::Timeout;
use crate::status::{Detail, Entry, Pruned, State, Status};
use crate::sys::posix_sem as sys;

pub use crate::sys::posix_sem::SEM_SIZE;

/// The largest value a POSIX semaphore holds (glibc's `SEM_VALUE_MAX`, `i32::MAX`).
pub const SEM_VALUE_MAX: u32 = i32::MAX as u32;

/// Where glibc keeps named semaphores.
pub const SHM_DIR: &str = "/dev/shm";

/// The longest NAME: `sem.` + NAME must fit NAME_MAX (255).
pub const MAX_NAME_LEN: usize = 251;

/// The longest single `sem_timedwait`: how soon a wait notices cancellation or removal.
const SLICE: Duration = Duration::from_millis(50);

/// `.` and the empty path, for `openat(dir, ".", O_TMPFILE)` and `AT_EMPTY_PATH`.
const DOT: &CStr = cstr(b".\0");
const EMPTY: &CStr = cstr(b"\0");

const fn cstr(bytes: &'static [u8]) -> &'static CStr {
    match CStr::from_bytes_with_nul(bytes) {
        Ok(c) => c,
        Err(_) => panic!("not a NUL-terminated literal"),
    }
}

/// The prefix that selects a POSIX semaphore.
const PREFIX: &[u8] = b"posix:";

/// A valid POSIX semaphore name: the NAME of `posix:/NAME`, one component of
/// `[A-Za-z0-9._-]`, 1 to 251 bytes, not `.` or `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PosixName {
    name: String,
    /// `posix:/NAME`, as errors and reports show it.
    shown: PathBuf,
}

impl PosixName {
    /// Check a bare NAME (no `posix:` prefix, no slashes).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`], saying what is wrong with it.
    pub fn new(name: &str) -> Result<PosixName> {
        Self::from_bytes(name.as_bytes(), OsStr::new(name))
    }

    fn from_bytes(name: &[u8], shown: &OsStr) -> Result<PosixName> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("invalid POSIX semaphore name {shown:?}: {why}"),
            )
        };
        if name.is_empty() {
            return Err(bad("the NAME of posix:/NAME is empty"));
        }
        if name.contains(&b'/') {
            return Err(bad(
                "NAME must be one component, without '/' after the first",
            ));
        }
        if !name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
        {
            return Err(bad("NAME may hold only letters, digits, '.', '_' and '-'"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad("NAME is longer than 251 bytes"));
        }
        if name == b"." || name == b".." {
            return Err(bad("NAME can't be '.' or '..'"));
        }
        // Only ASCII passed the checks above.
        let name = String::from_utf8_lossy(name).into_owned();
        let shown = PathBuf::from(format!("posix:/{name}"));
        Ok(PosixName { name, shown })
    }

    /// The bare NAME.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The file's name in [`SHM_DIR`]: `sem.NAME`.
    pub fn file_name(&self) -> String {
        format!("sem.{}", self.name)
    }

    fn file(&self) -> CString {
        // The name holds only [A-Za-z0-9._-]: no NUL.
        CString::new(self.file_name()).expect("a checked name has no NUL byte")
    }

    /// How errors and reports show this semaphore: `posix:/NAME`.
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message).at(self.shown())
    }

    fn sys_error(&self, kind: ErrorKind, message: impl Into<String>, errno: Errno) -> Error {
        Error::sys(kind, message, errno).at(self.shown())
    }
}

impl fmt::Display for PosixName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "posix:/{}", self.name)
    }
}

/// Whether `arg` selects a POSIX semaphore (starts with `posix:`).
pub fn is_posix(arg: &OsStr) -> bool {
    arg.as_bytes().starts_with(PREFIX)
}

/// Parse `posix:/NAME`, `posix:NAME` or `posix://NAME`: glibc strips every leading
/// slash, so all three are one semaphore.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] without the `posix:` prefix or for a bad NAME.
pub fn parse_name(arg: &OsStr) -> Result<PosixName> {
    let Some(rest) = arg.as_bytes().strip_prefix(PREFIX) else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid POSIX semaphore name {arg:?}: expected posix:/NAME"),
        ));
    };
    let start = rest.iter().position(|&b| b != b'/').unwrap_or(rest.len());
    PosixName::from_bytes(&rest[start..], arg)
}

/// The uids whose semaphore files [`open`] maps: always our effective uid and root, plus
/// any named here. See the module docs for why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    owners: Vec<u32>,
}

impl Trust {
    /// Trust also files owned by `uid`: the owner of a semaphore the user chose to share.
    #[must_use]
    pub fn owner(mut self, uid: u32) -> Trust {
        self.owners.push(uid);
        self
    }

    /// Whether a file owned by `uid` may be mapped.
    pub fn trusts(&self, uid: u32) -> bool {
        uid == euid() || uid == 0 || self.owners.contains(&uid)
    }
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// `uid 1000`. Like the rest of the library, messages don't consult the password
/// database: an NSS lookup can be slow (LDAP) and, with some modules, crash a threaded
/// process for an unknown uid (seen with libnss_systemd).
fn who(uid: u32) -> String {
    format!("uid {uid}")
}

/// What kind of file a `st_mode` describes, for messages.
fn file_type(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symlink",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        _ => "a file of unknown type",
    }
}

/// Whether what `st` describes can be a semaphore: why not, if not.
fn verdict(st: &libc::stat) -> FileState {
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        FileState::NotRegular(file_type(st.st_mode))
    } else if st.st_size != SEM_SIZE as libc::off_t {
        FileState::WrongSize(u64::try_from(st.st_size).unwrap_or(0))
    } else {
        FileState::Valid
    }
}

fn shm_dir() -> Result<OwnedFd> {
    // The path is a constant without NUL.
    let path = CString::new(SHM_DIR).expect("SHM_DIR has no NUL byte");
    sys::open_dir(&path).map_err(|e| {
        Error::sys(kind_of(e), format!("can't open {SHM_DIR}"), e).at(Path::new(SHM_DIR))
    })
}

/// The absolute CLOCK_REALTIME instant `d` from now, as `sem_timedwait` wants it.
fn realtime_after(d: Duration) -> libc::timespec {
    // A clock before 1970 only makes the slice end at once; the loop re-checks.
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + d;
    libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 1e9, which fits every c_long.
        tv_nsec: t.subsec_nanos() as libc::c_long,
    }
}

/// Create the semaphore `name` holding `value`, with permission bits exactly `mode`
/// whatever the umask. The name must be free.
///
/// # Errors
/// [`ErrorKind::OutOfRange`] above [`SEM_VALUE_MAX`]; [`ErrorKind::InvalidInput`] for
/// mode bits beyond 0777; [`ErrorKind::AlreadyExists`] when anything stands at the name
/// (the message names its owner); [`ErrorKind::PermissionDenied`], [`ErrorKind::Other`]
/// from the file system (ENOSPC is [`ErrorKind::OutOfRange`]).
pub fn init(name: &PosixName, value: u32, mode: u32) -> Result<()> {
    if value > SEM_VALUE_MAX {
        return Err(name.error(
            ErrorKind::OutOfRange,
            format!("value {value} is out of range: at most {SEM_VALUE_MAX}"),
        ));
    }
    if mode > 0o777 {
        return Err(name.error(
            ErrorKind::InvalidInput,
            format!("invalid mode {mode:04o}: expected permission bits only, at most 0777"),
        ));
    }
    let bytes = sys::initial_sem(value)
        .map_err(|e| name.sys_error(ErrorKind::Other, "can't initialise a sem_t", e))?;
    let dir = shm_dir()?;
    let fail = |e: Errno| match e {
        Errno::EEXIST => exists_error(name, &dir),
        e => name.sys_error(kind_of(e), "can't create the semaphore", e),
    };
    // O_TMPFILE: the file has no name until linkat, so nothing is left if we fail.
    match sys::openat(dir.as_fd(), DOT, libc::O_TMPFILE | libc::O_RDWR, 0o600) {
        Ok(fd) => publish_tmpfile(fd, &dir, name, &bytes, mode).map_err(fail),
        // No O_TMPFILE here (old kernel, or a file system without it): fall back.
        Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => {
            publish_named(&dir, name, &bytes, mode).map_err(fail)
        }
        Err(e) => Err(fail(e)),
    }
}

/// Write the semaphore into `fd`, set its mode exactly.
fn fill(fd: OwnedFd, bytes: &[u8; SEM_SIZE], mode: u32) -> Result<File, Errno> {
    let mut file = File::from(fd);
    file.write_all(bytes)
        .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))?;
    sys::fchmod(file.as_fd(), mode as libc::mode_t)?;
    Ok(file)
}

fn publish_tmpfile(
    fd: OwnedFd,
    dir: &OwnedFd,
    name: &PosixName,
    bytes: &[u8; SEM_SIZE],
    mode: u32,
) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let file = fill(fd, bytes, mode)?;
    let target = name.file();
    // /proc/self/fd/N with AT_SYMLINK_FOLLOW needs no privilege; AT_EMPTY_PATH needs
    // CAP_DAC_READ_SEARCH, so it is only the fallback when /proc is not mounted.
    let proc_path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .expect("a formatted number has no NUL");
    match sys::linkat(
        None,
        &proc_path,
        dir.as_fd(),
        &target,
        libc::AT_SYMLINK_FOLLOW,
    ) {
        Err(Errno::ENOENT) => sys::linkat(
            Some(file.as_fd()),
            EMPTY,
            dir.as_fd(),
            &target,
            libc::AT_EMPTY_PATH,
        )
        .or_else(|e| match e {
            Errno::ENOENT | Errno::EPERM => publish_named(dir, name, bytes, mode),
            e => Err(e),
        }),
        r => r,
    }
}

/// Removes a temporary name when dropped, whatever happened.
struct TempName<'a> {
    dir: &'a OwnedFd,
    name: CString,
}

impl Drop for TempName<'_> {
    fn drop(&mut self) {
        // Best effort: a leftover `.sem-init.*` is harmless and no semaphore's name.
        let _ = sys::unlinkat(self.dir.as_fd(), &self.name);
    }
}

fn publish_named(
    dir: &OwnedFd,
    name: &PosixName,
    bytes: &[u8; SEM_SIZE],
    mode: u32,
) -> Result<(), Errno> {
    let mut random = [0u8; 8];
    crate::sys::random::random_bytes(&mut random)?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    // Not `sem.*`: glibc and `list` never take a half-made file for a semaphore.
    let tmp = CString::new(format!(".sem-init.{}.{hex}", std::process::id()))
        .expect("a formatted name has no NUL");
    let fd = sys::openat(
        dir.as_fd(),
        &tmp,
        libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_NOFOLLOW,
        0o600,
    )?;
    let guard = TempName { dir, name: tmp };
    let _file = fill(fd, bytes, mode)?;
    sys::linkat(Some(dir.as_fd()), &guard.name, dir.as_fd(), &name.file(), 0)
}

/// The error for a name that is taken, naming what stands there and its owner.
fn exists_error(name: &PosixName, dir: &OwnedFd) -> Error {
    let what = match sys::lstatat(dir.as_fd(), &name.file()) {
        Ok(st) => {
            let kind = match verdict(&st) {
                FileState::Valid => "a semaphore".to_string(),
                FileState::WrongSize(n) => format!("a {n}-byte file (no semaphore)"),
                FileState::NotRegular(t) => t.to_string(),
                FileState::Unnamable => "a file".to_string(),
            };
            let other = if st.st_uid == euid() {
                ""
            } else {
                " (another user)"
            };
            format!(
                "{kind} owned by {}{other}, mode {:04o}",
                who(st.st_uid),
                st.st_mode & 0o7777
            )
        }
        Err(_) => "something".to_string(),
    };
    name.error(ErrorKind::AlreadyExists, format!("already exists: {what}"))
}

/// Remove the semaphore `name`. Only the file's owner may; root is not special. Waiters
/// in this library notice within 50 ms ([`ErrorKind::Removed`]); glibc's stay blocked.
///
/// Between our check of the owner and the unlink nobody else can replace the file: in
/// the sticky `/dev/shm` only its owner (us) or root can remove it.
///
/// # Errors
/// [`ErrorKind::NotFound`]; [`ErrorKind::NotOwner`] naming the owner;
/// [`ErrorKind::Stale`] when something other than a regular file stands at the name.
pub fn destroy(name: &PosixName) -> Result<()> {
    let dir = shm_dir()?;
    let st = sys::lstatat(dir.as_fd(), &name.file()).map_err(|e| lookup_error(name, e))?;
    unlink_checked(name, &dir, &st)
}

fn unlink_checked(name: &PosixName, dir: &OwnedFd, st: &libc::stat) -> Result<()> {
    if st.st_uid != euid() {
        return Err(name.error(
            ErrorKind::NotOwner,
            format!("not the owner: the semaphore belongs to {}", who(st.st_uid)),
        ));
    }
    if let FileState::NotRegular(t) = verdict(st) {
        return Err(name.error(
            ErrorKind::Stale,
            format!(
                "not a semaphore: {t} stands at {SHM_DIR}/{}; remove it by hand",
                name.file_name()
            ),
        ));
    }
    sys::unlinkat(dir.as_fd(), &name.file())
        .map_err(|e| name.sys_error(kind_of(e), "can't remove the semaphore", e))
}

fn lookup_error(name: &PosixName, e: Errno) -> Error {
    match e {
        Errno::ENOENT => name.error(ErrorKind::NotFound, "no such semaphore"),
        e => name.sys_error(kind_of(e), "can't look up the semaphore", e),
    }
}

/// Open the semaphore `name`: read-write, or read-only when the mode allows only that
/// (then only [`Posix::value`] and [`Posix::status`] work).
///
/// # Errors
/// [`ErrorKind::NotFound`]; [`ErrorKind::Stale`] when a symlink, a non-regular file or
/// a file of the wrong size stands at the name; [`ErrorKind::PermissionDenied`] when its
/// mode admits us not even for reading, or its owner is not trusted (see [`Trust`]).
pub fn open(name: &PosixName, trust: &Trust) -> Result<Posix> {
    let dir = shm_dir()?;
    let file = name.file();
    let not_a_semaphore = |what: String| {
        name.error(
            ErrorKind::Stale,
            format!("not a semaphore: {what} at {SHM_DIR}/{}", name.file_name()),
        )
    };
    let refuse = |st: &libc::stat| match verdict(st) {
        FileState::NotRegular(t) => Err(not_a_semaphore(format!("{t} stands"))),
        FileState::WrongSize(n) => Err(not_a_semaphore(format!(
            "a file of {n} bytes (a sem_t is {SEM_SIZE}) stands"
        ))),
        _ => Ok(()),
    };
    // Look before opening, so that we never open a FIFO or a device (with side effects);
    // the fstat after opening is what counts.
    refuse(&sys::lstatat(dir.as_fd(), &file).map_err(|e| lookup_error(name, e))?)?;
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let opened = match sys::openat(dir.as_fd(), &file, libc::O_RDWR | flags, 0) {
        Err(Errno::EACCES) => {
            sys::openat(dir.as_fd(), &file, libc::O_RDONLY | flags, 0).map(|fd| (fd, false))
        }
        r => r.map(|fd| (fd, true)),
    };
    let (fd, writable) = opened.map_err(|e| match e {
        Errno::ELOOP => not_a_semaphore("a symlink stands".to_string()),
        Errno::EACCES => match sys::lstatat(dir.as_fd(), &file) {
            Ok(st) => name.error(
                ErrorKind::PermissionDenied,
                format!(
                    "permission denied: owned by {}, mode {:04o}",
                    who(st.st_uid),
                    st.st_mode & 0o7777
                ),
            ),
            Err(_) => name.sys_error(ErrorKind::PermissionDenied, "can't open", e),
        },
        e => lookup_error(name, e),
    })?;
    let st = sys::fstat(fd.as_fd())
        .map_err(|e| name.sys_error(ErrorKind::Other, "can't stat the semaphore", e))?;
    refuse(&st)?;
    if !trust.trusts(st.st_uid) {
        return Err(name.error(
            ErrorKind::PermissionDenied,
            format!(
                "owned by {}, not by you or root: not mapping a file another user can \
                 truncate under us (to use it, trust its owner: SEM_POSIX_TRUST={})",
                who(st.st_uid),
                st.st_uid
            ),
        ));
    }
    let map = sys::Mapping::map(fd.as_fd(), writable)
        .map_err(|e| name.sys_error(kind_of(e), "can't map the semaphore", e))?;
    Ok(Posix {
        name: name.clone(),
        dir,
        fd,
        map,
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// An open POSIX named semaphore: its file, mapped.
#[derive(Debug)]
pub struct Posix {
    name: PosixName,
    dir: OwnedFd,
    fd: OwnedFd,
    map: sys::Mapping,
    dev: libc::dev_t,
    ino: libc::ino_t,
}

/// A snapshot of a POSIX semaphore's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PosixStatus {
    /// The value.
    pub value: u32,
    /// Blocked waiters: unknown for POSIX (glibc's private count goes stale after a
    /// kill), so always `None`.
    pub waiters: Option<u32>,
    /// The pid of the last operation: unknown for POSIX, so always `None`.
    pub last_pid: Option<i32>,
    /// The file's owner.
    pub owner: u32,
    /// The file's group.
    pub group: u32,
    /// The permission bits.
    pub mode: u32,
    /// The file's inode number in `/dev/shm`.
    pub inode: u64,
    /// When the semaphore was created (Unix seconds): the file's birth time when the
    /// file system records one, else its last status change.
    pub created: i64,
    /// Whether `created` is a birth time (else a ctime).
    pub created_is_birth: bool,
}

impl Posix {
    /// The semaphore's name.
    pub fn name(&self) -> &PosixName {
        &self.name
    }

    /// Whether we may change the value (the file opened read-write).
    pub fn writable(&self) -> bool {
        self.map.writable()
    }

    fn read_only_error(&self) -> Error {
        let (owner, mode) = match sys::fstat(self.fd.as_fd()) {
            Ok(st) => (who(st.st_uid), format!("{:04o}", st.st_mode & 0o7777)),
            Err(_) => ("its owner".to_string(), "its mode".to_string()),
        };
        self.name.error(
            ErrorKind::PermissionDenied,
            format!("permission denied: you may only read it (owned by {owner}, mode {mode})"),
        )
    }

    fn op_error(&self, e: Errno) -> Error {
        match e {
            Errno::EBADF => self.read_only_error(),
            e => self
                .name
                .sys_error(ErrorKind::Other, "the operation failed", e),
        }
    }

    /// Add `n` (1 or more) with `sem_post(3)` n times, waking waiters. POSIX has no atomic
    /// "post n": other processes may take counts between our posts.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for 0; [`ErrorKind::OutOfRange`] at
    /// [`SEM_VALUE_MAX`], saying how many were added before; [`ErrorKind::PermissionDenied`]
    /// when opened read-only.
    pub fn post(&self, n: u32) -> Result<()> {
        if n == 0 {
            return Err(self.name.error(
                ErrorKind::InvalidInput,
                "invalid count 0: a post adds at least 1",
            ));
        }
        for added in 0..n {
            match sys::sem_post(&self.map) {
                Ok(()) => {}
                Err(Errno::EOVERFLOW) => {
                    return Err(self.name.error(
                        ErrorKind::OutOfRange,
                        format!(
                            "the value reached its maximum, {SEM_VALUE_MAX}: added {added} of {n}"
                        ),
                    ))
                }
                Err(e) => return Err(self.op_error(e)),
            }
        }
        Ok(())
    }

    /// Take one count if the value is positive (`sem_trywait(3)`).
    ///
    /// # Errors
    /// [`ErrorKind::WouldBlock`] when the value is 0; [`ErrorKind::PermissionDenied`]
    /// when opened read-only.
    pub fn try_take(&self) -> Result<()> {
        sys::sem_trywait(&self.map).map_err(|e| match e {
            Errno::EAGAIN => self
                .name
                .error(ErrorKind::WouldBlock, "would block: the value is 0"),
            e => self.op_error(e),
        })
    }

    /// Take one count, waiting at most `timeout`, in `sem_timedwait(3)` slices of at most
    /// 50 ms against a monotonic deadline. After each slice (and each `EINTR`) it asks
    /// `cancelled()` and checks that the name still names this file. A slice's end is
    /// on CLOCK_REALTIME (all `sem_timedwait` offers): if that clock is set back during a
    /// slice, the slice lasts that much longer; the total is always measured on the
    /// monotonic clock.
    ///
    /// # Errors
    /// [`ErrorKind::TimedOut`] (or [`ErrorKind::WouldBlock`] for [`Timeout::Never`]);
    /// [`ErrorKind::Interrupted`] when `cancelled()` said so, having taken nothing;
    /// [`ErrorKind::Removed`] when the name was unlinked or now names another file;
    /// [`ErrorKind::PermissionDenied`] when opened read-only.
    pub fn take(&self, timeout: Timeout, cancelled: &dyn Fn() -> bool) -> Result<()> {
        let deadline = match timeout {
            Timeout::Never => return self.try_take(),
            Timeout::Forever => None,
            Timeout::After(d) => Some(Instant::now() + d),
        };
        loop {
            let slice = match deadline {
                None => SLICE,
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            };
            match sys::sem_timedwait(&self.map, &realtime_after(slice)) {
                Ok(()) => return Ok(()),
                // A slice ended, or a signal handler ran: look around, then go on.
                Err(Errno::ETIMEDOUT | Errno::EINTR) => {}
                Err(e) => return Err(self.op_error(e)),
            }
            if cancelled() {
                return Err(self
                    .name
                    .error(ErrorKind::Interrupted, "interrupted: took nothing"));
            }
            self.check_still_named()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.name.error(ErrorKind::TimedOut, "timed out"));
            }
        }
    }

    /// [`ErrorKind::Removed`] unless the name still names the file we mapped.
    fn check_still_named(&self) -> Result<()> {
        match sys::lstatat(self.dir.as_fd(), &self.name.file()) {
            Ok(st) if st.st_dev == self.dev && st.st_ino == self.ino => Ok(()),
            Ok(_) => Err(self.name.error(
                ErrorKind::Removed,
                "the semaphore was replaced while waiting",
            )),
            Err(Errno::ENOENT) => Err(self.name.error(
                ErrorKind::Removed,
                "the semaphore was destroyed while waiting",
            )),
            Err(e) => Err(self
                .name
                .sys_error(ErrorKind::Other, "can't look up the semaphore", e)),
        }
    }

    /// The value (`sem_getvalue(3)`; glibc never reports a negative one).
    ///
    /// # Errors
    /// [`ErrorKind::Other`] in theory only.
    pub fn value(&self) -> Result<u32> {
        let v = sys::sem_getvalue(&self.map).map_err(|e| self.op_error(e))?;
        Ok(u32::try_from(v).unwrap_or(0))
    }

    /// The value and the file's owner, group, mode, inode and creation time.
    ///
    /// # Errors
    /// [`ErrorKind::Other`] if fstat(2) fails.
    pub fn status(&self) -> Result<PosixStatus> {
        let value = self.value()?;
        let st = sys::fstat(self.fd.as_fd())
            .map_err(|e| self.name.sys_error(ErrorKind::Other, "can't stat", e))?;
        // statx may be missing (ENOSYS) or the file system may keep no birth time.
        let (created, created_is_birth) = match sys::birth_time(self.fd.as_fd()) {
            Ok(Some(t)) => (t, true),
            _ => (st.st_ctime, false),
        };
        Ok(PosixStatus {
            value,
            waiters: None,
            last_pid: None,
            owner: st.st_uid,
            group: st.st_gid,
            mode: st.st_mode & 0o7777,
            inode: st.st_ino,
            created,
            created_is_birth,
        })
    }

    /// Remove this semaphore's name, if it still names the file we opened and we own it.
    ///
    /// # Errors
    /// [`ErrorKind::Removed`] when the name is gone or names another file;
    /// [`ErrorKind::NotOwner`] naming the owner.
    pub fn destroy(&self) -> Result<()> {
        self.check_still_named()?;
        let st = sys::fstat(self.fd.as_fd())
            .map_err(|e| self.name.sys_error(ErrorKind::Other, "can't stat", e))?;
        unlink_checked(&self.name, &self.dir, &st)
    }
}

/// Whether a `sem.*` file in [`SHM_DIR`] is a semaphore we can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    /// A regular file of [`SEM_SIZE`] bytes with a name we accept.
    Valid,
    /// A regular file of the wrong size (the size it has).
    WrongSize(u64),
    /// Not a regular file (what it is: "a symlink", "a FIFO", ...).
    NotRegular(&'static str),
    /// A name glibc accepts but `posix:/NAME` does not (outside `[A-Za-z0-9._-]`).
    Unnamable,
}

impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileState::Valid => f.write_str("valid"),
            FileState::WrongSize(n) => write!(f, "wrong size: {n} bytes, a sem_t is {SEM_SIZE}"),
            FileState::NotRegular(t) => write!(f, "not a regular file: {t}"),
            FileState::Unnamable => f.write_str("a name posix:/NAME can't express"),
        }
    }
}

/// One `sem.*` file in [`SHM_DIR`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// The NAME after `sem.`.
    pub name: OsString,
    /// The parsed name, unless [`FileState::Unnamable`].
    pub posix: Option<PosixName>,
    /// The file's owner.
    pub owner: u32,
    /// The file's group.
    pub group: u32,
    /// The permission bits.
    pub mode: u32,
    /// The file's size.
    pub size: u64,
    /// Whether it is a semaphore we can use.
    pub state: FileState,
    /// The value, for valid semaphores that we may read and whose owner we trust by
    /// default (ourselves or root).
    pub value: Option<u32>,
}

/// Every `sem.*` file in [`SHM_DIR`], sorted by name, with its state.
///
/// # Errors
/// [`ErrorKind::PermissionDenied`], [`ErrorKind::NotFound`] when `/dev/shm` can't be read.
pub fn list() -> Result<Vec<FileEntry>> {
    let dir = shm_dir()?;
    let read = |e: std::io::Error| {
        let errno = e.raw_os_error().map_or(Errno::EIO, Errno::from_raw);
        Error::sys(kind_of(errno), format!("can't list {SHM_DIR}"), errno).at(Path::new(SHM_DIR))
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR).map_err(read)? {
        let file = entry.map_err(read)?.file_name();
        let Some(rest) = file.as_bytes().strip_prefix(b"sem.") else {
            continue;
        };
        let c = CString::new(file.as_bytes()).expect("a directory entry has no NUL byte");
        // Gone meanwhile: it isn't there any more.
        let Ok(st) = sys::lstatat(dir.as_fd(), &c) else {
            continue;
        };
        let posix = PosixName::from_bytes(rest, OsStr::from_bytes(rest)).ok();
        let state = match verdict(&st) {
            FileState::Valid if posix.is_none() => FileState::Unnamable,
            s => s,
        };
        let value = match (&posix, state) {
            (Some(p), FileState::Valid) if Trust::default().trusts(st.st_uid) => {
                open(p, &Trust::default()).and_then(|s| s.value()).ok()
            }
            _ => None,
        };
        out.push(FileEntry {
            name: OsStr::from_bytes(rest).to_os_string(),
            posix,
            owner: st.st_uid,
            group: st.st_gid,
            mode: st.st_mode & 0o7777,
            size: u64::try_from(st.st_size).unwrap_or(0),
            state,
            value,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The uids named in `SEM_POSIX_TRUST` (a comma-separated list of uids or user names
/// in /etc/passwd) are trusted too: the owners of semaphores a user chose to share.
/// Entries that name nobody are ignored.
pub fn trust_from_env() -> Trust {
    let mut trust = Trust::default();
    if let Some(list) = std::env::var_os("SEM_POSIX_TRUST") {
        for item in list.to_string_lossy().split(',').map(str::trim) {
            let uid = item
                .parse::<u32>()
                .ok()
                .or_else(|| crate::userdb::user_id(item));
            if let Some(uid) = uid {
                trust = trust.owner(uid);
            }
        }
    }
    trust
}

/// The POSIX kind: names `posix:/NAME`.
pub struct PosixKind;

/// What POSIX named semaphores can do: glibc's operations, one count at a time.
const CAPABILITIES: Capabilities = Capabilities {
    atomic_post_n: false,
    take_n: false,
    waiters: false,
    relax: false,
    undo: false,
    lease: false,
    last_op: false,
    max_value: SEM_VALUE_MAX,
};

fn posix_of(name: &Name) -> &PosixName {
    match name {
        Name::Posix(p) => p,
        // The name parser sends only posix: names to this kind.
        _ => unreachable!("a POSIX name is posix:/NAME"),
    }
}

impl Posix {
    fn detail(&self) -> Detail {
        let st = sys::fstat(self.fd.as_fd()).ok();
        let created = match sys::birth_time(self.fd.as_fd()) {
            Ok(Some(t)) => Some(t),
            _ => st.as_ref().map(|st| st.st_ctime),
        };
        Detail::Posix {
            device: self.dev,
            inode: self.ino,
            created,
        }
    }
}

impl Kind for PosixKind {
    fn label(&self) -> &'static str {
        "posix"
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn open(&self, name: &Name) -> Result<Box<dyn crate::Semaphore>> {
        Ok(Box::new(open(posix_of(name), &trust_from_env())?))
    }

    fn init(&self, name: &Name, value: u32, opts: &InitOptions) -> Result<()> {
        if opts.group.is_some() {
            return Err(crate::kind::unsupported(
                name,
                "be given a group at creation (chgrp its file in /dev/shm)",
            ));
        }
        init(posix_of(name), value, opts.mode)
    }

    fn destroy(&self, name: &Name) -> Result<()> {
        destroy(posix_of(name))
    }

    fn inspect(&self, name: &Name) -> Result<Entry> {
        let p = posix_of(name);
        match open(p, &trust_from_env()) {
            Ok(sem) => {
                let status = crate::Semaphore::status(&sem)?;
                Ok(Entry {
                    name: name.clone(),
                    owner: status.owner,
                    detail: status.detail.clone(),
                    state: State::Live(status),
                })
            }
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                let dir = shm_dir()?;
                let st = sys::lstatat(dir.as_fd(), &p.file()).map_err(|e| lookup_error(p, e))?;
                Ok(Entry {
                    name: name.clone(),
                    owner: st.st_uid,
                    state: State::NoAccess(e.reason()),
                    detail: Detail::Posix {
                        device: st.st_dev,
                        inode: st.st_ino,
                        created: None,
                    },
                })
            }
            Err(e) => Err(e),
        }
    }

    fn list(&self, _place: &Path) -> Result<Vec<Entry>> {
        // A file that isn't a semaphore we can name is not listed, as for System V.
        Ok(list()?
            .into_iter()
            .filter(|e| e.state == FileState::Valid)
            .filter_map(|e| self.inspect(&Name::Posix(e.posix?)).ok())
            .collect())
    }

    fn prune(&self, _place: &Path) -> Result<Vec<Pruned>> {
        // A POSIX semaphore is its file: it is never stale, so there is nothing to prune.
        Ok(Vec::new())
    }
}

impl crate::Semaphore for Posix {
    fn name(&self) -> Name {
        Name::Posix(self.name.clone())
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn post(&self, n: u32) -> Result<()> {
        Posix::post(self, n)
    }

    fn try_take(&self, n: u32) -> Result<()> {
        self.one(n)?;
        Posix::try_take(self)
    }

    fn take(&self, n: u32, timeout: Timeout, cancel: &Cancel) -> Result<()> {
        self.one(n)?;
        Posix::take(self, timeout, &|| cancel.reason().is_some())
    }

    fn value(&self) -> Result<u32> {
        Posix::value(self)
    }

    fn status(&self) -> Result<Status> {
        // A destroyed semaphore's mapping lives on: ask the name, as a wait does.
        self.check_still_named()?;
        let s = Posix::status(self)?;
        Ok(Status {
            value: s.value,
            capacity: None,
            waiters: None,
            last_pid: None,
            last_op: None,
            changed: None,
            owner: s.owner,
            group: s.group,
            mode: s.mode,
            detail: self.detail(),
        })
    }

    fn owner(&self) -> u32 {
        sys::fstat(self.fd.as_fd()).map_or(u32::MAX, |st| st.st_uid)
    }
}

impl Posix {
    /// POSIX takes one count at a time: a take of more is refused, never split.
    fn one(&self, n: u32) -> Result<()> {
        match n {
            1 => Ok(()),
            _ => Err(crate::kind::unsupported(
                &Name::Posix(self.name.clone()),
                &format!("take {n} counts at once (POSIX takes one at a time)"),
            )),
        }
    }
}

#[cfg(test)]
mod interop_tests;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::thread;

    /// A unique semaphore name whose file is removed in Drop, so a failing test leaks
    /// nothing into /dev/shm.
    pub(crate) struct Scratch(pub(crate) PosixName);

    impl Scratch {
        pub(crate) fn new(tag: &str) -> Scratch {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("semtest-{}-{tag}-{n}", std::process::id());
            Scratch(PosixName::new(&name).expect("a valid test name"))
        }

        pub(crate) fn path(&self) -> PathBuf {
            Path::new(SHM_DIR).join(self.0.file_name())
        }

        pub(crate) fn open(&self) -> Posix {
            open(&self.0, &Trust::default()).expect("open the test semaphore")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.path());
        }
    }

    pub(crate) fn kind<T: fmt::Debug>(r: Result<T>) -> ErrorKind {
        r.expect_err("expected an error").kind()
    }

    fn never() -> bool {
        false
    }

    fn is_root() -> bool {
        euid() == 0
    }

    #[test]
    fn names() {
        for arg in [
            "posix:/build",
            "posix:build",
            "posix://build",
            "posix:///build",
        ] {
            assert_eq!(
                parse_name(OsStr::new(arg)).unwrap().as_str(),
                "build",
                "{arg}"
            );
        }
        let ok = "posix:/A.b_c-9";
        assert_eq!(parse_name(OsStr::new(ok)).unwrap().to_string(), ok);
        assert_eq!(
            parse_name(OsStr::new(ok)).unwrap().file_name(),
            "sem.A.b_c-9"
        );
        let longest = format!("posix:/{}", "x".repeat(MAX_NAME_LEN));
        assert!(parse_name(OsStr::new(&longest)).is_ok());
        let too_long = format!("posix:/{}", "x".repeat(MAX_NAME_LEN + 1));
        let bad = [
            "posix:",
            "posix:/",
            "posix://",
            "posix:/a/b",
            "posix:/a/",
            "posix:/.",
            "posix:/..",
            "posix://..",
            "posix:/a b",
            "posix:/a\nb",
            "posix:/é",
            "posix:/a*",
            "/tmp/x",
            "POSIX:/x",
            "posix",
            &too_long,
        ];
        for arg in bad {
            let e = parse_name(OsStr::new(arg)).expect_err(arg);
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{arg:?}");
            assert!(!e.to_string().contains('\n'), "one line: {e}");
        }
        let non_utf8 = OsStr::from_bytes(b"posix:/a\xff");
        assert_eq!(kind(parse_name(non_utf8)), ErrorKind::InvalidInput);
        assert!(is_posix(OsStr::new("posix:/x")) && !is_posix(OsStr::new("/tmp/x")));
    }

    #[test]
    fn round_trip() {
        let s = Scratch::new("trip");
        init(&s.0, 2, 0o600).unwrap();
        let meta = std::fs::symlink_metadata(s.path()).unwrap();
        assert_eq!(meta.len(), SEM_SIZE as u64);
        let sem = s.open();
        assert!(sem.writable());
        assert_eq!(sem.value().unwrap(), 2);
        sem.post(3).unwrap();
        assert_eq!(sem.value().unwrap(), 5);
        sem.try_take().unwrap();
        sem.take(Timeout::After(Duration::from_secs(1)), &never)
            .unwrap();
        sem.take(Timeout::Never, &never).unwrap();
        assert_eq!(sem.value().unwrap(), 2);
        let st = sem.status().unwrap();
        assert_eq!(st.value, 2);
        assert_eq!((st.waiters, st.last_pid), (None, None));
        assert_eq!((st.owner, st.mode, st.inode), (euid(), 0o600, meta.ino()));
        assert!(st.created > 0);
        assert_eq!(kind(sem.post(0)), ErrorKind::InvalidInput);
        destroy(&s.0).unwrap();
        assert!(!s.path().exists());
        assert_eq!(kind(open(&s.0, &Trust::default())), ErrorKind::NotFound);
        assert_eq!(kind(destroy(&s.0)), ErrorKind::NotFound);
        let e = destroy(&s.0).unwrap_err().to_string();
        assert!(e.starts_with(&format!("posix:/{}: ", s.0.as_str())), "{e}");
    }

    #[test]
    fn init_is_exclusive_and_leaves_nothing_on_failure() {
        let s = Scratch::new("excl");
        init(&s.0, 1, 0o600).unwrap();
        let e = init(&s.0, 5, 0o600).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert!(e.to_string().contains("a semaphore owned by uid"), "{e}");
        assert_eq!(s.open().value().unwrap(), 1, "the first init stands");

        let t = Scratch::new("range");
        assert_eq!(
            kind(init(&t.0, SEM_VALUE_MAX + 1, 0o600)),
            ErrorKind::OutOfRange
        );
        assert_eq!(kind(init(&t.0, 0, 0o1600)), ErrorKind::InvalidInput);
        assert!(!t.path().exists());
        init(&t.0, SEM_VALUE_MAX, 0o600).unwrap();
        assert_eq!(t.open().value().unwrap(), SEM_VALUE_MAX);
        let leftovers = std::fs::read_dir(SHM_DIR)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name();
                n.to_string_lossy()
                    .starts_with(&format!(".sem-init.{}.", std::process::id()))
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn init_notices_another_users_name() {
        if !is_root() {
            eprintln!("skipped: needs root to create another user's file");
            return;
        }
        let s = Scratch::new("squat");
        std::fs::write(s.path(), [0u8; SEM_SIZE]).unwrap();
        std::os::unix::fs::chown(s.path(), Some(12345), None).unwrap();
        let e = init(&s.0, 0, 0o600).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert!(e.to_string().contains("uid 12345"), "{e}");
        assert!(e.to_string().contains("(another user)"), "{e}");
    }

    #[test]
    fn named_fallback_publishes_exclusively() {
        let s = Scratch::new("named");
        let dir = shm_dir().unwrap();
        let bytes = sys::initial_sem(4).unwrap();
        publish_named(&dir, &s.0, &bytes, 0o640).unwrap();
        assert_eq!(publish_named(&dir, &s.0, &bytes, 0o640), Err(Errno::EEXIST));
        let sem = s.open();
        assert_eq!(sem.value().unwrap(), 4);
        assert_eq!(sem.status().unwrap().mode, 0o640);
        let prefix = format!(".sem-init.{}.", std::process::id());
        assert!(!std::fs::read_dir(SHM_DIR)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix)));
    }

    #[test]
    fn mode_is_exact_whatever_the_umask() {
        for umask in ["077", "000"] {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "kind::posix::tests::mode_under_umask",
                    "--ignored",
                ])
                .env("SEM_TEST_UMASK", umask)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "umask {umask}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    #[ignore = "run by mode_is_exact_whatever_the_umask in a child: the umask is per process"]
    fn mode_under_umask() {
        let umask = std::env::var("SEM_TEST_UMASK").expect("SEM_TEST_UMASK");
        let umask = u32::from_str_radix(&umask, 8).unwrap();
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
        let dir = shm_dir().unwrap();
        for mode in [0o600, 0o640, 0o660, 0o666, 0o777, 0o604] {
            let s = Scratch::new("mode");
            init(&s.0, 0, mode).unwrap();
            let got = std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o7777;
            assert_eq!(got, mode, "umask {umask:03o}");
            let t = Scratch::new("mode-named");
            publish_named(&dir, &t.0, &sys::initial_sem(0).unwrap(), mode).unwrap();
            let got = std::fs::metadata(t.path()).unwrap().permissions().mode() & 0o7777;
            assert_eq!(got, mode, "umask {umask:03o}, named fallback");
        }
    }

    #[test]
    fn refuses_what_is_not_a_semaphore() {
        let target = Scratch::new("target");
        init(&target.0, 1, 0o600).unwrap();
        type Make<'a> = &'a dyn Fn(&Path);
        let cases: [(&str, Make); 5] = [
            ("symlink", &|p| {
                std::os::unix::fs::symlink(target.path(), p).unwrap()
            }),
            ("of 0 bytes", &|p| std::fs::write(p, b"").unwrap()),
            ("of 64 bytes", &|p| std::fs::write(p, [0u8; 64]).unwrap()),
            ("FIFO", &|p| {
                nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap()
            }),
            ("directory", &|p| std::fs::create_dir(p).unwrap()),
        ];
        for (what, make) in cases {
            let s = Scratch::new("bad");
            make(&s.path());
            let e = open(&s.0, &Trust::default()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Stale, "{what}: {e}");
            assert!(e.to_string().contains("not a semaphore"), "{e}");
            let e = init(&s.0, 0, 0o600).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{what}: {e}");
            if what == "directory" {
                std::fs::remove_dir(s.path()).unwrap();
            } else if what == "symlink" || what == "FIFO" {
                assert_eq!(kind(destroy(&s.0)), ErrorKind::Stale, "{what}");
            } else {
                destroy(&s.0).unwrap();
            }
        }
        assert_eq!(
            target.open().value().unwrap(),
            1,
            "the link's target is untouched"
        );
    }

    #[test]
    fn refuses_an_untrusted_owner_and_root_is_no_owner() {
        if !is_root() {
            eprintln!("skipped: needs root to create another user's file");
            return;
        }
        let s = Scratch::new("owner");
        init(&s.0, 3, 0o666).unwrap();
        std::os::unix::fs::chown(s.path(), Some(12345), None).unwrap();
        let e = open(&s.0, &Trust::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("uid 12345"), "{e}");
        let sem = open(&s.0, &Trust::default().owner(12345)).unwrap();
        assert_eq!(sem.value().unwrap(), 3);
        let e = destroy(&s.0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotOwner);
        assert!(e.to_string().contains("uid 12345"), "{e}");
        assert_eq!(kind(sem.destroy()), ErrorKind::NotOwner);
        assert!(s.path().exists());
    }

    #[test]
    fn another_user_gets_read_only_access_or_none() {
        if !is_root() {
            eprintln!("skipped: needs root to run a test as another user");
            return;
        }
        let readable = Scratch::new("ro");
        init(&readable.0, 4, 0o644).unwrap();
        let private = Scratch::new("private");
        init(&private.0, 0, 0o600).unwrap();
        let foreign = Scratch::new("foreign");
        init(&foreign.0, 0, 0o666).unwrap();
        std::os::unix::fs::chown(foreign.path(), Some(23456), None).unwrap();
        let names = [&readable, &private, &foreign].map(|s| s.0.as_str().to_string());
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kind::posix::tests::as_another_user",
                "--ignored",
            ])
            .env("SEM_TEST_NAMES", names.join(","))
            .uid(12345)
            .gid(12345)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(readable.open().value().unwrap(), 4, "nothing changed");
    }

    #[test]
    #[ignore = "run as uid 12345 by another_user_gets_read_only_access_or_none"]
    fn as_another_user() {
        let names = std::env::var("SEM_TEST_NAMES").expect("SEM_TEST_NAMES");
        let names: Vec<PosixName> = names
            .split(',')
            .map(|n| PosixName::new(n).unwrap())
            .collect();
        assert_eq!(euid(), 12345);
        // Root's 0644 semaphore: readable, not changeable.
        let sem = open(&names[0], &Trust::default()).unwrap();
        assert!(!sem.writable());
        assert_eq!(sem.value().unwrap(), 4);
        assert_eq!(sem.status().unwrap().value, 4);
        for r in [
            sem.post(1),
            sem.try_take(),
            sem.take(Timeout::After(Duration::from_millis(10)), &never),
        ] {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied);
            assert!(e.to_string().contains("owned by uid 0, mode 0644"), "{e}");
        }
        assert_eq!(kind(destroy(&names[0])), ErrorKind::NotOwner);
        // Root's 0600 semaphore: not even readable.
        let e = open(&names[1], &Trust::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("owned by uid 0, mode 0600"), "{e}");
        // Another user's, though its mode admits us: not trusted unless named.
        let e = open(&names[2], &Trust::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("uid 23456"), "{e}");
        open(&names[2], &Trust::default().owner(23456))
            .unwrap()
            .post(1)
            .unwrap();
        // Our own: created, used and destroyed as a user without privilege, which
        // exercises linkat through /proc/self/fd without CAP_DAC_READ_SEARCH.
        let mine = Scratch::new("mine");
        init(&mine.0, 1, 0o600).unwrap();
        mine.open().try_take().unwrap();
        destroy(&mine.0).unwrap();
    }

    #[test]
    fn post_stops_at_the_maximum() {
        let s = Scratch::new("max");
        init(&s.0, SEM_VALUE_MAX - 1, 0o600).unwrap();
        let sem = s.open();
        let e = sem.post(3).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfRange);
        assert!(e.to_string().contains("added 1 of 3"), "{e}");
        assert_eq!(sem.value().unwrap(), SEM_VALUE_MAX);
    }

    #[test]
    fn a_timeout_lasts_its_time() {
        let s = Scratch::new("timeout");
        init(&s.0, 0, 0o600).unwrap();
        let sem = s.open();
        assert_eq!(kind(sem.try_take()), ErrorKind::WouldBlock);
        assert_eq!(
            kind(sem.take(Timeout::Never, &never)),
            ErrorKind::WouldBlock
        );
        let t = Instant::now();
        let r = sem.take(Timeout::After(Duration::from_millis(200)), &never);
        let took = t.elapsed();
        assert_eq!(kind(r), ErrorKind::TimedOut);
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(1),
            "{took:?}"
        );
    }

    #[test]
    fn a_post_wakes_a_waiter() {
        let s = Scratch::new("wake");
        init(&s.0, 0, 0o600).unwrap();
        let sem = s.open();
        thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                sem.take(Timeout::After(Duration::from_secs(10)), &never)
                    .map(|()| Instant::now())
            });
            thread::sleep(Duration::from_millis(100));
            let posted = Instant::now();
            s.open().post(1).unwrap();
            let woke = waiter.join().unwrap().unwrap();
            assert!(woke - posted < Duration::from_secs(1));
        });
        assert_eq!(sem.value().unwrap(), 0);
    }

    #[test]
    fn cancelled_ends_a_wait_taking_nothing() {
        let s = Scratch::new("cancel");
        init(&s.0, 0, 0o600).unwrap();
        let sem = s.open();
        let stop = AtomicBool::new(false);
        thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let r = sem.take(Timeout::Forever, &|| stop.load(Ordering::SeqCst));
                (r, Instant::now())
            });
            thread::sleep(Duration::from_millis(150));
            let asked = Instant::now();
            stop.store(true, Ordering::SeqCst);
            let (r, ended) = waiter.join().unwrap();
            assert_eq!(kind(r), ErrorKind::Interrupted);
            assert!(
                ended - asked < Duration::from_millis(500),
                "{:?}",
                ended - asked
            );
        });
        assert_eq!(sem.value().unwrap(), 0);
    }

    /// Start a waiter, do `act`, and return how the wait ended and how soon after `act`.
    fn wait_through(sem: &Posix, act: impl FnOnce()) -> (ErrorKind, Duration) {
        thread::scope(|scope| {
            let waiter = scope.spawn(|| (sem.take(Timeout::Forever, &never), Instant::now()));
            thread::sleep(Duration::from_millis(150));
            let acted = Instant::now();
            act();
            let (r, ended) = waiter.join().unwrap();
            (kind(r), ended - acted)
        })
    }

    #[test]
    fn a_waiter_notices_unlink_and_replacement() {
        let s = Scratch::new("unlink");
        init(&s.0, 0, 0o600).unwrap();
        let sem = s.open();
        let (k, after) = wait_through(&sem, || destroy(&s.0).unwrap());
        assert_eq!(k, ErrorKind::Removed);
        // ~50 ms by design; the margin is for a loaded 2-core machine.
        assert!(after < Duration::from_millis(500), "{after:?}");

        init(&s.0, 0, 0o600).unwrap();
        let sem = s.open();
        let (k, after) = wait_through(&sem, || {
            std::fs::remove_file(s.path()).unwrap();
            init(&s.0, 0, 0o600).unwrap();
        });
        assert_eq!(k, ErrorKind::Removed);
        assert!(after < Duration::from_millis(500), "{after:?}");
        assert_eq!(
            kind(sem.destroy()),
            ErrorKind::Removed,
            "not the file we opened"
        );
        assert!(s.path().exists());
        s.open().destroy().unwrap();
        assert!(!s.path().exists());
    }

    #[test]
    fn list_shows_every_sem_file_and_its_state() {
        let good = Scratch::new("list-good");
        init(&good.0, 7, 0o640).unwrap();
        let short = Scratch::new("list-short");
        std::fs::write(short.path(), b"x").unwrap();
        let link = Scratch::new("list-link");
        std::os::unix::fs::symlink(good.path(), link.path()).unwrap();
        let odd = Path::new(SHM_DIR).join(format!("sem.semtest {} odd", std::process::id()));
        std::fs::write(&odd, [0u8; SEM_SIZE]).unwrap();
        let entries = list();
        let _ = std::fs::remove_file(&odd);
        let entries = entries.unwrap();
        let find = |n: &str| {
            entries
                .iter()
                .find(|e| e.name == OsStr::new(n))
                .unwrap_or_else(|| panic!("{n} listed"))
        };
        let e = find(good.0.as_str());
        assert_eq!(
            (e.state, e.value, e.mode, e.size),
            (FileState::Valid, Some(7), 0o640, 32)
        );
        assert_eq!(e.posix.as_ref(), Some(&good.0));
        assert_eq!(find(short.0.as_str()).state, FileState::WrongSize(1));
        assert_eq!(
            find(link.0.as_str()).state,
            FileState::NotRegular("a symlink")
        );
        let e = find(&format!("semtest {} odd", std::process::id()));
        assert_eq!(
            (e.state, &e.posix, e.value),
            (FileState::Unnamable, &None, None)
        );
        assert_eq!(
            FileState::WrongSize(1).to_string(),
            "wrong size: 1 bytes, a sem_t is 32"
        );
    }
}
