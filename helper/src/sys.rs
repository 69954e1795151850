//! The only code of the helper with `unsafe`: the process-level system calls its policy
//! needs (signals, the parent's death, forks, pidfds, poll, sleeping, local time), one
//! thin, typed function each. The semaphores' own system calls are the library's.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;

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

/// A signal handler: a plain function, which must do only async-signal-safe work.
pub type Handler = extern "C" fn(libc::c_int);

/// Install `handler` for `sig` (with `SA_RESTART`, so that only calls that are never
/// restarted, like `semtimedop`, see `EINTR`), unless `sig` is ignored now: a background
/// job of a non-interactive shell inherits SIGINT ignored, and must keep it so.
///
/// # Errors
/// `EINVAL` for a signal that cannot be caught; see sigaction(2).
pub fn catch(sig: libc::c_int, handler: Handler) -> Result<(), Errno> {
    if is_ignored(sig)? {
        return Ok(());
    }
    install(sig, handler)
}

/// Install `handler` for `sig` (with `SA_RESTART`), whatever the disposition now.
///
/// # Errors
/// `EINVAL` for a signal that cannot be caught; see sigaction(2).
pub fn install(sig: libc::c_int, handler: Handler) -> Result<(), Errno> {
    // SAFETY: zeroed is a valid sigaction (empty mask, no flags); we then set the fields.
    let mut act: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    act.sa_sigaction = handler as *const () as libc::sighandler_t;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: `act` is fully initialised; the caller's handler is async-signal-safe.
    let r = unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) };
    Errno::result(r).map(drop)
}

/// `prctl(PR_SET_PDEATHSIG, sig)`: have the kernel send `sig` when the thread that forked
/// us exits (in a single-threaded parent, when the parent exits).
///
/// # Errors
/// `EINVAL` for an invalid signal; see prctl(2).
pub fn set_parent_death_signal(sig: libc::c_int) -> Result<(), Errno> {
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

/// Block `sig` in this thread (and in the threads it starts later), and return a
/// signalfd(2) that polls readable once `sig` is pending: a signal that is read, never
/// handled, so that it can't interrupt anything.
///
/// # Errors
/// `EINVAL` for an invalid signal; `EMFILE`; see signalfd(2) and pthread_sigmask(3).
pub fn signalfd_for(sig: libc::c_int) -> Result<std::os::fd::OwnedFd, Errno> {
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: `set` is valid writable memory for a sigset_t; sigemptyset initialises it.
    Errno::result(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
    // SAFETY: `set` was initialised by sigemptyset just above.
    Errno::result(unsafe { libc::sigaddset(set.as_mut_ptr(), sig) })?;
    let set = set.as_ptr();
    // SAFETY: `set` points to an initialised sigset_t; a null old-set pointer is allowed.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(Errno::from_raw(r));
    }
    // SAFETY: -1 asks for a new descriptor; `set` points to an initialised sigset_t.
    let fd = unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC) };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// The signal [`wake_thread`] sends: handled by a handler that does nothing, so that it
/// only interrupts the sleep of the thread it reaches (`EINTR`).
fn wake_signal() -> libc::c_int {
    first_realtime_signal() + 3
}

extern "C" fn on_wake(_: libc::c_int) {}

/// Arrange for [`wake_thread`] to interrupt a thread's sleep.
///
/// # Errors
/// See sigaction(2).
pub fn prepare_wake() -> Result<(), Errno> {
    install(wake_signal(), on_wake)
}

/// `tgkill(getpid(), tid, wake_signal)`: interrupt the sleep of thread `tid` of this
/// process (after [`prepare_wake`]).
///
/// # Errors
/// `ESRCH` when no such thread exists; see tgkill(2).
pub fn wake_thread(tid: libc::pid_t) -> Result<(), Errno> {
    let pid = std::process::id() as libc::pid_t;
    // SAFETY: tgkill takes plain integers and touches no memory of ours; libc has no
    // wrapper, hence the raw syscall.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, wake_signal()) };
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
}
