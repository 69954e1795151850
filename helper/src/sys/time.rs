//! Time: an interruptible sleep, local time.

use std::mem::MaybeUninit;
use std::time::Duration;

use nix::errno::Errno;

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
