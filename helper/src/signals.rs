//! The helper's signal policy: it runs one operation and exits.
//!
//! A count must never be lost to a signal. Non-blocking operations simply defer the stop
//! signals until they exit ([`defer_stop_signals`]), so their exit status is always the
//! truth. A blocking wait instead catches them ([`abort_waits_on_stop_signals`]): a
//! signal that arrives while the wait sleeps ends it with nothing taken, and one that
//! arrives after the count was taken is ignored, so the wait reports success.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use sem::{Cancel, Error, ErrorKind, Result};

use crate::sys;

/// The cancel that every wait of this process is given; the handlers below trigger it,
/// with the signal's number as the reason.
pub static CANCEL: Cancel = Cancel::new();

extern "C" fn on_stop_signal(sig: libc::c_int) {
    CANCEL.cancel(sig);
}

/// The parent pid that [`die_with_parent`] watches.
static PARENT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_parent_death(sig: libc::c_int) {
    // PR_SET_PDEATHSIG fires when the *thread* that forked us exits, which in a
    // multi-threaded caller need not be the end of the process: act only when we have
    // really been reparented. getppid is async-signal-safe.
    if nix::unistd::getppid().as_raw() != PARENT.load(Ordering::SeqCst) {
        CANCEL.cancel(sig);
    }
}

/// The signals that ask a process to stop: what Ctrl-C, `kill`, a CI cancel or a closing
/// terminal send.
pub const STOP_SIGNALS: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGALRM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

fn stop_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in STOP_SIGNALS {
        set.add(s);
    }
    set
}

/// Block the stop signals for the rest of this process's life: they are discarded when it
/// exits, after it has finished its operation and reported truthfully.
///
/// # Errors
/// [`ErrorKind::Other`] if the signal mask can't be changed.
pub fn defer_stop_signals() -> Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&stop_set()), None)
        .map_err(|e| Error::sys(ErrorKind::Other, "cannot block signals", e))
}

/// Catch the stop signals (those not ignored already), so that a blocked wait given
/// [`CANCEL`] ends with [`ErrorKind::Interrupted`] having taken nothing.
///
/// # Errors
/// [`ErrorKind::Other`] if a handler can't be installed.
pub fn abort_waits_on_stop_signals() -> Result<()> {
    for s in STOP_SIGNALS {
        sys::catch(s as libc::c_int, on_stop_signal)
            .map_err(|e| Error::sys(ErrorKind::Other, "cannot catch signals", e))?;
    }
    Ok(())
}

/// Before an exec: give the stop signals we catch their default action back, then set the
/// signal mask to `mask` (what the process started with). A stop signal still pending is
/// then delivered with its default action and ends this process, before the program ever
/// runs; the program starts with the signal state its caller gave us.
///
/// # Errors
/// [`ErrorKind::Other`] if a disposition or the mask can't be changed.
pub fn restore_for_exec(mask: &SigSet) -> Result<()> {
    for s in STOP_SIGNALS {
        sys::uncatch(s as libc::c_int)
            .map_err(|e| Error::sys(ErrorKind::Other, "cannot reset a signal", e))?;
    }
    mask.thread_set_mask()
        .map_err(|e| Error::sys(ErrorKind::Other, "cannot restore the signal mask", e))
}

/// The stop signal that ended a wait, if any.
pub fn caught() -> Option<i32> {
    CANCEL.reason()
}

/// Die of `sig` as if it had never been caught, so that a parent shell sees the real
/// cause (a shell stops a script whose foreground child died of SIGINT).
pub fn die_of(sig: i32) -> ! {
    if let Ok(s) = Signal::try_from(sig) {
        let _ = sys::reset_to_default(sig);
        let mut set = SigSet::empty();
        set.add(s);
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
        let _ = nix::sys::signal::raise(s);
    }
    std::process::exit(128 + sig)
}

/// The environment variable in which a caller names itself, the process that must stay our
/// parent: `sem.sh` sets it to `$BASHPID`. Without it, the parent at start-up is assumed.
pub const PARENT_ENV: &str = "SEMCTL_PARENT";

/// The pid our parent must be: [`PARENT_ENV`] if it holds a pid, else our parent now.
/// A caller killed between forking us and our arming the parent-death signal has already
/// left us to a reaper, and only a pid it gave us beforehand tells us so.
pub fn expected_parent() -> nix::unistd::Pid {
    std::env::var(PARENT_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|&p| p > 0)
        .map_or_else(nix::unistd::getppid, nix::unistd::Pid::from_raw)
}

/// End a wait, taking nothing, when this process's parent exits, so that a wait whose
/// caller is gone (killed with -9, or a CI cancel that signals only the script) doesn't
/// linger and later take a count that nobody would give back. The kernel's
/// `PR_SET_PDEATHSIG` delivers a real-time signal; its handler checks that we were really
/// reparented, since the signal also comes when just the forking thread of a
/// multi-threaded parent exits.
///
/// # Errors
/// [`ErrorKind::Interrupted`] when the parent is already gone (or is not `parent`).
pub fn die_with_parent(parent: nix::unistd::Pid) -> Result<()> {
    PARENT.store(parent.as_raw(), Ordering::SeqCst);
    let sig = sys::first_realtime_signal();
    sys::install(sig, on_parent_death)
        .and_then(|()| sys::set_parent_death_signal(sig))
        .map_err(|e| Error::sys(ErrorKind::Other, "cannot tie our life to our parent's", e))?;
    // The parent may have died before the prctl: then we were reparented already.
    if nix::unistd::getppid() != parent {
        return Err(Error::new(
            ErrorKind::Interrupted,
            "the calling process is gone",
        ));
    }
    Ok(())
}
