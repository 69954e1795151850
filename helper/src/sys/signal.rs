//! Signals: dispositions, handlers, a signalfd, waking a thread.

use std::mem::MaybeUninit;

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
