//! The only module with `unsafe` code: one thin, typed function per system call.
//!
//! Every function turns the raw return value into a `Result` at once, so no other
//! module ever sees a `-1`. `semctl(2)` is variadic and unchecked by the compiler, so
//! each command gets its own function with the argument type that command takes.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{compiler_fence, AtomicI32, Ordering};
use std::time::Duration;

use nix::errno::Errno;

pub mod posix_sem;

/// A System V IPC key (`key_t`), as passed to `semget(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(pub libc::key_t);

/// A System V semaphore set identifier, as returned by `semget(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemId(pub libc::c_int);

/// `semget(key, 1, IPC_CREAT | IPC_EXCL | mode)`: create a new set of one semaphore.
///
/// # Errors
/// `EEXIST` when `key` is taken, `ENOSPC` at the SEMMNI/SEMMNS limits; see semget(2).
pub fn create_set(key: Key, mode: u32) -> Result<SemId, Errno> {
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | (mode & 0o777) as libc::c_int;
    // SAFETY: semget takes plain integers and touches no memory of ours.
    let id = unsafe { libc::semget(key.0, 1, flags) };
    Errno::result(id).map(SemId)
}

/// `semget(key, 0, 0)`: the id of the set that currently holds `key`.
///
/// # Errors
/// `ENOENT` when no set holds the key; see semget(2).
pub fn lookup_set(key: Key) -> Result<SemId, Errno> {
    // SAFETY: semget takes plain integers and touches no memory of ours.
    let id = unsafe { libc::semget(key.0, 0, 0) };
    Errno::result(id).map(SemId)
}

/// `semctl(id, 0, GETVAL)`: the semaphore's value.
///
/// # Errors
/// `EACCES` without read permission, `EINVAL`/`EIDRM` when the set is gone; see semctl(2).
pub fn get_val(id: SemId) -> Result<i32, Errno> {
    // SAFETY: GETVAL takes no fourth argument and writes no memory of ours.
    let v = unsafe { libc::semctl(id.0, 0, libc::GETVAL) };
    Errno::result(v)
}

/// `semctl(id, 0, SETVAL, value)`: set the semaphore's value.
///
/// # Errors
/// `ERANGE` above SEMVMX (32767), `EACCES`, `EINVAL`/`EIDRM`; see semctl(2).
pub fn set_val(id: SemId, value: i32) -> Result<(), Errno> {
    // SAFETY: SETVAL's fourth argument is `union semun`, whose `val` member is an int;
    // on Linux an int passed through the variadic slot is read back as that member.
    let r = unsafe { libc::semctl(id.0, 0, libc::SETVAL, value as libc::c_int) };
    Errno::result(r).map(drop)
}

/// `semctl(id, 0, GETNCNT)`: how many processes are blocked decrementing.
///
/// # Errors
/// `EACCES` without read permission, `EINVAL`/`EIDRM` when the set is gone; see semctl(2).
pub fn get_ncnt(id: SemId) -> Result<i32, Errno> {
    // SAFETY: GETNCNT takes no fourth argument and writes no memory of ours.
    let v = unsafe { libc::semctl(id.0, 0, libc::GETNCNT) };
    Errno::result(v)
}

/// `semctl(id, 0, GETPID)`: the pid of the process that last operated on the semaphore.
///
/// # Errors
/// `EACCES` without read permission, `EINVAL`/`EIDRM` when the set is gone; see semctl(2).
pub fn get_pid(id: SemId) -> Result<i32, Errno> {
    // SAFETY: GETPID takes no fourth argument and writes no memory of ours.
    let v = unsafe { libc::semctl(id.0, 0, libc::GETPID) };
    Errno::result(v)
}

/// `semctl(id, 0, GETZCNT)`: how many processes wait for the value to become zero.
///
/// # Errors
/// `EACCES` without read permission, `EINVAL`/`EIDRM` when the set is gone; see semctl(2).
pub fn get_zcnt(id: SemId) -> Result<i32, Errno> {
    // SAFETY: GETZCNT takes no fourth argument and writes no memory of ours.
    let v = unsafe { libc::semctl(id.0, 0, libc::GETZCNT) };
    Errno::result(v)
}

/// `semctl(id, 0, IPC_STAT, &ds)`: the set's owner, mode, key and size.
///
/// # Errors
/// `EACCES` without read permission, `EINVAL`/`EIDRM` when the set is gone; see semctl(2).
pub fn stat(id: SemId) -> Result<libc::semid_ds, Errno> {
    let mut ds = MaybeUninit::<libc::semid_ds>::zeroed();
    // SAFETY: IPC_STAT's fourth argument is `union semun`, whose `buf` member is a
    // `struct semid_ds *`; `ds` is a valid, writable semid_ds for the whole call.
    let r = unsafe { libc::semctl(id.0, 0, libc::IPC_STAT, ds.as_mut_ptr()) };
    Errno::result(r)?;
    // SAFETY: the kernel filled `ds` on success, and it was zeroed before.
    Ok(unsafe { ds.assume_init() })
}

/// `semctl(id, 0, IPC_SET, ds)`: set the owner uid, group and mode of the set from
/// `ds.sem_perm` (the kernel reads only those three fields).
///
/// # Errors
/// `EPERM` unless the caller is the set's owner or creator, `EINVAL`/`EIDRM`; see semctl(2).
pub fn set_perm(id: SemId, ds: &libc::semid_ds) -> Result<(), Errno> {
    // SAFETY: IPC_SET's fourth argument is `union semun`, whose `buf` member is a
    // `struct semid_ds *`; the kernel only reads `*ds`, which is valid for the whole call.
    let r = unsafe { libc::semctl(id.0, 0, libc::IPC_SET, ds as *const libc::semid_ds) };
    Errno::result(r).map(drop)
}

/// `semctl(id, 0, IPC_RMID)`: remove the set, waking every blocked waiter with `EIDRM`.
///
/// # Errors
/// `EPERM` unless the caller is the set's owner or creator, `EINVAL`/`EIDRM`; see semctl(2).
pub fn remove(id: SemId) -> Result<(), Errno> {
    // SAFETY: IPC_RMID takes no fourth argument and writes no memory of ours.
    let r = unsafe { libc::semctl(id.0, 0, libc::IPC_RMID) };
    Errno::result(r).map(drop)
}

/// `semop(id, {0, delta, flags}, 1)`: add `delta` (which may be negative) without waiting
/// longer than the flags allow. Never pass `SEM_UNDO` for a count meant to outlive us.
///
/// # Errors
/// `EAGAIN` with `IPC_NOWAIT` when it would block, `ERANGE` above SEMVMX, `EIDRM`,
/// `EACCES`, `EINTR`; see semop(2).
pub fn semop(id: SemId, delta: i16, flags: libc::c_short) -> Result<(), Errno> {
    let mut op = libc::sembuf {
        sem_num: 0,
        sem_op: delta,
        sem_flg: flags,
    };
    // SAFETY: `op` is one valid sembuf and nsops is 1.
    let r = unsafe { libc::semop(id.0, &mut op, 1) };
    Errno::result(r).map(drop)
}

// ---------------------------------------------------------------------------------------
// Abortable timed waits.
//
// A blocked `semtimedop` must end, taking nothing, when a stop signal (SIGTERM, SIGINT,
// ...) arrives; but a count it has already taken must never be lost. A handler that only
// sets a flag leaves one race: the signal lands after the flag was checked and before the
// kernel entered the wait, so the wait would sleep through it. We close it by handing the
// kernel a timeout that lives in static memory, which the handler zeroes: the kernel reads
// the timeout on entry, so a signal before entry turns the wait into a non-blocking try,
// and a signal during it ends the call with EINTR.
// ---------------------------------------------------------------------------------------

struct SharedTimespec(UnsafeCell<libc::timespec>);

// SAFETY: the cell is written only by the one thread that waits and by the signal handler
// that interrupts that same thread, never concurrently from two threads.
unsafe impl Sync for SharedTimespec {}

static WAIT_TIMEOUT: SharedTimespec = SharedTimespec(UnsafeCell::new(libc::timespec {
    tv_sec: 0,
    tv_nsec: 0,
}));

/// The stop signal that arrived, or 0.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(sig: libc::c_int) {
    STOP_SIGNAL.store(sig, Ordering::SeqCst);
    // SAFETY: a volatile store of a plain struct into static memory is async-signal-safe;
    // the interrupted code reads this cell only through the kernel.
    unsafe {
        std::ptr::write_volatile(
            WAIT_TIMEOUT.0.get(),
            libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        )
    };
}

/// The signal recorded by the stop handler, if one arrived.
pub fn stop_signal() -> Option<libc::c_int> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Whether `sig` is ignored now (`sigaction` with no new action).
///
/// # Errors
/// `EINVAL` for an invalid signal; see sigaction(2).
fn is_ignored(sig: libc::c_int) -> Result<bool, Errno> {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `old`, which is valid
    // writable memory.
    let r = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
    Errno::result(r)?;
    // SAFETY: sigaction filled `old` on success.
    Ok(unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN)
}

/// Install the stop handler for `sig` (with `SA_RESTART`, so that only calls that are
/// never restarted, like `semtimedop`, see `EINTR`), unless `sig` is ignored now: a
/// background job of a non-interactive shell inherits SIGINT ignored, and must keep it so.
///
/// # Errors
/// `EINVAL` for a signal that cannot be caught; see sigaction(2).
pub fn catch_stop_signal(sig: libc::c_int) -> Result<(), Errno> {
    if is_ignored(sig)? {
        return Ok(());
    }
    // SAFETY: zeroed is a valid sigaction (empty mask, no flags); we then set the fields.
    let mut act: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    act.sa_sigaction = on_stop_signal as *const () as libc::sighandler_t;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: `act` is fully initialised and the handler only does async-signal-safe work.
    let r = unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) };
    Errno::result(r).map(drop)
}

/// `semtimedop(id, {0, -n, flags}, 1, timeout)`: take `n` counts (1..=32767) at once,
/// sleeping in the kernel for at most `timeout`, and ending early, taking nothing, when a
/// stop signal arrives. The kernel takes all `n` in one step or none: a waiter for `n`
/// sleeps until the value is at least `n`. With `undo`, the counts are taken with
/// `SEM_UNDO`: the kernel gives them back when this process ends, however it ends (the
/// adjustment survives execve(2), not fork(2)).
///
/// # Errors
/// `EAGAIN` when the timeout expired (or was zeroed by a stop signal), `EINTR`, `EIDRM`,
/// `EACCES`, `EINVAL`; `ERANGE` for an `n` of 0 or above 32767 (nothing is attempted);
/// see semtimedop(2).
pub fn take_within(id: SemId, n: u16, timeout: Duration, undo: bool) -> Result<(), Errno> {
    // A sem_op of 0 would wait for zero, and the kernel caps a semaphore at SEMVMX.
    let delta = match i16::try_from(n) {
        Ok(d) if d > 0 => -d,
        _ => return Err(Errno::ERANGE),
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: only this thread and its own signal handler touch the cell.
    unsafe { std::ptr::write_volatile(WAIT_TIMEOUT.0.get(), ts) };
    // Order the store above before the flag check below, as seen by our own handler.
    compiler_fence(Ordering::SeqCst);
    if stop_signal().is_some() {
        return Err(Errno::EINTR);
    }
    let mut op = libc::sembuf {
        sem_num: 0,
        sem_op: delta,
        sem_flg: if undo {
            libc::SEM_UNDO as libc::c_short
        } else {
            0
        },
    };
    // SAFETY: `op` is one valid sembuf, nsops is 1, and the timeout pointer is static
    // memory that stays valid; libc has no semtimedop wrapper, hence the raw syscall.
    let r = unsafe {
        libc::syscall(
            libc::SYS_semtimedop,
            id.0,
            &mut op as *mut libc::sembuf,
            1usize,
            WAIT_TIMEOUT.0.get() as *const libc::timespec,
        )
    };
    Errno::result(r).map(drop)
}

/// `getrandom(buf, 0)`: fill `buf` from the kernel's random pool.
///
/// # Errors
/// `EINTR`, `ENOSYS` on kernels before 3.17; see getrandom(2).
pub fn random_bytes(buf: &mut [u8]) -> Result<(), Errno> {
    // SAFETY: `buf` is valid writable memory of the length passed.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    match Errno::result(n)? as usize {
        len if len == buf.len() => Ok(()),
        _ => Err(Errno::EAGAIN),
    }
}

/// The parent pid that [`catch_parent_death`] watches.
static PARENT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_parent_death(sig: libc::c_int) {
    // PR_SET_PDEATHSIG fires when the *thread* that forked us exits, which in a
    // multi-threaded caller need not be the end of the process: act only when we have
    // really been reparented. getppid is async-signal-safe.
    if nix::unistd::getppid().as_raw() != PARENT.load(Ordering::SeqCst) {
        on_stop_signal(sig);
    }
}

/// Have the kernel send `sig` when our parent exits (`prctl(PR_SET_PDEATHSIG)`), and
/// treat it as a stop signal (ending a wait, taking nothing) once `parent` is no longer
/// our parent.
///
/// # Errors
/// `EINVAL` for an invalid signal; see prctl(2) and sigaction(2).
pub fn catch_parent_death(sig: libc::c_int, parent: libc::pid_t) -> Result<(), Errno> {
    PARENT.store(parent, Ordering::SeqCst);
    // SAFETY: zeroed is a valid sigaction (empty mask, no flags); we then set the fields.
    let mut act: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    act.sa_sigaction = on_parent_death as *const () as libc::sighandler_t;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: `act` is fully initialised and the handler only does async-signal-safe work.
    let r = unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) };
    Errno::result(r)?;
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
    Errno::result(r).map(drop)
}

/// `prctl(PR_SET_PDEATHSIG, 0)`: no signal when our parent exits. The setting survives
/// execve(2), so a program we exec would otherwise inherit it.
///
/// # Errors
/// See prctl(2).
pub fn forget_parent_death() -> Result<(), Errno> {
    // SAFETY: PR_SET_PDEATHSIG with 0 takes no pointer and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0 as libc::c_ulong, 0, 0, 0) };
    Errno::result(r).map(drop)
}

/// `close_range(first, ~0, 0)`: close every descriptor from `first` up.
///
/// # Errors
/// `ENOSYS` before Linux 5.9, `EINVAL`; see close_range(2).
pub fn close_from(first: libc::c_uint) -> Result<(), Errno> {
    // SAFETY: closing descriptors touches no memory; the caller owns no Rust object that
    // wraps a descriptor at or above `first`.
    let r = unsafe { libc::close_range(first, libc::c_uint::MAX, 0) };
    Errno::result(r).map(drop)
}

/// `nanosleep(d)`: sleep, ending early with `EINTR` when a handled signal arrives (the
/// standard library's sleep would resume instead).
///
/// # Errors
/// `EINTR`; see nanosleep(2).
pub fn nap(d: Duration) -> Result<(), Errno> {
    let ts = libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec; a null remainder pointer is allowed.
    let r = unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
    Errno::result(r).map(drop)
}

/// `localtime_r(secs)`: the broken-down local time of a Unix time.
///
/// # Errors
/// `EOVERFLOW` when the year does not fit; see localtime(3).
pub fn local_time(secs: i64) -> Result<libc::tm, Errno> {
    let t = secs as libc::time_t;
    let mut tm = MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: both pointers are valid for the call; localtime_r is the thread-safe form.
    let r = unsafe { libc::localtime_r(&t, tm.as_mut_ptr()) };
    if r.is_null() {
        return Err(Errno::EOVERFLOW);
    }
    // SAFETY: localtime_r filled `tm` on success, and it was zeroed before.
    Ok(unsafe { tm.assume_init() })
}

/// `pidfd_open(pid, 0)`: a descriptor that refers to process `pid` itself, immune to pid
/// reuse, and that polls readable once the process has ended.
///
/// # Errors
/// `ESRCH` when no such process exists, `ENOSYS` before Linux 5.3; see pidfd_open(2).
pub fn pidfd_open(pid: libc::pid_t) -> Result<std::os::fd::OwnedFd, Errno> {
    // SAFETY: pidfd_open takes plain integers; libc has no wrapper, hence the raw syscall.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = Errno::result(fd)? as libc::c_int;
    // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`: signal the process behind `pidfd`, which
/// can't be a later process that reused its pid. Signal 0 only checks that it still runs.
///
/// # Errors
/// `ESRCH` when the process has ended, `EPERM`, `ENOSYS` before Linux 5.1; see
/// pidfd_send_signal(2).
pub fn pidfd_send_signal(pidfd: libc::c_int, sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: a null siginfo pointer is allowed and the call touches no memory of ours;
    // libc has no wrapper, hence the raw syscall.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// `poll(fds, timeout)`: sleep until an event on one of `fds` (a negative descriptor is
/// skipped), or for `timeout` (`None`: for ever). Returns how many have events; each
/// entry's `revents` says which (POLLHUP and POLLERR come even when not asked for: a pipe
/// whose other side has gone, a pidfd whose process ended).
///
/// # Errors
/// `EINTR` when a handled signal arrives; see poll(2).
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> Result<usize, Errno> {
    let ms = timeout.map_or(-1, |d| d.as_millis().min(i32::MAX as u128) as libc::c_int);
    // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfd for the whole call.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    Errno::result(r).map(|n| n as usize)
}

/// `poll({fd, events: 0}, 1, timeout)`: sleep for `timeout`, or less when `fd` reports an
/// error or a hang-up, which poll(2) reports even though no event is asked for: the write
/// end of a pipe whose readers are all gone polls `POLLERR`, a socket whose peer closed or
/// a terminal that hung up `POLLHUP`, a descriptor that isn't open `POLLNVAL`. A terminal,
/// a file or a pipe that is still read report nothing, so the call sleeps. Returns whether
/// `fd` reported one of them.
///
/// # Errors
/// `EINTR` when a handled signal arrives, `ENOMEM`; see poll(2).
pub fn hung_up_within(fd: BorrowedFd<'_>, timeout: Duration) -> Result<bool, Errno> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid pollfd for the whole call, and nfds is 1.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    Errno::result(r)?;
    Ok(pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0)
}

/// Whether `fork` returned in the parent or the child.
pub enum Forked {
    /// In the parent.
    Parent,
    /// In the child.
    Child,
}

/// `fork()`, allowed only while this process has a single thread: in the child only the
/// calling thread exists, and a lock held by another thread would stay locked for ever.
///
/// # Errors
/// `EBUSY` when the process has other threads (counted in /proc/self/task); `EAGAIN`,
/// `ENOMEM`; see fork(2).
pub fn fork() -> Result<Forked, Errno> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .map_err(|_| Errno::EBUSY)?;
    if threads != 1 {
        return Err(Errno::EBUSY);
    }
    // SAFETY: we just checked that this process has one thread, the caller.
    let pid = unsafe { libc::fork() };
    match Errno::result(pid)? {
        0 => Ok(Forked::Child),
        _ => Ok(Forked::Parent),
    }
}

/// `_exit(code)`: end the process at once, running no exit handlers and flushing nothing
/// (for the parent side of a fork whose buffers belong to the child).
pub fn exit_now(code: libc::c_int) -> ! {
    // SAFETY: _exit takes an integer and never returns.
    unsafe { libc::_exit(code) }
}

/// The first real-time signal free for applications (glibc reserves the lowest ones).
pub fn first_realtime_signal() -> libc::c_int {
    libc::SIGRTMIN()
}

/// Give `sig` its default action again unless it is ignored now (`sigaction`).
///
/// # Errors
/// `EINVAL` for an invalid signal; see sigaction(2).
pub fn uncatch(sig: libc::c_int) -> Result<(), Errno> {
    if is_ignored(sig)? {
        return Ok(());
    }
    reset_to_default(sig)
}

/// `signal(sig, SIG_DFL)`: restore the default action, before re-raising a caught signal.
///
/// # Errors
/// `EINVAL` for an invalid signal; see sigaction(2).
pub fn reset_to_default(sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: installing SIG_DFL involves no handler code of ours.
    let r = unsafe { libc::signal(sig, libc::SIG_DFL) };
    if r == libc::SIG_ERR {
        return Err(Errno::last());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A private set, removed when dropped so that a failing test leaks nothing.
    struct PrivateSet(SemId);

    impl PrivateSet {
        fn new() -> PrivateSet {
            let mut b = [0u8; 4];
            random_bytes(&mut b).expect("getrandom works");
            let key = Key(i32::from_ne_bytes(b) | 1);
            PrivateSet(create_set(key, 0o600).expect("a set can be created"))
        }
    }

    impl Drop for PrivateSet {
        fn drop(&mut self) {
            let _ = remove(self.0);
        }
    }

    #[test]
    fn values_ops_and_limits() {
        let s = PrivateSet::new();
        assert_eq!(get_val(s.0), Ok(0));
        set_val(s.0, 2).unwrap();
        semop(s.0, -1, 0).unwrap();
        assert_eq!(get_val(s.0), Ok(1));
        assert_eq!(
            semop(s.0, -2, libc::IPC_NOWAIT as libc::c_short),
            Err(Errno::EAGAIN)
        );
        assert_eq!(set_val(s.0, 32768), Err(Errno::ERANGE));
        set_val(s.0, 32767).unwrap();
        assert_eq!(semop(s.0, 1, 0), Err(Errno::ERANGE));
        assert_eq!(get_val(s.0), Ok(32767));
        assert_eq!(get_ncnt(s.0), Ok(0));
        let ds = stat(s.0).unwrap();
        assert_eq!(ds.sem_perm.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(ds.sem_nsems, 1);
        assert_eq!(ds.sem_perm.mode & 0o777, 0o600);
    }

    #[test]
    fn timed_take_expires_and_takes() {
        let s = PrivateSet::new();
        let t = std::time::Instant::now();
        assert_eq!(
            take_within(s.0, 1, Duration::from_millis(50), false),
            Err(Errno::EAGAIN)
        );
        assert!(t.elapsed() >= Duration::from_millis(45));
        set_val(s.0, 1).unwrap();
        take_within(s.0, 1, Duration::from_millis(50), false).unwrap();
        assert_eq!(get_val(s.0), Ok(0));
    }

    #[test]
    fn weighted_takes_are_all_or_nothing() {
        let s = PrivateSet::new();
        set_val(s.0, 2).unwrap();
        assert_eq!(
            take_within(s.0, 3, Duration::from_millis(20), false),
            Err(Errno::EAGAIN)
        );
        assert_eq!(get_val(s.0), Ok(2), "a failed take of 3 took nothing");
        set_val(s.0, 5).unwrap();
        take_within(s.0, 3, Duration::from_millis(20), false).unwrap();
        assert_eq!(get_val(s.0), Ok(2));
        assert_eq!(
            take_within(s.0, 0, Duration::ZERO, false),
            Err(Errno::ERANGE)
        );
        assert_eq!(
            take_within(s.0, 32768, Duration::ZERO, false),
            Err(Errno::ERANGE)
        );
        assert_eq!(get_val(s.0), Ok(2));
    }

    #[test]
    fn a_pipe_without_readers_is_seen_at_once() {
        let (r, w) = nix::unistd::pipe().expect("a pipe");
        let t = std::time::Instant::now();
        assert_eq!(
            hung_up_within(w.as_fd(), Duration::from_millis(30)),
            Ok(false)
        );
        assert!(
            t.elapsed() >= Duration::from_millis(25),
            "a read pipe sleeps"
        );
        drop(r);
        let t = std::time::Instant::now();
        assert_eq!(hung_up_within(w.as_fd(), Duration::from_secs(5)), Ok(true));
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "a pipe without readers wakes at once"
        );
    }

    #[test]
    fn removed_sets_are_reported() {
        let s = PrivateSet::new();
        let key_holder = stat(s.0).unwrap().sem_perm.__key;
        assert_eq!(lookup_set(Key(key_holder)), Ok(s.0));
        remove(s.0).unwrap();
        assert!(matches!(get_val(s.0), Err(Errno::EINVAL | Errno::EIDRM)));
        assert_eq!(lookup_set(Key(key_holder)), Err(Errno::ENOENT));
    }
}
